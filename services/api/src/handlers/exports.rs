//! Cached exports — `GET /events/export` (the list, with freshness), `GET /events/downloadExport/<type>[/<extra>]`,
//! `POST /jobs/cache/<type>[/<extra>]` — and the MISP feed of this instance, `GET /feeds/public/<file>`.
//!
//! The exporter service writes both ([`crate::exports`]); this side only serves what is there. A user
//! gets the file of their organisation's view, a site admin the site admins' view.

use super::Request;
use super::support::{json, saved};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::exports::{Export, default_exports};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The view a caller downloads: 0 for site admins, else their organisation.
pub fn view_of(auth: &Authed) -> i64 {
    if auth.is_site_admin() { 0 } else { auth.org.id }
}

/// Asks the exporter to keep these exports of a view fresh (a row in `exp.exports`; a cache
/// directive, not data: nothing is written to the log). `regenerate` marks existing ones as requested
/// (`dirty_position` 0), which the exporter serves first and without waiting.
async fn register(state: &AppState, view: i64, exports: &[Export], regenerate: bool) -> Result<(), ApiError> {
    let keys: Vec<String> = exports.iter().map(Export::key).collect();
    let client = state.pool.get().await?;
    client
        .execute(
            "INSERT INTO exp.exports (view_org, format, dirty_position) SELECT $1, k, 0 FROM unnest($2::text[]) k \
             ON CONFLICT (view_org, format) DO UPDATE SET dirty_position = 0, requested_at = now() WHERE $3",
            &[&view, &keys, &regenerate],
        )
        .await?;
    Ok(())
}

fn export_of(state: &AppState, req: &Request) -> Result<Export, ApiError> {
    let name = req.path.args.first().map(String::as_str).unwrap_or_default();
    let extra = req.path.args.get(1).map(String::as_str);
    let export = Export::parse(name, extra).ok_or_else(|| {
        ApiError::NotFound(if name == "text" {
            "The text export is per attribute type: downloadExport/text/<type>.".into()
        } else {
            format!("Invalid export type \"{name}\".")
        })
    })?;
    if let Some(t) = &export.extra {
        if !state.reference.catalogue.is_type(t) {
            return Err(ApiError::BadRequest(format!("Unknown attribute type \"{t}\".")));
        }
    }
    Ok(export)
}

/// `GET /events/export`: the view's exports with their freshness, as of every change recorded before
/// the request. Listing them starts keeping them fresh (MISP's export page, where a click generates
/// each).
///
/// # Errors
/// Database errors.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    let view = view_of(auth);
    register(state, view, &default_exports(), false).await?;
    exporter_caught_up(state).await?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT format, dirty_position, generated_position, generated_at, bytes FROM exp.exports WHERE view_org = $1 ORDER BY format",
            &[&view],
        )
        .await?;
    let mut list = Vec::new();
    for r in rows {
        let key: String = r.get(0);
        let Some(export) = Export::from_key(&key) else { continue };
        let dirty: Option<i64> = r.get(1);
        let generated_position: Option<i64> = r.get(2);
        let generated_at: Option<chrono::DateTime<chrono::Utc>> = r.get(3);
        let mut url = format!("/events/downloadExport/{}", export.format.name);
        if let Some(e) = &export.extra {
            url.push('/');
            url.push_str(e);
        }
        list.push(json!({
            "type": export.format.name,
            "extra": export.extra,
            "description": export.format.description,
            "requiresPublished": export.format.requires_published,
            "url": url,
            "lastModified": generated_at.map(|t| t.timestamp().to_string()),
            "position": generated_position,
            "fresh": dirty.is_none() && generated_at.is_some(),
            "progress": match (generated_at.is_some(), dirty.is_some()) {
                (false, _) => "queued",
                (true, true) => "regenerating",
                (true, false) => "fresh",
            },
            "bytes": r.get::<_, i64>(4),
        }));
    }
    Ok(json(Value::Array(list)))
}

/// How long the listing waits for the exporter (it applies its batches up to
/// `[projector] exporter_linger_ms` after the changes; a stopped exporter costs a listing this much).
const EXPORTER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits (bounded) until the exporter has examined every change recorded before this request, so
/// that freshness answers for the caller's own writes: a file is not listed fresh while a change it
/// depends on is still on its way to the exporter.
async fn exporter_caught_up(state: &AppState) -> Result<(), ApiError> {
    let head = {
        let client = state.pool.get().await?;
        cairn_eventlog::store::head(&client).await?.position
    };
    if !state.watcher.wait_for(crate::commands::EXPORTER, head, EXPORTER_WAIT).await {
        tracing::debug!(head, "the exporter has not reached the log head; export freshness may lag");
    }
    Ok(())
}

