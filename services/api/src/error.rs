//! One error type for the HTTP layer, mapped once to MISP's JSON error bodies.
//!
//! MISP's shapes (pymisp_contract.md §3.5): exceptions are `{"name", "message", "url"}` with 403/404/405;
//! failed saves are 403 `{"saved": false, "name", "message", "url", "errors"}`. Every error Cairn
//! answers is JSON; a 5xx never carries a cause to the client (it is logged once, here).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_domain::DomainError;
use cairn_eventlog::StoreError;
use serde_json::{Value, json};

/// MISP's message when an authenticated role lacks the permission for an action.
pub const NO_PERMISSION_FUNCTIONALITY: &str = "You do not have permission to use this functionality.";
/// MISP's message for object-level denial on attribute writes (it makes PyMISP fall back to a proposal).
pub const NO_PERMISSION: &str = "You do not have permission to do that.";
pub const AUTH_FAILED: &str = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// 409 with what the client needs to decide (e.g. both versions of a stale proposal), merged
    /// into the error body.
    #[error("{message}")]
    Stale { message: String, details: Value },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// MISP's saveFail: 403 with `saved: false` and an `errors` member.
    #[error("{name}")]
    SaveFailed { name: String, errors: Value },
    /// A service Cairn called answered with an error (misp-modules) — 502, the reason shown.
    #[error("{0}")]
    BadGateway(String),
    /// A module answered that it could not process this input (e.g. `dns: NXDOMAIN`) — 422, so clients
    /// such as PyMISP get an error answer rather than a server failure.
    #[error("{0}")]
    Unprocessable(String),
    /// A service Cairn called did not answer in time — 504.
    #[error("{0}")]
    GatewayTimeout(String),
    /// Throttled (failed authentications from the address, or the role's rate limit) — 429 with
    /// `Retry-After: retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A retryable outage (database, appender) — 503.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) | Self::SaveFailed { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::Stale { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The MISP-shaped body for a request to `url`.
    pub fn body(&self, url: &str) -> Value {
        match self {
            Self::SaveFailed { name, errors } => {
                json!({"saved": false, "name": name, "message": name, "url": url, "errors": errors})
            }
            Self::Stale { message, details } => {
                let mut body = json!({"name": message, "message": message, "url": url});
                if let (Some(b), Some(d)) = (body.as_object_mut(), details.as_object()) {
                    b.extend(d.clone());
                }
                body
            }
            Self::Internal(cause) => {
                tracing::error!(%url, cause = %cause, "internal error");
                let msg = "An internal error has occurred.";
                json!({"name": msg, "message": msg, "url": url})
            }
            Self::Unavailable(cause) => {
                tracing::warn!(%url, cause = %cause, "service unavailable");
                let msg = "The service is temporarily unavailable, please retry.";
                json!({"name": msg, "message": msg, "url": url})
            }
            other => {
                let msg = other.to_string();
                json!({"name": msg, "message": msg, "url": url})
            }
        }
    }

    pub fn into_misp_response(self, url: &str) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        let mut response = (status, axum::Json(self.body(url))).into_response();
        if let Some(secs) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, secs);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_misp_response("")
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, reason } => {
                Self::SaveFailed { name: "Could not save".into(), errors: json!({ field: [reason] }) }
            }
            DomainError::NotFound(m) => Self::NotFound(m),
            DomainError::Forbidden(m) => Self::Forbidden(m),
            DomainError::AlreadyExists(m) => Self::SaveFailed { name: m.clone(), errors: json!(m) },
            DomainError::Conflict(m) => Self::Conflict(m),
            DomainError::StaleProposal(stale) => {
                let message = DomainError::StaleProposal(stale.clone()).to_string();
                let details = json!({
                    "current": {"Attribute": stale.current, "revision": stale.current_revision},
                    "proposed": {"ShadowAttribute": stale.proposal, "base_revision": stale.proposal.base_revision},
                });
                Self::Stale { message, details }
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } | StoreError::WrongStreamType { .. } => Self::Conflict(
                "The target was modified concurrently; the request was not applied. Please retry.".into(),
            ),
            StoreError::Empty => Self::Internal("empty commit".into()),
            e if e.is_transient() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() || e.code().is_none() {
            return Self::Unavailable(e.to_string());
        }
        // Input PostgreSQL cannot store, whichever path carried it there: the request's fault (and the
        // statement failed, so nothing was written).
        match e.code().map(tokio_postgres::error::SqlState::code) {
            Some("22021" | "22P05") => return Self::BadRequest("The request contains a NUL character (\\u0000), which cannot be stored.".into()),
            Some("22003") => return Self::BadRequest("A number in the request is out of range.".into()),
            _ => {}
        }
        // The server's own words (the Display of a db error is just "db error").
        match e.as_db_error() {
            Some(db) => Self::Internal(format!("{}: {} ({})", db.severity(), db.message(), db.code().code())),
            None => Self::Internal(e.to_string()),
        }
    }
}

/// Rewrites any error response that is not JSON (from axum's own rejections, panics, timeouts) into
/// MISP's JSON shape, so no request can produce a non-JSON error.
pub async fn ensure_json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let url = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    let message = if status.is_server_error() { "An internal error has occurred." } else { reason };
    (status, axum::Json(json!({"name": message, "message": message, "url": url}))).into_response()
}
