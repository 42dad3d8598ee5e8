//! Cairn's HTTP API.
//!
//! # Layout
//! - [`dispatch`]: CakePHP-style path parsing (MISP's routes); [`handlers`]: one module per MISP controller.
//! - [`bootstrap`]: first-start host organisation and site admin.
//! - [`auth`]: API-key authentication; [`keys`]: key generation and hashing.
//! - [`error`]: [`ApiError`], MISP's JSON error bodies; a middleware makes every error JSON.
//! - [`commands`]: load → decide → append → wait for the read models; [`body`]: loose request bodies.
//! - [`input`]: MISP's loose Event/Attribute/Object JSON → domain drafts; [`filters`]: search syntax.
//! - [`render`]: read models → MISP's Event JSON; [`acl_sql`]: the access rule as SQL for lists.
//! - [`misp`]: MISP's response typing (ids as strings, flags as booleans).
//! - [`state`]: shared state; [`reference`]: MISP reference data fetched from PyPI packages.
//! - Native routes: `/health`, `/metrics`, `/openapi.json` ([`openapi`]).

pub mod acl_sql;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod collab;
pub mod commands;
pub mod correlations;
pub mod dispatch;
pub mod enrichment;
pub mod error;
pub mod exports;
pub mod filters;
pub mod handlers;
pub mod input;
pub mod instance_facts;
pub mod keys;
pub mod misp;
pub mod notify;
pub mod openapi;
pub mod reference;
pub mod regexps;
pub mod render;
pub mod search;
pub mod sg_cache;
pub mod state;
pub mod sync;
pub mod throttle;
pub mod ttl;
#[cfg(test)]
mod properties;
pub mod warninglists;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_eventlog::Appender;
use cairn_eventlog::watcher::CheckpointWatcher;
use cairn_platform::{Settings, Shutdown, connect};
use error::ApiError;
use serde_json::json;
use state::AppState;
use std::sync::Arc;

/// Largest request body accepted (MISP events with attachments can be large).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The API router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .fallback(misp_route)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_responses))
        .layer(axum::middleware::from_fn(error::ensure_json_errors))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal("panic".into()).into_response()
}

async fn count_responses(State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    state.metrics.requests.inc();
    let response = next.run(request).await;
    if response.status().is_client_error() {
        state.metrics.errors_4xx.inc();
    } else if response.status().is_server_error() {
        state.metrics.errors_5xx.inc();
    }
    response
}

