//! Collaboration on an Event (misp_features.md §3–§5, issue 8): Proposals, Delegation, the discussion
//! Thread and its Posts, reporter contacts. Decided like every Event command (pure, on the folded
//! [`EventState`]); the changes land in the Event's own stream.
//!
//! # Why in the Event's stream
//! * **Proposals**: accepting one changes an attribute; the attribute change and the proposal's
//!   resolution must be one commit, and the proposal's base revision must be compared with the
//!   attribute it targets under the same expected stream version. Only the Event's stream gives both.
//! * **Delegation**: acceptance transfers the Event (an `event.updated.v1` with the new `org_id`,
//!   `orgc_id`, `user_id` and the requested distribution) — never a delete and re-create as in MISP, so
//!   the Event keeps its id, uuid and its whole history in one stream; the pending request itself
//!   changes who may see the Event, which is state of the Event.
//! * **Discussion**: a Post must be visible exactly when its Event is, and the Event's history should
//!   tell the whole story of a case ("proposed to_ids off — see the discussion — accepted"). Posts are
//!   rare next to edits (unlike Sightings, which have their own stream, see [`crate::sighting`]), so
//!   sharing the Event's expected version costs nothing noticeable; the API serialises commands per
//!   stream anyway. The state keeps only the live Posts of the one Thread.
//! * **Reporter contacts** are facts about the Event ("organisation X wrote to its reporter").
//!
//! None of these records is Event content: they never move the Event's `timestamp` nor unpublish it
//! (the attribute and Event changes that acceptances produce do, as any edit).
//!
//! # Notifications
//! The changes are the notifications: a notifier (or the API right after a commit) folds the Event's
//! stream and, for each new change, asks [`recipients`] — with the state *before* that change — who
//! should hear about it, then publishes one message per recipient organisation on that organisation's
//! NATS subject (a [`Recipient::User`] goes to the user's organisation subject, addressed to the
//! user), and by SMTP only when configured. The change's author is never notified of their own change.
//! MISP's `proposal_email_lock` (one e-mail per batch of proposals) is not reproduced: NATS messages
//! are cheap, and an SMTP sender can debounce per Event.

use super::decide::{
    Context, Decision, ElementRef, IdPool, NO_PERMISSION, NO_PERMISSION_FUNCTIONALITY, Work, add_attribute, can_modify,
    check_distribution, check_duplicate, delete_attribute, element_visible, find_attribute, invalid, new_attribute, patch_content,
    touch_object_of, visible_meta,
};
use super::draft::AttributeDraft;
use super::model::{Attribute, Delegation, EventMeta, Post, Proposal, Thread};
use super::state::EventState;
use crate::change::Change;
use crate::error::{DomainError, StaleProposal};

/// MISP's refusal in the delegation controller (answered with 405).
pub const NOT_AUTHORISED: &str = "You are not authorised to do that.";
pub const ONLY_PRIVATE_EVENTS: &str = "Only events with the distribution setting \"Your Organisation Only\" can be delegated.";
pub const DELEGATION_PENDING: &str =
    "This event already has a pending delegation request. Please revoke that before creating a new request.";
pub const INVALID_PROPOSAL: &str = "Invalid proposal.";
pub const INVALID_DELEGATION: &str = "Invalid delegation request.";
pub const INVALID_POST: &str = "Invalid post.";
pub const INVALID_ATTRIBUTE: &str = "Invalid attribute";
pub const TARGET_GONE: &str = "The attribute this proposal changes no longer exists.";

/// Types whose category, type and value a proposal cannot change (MISP: attachments).
const ATTACHMENT_TYPES: [&str; 2] = ["attachment", "malware-sample"];

fn one(changes: Vec<Change>) -> Result<Decision, DomainError> {
    Ok(Decision { changes, errors: vec![] })
}