/// `POST /jobs/cache/<type>[/<extra>]`: (re)generate an export of the caller's view.
///
/// # Errors
/// An unknown export type; database errors.
pub async fn cache(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let export = export_of(state, req)?;
    register(state, view_of(auth), std::slice::from_ref(&export), true).await?;
    Ok(saved("Job queued", &req.url, None))
}

/// `GET /events/downloadExport/<type>[/<extra>]`: the view's file, streamed. Headers say how fresh
/// it is (`X-Cairn-Export-Fresh`, `X-Cairn-Export-Position`: the log position it reflects,
/// `X-Cairn-Export-Generated`: when it was written, milliseconds since the epoch).
///
/// # Errors
/// 404 for an unknown type or a file not generated yet (asking for it queues it).
pub async fn download(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let export = export_of(state, req)?;
    let view = view_of(auth);
    let row = {
        let client = state.pool.get().await?;
        client
            .query_opt(
                "SELECT dirty_position, generated_position, (extract(epoch FROM generated_at) * 1000)::bigint FROM exp.exports \
                 WHERE view_org = $1 AND format = $2 AND generated_at IS NOT NULL",
                &[&view, &export.key()],
            )
            .await?
    };
    let path = export.path(&state.settings.exports_dir, view);
    let file = match (&row, tokio::fs::File::open(&path).await) {
        (Some(_), Ok(f)) => f,
        _ => {
            register(state, view, std::slice::from_ref(&export), false).await?;
            return Err(ApiError::NotFound(format!(
                "The {} export has not been generated yet; it is queued — try again shortly.",
                export.key()
            )));
        }
    };
    let (dirty, position, generated): (Option<i64>, Option<i64>, Option<i64>) = row.map(|r| (r.get(0), r.get(1), r.get(2))).unwrap_or_default();
    let stream = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0_u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = response.headers_mut();
    let content_type = cairn_formats::content_type(export.format.return_format).unwrap_or("text/plain");
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let view_name = if view == 0 { "ADMIN".to_string() } else { auth.org.name.clone() };
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", export.download_name(&view_name))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("X-Cairn-Export-Fresh", HeaderValue::from_static(if dirty.is_none() { "true" } else { "false" }));
    if let Some(p) = position {
        h.insert("X-Cairn-Export-Position", HeaderValue::from(p));
    }
    if let Some(g) = generated {
        h.insert("X-Cairn-Export-Generated", HeaderValue::from(g));
    }
    Ok(response)
}

/// `GET /feeds/public/manifest.json`, `/feeds/public/hashes.csv`, `/feeds/public/<event uuid>.json`:
/// this instance's MISP feed (published Events with distribution "All communities", feed fields
/// only), for a MISP instance's feed list or PyMISP's feed tools. Any user's key may read it.
///
/// # Errors
/// 404 for an unknown file or an Event not in the feed.
pub async fn feed(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    if req.path.action != "public" {
        return Err(ApiError::NotFound("Unknown feed; this instance publishes /feeds/public/.".into()));
    }
    let file = req.path.args.first().map(String::as_str).unwrap_or("manifest");
    let client = state.pool.get().await?;
    match file {
        "manifest" | "manifest.json" => {
            let rows = client.query("SELECT event_uuid, manifest FROM exp.misp_feed ORDER BY event_uuid", &[]).await?;
            let manifest: Map<String, Value> = rows.iter().map(|r| (r.get::<_, uuid::Uuid>(0).to_string(), r.get::<_, Value>(1))).collect();
            Ok(json(Value::Object(manifest)))
        }
        "hashes.csv" => {
            let rows = client.query("SELECT event_uuid, hashes FROM exp.misp_feed ORDER BY event_uuid", &[]).await?;
            let mut out = String::new();
            for r in rows {
                let event: uuid::Uuid = r.get(0);
                for h in r.get::<_, Vec<String>>(1) {
                    out.push_str(&h);
                    out.push(',');
                    out.push_str(&event.to_string());
                    out.push('\n');
                }
            }
            Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response())
        }
        other => {
            let uuid = uuid::Uuid::parse_str(other.trim_end_matches(".json"))
                .map_err(|_| ApiError::NotFound(format!("No file \"{other}\" in this feed.")))?;
            let row = client.query_opt("SELECT document FROM exp.misp_feed WHERE event_uuid = $1", &[&uuid]).await?;
            let row = row.ok_or_else(|| ApiError::NotFound("No such Event in this feed.".into()))?;
            Ok(([(header::CONTENT_TYPE, "application/json")], row.get::<_, String>(0)).into_response())
        }
    }
}
