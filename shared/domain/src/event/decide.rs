//! Deciding Event commands: validation, MISP's rules (defaults, duplicates, timestamps, rights) and the
//! changes they produce. Pure: ids, uuids, the clock and looked-up facts arrive in [`Context`] and the
//! command. The collaboration commands (proposals, delegation, discussion, reporter contact) are
//! decided in [`super::collaboration`] with the same building blocks.

use super::draft::{AttributeDraft, EventDraft, ObjectDraft, ReferenceDraft, TagDraft, TagInfo};
use super::model::{Attribute, EventMeta, Object, ObjectReference, TagLink};
use super::collaboration;
use super::state::EventState;
use crate::acl::{self, AccessSettings, Viewer};
use crate::actor::Actor;
use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use crate::types::TypeCatalogue;
use std::collections::{BTreeSet, HashMap, VecDeque};
use uuid::Uuid;

/// MISP's message for object-level denial on attribute writes (PyMISP then files a proposal).
pub const NO_PERMISSION: &str = "You do not have permission to do that.";
pub const NO_PERMISSION_FUNCTIONALITY: &str = "You do not have permission to use this functionality.";
pub const DUPLICATE: &str = "A similar attribute already exists for this event.";

/// Required relations of an object template (from the misp-objects definitions shipped in pymisp).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateRule {
    pub name: String,
    pub required: Vec<String>,
    pub required_one_of: Vec<String>,
}

/// Known object templates, by uuid and by name.
#[derive(Clone, Debug, Default)]
pub struct TemplateBook {
    pub by_uuid: HashMap<Uuid, TemplateRule>,
    pub by_name: HashMap<String, TemplateRule>,
}

impl TemplateBook {
    fn find(&self, uuid: Option<Uuid>, name: &str) -> Option<&TemplateRule> {
        uuid.and_then(|u| self.by_uuid.get(&u)).filter(|t| t.name == name).or_else(|| self.by_name.get(name))
    }
}

/// Facts a decision needs besides the state: who, when, reference data, instance defaults.
pub struct Context<'a> {
    pub actor: &'a Actor,
    pub role: &'a Role,
    /// Seconds since the epoch.
    pub now: i64,
    /// `YYYY-MM-DD` of `now`.
    pub today: String,
    pub catalogue: &'a TypeCatalogue,
    pub templates: &'a TemplateBook,
    pub default_event_distribution: u8,
    pub default_attribute_distribution: u8,
    pub default_threat_level: u8,
    pub host_org_id: i64,
    /// Sharing groups the actor may assign (distribution 4).
    pub sharing_groups: &'a BTreeSet<i64>,
    pub viewer: &'a Viewer,
    pub access: AccessSettings,
}

/// Ids allocated by the edge for the records a command may create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdPool {
    pub attributes: VecDeque<i64>,
    pub objects: VecDeque<i64>,
    pub references: VecDeque<i64>,
}

impl IdPool {
    fn attribute(&mut self) -> Result<i64, DomainError> {
        self.attributes.pop_front().ok_or_else(|| DomainError::Conflict("attribute id pool exhausted".into()))
    }
    fn object(&mut self) -> Result<i64, DomainError> {
        self.objects.pop_front().ok_or_else(|| DomainError::Conflict("object id pool exhausted".into()))
    }
    fn reference(&mut self) -> Result<i64, DomainError> {
        self.references.pop_front().ok_or_else(|| DomainError::Conflict("reference id pool exhausted".into()))
    }
}

/// Which element a command targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementRef {
    Id(i64),
    Uuid(Uuid),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagTarget {
    Event,
    Attribute(ElementRef),
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventCommand {
    /// `events/add`: a new Event with event id `id`.
    Create { id: i64, draft: EventDraft, ids: IdPool },
    /// `events/edit`: merge by uuid, with MISP's timestamp semantics.
    Edit { draft: EventDraft, ids: IdPool },
    Delete,
    Publish,
    Unpublish,
    /// `attributes/add` (one or a list).
    AddAttributes { drafts: Vec<AttributeDraft>, break_on_duplicate: bool, ids: IdPool },
    EditAttribute { target: ElementRef, draft: AttributeDraft },
    DeleteAttribute { target: ElementRef, hard: bool },
    RestoreAttribute { target: ElementRef },
    AddObject { draft: ObjectDraft, break_on_duplicate: bool, ids: IdPool },
    EditObject { target: ElementRef, draft: ObjectDraft, ids: IdPool },
    DeleteObject { target: ElementRef, hard: bool },
    AddReference { object: ElementRef, draft: ReferenceDraft, ids: IdPool },
    DeleteReference { target: ElementRef, hard: bool },
    Tag { target: TagTarget, tag: TagInfo, local: bool, relationship_type: Option<String> },
    Untag { target: TagTarget, tag_id: i64 },

    // Collaboration (decided in `super::collaboration`). Ids of new records come from `ids.proposal`,
    // `ids.delegation`, `ids.thread`, `ids.post` (allocated by the edge).
    /// `shadow_attributes/add/{event}`: propose a new attribute (type, category, value, to_ids, comment,
    /// first_seen, last_seen, disable_correlation of the draft are read; the rest is ignored).
    ProposeAttribute { id: i64, draft: AttributeDraft },
    /// `shadow_attributes/edit/{attribute}`: propose an edit (at least one of the fields above).
    ProposeEdit { id: i64, target: ElementRef, draft: AttributeDraft },
    /// `shadow_attributes/delete/{attribute}`: propose the attribute's deletion.
    ProposeDeletion { id: i64, target: ElementRef },
    /// `shadow_attributes/accept/{id}`: `ids.attributes` needs one id for a new-attribute proposal.
    AcceptProposal { id: i64, ids: IdPool },
    /// `shadow_attributes/discard/{id}`.
    DiscardProposal { id: i64 },
    /// `event_delegations/delegateEvent/{event}`: `distribution` -1 (recipient decides) or 0–4.
    RequestDelegation { id: i64, org_id: i64, distribution: i8, sharing_group_id: i64, message: String },
    /// `event_delegations/acceptDelegation/{id}`.
    AcceptDelegation { id: i64 },
    /// `event_delegations/deleteDelegation/{id}`.
    DiscardDelegation { id: i64 },
    /// `posts/add/event/{event}` (and `/thread/{thread}`, `/post/{post}` = `reply_to`). `thread_id` is
    /// used only if the Event has no Thread yet (the edge allocates one each time; unused ids are gaps).
    AddPost { id: i64, thread_id: i64, contents: String, reply_to: Option<i64> },
    /// `posts/edit/{post}`.
    EditPost { id: i64, contents: String },
    /// `posts/delete/{post}`.
    DeletePost { id: i64 },
    /// `events/contact/{event}`.
    ContactReporter { message: String, creator_only: bool },
}

/// What a command produced: the changes, and per-element errors of a partially accepted batch
/// (`attribute_0` … as MISP reports them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub changes: Vec<Change>,
    pub errors: Vec<(String, DomainError)>,
}