async fn health(State(state): State<AppState>) -> Response {
    let check = async {
        let client = state.pool.get().await?;
        let head = cairn_eventlog::store::head(&client).await?;
        let rows = client.query("SELECT projector, position FROM es.projector_checkpoints ORDER BY projector", &[]).await?;
        let projectors: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|r| (r.get::<_, String>(0), json!(r.get::<_, i64>(1)))).collect();
        Ok::<_, BoxError>(json!({"status": "ok", "head": head.position, "projectors": projectors}))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), check).await {
        Ok(Ok(body)) => axum::Json(body).into_response(),
        Ok(Err(e)) => ApiError::Unavailable(e.to_string()).into_misp_response("/health"),
        Err(_) => ApiError::Unavailable("health check timed out".into()).into_misp_response("/health"),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = cairn_platform::metrics::Registry::global().render();
    if let Ok(client) = state.pool.get().await {
        if let Ok(head) = cairn_eventlog::store::head(&client).await {
            text.push_str("# HELP cairn_log_head_position Last position in the log.\n# TYPE cairn_log_head_position gauge\n");
            text.push_str(&format!("cairn_log_head_position {}\n", head.position));
            if let Ok(rows) = client.query("SELECT projector, position FROM es.projector_checkpoints", &[]).await {
                text.push_str("# HELP cairn_read_model_lag Log head minus a projector's checkpoint.\n# TYPE cairn_read_model_lag gauge\n");
                for r in rows {
                    let (name, position): (String, i64) = (r.get(0), r.get(1));
                    text.push_str(&format!("cairn_read_model_lag{{projector=\"{name}\"}} {}\n", head.position - position));
                }
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn misp_route(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let url = uri.path().to_string();
    let Some(mut path) = dispatch::parse(&url) else {
        return ApiError::NotFound("The requested address was not found on this server.".into()).into_misp_response(&url);
    };
    // Query-string parameters count as named parameters (`/key:value` wins when both are given).
    for (k, v) in dispatch::query_params(uri.query().unwrap_or_default()) {
        path.named.entry(k).or_insert(v);
    }
    if path.args.iter().chain(path.named.values()).any(|a| a.contains('\0')) {
        return ApiError::BadRequest("The path contains a NUL character.".into()).into_misp_response(&url);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::PayloadTooLarge(format!("The request body exceeds {MAX_BODY_BYTES} bytes."))
                .into_misp_response(&url);
        }
    };
    // Failed authentications are throttled per client address, before any key is looked at.
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0.0.ip());
    let limit = state.settings.auth_failures_per_minute;
    if let Some(wait) = state.throttle.auth_blocked(ip, limit) {
        let message = "Too many failed authentication attempts from this address; retry later.".to_string();
        return ApiError::TooManyRequests { message, retry_after: wait }.into_misp_response(&url);
    }
    let auth = match auth::authenticate(&state, &headers, ip).await {
        Ok(a) => a,
        Err(e) => {
            if matches!(&e, ApiError::Forbidden(m) if m == error::AUTH_FAILED) {
                let n = state.throttle.auth_failed(ip);
                tracing::warn!(%ip, failures_this_minute = n, path = %url, "authentication failed");
            }
            return e.into_misp_response(&url);
        }
    };
    // MISP's per-role rate limit (requests per user per 15 minutes).
    if auth.role.enforce_rate_limit && !auth.is_site_admin() {
        if let Some(wait) = state.throttle.request(auth.user.id, auth.role.rate_limit_count.max(0) as u64) {
            let message = format!("Rate limit exceeded: {} requests per 15 minutes for this role.", auth.role.rate_limit_count);
            return ApiError::TooManyRequests { message, retry_after: wait }.into_misp_response(&url);
        }
    }
    let request = handlers::Request { method, path, body, headers, url: url.clone() };
    match handlers::route(&state, &auth, &request).await {
        Ok(response) => response,
        Err(e) => e.into_misp_response(&url),
    }
}

/// Runs the API until shutdown.
///
/// # Errors
/// Missing reference data, an unusable listen address or database URL.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), BoxError> {
    let state = background_state(settings).await?;
    let settings = state.settings.clone();
    // TCP_NODELAY: a response is written as headers then body chunks; with Nagle's algorithm the
    // second small write waits for the client's delayed ACK (~40 ms per request).
    let listener = axum::serve::ListenerExt::tap_io(tokio::net::TcpListener::bind(&settings.http_addr).await?, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    tracing::info!(addr = %settings.http_addr, "API listening");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}

/// The state commands run against (store, appender, read-model watcher, reference data), for the API
/// and for the processes that run commands without serving HTTP (the sync consumers).
///
/// # Errors
/// Missing reference data, an unusable database URL.
pub async fn background_state(settings: Settings) -> Result<AppState, BoxError> {
    let settings = Arc::new(settings);
    let reference = Arc::new(reference::Reference::load(&settings.data_dir)?);
    let pool = connect::pg_pool(&settings)?;
    let nats = connect::nats(&settings).await.ok();
    let appender = Appender::spawn(pool.clone(), nats.clone());
    let watcher = CheckpointWatcher::start(pool.clone(), nats.clone()).await;
    Ok(AppState::new(settings, pool, appender, watcher, nats, reference))
}

/// Not-found for a route Cairn does not (yet) serve, as JSON.
pub fn unknown_route() -> ApiError {
    ApiError::NotFound("The requested address was not found on this server.".into())
}

