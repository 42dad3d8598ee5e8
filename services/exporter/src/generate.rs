//! Regenerates stale cached exports (`exp.exports` rows with a `dirty_position`), oldest first, one
//! at a time: the view's restSearch ([`cairn_api::exports::Export::params`]) streamed into a
//! temporary file that replaces the old one atomically, so a download never sees half a file.
//!
//! A stale export waits [`SPACING`] times its last generation's duration after that generation: under
//! constant writes a large export is rewritten every few multiples of what it costs, a small one at once.
//! A requested one (`jobs/cache`: `dirty_position` 0) does not wait.
//!
//! A row is claimed (its `dirty_position` cleared) before generating: a change that arrives meanwhile
//! marks it again and it is regenerated once more; a failed generation puts the mark back.

use crate::feeds::DEFAULT_NIDS_SID;
use cairn_api::exports::Export;
use cairn_api::search::{self, Requester, stream};
use cairn_api::state::AppState;
use cairn_domain::acl::Viewer;
use cairn_platform::Shutdown;
use cairn_platform::metrics::Registry;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// A stale export is regenerated no sooner than this many times its last generation's duration after it.
pub const SPACING: i64 = 4;

/// Regenerates until shutdown.
pub async fn run(state: AppState, shutdown: Shutdown) {
    let generated = Registry::global().counter("cairn_exporter_exports_generated_total", "Cached export files written.", &[]);
    while !shutdown.is_triggered() {
        match next(&state).await {
            Ok(true) => {
                generated.inc();
                continue;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cached export generation"),
        }
        // A timer, not the exporter's checkpoints: stale exports wait for their spacing anyway, and a
        // query per write would cost more than the quarter second saved.
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Generates the stalest export, if any is stale.
///
/// # Errors
/// Database and file errors (the export stays stale).
pub async fn next(state: &AppState) -> Result<bool, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let client = state.pool.get().await.map_err(|x| e(&x))?;
    // The stalest eligible row, claimed once (a materialized CTE: a subquery joined to the UPDATE
    // could be rescanned and claim more than one).
    let rows = client
        .query(
            "WITH s AS MATERIALIZED ( \
               SELECT view_org, format, dirty_position FROM exp.exports WHERE dirty_position IS NOT NULL \
               AND (dirty_position = 0 OR generated_at IS NULL OR generated_at + make_interval(secs => (duration_ms * $1)::float8 / 1000.0) <= now()) \
               ORDER BY dirty_position, view_org, format LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE exp.exports x SET dirty_position = NULL FROM s \
             WHERE x.view_org = s.view_org AND x.format = s.format RETURNING s.view_org, s.format, s.dirty_position",
            &[&SPACING],
        )
        .await
        .map_err(|x| e(&x))?;
    let Some(row) = rows.first() else {
        return Ok(false);
    };
    let (view, key, dirty): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
    let Some(export) = Export::from_key(&key) else {
        client.execute("DELETE FROM exp.exports WHERE view_org = $1 AND format = $2", &[&view, &key]).await.map_err(|x| e(&x))?;
        return Ok(true);
    };
    let position: i64 = client
        .query_opt("SELECT position FROM es.projector_checkpoints WHERE projector = $1", &[&crate::NAME])
        .await
        .map_err(|x| e(&x))?
        .map_or(0, |r| r.get(0));
    let started = Instant::now();
    match write(state, view, &export).await {
        Ok(bytes) => {
            client
                .execute(
                    "UPDATE exp.exports SET generated_position = $3, generated_at = now(), bytes = $4, duration_ms = $5 WHERE view_org = $1 AND format = $2",
                    &[&view, &key, &position, &(bytes as i64), &(started.elapsed().as_millis() as i64)],
                )
                .await
                .map_err(|x| e(&x))?;
            tracing::info!(view, export = %key, bytes, ms = started.elapsed().as_millis() as u64, "cached export written");
            Ok(true)
        }
        Err(err) => {
            client
                .execute(
                    "UPDATE exp.exports SET dirty_position = least(coalesce(dirty_position, $3), $3) WHERE view_org = $1 AND format = $2",
                    &[&view, &key, &dirty],
                )
                .await
                .map_err(|x| e(&x))?;
            Err(err)
        }
    }
}

/// Writes one view's export file; its size.
async fn write(state: &AppState, view: i64, export: &Export) -> Result<u64, String> {
    let viewer = if view == 0 {
        Viewer { org_id: 0, site_admin: true, sharing_groups: BTreeSet::new() }
    } else {
        state.sharing_groups.invalidate();
        cairn_api::handlers::support::org_viewer(state, view).await.map_err(|x| x.to_string())?
    };
    let requester = Requester { viewer, nids_sid: DEFAULT_NIDS_SID };
    let prepared = search::prepare(state, requester, export.params(), export.format.scope).await.map_err(|x| x.to_string())?;
    let path = export.path(&state.settings.exports_dir, view);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|x| format!("{}: {x}", dir.display()))?;
    }
    let tmp = path.with_file_name(format!(".{}.tmp{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("export"), std::process::id()));
    let file = tokio::fs::File::create(&tmp).await.map_err(|x| format!("{}: {x}", tmp.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let written = stream::to_writer(|c| prepared.write(c), &mut out).await;
    let written = match written {
        Ok(n) => n,
        Err(x) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(x.to_string());
        }
    };
    out.flush().await.map_err(|x| x.to_string())?;
    out.into_inner().sync_all().await.map_err(|x| x.to_string())?;
    tokio::fs::rename(&tmp, &path).await.map_err(|x| format!("{}: {x}", path.display()))?;
    Ok(written)
}