fn may_propose(ctx: &Context<'_>) -> Result<(), DomainError> {
    // MISP: every proposal route needs perm_add (the User role has it; Read Only does not).
    if ctx.role.perm_add || ctx.role.perm_site_admin { Ok(()) } else { Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into())) }
}

/// The live, visible attribute a proposal targets.
fn proposal_target(state: &EventState, ctx: &Context<'_>, meta: &EventMeta, target: &ElementRef) -> Result<Attribute, DomainError> {
    find_attribute(state, target)
        .filter(|a| !a.deleted && element_visible(ctx, state, meta, a))
        .cloned()
        .ok_or_else(|| DomainError::NotFound(INVALID_ATTRIBUTE.into()))
}

/// A proposal carrying `a`'s fields, by the actor, based on the attribute `base` (if any).
fn proposal_of(ctx: &Context<'_>, state: &EventState, meta: &EventMeta, id: i64, a: &Attribute, base: Option<&Attribute>) -> Proposal {
    Proposal {
        id,
        uuid: a.uuid,
        event_id: meta.id,
        event_uuid: meta.uuid,
        old_id: base.map_or(0, |b| b.id),
        event_org_id: meta.orgc_id,
        category: a.category.clone(),
        attr_type: a.attr_type.clone(),
        value1: a.value1.clone(),
        value2: a.value2.clone(),
        to_ids: a.to_ids,
        comment: a.comment.clone(),
        disable_correlation: a.disable_correlation,
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        proposal_to_delete: false,
        org_id: ctx.actor.org_id,
        user_id: ctx.actor.user_id,
        email: ctx.actor.email.clone(),
        timestamp: ctx.now,
        base_revision: base.map_or(0, |b| state.attribute_revision(b.id)),
        base_timestamp: base.map_or(0, |b| b.timestamp),
    }
}

/// The fields a proposal may carry (MISP's ShadowAttribute columns), nothing else of the draft.
fn proposable(draft: &AttributeDraft) -> AttributeDraft {
    AttributeDraft {
        uuid: draft.uuid,
        attr_type: draft.attr_type.clone(),
        category: draft.category.clone(),
        value: draft.value.clone(),
        to_ids: draft.to_ids,
        comment: draft.comment.clone(),
        disable_correlation: draft.disable_correlation,
        first_seen: draft.first_seen,
        last_seen: draft.last_seen,
        ..AttributeDraft::default()
    }
}

/// `shadow_attributes/add`: validated exactly like a new attribute (type, category for the type,
/// value normalisation), with MISP's defaults. Allowed on one's own Event too (MISP; PyMISP's live test
/// proposes on the user's own Event). Duplicates are only refused on acceptance, as in MISP.
pub(super) fn propose_attribute(state: &EventState, ctx: &Context<'_>, id: i64, draft: &AttributeDraft) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    may_propose(ctx)?;
    // Distribution 5 (inherit): what MISP gives an accepted new-attribute proposal.
    let d = AttributeDraft { distribution: Some(5), ..proposable(draft) };
    let a = new_attribute(ctx, meta, &d, 0, 0)?;
    one(vec![Change::ProposalAdded(proposal_of(ctx, state, meta, id, &a, None))])
}

/// `shadow_attributes/edit`: at least one proposable field; validated like an attribute edit. For an
/// Object's attribute the type is fixed; for attachments category, type and value are (MISP ignores
/// them silently, so do we).
pub(super) fn propose_edit(
    state: &EventState,
    ctx: &Context<'_>,
    id: i64,
    target: &ElementRef,
    draft: &AttributeDraft,
) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    may_propose(ctx)?;
    let current = proposal_target(state, ctx, meta, target)?;
    let mut d = proposable(draft);
    if current.object_id != 0 {
        d.attr_type = None;
    }
    if ATTACHMENT_TYPES.contains(&current.attr_type.as_str()) {
        (d.attr_type, d.category, d.value) = (None, None, None);
    }
    let any = d.attr_type.is_some()
        || d.category.is_some()
        || d.value.is_some()
        || d.to_ids.is_some()
        || d.comment.is_some()
        || d.disable_correlation.is_some()
        || d.first_seen.is_some()
        || d.last_seen.is_some();
    if !any {
        return Err(invalid("ShadowAttribute", "Invalid input."));
    }
    let mut next = current.clone();
    patch_content(ctx, &current, &mut next, &d)?;
    one(vec![Change::ProposalAdded(proposal_of(ctx, state, meta, id, &next, Some(&current)))])
}

