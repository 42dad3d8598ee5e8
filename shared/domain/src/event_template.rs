//! MISP's event templates (`templates` with their `template_elements`): a form that fills an Event
//! with attributes, e.g. the training's "Phishing E-mail" (from address, malicious url, subject,
//! source IP). One stream per template; every change carries the complete template record, so a
//! template's history reads as a sequence of versions.
//!
//! A template has elements of three kinds: an *attribute* element (a type, or a type group for
//! `complex` elements; category, IDS flag, mandatory, batch = one value per line), a *file* element
//! (an upload that becomes a malware sample's hashes or an attachment) and a *text* element
//! (instructions only). Who may do what follows MISP: managing needs perm_template in the owning
//! organisation (or site admin); using needs the template to be the caller's organisation's or shared.

use crate::actor::Actor;
use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use crate::types::TypeCatalogue;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The type groups a `complex` attribute element may name (MISP's `ComplexTypeTool` routes).
pub const COMPLEX_GROUPS: [(&str, &[&str]); 2] = [
    ("File", &["filename", "filename|md5", "filename|sha1", "filename|sha256", "md5", "sha1", "sha256"]),
    ("CnC", &["url", "domain", "hostname", "ip-dst"]),
];

/// The types a complex group stands for (None: not a group).
pub fn complex_types(group: &str) -> Option<&'static [&'static str]> {
    COMPLEX_GROUPS.iter().find(|(g, _)| g.eq_ignore_ascii_case(group)).map(|(_, t)| *t)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: i64,
    pub uuid: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The owning organisation.
    pub org_id: i64,
    /// Usable by every organisation (MISP's `share`).
    #[serde(default)]
    pub share: bool,
    /// Tags attached to the Event when the template is used (MISP's `template_tags`).
    #[serde(default)]
    pub tag_ids: Vec<i64>,
    #[serde(default)]
    pub elements: Vec<Element>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    pub id: i64,
    pub position: i64,
    #[serde(flatten)]
    pub kind: ElementKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "element_definition", rename_all = "lowercase")]
