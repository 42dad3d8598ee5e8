//! Enrichment through a misp-modules server (MISP's enrichment system): module discovery, queries,
//! and the results turned into MISP JSON attributes/objects for the Event aggregate.
//!
//! Configuration follows MISP's plugin settings (recorded with `servers/serverSettingsEdit`):
//! `Plugin.Enrichment_services_enable` (on unless set off), `Plugin.Enrichment_services_url` + `_port` (else the
//! `CAIRN_MISP_MODULES_URL` setting), `Plugin.Enrichment_timeout` (seconds, default 10),
//! `Plugin.Enrichment_<module>_enabled` (a module runs only when enabled, as in MISP) and
//! `Plugin.Enrichment_<module>_<key>` for each configuration key a module declares (e.g.
//! `Plugin.Enrichment_dns_nameserver`). Results never write by themselves: the handlers add them
//! through the Event's command path, in one commit.

use crate::error::ApiError;
use crate::state::AppState;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// What the instance's settings say about enrichment.
#[derive(Clone)]
pub struct Config {
    pub url: String,
    pub timeout: Duration,
    settings: std::sync::Arc<crate::instance_facts::InstanceFacts>,
}

fn as_flag(v: Option<&Value>) -> Option<bool> {
    crate::body::flag(v)
}

fn as_text(v: Option<&Value>) -> Option<String> {
    crate::body::text(v).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Config {
    /// # Errors
    /// Enrichment is disabled or has no server configured (400, saying which setting to set).
    pub async fn load(state: &AppState) -> Result<Self, ApiError> {
        let facts = state.instance.get(&state.pool).await?;
        let get = |name: &str| facts.settings.get(name);
        let url = match as_text(get("Plugin.Enrichment_services_url")) {
            Some(u) => {
                let port = as_text(get("Plugin.Enrichment_services_port")).unwrap_or_else(|| "6666".into());
                let u = u.trim_end_matches('/');
                // MISP stores the URL without the port; a URL that already has one is taken as is.
                let has_port = u.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
                if has_port { u.to_string() } else { format!("{u}:{port}") }
            }
            None => state.settings.misp_modules_url.clone().unwrap_or_default(),
        };
        if as_flag(get("Plugin.Enrichment_services_enable")) == Some(false) {
            return Err(ApiError::BadRequest("Enrichment is disabled (Plugin.Enrichment_services_enable).".into()));
        }
        if url.is_empty() {
            return Err(ApiError::BadRequest(
                "No misp-modules server is configured (Plugin.Enrichment_services_url or CAIRN_MISP_MODULES_URL).".into(),
            ));
        }
        let timeout = as_text(get("Plugin.Enrichment_timeout")).and_then(|t| t.parse::<u64>().ok()).filter(|t| *t > 0).unwrap_or(10);
        Ok(Self { url, timeout: Duration::from_secs(timeout), settings: facts })
    }

    /// Is `module` enabled (`Plugin.Enrichment_<module>_enabled`)?
    pub fn module_enabled(&self, module: &str) -> bool {
        as_flag(self.settings.settings.get(&format!("Plugin.Enrichment_{module}_enabled"))).unwrap_or(false)
    }

    /// The module's configuration from `Plugin.Enrichment_<module>_<key>` for the keys it declares.
    pub fn module_config(&self, module: &Module) -> Map<String, Value> {
        let mut out = Map::new();
        for key in &module.config {
            if let Some(v) = as_text(self.settings.settings.get(&format!("Plugin.Enrichment_{}_{key}", module.name))) {
                out.insert(key.clone(), Value::String(v));
            }
        }
        out
    }
}

/// One module as misp-modules describes it (`GET /modules`).
#[derive(Clone, Debug)]
pub struct Module {
    pub name: String,
    /// `expansion`, `hover`, … (from `meta.module-type`).
    pub kinds: Vec<String>,
    pub input: Vec<String>,
    /// `misp_standard` modules take and give MISP JSON; the others take `{<type>: value}`.
    pub standard: bool,
    pub config: Vec<String>,
    pub raw: Value,
}

impl Module {
    pub fn takes(&self, attr_type: &str) -> bool {
        self.input.iter().any(|t| t == attr_type)
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn module(v: &Value) -> Option<Module> {
    let name = v.get("name")?.as_str()?.to_string();
    let attrs = v.get("mispattributes").cloned().unwrap_or(Value::Null);
    Some(Module {
        name,
        kinds: strings(&v["meta"]["module-type"]),
        input: strings(&attrs["input"]),
        standard: attrs.get("format").and_then(Value::as_str) == Some("misp_standard"),
        config: strings(&v["meta"]["config"]),
        raw: v.clone(),
    })
}

fn client(timeout: Duration) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(3)).build().map_err(ApiError::internal)
}

fn transport(config: &Config, e: &reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::GatewayTimeout(format!("misp-modules did not answer within {} s.", config.timeout.as_secs()))
    } else {
        ApiError::BadGateway(format!("misp-modules is not reachable at {}.", config.url))
    }
}