pub(super) fn invalid(field: &str, reason: impl Into<String>) -> DomainError {
    DomainError::invalid(field, reason)
}

/// MISP's `canModifyEvent`.
pub fn can_modify(ctx: &Context<'_>, meta: &EventMeta) -> bool {
    ctx.role.perm_site_admin
        || (ctx.role.perm_modify_org && meta.orgc_id == ctx.actor.org_id)
        || (ctx.role.perm_modify && meta.user_id == ctx.actor.user_id)
        || synced_by(ctx, meta)
}

/// MISP's `canPublishEvent`.
pub fn can_publish(ctx: &Context<'_>, meta: &EventMeta) -> bool {
    ctx.role.perm_site_admin || (ctx.role.perm_publish && meta.orgc_id == ctx.actor.org_id) || synced_by(ctx, meta)
}

/// A sync user may edit and publish a locked Event (one that arrived through sync), as MISP's
/// receivers allow the peers' pushes.
fn synced_by(ctx: &Context<'_>, meta: &EventMeta) -> bool {
    ctx.role.perm_sync && meta.locked
}

/// MISP's refusal of a push that is not newer than the copy here.
pub const NOT_NEWER: &str = "Event in the request not newer than the local copy";

fn not_found() -> DomainError {
    DomainError::NotFound("Invalid event".into())
}

/// The Event's access fields with its pending delegate (see [`EventState::access`]).
pub(super) fn event_access(state: &EventState, meta: &EventMeta) -> acl::EventAccess {
    state.access().unwrap_or_else(|| meta.access())
}

/// The live, visible Event, or NotFound (an invisible Event looks exactly like a missing one).
pub(super) fn visible_meta<'s>(state: &'s EventState, ctx: &Context<'_>) -> Result<&'s EventMeta, DomainError> {
    let meta = state.live().ok_or_else(not_found)?;
    if acl::event_visible(ctx.viewer, &event_access(state, meta), &ctx.access) { Ok(meta) } else { Err(not_found()) }
}

pub(super) fn check_distribution(ctx: &Context<'_>, field: &str, distribution: u8, sg: i64, max: u8) -> Result<i64, DomainError> {
    if distribution > max {
        return Err(invalid(field, format!("Options: 0..{max}.")));
    }
    if distribution == 4 {
        if sg <= 0 || !ctx.sharing_groups.contains(&sg) {
            return Err(invalid("sharing_group_id", "Invalid sharing group or sharing group not set."));
        }
        Ok(sg)
    } else {
        Ok(0)
    }
}

/// A known type in a category that allows it (MISP's messages).
pub(super) fn check_type_category(catalogue: &TypeCatalogue, attr_type: &str, category: &str) -> Result<(), DomainError> {
    if !catalogue.is_type(attr_type) {
        return Err(invalid("type", format!("Invalid type \"{attr_type}\".")));
    }
    if !catalogue.is_category(category) {
        return Err(invalid("category", "Options depend on the selected type."));
    }
    if !catalogue.category_allows(category, attr_type) {
        return Err(invalid("category", format!("The category \"{category}\" is not valid for the type \"{attr_type}\".")));
    }
    Ok(())
}

pub(super) fn check_seen(first: Option<i64>, last: Option<i64>) -> Result<(), DomainError> {
    match (first, last) {
        (Some(f), Some(l)) if l < f => Err(invalid("last_seen", "last_seen must be later than or equal to first_seen.")),
        _ => Ok(()),
    }
}

fn check_relationship(r: &Option<String>) -> Result<(), DomainError> {
    match r {
        Some(s) if s.chars().count() > 191 => Err(invalid("relationship_type", "Too long (191 characters at most).")),
        _ => Ok(()),
    }
}

/// Whether the actor may attach this tag (MISP's `captureTag`/`canModifyTag` rules).
fn check_tag(ctx: &Context<'_>, tag: &TagInfo, local: bool) -> Result<(), DomainError> {
    if ctx.role.perm_site_admin {
        return Ok(());
    }
    if !ctx.role.perm_tagger {
        return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    if tag.user_id != 0 && tag.user_id != ctx.actor.user_id {
        return Err(invalid("tag", "Invalid Tag. This tag can only be set by a fixed user."));
    }
    if tag.org_id != 0 && tag.org_id != ctx.actor.org_id {
        return Err(invalid("tag", "Invalid Tag. This tag can only be set by a fixed organisation."));
    }
    if local && ctx.actor.org_id != ctx.host_org_id {
        return Err(invalid("tag", "Local tags can only be set by users of the host organisation."));
    }
    if tag.local_only && !local {
        return Err(invalid("tag", "This tag can only be attached as a local tag."));
    }
    Ok(())
}

fn link(t: &TagDraft) -> TagLink {
    TagLink { tag_id: t.tag.id, local: t.local, relationship_type: t.relationship_type.clone() }
}

/// Builds a new Attribute from a draft: MISP's defaults, type/category checks, value normalisation.
pub(super) fn new_attribute(
    ctx: &Context<'_>,
    meta: &EventMeta,
    draft: &AttributeDraft,
    id: i64,
    object_id: i64,
) -> Result<Attribute, DomainError> {
    let attr_type = draft.attr_type.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| invalid("type", "Mandatory field not set."))?;
    if !ctx.catalogue.is_type(attr_type) {
        return Err(invalid("type", format!("Invalid type \"{attr_type}\".")));
    }
    let category = match draft.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => ctx.catalogue.default_category(attr_type).unwrap_or("Other").to_string(),
    };
    check_type_category(ctx.catalogue, attr_type, &category)?;
    let raw = draft.value.as_deref().ok_or_else(|| invalid("value", "Mandatory field not set."))?;
    let value = crate::value::normalise(attr_type, raw).map_err(|e| invalid("value", e.0))?;
    let distribution = draft.distribution.unwrap_or(ctx.default_attribute_distribution);
    let sharing_group_id = check_distribution(ctx, "distribution", distribution, draft.sharing_group_id.unwrap_or(0), 5)?;
    let first_seen = draft.first_seen.flatten();
    let last_seen = draft.last_seen.flatten();
    check_seen(first_seen, last_seen)?;
    let mut tags: Vec<TagLink> = Vec::new();
    for t in draft.tags.iter().filter(|t| !t.deleted) {
        check_tag(ctx, &t.tag, t.local)?;
        check_relationship(&t.relationship_type)?;
        if !tags.iter().any(|x| x.tag_id == t.tag.id) {
            tags.push(link(t));
        }
    }
    let object_relation = match (object_id, draft.object_relation.as_deref().map(str::trim)) {
        (0, _) => None,
        (_, Some(r)) if !r.is_empty() => Some(r.to_string()),
        _ => return Err(invalid("object_relation", "Object attributes need an object_relation.")),
    };
    Ok(Attribute {
        id,
        uuid: draft.uuid,
        event_id: meta.id,
        object_id,
        object_relation,
        category,
        to_ids: draft.to_ids.unwrap_or_else(|| ctx.catalogue.default_to_ids(attr_type)),
        attr_type: attr_type.to_string(),
        value1: value.value1,
        value2: value.value2,
        comment: draft.comment.clone().unwrap_or_default(),
        distribution,
        sharing_group_id,
        timestamp: draft.timestamp.unwrap_or(ctx.now),
        deleted: draft.deleted.unwrap_or(false),
        disable_correlation: draft.disable_correlation.unwrap_or(false),
        first_seen,
        last_seen,
        tags,
    })
}

