//! MISP's roles: permission flags and the six roles a fresh MISP ships (ids 1–6; the live suite relies
//! on those ids). `permission` is MISP's shorthand: 0 read only, 1 manage own, 2 manage org, 3 publish.

use serde::{Deserialize, Serialize};

/// A role and its permission flags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub perm_add: bool,
    pub perm_modify: bool,
    pub perm_modify_org: bool,
    pub perm_publish: bool,
    pub perm_delegate: bool,
    pub perm_sync: bool,
    pub perm_admin: bool,
    pub perm_audit: bool,
    pub perm_auth: bool,
    pub perm_site_admin: bool,
    pub perm_regexp_access: bool,
    pub perm_tagger: bool,
    pub perm_template: bool,
    pub perm_sharing_group: bool,
    pub perm_tag_editor: bool,
    pub perm_sighting: bool,
    pub perm_object_template: bool,
    pub perm_publish_zmq: bool,
    pub perm_publish_kafka: bool,
    pub perm_decaying: bool,
    pub perm_galaxy_editor: bool,
    pub perm_warninglist: bool,
    pub perm_view_feed_correlations: bool,
    pub perm_analyst_data: bool,
    pub perm_skip_otp: bool,
    pub restricted_to_site_admin: bool,
    /// MISP's per-user rate limit: at most `rate_limit_count` requests per 15 minutes.
    #[serde(default)]
    pub enforce_rate_limit: bool,
    #[serde(default)]
    pub rate_limit_count: i64,
    /// MISP's per-role PHP limits, kept and shown as set (they mean nothing to Cairn).
    #[serde(default)]
    pub memory_limit: String,
    #[serde(default)]
    pub max_execution_time: String,
}

/// The permission flags by name, in MISP's order (for rendering and for `perm_*` lookups).
pub const FLAGS: &[&str] = &[
    "perm_add",
    "perm_modify",
    "perm_modify_org",
    "perm_publish",
    "perm_delegate",
    "perm_sync",
    "perm_admin",
    "perm_audit",
    "perm_auth",
    "perm_site_admin",
    "perm_regexp_access",
    "perm_tagger",
    "perm_template",
    "perm_sharing_group",
    "perm_tag_editor",
    "perm_sighting",
    "perm_object_template",
    "perm_publish_zmq",
    "perm_publish_kafka",
    "perm_decaying",
    "perm_galaxy_editor",
    "perm_warninglist",
    "perm_view_feed_correlations",
    "perm_analyst_data",
    "perm_skip_otp",
];

impl Role {
    /// A role with no permission.
    pub fn none(id: i64, name: &str) -> Self {
        Self {
            id,
            name: name.into(),
            perm_add: false,
            perm_modify: false,
            perm_modify_org: false,
            perm_publish: false,
            perm_delegate: false,
            perm_sync: false,
            perm_admin: false,
            perm_audit: false,
            perm_auth: false,
            perm_site_admin: false,
            perm_regexp_access: false,
            perm_tagger: false,
            perm_template: false,
            perm_sharing_group: false,
            perm_tag_editor: false,
            perm_sighting: false,
            perm_object_template: false,
            perm_publish_zmq: false,
            perm_publish_kafka: false,
            perm_decaying: false,
            perm_galaxy_editor: false,
            perm_warninglist: false,
            perm_view_feed_correlations: false,
            perm_analyst_data: false,
            perm_skip_otp: false,
            restricted_to_site_admin: false,
            enforce_rate_limit: false,
            rate_limit_count: 0,
            memory_limit: String::new(),
            max_execution_time: String::new(),
        }
    }

    /// Sets a flag by its MISP name (`false` for an unknown name).
    pub fn set_flag(&mut self, flag: &str, value: bool) -> bool {
        match flag {
            "perm_add" => self.perm_add = value,
            "perm_modify" => self.perm_modify = value,
            "perm_modify_org" => self.perm_modify_org = value,
            "perm_publish" => self.perm_publish = value,
            "perm_delegate" => self.perm_delegate = value,
            "perm_sync" => self.perm_sync = value,
            "perm_admin" => self.perm_admin = value,
            "perm_audit" => self.perm_audit = value,
            "perm_auth" => self.perm_auth = value,
            "perm_site_admin" => self.perm_site_admin = value,
            "perm_regexp_access" => self.perm_regexp_access = value,
            "perm_tagger" => self.perm_tagger = value,
            "perm_template" => self.perm_template = value,
            "perm_sharing_group" => self.perm_sharing_group = value,
            "perm_tag_editor" => self.perm_tag_editor = value,
            "perm_sighting" => self.perm_sighting = value,
            "perm_object_template" => self.perm_object_template = value,
            "perm_publish_zmq" => self.perm_publish_zmq = value,
            "perm_publish_kafka" => self.perm_publish_kafka = value,
            "perm_decaying" => self.perm_decaying = value,
            "perm_galaxy_editor" => self.perm_galaxy_editor = value,
            "perm_warninglist" => self.perm_warninglist = value,
            "perm_view_feed_correlations" => self.perm_view_feed_correlations = value,
            "perm_analyst_data" => self.perm_analyst_data = value,
            "perm_skip_otp" => self.perm_skip_otp = value,
            _ => return false,
        }
        true
    }