/// `shadow_attributes/delete`: a copy of the attribute flagged `proposal_to_delete`.
pub(super) fn propose_deletion(state: &EventState, ctx: &Context<'_>, id: i64, target: &ElementRef) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    may_propose(ctx)?;
    let current = proposal_target(state, ctx, meta, target)?;
    let proposal = Proposal { proposal_to_delete: true, ..proposal_of(ctx, state, meta, id, &current, Some(&current)) };
    one(vec![Change::ProposalAdded(proposal)])
}

fn pending_proposal(state: &EventState, id: i64) -> Result<&Proposal, DomainError> {
    state.proposals.get(&id).ok_or_else(|| DomainError::NotFound(INVALID_PROPOSAL.into()))
}

/// `shadow_attributes/accept` (MISP's `canModifyEvent`): applies the proposal and records its
/// resolution in one decision. An edit or deletion whose attribute changed since the proposal was made
/// (its revision moved) is refused with [`DomainError::StaleProposal`]: nothing is overwritten.
pub(super) fn accept_proposal(state: &EventState, ctx: &Context<'_>, id: i64, ids: &mut IdPool) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    let p = pending_proposal(state, id)?.clone();
    if !can_modify(ctx, meta) {
        return Err(DomainError::Forbidden(NO_PERMISSION.into()));
    }
    let mut work = Work::new(state);
    let attribute_id = if p.is_new_attribute() {
        let draft = AttributeDraft {
            uuid: p.uuid,
            attr_type: Some(p.attr_type.clone()),
            category: Some(p.category.clone()),
            value: Some(p.value()),
            to_ids: Some(p.to_ids),
            comment: Some(p.comment.clone()),
            disable_correlation: Some(p.disable_correlation),
            first_seen: Some(p.first_seen),
            last_seen: Some(p.last_seen),
            // MISP: an accepted new-attribute proposal inherits the Event's distribution.
            distribution: Some(5),
            ..AttributeDraft::default()
        };
        add_attribute(ctx, &mut work, &draft, 0, true, ids)?
    } else {
        let current = state.attributes.get(&p.old_id).cloned().ok_or_else(|| DomainError::Conflict(TARGET_GONE.into()))?;
        let current_revision = state.attribute_revision(current.id);
        if current_revision != p.base_revision {
            return Err(DomainError::StaleProposal(Box::new(StaleProposal { current, current_revision, proposal: p })));
        }
        if p.proposal_to_delete {
            delete_attribute(ctx, &mut work, current.id, false);
        } else {
            let mut next = Attribute {
                category: p.category.clone(),
                attr_type: p.attr_type.clone(),
                value1: p.value1.clone(),
                value2: p.value2.clone(),
                to_ids: p.to_ids,
                comment: p.comment.clone(),
                disable_correlation: p.disable_correlation,
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                ..current.clone()
            };
            if next != current {
                next.timestamp = ctx.now;
                check_duplicate(work.state(), &next)?;
                work.push(Change::AttributeUpdated(next));
                touch_object_of(ctx, &mut work, current.object_id);
            }
        }
        current.id
    };
    work.push(Change::ProposalAccepted { id, attribute_id, by_org_id: ctx.actor.org_id, by_user_id: ctx.actor.user_id, timestamp: ctx.now });
    Ok(work.finish(ctx))
}

