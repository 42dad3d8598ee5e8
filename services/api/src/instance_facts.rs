//! A short-lived, in-process snapshot of instance-wide facts every write needs (settings, host
//! organisation, default role, import regexps), so a request does not spend a query on each. It is
//! refreshed after `TTL`, and dropped at once when this process changes the instance stream.

use crate::error::ApiError;
use crate::regexps::{self, Rule};
use cairn_domain::instance::Regexp;
use serde_json::Value;
use std::collections::HashMap;
use crate::ttl::TtlMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);

pub struct InstanceFacts {
    /// This instance's uuid (MISP `MISP.uuid`); `None` before bootstrap.
    pub instance_uuid: Option<uuid::Uuid>,
    pub settings: HashMap<String, Value>,
    pub host_org_id: i64,
    pub default_role_id: i64,
    pub regexps: Vec<Rule>,
    /// Enabled warninglists, by key.
    pub warninglists: std::collections::BTreeSet<String>,
    /// Roles beside MISP's six defaults, by id.
    pub roles: HashMap<i64, cairn_domain::role::Role>,
}

impl InstanceFacts {
    /// A role by id: one of MISP's six defaults, or one added with `admin/roles/add`.
    pub fn role(&self, id: i64) -> Option<cairn_domain::role::Role> {
        cairn_domain::role::default_role(id).or_else(|| self.roles.get(&id).cloned())
    }

    /// Every role, defaults first, in id order.
    pub fn all_roles(&self) -> Vec<cairn_domain::role::Role> {
        let mut out = cairn_domain::role::default_roles();
        let mut extra: Vec<_> = self.roles.values().cloned().collect();
        extra.sort_by_key(|r| r.id);
        out.extend(extra);
        out
    }
}

pub struct InstanceCache {
    current: TtlMap<(), Arc<InstanceFacts>>,
}

impl Default for InstanceCache {
    fn default() -> Self {
        Self { current: TtlMap::new(TTL) }
    }
}

impl std::fmt::Debug for InstanceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceCache").finish_non_exhaustive()
    }
}

impl InstanceCache {
    /// Forgets the snapshot (after a change of the instance stream by this process).
    pub fn invalidate(&self) {
        self.current.clear();
    }

    /// The current snapshot, loading it when missing or older than the TTL.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get(&self, pool: &deadpool_postgres::Pool) -> Result<Arc<InstanceFacts>, ApiError> {
        if let Some(f) = self.current.get(&()) {
            return Ok(f);
        }
        let read_at = Instant::now();
        let client = pool.get().await?;
        let settings: HashMap<String, Value> =
            client.query("SELECT name, value FROM rm.settings", &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
        let row = client.query_one("SELECT host_org_id, default_role_id, instance_uuid FROM rm.instance WHERE id = 1", &[]).await?;
        let rules = client
            .query("SELECT id, regexp, replacement, type FROM rm.regexps ORDER BY id", &[])
            .await?
            .iter()
            .filter_map(|r| regexps::compile(&Regexp { id: r.get(0), regexp: r.get(1), replacement: r.get(2), attr_type: r.get(3) }))
            .collect();
        let facts = Arc::new(InstanceFacts {
            instance_uuid: row.get(2),
            settings,
            host_org_id: row.get::<_, Option<i64>>(0).unwrap_or(1),
            default_role_id: row.get(1),
            regexps: rules,
            warninglists: client.query("SELECT key FROM rm.warninglists", &[]).await?.iter().map(|r| r.get(0)).collect(),
            roles: client
                .query("SELECT doc FROM rm.roles", &[])
                .await?
                .iter()
                .filter_map(|r| serde_json::from_value::<cairn_domain::role::Role>(r.get(0)).ok())
                .map(|r| (r.id, r))
                .collect(),
        });
        self.current.insert((), facts.clone(), read_at);
        Ok(facts)
    }
}
