//! The organisation aggregate (MISP `organisations`): one stream per organisation, keyed by its uuid.

use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An organisation as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: i64,
    pub uuid: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "type")]
    pub org_type: String,
    #[serde(default)]
    pub nationality: String,
    #[serde(default)]
    pub sector: String,
    #[serde(default)]
    pub contacts: String,
    /// True for organisations with users on this instance; false for known remote organisations.
    pub local: bool,
    #[serde(default)]
    pub restricted_to_domain: Vec<String>,
    #[serde(default)]
    pub landingpage: String,
    pub created_by: i64,
    /// Seconds since the epoch.
    pub date_created: i64,
    pub date_modified: i64,
}

/// State folded from an organisation's stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganisationState {
    pub organisation: Option<Organisation>,
    pub deleted: bool,
}

/// Editable fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganisationPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub org_type: Option<String>,
    pub nationality: Option<String>,
    pub sector: Option<String>,
    pub contacts: Option<String>,
    pub local: Option<bool>,
    pub restricted_to_domain: Option<Vec<String>>,
    pub landingpage: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationCommand {
    Create { organisation: Organisation },
    Update { patch: OrganisationPatch, now: i64 },
    Delete,
}

fn require_site_admin(role: &Role) -> Result<(), DomainError> {
    if role.perm_site_admin {
        Ok(())
    } else {
        Err(DomainError::Forbidden("You do not have permission to use this functionality.".into()))
    }
}

fn validate_name(name: &str) -> Result<(), DomainError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid("name", "Mandatory field not set."));
    }
    if trimmed.chars().count() > 255 {
        return Err(DomainError::invalid("name", "Name too long (255 characters at most)."));
    }
    Ok(())
}

/// Decides an organisation command. Organisations are managed by site admins.
///
/// # Errors
/// Forbidden for non site admins; NotFound for a missing or deleted organisation; Invalid names.
pub fn decide(state: &OrganisationState, role: &Role, command: OrganisationCommand) -> Result<Vec<Change>, DomainError> {
    require_site_admin(role)?;
    match (command, &state.organisation) {
        (OrganisationCommand::Create { .. }, Some(_)) => {
            Err(DomainError::AlreadyExists("An organisation with this uuid already exists.".into()))
        }
        (OrganisationCommand::Create { organisation }, None) => {
            validate_name(&organisation.name)?;
            Ok(vec![Change::OrganisationCreated(organisation)])
        }
        (_, None) => Err(DomainError::NotFound("Invalid organisation".into())),
        (_, Some(_)) if state.deleted => Err(DomainError::NotFound("Invalid organisation".into())),
        (OrganisationCommand::Update { patch, now }, Some(current)) => {
            let mut next = current.clone();
            if let Some(name) = patch.name {
                validate_name(&name)?;
                next.name = name.trim().to_string();
            }
            macro_rules! apply {
                ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
            }
            apply!(description, org_type, nationality, sector, contacts, local, restricted_to_domain, landingpage);
            if &next == current {
                return Ok(vec![]);
            }
            next.date_modified = now;
            Ok(vec![Change::OrganisationUpdated(next)])
        }
        (OrganisationCommand::Delete, Some(current)) => {
            Ok(vec![Change::OrganisationDeleted { id: current.id, uuid: current.uuid }])
        }
    }
}

/// Folds one change into the state (never fails; unknown changes are ignored).
pub fn evolve(mut state: OrganisationState, change: &Change) -> OrganisationState {
    match change {
        Change::OrganisationCreated(o) | Change::OrganisationUpdated(o) => state.organisation = Some(o.clone()),
        Change::OrganisationDeleted { .. } => state.deleted = true,
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn org(name: &str) -> Organisation {
        Organisation {
            id: 2,
            uuid: Uuid::from_u128(2),
            name: name.into(),
            description: String::new(),
            org_type: String::new(),
            nationality: String::new(),
            sector: String::new(),
            contacts: String::new(),
            local: true,
            restricted_to_domain: vec![],
            landingpage: String::new(),
            created_by: 1,
            date_created: 100,
            date_modified: 100,
        }
    }

    fn admin() -> Role {
        default_role(1).expect("admin")
    }

    #[test]
    fn a_site_admin_creates_an_organisation() {
        let changes = decide(&OrganisationState::default(), &admin(), OrganisationCommand::Create { organisation: org("Test Org") })
            .expect("accepted");
        assert_eq!(changes, vec![Change::OrganisationCreated(org("Test Org"))]);
    }

    #[test]
    fn an_org_admin_cannot_create_organisations() {
        let role = default_role(2).expect("org admin");
        let err = decide(&OrganisationState::default(), &role, OrganisationCommand::Create { organisation: org("X") })
            .expect_err("refused");
        assert!(matches!(err, DomainError::Forbidden(_)));
    }

    #[test]
    fn an_empty_name_is_refused() {
        let err = decide(&OrganisationState::default(), &admin(), OrganisationCommand::Create { organisation: org("  ") })
            .expect_err("refused");
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "name"));
    }

    #[test]
    fn updating_changes_only_given_fields_and_a_noop_records_nothing() {
        let state = evolve(OrganisationState::default(), &Change::OrganisationCreated(org("A")));
        let patch = OrganisationPatch { sector: Some("Finance".into()), ..Default::default() };
        let changes = decide(&state, &admin(), OrganisationCommand::Update { patch, now: 200 }).expect("ok");
        let Change::OrganisationUpdated(updated) = &changes[0] else { panic!("{changes:?}") };
        assert_eq!((updated.sector.as_str(), updated.name.as_str(), updated.date_modified), ("Finance", "A", 200));
        let same = OrganisationPatch { name: Some("A".into()), ..Default::default() };
        assert!(decide(&state, &admin(), OrganisationCommand::Update { patch: same, now: 300 }).expect("ok").is_empty());
    }

    #[test]
    fn a_deleted_organisation_is_gone() {
        let mut state = evolve(OrganisationState::default(), &Change::OrganisationCreated(org("A")));
        let changes = decide(&state, &admin(), OrganisationCommand::Delete).expect("ok");
        state = changes.iter().fold(state, evolve);
        assert!(matches!(decide(&state, &admin(), OrganisationCommand::Delete), Err(DomainError::NotFound(_))));
    }
}
