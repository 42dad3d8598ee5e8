//! The sharing-group aggregate (MISP `sharing_groups` + `sharing_group_orgs` + `sharing_group_servers`):
//! one stream per sharing group, keyed by its uuid.
//!
//! Membership (misp_features.md §2.4): an organisation belongs to a sharing group when it is listed in
//! its organisations, or when the group lists this instance (server 0) with `all_orgs`. The owner
//! organisation (`org_id`) may edit it; so may member organisations with `extend`.

use crate::actor::Actor;
use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingGroupOrg {
    pub org_id: i64,
    pub org_uuid: Uuid,
    #[serde(default)]
    pub extend: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingGroupServer {
    /// 0 = this instance.
    pub server_id: i64,
    #[serde(default)]
    pub all_orgs: bool,
}

/// A sharing group's own fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharingGroup {
    pub id: i64,
    pub uuid: Uuid,
    pub name: String,
    #[serde(default)]
    pub releasability: String,
    #[serde(default)]
    pub description: String,
    /// The owner (creator) organisation.
    pub org_id: i64,
    pub org_uuid: Uuid,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub roaming: bool,
    #[serde(default = "yes")]
    pub local: bool,
    pub created: i64,
    pub modified: i64,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharingGroupState {
    pub group: Option<SharingGroup>,
    pub orgs: Vec<SharingGroupOrg>,
    pub servers: Vec<SharingGroupServer>,
    pub deleted: bool,
}

impl SharingGroupState {
    /// MISP's `authorizedIds` membership for one organisation.
    pub fn has_member(&self, org_id: i64) -> bool {
        self.orgs.iter().any(|o| o.org_id == org_id) || self.servers.iter().any(|s| s.server_id == 0 && s.all_orgs)
    }

    /// MISP's `checkIfAuthorised`: may this organisation use the group (assign it to data)?
    pub fn usable_by(&self, org_id: i64, site_admin: bool) -> bool {
        site_admin || self.group.as_ref().is_some_and(|g| g.org_id == org_id) || self.has_member(org_id)
    }

    /// MISP's `checkIfAuthorisedExtend`.
    pub fn editable_by(&self, actor: &Actor, role: &Role) -> bool {
        role.perm_site_admin
            || (role.perm_sharing_group
                && (self.group.as_ref().is_some_and(|g| g.org_id == actor.org_id)
                    || self.orgs.iter().any(|o| o.org_id == actor.org_id && o.extend)))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharingGroupPatch {
    pub name: Option<String>,
    pub releasability: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub roaming: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharingGroupCommand {
    Create { group: SharingGroup, orgs: Vec<SharingGroupOrg>, servers: Vec<SharingGroupServer> },
    Update { patch: SharingGroupPatch, now: i64 },
    AddOrg { org: SharingGroupOrg },
    RemoveOrg { org_id: i64 },
    AddServer { server: SharingGroupServer },
    RemoveServer { server_id: i64 },
    /// `in_use`: how many Events, Attributes, Objects … reference it (looked up by the edge).
    Delete { in_use: i64 },
}

fn forbidden() -> DomainError {
    DomainError::Forbidden("You do not have permission to use this functionality.".into())
}

fn validate_name(name: &str) -> Result<(), DomainError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(DomainError::invalid("name", "Mandatory field not set."));
    }
    if n.chars().count() > 255 {
        return Err(DomainError::invalid("name", "Name too long (255 characters at most)."));
    }
    Ok(())
}

/// # Errors
/// Forbidden without perm_sharing_group (create) or edit rights; NotFound for a deleted group;
/// Conflict when deleting a group still in use.
pub fn decide(state: &SharingGroupState, actor: &Actor, role: &Role, command: SharingGroupCommand) -> Result<Vec<Change>, DomainError> {
    if let SharingGroupCommand::Create { group, orgs, servers } = command {
        if !(role.perm_sharing_group || role.perm_site_admin) {
            return Err(forbidden());
        }
        if state.group.is_some() {
            return Err(DomainError::AlreadyExists("A sharing group with this uuid already exists.".into()));
        }
        validate_name(&group.name)?;
        let mut changes = vec![Change::SharingGroupCreated(group)];
        changes.extend(orgs.into_iter().map(Change::SharingGroupOrgAdded));
        changes.extend(servers.into_iter().map(Change::SharingGroupServerAdded));
        return Ok(changes);
    }
    let current = state.group.as_ref().filter(|_| !state.deleted).ok_or_else(|| DomainError::NotFound("Invalid sharing group.".into()))?;
    if !state.editable_by(actor, role) {
        return Err(forbidden());
    }
    match command {
        SharingGroupCommand::Create { .. } => unreachable!("handled above"),
        SharingGroupCommand::Update { patch, now } => {
            let mut next = current.clone();
            if let Some(n) = patch.name {
                validate_name(&n)?;
                next.name = n.trim().to_string();
            }
            if let Some(v) = patch.releasability {
                next.releasability = v;
            }
            if let Some(v) = patch.description {
                next.description = v;
            }
            if let Some(v) = patch.active {
                next.active = v;
            }
            if let Some(v) = patch.roaming {
                next.roaming = v;
            }
            if &next == current {
                return Ok(vec![]);
            }
            next.modified = now;
            Ok(vec![Change::SharingGroupUpdated(next)])
        }
        SharingGroupCommand::AddOrg { org } => {
            if state.orgs.iter().any(|o| o == &org) {
                return Ok(vec![]);
            }
            Ok(vec![Change::SharingGroupOrgAdded(org)])
        }
        SharingGroupCommand::RemoveOrg { org_id } => {
            if !state.orgs.iter().any(|o| o.org_id == org_id) {
                return Err(DomainError::NotFound("The organisation is not in the sharing group.".into()));
            }
            Ok(vec![Change::SharingGroupOrgRemoved { org_id }])
        }
        SharingGroupCommand::AddServer { server } => {
            if state.servers.iter().any(|s| s == &server) {
                return Ok(vec![]);
            }
            Ok(vec![Change::SharingGroupServerAdded(server)])
        }
        SharingGroupCommand::RemoveServer { server_id } => {
            if !state.servers.iter().any(|s| s.server_id == server_id) {
                return Err(DomainError::NotFound("The server is not in the sharing group.".into()));
            }
            Ok(vec![Change::SharingGroupServerRemoved { server_id }])
        }
        SharingGroupCommand::Delete { in_use } => {
            if in_use > 0 {
                return Err(DomainError::Conflict(format!(
                    "The sharing group is still in use ({in_use} Events, Objects or Attributes) and cannot be deleted."
                )));
            }
            Ok(vec![Change::SharingGroupDeleted { id: current.id }])
        }
    }
}

pub fn evolve(mut state: SharingGroupState, change: &Change) -> SharingGroupState {
    match change {
        Change::SharingGroupCreated(g) | Change::SharingGroupUpdated(g) => state.group = Some(g.clone()),
        Change::SharingGroupOrgAdded(o) => {
            state.orgs.retain(|x| x.org_id != o.org_id);
            state.orgs.push(o.clone());
        }
        Change::SharingGroupOrgRemoved { org_id } => state.orgs.retain(|x| x.org_id != *org_id),
        Change::SharingGroupServerAdded(s) => {
            state.servers.retain(|x| x.server_id != s.server_id);
            state.servers.push(s.clone());
        }
        Change::SharingGroupServerRemoved { server_id } => state.servers.retain(|x| x.server_id != *server_id),
        Change::SharingGroupDeleted { .. } => state.deleted = true,
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn group() -> SharingGroup {
        SharingGroup {
            id: 3,
            uuid: Uuid::from_u128(3),
            name: "Testcases SG".into(),
            releasability: "Testing".into(),
            description: String::new(),
            org_id: 1,
            org_uuid: Uuid::from_u128(1),
            active: true,
            roaming: false,
            local: true,
            created: 1,
            modified: 1,
        }
    }

    fn actor(org_id: i64) -> Actor {
        Actor { org_id, ..Actor::system("test") }
    }

    fn created() -> SharingGroupState {
        [Change::SharingGroupCreated(group())].iter().fold(SharingGroupState::default(), evolve)
    }

    #[test]
    fn only_roles_with_the_sharing_group_permission_create_groups() {
        let cmd = || SharingGroupCommand::Create { group: group(), orgs: vec![], servers: vec![] };
        assert!(decide(&SharingGroupState::default(), &actor(1), &default_role(2).expect("org admin"), cmd()).is_ok());
        assert!(matches!(decide(&SharingGroupState::default(), &actor(1), &default_role(3).expect("user"), cmd()), Err(DomainError::Forbidden(_))));
    }

    #[test]
    fn members_and_all_orgs_servers_give_membership() {
        let mut s = created();
        assert!(!s.has_member(2));
        assert!(s.usable_by(1, false), "the owner may use it");
        s = evolve(s, &Change::SharingGroupOrgAdded(SharingGroupOrg { org_id: 2, org_uuid: Uuid::from_u128(2), extend: false }));
        assert!(s.has_member(2) && !s.has_member(5));
        s = evolve(s, &Change::SharingGroupServerAdded(SharingGroupServer { server_id: 0, all_orgs: true }));
        assert!(s.has_member(5));
    }

    #[test]
    fn extend_lets_a_member_edit_and_others_cannot() {
        let org_admin = default_role(2).expect("org admin");
        let mut s = created();
        let patch = || SharingGroupCommand::Update { patch: SharingGroupPatch { releasability: Some("x".into()), ..Default::default() }, now: 5 };
        assert!(matches!(decide(&s, &actor(2), &org_admin, patch()), Err(DomainError::Forbidden(_))));
        s = evolve(s, &Change::SharingGroupOrgAdded(SharingGroupOrg { org_id: 2, org_uuid: Uuid::from_u128(2), extend: true }));
        assert!(decide(&s, &actor(2), &org_admin, patch()).is_ok());
    }

    #[test]
    fn a_group_in_use_cannot_be_deleted() {
        let admin = default_role(1).expect("admin");
        let s = created();
        assert!(matches!(decide(&s, &actor(1), &admin, SharingGroupCommand::Delete { in_use: 2 }), Err(DomainError::Conflict(_))));
        let s = decide(&s, &actor(1), &admin, SharingGroupCommand::Delete { in_use: 0 }).expect("ok").iter().fold(s, evolve);
        assert!(matches!(decide(&s, &actor(1), &admin, SharingGroupCommand::Delete { in_use: 0 }), Err(DomainError::NotFound(_))));
    }
}