/// The modules the server offers (`GET /modules`).
///
/// # Errors
/// The server unreachable (502), too slow (504) or answering something else than a module list (502).
pub async fn modules(config: &Config) -> Result<Vec<Module>, ApiError> {
    let r = client(config.timeout)?.get(format!("{}/modules", config.url)).send().await.map_err(|e| transport(config, &e))?;
    if !r.status().is_success() {
        return Err(ApiError::BadGateway(format!("misp-modules answered {} to the module list.", r.status().as_u16())));
    }
    let v: Value = r.json().await.map_err(|e| if e.is_timeout() { transport(config, &e) } else { ApiError::BadGateway("misp-modules sent an unreadable module list.".into()) })?;
    Ok(v.as_array().map(|a| a.iter().filter_map(module).collect()).unwrap_or_default())
}

/// Runs `module` on one attribute (`{"type", "value", "uuid"}`) and returns its `results`.
///
/// # Errors
/// Transport errors as [`modules`]; a module's own error (`{"error": …}`) as 422 with its reason.
pub async fn query(config: &Config, module: &Module, attribute: &Value) -> Result<Value, ApiError> {
    let attr_type = attribute["type"].as_str().unwrap_or_default();
    let mut body = json!({"module": module.name, "config": config.module_config(module)});
    if module.standard {
        body["attribute"] = json!({"type": attr_type, "value": attribute["value"], "uuid": attribute["uuid"]});
    } else {
        body[attr_type] = attribute["value"].clone();
    }
    let r = client(config.timeout)?.post(format!("{}/query", config.url)).json(&body).send().await.map_err(|e| transport(config, &e))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| if e.is_timeout() { transport(config, &e) } else { ApiError::BadGateway(format!("{}: unreadable answer ({})", module.name, status.as_u16())) })?;
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let reason = error.as_str().map(String::from).unwrap_or_else(|| error.to_string());
        return Err(ApiError::Unprocessable(format!("{}: {reason}", module.name)));
    }
    if !status.is_success() {
        return Err(ApiError::BadGateway(format!("{}: misp-modules answered {}", module.name, status.as_u16())));
    }
    Ok(v.get("results").cloned().unwrap_or(Value::Null))
}

/// Fields a module may not set on what it proposes: ids, positions in the Event, deletion, time.
fn sanitise(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for k in ["id", "event_id", "object_id", "timestamp", "deleted", "sharing_group_id"] {
            m.remove(k);
        }
        for list in ["Attribute", "ObjectReference"] {
            if let Some(Value::Array(items)) = m.get_mut(list) {
                items.iter_mut().for_each(sanitise);
            }
        }
    }
}

