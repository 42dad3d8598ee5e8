//! MISP's event templates: `templates/index|view|add|edit|delete|templateChoices`,
//! `templateElements/index|add|edit|delete`, and `templates/populateEventFromTemplate/{template}/{event}`,
//! which checks the submitted values against each element and adds every resulting attribute (and the
//! template's tags) to the Event in one commit.
//!
//! Who may see a template is [`event_template::can_use`] (own organisation's or shared; site admins
//! all); who may change one is [`event_template::can_manage`].

use super::events::{invalid_event, merge, resolve};
use super::support::{self, json, saved};
use super::Request;
use crate::auth::Authed;
use crate::body::{flag, text};
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::{AttributeDraft, EventDraft, TagDraft, TagInfo};
use cairn_domain::event_template::{
    self, AttributeElement, Element, ElementKind, FileElement, Template, TemplateCommand, TemplatePatch, TemplateState, TextElement,
};
use cairn_domain::stream;
use serde_json::{Value, json};
use uuid::Uuid;

fn invalid_template() -> ApiError {
    ApiError::NotFound("Invalid template.".into())
}

fn invalid_element() -> ApiError {
    ApiError::NotFound("Invalid template element.".into())
}

fn refusal(e: cairn_domain::DomainError, action: &str) -> ApiError {
    super::events::refusal(e, action)
}

/// Every live template (few: they are forms), in id order.
async fn all(state: &AppState) -> Result<Vec<Template>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client.query("SELECT doc FROM rm.event_templates ORDER BY id", &[]).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_value(r.get::<_, Value>(0)).ok()).collect())
}

/// The template a path argument names (id or uuid), if the caller may use it.
async fn find(state: &AppState, auth: &Authed, key: &str) -> Result<Template, ApiError> {
    let client = state.pool.get().await?;
    let row = match (key.trim().parse::<i64>(), Uuid::parse_str(key.trim())) {
        (Ok(id), _) => client.query_opt("SELECT doc FROM rm.event_templates WHERE id = $1", &[&id]).await?,
        (_, Ok(uuid)) => client.query_opt("SELECT doc FROM rm.event_templates WHERE uuid = $1", &[&uuid]).await?,
        _ => None,
    };
    let t: Template = row.and_then(|r| serde_json::from_value(r.get::<_, Value>(0)).ok()).ok_or_else(invalid_template)?;
    if !event_template::can_use(&auth.actor(), &auth.role, &t) {
        return Err(invalid_template());
    }
    Ok(t)
}

async fn org_name(state: &AppState, org_id: i64) -> Result<String, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT name FROM rm.organisations WHERE id = $1", &[&org_id]).await?.map(|r| r.get(0)).unwrap_or_default())
}

