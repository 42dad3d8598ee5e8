//! The line formats (csv, text, hashes, cache, count, suricata, snort, rpz, hosts, netfilter, bro)
//! and STIX 2.1, fed from attribute rows read in id order, a page at a time (keyset pagination).

use super::params::{Params, Scope};
use super::stream::Chunks;
use super::Search;
use crate::error::ApiError;
use cairn_formats::bro::{BroGroup, BroOptions, BroWriter};
use cairn_formats::csv::{CsvOptions, CsvWriter};
use cairn_formats::hashes::HashesWriter;
use cairn_formats::hosts::{HostsOptions, HostsWriter};
use cairn_formats::netfilter::{NetfilterOptions, NetfilterWriter};
use cairn_formats::nids::{NidsFlavour, NidsOptions, NidsWriter};
use cairn_formats::rpz::{RpzOptions, RpzPolicy, RpzWriter};
use cairn_formats::stix2::{Stix2Options, Stix2Writer};
use cairn_formats::text::TextWriter;
use cairn_formats::{Attribute, Event};
use sha2::Digest;
use std::collections::HashMap;
use tokio_postgres::Row;

/// Rows fetched per round trip.
const PAGE: i64 = 5_000;

/// MISP's `cache` format: a hash of each value, optionally with the Event's uuid.
pub struct CacheWriter {
    sha256: bool,
    event_uuid: bool,
}

impl CacheWriter {
    fn push(&mut self, event: &Event, attribute: &Attribute, out: &mut String) {
        use std::fmt::Write;
        let value = attribute.value();
        let digest: Vec<u8> = if self.sha256 { sha2::Sha256::digest(value.as_bytes()).to_vec() } else { md5::Md5::digest(value.as_bytes()).to_vec() };
        out.push_str(&hex::encode(digest));
        if self.event_uuid {
            let _ = write!(out, ",{}", event.uuid);
        }
        out.push('\n');
    }
}

/// One writer per line format.
pub enum Flat {
    Csv(CsvWriter),
    Text(TextWriter),
    Hashes(HashesWriter),
    Cache(CacheWriter),
    Count(u64),
    Nids(NidsWriter),
    Rpz(RpzWriter),
    Hosts(HostsWriter),
    Netfilter(NetfilterWriter),
    Bro(BroWriter),
}

/// The formats [`Flat`] writes.
pub const FLAT_FORMATS: &[&str] = &["csv", "text", "hashes", "cache", "count", "suricata", "snort", "rpz", "hosts", "netfilter", "bro", "zeek"];

/// What the writers need from the instance and the caller.
pub struct FormatContext {
    pub base_url: String,
    pub nids_sid: i64,
    pub host_org_name: Option<String>,
}

fn list(p: &Params, key: &str) -> Option<Vec<String>> {
    match p.get(key)? {
        serde_json::Value::Array(items) => Some(items.iter().filter_map(|v| crate::body::text(Some(v))).collect()),
        other => crate::body::text(Some(other)).map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
    }
}