/// MISP's uniqueness rule for a standalone, live attribute that is being written.
pub(super) fn check_duplicate(state: &EventState, next: &Attribute) -> Result<(), DomainError> {
    if next.object_id != 0 || next.deleted {
        return Ok(());
    }
    match state.duplicate_of(next) {
        Some(dup) if dup.id != next.id => Err(invalid("value", DUPLICATE)),
        _ => Ok(()),
    }
}

/// Applies the content fields of a draft (type, category, value, to_ids, comment, disable_correlation,
/// first_seen, last_seen) to `next`, a copy of `current`, with the same validation as attribute edits.
/// Shared by attribute edits and edit proposals.
pub(super) fn patch_content(ctx: &Context<'_>, current: &Attribute, next: &mut Attribute, draft: &AttributeDraft) -> Result<(), DomainError> {
    let type_changed = draft.attr_type.as_deref().is_some_and(|t| t.trim() != current.attr_type);
    if let Some(t) = draft.attr_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        if !ctx.catalogue.is_type(t) {
            return Err(invalid("type", format!("Invalid type \"{t}\".")));
        }
        next.attr_type = t.to_string();
    }
    if let Some(c) = draft.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        next.category = c.to_string();
    }
    if !ctx.catalogue.category_allows(&next.category, &next.attr_type) {
        if draft.category.is_none() && type_changed {
            next.category = ctx.catalogue.default_category(&next.attr_type).unwrap_or("Other").to_string();
        } else {
            return Err(invalid("category", format!("The category \"{}\" is not valid for the type \"{}\".", next.category, next.attr_type)));
        }
    }
    if draft.value.is_some() || type_changed {
        let raw = draft.value.clone().unwrap_or_else(|| current.value());
        let v = crate::value::normalise(&next.attr_type, &raw).map_err(|e| invalid("value", e.0))?;
        next.value1 = v.value1;
        next.value2 = v.value2;
    }
    if let Some(v) = draft.to_ids {
        next.to_ids = v;
    }
    if let Some(v) = &draft.comment {
        next.comment = v.clone();
    }
    if let Some(v) = draft.disable_correlation {
        next.disable_correlation = v;
    }
    if let Some(v) = draft.first_seen {
        next.first_seen = v;
    }
    if let Some(v) = draft.last_seen {
        next.last_seen = v;
    }
    check_seen(next.first_seen, next.last_seen)
}

/// Applies an edit draft to an attribute. `None` when nothing changes.
fn patch_attribute(ctx: &Context<'_>, current: &Attribute, draft: &AttributeDraft) -> Result<Option<Attribute>, DomainError> {
    let mut next = current.clone();
    patch_content(ctx, current, &mut next, draft)?;
    if let Some(d) = draft.distribution {
        next.distribution = d;
        next.sharing_group_id = draft.sharing_group_id.unwrap_or(current.sharing_group_id);
    } else if let Some(sg) = draft.sharing_group_id {
        next.sharing_group_id = sg;
    }
    next.sharing_group_id = check_distribution(ctx, "distribution", next.distribution, next.sharing_group_id, 5)?;
    if next.object_id != 0 {
        if let Some(r) = draft.object_relation.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            next.object_relation = Some(r.to_string());
        }
    }
    for t in &draft.tags {
        if t.deleted {
            next.tags.retain(|x| x.tag_id != t.tag.id);
        } else if !next.tags.iter().any(|x| x.tag_id == t.tag.id) {
            check_tag(ctx, &t.tag, t.local)?;
            check_relationship(&t.relationship_type)?;
            next.tags.push(link(t));
        }
    }
    if &next == current {
        return Ok(None);
    }
    next.timestamp = ctx.now;
    Ok(Some(next))
}

/// Accumulates the changes of one decision and lets later steps see earlier ones (duplicates, ids):
/// the first read after a change takes a working copy of the state and folds the changes into it. A
/// decision that only writes (one attribute added to a large Event) never copies the Event.
pub(super) struct Work<'s> {
    base: &'s EventState,
    /// The state with `changes[..folded]` applied, once a read after a change needed it.
    copy: Option<EventState>,
    folded: usize,
    pub(super) changes: Vec<Change>,
    errors: Vec<(String, DomainError)>,
    /// A non-local change happened: the Event must be touched (timestamp, unpublished).
    touched: bool,
    meta_updated: bool,
}

/// Records about the Event that are not its content: they never move its timestamp nor unpublish it
/// (MISP: proposing, discussing, delegating, contacting leave the Event as it is).
fn is_collaboration_record(change: &Change) -> bool {
    matches!(
        change,
        Change::EventReporterContacted { .. }
            | Change::ProposalAdded(_)
            | Change::ProposalAccepted { .. }
            | Change::ProposalDiscarded { .. }
            | Change::DelegationRequested(_)
            | Change::DelegationAccepted { .. }
            | Change::DelegationDiscarded { .. }
            | Change::ThreadStarted(_)
            | Change::ThreadDeleted { .. }
            | Change::PostAdded(_)
            | Change::PostEdited { .. }
            | Change::PostDeleted { .. }
    )
}

impl<'s> Work<'s> {
    pub(super) fn new(state: &'s EventState) -> Self {
        Self { base: state, copy: None, folded: 0, changes: Vec::new(), errors: Vec::new(), touched: false, meta_updated: false }
    }

    /// The state as the changes so far leave it.
    pub(super) fn state(&mut self) -> &EventState {
        if self.folded < self.changes.len() {
            let mut state = self.copy.take().unwrap_or_else(|| self.base.clone());
            for change in &self.changes[self.folded..] {
                state = super::state::evolve(state, change);
            }
            self.folded = self.changes.len();
            self.copy = Some(state);
        }
        self.copy.as_ref().unwrap_or(self.base)
    }

    pub(super) fn push(&mut self, change: Change) {
        let local_only = is_collaboration_record(&change)
            || matches!(&change, Change::EventTagged(l) if l.local)
            || matches!(&change, Change::EventUntagged { local: true, .. })
            || matches!(&change, Change::AttributeTagged { tag, .. } if tag.local)
            || matches!(&change, Change::AttributeUntagged { local: true, .. });
        match &change {
            Change::EventUpdated(_) | Change::EventCreated(_) => self.meta_updated = true,
            Change::EventPublished { .. } | Change::EventUnpublished {} | Change::EventTouched { .. } => {}
            _ if !local_only => self.touched = true,
            _ => {}
        }
        self.changes.push(change);
    }