fn element_json(template_id: i64, e: &Element) -> Value {
    let mut attribute = Vec::new();
    let mut text = Vec::new();
    let mut file = Vec::new();
    let head = json!({"id": e.id.to_string(), "template_element_id": e.id.to_string()});
    let with = |mut v: Value, extra: Value| {
        if let (Some(m), Some(x)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        v
    };
    match &e.kind {
        ElementKind::Attribute(a) => attribute.push(with(
            head,
            json!({"name": a.name, "description": a.description, "to_ids": a.to_ids, "category": a.category, "complex": a.complex,
                   "type": a.attr_type, "mandatory": a.mandatory, "batch": a.batch}),
        )),
        ElementKind::Text(t) => text.push(with(head, json!({"name": t.name, "text": t.text}))),
        ElementKind::File(f) => file.push(with(
            head,
            json!({"name": f.name, "description": f.description, "category": f.category, "malware": f.malware,
                   "mandatory": f.mandatory, "batch": f.batch}),
        )),
    }
    json!({
        "id": e.id.to_string(), "template_id": template_id.to_string(), "position": e.position.to_string(),
        "element_definition": e.kind.definition(),
        "TemplateElementAttribute": attribute, "TemplateElementText": text, "TemplateElementFile": file,
    })
}

fn template_head(t: &Template, org: &str) -> Value {
    json!({"id": t.id.to_string(), "uuid": t.uuid, "name": t.name, "description": t.description, "org": org,
           "org_id": t.org_id.to_string(), "share": t.share})
}

async fn template_json(state: &AppState, t: &Template) -> Result<Value, ApiError> {
    let mut tags = Vec::new();
    for id in &t.tag_ids {
        if let Some(tag) = support::find_tag(state, &id.to_string()).await? {
            tags.push(json!({"template_id": t.id.to_string(), "tag_id": tag.id.to_string(),
                             "Tag": {"id": tag.id.to_string(), "name": tag.name, "colour": tag.colour, "exportable": tag.exportable}}));
        }
    }
    Ok(json!({
        "Template": template_head(t, &org_name(state, t.org_id).await?),
        "TemplateTag": tags,
        "TemplateElement": t.elements.iter().map(|e| element_json(t.id, e)).collect::<Vec<_>>(),
    }))
}

/// Runs one template command on the template's stream.
async fn execute(state: &AppState, auth: &Authed, stream_id: Uuid, name: &'static str, action: &str, command: TemplateCommand) -> Result<(), ApiError> {
    let meta = CommandMeta::new(name, auth.actor());
    let (actor, role) = (auth.actor(), auth.role.clone());
    let catalogue = &state.reference.catalogue;
    commands::execute(state, &meta, stream_id, stream::EVENT_TEMPLATE, event_template::evolve, |s: &TemplateState| {
        Ok((event_template::decide(s, &actor, &role, catalogue, command.clone()).map_err(|e| refusal(e, action))?, ()))
    })
    .await
    .map(drop)
}

fn bool_field(v: &Value, name: &str, default: bool) -> bool {
    flag(v.get(name)).unwrap_or(default)
}

/// An element from its JSON (MISP's `TemplateElementAttribute|Text|File` wrappers or flat), of `kind`.
fn element_kind(kind: &str, v: &Value) -> Result<ElementKind, ApiError> {
    let wrapper = match kind {
        "attribute" => "TemplateElementAttribute",
        "text" => "TemplateElementText",
        "file" => "TemplateElementFile",
        other => return Err(ApiError::BadRequest(format!("Unknown element kind {other:?}: attribute, text or file."))),
    };
    let v = match v.get(wrapper) {
        Some(Value::Array(a)) => a.first().unwrap_or(v),
        Some(w) if w.is_object() => w,
        _ => v,
    };
    let s = |name: &str| text(v.get(name)).unwrap_or_default();
    Ok(match kind {
        "attribute" => ElementKind::Attribute(AttributeElement {
            name: s("name"),
            description: s("description"),
            category: s("category"),
            attr_type: s("type"),
            complex: bool_field(v, "complex", false),
            to_ids: bool_field(v, "to_ids", false),
            mandatory: bool_field(v, "mandatory", false),
            batch: bool_field(v, "batch", false),
        }),
        "text" => ElementKind::Text(TextElement { name: s("name"), text: s("text") }),
        _ => ElementKind::File(FileElement {
            name: s("name"),
            description: s("description"),
            category: s("category"),
            malware: bool_field(v, "malware", false),
            mandatory: bool_field(v, "mandatory", false),
            batch: bool_field(v, "batch", false),
        }),
    })
}

/// An element of a `TemplateElement` list: `{"element_definition": kind, "position": n, …}`.
fn listed_element(v: &Value, id: i64, position: i64) -> Result<Element, ApiError> {
    let kind = text(v.get("element_definition")).unwrap_or_else(|| "attribute".into());
    let position = v.get("position").and_then(|p| text(Some(p))).and_then(|p| p.parse().ok()).unwrap_or(position);
    Ok(Element { id, position, kind: element_kind(&kind, v)? })
}

/// Tag ids for `tags` (names or ids of existing tags: resolving them writes nothing, so a template that
/// is then refused leaves no trace).
async fn tag_ids(state: &AppState, v: Option<&Value>) -> Result<Option<Vec<i64>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let names: Vec<String> = match v {
        Value::Array(a) => a.iter().filter_map(|t| text(t.get("name")).or_else(|| text(Some(t)))).collect(),
        Value::String(s) => s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        _ => return Err(ApiError::BadRequest("tags must be a list of tag names or ids.".into())),
    };
    let mut ids = Vec::new();
    for n in &names {
        let found = support::find_tag(state, n).await?.map(|t| t.id);
        ids.push(found.ok_or_else(|| ApiError::SaveFailed {
            name: "Could not save the template".into(),
            errors: json!({"tags": [format!("Unknown tag {n:?}.")]}),
        })?);
    }
    Ok(Some(ids))
}

