//! Who issues a command: recorded on every commit and in every change's metadata.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The acting user and organisation, as looked up when the command was authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: i64,
    pub user_uuid: Uuid,
    pub email: String,
    pub org_id: i64,
    pub org_uuid: Uuid,
    pub role_id: i64,
    /// Where the command came from: `api`, `cli`, `sync:<server>` …
    pub via: String,
}

impl Actor {
    /// The actor of `cairnctl` maintenance commands that run before any user exists.
    pub fn system(via: &str) -> Self {
        Self {
            user_id: 0,
            user_uuid: Uuid::nil(),
            email: "system".into(),
            org_id: 0,
            org_uuid: Uuid::nil(),
            role_id: 0,
            via: via.into(),
        }
    }
}