    fn meta(&mut self) -> Result<EventMeta, DomainError> {
        self.state().meta.clone().ok_or_else(not_found)
    }

    /// Closes the decision: MISP's unpublish-on-change (`EventTouched`) unless metadata was rewritten.
    pub(super) fn finish(mut self, ctx: &Context<'_>) -> Decision {
        if self.touched && !self.meta_updated {
            self.push(Change::EventTouched { timestamp: ctx.now });
        }
        Decision { changes: self.changes, errors: self.errors }
    }
}

/// Adds one attribute (standalone or in an object), applying the duplicate rule. `break_on_duplicate`
/// false turns a duplicate into a touch of the existing copy (MISP's `breakOnDuplicate:0`).
pub(super) fn add_attribute(
    ctx: &Context<'_>,
    work: &mut Work<'_>,
    draft: &AttributeDraft,
    object_id: i64,
    break_on_duplicate: bool,
    ids: &mut IdPool,
) -> Result<i64, DomainError> {
    let meta = work.meta()?;
    if let Some(existing) = work.state().attribute_by_uuid(&draft.uuid) {
        if !existing.deleted || existing.event_id == meta.id {
            return Err(invalid("uuid", "An attribute with this uuid already exists."));
        }
    }
    let attribute = new_attribute(ctx, &meta, draft, 0, object_id)?;
    if object_id == 0 && !attribute.deleted {
        if let Some(dup) = work.state().duplicate_of(&attribute).cloned() {
            if break_on_duplicate {
                return Err(invalid("value", DUPLICATE));
            }
            let mut touched = dup.clone();
            touched.timestamp = ctx.now.max(dup.timestamp + 1);
            touched.comment = if draft.comment.is_some() { attribute.comment } else { dup.comment.clone() };
            touched.to_ids = attribute.to_ids;
            for t in &attribute.tags {
                if !touched.tags.iter().any(|x| x.tag_id == t.tag_id) {
                    touched.tags.push(t.clone());
                }
            }
            let id = touched.id;
            work.push(Change::AttributeUpdated(touched));
            return Ok(id);
        }
    }
    let id = ids.attribute()?;
    work.push(Change::AttributeAdded(Attribute { id, ..attribute }));
    Ok(id)
}

fn check_template(ctx: &Context<'_>, object: &Object, relations: &[String]) -> Result<(), DomainError> {
    let Some(rule) = ctx.templates.find(object.template_uuid, &object.name) else { return Ok(()) };
    for r in &rule.required {
        if !relations.iter().any(|x| x == r) {
            return Err(invalid("Object", format!("Could not save object as the required attribute \"{r}\" is missing.")));
        }
    }
    if !rule.required_one_of.is_empty() && !relations.iter().any(|x| rule.required_one_of.contains(x)) {
        return Err(invalid(
            "Object",
            format!("Could not save object as at least one of the following attributes is required: {}.", rule.required_one_of.join(", ")),
        ));
    }
    Ok(())
}

fn new_object(ctx: &Context<'_>, meta: &EventMeta, draft: &ObjectDraft, id: i64) -> Result<Object, DomainError> {
    let name = draft.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).ok_or_else(|| invalid("name", "Mandatory field not set."))?;
    let distribution = draft.distribution.unwrap_or(ctx.default_attribute_distribution);
    let sharing_group_id = check_distribution(ctx, "distribution", distribution, draft.sharing_group_id.unwrap_or(0), 5)?;
    let first_seen = draft.first_seen.flatten();
    let last_seen = draft.last_seen.flatten();
    check_seen(first_seen, last_seen)?;
    Ok(Object {
        id,
        uuid: draft.uuid,
        event_id: meta.id,
        name: name.to_string(),
        meta_category: draft.meta_category.clone().unwrap_or_default(),
        description: draft.description.clone().unwrap_or_default(),
        template_uuid: draft.template_uuid,
        template_version: draft.template_version.clone().unwrap_or_default(),
        timestamp: draft.timestamp.unwrap_or(ctx.now),
        distribution,
        sharing_group_id,
        comment: draft.comment.clone().unwrap_or_default(),
        deleted: draft.deleted.unwrap_or(false),
        first_seen,
        last_seen,
    })
}

/// What makes two objects "the same" for MISP's `breakOnDuplicate`: name and attribute contents.
fn object_signature<'a>(name: &str, attributes: impl Iterator<Item = &'a Attribute>) -> (String, Vec<(Option<String>, String, String, String)>) {
    let mut items: Vec<_> = attributes
        .filter(|a| !a.deleted)
        .map(|a| (a.object_relation.clone(), a.attr_type.clone(), a.value1.clone(), a.value2.clone()))
        .collect();
    items.sort();
    (name.to_string(), items)
}

/// Adds an Object with its attributes and references.
fn add_object(
    ctx: &Context<'_>,
    work: &mut Work<'_>,
    draft: &ObjectDraft,
    break_on_duplicate: bool,
    ids: &mut IdPool,
) -> Result<i64, DomainError> {
    let meta = work.meta()?;
    if work.state().object_by_uuid(&draft.uuid).is_some() {
        return Err(invalid("uuid", "An object with this uuid already exists."));
    }
    let object = new_object(ctx, &meta, draft, 0)?;
    let relations: Vec<String> = draft.attributes.iter().filter_map(|a| a.object_relation.clone()).collect();
    check_template(ctx, &object, &relations)?;
    // Validate every attribute before recording anything: an object is added whole or not at all.
    let mut validated = Vec::with_capacity(draft.attributes.len());
    for (i, a) in draft.attributes.iter().enumerate() {
        validated.push(new_attribute(ctx, &meta, a, 0, 1).map_err(|e| prefix(&format!("Attribute {i}"), e))?);
    }
    if break_on_duplicate {
        let signature = object_signature(&object.name, validated.iter());
        let state = work.state();
        let duplicate =
            state.objects.values().filter(|o| !o.deleted).any(|o| object_signature(&o.name, state.object_attributes(o.id)) == signature);
        if duplicate {
            return Err(invalid("Object", "Duplicate object found. Since breakOnDuplicate is set the object will not be added."));
        }
    }
    let id = ids.object()?;
    work.push(Change::ObjectAdded(Object { id, ..object }));
    for a in &draft.attributes {
        add_attribute(ctx, work, a, id, true, ids)?;
    }
    for r in &draft.references {
        add_reference(ctx, work, id, r, ids)?;
    }
    Ok(id)
}

fn prefix(what: &str, e: DomainError) -> DomainError {
    match e {
        DomainError::Invalid { field, reason } => DomainError::Invalid { field: format!("{what}.{field}"), reason },
        other => other,
    }
}