impl Flat {
    pub fn new(format: &str, p: &Params, scope: Scope, cx: &FormatContext) -> Option<Self> {
        let now = chrono::Utc::now();
        let scope = if scope == Scope::Event { cairn_formats::Scope::Event } else { cairn_formats::Scope::Attribute };
        Some(match format {
            "csv" => Flat::Csv(CsvWriter::new(CsvOptions {
                requested_attributes: list(p, "requested_attributes"),
                requested_obj_attributes: list(p, "requested_obj_attributes"),
                include_context: p.on("includeContext"),
                headerless: p.on("headerless"),
                scope,
            })),
            "text" => Flat::Text(TextWriter::new()),
            "hashes" => Flat::Hashes(HashesWriter::new()),
            "cache" => Flat::Cache(CacheWriter {
                sha256: p.text("hash_type").is_some_and(|h| h.eq_ignore_ascii_case("sha256")),
                event_uuid: p.on("includeEventUuid"),
            }),
            "count" => Flat::Count(0),
            "suricata" | "snort" => Flat::Nids(NidsWriter::new(NidsOptions {
                flavour: if format == "snort" { NidsFlavour::Snort } else { NidsFlavour::Suricata },
                nids_sid: cx.nids_sid,
                base_url: cx.base_url.clone(),
                scope,
                now,
            })),
            "rpz" => {
                let mut o = RpzOptions::new(now);
                if let Some(policy) = p.text("policy").and_then(|s| RpzPolicy::from_name(&s)) {
                    o.policy = policy;
                }
                for (key, field) in [
                    ("walled_garden", &mut o.walled_garden),
                    ("ns", &mut o.ns),
                    ("ns_alt", &mut o.ns_alt),
                    ("email", &mut o.email),
                    ("serial", &mut o.serial),
                    ("refresh", &mut o.refresh),
                    ("retry", &mut o.retry),
                    ("expiry", &mut o.expiry),
                    ("minimum_ttl", &mut o.minimum_ttl),
                    ("ttl", &mut o.ttl),
                ] {
                    if let Some(v) = p.text(key) {
                        *field = v;
                    }
                }
                Flat::Rpz(RpzWriter::new(o))
            }
            "hosts" => {
                let mut o = HostsOptions::new(now);
                if let Some(ip) = p.text("ip_address") {
                    o.ip_address = ip;
                }
                Flat::Hosts(HostsWriter::new(o))
            }
            "netfilter" => {
                let mut o = NetfilterOptions::default();
                if let Some(action) = p.text("netfilter_action").or_else(|| p.text("action")) {
                    o.action = action;
                }
                Flat::Netfilter(NetfilterWriter::new(o))
            }
            "bro" | "zeek" => Flat::Bro(BroWriter::new(BroOptions {
                groups: BroGroup::parse(&p.text("bro_type").unwrap_or_else(|| "all".into())),
                base_url: cx.base_url.clone(),
                host_org_name: cx.host_org_name.clone(),
            })),
            _ => return None,
        })
    }

    fn begin(&mut self, out: &mut String) {
        match self {
            Flat::Csv(w) => w.begin(out),
            Flat::Text(w) => w.begin(out),
            Flat::Hashes(w) => w.begin(out),
            Flat::Nids(w) => w.begin(out),
            Flat::Rpz(w) => w.begin(out),
            Flat::Hosts(w) => w.begin(out),
            Flat::Netfilter(w) => w.begin(out),
            Flat::Bro(w) => w.begin(out),
            Flat::Cache(_) | Flat::Count(_) => {}
        }
    }

    fn push(&mut self, event: &Event, attribute: &Attribute, out: &mut String) {
        match self {
            Flat::Csv(w) => w.push(event, attribute, out),
            Flat::Text(w) => w.push(event, attribute, out),
            Flat::Hashes(w) => w.push(event, attribute, out),
            Flat::Cache(w) => w.push(event, attribute, out),
            Flat::Count(n) => *n += 1,
            Flat::Nids(w) => w.push(event, attribute, out),
            Flat::Rpz(w) => w.push(event, attribute, out),
            Flat::Hosts(w) => w.push(event, attribute, out),
            Flat::Netfilter(w) => w.push(event, attribute, out),
            Flat::Bro(w) => w.push(event, attribute, out),
        }
    }

    fn finish(&mut self, out: &mut String) {
        match self {
            Flat::Csv(w) => w.finish(out),
            Flat::Text(w) => w.finish(out),
            Flat::Hashes(w) => w.finish(out),
            Flat::Nids(w) => w.finish(out),
            Flat::Rpz(w) => w.finish(out),
            Flat::Hosts(w) => w.finish(out),
            Flat::Netfilter(w) => w.finish(out),
            Flat::Bro(w) => w.finish(out),
            Flat::Count(n) => out.push_str(&n.to_string()),
            Flat::Cache(_) => {}
        }
    }
}

/// The columns [`attribute_record`] reads (attribute `a`, its object `o`).
const ROW_COLUMNS: &str = "a.id, a.uuid, a.event_id, a.object_id, a.object_relation, o.uuid, o.name, o.meta_category, a.category, \
    a.type, a.value1, a.value2, a.to_ids, a.comment, a.timestamp, a.distribution, a.sharing_group_id, a.deleted, a.first_seen, a.last_seen";

