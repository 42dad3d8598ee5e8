//! MISP-compatible handlers, one module per MISP controller, and the routing table.

pub mod attributes;
pub mod servers;
pub mod users;

use crate::auth::Authed;
use crate::dispatch::MispPath;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;

/// One MISP request after path parsing and authentication.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub path: MispPath,
    pub body: Bytes,
    pub headers: HeaderMap,
    pub url: String,
}

/// The routing table: (admin prefix, controller, action) → handler.
///
/// # Errors
/// Whatever the handler refuses; unknown routes answer a JSON 404.
pub async fn route(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let p = &req.path;
    match (p.admin, p.controller.as_str(), p.action.as_str()) {
        (_, "servers", "get_version") => servers::get_version(state, auth).await,
        (_, "servers", "get_py_misp_version") => servers::get_pymisp_version(),
        (_, "servers", "get_setting") => servers::get_setting(state, auth, p).await,
        (_, "servers", "server_settings_edit") => servers::settings_edit(state, auth, req).await,
        (_, "users", "view") => users::view(state, auth, p).await,
        (_, "attributes", "describe_types") => attributes::describe_types(state, p),
        _ => Err(crate::unknown_route()),
    }
}