fn add_reference(ctx: &Context<'_>, work: &mut Work<'_>, object_id: i64, draft: &ReferenceDraft, ids: &mut IdPool) -> Result<(), DomainError> {
    let meta = work.meta()?;
    if work.state().reference_ids.contains_key(&draft.uuid) {
        return Ok(()); // already there: references are immutable apart from deletion
    }
    let object = work.state().objects.get(&object_id).cloned().ok_or_else(|| invalid("object_id", "Invalid object."))?;
    let referenced_uuid = draft.referenced_uuid.ok_or_else(|| invalid("referenced_uuid", "Mandatory field not set."))?;
    let relationship_type = draft.relationship_type.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("related-to");
    if relationship_type.chars().count() > 191 {
        return Err(invalid("relationship_type", "Too long (191 characters at most)."));
    }
    let (referenced_id, referenced_type) = if let Some(a) = work.state().attribute_by_uuid(&referenced_uuid) {
        (a.id, 0)
    } else if let Some(o) = work.state().object_by_uuid(&referenced_uuid) {
        (o.id, 1)
    } else {
        // MISP accepts references to elements of other events (by uuid); the id stays unknown.
        (0, 1)
    };
    let id = ids.reference()?;
    work.push(Change::ReferenceAdded(ObjectReference {
        id,
        uuid: draft.uuid,
        event_id: meta.id,
        object_id,
        object_uuid: object.uuid,
        referenced_uuid,
        referenced_id,
        referenced_type,
        relationship_type: relationship_type.to_string(),
        comment: draft.comment.clone().unwrap_or_default(),
        timestamp: draft.timestamp.unwrap_or(ctx.now),
        deleted: draft.deleted.unwrap_or(false),
    }));
    Ok(())
}

pub(super) fn find_attribute<'s>(state: &'s EventState, target: &ElementRef) -> Option<&'s super::model::Attribute> {
    match target {
        ElementRef::Id(id) => state.attributes.get(id),
        ElementRef::Uuid(u) => state.attribute_by_uuid(u),
    }
}

fn find_object<'s>(state: &'s EventState, target: &ElementRef) -> Option<&'s Object> {
    match target {
        ElementRef::Id(id) => state.objects.get(id),
        ElementRef::Uuid(u) => state.object_by_uuid(u),
    }
}

/// Soft or hard deletion of an attribute (and MISP's side effect: references to it are soft-deleted).
pub(super) fn delete_attribute(ctx: &Context<'_>, work: &mut Work<'_>, id: i64, hard: bool) {
    let refs: Vec<i64> = work
        .state()
        .references
        .values()
        .filter(|r| !r.deleted && r.referenced_type == 0 && r.referenced_id == id)
        .map(|r| r.id)
        .collect();
    work.push(Change::AttributeDeleted { id, hard, timestamp: ctx.now });
    for r in refs {
        work.push(Change::ReferenceDeleted { id: r, hard: false, timestamp: ctx.now });
    }
}

fn delete_object(ctx: &Context<'_>, work: &mut Work<'_>, id: i64, hard: bool) {
    let attributes: Vec<(i64, bool)> = work.state().object_attributes(id).map(|a| (a.id, a.deleted)).collect();
    for (aid, deleted) in attributes {
        if hard || !deleted {
            work.push(Change::AttributeDeleted { id: aid, hard, timestamp: ctx.now });
        }
    }
    let refs: Vec<i64> = work.state().references.values().filter(|r| r.object_id == id && (hard || !r.deleted)).map(|r| r.id).collect();
    for r in refs {
        work.push(Change::ReferenceDeleted { id: r, hard, timestamp: ctx.now });
    }
    // References from other objects to this object (or to its attributes) go with it (soft).
    let mut targets: Vec<uuid::Uuid> = work.state().object_attributes(id).map(|a| a.uuid).collect();
    if let Some(o) = work.state().objects.get(&id) {
        targets.push(o.uuid);
    }
    let inbound: Vec<i64> = work
        .state()
        .references
        .values()
        .filter(|r| r.object_id != id && !r.deleted && targets.contains(&r.referenced_uuid))
        .map(|r| r.id)
        .collect();
    for r in inbound {
        work.push(Change::ReferenceDeleted { id: r, hard: false, timestamp: ctx.now });
    }
    work.push(Change::ObjectDeleted { id, hard, timestamp: ctx.now });
}

/// Merges an attribute draft into the event during an edit (update or add).
fn merge_attribute(
    ctx: &Context<'_>,
    work: &mut Work<'_>,
    draft: &AttributeDraft,
    object_id: i64,
    ids: &mut IdPool,
) -> Result<(), DomainError> {
    let state = work.state();
    let existing = state.attribute_by_uuid(&draft.uuid).or_else(|| draft.id.and_then(|id| state.attributes.get(&id))).cloned();
    match existing {
        Some(current) => {
            if draft.timestamp.is_some_and(|t| t <= current.timestamp) {
                return Ok(()); // unchanged on the client's side
            }
            if draft.deleted == Some(true) && !current.deleted {
                delete_attribute(ctx, work, current.id, false);
                return Ok(());
            }
            if let Some(next) = patch_attribute(ctx, &current, draft)? {
                check_duplicate(work.state(), &next)?;
                work.push(Change::AttributeUpdated(next));
            }
            Ok(())
        }
        None => add_attribute(ctx, work, draft, object_id, true, ids).map(|_| ()),
    }
}

fn merge_object(ctx: &Context<'_>, work: &mut Work<'_>, draft: &ObjectDraft, ids: &mut IdPool) -> Result<(), DomainError> {
    let state = work.state();
    let existing = state.object_by_uuid(&draft.uuid).or_else(|| draft.id.and_then(|id| state.objects.get(&id))).cloned();
    let Some(current) = existing else {
        add_object(ctx, work, draft, false, ids)?;
        return Ok(());
    };
    if draft.timestamp.is_some_and(|t| t <= current.timestamp) {
        return Ok(());
    }
    if draft.deleted == Some(true) {
        if !current.deleted {
            delete_object(ctx, work, current.id, false);
        }
        return Ok(());
    }
    let mut next = current.clone();
    if let Some(v) = &draft.comment {
        next.comment = v.clone();
    }
    if let Some(d) = draft.distribution {
        next.distribution = d;
        next.sharing_group_id = draft.sharing_group_id.unwrap_or(current.sharing_group_id);
    }
    next.sharing_group_id = check_distribution(ctx, "distribution", next.distribution, next.sharing_group_id, 5)?;
    if let Some(v) = draft.first_seen {
        next.first_seen = v;
    }
    if let Some(v) = draft.last_seen {
        next.last_seen = v;
    }
    check_seen(next.first_seen, next.last_seen)?;
    if let Some(v) = &draft.meta_category {
        next.meta_category = v.clone();
    }
    if let Some(v) = &draft.description {
        next.description = v.clone();
    }
    if let Some(v) = &draft.template_version {
        next.template_version = v.clone();
    }
    let before = work.changes.len();
    for a in &draft.attributes {
        merge_attribute(ctx, work, a, current.id, ids)?;
    }
    for r in &draft.references {
        if r.deleted == Some(true) {
            if let Some(&rid) = work.state().reference_ids.get(&r.uuid) {
                work.push(Change::ReferenceDeleted { id: rid, hard: false, timestamp: ctx.now });
            }
        } else {
            add_reference(ctx, work, current.id, r, ids)?;
        }
    }
    let relations: Vec<String> =
        work.state().object_attributes(current.id).filter(|a| !a.deleted).filter_map(|a| a.object_relation.clone()).collect();
    check_template(ctx, &next, &relations)?;
    if next != current || work.changes.len() > before {
        next.timestamp = ctx.now;
        work.push(Change::ObjectUpdated(next));
    }
    Ok(())
}

