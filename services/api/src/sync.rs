//! Sync between Cairn instances by log position (docs/sync.md).
//!
//! **Serving.** `GET /sync/feed?after=P&limit=N&instance=U` answers a peer's sync user with the Events
//! touched after position `P` of this instance's log, in position order, each as the peer may receive
//! it now ([`cairn_domain::event::sync::outward`]: MISP's push rules and downgrades), or — when an
//! Event the peer could hold is no longer shared with it — as withdrawn. `next` is the position to ask
//! from next time: nothing below it is ever offered again, and nothing is missed, because positions
//! are gap-free and commit-ordered (ADR 0001). Peers never learn of Events that were not shared with
//! them.
//!
//! **Consuming.** A consumer per pull-enabled server reads that feed from the position it stored and
//! applies each offer through the command path ([`cairn_domain::event::sync::mirror`]): the copy
//! becomes local changes that record the origin. The position is stored after the page is applied;
//! a consumer killed in between re-reads the page, and the offers it already applied write nothing.

use crate::auth::Authed;
use crate::commands::{self, CommandMeta};
use crate::error::{ApiError, NO_PERMISSION_FUNCTIONALITY};
use crate::handlers::Request;
use crate::handlers::support;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::sync::{self as event_sync, Groups, Incoming, Offer, Receiver, Shared};
use cairn_domain::event::{self, EventState, IdPool, TagLink};
use cairn_domain::server::Server;
use cairn_domain::sharing_group::{SharingGroup, SharingGroupCommand, SharingGroupOrg, SharingGroupServer, SharingGroupState};
use cairn_domain::sync_rules::{Peer, Rules};
use cairn_domain::{Change, stream};
use cairn_platform::{Settings, Shutdown};
use serde::{Deserialize, Serialize};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Log positions one feed page scans at most (pages stay small however far behind the peer is).
pub const FEED_WINDOW: i64 = 20_000;
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1_000;
/// Offers of one page applied at once by a consumer.
const APPLY_CONCURRENCY: usize = 4;

/// One page of the feed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedPage {
    /// This instance's log head when the page was read.
    pub head: i64,
    /// Where the next page starts (everything up to it has been offered).
    pub next: i64,
    pub events: Vec<FeedEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedEntry {
    /// The position of the Event's last change this page accounts for.
    pub position: i64,
    pub uuid: Uuid,
    /// `null`: withdrawn (no longer shared with the peer).
    pub event: Option<Box<WireEvent>>,
}

/// An Event as shared, with the names behind the sender's ids (organisations, tags, sharing groups).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireEvent {
    #[serde(flatten)]
    pub shared: Shared,
    pub orgs: BTreeMap<i64, WireOrg>,
    pub tag_names: BTreeMap<i64, WireTag>,
    pub sharing_groups: BTreeMap<i64, WireGroup>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOrg {
    pub uuid: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireTag {
    pub name: String,
    pub colour: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireGroup {
    pub uuid: Uuid,
    pub name: String,
    pub releasability: String,
    pub description: String,
    pub roaming: bool,
    pub org_id: i64,
    /// Member organisations (ids into the Event's `orgs`) and their `extend` flag.
    pub members: Vec<(i64, bool)>,
    /// Servers the group lists, by URL (the sender itself for its server 0), with `all_orgs`.
    pub servers: Vec<(String, bool)>,
}

// ---------------------------------------------------------------------------------------------
// Serving

/// This instance's uuid (MISP `MISP.uuid`).
///
/// # Errors
/// Database errors; 503 before bootstrap.
pub async fn instance_uuid(state: &AppState) -> Result<Uuid, ApiError> {
    state.instance.get(&state.pool).await?.instance_uuid.ok_or_else(|| ApiError::Unavailable("This instance is not bootstrapped.".into()))
}

/// Connected servers, by id.
///
/// # Errors
/// Database errors.
pub async fn servers(state: &AppState) -> Result<BTreeMap<i64, Server>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client.query("SELECT doc FROM rm.servers ORDER BY id", &[]).await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let s: Server = serde_json::from_value(r.get(0)).map_err(ApiError::internal)?;
        out.insert(s.id, s);
    }
    Ok(out)
}

/// The peer a sync user stands for: the server whose remote organisation is the user's, else an
/// unlisted peer of that organisation (sharing groups reach it only through membership).
fn peer_of<'s>(auth: &Authed, servers: &'s BTreeMap<i64, Server>) -> (Peer, Option<&'s Server>) {
    let server = servers.values().find(|s| s.remote_org_id == auth.org.id);
    (server.map_or(Peer { server_id: -1, internal: false, remote_org_id: auth.org.id }, Server::peer), server)
}

