//! A connected server (MISP `servers`): a peer instance this one pulls from or pushes to, with the
//! local organisation that owns what is pulled and the organisation that runs the peer. Servers
//! live on the instance stream; the peer's key is a secret and never part of a change.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub id: i64,
    pub name: String,
    /// The peer's base URL (`https://misp.example.org`).
    pub url: String,
    /// The local owner organisation of what is pulled from the peer.
    pub org_id: i64,
    /// The organisation that runs the peer (a local organisation record with that organisation's uuid).
    pub remote_org_id: i64,
    #[serde(default)]
    pub push: bool,
    #[serde(default)]
    pub pull: bool,
    #[serde(default)]
    pub push_sightings: bool,
    /// The same organisation's instance: no downgrade, everything shared.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub unpublish_event: bool,
    #[serde(default)]
    pub publish_without_email: bool,
    #[serde(default)]
    pub self_signed: bool,
    #[serde(default)]
    pub skip_proxy: bool,
    #[serde(default)]
    pub caching_enabled: bool,
    #[serde(default)]
    pub remove_missing_tags: bool,
    #[serde(default)]
    pub priority: i64,
    /// MISP's push and pull rules (`{"tags": {"OR": [], "NOT": []}, "orgs": {...}}`), kept as given.
    #[serde(default)]
    pub push_rules: Value,
    #[serde(default)]
    pub pull_rules: Value,
}

impl Server {
    /// The sync-rules view of this server.
    pub fn peer(&self) -> crate::sync_rules::Peer {
        crate::sync_rules::Peer { server_id: self.id, internal: self.internal, remote_org_id: self.remote_org_id }
    }
}

/// Checks a server record: a name, an http(s) URL and both organisations.
///
/// # Errors
/// Invalid with MISP's field names.
pub fn validate(s: &Server) -> Result<(), crate::DomainError> {
    use crate::DomainError;
    if s.name.trim().is_empty() {
        return Err(DomainError::invalid("name", "Mandatory field not set."));
    }
    let url = s.url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 || url.chars().any(char::is_whitespace) {
        return Err(DomainError::invalid("url", "Please provide a valid URL (http:// or https://)."));
    }
    if s.org_id <= 0 {
        return Err(DomainError::invalid("org_id", "Invalid organisation."));
    }
    if s.remote_org_id <= 0 {
        return Err(DomainError::invalid("remote_org_id", "Invalid organisation."));
    }
    Ok(())
}
