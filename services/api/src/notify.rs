//! Collaboration notifications: who should hear about a proposal, a post, a delegation or a reporter
//! contact ([`cairn_domain::event::recipients`]), published on each recipient organisation's NATS
//! subject `cairn.notify.org.<org uuid>` (a user recipient goes to their organisation's subject,
//! addressed to them). No mail server is needed; an SMTP bridge can subscribe.

use crate::error::ApiError;
use crate::state::AppState;
use cairn_domain::Change;
use cairn_domain::event::{self, EventState, Recipient};
use serde_json::json;

/// One message to deliver.
#[derive(Clone, Debug)]
pub struct Notification {
    pub recipient: Recipient,
    pub change: Change,
}

/// The notifications `changes` cause, folding them over `before` (each is judged with the state
/// just before it), leaving out the author's own.
pub fn for_changes(before: &EventState, changes: &[Change], author_user_id: i64) -> Vec<Notification> {
    // Only collaboration records notify; skip the fold (a clone of the Event) for everything else.
    let collaborative = changes.iter().any(|c| {
        matches!(
            c,
            Change::ProposalAdded(_)
                | Change::ProposalAccepted { .. }
                | Change::ProposalDiscarded { .. }
                | Change::PostAdded(_)
                | Change::DelegationRequested(_)
                | Change::DelegationAccepted { .. }
                | Change::DelegationDiscarded { .. }
                | Change::EventReporterContacted { .. }
        )
    });
    if !collaborative {
        return Vec::new();
    }
    let mut state = before.clone();
    let mut out = Vec::new();
    for c in changes {
        for recipient in event::recipients(&state, c) {
            if recipient != Recipient::User(author_user_id) {
                out.push(Notification { recipient, change: c.clone() });
            }
        }
        state = event::evolve(state, c);
    }
    out
}

/// Publishes notifications (best effort: the change is recorded either way, and logged).
pub async fn publish(state: &AppState, event_uuid: uuid::Uuid, actor: &cairn_domain::Actor, notifications: Vec<Notification>) -> Result<(), ApiError> {
    let Some(nats) = &state.nats else { return Ok(()) };
    if notifications.is_empty() {
        return Ok(());
    }
    let client = state.pool.get().await?;
    for n in notifications {
        let (org_id, user_id) = match n.recipient {
            Recipient::Organisation(o) => (o, None),
            Recipient::User(u) => {
                let Some(r) = client.query_opt("SELECT org_id FROM rm.users WHERE id = $1", &[&u]).await? else { continue };
                (r.get::<_, i64>(0), Some(u))
            }
        };
        let Some(org) = client.query_opt("SELECT uuid FROM rm.organisations WHERE id = $1", &[&org_id]).await? else { continue };
        let org_uuid: uuid::Uuid = org.get(0);
        let record = n.change.to_record();
        let payload = json!({
            "type": format!("{}.v{}", record.change_type, record.schema_version),
            "event_uuid": event_uuid,
            "user_id": user_id,
            "by": {"user_id": actor.user_id, "org_id": actor.org_id, "email": actor.email},
            "data": record.payload,
        });
        let subject = format!("cairn.notify.org.{org_uuid}");
        if let Err(e) = nats.publish(subject, payload.to_string().into()).await {
            tracing::warn!(error = %e, "notification not published");
        }
    }
    Ok(())
}