/// A server's rules with ids replaced by what offers carry: tag ids by tag names, organisation ids
/// by organisation uuids (MISP's rules name tags and organisations by id or by name).
///
/// # Errors
/// Database errors.
pub async fn local_rules(state: &AppState, raw: &Value) -> Result<Rules, ApiError> {
    let mut rules = Rules::parse(raw);
    if rules.is_empty() {
        return Ok(rules);
    }
    let client = state.pool.get().await?;
    for (tag, item) in rules.items_mut() {
        let Ok(id) = item.parse::<i64>() else { continue };
        let sql = if tag { "SELECT name FROM rm.tags WHERE id = $1" } else { "SELECT uuid::text FROM rm.organisations WHERE id = $1" };
        if let Some(row) = client.query_opt(sql, &[&id]).await? {
            *item = row.get(0);
        }
    }
    Ok(rules)
}

/// Do an offered Event's tags and creator pass `rules`?
fn passes(rules: &Rules, w: &WireEvent) -> bool {
    if rules.is_empty() {
        return true;
    }
    let tags: Vec<String> = w.shared.tags.iter().filter_map(|t| w.tag_names.get(&t.tag_id).map(|n| n.name.clone())).collect();
    let org: Vec<String> = w.orgs.get(&w.shared.meta.orgc_id).map(|o| vec![o.uuid.to_string(), o.name.clone()]).unwrap_or_default();
    rules.allows(&tags, &org)
}

/// `GET /sync/feed` (sync users and site admins).
///
/// # Errors
/// 403 without perm_sync; 400 for malformed parameters.
pub async fn feed(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    if !(auth.role.perm_sync || auth.is_site_admin()) {
        return Err(ApiError::Forbidden(NO_PERMISSION_FUNCTIONALITY.into()));
    }
    let body = crate::body::parse(&req.body)?;
    let after = crate::handlers::audit::int_param(req, &body, "after")?.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest("after must be a log position (0 or more).".into()));
    }
    let limit = crate::handlers::audit::int_param(req, &body, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}.")));
    }
    let instance = crate::handlers::audit::param(req, &body, "instance")
        .map(|v| Uuid::parse_str(v.trim()).map_err(|_| ApiError::BadRequest("instance must be a uuid.".into())))
        .transpose()?;
    let page = serve(state, auth, after, limit, instance).await?;
    Ok(support::json(serde_json::to_value(page).map_err(ApiError::internal)?))
}

