//! The user aggregate (MISP `users` + `auth_keys`): one stream per user. API keys are stored hashed
//! (SHA-256 of the 40-character key; see docs/adr/0003-api-keys.md) with MISP's first/last four
//! characters for display; the clear key is returned once, when it is created.

use crate::actor::Actor;
use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub uuid: Uuid,
    pub org_id: i64,
    pub org_uuid: Uuid,
    pub email: String,
    pub role_id: i64,
    #[serde(default)]
    pub autoalert: bool,
    #[serde(default)]
    pub contactalert: bool,
    #[serde(default)]
    pub disabled: bool,
    /// Seconds since the epoch; None: never expires.
    #[serde(default)]
    pub expiration: Option<i64>,
    #[serde(default)]
    pub nids_sid: i64,
    #[serde(default)]
    pub gpgkey: String,
    #[serde(default)]
    pub certif_public: String,
    #[serde(default)]
    pub termsaccepted: bool,
    #[serde(default)]
    pub change_pw: bool,
    pub invited_by: i64,
    pub date_created: i64,
    pub date_modified: i64,
}

/// An API key as recorded (never the clear key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthKey {
    pub id: i64,
    pub uuid: Uuid,
    pub user_id: i64,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    pub key_start: String,
    pub key_end: String,
    #[serde(default)]
    pub comment: String,
    /// Seconds since the epoch; None: never expires.
    #[serde(default)]
    pub expiration: Option<i64>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    pub created: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    pub user: Option<User>,
    pub deleted: bool,
    pub keys: Vec<AuthKey>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub email: Option<String>,
    pub org: Option<(i64, Uuid)>,
    pub role_id: Option<i64>,
    pub autoalert: Option<bool>,
    pub contactalert: Option<bool>,
    pub disabled: Option<bool>,
    pub expiration: Option<Option<i64>>,
    pub nids_sid: Option<i64>,
    pub gpgkey: Option<String>,
    pub certif_public: Option<String>,
    pub termsaccepted: Option<bool>,
    pub change_pw: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserCommand {
    Create { user: User, key: AuthKey },
    Update { patch: UserPatch, new_role: Option<Role>, now: i64 },
    Delete,
    AddAuthKey { key: AuthKey },
    RevokeAuthKey { key_id: i64 },
}

/// What the acting user may do to users: everything (site admin), their own org's users (org admin),
/// themselves (API keys only).
fn may_manage(actor: &Actor, role: &Role, target_org: i64) -> bool {
    role.perm_site_admin || (role.perm_admin && actor.org_id == target_org)
}

fn forbidden() -> DomainError {
    DomainError::Forbidden("You do not have permission to use this functionality.".into())
}

/// A plausible e-mail address: one `@`, non-empty parts, a dot-free-or-dotted domain, no spaces.
pub fn validate_email(email: &str) -> Result<(), DomainError> {
    let e = email.trim();
    if e.is_empty() {
        return Err(DomainError::invalid("email", "Mandatory field not set."));
    }
    let valid = e.len() <= 255
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if valid { Ok(()) } else { Err(DomainError::invalid("email", "An email address is required.")) }
}

/// Decides a user command. `target_role` is the role the user would hold (for create / role change):
/// only site admins may hand out site-admin roles.
///
/// # Errors
/// Forbidden, NotFound, Invalid as the rules above say.
pub fn decide(state: &UserState, actor: &Actor, role: &Role, command: UserCommand) -> Result<Vec<Change>, DomainError> {
    let gone = || DomainError::NotFound("Invalid user".into());
    match command {
        UserCommand::Create { user, key } => {
            if state.user.is_some() {
                return Err(DomainError::AlreadyExists("The user already exists.".into()));
            }
            if !may_manage(actor, role, user.org_id) {
                return Err(forbidden());
            }
            validate_email(&user.email)?;
            if user.role_id == 1 && !role.perm_site_admin {
                return Err(forbidden());
            }
            Ok(vec![Change::UserCreated(user), Change::AuthKeyCreated(key)])
        }
        command => {
            let current = state.user.as_ref().filter(|_| !state.deleted).ok_or_else(gone)?;
            match command {
                UserCommand::Create { .. } => unreachable!("handled above"),
                UserCommand::Update { patch, new_role, now } => {
                    if !may_manage(actor, role, current.org_id) {
                        return Err(forbidden());
                    }
                    let mut next = current.clone();
                    if let Some(email) = patch.email {
                        validate_email(&email)?;
                        next.email = email.trim().to_string();
                    }
                    if let Some((id, uuid)) = patch.org {
                        if !role.perm_site_admin && id != actor.org_id {
                            return Err(forbidden());
                        }
                        next.org_id = id;
                        next.org_uuid = uuid;
                    }
                    if let Some(role_id) = patch.role_id {
                        let promoting = new_role.as_ref().is_some_and(|r| r.perm_site_admin);
                        if promoting && !role.perm_site_admin {
                            return Err(forbidden());
                        }
                        next.role_id = role_id;
                    }
                    macro_rules! apply {
                        ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
                    }
                    apply!(autoalert, contactalert, disabled, expiration, nids_sid, gpgkey, certif_public, termsaccepted, change_pw);
                    if &next == current {
                        return Ok(vec![]);
                    }
                    next.date_modified = now;
                    Ok(vec![Change::UserUpdated(next)])
                }
                UserCommand::Delete => {
                    if !may_manage(actor, role, current.org_id) || actor.user_id == current.id {
                        return Err(forbidden());
                    }
                    Ok(vec![Change::UserDeleted { id: current.id }])
                }
                UserCommand::AddAuthKey { key } => {
                    let own = actor.user_id == current.id && role.perm_auth;
                    if !own && !may_manage(actor, role, current.org_id) {
                        return Err(forbidden());
                    }
                    Ok(vec![Change::AuthKeyCreated(key)])
                }
                UserCommand::RevokeAuthKey { key_id } => {
                    let own = actor.user_id == current.id;
                    if !own && !may_manage(actor, role, current.org_id) {
                        return Err(forbidden());
                    }
                    if !state.keys.iter().any(|k| k.id == key_id) {
                        return Err(DomainError::NotFound("Invalid auth key".into()));
                    }
                    Ok(vec![Change::AuthKeyRevoked { id: key_id }])
                }
            }
        }
    }
}