fn attribute_record(r: &Row) -> Attribute {
    Attribute {
        id: r.get(0),
        uuid: r.get(1),
        event_id: r.get(2),
        object_id: r.get(3),
        object_relation: r.get(4),
        object_uuid: r.get(5),
        object_name: r.get(6),
        object_meta_category: r.get(7),
        category: r.get(8),
        attr_type: r.get(9),
        value1: r.get(10),
        value2: r.get(11),
        to_ids: r.get(12),
        comment: r.get(13),
        timestamp: r.get(14),
        distribution: u8::try_from(r.get::<_, i16>(15)).unwrap_or(0),
        sharing_group_id: r.get(16),
        deleted: r.get(17),
        first_seen: r.get(18),
        last_seen: r.get(19),
        tags: Vec::new(),
    }
}

/// Event records by id, loaded a page at a time and kept while rows refer to them.
#[derive(Default)]
struct EventCache {
    events: HashMap<i64, Event>,
}

impl EventCache {
    async fn load(&mut self, client: &deadpool_postgres::Client, ids: &[i64]) -> Result<(), ApiError> {
        let missing: Vec<i64> = ids.iter().copied().filter(|id| !self.events.contains_key(id)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.events.len() > 20_000 {
            self.events.clear();
        }
        let stmt = client
            .prepare_cached(
                "SELECT e.id, e.uuid, e.info, e.date::text, e.threat_level_id, e.analysis, e.distribution, e.published, e.timestamp, \
                 e.publish_timestamp, coalesce(og.name, ''), coalesce(og.uuid, '00000000-0000-0000-0000-000000000000'), coalesce(oc.name, ''), \
                 coalesce(oc.uuid, '00000000-0000-0000-0000-000000000000') FROM rm.events e LEFT JOIN rm.organisations og ON og.id = e.org_id \
                 LEFT JOIN rm.organisations oc ON oc.id = e.orgc_id WHERE e.id = ANY($1)",
            )
            .await?;
        for r in client.query(&stmt, &[&missing]).await? {
            let small = |i: usize| u8::try_from(r.get::<_, i16>(i)).unwrap_or(0);
            let event = Event {
                id: r.get(0),
                uuid: r.get(1),
                info: r.get(2),
                date: r.get(3),
                threat_level_id: small(4),
                analysis: small(5),
                distribution: small(6),
                published: r.get(7),
                timestamp: r.get(8),
                publish_timestamp: r.get(9),
                org_name: r.get(10),
                org_uuid: r.get(11),
                orgc_name: r.get(12),
                orgc_uuid: r.get(13),
                tags: Vec::new(),
            };
            self.events.insert(event.id, event);
        }
        let stmt = client
            .prepare_cached(
                "SELECT et.event_id, t.name FROM rm.event_tags et JOIN rm.tags t ON t.id = et.tag_id \
                 WHERE et.event_id = ANY($1) AND t.exportable AND NOT t.deleted ORDER BY et.event_id, t.id",
            )
            .await?;
        for r in client.query(&stmt, &[&missing]).await? {
            if let Some(e) = self.events.get_mut(&r.get::<_, i64>(0)) {
                e.tags.push(r.get(1));
            }
        }
        Ok(())
    }
}

/// Attaches each row's exportable tag names.
async fn attach_tags(client: &deadpool_postgres::Client, rows: &mut [Attribute]) -> Result<(), ApiError> {
    let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let stmt = client
        .prepare_cached(
            "SELECT at.attribute_id, t.name FROM rm.attribute_tags at JOIN rm.tags t ON t.id = at.tag_id \
             WHERE at.attribute_id = ANY($1) AND t.exportable AND NOT t.deleted ORDER BY at.attribute_id, t.id",
        )
        .await?;
    let mut by_id: HashMap<i64, Vec<String>> = HashMap::new();
    for r in client.query(&stmt, &[&ids]).await? {
        by_id.entry(r.get(0)).or_default().push(r.get(1));
    }
    for a in rows {
        a.tags = by_id.remove(&a.id).unwrap_or_default();
    }
    Ok(())
}

/// Streams the rows of `search` through `writer`, in attribute id order.
pub async fn write_rows(search: &Search, mut writer: Flat, mut chunks: Chunks) -> Result<Chunks, ApiError> {
    let client = search.state.pool.get().await?;
    let sql = search.attribute_sql();
    let where_clause = sql.where_clause();
    let mut pages = super::Pages::new(&search.params, PAGE);
    let warnings = search.warnings().await?;
    let mut events = EventCache::default();
    writer.begin(chunks.buf());
    while let Some(page) = pages.next("a.id") {
        let query = format!(
            "SELECT {ROW_COLUMNS} FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id \
             WHERE {where_clause}{page}"
        );
        let rows = client.query(&query, &sql.refs()).await?;
        let mut page_rows: Vec<Attribute> = rows.iter().map(attribute_record).collect();
        let Some(last) = page_rows.last().map(|a| a.id) else { break };
        let more = pages.got(page_rows.len(), last);
        attach_tags(&client, &mut page_rows).await?;
        let ids: Vec<i64> = page_rows.iter().map(|a| a.event_id).collect();
        events.load(&client, &ids).await?;
        for a in &page_rows {
            if let Some(w) = &warnings {
                if !w.check(&a.attr_type, &a.value(), a.to_ids).is_empty() {
                    continue;
                }
            }
            if let Some(e) = events.events.get(&a.event_id) {
                writer.push(e, a, chunks.buf());
            }
        }
        if !chunks.flush_if_full().await {
            return Ok(chunks);
        }
        if !more {
            break;
        }
    }
    writer.finish(chunks.buf());
    Ok(chunks)
}

/// Streams a STIX 2.1 bundle: one report (or grouping) per Event, with the Event's matching rows.
pub async fn write_stix2(search: &Search, mut chunks: Chunks) -> Result<Chunks, ApiError> {
    let client = search.state.pool.get().await?;
    let sql = search.attribute_sql();
    let where_clause = sql.where_clause();
    let warnings = search.warnings().await?;
    let mut writer = Stix2Writer::new(Stix2Options { bundle_id: uuid::Uuid::new_v4() });
    let mut events = EventCache::default();
    writer.begin(chunks.buf());
    let mut last = (0_i64, 0_i64);
    let mut current: Option<(i64, Vec<Attribute>)> = None;
    loop {
        let query = format!(
            "SELECT {ROW_COLUMNS} FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id \
             WHERE {where_clause} AND (a.event_id, a.id) > ({}, {}) ORDER BY a.event_id, a.id LIMIT {PAGE}",
            last.0, last.1
        );
        let rows = client.query(&query, &sql.refs()).await?;
        let done = (rows.len() as i64) < PAGE;
        let mut page_rows: Vec<Attribute> = rows.iter().map(attribute_record).collect();
        if let Some(a) = page_rows.last() {
            last = (a.event_id, a.id);
        }
        attach_tags(&client, &mut page_rows).await?;
        let ids: Vec<i64> = page_rows.iter().map(|a| a.event_id).collect();
        events.load(&client, &ids).await?;
        for a in page_rows {
            if let Some(w) = &warnings {
                if !w.check(&a.attr_type, &a.value(), a.to_ids).is_empty() {
                    continue;
                }
            }
            match &mut current {
                Some((id, list)) if *id == a.event_id => list.push(a),
                _ => {
                    if let Some((id, list)) = current.take() {
                        if let Some(e) = events.events.get(&id) {
                            writer.push_event(e, &list, chunks.buf());
                        }
                    }
                    current = Some((a.event_id, vec![a]));
                }
            }
        }
        if !chunks.flush_if_full().await {
            return Ok(chunks);
        }
        if done {
            break;
        }
    }
    if let Some((id, list)) = current.take() {
        if let Some(e) = events.events.get(&id) {
            writer.push_event(e, &list, chunks.buf());
        }
    }
    writer.finish(chunks.buf());
    Ok(chunks)
}