/// One feed page for the peer `auth` stands for.
///
/// # Errors
/// Database errors and undecodable changes.
pub async fn serve(state: &AppState, auth: &Authed, after: i64, limit: i64, peer_instance: Option<Uuid>) -> Result<FeedPage, ApiError> {
    let here = instance_uuid(state).await?;
    let connected = servers(state).await?;
    let (peer, server) = peer_of(auth, &connected);
    let push_rules = match server {
        Some(s) => local_rules(state, &s.push_rules).await?,
        None => Rules::default(),
    };
    let client = state.pool.get().await?;
    let head = cairn_eventlog::store::head(&client).await?.position;
    let upto = head.min(after.saturating_add(FEED_WINDOW));
    let rows = client
        .query(
            "SELECT stream_id, max(position) FROM es.changes WHERE position > $1 AND position <= $2 AND stream_type = $3 \
             GROUP BY stream_id ORDER BY 2 LIMIT $4",
            &[&after, &upto, &stream::EVENT, &(limit + 1)],
        )
        .await?;
    let mut touched: Vec<(Uuid, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let next = if touched.len() as i64 > limit {
        touched.truncate(limit as usize);
        touched.last().map_or(upto, |t| t.1)
    } else {
        upto
    };
    if touched.is_empty() {
        return Ok(FeedPage { head, next, events: vec![] });
    }
    let ids: Vec<Uuid> = touched.iter().map(|t| t.0).collect();
    let stored = cairn_eventlog::store::read_streams_for_replay(&client, &ids, next).await?;
    drop(client);
    // Each Event now (as of `next`) and as it was when the peer last read (`after`).
    let mut folded: HashMap<Uuid, Folded> = HashMap::new();
    for c in &stored {
        let change = Change::from_record(&c.change_type, c.schema_version, &c.payload).map_err(ApiError::internal)?;
        let f = folded.entry(c.stream_id).or_default();
        if c.position <= after {
            f.before = event::evolve(std::mem::take(&mut f.before), &change);
            f.before_version = c.stream_version;
        }
        f.now = event::evolve(std::mem::take(&mut f.now), &change);
        f.version = c.stream_version;
    }
    let mut group_ids = BTreeSet::new();
    for f in folded.values() {
        for s in [&f.now, &f.before] {
            group_ids.extend(sharing_group_ids(s));
        }
    }
    let groups = load_groups(state, &group_ids).await?;
    let mut shared = Vec::new();
    for (uuid, position) in touched {
        let Some(f) = folded.get(&uuid) else { continue };
        if let Some(s) = event_sync::outward(&f.now, f.version, here, &peer, peer_instance, &groups) {
            shared.push((position, uuid, Some(s)));
        } else if f.before_version > 0 && event_sync::shared_with(&f.before, f.before_version, here, &peer, peer_instance, &groups) {
            shared.push((position, uuid, None));
        }
    }
    let mut events = wire(state, shared, &groups, &connected).await?;
    // The server's push rules: an Event they exclude is not offered (nor withdrawn).
    events.retain(|e| e.event.as_ref().is_none_or(|w| passes(&push_rules, w)));
    Ok(FeedPage { head, next, events })
}

#[derive(Default)]
struct Folded {
    now: EventState,
    version: i64,
    before: EventState,
    before_version: i64,
}

fn sharing_group_ids(s: &EventState) -> impl Iterator<Item = i64> + '_ {
    let meta = s.meta.iter().map(|m| m.sharing_group_id);
    let attributes = s.attributes.values().map(|a| a.sharing_group_id);
    let objects = s.objects.values().map(|o| o.sharing_group_id);
    meta.chain(attributes).chain(objects).filter(|id| *id > 0)
}

/// Sharing groups with their members and servers, by id.
async fn load_groups(state: &AppState, ids: &BTreeSet<i64>) -> Result<Groups, ApiError> {
    let mut groups = Groups::new();
    if ids.is_empty() {
        return Ok(groups);
    }
    let ids: Vec<i64> = ids.iter().copied().collect();
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, uuid, name, releasability, description, org_id, org_uuid, active, roaming, local, created, modified, deleted \
             FROM rm.sharing_groups WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    for r in rows {
        let group = SharingGroup {
            id: r.get(0),
            uuid: r.get(1),
            name: r.get(2),
            releasability: r.get(3),
            description: r.get(4),
            org_id: r.get(5),
            org_uuid: r.get(6),
            active: r.get(7),
            roaming: r.get(8),
            local: r.get(9),
            created: r.get(10),
            modified: r.get(11),
        };
        groups.insert(group.id, SharingGroupState { group: Some(group), orgs: vec![], servers: vec![], deleted: r.get(12) });
    }
    // Member uuids are not needed to judge sharing (ids are), nor sent (the wire names orgs by id).
    for r in client.query("SELECT sharing_group_id, org_id, extend FROM rm.sharing_group_orgs WHERE sharing_group_id = ANY($1)", &[&ids]).await? {
        if let Some(g) = groups.get_mut(&r.get::<_, i64>(0)) {
            g.orgs.push(SharingGroupOrg { org_id: r.get(1), org_uuid: Uuid::nil(), extend: r.get(2) });
        }
    }
    for r in client.query("SELECT sharing_group_id, server_id, all_orgs FROM rm.sharing_group_servers WHERE sharing_group_id = ANY($1)", &[&ids]).await? {
        if let Some(g) = groups.get_mut(&r.get::<_, i64>(0)) {
            g.servers.push(SharingGroupServer { server_id: r.get(1), all_orgs: r.get(2) });
        }
    }
    groups.retain(|_, g| !g.deleted);
    Ok(groups)
}

