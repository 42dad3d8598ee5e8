//! The instance aggregate: facts about this Cairn instance (bootstrap, server settings, default role).
//! A singleton stream ([`crate::stream::instance_stream`]).

use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// This instance's own uuid (MISP `MISP.uuid`).
    pub instance_uuid: Uuid,
    pub host_org_id: i64,
    pub host_org_uuid: Uuid,
    pub admin_user_id: i64,
    pub admin_user_uuid: Uuid,
}

/// A row of MISP's "Import Regexp" table: applied to incoming attribute values of `attr_type`
/// (`ALL` for every type) before validation; an empty replacement blocks the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regexp {
    pub id: i64,
    pub regexp: String,
    pub replacement: String,
    #[serde(rename = "type")]
    pub attr_type: String,
}

/// A correlation exclusion: values matching it never correlate (`%` wildcards at either end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationExclusion {
    pub id: i64,
    pub value: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceState {
    pub bootstrap: Option<Bootstrap>,
    pub settings: BTreeMap<String, Value>,
    pub default_role_id: Option<i64>,
    /// Enabled taxonomies by namespace, with their `required` flag.
    pub taxonomies: BTreeMap<String, bool>,
    pub regexps: BTreeMap<i64, Regexp>,
    pub exclusions: BTreeMap<i64, CorrelationExclusion>,
    /// Enabled warninglists by key (their directory name in misp-warninglists).
    pub warninglists: BTreeSet<String>,
    /// Roles added beside MISP's six defaults (`admin/roles/add`), by id.
    pub roles: BTreeMap<i64, Role>,
    /// Connected servers, by id.
    pub servers: BTreeMap<i64, crate::server::Server>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InstanceCommand {
    Bootstrap(Bootstrap),
    ChangeSetting { name: String, value: Value },
    SetDefaultRole { role: Role },
    EnableTaxonomy { namespace: String },
    DisableTaxonomy { namespace: String },
    SetTaxonomyRequired { namespace: String, required: bool },
    /// `valid` is the edge's verdict on the pattern (the domain has no regex engine).
    PutRegexp { regexp: Regexp, valid: bool },
    DeleteRegexp { id: i64 },
    AddCorrelationExclusion { exclusion: CorrelationExclusion },
    DeleteCorrelationExclusion { id: i64 },
    /// `warninglists/toggleEnable`: `keys` are the lists the request matched (known to exist);
    /// `enabled: None` flips each one.
    ToggleWarninglists { keys: Vec<String>, enabled: Option<bool> },
    /// `admin/roles/add|edit`: a role beside the six defaults (which cannot be changed).
    PutRole { role: Role },
    DeleteRole { id: i64 },
    /// `servers/add|edit` (site admin).
    PutServer { server: crate::server::Server },
    DeleteServer { id: i64 },
}

/// # Errors
/// AlreadyExists for a second bootstrap; Forbidden for non site admins.
pub fn decide(state: &InstanceState, role: &Role, command: InstanceCommand) -> Result<Vec<Change>, DomainError> {
    match command {
        InstanceCommand::Bootstrap(b) => match state.bootstrap {
            Some(_) => Err(DomainError::AlreadyExists("This instance is already bootstrapped.".into())),
            None => Ok(vec![Change::InstanceBootstrapped(b)]),
        },
        InstanceCommand::PutRegexp { .. } | InstanceCommand::DeleteRegexp { .. } if !(role.perm_site_admin || role.perm_regexp_access) => {
            Err(DomainError::Forbidden("You do not have permission to use this functionality.".into()))
        }
        InstanceCommand::PutRegexp { regexp, valid } => {
            if regexp.regexp.trim().is_empty() || !valid {
                return Err(DomainError::invalid("regexp", "Invalid regular expression."));
            }
            if regexp.attr_type.trim().is_empty() {
                return Err(DomainError::invalid("type", "Mandatory field not set."));
            }
            match state.regexps.get(&regexp.id) {
                Some(current) if current == &regexp => Ok(vec![]),
                Some(_) => Ok(vec![Change::RegexpUpdated(regexp)]),
                None => Ok(vec![Change::RegexpAdded(regexp)]),
            }
        }
        InstanceCommand::DeleteRegexp { id } => {
            if !state.regexps.contains_key(&id) {
                return Err(DomainError::NotFound("Invalid regexp".into()));
            }
            Ok(vec![Change::RegexpDeleted { id }])
        }
        InstanceCommand::ToggleWarninglists { .. } if !(role.perm_site_admin || role.perm_warninglist) => {
            Err(DomainError::Forbidden("You do not have permission to use this functionality.".into()))
        }
        InstanceCommand::ToggleWarninglists { keys, enabled } => {
            if keys.is_empty() {
                return Err(DomainError::NotFound("Warninglist(s) not found.".into()));
            }
            let mut seen = BTreeSet::new();
            Ok(keys
                .into_iter()
                .filter(|k| seen.insert(k.clone()))
                .filter_map(|key| {
                    let on = state.warninglists.contains(&key);
                    match enabled.unwrap_or(!on) {
                        true if !on => Some(Change::WarninglistEnabled { key }),
                        false if on => Some(Change::WarninglistDisabled { key }),
                        _ => None,
                    }
                })
                .collect())
        }
        _ if !role.perm_site_admin => Err(DomainError::Forbidden("You do not have permission to use this functionality.".into())),
        InstanceCommand::AddCorrelationExclusion { exclusion } => {
            let value = exclusion.value.trim();
            if value.is_empty() || value.chars().count() > 2_048 {
                return Err(DomainError::invalid("value", "Mandatory field not set."));
            }
            if state.exclusions.values().any(|e| e.value.eq_ignore_ascii_case(value)) {
                return Err(DomainError::invalid("value", "This value is already excluded."));
            }
            Ok(vec![Change::CorrelationExclusionAdded(CorrelationExclusion { value: value.to_string(), ..exclusion })])
        }
        InstanceCommand::DeleteCorrelationExclusion { id } => {
            if !state.exclusions.contains_key(&id) {
                return Err(DomainError::NotFound("Invalid correlation exclusion.".into()));
            }
            Ok(vec![Change::CorrelationExclusionDeleted { id }])
        }
        InstanceCommand::PutRole { role: r } => {
            if crate::role::default_role(r.id).is_some() {
                return Err(DomainError::invalid("id", "MISP's default roles cannot be changed."));
            }
            if r.name.trim().is_empty() {
                return Err(DomainError::invalid("name", "Mandatory field not set."));
            }
            let taken = crate::role::default_roles().iter().chain(state.roles.values()).any(|x| x.id != r.id && x.name.eq_ignore_ascii_case(r.name.trim()));
            if taken {
                return Err(DomainError::invalid("name", "A role with this name already exists."));
            }
            match state.roles.get(&r.id) {
                Some(current) if current == &r => Ok(vec![]),
                Some(_) => Ok(vec![Change::RoleUpdated(r)]),
                None => Ok(vec![Change::RoleAdded(r)]),
            }
        }
        InstanceCommand::DeleteRole { id } => {
            if !state.roles.contains_key(&id) {
                return Err(DomainError::NotFound("Invalid role".into()));
            }
            if state.default_role_id == Some(id) {
                return Err(DomainError::invalid("id", "The default role cannot be deleted."));
            }
            Ok(vec![Change::RoleDeleted { id }])
        }
        InstanceCommand::PutServer { .. } | InstanceCommand::DeleteServer { .. } if !role.perm_site_admin => {
            Err(DomainError::Forbidden("You do not have permission to use this functionality.".into()))
        }
        InstanceCommand::PutServer { server } => {
            crate::server::validate(&server)?;
            match state.servers.get(&server.id) {
                Some(current) if current == &server => Ok(vec![]),
                Some(_) => Ok(vec![Change::ServerUpdated(server)]),
                None => Ok(vec![Change::ServerAdded(server)]),
            }
        }
        InstanceCommand::DeleteServer { id } => {
            if !state.servers.contains_key(&id) {
                return Err(DomainError::NotFound("Invalid server".into()));
            }
            Ok(vec![Change::ServerDeleted { id }])
        }
        InstanceCommand::ChangeSetting { name, value } => {
            if name.trim().is_empty() || name.len() > 200 {
                return Err(DomainError::invalid("setting", "Invalid setting name."));
            }
            if state.settings.get(&name) == Some(&value) {
                return Ok(vec![]);
            }
            let previous = state.settings.get(&name).cloned().unwrap_or(Value::Null);
            Ok(vec![Change::SettingChanged { name, value, previous }])
        }
        InstanceCommand::SetDefaultRole { role: target } => {
            if target.perm_site_admin || target.restricted_to_site_admin {
                return Err(DomainError::invalid("role_id", "A site admin role cannot be the default role."));
            }
            if state.default_role_id == Some(target.id) {
                return Ok(vec![]);
            }
            Ok(vec![Change::DefaultRoleSet { role_id: target.id }])
        }
        InstanceCommand::EnableTaxonomy { namespace } => {
            if state.taxonomies.contains_key(&namespace) {
                return Ok(vec![]);
            }
            Ok(vec![Change::TaxonomyEnabled { namespace }])
        }
        InstanceCommand::DisableTaxonomy { namespace } => {
            if !state.taxonomies.contains_key(&namespace) {
                return Ok(vec![]);
            }
            Ok(vec![Change::TaxonomyDisabled { namespace }])
        }
        InstanceCommand::SetTaxonomyRequired { namespace, required } => {
            if state.taxonomies.get(&namespace) == Some(&required) {
                return Ok(vec![]);
            }
            Ok(vec![Change::TaxonomyRequiredSet { namespace, required }])
        }
    }
}

pub fn evolve(mut state: InstanceState, change: &Change) -> InstanceState {
    match change {
        Change::InstanceBootstrapped(b) => state.bootstrap = Some(b.clone()),
        Change::SettingChanged { name, value, .. } => {
            state.settings.insert(name.clone(), value.clone());
        }
        Change::DefaultRoleSet { role_id } => state.default_role_id = Some(*role_id),
        Change::TaxonomyEnabled { namespace } => {
            state.taxonomies.entry(namespace.clone()).or_insert(false);
        }
        Change::TaxonomyDisabled { namespace } => {
            state.taxonomies.remove(namespace);
        }
        Change::TaxonomyRequiredSet { namespace, required } => {
            state.taxonomies.insert(namespace.clone(), *required);
        }
        Change::RegexpAdded(r) | Change::RegexpUpdated(r) => {
            state.regexps.insert(r.id, r.clone());
        }
        Change::RoleAdded(r) | Change::RoleUpdated(r) => {
            state.roles.insert(r.id, r.clone());
        }
        Change::RoleDeleted { id } => {
            state.roles.remove(id);
        }
        Change::ServerAdded(s) | Change::ServerUpdated(s) => {
            state.servers.insert(s.id, s.clone());
        }
        Change::ServerDeleted { id } => {
            state.servers.remove(id);
        }
        Change::RegexpDeleted { id } => {
            state.regexps.remove(id);
        }
        Change::CorrelationExclusionAdded(e) => {
            state.exclusions.insert(e.id, e.clone());
        }
        Change::CorrelationExclusionDeleted { id } => {
            state.exclusions.remove(id);
        }
        Change::WarninglistEnabled { key } => {
            state.warninglists.insert(key.clone());
        }
        Change::WarninglistDisabled { key } => {
            state.warninglists.remove(key);
        }
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn boot() -> Bootstrap {
        Bootstrap {
            instance_uuid: Uuid::from_u128(9),
            host_org_id: 1,
            host_org_uuid: Uuid::from_u128(1),
            admin_user_id: 1,
            admin_user_uuid: Uuid::from_u128(2),
        }
    }

    #[test]
    fn bootstrapping_twice_is_refused() {
        let admin = default_role(1).expect("admin");
        let state = decide(&InstanceState::default(), &admin, InstanceCommand::Bootstrap(boot()))
            .expect("first")
            .iter()
            .fold(InstanceState::default(), evolve);
        assert!(matches!(
            decide(&state, &admin, InstanceCommand::Bootstrap(boot())),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    #[test]
    fn only_site_admins_change_settings_and_repeats_record_nothing() {
        let admin = default_role(1).expect("admin");
        let user = default_role(3).expect("user");
        let cmd = || InstanceCommand::ChangeSetting { name: "MISP.background_jobs".into(), value: Value::Bool(false) };
        assert!(matches!(decide(&InstanceState::default(), &user, cmd()), Err(DomainError::Forbidden(_))));
        let state = decide(&InstanceState::default(), &admin, cmd()).expect("ok").iter().fold(InstanceState::default(), evolve);
        assert!(decide(&state, &admin, cmd()).expect("ok").is_empty());
    }

    #[test]
    fn taxonomies_are_enabled_once_and_disabled_once() {
        let admin = default_role(1).expect("admin");
        let enable = || InstanceCommand::EnableTaxonomy { namespace: "tlp".into() };
        let changes = decide(&InstanceState::default(), &admin, enable()).expect("ok");
        assert_eq!(changes, vec![Change::TaxonomyEnabled { namespace: "tlp".into() }]);
        let state = changes.iter().fold(InstanceState::default(), evolve);
        assert!(decide(&state, &admin, enable()).expect("ok").is_empty());
        let user = default_role(3).expect("user");
        assert!(decide(&state, &user, InstanceCommand::DisableTaxonomy { namespace: "tlp".into() }).is_err());
        let state = decide(&state, &admin, InstanceCommand::DisableTaxonomy { namespace: "tlp".into() })
            .expect("ok")
            .iter()
            .fold(state, evolve);
        assert!(state.taxonomies.is_empty());
    }

    #[test]
    fn regexps_need_the_regexp_permission_and_a_valid_pattern() {
        let r = Regexp { id: 1, regexp: "/a/".into(), replacement: "b".into(), attr_type: "ALL".into() };
        let user = default_role(3).expect("user");
        assert!(matches!(decide(&InstanceState::default(), &user, InstanceCommand::PutRegexp { regexp: r.clone(), valid: true }), Err(DomainError::Forbidden(_))));
        let admin = default_role(1).expect("admin");
        assert!(decide(&InstanceState::default(), &admin, InstanceCommand::PutRegexp { regexp: r.clone(), valid: false }).is_err());
        let state = decide(&InstanceState::default(), &admin, InstanceCommand::PutRegexp { regexp: r.clone(), valid: true })
            .expect("ok")
            .iter()
            .fold(InstanceState::default(), evolve);
        assert_eq!(state.regexps.len(), 1);
        let changes = decide(&state, &admin, InstanceCommand::DeleteRegexp { id: 1 }).expect("ok");
        assert!(changes.iter().fold(state, evolve).regexps.is_empty());
    }

    #[test]
    fn warninglists_enable_disable_and_toggle_record_only_what_changes() {
        let admin = default_role(1).expect("admin");
        let toggle = |keys: &[&str], enabled| InstanceCommand::ToggleWarninglists { keys: keys.iter().map(|k| k.to_string()).collect(), enabled };
        let user = default_role(3).expect("user");
        assert!(matches!(decide(&InstanceState::default(), &user, toggle(&["a"], Some(true))), Err(DomainError::Forbidden(_))));
        assert!(matches!(decide(&InstanceState::default(), &admin, toggle(&[], Some(true))), Err(DomainError::NotFound(_))));
        let changes = decide(&InstanceState::default(), &admin, toggle(&["a", "b", "a"], Some(true))).expect("ok");
        assert_eq!(changes, vec![Change::WarninglistEnabled { key: "a".into() }, Change::WarninglistEnabled { key: "b".into() }]);
        let state = changes.iter().fold(InstanceState::default(), evolve);
        assert!(decide(&state, &admin, toggle(&["a"], Some(true))).expect("ok").is_empty());
        let flipped = decide(&state, &admin, toggle(&["a", "c"], None)).expect("ok");
        assert_eq!(flipped, vec![Change::WarninglistDisabled { key: "a".into() }, Change::WarninglistEnabled { key: "c".into() }]);
        let state = flipped.iter().fold(state, evolve);
        assert_eq!(state.warninglists.iter().map(String::as_str).collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn the_site_admin_role_cannot_be_the_default() {
        let admin = default_role(1).expect("admin");
        assert!(decide(&InstanceState::default(), &admin, InstanceCommand::SetDefaultRole { role: admin.clone() }).is_err());
        let user = default_role(3).expect("user");
        assert_eq!(
            decide(&InstanceState::default(), &admin, InstanceCommand::SetDefaultRole { role: user }).expect("ok"),
            vec![Change::DefaultRoleSet { role_id: 3 }]
        );
    }
}
