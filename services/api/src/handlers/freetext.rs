//! `POST /events/freeTextImport/{event}[/{adhereToWarninglists}[/{returnMetaAttributes}]]`: indicators
//! found in a pasted report, typed as MISP types them, returned for review or saved in one commit.

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::Change;
use cairn_domain::event::{EventCommand, IdPool};
use cairn_domain::freetext::{self, Candidate, Options};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// MISP's `adhereToWarninglists`: ignore hits, keep them without the IDS flag, or leave them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Adhere {
    No,
    Soft,
    Hard,
}

fn adhere(v: Option<&Value>) -> Result<Adhere, ApiError> {
    let Some(v) = v else { return Ok(Adhere::No) };
    if let Some(s) = v.as_str() {
        match s.trim().to_ascii_lowercase().as_str() {
            "soft" => return Ok(Adhere::Soft),
            "hard" => return Ok(Adhere::Hard),
            _ => {}
        }
    }
    match crate::body::flag(Some(v)) {
        Some(true) => Ok(Adhere::Hard),
        Some(false) => Ok(Adhere::No),
        None if v.is_null() => Ok(Adhere::No),
        None => Err(ApiError::BadRequest("adhereToWarninglists must be false, true or \"soft\".".into())),
    }
}

/// The type a candidate is saved as: its default, never one of MISP's `a/b` choice pseudo-types.
fn save_type(c: &Candidate) -> &str {
    if !c.default_type.contains('/') {
        return &c.default_type;
    }
    c.types.iter().find(|t| !t.contains('/')).map_or(c.default_type.as_str(), String::as_str)
}

/// Runs the extractor with the instance's TLD and security-vendor lists (off the async threads).
///
/// # Errors
/// The extraction task failed.
pub async fn extract(state: &AppState, text: String) -> Result<Vec<Candidate>, ApiError> {
    let reference = support::warninglist_catalog(state).await?;
    tokio::task::spawn_blocking(move || {
        let data = reference.warninglists.loaded();
        let options = Options { mode: reference.warninglists.mode(), tlds: data.tlds(), security_vendor_domains: data.vendor_domains() };
        let mut found = freetext::extract_with(text.as_bytes(), &options);
        freetext::apply_catalogue(&mut found, &reference.catalogue);
        found
    })
    .await
    .map_err(|e| ApiError::Internal(format!("freetext extraction failed: {e}")))
}

fn meta_json(c: &Candidate) -> Value {
    let types: serde_json::Map<String, Value> = c.types.iter().map(|t| (t.clone(), Value::String(t.clone()))).collect();
    let mut v = json!({"value": c.value, "original_value": c.value, "types": types, "default_type": c.default_type,
                       "to_ids": c.to_ids, "default_category": c.category});
    if !c.comment.is_empty() {
        v["comment"] = json!(c.comment);
    }
    v
}

/// `POST /events/freeTextImport/{event}`: `{"value": text, "adhereToWarninglists": false|true|"soft",
/// "distribution": n, "sharing_group_id": n, "returnMetaAttributes": bool}` (or wrapped in
/// `{"Attribute": …}`; the two flags may also be the 2nd and 3rd path arguments).
pub async fn import(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (event_id, uuid) = resolve(state, auth, key).await?;
    if !auth.role.perm_add {
        return Err(ApiError::Forbidden(crate::error::NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Attribute");
    let text = match body.get("value") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::SaveFailed {
                name: "Could not import the freetext".into(),
                errors: json!({"value": ["The text to import is missing: send {\"value\": \"…\"}."]}),
            });
        }
    };
    let path_arg = |i: usize| req.path.args.get(i).map(|s| Value::String(s.clone()));
    let adhere = adhere(body.get("adhereToWarninglists").cloned().or_else(|| path_arg(1)).as_ref())?;
    let meta_only = crate::body::flag(body.get("returnMetaAttributes").cloned().or_else(|| path_arg(2)).as_ref()).unwrap_or(false);
    let candidates = extract(state, text).await?;
    if meta_only {
        return Ok(json(Value::Array(candidates.iter().map(meta_json).collect())));
    }
    let matcher = if adhere == Adhere::No { None } else { Some(support::warninglists(state).await?) };
    // Each candidate as the attribute it would become, and whether a warninglist keeps it out.
    let mut planned: Vec<(Value, bool)> = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let attr_type = save_type(c);
        let mut a = json!({"type": attr_type, "value": c.value, "category": c.category, "to_ids": c.to_ids, "comment": c.comment});
        for field in ["distribution", "sharing_group_id"] {
            if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
                a[field] = v.clone();
            }
        }
        let hit = matcher.as_ref().is_some_and(|m| !m.check_all(attr_type, &c.value).is_empty());
        if hit && adhere == Adhere::Soft {
            a["to_ids"] = json!(false);
        }
        planned.push((a, hit && adhere == Adhere::Hard));
    }
    let tags = crate::input::TagMap::new();
    let mut drafts = Vec::new();
    for (a, skip) in &planned {
        if !skip {
            drafts.push(crate::input::attribute_draft(a, &tags)?);
        }
    }
    let facts = crate::regexps::load(state).await?;
    drafts.iter_mut().try_for_each(|d| crate::regexps::apply_attribute(&facts.regexps, d))?;
    let mut saved: VecDeque<Value> = VecDeque::new();
    let mut failed = std::collections::HashSet::new();
    if !drafts.is_empty() {
        let ids = IdPool { attributes: VecDeque::from(crate::commands::allocate_ids(state, "attribute", drafts.len()).await?), ..Default::default() };
        let single = drafts.len() == 1;
        let command = EventCommand::AddAttributes { drafts, break_on_duplicate: true, ids };
        let changes = match run(state, auth, uuid, "events.free_text_import", "import the freetext", command).await {
            Ok(executed) => {
                failed = executed.extra.iter().map(|(k, _)| k.clone()).collect();
                executed.changes
            }
            // A lone candidate that cannot be saved (a duplicate, say) is answered like any other.
            Err(ApiError::SaveFailed { .. }) if single => {
                failed.insert("attribute_0".to_string());
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        for c in &changes {
            if let Change::AttributeAdded(a) = c {
                let value = if a.value2.is_empty() { a.value1.clone() } else { format!("{}|{}", a.value1, a.value2) };
                saved.push_back(json!({
                    "id": a.id.to_string(), "uuid": a.uuid, "event_id": a.event_id.to_string(), "type": a.attr_type,
                    "category": a.category, "value": value, "to_ids": a.to_ids, "comment": a.comment,
                    "distribution": a.distribution.to_string(), "sharing_group_id": a.sharing_group_id.to_string(),
                    "timestamp": a.timestamp.to_string(), "deleted": false, "disable_correlation": a.disable_correlation,
                }));
            }
        }
    }
    // Every candidate is answered, saved or not (MISP returns the ones a warninglist kept out too).
    let mut out = Vec::with_capacity(planned.len());
    let mut draft_index = 0;
    for (a, skip) in planned {
        let stored = if skip {
            None
        } else {
            let i = draft_index;
            draft_index += 1;
            if failed.contains(&format!("attribute_{i}")) { None } else { saved.pop_front() }
        };
        out.push(stored.unwrap_or_else(|| {
            let mut a = a;
            a["event_id"] = json!(event_id.to_string());
            a["to_ids"] = json!(a["to_ids"].as_bool().unwrap_or(false));
            a
        }));
    }
    Ok(json(Value::Array(out)))
}
