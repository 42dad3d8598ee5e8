//! The tag aggregate (MISP `tags`): one stream per tag. Tags are global and referenced by id from
//! Events and Attributes; names are unique case-insensitively.

use crate::change::Change;
use crate::error::DomainError;
use crate::role::Role;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub colour: String,
    pub exportable: bool,
    #[serde(default)]
    pub org_id: i64,
    #[serde(default)]
    pub user_id: i64,
    #[serde(default)]
    pub hide_tag: bool,
    #[serde(default)]
    pub numerical_value: Option<i64>,
    #[serde(default)]
    pub is_galaxy: bool,
    #[serde(default)]
    pub is_custom_galaxy: bool,
    #[serde(default)]
    pub local_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagState {
    pub tag: Option<Tag>,
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagPatch {
    pub name: Option<String>,
    pub colour: Option<String>,
    pub exportable: Option<bool>,
    pub org_id: Option<i64>,
    pub user_id: Option<i64>,
    pub hide_tag: Option<bool>,
    pub numerical_value: Option<Option<i64>>,
    pub local_only: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagCommand {
    /// `via_attach`: created on the fly while tagging (needs perm_tag_editor); else `tags/add`.
    Create { tag: Tag },
    Update { patch: TagPatch },
    Delete,
}

/// MISP's generated colour: `#` + the first 6 hex digits of md5(name). We use SHA-256 (same idea, no
/// md5 in the dependency set): deterministic per name.
pub fn default_colour(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    format!("#{}", &hex::encode(digest)[..6])
}

/// `misp-galaxy:<type>="<value>"` names are galaxy cluster tags.
pub fn is_galaxy_name(name: &str) -> bool {
    name.starts_with("misp-galaxy:")
}

pub fn validate_name(name: &str) -> Result<(), DomainError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(DomainError::invalid("name", "Mandatory field not set."));
    }
    if n.chars().count() > 255 {
        return Err(DomainError::invalid("name", "The tag name is too long (255 characters at most)."));
    }
    Ok(())
}

fn validate_colour(c: &str) -> Result<(), DomainError> {
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
    if ok { Ok(()) } else { Err(DomainError::invalid("colour", "Colour must be a hex value like #ff0000.")) }
}

/// # Errors
/// Forbidden without perm_tag_editor (create/edit) or site admin (delete); Invalid names or colours.
pub fn decide(state: &TagState, role: &Role, command: TagCommand) -> Result<Vec<Change>, DomainError> {
    let forbidden = || DomainError::Forbidden("You do not have permission to use this functionality.".into());
    match command {
        TagCommand::Create { mut tag } => {
            if !(role.perm_tag_editor || role.perm_site_admin) {
                return Err(forbidden());
            }
            if state.tag.is_some() && !state.deleted {
                return Err(DomainError::AlreadyExists("A tag with this name already exists.".into()));
            }
            validate_name(&tag.name)?;
            tag.name = tag.name.trim().to_string();
            validate_colour(&tag.colour)?;
            Ok(vec![Change::TagCreated(tag)])
        }
        TagCommand::Update { patch } => {
            if !(role.perm_tag_editor || role.perm_site_admin) {
                return Err(forbidden());
            }
            let current = state.tag.as_ref().filter(|_| !state.deleted).ok_or_else(|| DomainError::NotFound("Invalid tag".into()))?;
            let mut next = current.clone();
            if let Some(n) = patch.name {
                validate_name(&n)?;
                next.name = n.trim().to_string();
                next.is_galaxy = is_galaxy_name(&next.name);
            }
            if let Some(c) = patch.colour {
                validate_colour(&c)?;
                next.colour = c;
            }
            macro_rules! apply {
                ($($f:ident),*) => { $( if let Some(v) = patch.$f { next.$f = v; } )* };
            }
            apply!(exportable, org_id, user_id, hide_tag, numerical_value, local_only);
            if &next == current {
                return Ok(vec![]);
            }
            Ok(vec![Change::TagUpdated(next)])
        }
        TagCommand::Delete => {
            if !(role.perm_site_admin || role.perm_tag_editor) {
                return Err(forbidden());
            }
            let current = state.tag.as_ref().filter(|_| !state.deleted).ok_or_else(|| DomainError::NotFound("Invalid tag".into()))?;
            Ok(vec![Change::TagDeleted { id: current.id }])
        }
    }
}

pub fn evolve(mut state: TagState, change: &Change) -> TagState {
    match change {
        Change::TagCreated(t) => {
            state.tag = Some(t.clone());
            state.deleted = false;
        }
        Change::TagUpdated(t) => state.tag = Some(t.clone()),
        Change::TagDeleted { .. } => state.deleted = true,
        _ => {}
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::default_role;

    fn tag(name: &str) -> Tag {
        Tag {
            id: 1,
            name: name.into(),
            colour: default_colour(name),
            exportable: true,
            org_id: 0,
            user_id: 0,
            hide_tag: false,
            numerical_value: None,
            is_galaxy: false,
            is_custom_galaxy: false,
            local_only: false,
        }
    }

    #[test]
    fn a_tag_editor_creates_and_a_plain_user_cannot() {
        let editor = default_role(2).expect("org admin");
        assert!(decide(&TagState::default(), &editor, TagCommand::Create { tag: tag("tlp:green") }).is_ok());
        let user = default_role(3).expect("user");
        assert!(matches!(
            decide(&TagState::default(), &user, TagCommand::Create { tag: tag("x") }),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn colours_are_validated_and_generated_deterministically() {
        assert_eq!(default_colour("tlp:green"), default_colour("tlp:green"));
        assert_eq!(default_colour("a").len(), 7);
        let admin = default_role(1).expect("admin");
        let mut bad = tag("x");
        bad.colour = "red".into();
        assert!(decide(&TagState::default(), &admin, TagCommand::Create { tag: bad }).is_err());
    }

    #[test]
    fn hiding_a_tag_is_an_update_and_a_deleted_tag_can_be_recreated() {
        let admin = default_role(1).expect("admin");
        let state = evolve(TagState::default(), &Change::TagCreated(tag("x")));
        let changes = decide(&state, &admin, TagCommand::Update { patch: TagPatch { hide_tag: Some(true), ..Default::default() } })
            .expect("ok");
        assert!(matches!(&changes[0], Change::TagUpdated(t) if t.hide_tag));
        let state = evolve(state, &Change::TagDeleted { id: 1 });
        assert!(decide(&state, &admin, TagCommand::Create { tag: tag("x") }).is_ok());
    }
}