/// `shadow_attributes/discard`: by whoever may modify the Event, or by the proposing organisation.
pub(super) fn discard_proposal(state: &EventState, ctx: &Context<'_>, id: i64) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    let p = pending_proposal(state, id)?;
    if !(can_modify(ctx, meta) || ctx.actor.org_id == p.org_id) {
        return Err(DomainError::Forbidden(NO_PERMISSION.into()));
    }
    one(vec![Change::ProposalDiscarded { id, by_org_id: ctx.actor.org_id, by_user_id: ctx.actor.user_id, timestamp: ctx.now }])
}

/// `event_delegations/delegateEvent` (MISP's rules, in MISP's order): `perm_delegate`; the creator
/// organisation (or a site admin); an org-only Event unless `unpublishedprivate`; one pending request.
/// MISP answers 405 for all but the first (403).
pub(super) fn request_delegation(
    state: &EventState,
    ctx: &Context<'_>,
    id: i64,
    org_id: i64,
    distribution: i8,
    sharing_group_id: i64,
    message: String,
) -> Result<Decision, DomainError> {
    if !(ctx.role.perm_delegate || ctx.role.perm_site_admin) {
        return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let meta = visible_meta(state, ctx)?;
    if !(ctx.role.perm_site_admin || ctx.actor.org_id == meta.orgc_id) {
        return Err(DomainError::Forbidden(NOT_AUTHORISED.into()));
    }
    if meta.distribution != 0 && !ctx.access.unpublished_private {
        return Err(DomainError::Conflict(ONLY_PRIVATE_EVENTS.into()));
    }
    if state.delegation.is_some() {
        return Err(DomainError::Conflict(DELEGATION_PENDING.into()));
    }
    if org_id <= 0 || org_id == meta.org_id || org_id == meta.orgc_id {
        return Err(invalid("org_id", "Invalid target organisation."));
    }
    if !(-1..=4).contains(&distribution) {
        return Err(invalid("distribution", "Options: -1 (recipient decides), 0..4."));
    }
    let sharing_group_id = if distribution == 4 {
        if sharing_group_id <= 0 {
            return Err(invalid("sharing_group_id", "Invalid sharing group or sharing group not set."));
        }
        sharing_group_id
    } else {
        0
    };
    one(vec![Change::DelegationRequested(Delegation {
        id,
        event_id: meta.id,
        org_id,
        requester_org_id: ctx.actor.org_id,
        requester_user_id: ctx.actor.user_id,
        message,
        distribution,
        sharing_group_id,
        timestamp: ctx.now,
    })])
}

fn pending_delegation(state: &EventState, id: i64) -> Result<&Delegation, DomainError> {
    state.delegation.as_ref().filter(|d| d.id == id).ok_or_else(|| DomainError::NotFound(INVALID_DELEGATION.into()))
}

/// `event_delegations/acceptDelegation`: the target organisation (or a site admin) with `perm_add` takes
/// the Event over. Creator and owner become the target organisation, the accepting user its user, and
/// — unlike MISP 2.4, which stores the requested distribution and sharing group but leaves applying
/// them to the recipient's next edit — the requested distribution is applied (-1 keeps the current
/// one); a requested sharing group must be one the accepting user may assign. The Event is not deleted
/// and re-created (MISP's `transferEvent` does, and may leave a blocklist entry): an
/// `event.updated.v1` in the same commit carries the transfer, the Event keeps its id, uuid and stream.
/// It is unpublished, so the new owner decides when to publish.
pub(super) fn accept_delegation(state: &EventState, ctx: &Context<'_>, id: i64) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?.clone();
    let d = pending_delegation(state, id)?.clone();
    if !(ctx.role.perm_site_admin || ctx.actor.org_id == d.org_id) {
        return Err(DomainError::Forbidden(NOT_AUTHORISED.into()));
    }
    if !(ctx.role.perm_add || ctx.role.perm_site_admin) {
        return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let mut next = EventMeta { org_id: d.org_id, orgc_id: d.org_id, user_id: ctx.actor.user_id, timestamp: ctx.now, published: false, ..meta };
    if let Ok(level) = u8::try_from(d.distribution) {
        next.distribution = level;
        next.sharing_group_id = check_distribution(ctx, "distribution", level, d.sharing_group_id, 4)?;
    }
    let mut work = Work::new(state);
    work.push(Change::DelegationAccepted { id, by_org_id: ctx.actor.org_id, by_user_id: ctx.actor.user_id, timestamp: ctx.now });
    work.push(Change::EventUpdated(next));
    Ok(work.finish(ctx))
}

/// `event_delegations/deleteDelegation`: withdrawn by the requester or declined by the target (or a site
/// admin). The Event is unchanged.
pub(super) fn discard_delegation(state: &EventState, ctx: &Context<'_>, id: i64) -> Result<Decision, DomainError> {
    visible_meta(state, ctx)?;
    let d = pending_delegation(state, id)?;
    if !(ctx.role.perm_site_admin || ctx.actor.org_id == d.requester_org_id || ctx.actor.org_id == d.org_id) {
        return Err(DomainError::Forbidden(NOT_AUTHORISED.into()));
    }
    one(vec![Change::DelegationDiscarded { id, by_org_id: ctx.actor.org_id, by_user_id: ctx.actor.user_id, timestamp: ctx.now }])
}

fn check_message(field: &str, text: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() { Err(invalid(field, "The message cannot be empty.")) } else { Ok(()) }
}

/// `posts/add`: anyone who sees the Event may post (MISP). The first Post starts the Event's Thread,
/// titled as MISP does.
pub(super) fn add_post(
    state: &EventState,
    ctx: &Context<'_>,
    id: i64,
    thread_id: i64,
    contents: &str,
    reply_to: Option<i64>,
) -> Result<Decision, DomainError> {
    let meta = visible_meta(state, ctx)?;
    check_message("message", contents)?;
    let reply_to = reply_to.filter(|p| *p != 0);
    if reply_to.is_some_and(|p| !state.posts.contains_key(&p)) {
        return Err(invalid("post_id", INVALID_POST));
    }
    let mut changes = Vec::new();
    let thread_id = match &state.thread {
        Some(t) => t.id,
        None => {
            changes.push(Change::ThreadStarted(Thread {
                id: thread_id,
                event_id: meta.id,
                title: format!("Discussion about Event #{} ({})", meta.id, meta.info),
                org_id: ctx.actor.org_id,
                user_id: ctx.actor.user_id,
                date_created: ctx.now,
            }));
            thread_id
        }
    };
    changes.push(Change::PostAdded(Post {
        id,
        thread_id,
        event_id: meta.id,
        user_id: ctx.actor.user_id,
        org_id: ctx.actor.org_id,
        contents: contents.to_string(),
        post_id: reply_to.unwrap_or(0),
        date_created: ctx.now,
        date_modified: ctx.now,
    }));
    one(changes)
}

/// The live Post `id`, which the actor may edit or delete: its author, or a site admin (MISP).
fn own_post<'s>(state: &'s EventState, ctx: &Context<'_>, id: i64) -> Result<&'s Post, DomainError> {
    visible_meta(state, ctx)?;
    let post = state.posts.get(&id).ok_or_else(|| DomainError::NotFound(INVALID_POST.into()))?;
    if !(ctx.role.perm_site_admin || post.user_id == ctx.actor.user_id) {
        return Err(DomainError::Forbidden(NOT_AUTHORISED.into()));
    }
    Ok(post)
}

/// `posts/edit`.
pub(super) fn edit_post(state: &EventState, ctx: &Context<'_>, id: i64, contents: &str) -> Result<Decision, DomainError> {
    let post = own_post(state, ctx, id)?;
    check_message("message", contents)?;
    if post.contents == contents {
        return Ok(Decision::default());
    }
    one(vec![Change::PostEdited { id, contents: contents.to_string(), date_modified: ctx.now }])
}

/// `posts/delete`: deleting the Thread's last Post deletes the Thread (MISP).
pub(super) fn delete_post(state: &EventState, ctx: &Context<'_>, id: i64) -> Result<Decision, DomainError> {
    let post = own_post(state, ctx, id)?;
    let mut changes = vec![Change::PostDeleted { id, by_user_id: ctx.actor.user_id, timestamp: ctx.now }];
    if state.posts.len() == 1 {
        changes.push(Change::ThreadDeleted { id: post.thread_id, timestamp: ctx.now });
    }
    one(changes)
}

/// `events/contact`: anyone who sees the Event may write to its reporter.
pub(super) fn contact_reporter(state: &EventState, ctx: &Context<'_>, message: &str, creator_only: bool) -> Result<Decision, DomainError> {
    visible_meta(state, ctx)?;
    check_message("message", message)?;
    one(vec![Change::EventReporterContacted {
        org_id: ctx.actor.org_id,
        user_id: ctx.actor.user_id,
        message: message.to_string(),
        creator_only,
        timestamp: ctx.now,
    }])
}

/// Who should be told about a change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    /// The organisation's users who asked for contact alerts (MISP's `contactalert`).
    Organisation(i64),
    /// One user.
    User(i64),
}

/// The recipients of a collaboration change, given the Event's state *before* it (see the module docs).
/// Empty for every other change (Event content has its own publication path: feeds, alerts).
///
/// * a Proposal → the Event's creator organisation (MISP's `sendProposalAlertEmail`);
/// * a Proposal accepted or discarded → its proposer (beyond MISP), unless they did it themselves;
/// * a Post → the owner organisation, the Event's creator user and everyone who posted in the Thread
///   before, except the author (MISP's `sendPostsEmail`);
/// * a Delegation request → the target organisation; its acceptance or discarding → the other side
///   (both sides when a site admin of a third organisation acted);
/// * a reporter contact → the Event's creator user, or the creator organisation.
pub fn recipients(before: &EventState, change: &Change) -> Vec<Recipient> {
    let Some(meta) = before.meta.as_ref() else { return vec![] };
    let mut out = match change {
        Change::ProposalAdded(_) => vec![Recipient::Organisation(meta.orgc_id)],
        Change::ProposalAccepted { id, by_user_id, .. } | Change::ProposalDiscarded { id, by_user_id, .. } => {
            before.proposals.get(id).filter(|p| p.user_id != *by_user_id).map(|p| Recipient::User(p.user_id)).into_iter().collect()
        }
        Change::PostAdded(post) => {
            let mut r = vec![Recipient::Organisation(meta.org_id), Recipient::User(meta.user_id)];
            r.extend(before.posts.values().map(|p| Recipient::User(p.user_id)));
            r.retain(|x| x != &Recipient::User(post.user_id));
            r
        }
        Change::DelegationRequested(d) => vec![Recipient::Organisation(d.org_id)],
        Change::DelegationAccepted { id, by_org_id, .. } | Change::DelegationDiscarded { id, by_org_id, .. } => {
            match before.delegation.as_ref().filter(|d| d.id == *id) {
                Some(d) if *by_org_id == d.org_id => vec![Recipient::Organisation(d.requester_org_id)],
                Some(d) if *by_org_id == d.requester_org_id => vec![Recipient::Organisation(d.org_id)],
                Some(d) => vec![Recipient::Organisation(d.requester_org_id), Recipient::Organisation(d.org_id)],
                None => vec![],
            }
        }
        Change::EventReporterContacted { creator_only: true, .. } => vec![Recipient::User(meta.user_id)],
        Change::EventReporterContacted { creator_only: false, .. } => vec![Recipient::Organisation(meta.orgc_id)],
        _ => vec![],
    };
    out.sort();
    out.dedup();
    out
}