    /// The value of a flag by its MISP name.
    pub fn flag(&self, name: &str) -> Option<bool> {
        Some(match name {
            "perm_add" => self.perm_add,
            "perm_modify" => self.perm_modify,
            "perm_modify_org" => self.perm_modify_org,
            "perm_publish" => self.perm_publish,
            "perm_delegate" => self.perm_delegate,
            "perm_sync" => self.perm_sync,
            "perm_admin" => self.perm_admin,
            "perm_audit" => self.perm_audit,
            "perm_auth" => self.perm_auth,
            "perm_site_admin" => self.perm_site_admin,
            "perm_regexp_access" => self.perm_regexp_access,
            "perm_tagger" => self.perm_tagger,
            "perm_template" => self.perm_template,
            "perm_sharing_group" => self.perm_sharing_group,
            "perm_tag_editor" => self.perm_tag_editor,
            "perm_sighting" => self.perm_sighting,
            "perm_object_template" => self.perm_object_template,
            "perm_publish_zmq" => self.perm_publish_zmq,
            "perm_publish_kafka" => self.perm_publish_kafka,
            "perm_decaying" => self.perm_decaying,
            "perm_galaxy_editor" => self.perm_galaxy_editor,
            "perm_warninglist" => self.perm_warninglist,
            "perm_view_feed_correlations" => self.perm_view_feed_correlations,
            "perm_analyst_data" => self.perm_analyst_data,
            "perm_skip_otp" => self.perm_skip_otp,
            _ => return None,
        })
    }

    /// MISP's `permission` shorthand derived from the flags.
    pub fn permission(&self) -> u8 {
        match (self.perm_add, self.perm_modify, self.perm_modify_org, self.perm_publish) {
            (true, true, true, true) => 3,
            (true, true, true, false) => 2,
            (true, true, false, _) => 1,
            _ => 0,
        }
    }

    pub fn permission_description(&self) -> &'static str {
        match self.permission() {
            3 => "publish",
            2 => "manage_org",
            1 => "manage_own",
            _ => "read_only",
        }
    }

    /// Whether this role may write at all (MISP's read-only role may not).
    pub fn is_read_only(&self) -> bool {
        self.permission() == 0 && !self.perm_site_admin
    }
}

/// The roles of a fresh MISP (`INSTALL/MYSQL.sql`).
pub fn default_roles() -> Vec<Role> {
    let mut admin = Role::none(1, "admin");
    for f in FLAGS {
        set(&mut admin, f);
    }
    admin.restricted_to_site_admin = false;

    let user_flags: &[&str] = &[
        "perm_add",
        "perm_modify",
        "perm_modify_org",
        "perm_audit",
        "perm_auth",
        "perm_tagger",
        "perm_sighting",
        "perm_decaying",
        "perm_galaxy_editor",
        "perm_analyst_data",
    ];
    let mut user = Role::none(3, "User");
    user_flags.iter().for_each(|f| set(&mut user, f));

    let mut publisher = Role::none(4, "Publisher");
    user_flags.iter().for_each(|f| set(&mut publisher, f));
    ["perm_publish", "perm_publish_zmq", "perm_publish_kafka", "perm_delegate"].iter().for_each(|f| set(&mut publisher, f));

    let mut org_admin = Role::none(2, "Org Admin");
    user_flags.iter().for_each(|f| set(&mut org_admin, f));
    [
        "perm_publish",
        "perm_publish_zmq",
        "perm_publish_kafka",
        "perm_admin",
        "perm_template",
        "perm_sharing_group",
        "perm_tag_editor",
        "perm_delegate",
    ]
    .iter()
    .for_each(|f| set(&mut org_admin, f));

    let mut sync = publisher.clone();
    sync.id = 5;
    sync.name = "Sync user".into();
    ["perm_sync", "perm_sharing_group", "perm_tag_editor"].iter().for_each(|f| set(&mut sync, f));

    let mut read_only = Role::none(6, "Read Only");
    ["perm_audit", "perm_auth"].iter().for_each(|f| set(&mut read_only, f));

    vec![admin, org_admin, user, publisher, sync, read_only]
}

/// The default role with a given id.
pub fn default_role(id: i64) -> Option<Role> {
    default_roles().into_iter().find(|r| r.id == id)
}

fn set(role: &mut Role, flag: &str) {
    role.set_flag(flag, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_six_default_roles_have_misps_ids_and_shorthands() {
        let roles = default_roles();
        let by_id = |id| roles.iter().find(|r| r.id == id).expect("role");
        assert!(by_id(1).perm_site_admin && by_id(1).perm_admin);
        assert!(by_id(2).perm_admin && by_id(2).perm_publish && !by_id(2).perm_site_admin);
        assert_eq!(by_id(3).permission(), 2);
        assert!(!by_id(3).perm_publish && !by_id(3).perm_delegate);
        assert_eq!(by_id(4).permission(), 3);
        assert!(by_id(4).perm_delegate);
        assert!(by_id(5).perm_sync && by_id(5).perm_sharing_group);
        assert!(by_id(6).is_read_only() && by_id(6).perm_auth && !by_id(6).perm_sighting);
        assert_eq!(by_id(6).permission_description(), "read_only");
    }

    #[test]
    fn every_flag_name_resolves() {
        let admin = default_role(1).expect("admin");
        for f in FLAGS {
            assert_eq!(admin.flag(f), Some(true), "{f}");
        }
        assert_eq!(admin.flag("perm_nonsense"), None);
    }
}
