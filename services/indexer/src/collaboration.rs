//! Collaboration read models (migrations/0009_collaboration.sql): `rm.shadow_attributes` (proposals,
//! pending and resolved), `rm.event_delegations` and the pending delegate on `rm.events`,
//! `rm.threads` / `rm.posts`, `rm.sightings` and `rm.events.sighting_timestamp`.
//!
//! Every statement is an idempotent upsert or a keyed update, so re-applying a change is harmless.
//! Reporter contacts have no table: the change itself is the record, delivered by the notifier.

use cairn_domain::Change;
use cairn_eventlog::projector::ApplyError;
use deadpool_postgres::Transaction;
use uuid::Uuid;

/// Recounts a thread's live posts and moves its `date_modified`.
async fn recount_posts(tx: &Transaction<'_>, thread_id: i64, date_modified: i64) -> Result<(), ApplyError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.threads t SET post_count = (SELECT count(*) FROM rm.posts p WHERE p.thread_id = t.id AND NOT p.deleted), \
             date_modified = GREATEST(t.date_modified, $2) WHERE t.id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&thread_id, &date_modified]).await?;
    Ok(())
}

/// Marks a pending proposal resolved.
async fn resolve_proposal(
    tx: &Transaction<'_>,
    id: i64,
    status: &str,
    attribute_id: Option<i64>,
    by_org_id: i64,
    by_user_id: i64,
    timestamp: i64,
) -> Result<(), ApplyError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.shadow_attributes SET deleted = true, status = $2, attribute_id = $3, resolved_at = $4, \
             resolved_by_org_id = $5, resolved_by_user_id = $6 WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id, &status, &attribute_id, &timestamp, &by_org_id, &by_user_id]).await?;
    Ok(())
}

/// Marks a pending delegation resolved and takes its organisation off the Event's row.
async fn resolve_delegation(tx: &Transaction<'_>, id: i64, status: &str, by_org_id: i64, by_user_id: i64, timestamp: i64) -> Result<(), ApplyError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE rm.event_delegations SET status = $2, resolved_at = $3, resolved_by_org_id = $4, resolved_by_user_id = $5 \
             WHERE id = $1 RETURNING event_id",
        )
        .await?;
    if let Some(row) = tx.query_opt(&stmt, &[&id, &status, &timestamp, &by_org_id, &by_user_id]).await? {
        let event_id: i64 = row.get(0);
        tx.execute(
            "UPDATE rm.events e SET delegate_org_id = COALESCE((SELECT d.org_id FROM rm.event_delegations d \
             WHERE d.event_id = e.id AND d.status = 'pending'), 0) WHERE e.id = $1",
            &[&event_id],
        )
        .await?;
    }
    Ok(())
}

