//! Authentication exactly as MISP clients send it: `Authorization: <40-char key>` (or `X-MISP-AUTH`),
//! possibly several comma-separated keys of which the first valid one wins.

use crate::error::{AUTH_FAILED, ApiError};
use crate::keys;
use crate::state::AppState;
use axum::http::HeaderMap;
use cairn_domain::Actor;
use cairn_domain::organisation::Organisation;
use cairn_domain::role::{Role, default_role};
use cairn_domain::user::User;
use crate::ttl::TtlMap;
use serde_json::Value;
use std::sync::Arc;

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: User,
    pub org: Organisation,
    /// The effective role (a read-only key keeps only perm_auth and perm_audit).
    pub role: Role,
    pub key_id: i64,
    pub read_only_key: bool,
    /// Where the request comes from, recorded on the changes it makes: `api`, or `sync:<server>` for
    /// the sync consumers.
    pub via: String,
}

impl Authed {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.id,
            user_uuid: self.user.uuid,
            email: self.user.email.clone(),
            org_id: self.org.id,
            org_uuid: self.org.uuid,
            role_id: self.role.id,
            via: self.via.clone(),
        }
    }

    pub fn is_site_admin(&self) -> bool {
        self.role.perm_site_admin
    }
}

fn candidate_keys(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["authorization", "x-misp-auth"] {
        for value in headers.get_all(name) {
            let Ok(text) = value.to_str() else { continue };
            if text.trim_start().starts_with("Basic") {
                continue;
            }
            out.extend(text.split(',').map(|k| k.trim().to_string()).filter(|k| keys::is_well_formed(k)));
        }
    }
    out
}

/// Resolves the caller or answers 403 with MISP's message.
///
/// # Errors
/// 403 when no well-formed, valid, unexpired key of an enabled user with `perm_auth` is present; 503
/// when the database is unreachable.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, ip: std::net::IpAddr) -> Result<Authed, ApiError> {
    let candidates = candidate_keys(headers);
    if candidates.is_empty() {
        state.metrics.auth_failures.inc();
        return Err(ApiError::Forbidden(AUTH_FAILED.into()));
    }
    let now = chrono::Utc::now().timestamp();
    for key in candidates {
        let Some(found) = state.auth_keys.lookup(&state.pool, &keys::hash(&key)).await? else { continue };
        let KeyRecord { key_id, key_doc, user, org } = found.as_ref();
        // MISP's advanced auth keys: a key restricted to addresses works only from them.
        let allowed: Vec<&str> = key_doc.get("allowed_ips").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let allowed_here = || cairn_domain::warninglist::Networks::parse(allowed.iter().copied()).is_ok_and(|n| n.contains(ip));
        if !allowed.is_empty() && !allowed_here() {
            tracing::warn!(%ip, key_id, "API key used from an address it is not allowed from");
            continue;
        }
        let key_expiration = key_doc.get("expiration").and_then(Value::as_i64);
        if key_expiration.is_some_and(|e| e > 0 && e < now) || user.expiration.is_some_and(|e| e > 0 && e < now) {
            continue;
        }
        let Some(mut role) = state.instance.get(&state.pool).await?.role(user.role_id) else { continue };
        if !role.perm_auth {
            continue;
        }
        let read_only_key = key_doc.get("read_only").and_then(Value::as_bool).unwrap_or(false);
        if read_only_key {
            let (auth, audit) = (role.perm_auth, role.perm_audit);
            let mut stripped = default_role(6).unwrap_or(role.clone());
            stripped.id = role.id;
            stripped.name = role.name.clone();
            stripped.perm_auth = auth;
            stripped.perm_audit = audit;
            role = stripped;
        }
        return Ok(Authed { user: user.clone(), org: org.clone(), role, key_id: *key_id, read_only_key, via: "api".into() });
    }
    state.metrics.auth_failures.inc();
    Err(ApiError::Forbidden(AUTH_FAILED.into()))
}


/// An API key found valid (not revoked, of an enabled user of a live organisation), with its user
/// and organisation. Expiry, allowed addresses and the role are checked at every use.
#[derive(Debug)]
pub struct KeyRecord {
    pub key_id: i64,
    pub key_doc: Value,
    pub user: User,
    pub org: Organisation,
}

/// Valid keys by hash for one second, so that a burst of requests does not look its key up each
/// time. This process clears it whenever it changes a user (keys live on the user's stream) or an
/// organisation; another API replica's revocation takes effect here within the second. Unknown keys
/// are never cached.
#[derive(Debug)]
pub struct KeyCache(TtlMap<String, Arc<KeyRecord>>);

impl Default for KeyCache {
    fn default() -> Self {
        Self(TtlMap::new(std::time::Duration::from_secs(1)))
    }
}

impl KeyCache {
    pub fn invalidate(&self) {
        self.0.clear();
    }

    /// The valid key with this hash, if any.
    ///
    /// # Errors
    /// Database errors; 500 for an undecodable user or organisation document.
    pub async fn lookup(&self, pool: &deadpool_postgres::Pool, hash: &str) -> Result<Option<Arc<KeyRecord>>, ApiError> {
        if let Some(found) = self.0.get(&hash.to_string()) {
            return Ok(Some(found));
        }
        let read_at = std::time::Instant::now();
        let client = pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT k.id, k.doc, u.doc, o.doc FROM rm.auth_keys k \
                 JOIN rm.users u ON u.id = k.user_id AND NOT u.deleted AND NOT u.disabled \
                 JOIN rm.organisations o ON o.id = u.org_id AND NOT o.deleted \
                 WHERE k.key_hash = $1 AND NOT k.revoked",
            )
            .await?;
        let Some(row) = client.query_opt(&stmt, &[&hash]).await? else { return Ok(None) };
        let record = Arc::new(KeyRecord {
            key_id: row.get(0),
            key_doc: row.get(1),
            user: serde_json::from_value(row.get(2)).map_err(ApiError::internal)?,
            org: serde_json::from_value(row.get(3)).map_err(ApiError::internal)?,
        });
        self.0.insert(hash.to_string(), record.clone(), read_at);
        Ok(Some(record))
    }
}

/// The instance's first site administrator, acting `via` a background process (the sync consumers):
/// commands it runs are recorded with this user and `via`.
///
/// # Errors
/// Database errors; 503 when the instance has no site administrator.
pub async fn site_admin(state: &AppState, via: &str) -> Result<Authed, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT u.doc, o.doc FROM rm.users u JOIN rm.organisations o ON o.id = u.org_id AND NOT o.deleted \
             WHERE NOT u.deleted AND NOT u.disabled AND (u.doc->>'role_id')::bigint = 1 ORDER BY u.id LIMIT 1",
            &[],
        )
        .await?
        .ok_or_else(|| ApiError::Unavailable("This instance has no site administrator.".into()))?;
    let user: User = serde_json::from_value(row.get(0)).map_err(ApiError::internal)?;
    let org: Organisation = serde_json::from_value(row.get(1)).map_err(ApiError::internal)?;
    let role = default_role(1).ok_or_else(|| ApiError::Internal("admin role missing".into()))?;
    Ok(Authed { user, org, role, key_id: 0, read_only_key: false, via: via.into() })
}
