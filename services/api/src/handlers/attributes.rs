//! `/attributes/*`.

use crate::dispatch::MispPath;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /attributes/describeTypes.json`: pymisp's `describeTypes.json`, byte for byte.
pub fn describe_types(state: &AppState, _path: &MispPath) -> Result<Response, ApiError> {
    Ok(([(header::CONTENT_TYPE, "application/json")], state.reference.describe_types_raw.clone()).into_response())
}