pub fn evolve(mut state: UserState, change: &Change) -> UserState {
    match change {
        Change::UserCreated(u) | Change::UserUpdated(u) => state.user = Some(u.clone()),
        Change::UserDeleted { .. } => state.deleted = true,
        Change::AuthKeyCreated(k) => state.keys.push(k.clone()),
        Change::AuthKeyRevoked { id } => state.keys.retain(|k| k.id != *id),
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn user(org_id: i64, role_id: i64) -> User {
        User {
            id: 7,
            uuid: Uuid::from_u128(7),
            org_id,
            org_uuid: Uuid::from_u128(org_id as u128),
            email: "u@example.org".into(),
            role_id,
            autoalert: false,
            contactalert: false,
            disabled: false,
            expiration: None,
            nids_sid: 4_000_000,
            gpgkey: String::new(),
            certif_public: String::new(),
            termsaccepted: false,
            change_pw: false,
            invited_by: 1,
            date_created: 1,
            date_modified: 1,
        }
    }

    fn key(id: i64) -> AuthKey {
        AuthKey {
            id,
            uuid: Uuid::from_u128(id as u128),
            user_id: 7,
            key_hash: "00".repeat(32),
            key_start: "abcd".into(),
            key_end: "wxyz".into(),
            comment: String::new(),
            expiration: None,
            read_only: false,
            allowed_ips: vec![],
            created: 1,
        }
    }

    fn actor(org_id: i64, user_id: i64) -> Actor {
        Actor { org_id, user_id, ..Actor::system("test") }
    }

    #[test]
    fn a_site_admin_creates_a_user_with_a_key() {
        let role = default_role(1).expect("admin");
        let changes = decide(&UserState::default(), &actor(1, 1), &role, UserCommand::Create { user: user(2, 3), key: key(1) })
            .expect("ok");
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn an_org_admin_only_manages_their_own_organisation() {
        let role = default_role(2).expect("org admin");
        assert!(decide(&UserState::default(), &actor(2, 5), &role, UserCommand::Create { user: user(2, 3), key: key(1) }).is_ok());
        let err = decide(&UserState::default(), &actor(3, 5), &role, UserCommand::Create { user: user(2, 3), key: key(1) })
            .expect_err("other org");
        assert!(matches!(err, DomainError::Forbidden(_)));
        let err = decide(&UserState::default(), &actor(2, 5), &role, UserCommand::Create { user: user(2, 1), key: key(1) })
            .expect_err("site admin role");
        assert!(matches!(err, DomainError::Forbidden(_)));
    }

    #[test]
    fn a_user_without_an_email_is_refused() {
        let role = default_role(1).expect("admin");
        let mut u = user(2, 3);
        u.email = String::new();
        let err = decide(&UserState::default(), &actor(1, 1), &role, UserCommand::Create { user: u, key: key(1) })
            .expect_err("refused");
        assert_eq!(err, DomainError::invalid("email", "Mandatory field not set."));
    }

    #[test]
    fn a_user_adds_their_own_key_but_not_someone_elses() {
        let state = [Change::UserCreated(user(2, 3)), Change::AuthKeyCreated(key(1))].iter().fold(UserState::default(), evolve);
        let role = default_role(3).expect("user");
        assert!(decide(&state, &actor(2, 7), &role, UserCommand::AddAuthKey { key: key(2) }).is_ok());
        assert!(matches!(
            decide(&state, &actor(2, 8), &role, UserCommand::AddAuthKey { key: key(2) }),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn revoking_removes_the_key_and_a_deleted_user_is_gone() {
        let admin = default_role(1).expect("admin");
        let mut state = [Change::UserCreated(user(2, 3)), Change::AuthKeyCreated(key(1))].iter().fold(UserState::default(), evolve);
        let changes = decide(&state, &actor(1, 1), &admin, UserCommand::RevokeAuthKey { key_id: 1 }).expect("ok");
        state = changes.iter().fold(state, evolve);
        assert!(state.keys.is_empty());
        let changes = decide(&state, &actor(1, 1), &admin, UserCommand::Delete).expect("ok");
        state = changes.iter().fold(state, evolve);
        assert!(matches!(decide(&state, &actor(1, 1), &admin, UserCommand::Delete), Err(DomainError::NotFound(_))));
    }
}