fn merge_event_tags(ctx: &Context<'_>, work: &mut Work<'_>, tags: &[TagDraft]) -> Result<(), DomainError> {
    for t in tags {
        let attached = work.state().tags.iter().find(|x| x.tag_id == t.tag.id).cloned();
        match (t.deleted, attached) {
            (true, Some(link)) => work.push(Change::EventUntagged { tag_id: t.tag.id, local: link.local }),
            (false, None) => {
                check_tag(ctx, &t.tag, t.local)?;
                check_relationship(&t.relationship_type)?;
                work.push(Change::EventTagged(link(t)));
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn validate_meta(ctx: &Context<'_>, meta: &EventMeta) -> Result<(), DomainError> {
    check_meta_fields(meta)?;
    check_distribution(ctx, "distribution", meta.distribution, meta.sharing_group_id, 4)?;
    Ok(())
}

/// An Event's own fields, whoever writes them (info, levels, date, extends).
pub(super) fn check_meta_fields(meta: &EventMeta) -> Result<(), DomainError> {
    if meta.info.trim().is_empty() {
        return Err(invalid("info", "Info cannot be empty."));
    }
    if !(1..=4).contains(&meta.threat_level_id) {
        return Err(invalid("threat_level_id", "Options: 1, 2, 3, 4."));
    }
    if meta.analysis > 2 {
        return Err(invalid("analysis", "Options: 0, 1, 2."));
    }
    if chrono::NaiveDate::parse_from_str(&meta.date, "%Y-%m-%d").is_err() {
        return Err(invalid("date", "Invalid date (expected YYYY-MM-DD)."));
    }
    if !meta.extends_uuid.is_empty() && Uuid::parse_str(&meta.extends_uuid).is_err() {
        return Err(invalid("extends_uuid", "Invalid UUID."));
    }
    Ok(())
}

/// Decides an Event command.
///
/// # Errors
/// NotFound for a missing or invisible Event; Forbidden for missing rights (with MISP's messages);
/// Invalid for bad input (nothing is written).
pub fn decide(state: &EventState, ctx: &Context<'_>, command: EventCommand) -> Result<Decision, DomainError> {
    match command {
        EventCommand::Create { id, draft, mut ids } => {
            if !ctx.role.perm_add {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            if state.meta.is_some() {
                return Err(DomainError::AlreadyExists(
                    "Event already exists, if you would like to edit it, use the url in the location header.".into(),
                ));
            }
            let distribution = draft.distribution.unwrap_or(ctx.default_event_distribution);
            let mut meta = EventMeta {
                id,
                uuid: draft.uuid,
                info: draft.info.clone().unwrap_or_default(),
                date: draft.date.clone().unwrap_or_else(|| ctx.today.clone()),
                threat_level_id: draft.threat_level_id.unwrap_or(ctx.default_threat_level),
                analysis: draft.analysis.unwrap_or(0),
                distribution,
                sharing_group_id: if distribution == 4 { draft.sharing_group_id.unwrap_or(0) } else { 0 },
                org_id: ctx.actor.org_id,
                orgc_id: draft.orgc_id.filter(|_| ctx.role.perm_sync).unwrap_or(ctx.actor.org_id),
                user_id: ctx.actor.user_id,
                published: false,
                publish_timestamp: 0,
                timestamp: draft.timestamp.unwrap_or(ctx.now),
                sighting_timestamp: 0,
                proposal_email_lock: false,
                locked: ctx.role.perm_sync && draft.locked.unwrap_or(false),
                disable_correlation: draft.disable_correlation.unwrap_or(false),
                extends_uuid: draft.extends_uuid.clone().unwrap_or_default(),
            };
            validate_meta(ctx, &meta)?;
            let publish = draft.published == Some(true) && can_publish(ctx, &meta);
            meta.published = false;
            let mut work = Work::new(state);
            work.push(Change::EventCreated(meta));
            for t in draft.tags.iter().filter(|t| !t.deleted) {
                if work.state().tags.iter().any(|x| x.tag_id == t.tag.id) {
                    continue;
                }
                check_tag(ctx, &t.tag, t.local)?;
                check_relationship(&t.relationship_type)?;
                work.push(Change::EventTagged(link(t)));
            }
            // Invalid values refuse the whole Event (nothing is written); duplicates are skipped and
            // reported, as MISP does.
            for (i, a) in draft.attributes.iter().enumerate() {
                match add_attribute(ctx, &mut work, a, 0, true, &mut ids) {
                    Ok(_) => {}
                    Err(DomainError::Invalid { reason, .. }) if reason == DUPLICATE => {
                        work.errors.push((format!("Attribute.{i}"), invalid("value", DUPLICATE)));
                    }
                    Err(e) => return Err(prefix(&format!("Attribute {i}"), e)),
                }
            }
            for (i, o) in draft.objects.iter().enumerate() {
                add_object(ctx, &mut work, o, false, &mut ids).map_err(|e| prefix(&format!("Object {i}"), e))?;
            }
            if publish {
                work.push(Change::EventPublished { publish_timestamp: draft.publish_timestamp.filter(|t| *t > 0).unwrap_or(ctx.now) });
            }
            Ok(Decision { changes: work.changes, errors: work.errors })
        }
        EventCommand::Edit { draft, mut ids } => {
            let meta = visible_meta(state, ctx)?.clone();
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if ctx.role.perm_sync && !ctx.role.perm_site_admin && draft.timestamp.is_some_and(|t| t <= meta.timestamp) {
                return Err(DomainError::Forbidden(NOT_NEWER.into()));
            }
            let mut work = Work::new(state);
            if !draft.timestamp.is_some_and(|t| t <= meta.timestamp) {
                let mut next = meta.clone();
                if let Some(v) = &draft.info {
                    next.info = v.clone();
                }
                if let Some(v) = &draft.date {
                    next.date = v.clone();
                }
                if let Some(v) = draft.threat_level_id {
                    next.threat_level_id = v;
                }
                if let Some(v) = draft.analysis {
                    next.analysis = v;
                }
                if let Some(d) = draft.distribution {
                    next.distribution = d;
                }
                if next.distribution == 4 {
                    next.sharing_group_id = draft.sharing_group_id.unwrap_or(meta.sharing_group_id);
                } else {
                    next.sharing_group_id = 0;
                }
                if let Some(v) = draft.disable_correlation {
                    next.disable_correlation = v;
                }
                if let Some(v) = &draft.extends_uuid {
                    next.extends_uuid = v.clone();
                }
                validate_meta(ctx, &next)?;
                if next != meta {
                    // A peer's push keeps the timestamp it carries (the copies stay comparable).
                    next.timestamp = draft.timestamp.filter(|_| ctx.role.perm_sync).unwrap_or(ctx.now);
                    next.published = false;
                    work.push(Change::EventUpdated(next));
                }
            }
            merge_event_tags(ctx, &mut work, &draft.tags)?;
            for (i, a) in draft.attributes.iter().enumerate() {
                match merge_attribute(ctx, &mut work, a, 0, &mut ids) {
                    Ok(()) => {}
                    Err(DomainError::Invalid { reason, .. }) if reason == DUPLICATE => {
                        work.errors.push((format!("Attribute.{i}"), invalid("value", DUPLICATE)));
                    }
                    Err(e) => return Err(prefix(&format!("Attribute {i}"), e)),
                }
            }
            for (i, o) in draft.objects.iter().enumerate() {
                merge_object(ctx, &mut work, o, &mut ids).map_err(|e| prefix(&format!("Object {i}"), e))?;
            }
            let publish = draft.published == Some(true) && can_publish(ctx, &meta);
            let mut decision = work.finish(ctx);
            if publish && (!meta.published || !decision.changes.is_empty()) {
                decision.changes.push(Change::EventPublished { publish_timestamp: ctx.now });
            }
            Ok(decision)
        }
        EventCommand::Delete => {
            let meta = visible_meta(state, ctx)?;
            if !can_modify(ctx, meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            Ok(Decision { changes: vec![Change::EventDeleted { id: meta.id }], errors: vec![] })
        }
        EventCommand::Publish => {
            let meta = visible_meta(state, ctx)?;
            if !can_publish(ctx, meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            Ok(Decision { changes: vec![Change::EventPublished { publish_timestamp: ctx.now }], errors: vec![] })
        }
        EventCommand::Unpublish => {
            let meta = visible_meta(state, ctx)?;
            if !can_modify(ctx, meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            if !meta.published {
                return Ok(Decision::default());
            }
            Ok(Decision { changes: vec![Change::EventUnpublished {}], errors: vec![] })
        }
        EventCommand::AddAttributes { drafts, break_on_duplicate, mut ids } => {
            let meta = visible_meta(state, ctx)?.clone();
            if !ctx.role.perm_add || !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            let mut work = Work::new(state);
            let single = drafts.len() == 1;
            for (i, d) in drafts.iter().enumerate() {
                if let Err(e) = add_attribute(ctx, &mut work, d, 0, break_on_duplicate, &mut ids) {
                    if single {
                        return Err(e);
                    }
                    work.errors.push((format!("attribute_{i}"), e));
                }
            }
            Ok(work.finish(ctx))
        }
        EventCommand::EditAttribute { target, draft } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_attribute(state, &target).cloned().ok_or_else(|| DomainError::NotFound("Invalid attribute".into()))?;
            if !element_visible(ctx, state, &meta, &current) {
                return Err(DomainError::NotFound("Invalid attribute".into()));
            }
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if draft.timestamp.is_some_and(|t| t <= current.timestamp) {
                return Err(DomainError::Conflict(
                    "Attribute could not be saved: Attribute in the request not newer than the local copy.".into(),
                ));
            }
            let mut work = Work::new(state);
            match draft.deleted {
                Some(true) if !current.deleted => delete_attribute(ctx, &mut work, current.id, false),
                Some(false) if current.deleted => {
                    check_duplicate(state, &Attribute { deleted: false, ..current.clone() })?;
                    work.push(Change::AttributeRestored { id: current.id, timestamp: ctx.now });
                }
                _ => {}
            }
            let base = work.state().attributes.get(&current.id).cloned().unwrap_or(current);
            if let Some(next) = patch_attribute(ctx, &base, &AttributeDraft { deleted: None, ..draft })? {
                check_duplicate(work.state(), &next)?;
                work.push(Change::AttributeUpdated(next));
            }
            touch_object_of(ctx, &mut work, base.object_id);
            Ok(work.finish(ctx))
        }
        EventCommand::DeleteAttribute { target, hard } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_attribute(state, &target).cloned().ok_or_else(|| DomainError::NotFound("Invalid attribute".into()))?;
            if !element_visible(ctx, state, &meta, &current) {
                return Err(DomainError::NotFound("Invalid attribute".into()));
            }
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if current.deleted && !hard {
                return Ok(Decision::default());
            }
            let mut work = Work::new(state);
            delete_attribute(ctx, &mut work, current.id, hard);
            Ok(work.finish(ctx))
        }
        EventCommand::RestoreAttribute { target } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_attribute(state, &target).cloned().ok_or_else(|| DomainError::NotFound("Invalid attribute".into()))?;
            if !element_visible(ctx, state, &meta, &current) {
                return Err(DomainError::NotFound("Invalid attribute".into()));
            }
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if !current.deleted {
                return Ok(Decision::default());
            }
            let mut probe = current.clone();
            probe.deleted = false;
            if probe.object_id == 0 && state.duplicate_of(&probe).is_some() {
                return Err(invalid("value", DUPLICATE));
            }
            let mut work = Work::new(state);
            work.push(Change::AttributeRestored { id: current.id, timestamp: ctx.now });
            Ok(work.finish(ctx))
        }
        EventCommand::AddObject { draft, break_on_duplicate, mut ids } => {
            let meta = visible_meta(state, ctx)?.clone();
            if !ctx.role.perm_add || !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            let mut work = Work::new(state);
            add_object(ctx, &mut work, &draft, break_on_duplicate, &mut ids)?;
            Ok(work.finish(ctx))
        }
        EventCommand::EditObject { target, mut draft, mut ids } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_object(state, &target).cloned().ok_or_else(|| DomainError::NotFound("Invalid object".into()))?;
            if !acl::object_visible(ctx.viewer, &event_access(state, &meta), &current.access(), &ctx.access) {
                return Err(DomainError::NotFound("Invalid object".into()));
            }
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            draft.uuid = current.uuid;
            draft.id = Some(current.id);
            let mut work = Work::new(state);
            merge_object(ctx, &mut work, &draft, &mut ids)?;
            Ok(work.finish(ctx))
        }
        EventCommand::DeleteObject { target, hard } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_object(state, &target).cloned().ok_or_else(|| DomainError::NotFound("Invalid object".into()))?;
            if !acl::object_visible(ctx.viewer, &event_access(state, &meta), &current.access(), &ctx.access) {
                return Err(DomainError::NotFound("Invalid object".into()));
            }
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if current.deleted && !hard {
                return Ok(Decision::default());
            }
            let mut work = Work::new(state);
            delete_object(ctx, &mut work, current.id, hard);
            Ok(work.finish(ctx))
        }
        EventCommand::AddReference { object, draft, mut ids } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = find_object(state, &object).cloned().ok_or_else(|| DomainError::NotFound("Invalid object".into()))?;
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            let mut work = Work::new(state);
            add_reference(ctx, &mut work, current.id, &draft, &mut ids)?;
            Ok(work.finish(ctx))
        }
        EventCommand::DeleteReference { target, hard } => {
            let meta = visible_meta(state, ctx)?.clone();
            let current = match &target {
                ElementRef::Id(id) => state.references.get(id),
                ElementRef::Uuid(u) => state.reference_ids.get(u).and_then(|id| state.references.get(id)),
            }
            .cloned()
            .ok_or_else(|| DomainError::NotFound("Invalid object reference".into()))?;
            if !can_modify(ctx, &meta) {
                return Err(DomainError::Forbidden(NO_PERMISSION.into()));
            }
            if current.deleted && !hard {
                return Ok(Decision::default());
            }
            let mut work = Work::new(state);
            work.push(Change::ReferenceDeleted { id: current.id, hard, timestamp: ctx.now });
            Ok(work.finish(ctx))
        }
        EventCommand::Tag { target, tag, local, relationship_type } => {
            let meta = visible_meta(state, ctx).map_err(|_| DomainError::NotFound("Invalid Target.".into()))?.clone();
            if !(ctx.role.perm_tagger || ctx.role.perm_site_admin) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            // Local tags: host-organisation users may add them to any Event they can see.
            if !(can_modify(ctx, &meta) || (local && ctx.actor.org_id == ctx.host_org_id)) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            check_tag(ctx, &tag, local)?;
            check_relationship(&relationship_type)?;
            let new_link = TagLink { tag_id: tag.id, local, relationship_type };
            let mut work = Work::new(state);
            match target {
                TagTarget::Event => {
                    if state.tags.iter().any(|t| t == &new_link) {
                        return Ok(Decision::default());
                    }
                    work.push(Change::EventTagged(new_link));
                }
                TagTarget::Attribute(r) => {
                    let a = find_attribute(state, &r).cloned().ok_or_else(|| DomainError::NotFound("Invalid Target.".into()))?;
                    if !element_visible(ctx, state, &meta, &a) {
                        return Err(DomainError::NotFound("Invalid Target.".into()));
                    }
                    if a.tags.iter().any(|t| t == &new_link) {
                        return Ok(Decision::default());
                    }
                    work.push(Change::AttributeTagged { attribute_id: a.id, tag: new_link.clone() });
                    if !new_link.local {
                        touch_attribute(ctx, &mut work, a.id);
                    }
                }
            }
            Ok(work.finish(ctx))
        }
        EventCommand::Untag { target, tag_id } => {
            let meta = visible_meta(state, ctx).map_err(|_| DomainError::NotFound("Invalid Target.".into()))?.clone();
            if !(ctx.role.perm_tagger || ctx.role.perm_site_admin) {
                return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
            }
            let mut work = Work::new(state);
            match target {
                TagTarget::Event => {
                    let link = state.tags.iter().find(|t| t.tag_id == tag_id).cloned().ok_or_else(|| DomainError::NotFound("Invalid Tag.".into()))?;
                    if !(can_modify(ctx, &meta) || (link.local && ctx.actor.org_id == ctx.host_org_id)) {
                        return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
                    }
                    work.push(Change::EventUntagged { tag_id, local: link.local });
                }
                TagTarget::Attribute(r) => {
                    let a = find_attribute(state, &r).cloned().ok_or_else(|| DomainError::NotFound("Invalid Target.".into()))?;
                    let link = a.tags.iter().find(|t| t.tag_id == tag_id).cloned().ok_or_else(|| DomainError::NotFound("Invalid Tag.".into()))?;
                    if !(can_modify(ctx, &meta) || (link.local && ctx.actor.org_id == ctx.host_org_id)) {
                        return Err(DomainError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
                    }
                    work.push(Change::AttributeUntagged { attribute_id: a.id, tag_id, local: link.local });
                    if !link.local {
                        touch_attribute(ctx, &mut work, a.id);
                    }
                }
            }
            Ok(work.finish(ctx))
        }
        EventCommand::ProposeAttribute { id, draft } => collaboration::propose_attribute(state, ctx, id, &draft),
        EventCommand::ProposeEdit { id, target, draft } => collaboration::propose_edit(state, ctx, id, &target, &draft),
        EventCommand::ProposeDeletion { id, target } => collaboration::propose_deletion(state, ctx, id, &target),
        EventCommand::AcceptProposal { id, mut ids } => collaboration::accept_proposal(state, ctx, id, &mut ids),
        EventCommand::DiscardProposal { id } => collaboration::discard_proposal(state, ctx, id),
        EventCommand::RequestDelegation { id, org_id, distribution, sharing_group_id, message } => {
            collaboration::request_delegation(state, ctx, id, org_id, distribution, sharing_group_id, message)
        }
        EventCommand::AcceptDelegation { id } => collaboration::accept_delegation(state, ctx, id),
        EventCommand::DiscardDelegation { id } => collaboration::discard_delegation(state, ctx, id),
        EventCommand::AddPost { id, thread_id, contents, reply_to } => collaboration::add_post(state, ctx, id, thread_id, &contents, reply_to),
        EventCommand::EditPost { id, contents } => collaboration::edit_post(state, ctx, id, &contents),
        EventCommand::DeletePost { id } => collaboration::delete_post(state, ctx, id),
        EventCommand::ContactReporter { message, creator_only } => collaboration::contact_reporter(state, ctx, &message, creator_only),
    }
}

/// Tagging an attribute changes it: its timestamp moves (an `AttributeUpdated` with only that).
fn touch_attribute(ctx: &Context<'_>, work: &mut Work<'_>, id: i64) {
    if let Some(mut a) = work.state().attributes.get(&id).cloned() {
        if a.timestamp != ctx.now {
            a.timestamp = ctx.now;
            work.push(Change::AttributeUpdated(a));
        }
    }
}

/// Editing an object's attribute bumps the object's timestamp (MISP).
pub(super) fn touch_object_of(ctx: &Context<'_>, work: &mut Work<'_>, object_id: i64) {
    if object_id == 0 || !work.touched {
        return;
    }
    if let Some(mut o) = work.state().objects.get(&object_id).cloned() {
        if o.timestamp != ctx.now {
            o.timestamp = ctx.now;
            work.push(Change::ObjectUpdated(o));
        }
    }
}

/// Whether an attribute (and its object) is visible to the actor inside a visible Event.
pub fn element_visible(ctx: &Context<'_>, state: &EventState, meta: &EventMeta, a: &Attribute) -> bool {
    let object = (a.object_id != 0).then(|| state.objects.get(&a.object_id).map(|o| o.access())).flatten();
    acl::attribute_visible(ctx.viewer, &event_access(state, meta), &a.access(), object.as_ref(), &ctx.access)
}