/// Module results as MISP JSON `{"Attribute": [...], "Object": [...]}`: `misp_standard` results are
/// taken as they are; legacy results (`[{"types": [...], "values": [...]}]`) become one attribute per
/// value, of the first type. Attributes already in the Event (`known` uuids, e.g. the queried
/// attribute the dns module echoes back) are left out, and what a module may not set is dropped (a
/// module can never change or delete what the Event holds).
pub fn to_misp(results: &Value, known: &dyn Fn(&str) -> bool) -> (Vec<Value>, Vec<Value>) {
    let (mut attributes, mut objects) = read_results(results, known);
    attributes.iter_mut().chain(objects.iter_mut()).for_each(sanitise);
    (attributes, objects)
}

fn read_results(results: &Value, known: &dyn Fn(&str) -> bool) -> (Vec<Value>, Vec<Value>) {
    let mut attributes = Vec::new();
    let mut objects = Vec::new();
    match results {
        Value::Object(m) => {
            for a in m.get("Attribute").and_then(Value::as_array).into_iter().flatten() {
                if !a["uuid"].as_str().is_some_and(known) {
                    attributes.push(a.clone());
                }
            }
            for o in m.get("Object").and_then(Value::as_array).into_iter().flatten() {
                if !o["uuid"].as_str().is_some_and(known) {
                    objects.push(o.clone());
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let Some(attr_type) = item["types"].as_array().and_then(|t| t.first()).and_then(Value::as_str) else { continue };
                let values: Vec<Value> = match &item["values"] {
                    Value::Array(v) => v.clone(),
                    Value::Null => item.get("value").cloned().into_iter().collect(),
                    other => vec![other.clone()],
                };
                for value in values.into_iter().filter(|v| v.is_string() || v.is_number()) {
                    let mut a = json!({"type": attr_type, "value": crate::body::text(Some(&value)).unwrap_or_default(), "uuid": uuid::Uuid::new_v4()});
                    if let Some(c) = item["categories"].as_array().and_then(|c| c.first()) {
                        a["category"] = c.clone();
                    }
                    if let Some(c) = item.get("comment").filter(|c| c.is_string()) {
                        a["comment"] = c.clone();
                    }
                    attributes.push(a);
                }
            }
        }
        _ => {}
    }
    (attributes, objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_results_keep_new_elements_and_drop_the_queried_attribute() {
        let results = json!({"Attribute": [{"uuid": "a-known", "type": "hostname", "value": "x.test"}, {"uuid": "b-new", "type": "ip-dst", "value": "10.0.0.1", "id": "7", "deleted": true}],
                             "Object": [{"uuid": "o-new", "name": "dns-record", "Attribute": []}]});
        let (a, o) = to_misp(&results, &|u| u == "a-known");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["value"], "10.0.0.1");
        assert!(a[0].get("id").is_none() && a[0].get("deleted").is_none(), "a module sets no id nor deletion");
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn legacy_results_become_one_attribute_per_value() {
        let results = json!([{"types": ["ip-dst", "ip-src"], "values": ["10.0.0.1", "10.0.0.2"], "comment": "resolved"}, {"types": [], "values": ["x"]}]);
        let (a, o) = to_misp(&results, &|_| false);
        assert!(o.is_empty());
        assert_eq!(a.iter().map(|a| a["value"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["10.0.0.1", "10.0.0.2"]);
        assert!(a.iter().all(|a| a["type"] == "ip-dst" && a["comment"] == "resolved"));
    }

    #[test]
    fn modules_are_read_from_the_module_list() {
        let m = module(&json!({"name": "dns", "type": "expansion", "mispattributes": {"input": ["hostname", "domain"], "format": "misp_standard"},
                               "meta": {"module-type": ["expansion", "hover"], "config": ["nameserver"]}}))
        .expect("module");
        assert!(m.standard && m.takes("hostname") && !m.takes("ip-dst") && m.is("hover"));
        assert_eq!(m.config, ["nameserver"]);
    }
}
