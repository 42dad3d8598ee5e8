//! MISP-compatible handlers, one module per MISP controller (or family), and the routing table.

pub mod admin;
pub mod audit;
pub mod attributes;
pub mod correlations;
pub mod delegations;
pub mod discussions;
pub mod enrichment;
pub mod events;
pub mod exports;
pub mod freetext;
pub mod objects;
pub mod proposals;
pub mod regexps;
pub mod search;
pub mod servers;
pub mod sightings;
pub mod sharing_groups;
pub mod support;
pub mod tags;
pub mod taxonomies;
pub mod templates;
pub mod warninglists;

use crate::auth::Authed;
use crate::dispatch::MispPath;
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
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

/// Reads are allowed with any role; writes need a role (and key) that may write at all.
fn is_write(req: &Request) -> bool {
    let p = &req.path;
    !matches!(
        p.action.as_str(),
        "view" | "index" | "feed" | "filter_event_ids_for_push" | "filter_sighting_uuids_for_push" | "log" | "history" | "event" | "diff" | "verify" | "checkpoints" | "describe_types" | "get_version" | "get_py_misp_version" | "get_setting" | "rest_search" | "search" | "get_raw" | "check_value" | "list_sightings" | "view_event"
    ) && req.method != Method::GET
        && req.method != Method::HEAD
}