pub enum ElementKind {
    Attribute(AttributeElement),
    Text(TextElement),
    File(FileElement),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeElement {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    /// A MISP type, or a type group (`File`, `CnC`) when `complex`.
    #[serde(rename = "type")]
    pub attr_type: String,
    #[serde(default)]
    pub complex: bool,
    #[serde(default)]
    pub to_ids: bool,
    #[serde(default)]
    pub mandatory: bool,
    /// One value per line.
    #[serde(default)]
    pub batch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextElement {
    pub name: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileElement {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    /// A malware sample (hashes, to_ids) rather than a plain attachment.
    #[serde(default)]
    pub malware: bool,
    #[serde(default)]
    pub mandatory: bool,
    #[serde(default)]
    pub batch: bool,
}

impl ElementKind {
    pub fn name(&self) -> &str {
        match self {
            ElementKind::Attribute(a) => &a.name,
            ElementKind::Text(t) => &t.name,
            ElementKind::File(f) => &f.name,
        }
    }

    pub fn definition(&self) -> &'static str {
        match self {
            ElementKind::Attribute(_) => "attribute",
            ElementKind::Text(_) => "text",
            ElementKind::File(_) => "file",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateState {
    pub template: Option<Template>,
    pub deleted: bool,
}

impl TemplateState {
    pub fn current(&self) -> Option<&Template> {
        self.template.as_ref().filter(|_| !self.deleted)
    }
}

/// Changes to a template's own fields (None: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub share: Option<bool>,
    pub tag_ids: Option<Vec<i64>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateCommand {
    /// `templates/add`: the record as the edge built it (owner = the caller's organisation).
    Create { template: Template },
    Update { patch: TemplatePatch },
    /// `templateElements/add|edit`: adds the element, or replaces the one with its id.
    PutElement { element: Element },
    DeleteElement { id: i64 },
    Delete,
}

/// May `role` acting for `actor` manage `template` (MISP: perm_template and the owning org)?
pub fn can_manage(actor: &Actor, role: &Role, template: &Template) -> bool {
    role.perm_site_admin || (role.perm_template && template.org_id == actor.org_id)
}

/// May the caller fill an Event from `template` (own organisation's or shared)?
pub fn can_use(actor: &Actor, role: &Role, template: &Template) -> bool {
    role.perm_site_admin || template.share || template.org_id == actor.org_id
}

fn forbidden() -> DomainError {
    DomainError::Forbidden("You do not have permission to use this functionality.".into())
}

fn not_found() -> DomainError {
    DomainError::NotFound("Invalid template.".into())
}

fn check_name(field: &str, name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid(field, "Mandatory field not set."));
    }
    if name.chars().count() > 255 {
        return Err(DomainError::invalid(field, "Too long (255 characters at most)."));
    }
    Ok(())
}

/// An element is well formed: a name, and for attribute/file elements a category the type allows.
///
/// # Errors
/// The first problem, naming the field.
pub fn validate_element(catalogue: &TypeCatalogue, element: &Element) -> Result<(), DomainError> {
    check_name("name", element.kind.name())?;
    match &element.kind {
        ElementKind::Attribute(a) => {
            if !catalogue.is_category(&a.category) {
                return Err(DomainError::invalid("category", format!("Unknown category {:?}.", a.category)));
            }
            let types: Vec<&str> = if a.complex {
                complex_types(&a.attr_type)
                    .ok_or_else(|| DomainError::invalid("type", format!("Unknown type group {:?} (File or CnC).", a.attr_type)))?
                    .to_vec()
            } else {
                if !catalogue.is_type(&a.attr_type) {
                    return Err(DomainError::invalid("type", format!("Unknown type {:?}.", a.attr_type)));
                }
                vec![a.attr_type.as_str()]
            };
            if !types.iter().any(|t| catalogue.category_allows(&a.category, t)) {
                return Err(DomainError::invalid("category", format!("Category {:?} does not allow type {:?}.", a.category, a.attr_type)));
            }
        }
        ElementKind::File(f) => {
            let t = if f.malware { "malware-sample" } else { "attachment" };
            if !catalogue.category_allows(&f.category, t) {
                return Err(DomainError::invalid("category", format!("Category {:?} does not allow type {t}.", f.category)));
            }
        }
        ElementKind::Text(_) => {}
    }
    Ok(())
}

/// # Errors
/// Forbidden without the rights above; NotFound for a missing template or element; Invalid fields.
pub fn decide(state: &TemplateState, actor: &Actor, role: &Role, catalogue: &TypeCatalogue, command: TemplateCommand) -> Result<Vec<Change>, DomainError> {
    if let TemplateCommand::Create { template } = command {
        if !(role.perm_template || role.perm_site_admin) {
            return Err(forbidden());
        }
        if state.template.is_some() {
            return Err(DomainError::AlreadyExists("A template with this uuid already exists.".into()));
        }
        check_name("name", &template.name)?;
        template.elements.iter().try_for_each(|e| validate_element(catalogue, e))?;
        return Ok(vec![Change::TemplateCreated(template)]);
    }
    let current = state.current().ok_or_else(not_found)?;
    if !can_manage(actor, role, current) {
        return Err(forbidden());
    }
    let mut next = current.clone();
    match command {
        TemplateCommand::Create { .. } => unreachable!("handled above"),
        TemplateCommand::Delete => return Ok(vec![Change::TemplateDeleted { id: current.id }]),
        TemplateCommand::Update { patch } => {
            if let Some(n) = patch.name {
                check_name("name", &n)?;
                next.name = n.trim().to_string();
            }
            if let Some(d) = patch.description {
                next.description = d;
            }
            if let Some(s) = patch.share {
                next.share = s;
            }
            if let Some(t) = patch.tag_ids {
                next.tag_ids = t;
            }
        }
        TemplateCommand::PutElement { element } => {
            validate_element(catalogue, &element)?;
            match next.elements.iter_mut().find(|e| e.id == element.id) {
                Some(e) => *e = element,
                None => next.elements.push(element),
            }
            next.elements.sort_by_key(|e| (e.position, e.id));
        }
        TemplateCommand::DeleteElement { id } => {
            let before = next.elements.len();
            next.elements.retain(|e| e.id != id);
            if next.elements.len() == before {
                return Err(DomainError::NotFound("Invalid template element.".into()));
            }
        }
    }
    if &next == current { Ok(vec![]) } else { Ok(vec![Change::TemplateUpdated(next)]) }
}

pub fn evolve(mut state: TemplateState, change: &Change) -> TemplateState {
    match change {
        Change::TemplateCreated(t) | Change::TemplateUpdated(t) => state.template = Some(t.clone()),
        Change::TemplateDeleted { .. } => state.deleted = true,
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn catalogue() -> TypeCatalogue {
        let types = ["email-src", "url", "ip-src", "ip-dst", "domain", "hostname", "filename", "md5", "malware-sample", "attachment"];
        let defaults: serde_json::Map<String, serde_json::Value> =
            types.iter().map(|t| (t.to_string(), serde_json::json!({"default_category": "Payload delivery", "to_ids": 1}))).collect();
        TypeCatalogue::from_describe_types(&serde_json::json!({
            "types": types,
            "categories": ["Payload delivery", "Network activity"],
            "category_type_mappings": {
                "Payload delivery": ["email-src", "url", "ip-src", "ip-dst", "domain", "hostname", "filename", "md5", "malware-sample", "attachment"],
                "Network activity": ["url", "ip-src", "ip-dst", "domain", "hostname"]
            },
            "sane_defaults": defaults
        }))
        .expect("catalogue")
    }

    fn actor(org_id: i64) -> Actor {
        Actor { org_id, ..Actor::system("test") }
    }

    fn attribute(id: i64, name: &str, t: &str, category: &str) -> Element {
        Element {
            id,
            position: id,
            kind: ElementKind::Attribute(AttributeElement {
                name: name.into(),
                description: String::new(),
                category: category.into(),
                attr_type: t.into(),
                complex: false,
                to_ids: true,
                mandatory: true,
                batch: false,
            }),
        }
    }

    fn template() -> Template {
        Template { id: 1, uuid: Uuid::from_u128(1), name: "Phishing".into(), description: String::new(), org_id: 1, share: false, tag_ids: vec![], elements: vec![] }
    }

    #[test]
    fn an_element_serialises_with_misps_element_definition() {
        let e = attribute(3, "From address", "email-src", "Payload delivery");
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["element_definition"], "attribute");
        assert_eq!(v["type"], "email-src");
        assert_eq!(serde_json::from_value::<Element>(v).expect("back"), e);
    }

    #[test]
    fn managing_needs_perm_template_in_the_owning_org_and_using_needs_share_or_the_org() {
        let cat = catalogue();
        let admin = default_role(1).expect("role 1");
        let user = default_role(3).expect("role 3");
        let org_admin = default_role(2).expect("role 2");
        assert!(matches!(decide(&TemplateState::default(), &actor(1), &user, &cat, TemplateCommand::Create { template: template() }), Err(DomainError::Forbidden(_))));
        let created = decide(&TemplateState::default(), &actor(1), &org_admin, &cat, TemplateCommand::Create { template: template() }).expect("created");
        let state = created.iter().fold(TemplateState::default(), evolve);
        let put = TemplateCommand::PutElement { element: attribute(5, "From", "email-src", "Payload delivery") };
        assert!(matches!(decide(&state, &actor(2), &org_admin, &cat, put.clone()), Err(DomainError::Forbidden(_))), "another org's org admin");
        assert!(decide(&state, &actor(2), &admin, &cat, put.clone()).is_ok(), "site admin");
        let t = state.current().expect("current");
        assert!(can_use(&actor(1), &user, t) && !can_use(&actor(2), &user, t));
        assert!(can_use(&actor(2), &user, &Template { share: true, ..t.clone() }));
    }

    #[test]
    fn elements_are_validated_against_the_type_catalogue() {
        let cat = catalogue();
        assert!(validate_element(&cat, &attribute(1, "From", "email-src", "Payload delivery")).is_ok());
        assert!(matches!(validate_element(&cat, &attribute(1, "From", "nonsense", "Payload delivery")), Err(DomainError::Invalid { field, .. }) if field == "type"));
        assert!(matches!(validate_element(&cat, &attribute(1, "From", "email-src", "Network activity")), Err(DomainError::Invalid { field, .. }) if field == "category"));
        assert!(matches!(validate_element(&cat, &attribute(1, " ", "email-src", "Payload delivery")), Err(DomainError::Invalid { field, .. }) if field == "name"));
        let mut cnc = attribute(2, "C2", "CnC", "Network activity");
        if let ElementKind::Attribute(a) = &mut cnc.kind {
            a.complex = true;
        }
        assert!(validate_element(&cat, &cnc).is_ok());
    }

    #[test]
    fn elements_are_added_replaced_ordered_and_deleted() {
        let cat = catalogue();
        let admin = default_role(1).expect("role 1");
        let a = actor(1);
        let mut state = [Change::TemplateCreated(template())].iter().fold(TemplateState::default(), evolve);
        for e in [attribute(2, "B", "url", "Payload delivery"), attribute(1, "A", "email-src", "Payload delivery")] {
            let c = decide(&state, &a, &admin, &cat, TemplateCommand::PutElement { element: e }).expect("put");
            state = c.iter().fold(state, evolve);
        }
        let names: Vec<_> = state.current().expect("t").elements.iter().map(|e| e.kind.name().to_string()).collect();
        assert_eq!(names, ["A", "B"], "ordered by position");
        let c = decide(&state, &a, &admin, &cat, TemplateCommand::PutElement { element: attribute(2, "B2", "url", "Payload delivery") }).expect("replace");
        state = c.iter().fold(state, evolve);
        assert_eq!(state.current().expect("t").elements.len(), 2);
        assert!(matches!(decide(&state, &a, &admin, &cat, TemplateCommand::DeleteElement { id: 9 }), Err(DomainError::NotFound(_))));
        let c = decide(&state, &a, &admin, &cat, TemplateCommand::Delete).expect("delete");
        state = c.iter().fold(state, evolve);
        assert!(state.current().is_none());
    }
}