/// Feed entries with the names behind the ids; tags that are not exportable are left out.
async fn wire(state: &AppState, shared: Vec<(i64, Uuid, Option<Shared>)>, groups: &Groups, servers: &BTreeMap<i64, Server>) -> Result<Vec<FeedEntry>, ApiError> {
    let mut tag_ids = BTreeSet::new();
    let mut org_ids = BTreeSet::new();
    for (_, _, s) in &shared {
        let Some(s) = s else { continue };
        tag_ids.extend(s.tags.iter().map(|t| t.tag_id));
        tag_ids.extend(s.attributes.iter().flat_map(|a| a.tags.iter().map(|t| t.tag_id)));
        org_ids.insert(s.meta.orgc_id);
    }
    for g in groups.values() {
        org_ids.extend(g.group.iter().map(|g| g.org_id));
        org_ids.extend(g.orgs.iter().map(|o| o.org_id));
    }
    let client = state.pool.get().await?;
    let tag_ids: Vec<i64> = tag_ids.into_iter().collect();
    let tags: HashMap<i64, WireTag> = client
        .query("SELECT id, name, colour FROM rm.tags WHERE id = ANY($1) AND exportable AND NOT deleted", &[&tag_ids])
        .await?
        .iter()
        .map(|r| (r.get(0), WireTag { name: r.get(1), colour: r.get(2) }))
        .collect();
    let org_ids: Vec<i64> = org_ids.into_iter().collect();
    let orgs: HashMap<i64, WireOrg> = client
        .query("SELECT id, uuid, doc->>'name' FROM rm.organisations WHERE id = ANY($1)", &[&org_ids])
        .await?
        .iter()
        .map(|r| (r.get(0), WireOrg { uuid: r.get(1), name: r.get::<_, Option<String>>(2).unwrap_or_default() }))
        .collect();
    drop(client);
    // Servers by URL, this instance for its server 0.
    let mut urls: HashMap<i64, String> = servers.values().map(|s| (s.id, s.url.clone())).collect();
    urls.insert(0, state.settings.instance.base_url.clone());
    let mut out = Vec::new();
    for (position, uuid, s) in shared {
        let Some(mut s) = s else {
            out.push(FeedEntry { position, uuid, event: None });
            continue;
        };
        s.tags.retain(|t| tags.contains_key(&t.tag_id));
        for a in &mut s.attributes {
            a.tags.retain(|t| tags.contains_key(&t.tag_id));
        }
        let mut used_groups = BTreeMap::new();
        for id in std::iter::once(s.meta.sharing_group_id)
            .chain(s.attributes.iter().map(|a| a.sharing_group_id))
            .chain(s.objects.iter().map(|o| o.sharing_group_id))
            .filter(|id| *id > 0)
        {
            if let Some(g) = groups.get(&id).and_then(|g| wire_group(g, &urls)) {
                used_groups.insert(id, g);
            }
        }
        let mut used_orgs = BTreeMap::new();
        let wanted = std::iter::once(s.meta.orgc_id)
            .chain(used_groups.values().flat_map(|g| std::iter::once(g.org_id).chain(g.members.iter().map(|m| m.0))));
        for id in wanted {
            if let Some(o) = orgs.get(&id) {
                used_orgs.insert(id, o.clone());
            }
        }
        let used_tags = s.tags.iter().chain(s.attributes.iter().flat_map(|a| a.tags.iter())).filter_map(|t| tags.get(&t.tag_id).map(|w| (t.tag_id, w.clone()))).collect();
        out.push(FeedEntry { position, uuid, event: Some(Box::new(WireEvent { shared: s, orgs: used_orgs, tag_names: used_tags, sharing_groups: used_groups })) });
    }
    Ok(out)
}

fn wire_group(g: &SharingGroupState, urls: &HashMap<i64, String>) -> Option<WireGroup> {
    let group = g.group.as_ref()?;
    Some(WireGroup {
        uuid: group.uuid,
        name: group.name.clone(),
        releasability: group.releasability.clone(),
        description: group.description.clone(),
        roaming: group.roaming,
        org_id: group.org_id,
        members: g.orgs.iter().map(|o| (o.org_id, o.extend)).collect(),
        servers: g.servers.iter().filter_map(|s| urls.get(&s.server_id).map(|u| (u.clone(), s.all_orgs))).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Consuming

/// What one pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub pages: usize,
    /// Offers received (Events and withdrawals).
    pub offered: usize,
    /// Offers that changed a local copy (created, updated or withdrawn it).
    pub applied: usize,
    pub withdrawn: usize,
    /// Offers refused (an Event created here, one of our own coming back, bad data).
    pub refused: usize,
    /// Offers the server's pull rules left out.
    pub filtered: usize,
    /// The peer's log position this instance has read up to.
    pub position: i64,
}

/// A pull-enabled server with its key.
async fn server_key(state: &AppState, server_id: i64) -> Result<Option<String>, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT authkey FROM sync.server_keys WHERE server_id = $1", &[&server_id]).await?.map(|r| r.get(0)))
}

/// Stores a server's key (a secret: outside the log).
///
/// # Errors
/// Database errors.
pub async fn store_key(state: &AppState, server_id: i64, key: &str) -> Result<(), ApiError> {
    let client = state.pool.get().await?;
    client
        .execute(
            "INSERT INTO sync.server_keys (server_id, authkey) VALUES ($1, $2) ON CONFLICT (server_id) DO UPDATE SET authkey = $2",
            &[&server_id, &key],
        )
        .await?;
    Ok(())
}

/// The position this instance has read a server's feed up to.
///
/// # Errors
/// Database errors.
pub async fn cursor(state: &AppState, server_id: i64) -> Result<i64, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT position FROM sync.cursors WHERE server_id = $1", &[&server_id]).await?.map_or(0, |r| r.get(0)))
}

