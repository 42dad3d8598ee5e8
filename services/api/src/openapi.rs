//! `GET /openapi.json`: an OpenAPI 3.1 description of every route, generated from the routing table at
//! build time (so it lists exactly what the API serves). MISP's routes take GET or POST, loosely typed JSON bodies and
//! optional path arguments (ids or uuids, `/name:value` named parameters), so each route is described
//! with and without one argument and with a free-form JSON body; errors have MISP's shape.

use serde_json::{Map, Value, json};

include!(concat!(env!("OUT_DIR"), "/routes.rs"));

/// camelCase, as MISP's clients spell actions (the API accepts both).
fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn operation(id: &str, with_arg: bool) -> Value {
    let mut op = json!({
        "operationId": id,
        "responses": {
            "200": {"description": "MISP's answer", "content": {"application/json": {"schema": {}}}},
            "4XX": {"description": "refused; nothing written", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "5XX": {"description": "retryable outage (503) or a dependency's failure", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    });
    if with_arg {
        op["parameters"] = json!([{"name": "arg", "in": "path", "required": true, "description": "an id, uuid or name", "schema": {"type": "string"}}]);
    }
    op
}

/// The whole description.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (admin, controller, action) in ROUTES {
        let base = format!("{}/{controller}/{}", if *admin { "/admin" } else { "" }, camel(action));
        for with_arg in [false, true] {
            let path = if with_arg { format!("{base}/{{arg}}") } else { base.clone() };
            let id = format!("{}{controller}_{action}{}", if *admin { "admin_" } else { "" }, if with_arg { "_arg" } else { "" });
            // The dispatcher takes any method, as MISP does; reads are GETs, writes POSTs (a read-only
            // key may not POST a write).
            let mut item = json!({"post": operation(&id, with_arg), "get": operation(&format!("{id}_get"), with_arg)});
            item["post"]["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {}}}});
            paths.insert(path, item);
        }
    }
    for (path, what) in [("/health", "database, head position, projector checkpoints"), ("/metrics", "Prometheus text"), ("/openapi.json", "this document")] {
        paths.insert(path.into(), json!({"get": {"operationId": path.trim_start_matches('/').replace('.', "_"), "security": [], "responses": {"200": {"description": what}}}}));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Cairn (MISP-compatible API)", "version": env!("CARGO_PKG_VERSION"),
                 "description": "MISP's REST API as PyMISP uses it, plus Cairn's audit routes. See docs/api.md."},
        "security": [{"mispKey": []}],
        "components": {
            "securitySchemes": {"mispKey": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": {"Error": {"type": "object", "required": ["name", "message", "url"],
                                  "properties": {"name": {"type": "string"}, "message": {"type": "string"}, "url": {"type": "string"}}}},
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_described() {
        let doc = document();
        assert!(ROUTES.len() > 100, "{}", ROUTES.len());
        assert!(ROUTES.contains(&(false, "events", "add")) && ROUTES.contains(&(true, "users", "add")));
        let paths = doc["paths"].as_object().expect("paths");
        for (admin, controller, action) in ROUTES {
            let p = format!("{}/{controller}/{}", if *admin { "/admin" } else { "" }, camel(action));
            assert!(paths.contains_key(&p) && paths.contains_key(&format!("{p}/{{arg}}")), "{p}");
        }
        assert_eq!(camel("free_text_import"), "freeTextImport");
    }
}