/// The routing table: (admin prefix, controller, action) → handler.
///
/// # Errors
/// Whatever the handler refuses; unknown routes answer a JSON 404.
pub async fn route(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if is_write(req) && auth.read_only_key {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let p = &req.path;
    match (p.admin, p.controller.as_str(), p.action.as_str()) {
        (_, "audit", "log") => audit::log(state, auth, req).await,
        (_, "audit", "history") => audit::history(state, auth, req).await,
        (_, "audit", "event") => audit::event_as_of(state, auth, req).await,
        (_, "audit", "diff") => audit::event_diff(state, auth, req).await,
        (_, "audit", "verify") => audit::verify(state, auth, req).await,
        (_, "audit", "checkpoints") => audit::checkpoints(state, auth, req).await,
        (_, "servers", "get_version") => servers::get_version(state, auth).await,
        (_, "servers", "get_py_misp_version") => servers::get_pymisp_version(),
        (_, "servers", "get_setting") => servers::get_setting(state, auth, p).await,
        (_, "servers", "server_settings_edit") => servers::settings_edit(state, auth, req).await,
        (_, "servers", "index") => servers::index(state, auth).await,
        (_, "servers", "add") => servers::add(state, auth, req).await,
        (_, "servers", "edit") => servers::edit(state, auth, req).await,
        (_, "servers", "delete") => servers::delete(state, auth, req).await,
        (_, "servers", "pull") => servers::pull(state, auth, req).await,
        (_, "sync", "feed") => crate::sync::feed(state, auth, req).await,

        (_, "users", "view") => admin::user_view(state, auth, req).await,
        (true, "users", "add") => admin::user_add(state, auth, req).await,
        (_, "users", "edit") => admin::user_edit(state, auth, req).await,
        (true, "users", "delete") => admin::user_delete(state, auth, req).await,
        (true, "users", "index") => admin::user_index(state, auth, req).await,
        (true, "organisations", "add") => admin::org_add(state, auth, req).await,
        (true, "organisations", "edit") => admin::org_edit(state, auth, req).await,
        (true, "organisations", "delete") => admin::org_delete(state, auth, req).await,
        (_, "organisations", "index") => admin::org_index(state, auth, req).await,
        (_, "organisations", "view") => admin::org_view(state, auth, req).await,
        (_, "roles", "index") => admin::roles_index(state, auth).await,
        (true, "roles", "set_default") => admin::roles_set_default(state, auth, req).await,
        (true, "roles", "add") => admin::roles_add(state, auth, req).await,
        (true, "roles", "edit") => admin::roles_edit(state, auth, req).await,
        (true, "roles", "delete") => admin::roles_delete(state, auth, req).await,
        (_, "auth_keys", "add") => admin::auth_key_add(state, auth, req).await,

        (_, "events", "add") => events::add(state, auth, req).await,
        (_, "events", "view") => events::view(state, auth, req).await,
        (_, "events", "edit") => events::edit(state, auth, req).await,
        (_, "events", "delete") => events::delete(state, auth, req).await,
        (_, "events", "publish" | "alert") => events::publish(state, auth, req).await,
        (_, "events", "unpublish") => events::unpublish(state, auth, req).await,
        (_, "events", "add_tag") => events::add_tag(state, auth, req).await,
        (_, "events", "filter_event_ids_for_push") => events::filter_for_push(state, auth, req).await,
        (_, "events", "free_text_import") => freetext::import(state, auth, req).await,
        (_, "events", "index") => search::index(state, auth, req).await,
        (_, "events", "export") => exports::index(state, auth).await,
        (_, "events", "download_export") => exports::download(state, auth, req).await,
        (_, "jobs", "cache") => exports::cache(state, auth, req).await,
        (_, "feeds", _) => exports::feed(state, req).await,
        (_, "events", "rest_search") => search::events_rest_search(state, auth, req).await,

        (_, "attributes", "enrich") => enrichment::enrich_attribute(state, auth, req).await,
        (_, "attributes", "hover_enrichment") => enrichment::hover(state, auth, req).await,
        (_, "events", "enrich_event") => enrichment::enrich_event(state, auth, req).await,
        (_, "events", "query_enrichment") => enrichment::query_enrichment(state, auth, req).await,
        (_, "events", "handle_module_results") => enrichment::handle_module_results(state, auth, req).await,
        (_, "modules", "index") => enrichment::modules_index(state, auth).await,

        (_, "attributes", "describe_types") => attributes::describe_types(state, p),
        (_, "attributes", "add") => attributes::add(state, auth, req).await,
        (_, "attributes", "edit") => attributes::edit(state, auth, req).await,
        (_, "attributes", "delete") => attributes::delete(state, auth, req).await,
        (_, "attributes", "restore") => attributes::restore(state, auth, req).await,
        (_, "attributes", "view") => attributes::view(state, auth, req).await,
        (_, "attributes", "index") => crate::search::attribute_index(state, auth, crate::search::Params::read(req)?).await,
        (_, "attributes", "rest_search") => search::attributes_rest_search(state, auth, req).await,
        (_, "objects", "rest_search") => search::objects_rest_search(state, auth, req).await,
        (_, "events", "csv" | "nids" | "hids" | "stix2") | (_, "attributes", "text" | "rpz" | "bro") => search::legacy(state, auth, req).await,

        (_, "objects", "add") => objects::add(state, auth, req).await,
        (_, "objects", "edit") => objects::edit(state, auth, req).await,
        (_, "objects", "delete") => objects::delete(state, auth, req).await,
        (_, "objects", "view") => objects::view(state, auth, req).await,
        (_, "object_references", "add") => objects::add_reference(state, auth, req).await,
        (_, "object_references", "delete") => objects::delete_reference(state, auth, req).await,
        (_, "object_templates", "index") => objects::templates_index(state),
        (_, "object_templates", "get_raw") => objects::templates_get_raw(state, req),

        (_, "shadow_attributes", "add") => proposals::add(state, auth, req).await,
        (_, "shadow_attributes", "edit") => proposals::edit(state, auth, req).await,
        (_, "shadow_attributes", "delete") => proposals::delete(state, auth, req).await,
        (_, "shadow_attributes", "view") => proposals::view(state, auth, req).await,
        (_, "shadow_attributes", "index") => proposals::index(state, auth, req).await,
        (_, "shadow_attributes", "accept") => proposals::accept(state, auth, req).await,
        (_, "shadow_attributes", "discard") => proposals::discard(state, auth, req).await,

        (_, "sightings", "add") => sightings::add(state, auth, req).await,
        (_, "sightings", "delete") => sightings::delete(state, auth, req).await,
        (_, "sightings", "list_sightings") => sightings::list(state, auth, req).await,
        (_, "sightings", "index") => sightings::index(state, auth, req).await,
        (_, "sightings", "rest_search") => sightings::rest_search(state, auth, req).await,
        (_, "sightings", "filter_sighting_uuids_for_push") => sightings::filter_for_push(state, auth, req).await,
        (_, "sightings", "bulk_save_sightings") => sightings::bulk_save(state, auth, req).await,

        (_, "event_delegations", "delegate_event") => delegations::delegate(state, auth, req).await,
        (_, "event_delegations", "accept_delegation") => delegations::accept(state, auth, req).await,
        (_, "event_delegations", "delete_delegation") => delegations::discard(state, auth, req).await,
        (_, "event_delegations", "view") => delegations::view(state, auth, req).await,
        (_, "event_delegations", "index") => delegations::index(state, auth, req).await,
        (_, "posts", "add") => discussions::add(state, auth, req).await,
        (_, "posts", "edit") => discussions::edit(state, auth, req).await,
        (_, "posts", "delete") => discussions::delete(state, auth, req).await,
        (_, "threads", "view") => discussions::view(state, auth, req).await,
        (_, "threads", "view_event") => discussions::view_event(state, auth, req).await,
        (_, "threads", "index") => discussions::index(state, auth).await,
        (_, "events", "contact") => events::contact(state, auth, req).await,

        (_, "templates", "index") => templates::index(state, auth).await,
        (_, "templates", "view") => templates::view(state, auth, req).await,
        (_, "templates", "add") => templates::add(state, auth, req).await,
        (_, "templates", "edit") => templates::edit(state, auth, req).await,
        (_, "templates", "delete") => templates::delete(state, auth, req).await,
        (_, "templates", "template_choices") => templates::choices(state, auth, req).await,
        (_, "templates", "populate_event_from_template") => templates::populate(state, auth, req).await,
        (_, "template_elements", "index") => templates::element_index(state, auth, req).await,
        (_, "template_elements", "add") => templates::element_add(state, auth, req).await,
        (_, "template_elements", "edit") => templates::element_edit(state, auth, req).await,
        (_, "template_elements", "delete") => templates::element_delete(state, auth, req).await,

        (_, "tags", "index") => tags::index(state, auth).await,
        (_, "tags", "view") => tags::view(state, auth, req).await,
        (_, "tags", "add") => tags::add(state, auth, req).await,
        (_, "tags", "edit") => tags::edit(state, auth, req).await,
        (_, "tags", "delete") => tags::delete(state, auth, req).await,
        (_, "tags", "search") => tags::search(state, auth, req).await,
        (_, "tags", "attach_tag_to_object") => tags::attach(state, auth, req).await,
        (_, "tags", "remove_tag_from_object") => tags::remove(state, auth, req).await,
        (_, "taxonomies", "index") => taxonomies::index(state, auth).await,
        (_, "taxonomies", "view") => taxonomies::view(state, auth, req).await,
        (_, "taxonomies", "enable") => taxonomies::enable(state, auth, req).await,
        (_, "taxonomies", "disable" | "disable_tag") => taxonomies::disable(state, auth, req).await,
        (_, "taxonomies", "toggle_required") => taxonomies::toggle_required(state, auth, req).await,
        (_, "taxonomies", "add_tag") => taxonomies::add_tags(state, auth, req).await,
        (_, "taxonomies", "update") => taxonomies::update(req),
        (_, "warninglists", "index") => warninglists::index(state, auth, req).await,
        (_, "warninglists", "view") => warninglists::view(state, auth, req).await,
        (_, "warninglists", "toggle_enable") => warninglists::toggle_enable(state, auth, req).await,
        (_, "warninglists", "check_value") => warninglists::check_value(state, auth, req).await,
        (_, "warninglists", "update") => warninglists::update(auth, req),
        (true, "regexp", "add") => regexps::add(state, auth, req).await,
        (true, "regexp", "edit") => regexps::edit(state, auth, req).await,
        (true, "regexp", "delete") => regexps::delete(state, auth, req).await,
        (true, "regexp", "index") | (false, "regexp", "index") => regexps::index(state, auth).await,
        (_, "sharing_groups", "add") => sharing_groups::add(state, auth, req).await,
        (_, "sharing_groups", "edit") => sharing_groups::edit(state, auth, req).await,
        (_, "sharing_groups", "delete") => sharing_groups::delete(state, auth, req).await,
        (_, "sharing_groups", "view") => sharing_groups::view(state, auth, req).await,
        (_, "sharing_groups", "index") => sharing_groups::index(state, auth).await,
        (_, "sharing_groups", "add_org") => sharing_groups::change_org(state, auth, req, true).await,
        (_, "sharing_groups", "remove_org") => sharing_groups::change_org(state, auth, req, false).await,
        (_, "sharing_groups", "add_server") => sharing_groups::change_server(state, auth, req, true).await,
        (_, "sharing_groups", "remove_server") => sharing_groups::change_server(state, auth, req, false).await,
        (_, "correlation_exclusions", "add") => correlations::add(state, auth, req).await,
        (_, "correlation_exclusions", "index") => correlations::index(state, auth).await,
        (_, "correlation_exclusions", "view") => correlations::view(state, auth, req).await,
        (_, "correlation_exclusions", "delete") => correlations::delete(state, auth, req).await,
        (_, "correlation_exclusions", "clean") => correlations::clean(req),
        (_, "correlations", "over_correlations") => correlations::over_correlations(state, auth).await,
        _ => Err(crate::unknown_route()),
    }
}