async fn store_cursor(state: &AppState, server_id: i64, position: i64, applied: i64) -> Result<(), ApiError> {
    let client = state.pool.get().await?;
    client
        .execute(
            "INSERT INTO sync.cursors (server_id, position, events_applied, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (server_id) DO UPDATE SET position = GREATEST(sync.cursors.position, $2), \
             events_applied = sync.cursors.events_applied + $3, updated_at = now()",
            &[&server_id, &position, &applied],
        )
        .await?;
    Ok(())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap_or_default()
}

/// Reads the server's feed from the stored position to the head it reports, applying every offer.
///
/// # Errors
/// An unreachable or refusing peer (502), store errors; the position stays where the last fully
/// applied page left it.
pub async fn pull(state: &AppState, server: &Server) -> Result<PullReport, ApiError> {
    let key = server_key(state, server.id).await?.ok_or_else(|| ApiError::BadRequest("The server has no authkey.".into()))?;
    let here = instance_uuid(state).await?;
    let admin = crate::auth::site_admin(state, &format!("sync:{}", server.id)).await?;
    let client = http();
    let mut report = PullReport { position: cursor(state, server.id).await?, ..PullReport::default() };
    let mut known = Known::default();
    let mut last_written = None;
    let rules = local_rules(state, &server.pull_rules).await?;
    loop {
        let url = format!("{}/sync/feed?after={}&limit={DEFAULT_LIMIT}&instance={here}", server.url.trim_end_matches('/'), report.position);
        let response = client
            .get(&url)
            .header("Authorization", &key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| ApiError::BadGateway(format!("The server could not be reached: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::BadGateway(format!("The server refused the feed request ({status}).")));
        }
        let page: FeedPage = response.json().await.map_err(|e| ApiError::BadGateway(format!("The server's feed is unreadable: {e}")))?;
        if page.next < report.position {
            return Err(ApiError::BadGateway("The server's feed went backwards.".into()));
        }
        report.pages += 1;
        // Names first, one at a time (two offers may name the same new tag); then the Events, a few
        // at once (each is its own stream; the appender commits them together).
        let mut offers = Vec::with_capacity(page.events.len());
        for entry in page.events {
            let offer = match entry.event {
                None => Offer::Withdrawn,
                Some(w) if !passes(&rules, &w) => {
                    report.filtered += 1;
                    report.offered += 1;
                    continue;
                }
                Some(w) => match incoming(state, &admin, server, *w, &mut known).await {
                    Ok(i) => Offer::Event(Box::new(i)),
                    // An offer this instance cannot hold (a sharing group it is not in, a name it
                    // refuses) is refused alone; the pull goes on.
                    Err(e) if is_refusal(&e) => {
                        tracing::warn!(server = server.id, event = %entry.uuid, reason = %e, "offer refused");
                        refused_metric(server.id);
                        report.refused += 1;
                        report.offered += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            offers.push((entry.uuid, offer));
        }
        let outcomes: Vec<Result<Applied, ApiError>> = futures::stream::iter(offers)
            .map(|(uuid, offer)| apply(state, &admin, server, here, uuid, offer))
            .buffered(APPLY_CONCURRENCY)
            .collect()
            .await;
        let mut applied = 0;
        let mut page_written = None;
        for outcome in outcomes {
            match outcome? {
                Applied::Changed { withdrawn, position } => {
                    applied += 1;
                    report.withdrawn += usize::from(withdrawn);
                    page_written = page_written.max(Some(position));
                }
                Applied::Unchanged => {}
                Applied::Refused => report.refused += 1,
            }
            report.offered += 1;
        }
        report.applied += applied;
        last_written = last_written.max(page_written);
        metric(server.id, "cairn_sync_pages_total", "Feed pages read from connected servers.").inc();
        metric(server.id, "cairn_sync_offers_applied_total", "Offers that changed a local copy.").add(applied as i64);
        metric(server.id, "cairn_sync_position", "The connected server's log position read up to.").set(page.next);
        metric(server.id, "cairn_sync_behind", "Positions of the connected server's log not read yet.").set(page.head - page.next);
        store_cursor(state, server.id, page.next, applied as i64).await?;
        report.position = page.next;
        if page.next >= page.head {
            // What the pull wrote is readable when it answers (the log already holds it: a stored
            // position never depends on the read models).
            if let Some(position) = last_written {
                commands::wait_for_read_models(state, position).await;
            }
            return Ok(report);
        }
    }
}

/// One connected server's metric (`*_total` names are counters, the others gauges).
fn metric(server_id: i64, name: &'static str, help: &'static str) -> cairn_platform::metrics::Handle {
    let label = server_id.to_string();
    let labels = [("server", label.as_str())];
    let registry = cairn_platform::metrics::Registry::global();
    if name.ends_with("_total") { registry.counter(name, help, &labels) } else { registry.gauge(name, help, &labels) }
}

fn refused_metric(server_id: i64) {
    metric(server_id, "cairn_sync_offers_refused_total", "Offers refused (bad data, our own Events, Events created here).").inc();
}

/// A refusal of one offer (4xx), as opposed to a failure of the pull (store, peer).
fn is_refusal(e: &ApiError) -> bool {
    matches!(e, ApiError::Forbidden(_) | ApiError::SaveFailed { .. } | ApiError::BadRequest(_) | ApiError::NotFound(_))
}

enum Applied {
    /// `position`: the last position written.
    Changed { withdrawn: bool, position: i64 },
    Unchanged,
    Refused,
}

/// Applies one offer to the local copy of Event `uuid`.
async fn apply(state: &AppState, admin: &Authed, server: &Server, here: Uuid, uuid: Uuid, offer: Offer) -> Result<Applied, ApiError> {
    let withdrawn = matches!(offer, Offer::Withdrawn);
    if let Offer::Event(i) = &offer
        && let Err(e) = event_sync::check(i, &state.reference.catalogue)
    {
        tracing::warn!(server = server.id, event = %uuid, reason = %e, "offer refused");
        refused_metric(server.id);
        return Ok(Applied::Refused);
    }
    for _ in 0..3 {
        let (current, _) = commands::load(state, uuid, event::evolve).await?;
        let (attributes, objects, references) = match &offer {
            Offer::Event(i) => event_sync::ids_needed(&current, i),
            Offer::Withdrawn => (0, 0, 0),
        };
        let pool = IdPool {
            attributes: commands::allocate_ids(state, "attribute", attributes).await?.into(),
            objects: commands::allocate_ids(state, "object", objects).await?.into(),
            references: commands::allocate_ids(state, "object_reference", references).await?.into(),
        };
        let event_id = match (&offer, current.meta.as_ref()) {
            (Offer::Event(_), None) => commands::allocate_ids(state, "event", 1).await?.first().copied().unwrap_or_default(),
            (_, Some(m)) => m.id,
            _ => 0,
        };
        let receiver = Receiver { server_id: server.id, instance: here, org_id: server.org_id, user_id: admin.user.id, event_id };
        let meta = CommandMeta::in_batch("sync.pull", admin.actor());
        let result = commands::execute(state, &meta, uuid, stream::EVENT, event::evolve, |s: &EventState| {
            match event_sync::mirror(s, offer.clone(), &receiver, &mut pool.clone()) {
                Ok(changes) => Ok((changes, ())),
                Err(cairn_domain::DomainError::Conflict(m)) => Err(ApiError::Conflict(m)),
                Err(e) => Err(crate::handlers::events::refusal(e, "sync the Event")),
            }
        })
        .await;
        return match result {
            Ok(commands::Executed { receipt: Some(receipt), .. }) => Ok(Applied::Changed { withdrawn, position: receipt.last_position }),
            Ok(_) => Ok(Applied::Unchanged),
            Err(ApiError::Conflict(_)) => continue, // ids ran short against a newer state: again
            // The offer is refused (one of ours, a local Event, bad data): the others still apply.
            Err(e) if is_refusal(&e) => {
                tracing::warn!(server = server.id, event = %uuid, reason = %e, "offer refused");
                refused_metric(server.id);
                Ok(Applied::Refused)
            }
            Err(e) => Err(e),
        };
    }
    Err(ApiError::Conflict("The Event kept changing while it was synced; the next pull retries.".into()))
}

/// Organisations, sharing groups and tags already resolved during one pull.
#[derive(Default)]
struct Known {
    orgs: HashMap<Uuid, i64>,
    groups: HashMap<Uuid, Option<i64>>,
    tags: HashMap<String, i64>,
}

/// An offer in this instance's ids: organisations, sharing groups and tags found (by uuid or name)
/// or created.
async fn incoming(state: &AppState, admin: &Authed, server: &Server, w: WireEvent, known: &mut Known) -> Result<Incoming, ApiError> {
    let WireEvent { shared, orgs, tag_names, sharing_groups } = w;
    let mut org_ids: HashMap<i64, i64> = HashMap::new();
    for (id, o) in &orgs {
        let local = match known.orgs.entry(o.uuid) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(ensure_org(state, admin, o).await?),
        };
        org_ids.insert(*id, local);
    }
    let mut group_ids: HashMap<i64, i64> = HashMap::new();
    for (id, g) in &sharing_groups {
        let local = match known.groups.entry(g.uuid) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(ensure_group(state, admin, server, g, &orgs, &org_ids).await?),
        };
        if let Some(local) = local {
            group_ids.insert(*id, local);
        }
    }
    let mut tag_ids: HashMap<i64, i64> = HashMap::new();
    for (id, t) in &tag_names {
        let local = match known.tags.entry(t.name.clone()) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(ensure_tag(state, admin, t).await?),
        };
        tag_ids.insert(*id, local);
    }
    let tags = |links: &[TagLink]| -> Vec<TagLink> {
        links.iter().filter_map(|t| tag_ids.get(&t.tag_id).map(|id| TagLink { tag_id: *id, local: false, relationship_type: t.relationship_type.clone() })).collect()
    };
    // An element whose sharing group this instance does not hold cannot be kept.
    let group = |distribution: u8, id: i64| -> Option<i64> { if distribution == 4 { group_ids.get(&id).copied() } else { Some(0) } };
    let mut meta = shared.meta.clone();
    meta.orgc_id = *org_ids.get(&meta.orgc_id).ok_or_else(|| ApiError::BadRequest("The offer names no creator organisation.".into()))?;
    meta.sharing_group_id =
        group(meta.distribution, meta.sharing_group_id).ok_or_else(|| ApiError::BadRequest("The offer's sharing group does not include this instance.".into()))?;
    let object_uuids: HashMap<i64, Uuid> = shared.objects.iter().map(|o| (o.id, o.uuid)).collect();
    let objects = shared
        .objects
        .iter()
        .filter_map(|o| group(o.distribution, o.sharing_group_id).map(|sg| cairn_domain::event::Object { sharing_group_id: sg, ..o.clone() }))
        .collect();
    let attributes = shared
        .attributes
        .iter()
        .filter_map(|a| {
            let sg = group(a.distribution, a.sharing_group_id)?;
            let object = if a.object_id == 0 { None } else { Some(*object_uuids.get(&a.object_id)?) };
            Some((cairn_domain::event::Attribute { sharing_group_id: sg, tags: tags(&a.tags), ..a.clone() }, object))
        })
        .collect();
    Ok(Incoming { meta, tags: tags(&shared.tags), objects, attributes, references: shared.references.clone(), origin: shared.origin })
}

/// The local organisation with `o`'s uuid, created (not local) when missing.
pub(crate) async fn ensure_org(state: &AppState, admin: &Authed, o: &WireOrg) -> Result<i64, ApiError> {
    if let Some(found) = crate::handlers::admin::find_org(state, &o.uuid.to_string()).await? {
        return Ok(found.id);
    }
    let mut name = o.name.trim().to_string();
    if name.is_empty() || crate::handlers::admin::find_org(state, &name).await?.is_some() {
        name = format!("{name} ({})", &o.uuid.simple().to_string()[..8]);
    }
    crate::handlers::admin::create_org(state, admin, o.uuid, &name, false).await.map(|org| org.id)
}

/// The local tag named `t.name`, created when missing.
async fn ensure_tag(state: &AppState, admin: &Authed, t: &WireTag) -> Result<i64, ApiError> {
    if let Some(found) = support::find_tag(state, &t.name).await? {
        return Ok(found.id);
    }
    let mut tag = support::new_tag(&t.name);
    if !t.colour.is_empty() {
        tag.colour = t.colour.clone();
    }
    Ok(support::create_tag(state, admin, tag).await?.id)
}

/// The local sharing group with `g`'s uuid, captured when missing (MISP's `captureSG`): its
/// organisations, the local owner of this server's copies (so the data received stays visible to it),
/// and this instance with `all_orgs` when the group lists this instance that way. `None` when this
/// instance is not part of the group.
async fn ensure_group(
    state: &AppState,
    admin: &Authed,
    server: &Server,
    g: &WireGroup,
    orgs: &BTreeMap<i64, WireOrg>,
    org_ids: &HashMap<i64, i64>,
) -> Result<Option<i64>, ApiError> {
    if let Some((id, _)) = crate::handlers::sharing_groups::find(state, &g.uuid.to_string()).await? {
        return Ok(Some(id));
    }
    let base = state.settings.instance.base_url.trim_end_matches('/');
    let listed_here = g.servers.iter().find(|(url, _)| url.trim_end_matches('/') == base);
    let mut members: Vec<SharingGroupOrg> = Vec::new();
    for (id, extend) in &g.members {
        if let (Some(local), Some(o)) = (org_ids.get(id), orgs.get(id)) {
            members.push(SharingGroupOrg { org_id: *local, org_uuid: o.uuid, extend: *extend });
        }
    }
    let owner = crate::handlers::admin::find_org(state, &server.org_id.to_string()).await?.ok_or_else(|| ApiError::Internal("server owner missing".into()))?;
    let member_here = listed_here.is_some() || members.iter().any(|m| m.org_id == owner.id) || members.iter().any(|m| m.org_id == server.remote_org_id);
    if !member_here && !server.internal {
        return Ok(None);
    }
    if !members.iter().any(|m| m.org_id == owner.id) {
        members.push(SharingGroupOrg { org_id: owner.id, org_uuid: owner.uuid, extend: false });
    }
    let (group_owner, group_owner_uuid) = match (org_ids.get(&g.org_id), orgs.get(&g.org_id)) {
        (Some(id), Some(o)) => (*id, o.uuid),
        _ => (owner.id, owner.uuid),
    };
    let servers: Vec<SharingGroupServer> = listed_here.filter(|(_, all)| *all).map(|_| SharingGroupServer { server_id: 0, all_orgs: true }).into_iter().collect();
    let now = chrono::Utc::now().timestamp();
    let id = commands::allocate_ids(state, "sharing_group", 1).await?.first().copied().unwrap_or_default();
    let group = SharingGroup {
        id,
        uuid: g.uuid,
        name: crate::handlers::sharing_groups::free_name(state, &g.name, g.uuid).await?,
        releasability: g.releasability.clone(),
        description: g.description.clone(),
        org_id: group_owner,
        org_uuid: group_owner_uuid,
        active: true,
        roaming: g.roaming,
        local: false,
        created: now,
        modified: now,
    };
    crate::handlers::sharing_groups::run(state, admin, g.uuid, "sync.capture_sharing_group", SharingGroupCommand::Create { group, orgs: members, servers }).await?;
    Ok(Some(id))
}

// ---------------------------------------------------------------------------------------------
// The consumer service

/// Pulls every pull-enabled server, then again every `CAIRN_SYNC_INTERVAL_MS`, until shutdown.
///
/// # Errors
/// An unusable database URL.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), crate::BoxError> {
    let interval = Duration::from_millis(settings.sync_interval_ms.max(50));
    let state = crate::background_state(settings).await?;
    let state = Arc::new(state);
    tracing::info!(interval_ms = interval.as_millis() as u64, "sync consumers started");
    loop {
        match servers(&state).await {
            Ok(list) => {
                for server in list.values().filter(|s| s.pull) {
                    match pull(&state, server).await {
                        Ok(r) if r.offered > 0 => tracing::info!(server = server.id, offered = r.offered, applied = r.applied, position = r.position, "pulled"),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(server = server.id, error = %e, "pull failed; retrying later");
                            metric(server.id, "cairn_sync_pull_failures_total", "Pulls that failed (retried at the next round).").inc();
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "servers unreadable"),
        }
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The JSON a manual pull answers.
pub fn report_json(server: &Server, r: &PullReport) -> Value {
    json!({
        "message": format!("Pull completed. {} events pulled, {} updated or withdrawn, {} refused.", r.offered, r.applied, r.refused),
        "server_id": server.id,
        "report": r,
    })
}