/// `GET /templates/index`: the templates the caller may use.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for t in all(state).await?.iter().filter(|t| event_template::can_use(&auth.actor(), &auth.role, t)) {
        out.push(json!({"Template": template_head(t, &org_name(state, t.org_id).await?)}));
    }
    Ok(json(Value::Array(out)))
}

/// `GET /templates/view/{id}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let t = find(state, auth, req.path.args.first().ok_or_else(invalid_template)?).await?;
    Ok(json(template_json(state, &t).await?))
}

/// `POST /templates/add` with `{"Template": {name, description, share, tags}, "TemplateElement": [...]}`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_template || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Template");
    let listed: Vec<&Value> = match body.get("TemplateElement").or_else(|| v.get("TemplateElement")) {
        Some(Value::Array(a)) => a.iter().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ApiError::BadRequest("TemplateElement must be a list.".into())),
    };
    let element_ids = commands::allocate_ids(state, "template_element", listed.len()).await?;
    let mut elements = Vec::with_capacity(listed.len());
    for (i, (e, id)) in listed.iter().zip(element_ids).enumerate() {
        elements.push(listed_element(e, id, i as i64 + 1)?);
    }
    elements.sort_by_key(|e| (e.position, e.id));
    let id = commands::allocate_ids(state, "template", 1).await?.first().copied().unwrap_or_default();
    let template = Template {
        id,
        uuid: text(v.get("uuid")).and_then(|u| Uuid::parse_str(&u).ok()).unwrap_or_else(Uuid::new_v4),
        name: text(v.get("name")).unwrap_or_default().trim().to_string(),
        description: text(v.get("description")).unwrap_or_default(),
        org_id: auth.user.org_id,
        share: bool_field(v, "share", false),
        tag_ids: tag_ids(state, v.get("tags").or_else(|| body.get("TemplateTag"))).await?.unwrap_or_default(),
        elements,
    };
    execute(state, auth, template.uuid, "templates.add", "save the template", TemplateCommand::Create { template: template.clone() }).await?;
    Ok(json(template_json(state, &template).await?))
}

/// `POST /templates/edit/{id}`: name, description, share, tags.
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let t = find(state, auth, req.path.args.first().ok_or_else(invalid_template)?).await?;
    let body = crate::body::parse(&req.body)?;
    let v = crate::body::unwrap(&body, "Template");
    let patch = TemplatePatch {
        name: text(v.get("name")),
        description: text(v.get("description")),
        share: flag(v.get("share")),
        tag_ids: tag_ids(state, v.get("tags")).await?,
    };
    execute(state, auth, t.uuid, "templates.edit", "save the template", TemplateCommand::Update { patch }).await?;
    let t = find(state, auth, &t.id.to_string()).await?;
    Ok(json(template_json(state, &t).await?))
}

/// `POST /templates/delete/{id}`.
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let t = find(state, auth, req.path.args.first().ok_or_else(invalid_template)?).await?;
    execute(state, auth, t.uuid, "templates.delete", "delete the template", TemplateCommand::Delete).await?;
    Ok(saved("Template deleted.", &req.url, Some(t.id.to_string())))
}

/// `GET /templateElements/index/{template_id}`.
pub async fn element_index(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let t = find(state, auth, req.path.args.first().ok_or_else(invalid_template)?).await?;
    Ok(json(Value::Array(t.elements.iter().map(|e| json!({"TemplateElement": element_json(t.id, e)})).collect())))
}

