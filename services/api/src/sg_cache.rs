//! Which sharing groups an organisation belongs to and may use, cached briefly per organisation so a
//! request does not spend queries on it. Dropped at once when this process changes a sharing group
//! or an organisation (other API replicas see the change within [`TTL`]).

use crate::error::ApiError;
use crate::ttl::TtlMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);

/// One organisation's sharing-group facts.
#[derive(Debug, Default)]
pub struct Membership {
    /// Groups the organisation belongs to (MISP's `authorizedIds`).
    pub member: BTreeSet<i64>,
    /// Groups it may assign to data: its memberships and the groups it owns.
    pub usable: BTreeSet<i64>,
}

#[derive(Debug)]
pub struct SharingGroupCache {
    entries: TtlMap<i64, Arc<Membership>>,
    /// Every live sharing group (what a site administrator may use).
    all: TtlMap<(), Arc<BTreeSet<i64>>>,
}

impl Default for SharingGroupCache {
    fn default() -> Self {
        Self { entries: TtlMap::new(TTL), all: TtlMap::new(TTL) }
    }
}

impl SharingGroupCache {
    pub fn invalidate(&self) {
        self.entries.clear();
        self.all.clear();
    }

    /// The organisation's membership, read when missing or older than the TTL.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get(&self, pool: &deadpool_postgres::Pool, org_id: i64) -> Result<Arc<Membership>, ApiError> {
        if let Some(m) = self.entries.get(&org_id) {
            return Ok(m);
        }
        let read_at = Instant::now();
        let client = pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT s.id, s.org_id = $1 AS owned, ( \
                 EXISTS (SELECT 1 FROM rm.sharing_group_orgs o WHERE o.sharing_group_id = s.id AND o.org_id = $1) \
                 OR EXISTS (SELECT 1 FROM rm.sharing_group_servers v WHERE v.sharing_group_id = s.id AND v.server_id = 0 AND v.all_orgs)) AS member \
                 FROM rm.sharing_groups s WHERE NOT s.deleted",
            )
            .await?;
        let mut m = Membership::default();
        for r in client.query(&stmt, &[&org_id]).await? {
            let (id, owned, member): (i64, bool, bool) = (r.get(0), r.get(1), r.get(2));
            if member {
                m.member.insert(id);
            }
            if member || owned {
                m.usable.insert(id);
            }
        }
        let m = Arc::new(m);
        self.entries.insert(org_id, m.clone(), read_at);
        Ok(m)
    }

    /// Every live sharing group, read when missing or older than the TTL.
    ///
    /// # Errors
    /// Database errors.
    pub async fn all(&self, pool: &deadpool_postgres::Pool) -> Result<Arc<BTreeSet<i64>>, ApiError> {
        if let Some(all) = self.all.get(&()) {
            return Ok(all);
        }
        let read_at = Instant::now();
        let client = pool.get().await?;
        let stmt = client.prepare_cached("SELECT id FROM rm.sharing_groups WHERE NOT deleted").await?;
        let all: Arc<BTreeSet<i64>> = Arc::new(client.query(&stmt, &[]).await?.iter().map(|r| r.get(0)).collect());
        self.all.insert((), all.clone(), read_at);
        Ok(all)
    }
}