/// Applies one change to the collaboration tables (`stream_id`: the Event's uuid for Event changes,
/// its sightings stream for sightings). Other changes are ignored.
///
/// # Errors
/// Database errors.
pub async fn apply(tx: &Transaction<'_>, stream_id: Uuid, change: &Change) -> Result<(), ApplyError> {
    match change {
        Change::EventDeleted { id } => {
            for table in ["rm.shadow_attributes", "rm.event_delegations", "rm.posts", "rm.threads", "rm.sightings"] {
                tx.execute(&format!("DELETE FROM {table} WHERE event_id = $1"), &[id]).await?;
            }
        }
        Change::ProposalAdded(p) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO rm.shadow_attributes (id, uuid, event_id, event_uuid, old_id, event_org_id, category, type, value1, \
                     value2, to_ids, comment, disable_correlation, first_seen, last_seen, proposal_to_delete, org_id, user_id, email, \
                     timestamp, base_revision, base_timestamp) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .await?;
            let base_revision = i64::try_from(p.base_revision).unwrap_or(i64::MAX);
            tx.execute(
                &stmt,
                &[
                    &p.id,
                    &p.uuid,
                    &p.event_id,
                    &p.event_uuid,
                    &p.old_id,
                    &p.event_org_id,
                    &p.category,
                    &p.attr_type,
                    &p.value1,
                    &p.value2,
                    &p.to_ids,
                    &p.comment,
                    &p.disable_correlation,
                    &p.first_seen,
                    &p.last_seen,
                    &p.proposal_to_delete,
                    &p.org_id,
                    &p.user_id,
                    &p.email,
                    &p.timestamp,
                    &base_revision,
                    &p.base_timestamp,
                ],
            )
            .await?;
        }
        Change::ProposalAccepted { id, attribute_id, by_org_id, by_user_id, timestamp } => {
            resolve_proposal(tx, *id, "accepted", Some(*attribute_id), *by_org_id, *by_user_id, *timestamp).await?;
        }
        Change::ProposalDiscarded { id, by_org_id, by_user_id, timestamp } => {
            resolve_proposal(tx, *id, "discarded", None, *by_org_id, *by_user_id, *timestamp).await?;
        }
        Change::DelegationRequested(d) => {
            tx.execute(
                "INSERT INTO rm.event_delegations (id, event_id, event_uuid, org_id, requester_org_id, requester_user_id, message, \
                 distribution, sharing_group_id, timestamp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
                &[
                    &d.id,
                    &d.event_id,
                    &stream_id,
                    &d.org_id,
                    &d.requester_org_id,
                    &d.requester_user_id,
                    &d.message,
                    &i16::from(d.distribution),
                    &d.sharing_group_id,
                    &d.timestamp,
                ],
            )
            .await?;
            tx.execute("UPDATE rm.events SET delegate_org_id = $2 WHERE id = $1", &[&d.event_id, &d.org_id]).await?;
        }
        Change::DelegationAccepted { id, by_org_id, by_user_id, timestamp } => {
            resolve_delegation(tx, *id, "accepted", *by_org_id, *by_user_id, *timestamp).await?;
        }
        Change::DelegationDiscarded { id, by_org_id, by_user_id, timestamp } => {
            resolve_delegation(tx, *id, "discarded", *by_org_id, *by_user_id, *timestamp).await?;
        }
        Change::ThreadStarted(t) => {
            tx.execute(
                "INSERT INTO rm.threads (id, event_id, event_uuid, title, org_id, user_id, date_created, date_modified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (id) DO NOTHING",
                &[&t.id, &t.event_id, &stream_id, &t.title, &t.org_id, &t.user_id, &t.date_created],
            )
            .await?;
        }
        Change::ThreadDeleted { id, timestamp } => {
            tx.execute("UPDATE rm.threads SET deleted = true, date_modified = GREATEST(date_modified, $2) WHERE id = $1", &[id, timestamp])
                .await?;
        }
        Change::PostAdded(p) => {
            tx.execute(
                "INSERT INTO rm.posts (id, thread_id, event_id, user_id, org_id, contents, post_id, date_created, date_modified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                &[&p.id, &p.thread_id, &p.event_id, &p.user_id, &p.org_id, &p.contents, &p.post_id, &p.date_created, &p.date_modified],
            )
            .await?;
            recount_posts(tx, p.thread_id, p.date_created).await?;
        }
        Change::PostEdited { id, contents, date_modified } => {
            if let Some(row) = tx
                .query_opt("UPDATE rm.posts SET contents = $2, date_modified = $3 WHERE id = $1 RETURNING thread_id", &[id, contents, date_modified])
                .await?
            {
                recount_posts(tx, row.get(0), *date_modified).await?;
            }
        }
        Change::PostDeleted { id, timestamp, .. } => {
            if let Some(row) = tx.query_opt("UPDATE rm.posts SET deleted = true WHERE id = $1 RETURNING thread_id", &[id]).await? {
                recount_posts(tx, row.get(0), *timestamp).await?;
            }
        }
        Change::SightingAdded(s) => {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO rm.sightings (id, uuid, event_id, event_uuid, attribute_id, attribute_uuid, org_id, user_id, type, \
                     source, date_sighting) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &s.id,
                    &s.uuid,
                    &s.event_id,
                    &s.event_uuid,
                    &s.attribute_id,
                    &s.attribute_uuid,
                    &s.org_id,
                    &s.user_id,
                    &i16::from(s.sighting_type),
                    &s.source,
                    &s.date_sighting,
                ],
            )
            .await?;
            let stmt = tx.prepare_cached("UPDATE rm.events SET sighting_timestamp = GREATEST(sighting_timestamp, $2) WHERE id = $1").await?;
            tx.execute(&stmt, &[&s.event_id, &s.date_sighting]).await?;
        }
        Change::SightingDeleted { id, .. } => {
            tx.execute("DELETE FROM rm.sightings WHERE id = $1", &[id]).await?;
        }
        _ => {}
    }
    Ok(())
}