/// `POST /templateElements/add/{attribute|text|file}/{template_id}`.
pub async fn element_add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (kind, key) = match req.path.args.as_slice() {
        [kind, key, ..] => (kind.to_ascii_lowercase(), key.clone()),
        _ => return Err(ApiError::BadRequest("Use templateElements/add/{attribute|text|file}/{template_id}.".into())),
    };
    let t = find(state, auth, &key).await?;
    let body = crate::body::parse(&req.body)?;
    let id = commands::allocate_ids(state, "template_element", 1).await?.first().copied().unwrap_or_default();
    let next = t.elements.iter().map(|e| e.position).max().unwrap_or(0) + 1;
    let position = body.get("position").and_then(|p| text(Some(p))).and_then(|p| p.parse().ok()).unwrap_or(next);
    let element = Element { id, position, kind: element_kind(&kind, &body)? };
    execute(state, auth, t.uuid, "template_elements.add", "save the template element", TemplateCommand::PutElement { element: element.clone() }).await?;
    Ok(json(json!({"TemplateElement": element_json(t.id, &element)})))
}

/// The template holding element `id`, if the caller may use it.
async fn template_of_element(state: &AppState, auth: &Authed, id: i64) -> Result<(Template, Element), ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt("SELECT id FROM rm.event_templates WHERE doc->'elements' @> jsonb_build_array(jsonb_build_object('id', $1::bigint))", &[&id])
        .await?
        .ok_or_else(invalid_element)?;
    let t = find(state, auth, &row.get::<_, i64>(0).to_string()).await.map_err(|_| invalid_element())?;
    let e = t.elements.iter().find(|e| e.id == id).cloned().ok_or_else(invalid_element)?;
    Ok((t, e))
}

fn element_id_arg(req: &Request) -> Result<i64, ApiError> {
    req.path.args.last().and_then(|a| a.parse().ok()).ok_or_else(invalid_element)
}

/// `POST /templateElements/edit/[{kind}/]{id}`: the element's fields (its kind stays).
pub async fn element_edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (t, current) = template_of_element(state, auth, element_id_arg(req)?).await?;
    let body = crate::body::parse(&req.body)?;
    // Unsent fields keep their values: start from the current element's JSON and overlay the body.
    let mut merged = serde_json::to_value(&current.kind).unwrap_or(Value::Null);
    let kind = current.kind.definition();
    let wrapper = ["TemplateElementAttribute", "TemplateElementText", "TemplateElementFile"];
    let sent = wrapper.iter().find_map(|w| body.get(*w).filter(|v| v.is_object())).unwrap_or(&body);
    if let (Some(m), Some(s)) = (merged.as_object_mut(), sent.as_object()) {
        for (k, v) in s {
            m.insert(k.clone(), v.clone());
        }
    }
    let position = body.get("position").and_then(|p| text(Some(p))).and_then(|p| p.parse().ok()).unwrap_or(current.position);
    let element = Element { id: current.id, position, kind: element_kind(kind, &merged)? };
    execute(state, auth, t.uuid, "template_elements.edit", "save the template element", TemplateCommand::PutElement { element: element.clone() }).await?;
    Ok(json(json!({"TemplateElement": element_json(t.id, &element)})))
}

/// `POST /templateElements/delete/{id}`.
pub async fn element_delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let id = element_id_arg(req)?;
    let (t, _) = template_of_element(state, auth, id).await?;
    execute(state, auth, t.uuid, "template_elements.delete", "delete the template element", TemplateCommand::DeleteElement { id }).await?;
    Ok(saved("Element deleted.", &req.url, Some(id.to_string())))
}

/// `GET /templates/templateChoices/{event_id}`: the templates the caller may fill that Event from.
pub async fn choices(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    resolve(state, auth, req.path.args.first().ok_or_else(invalid_event)?).await?;
    index(state, auth).await
}

/// The values submitted for an element: `value_<id>` (MISP's form field), the element's id, or its
/// name, at the top level or under `values`; a string (one value per line for batch elements) or a
/// list.
fn submitted<'a>(body: &'a Value, e: &Element) -> Option<&'a Value> {
    let keys = [format!("value_{}", e.id), e.id.to_string(), e.kind.name().to_string()];
    let find_in = |v: &'a Value| -> Option<&'a Value> {
        let m = v.as_object()?;
        keys.iter().find_map(|k| m.get(k)).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(e.kind.name())).map(|(_, v)| v))
    };
    body.get("values").and_then(find_in).or_else(|| find_in(body)).filter(|v| !v.is_null())
}

fn values_of(v: &Value, batch: bool) -> Vec<String> {
    let raw: Vec<String> = match v {
        Value::Array(a) => a.iter().filter_map(|x| text(Some(x))).collect(),
        other => text(Some(other)).into_iter().collect(),
    };
    let mut out = Vec::new();
    for r in raw {
        if batch {
            out.extend(r.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
        } else if !r.trim().is_empty() {
            out.push(r.trim().to_string());
        }
    }
    out
}

fn population_error(errors: serde_json::Map<String, Value>) -> ApiError {
    ApiError::SaveFailed { name: "Could not populate the Event from the template".into(), errors: Value::Object(errors) }
}

/// The type a complex element's value is: MISP's type detection (the freetext extractor) among the
/// group's types; filenames for the File group when nothing else fits.
async fn complex_type(state: &AppState, group: &str, value: &str) -> Result<Option<String>, ApiError> {
    let allowed = event_template::complex_types(group).unwrap_or(&[]);
    let found = super::freetext::extract(state, value.to_string()).await?;
    let fits = found.iter().filter(|c| c.value.len() * 2 >= value.len()).find_map(|c| {
        std::iter::once(&c.default_type).chain(c.types.iter()).find(|t| allowed.contains(&t.as_str())).cloned()
    });
    Ok(fits.or_else(|| (group.eq_ignore_ascii_case("File") && !value.contains(char::is_whitespace)).then(|| "filename".to_string())))
}

/// Attributes for a file element: `{"filename", "data": base64}` entries. A malware sample gives its
/// `filename|md5` and `filename|sha256` (to_ids), another file an `attachment` named after it.
fn file_attributes(f: &FileElement, v: &Value) -> Result<Vec<(String, String, bool)>, String> {
    use base64::Engine;
    use sha2::Digest;
    let files: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for file in files {
        let name = text(file.get("filename")).filter(|n| !n.trim().is_empty()).ok_or("each file needs a filename")?;
        let data = text(file.get("data")).unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|_| format!("the data of {name:?} is not base64"))?;
        if f.malware {
            out.push(("filename|md5".into(), format!("{name}|{}", hex::encode(md5::Md5::digest(&bytes))), true));
            out.push(("filename|sha256".into(), format!("{name}|{}", hex::encode(sha2::Sha256::digest(&bytes))), true));
        } else {
            out.push(("attachment".into(), name, false));
        }
    }
    Ok(out)
}

/// `POST /templates/populateEventFromTemplate/{template}/{event}` with the element values (see
/// [`submitted`]) and optional `distribution`/`sharing_group_id`; `"preview": true` answers the
/// attributes that would be added without adding them. Mandatory elements without a value, values
/// that are not of the element's type, and unknown elements refuse the whole submission.
pub async fn populate(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (template_key, event_key) = match req.path.args.as_slice() {
        [t, e, ..] => (t.clone(), e.clone()),
        _ => return Err(ApiError::BadRequest("Use templates/populateEventFromTemplate/{template_id}/{event_id}.".into())),
    };
    let t = find(state, auth, &template_key).await?;
    let (event_id, uuid) = resolve(state, auth, &event_key).await?;
    if !auth.role.perm_add {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Template");
    let preview = flag(body.get("preview")).unwrap_or(false);
    let distribution = body.get("distribution").and_then(|d| text(Some(d))).map(|d| d.parse::<u8>()).transpose().map_err(|_| {
        population_error([("distribution".to_string(), json!(["Distribution must be 0-5."]))].into_iter().collect())
    })?;
    let sharing_group_id = body.get("sharing_group_id").and_then(|d| text(Some(d))).and_then(|d| d.parse::<i64>().ok());

    let mut errors = serde_json::Map::new();
    let mut planned: Vec<(String, String, String, String, bool)> = Vec::new(); // element, type, category, value, to_ids
    for e in &t.elements {
        let sent = submitted(body, e);
        match &e.kind {
            ElementKind::Text(_) => {}
            ElementKind::Attribute(a) => {
                let values = sent.map(|v| values_of(v, a.batch)).unwrap_or_default();
                if values.is_empty() {
                    if a.mandatory {
                        errors.insert(a.name.clone(), json!(["This field is mandatory."]));
                    }
                    continue;
                }
                if !a.batch && values.len() > 1 {
                    errors.insert(a.name.clone(), json!(["This field takes one value."]));
                    continue;
                }
                for value in values {
                    let attr_type = if a.complex {
                        match complex_type(state, &a.attr_type, &value).await? {
                            Some(t) => t,
                            None => {
                                errors.insert(a.name.clone(), json!([format!("{value:?} is not a {} indicator.", a.attr_type)]));
                                continue;
                            }
                        }
                    } else {
                        a.attr_type.clone()
                    };
                    planned.push((a.name.clone(), attr_type, a.category.clone(), value, a.to_ids));
                }
            }
            ElementKind::File(f) => match sent.map(|v| file_attributes(f, v)) {
                None if f.mandatory => {
                    errors.insert(f.name.clone(), json!(["This field is mandatory."]));
                }
                None => {}
                Some(Err(reason)) => {
                    errors.insert(f.name.clone(), json!([reason]));
                }
                Some(Ok(list)) => planned.extend(list.into_iter().map(|(ty, value, ids)| (f.name.clone(), ty, f.category.clone(), value, ids))),
            },
        }
    }
    if !errors.is_empty() {
        return Err(population_error(errors));
    }
    if planned.is_empty() {
        return Err(population_error([("values".to_string(), json!(["No value was submitted for any element."]))].into_iter().collect()));
    }
    let mut drafts = Vec::with_capacity(planned.len());
    for (element, attr_type, category, value, to_ids) in &planned {
        let d = AttributeDraft {
            uuid: Uuid::new_v4(),
            attr_type: Some(attr_type.clone()),
            category: Some(category.clone()),
            value: Some(value.clone()),
            to_ids: Some(*to_ids),
            distribution,
            sharing_group_id,
            ..Default::default()
        };
        // The value checked as any attribute's would be (the Event's own check follows at the
        // commit), so a wrong value is refused here, named, before anything is written.
        if let Err(e) = cairn_domain::value::normalise(attr_type, value) {
            return Err(population_error([(element.clone(), json!([format!("{value:?}: {}", e.0)]))].into_iter().collect()));
        }
        drafts.push(d);
    }
    if preview {
        let attrs: Vec<Value> = drafts
            .iter()
            .map(|d| json!({"uuid": d.uuid, "event_id": event_id.to_string(), "type": d.attr_type, "category": d.category,
                            "value": d.value, "to_ids": d.to_ids}))
            .collect();
        return Ok(json(json!({"Attribute": attrs})));
    }
    let mut tags = Vec::new();
    for id in &t.tag_ids {
        if let Some(tag) = support::find_tag(state, &id.to_string()).await? {
            let info = TagInfo { id: tag.id, name: tag.name, org_id: tag.org_id, user_id: tag.user_id, local_only: tag.local_only };
            tags.push(TagDraft { tag: info, local: false, relationship_type: None, deleted: false });
        }
    }
    let count = drafts.len();
    let draft = EventDraft { uuid, attributes: drafts, tags, ..Default::default() };
    let executed = merge(state, auth, uuid, draft, support::PlannedTags::default(), "templates.populate_event", "populate the Event").await?;
    let added = executed.changes.iter().filter(|c| matches!(c, cairn_domain::Change::AttributeAdded(_))).count();
    let mut answer = crate::misp::save_success(&format!("Event populated, {added} attribute(s) added."), &req.url, Some(event_id.to_string()));
    answer["attributes_added"] = json!(added);
    if added < count {
        answer["errors"] = json!(executed.extra.iter().map(|(k, e)| json!({k.clone(): e.to_string()})).collect::<Vec<_>>());
    }
    Ok(json(answer))
}
