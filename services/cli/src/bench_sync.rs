//! `cairnctl bench sync`: the initial sync of a large instance into a new peer, and a no-op resync.
//!
//! The running instance (scripts/run --detach) is the source: it is loaded through the API with
//! published "All communities" Events when it holds fewer than asked. The peer is a second Cairn
//! started in this process on a scratch database of the same PostgreSQL server and a nats-server of
//! its own (relay, indexer, correlator and API). The peer pulls the source's feed through `servers/pull` — the same
//! route and consumer the sync service runs — while a bar follows its position in the source's log.
//! Baseline, same run: the same attribute rows copied between the two databases with raw COPY.

use crate::BoxError;
use crate::bench::{Scratch, bar};
use crate::bench_data;
use crate::bench_search::{Api, load_events};
use cairn_platform::{Settings, Shutdown};
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Data-set seed (values differ from the other benchmarks').
const SEED: u64 = 0x5c_0a11;
const INFO: &str = "bench sync: shared report";
/// The uuid of the peer's organisation on the source.
const PEER_ORG: &str = "c0a1b2c3-0000-4000-8000-00000000be0c";

#[derive(Args)]
pub(crate) struct SyncArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// File holding a site admin's API key.
    #[arg(long, default_value = ".local/admin.key")]
    key_file: PathBuf,
    /// Events the source must hold (the missing ones are loaded first).
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Attributes per Event.
    #[arg(long, default_value_t = 100)]
    per_event: u64,
    /// Concurrent clients when loading.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Keep the peer's scratch database.
    #[arg(long)]
    keep: bool,
}

fn event_body(n: u64, per_event: u64) -> Value {
    let attributes: Vec<Value> = bench_data::event_values(SEED, n * per_event, per_event)
        .into_iter()
        .map(|v| json!({"type": v.attr_type, "value": v.value, "to_ids": v.to_ids}))
        .collect();
    json!({"info": format!("{INFO} {n}"), "distribution": 3, "published": true, "threat_level_id": 2, "analysis": 2,
           "Tag": [{"name": "tlp:clear"}], "Attribute": attributes})
}

/// nats-server as scripts/run installs it (`CAIRN_NATS_SERVER` overrides).
fn nats_server() -> String {
    if let Ok(p) = std::env::var("CAIRN_NATS_SERVER") {
        return p;
    }
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .into_iter()
        .find(|c| std::path::Path::new(c).exists())
        .unwrap_or("nats-server")
        .to_string()
}

fn client(url: &str, key: &str) -> Arc<Api> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(7_200)).build().unwrap_or_default();
    Arc::new(Api { http, url: url.trim_end_matches('/').to_string(), key: key.to_string() })
}

async fn call(api: &Api, path: &str, body: Value) -> Result<Value, BoxError> {
    let r = api.post(path, &body).send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{path}: {status} {v}").into());
    }
    Ok(v)
}

/// Waits until every projector of `api`'s instance has reached its log head.
async fn settle(api: &Api) -> Result<(), BoxError> {
    for _ in 0..1_200 {
        let health: Value = api.http.get(format!("{}/health", api.url)).send().await?.json().await?;
        let head = health["head"].as_i64().unwrap_or(0);
        if health["projectors"].as_object().is_some_and(|p| p.values().all(|v| v.as_i64().unwrap_or(0) >= head)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the source's projectors did not catch up".into())
}

/// The peer's organisation on the source (a fixed uuid) and its sync user; a fresh key of that user.
async fn sync_user(source: &Api) -> Result<String, BoxError> {
    let org = org_record(source, PEER_ORG, "Cairn bench sync peer").await?;
    let email = "bench-sync@cairn.test";
    if let Ok(u) = call(source, &format!("/admin/users/view/{email}"), json!({})).await {
        let id = u["User"]["id"].as_str().unwrap_or_default().to_string();
        let k = call(source, &format!("/auth_keys/add/{id}"), json!({"comment": "bench sync"})).await?;
        return Ok(k["AuthKey"]["authkey_raw"].as_str().unwrap_or_default().to_string());
    }
    let u = call(source, "/admin/users/add", json!({"email": email, "org_id": org, "role_id": 5})).await?;
    Ok(u["User"]["authkey"].as_str().unwrap_or_default().to_string())
}

/// On `api`'s instance, the record of organisation (`uuid`, `name`); its id.
async fn org_record(api: &Api, uuid: &str, name: &str) -> Result<String, BoxError> {
    let found = call(api, &format!("/organisations/view/{uuid}"), json!({})).await;
    if let Ok(o) = found {
        return Ok(o["Organisation"]["id"].as_str().unwrap_or_default().to_string());
    }
    let o = call(api, "/admin/organisations/add", json!({"name": format!("{name} {}", &uuid[..8]), "uuid": uuid, "local": false})).await?;
    Ok(o["Organisation"]["id"].as_str().unwrap_or_default().to_string())
}

pub(crate) async fn sync(settings: &Settings, args: SyncArgs) -> Result<(), BoxError> {
    let key = std::fs::read_to_string(&args.key_file).map_err(|e| format!("{}: {e}", args.key_file.display()))?.trim().to_string();
    let source = client(&args.url, &key);
    let (pg, conn) = tokio_postgres::connect(settings.database_url.expose(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);

    // 1. The source's sync user for the peer, first: a new organisation is a new audience of the
    //    source's exporter, whose catch-up would otherwise run during the measurement. The same
    //    organisation and user serve every run (each gets a fresh key).
    let sync_key = sync_user(&source).await?;

    // 2. The source's data.
    let held: i64 = pg.query_one("SELECT count(*) FROM rm.events WHERE info LIKE $1", &[&format!("{INFO} %")]).await?.get(0);
    if (held as u64) < args.events {
        load_events(&source, held as u64, args.events - held as u64, args.per_event, args.clients, event_body).await?;
    }
    let row = pg
        .query_one(
            "SELECT count(DISTINCT e.id), count(a.id) FROM rm.events e LEFT JOIN rm.attributes a ON a.event_id = e.id AND NOT a.deleted \
             WHERE e.distribution = 3 AND e.published",
            &[],
        )
        .await?;
    let (shared_events, shared_attributes): (i64, i64) = (row.get(0), row.get(1));
    let source_head: i64 = pg.query_one("SELECT last_position FROM es.log_head WHERE id = 1", &[]).await?.get(0);
    println!("source: {shared_events} shared Events with {shared_attributes} attributes; log head {source_head}");

    // 3. The peer: a second instance in this process on a scratch database.
    let scratch = Scratch::create_named(settings, "cairn_bench_sync_peer", 16).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut peer_settings = settings.clone();
    peer_settings.database_url = cairn_platform::settings::Secret::new(scratch.url());
    peer_settings.http_addr = format!("127.0.0.1:{port}");
    peer_settings.instance.base_url = format!("http://127.0.0.1:{port}");
    let nats_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let nats_store = std::env::temp_dir().join(format!("cairn-bench-sync-nats-{}", std::process::id()));
    let mut nats = std::process::Command::new(nats_server())
        .args(["-js", "-a", "127.0.0.1", "-p", &nats_port.to_string(), "-sd"])
        .arg(&nats_store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("nats-server for the peer: {e}"))?;
    peer_settings.nats_url = format!("nats://127.0.0.1:{nats_port}");
    peer_settings.exports_dir = std::env::temp_dir().join(format!("cairn-bench-sync-{}", std::process::id()));
    peer_settings.metrics_addr = None;
    let boot = cairn_api::bootstrap::bootstrap(&peer_settings, &scratch.pool).await?.ok_or("the peer database was not fresh")?;
    let shutdown = Shutdown::new();
    let mut services = tokio::task::JoinSet::new();
    for service in ["relay", "indexer", "correlator", "api"] {
        let (s, sd) = (peer_settings.clone(), shutdown.clone());
        services.spawn(async move {
            let result = match service {
                "relay" => cairn_relay::run(s, sd).await,
                "indexer" => cairn_indexer::run(s, sd).await,
                "correlator" => cairn_correlator::run(s, sd).await,
                _ => cairn_api::run(s, sd).await,
            };
            if let Err(e) = result {
                eprintln!("peer {service} failed: {e}");
            }
        });
    }
    let peer = client(&peer_settings.instance.base_url, &boot.key);
    let mut ready = false;
    for _ in 0..200 {
        if call(&peer, "/servers/getVersion", json!({})).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        return Err("the peer did not start".into());
    }

    // 4. The link: a server on the peer with the sync user's key.
    let them = call(&source, "/users/view/me", json!({})).await?;
    let (source_org_uuid, source_org_name) = (them["Organisation"]["uuid"].as_str().unwrap_or_default(), them["Organisation"]["name"].as_str().unwrap_or_default());
    let remote = org_record(&peer, source_org_uuid, source_org_name).await?;
    let server = call(&peer, "/servers/add", json!({"name": "source", "url": source.url, "authkey": sync_key, "remote_org_id": remote, "pull": true})).await?;
    let server_id = server["Server"]["id"].as_str().unwrap_or_default().to_string();

    // 5. The initial sync, followed by the peer's position in the source's log (once the source's
    //    own projectors are idle).
    settle(&source).await?;
    let progress = bar(source_head as u64, "initial sync (log)");
    let started = Instant::now();
    let pulling = {
        let peer = peer.clone();
        let path = format!("/servers/pull/{server_id}");
        tokio::spawn(async move { call(&peer, &path, json!({})).await })
    };
    let peer_pool = scratch.pool.clone();
    while !pulling.is_finished() {
        if let Ok(c) = peer_pool.get().await
            && let Ok(row) = c.query_one("SELECT coalesce(max(position), 0) FROM sync.cursors", &[]).await
        {
            progress.set_position(row.get::<_, i64>(0) as u64);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let report = pulling.await??;
    let written = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    // Done when the copies are readable: the peer's read models have caught up with its log.
    settle(&peer).await?;
    let initial = started.elapsed().as_secs_f64();
    let c = scratch.pool.get().await?;
    let copies: (i64, i64) = {
        let r = c.query_one("SELECT (SELECT count(*) FROM rm.events), (SELECT count(*) FROM rm.attributes WHERE NOT deleted)", &[]).await?;
        (r.get(0), r.get(1))
    };
    let peer_changes: i64 = c.query_one("SELECT last_position FROM es.log_head WHERE id = 1", &[]).await?.get(0);
    drop(c);
    if copies != (shared_events, shared_attributes) {
        return Err(format!("the peer holds {copies:?} (Events, attributes), the source shares ({shared_events}, {shared_attributes})").into());
    }

    // 6. Nothing new: a second pull.
    let started = Instant::now();
    let again = call(&peer, &format!("/servers/pull/{server_id}"), json!({})).await?;
    let noop = started.elapsed().as_secs_f64();
    let sync_user = client(&source.url, &sync_key);
    let page = sync_user
        .http
        .get(format!("{}/sync/feed?after={source_head}", source.url))
        .header("Authorization", &sync_key)
        .header("Accept", "application/json")
        .send()
        .await?
        .bytes()
        .await?;

    // 7. Baseline: the same attribute rows from the source's database into the peer's, raw COPY.
    let started = Instant::now();
    let copied = copy_baseline(&pg, &scratch).await?;
    let copy_secs = started.elapsed().as_secs_f64();

    println!();
    println!("| sync of {shared_events} Events / {shared_attributes} attributes | seconds | Events/s | attributes/s |");
    println!("|---|---:|---:|---:|");
    println!(
        "| initial sync, until every copy is readable on the peer ({peer_changes} changes written and projected) | {initial:.1} | {:.0} | {:.0} |",
        shared_events as f64 / initial,
        shared_attributes as f64 / initial
    );
    println!(
        "| of which `servers/pull` (feed pages read, one command per Event written on the peer) | {written:.1} | {:.0} | {:.0} |",
        shared_events as f64 / written,
        shared_attributes as f64 / written
    );
    println!("| no-op resync (nothing new; {} bytes read: one empty feed page) | {noop:.3} | – | – |", page.len());
    println!("| baseline: raw COPY of the same {copied} attribute rows between the two databases | {copy_secs:.1} | – | {:.0} |", copied as f64 / copy_secs);
    println!();
    println!("initial pull report: {}", report["report"]);
    println!("no-op pull report: {}", again["report"]);
    shutdown.trigger();
    while services.join_next().await.is_some() {}
    let _ = nats.kill();
    let _ = nats.wait();
    let _ = std::fs::remove_dir_all(&nats_store);
    let _ = std::fs::remove_dir_all(&peer_settings.exports_dir);
    if args.keep {
        println!("kept the peer's database {}", scratch.name);
    } else {
        scratch.drop_db().await?;
    }
    Ok(())
}

/// Copies the source's attribute rows into a table shaped like them in the peer's database.
async fn copy_baseline(source: &tokio_postgres::Client, peer: &Scratch) -> Result<u64, BoxError> {
    let c = peer.pool.get().await?;
    c.batch_execute("DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE rm.attributes INCLUDING DEFAULTS INCLUDING INDEXES)").await?;
    let out = source.copy_out("COPY (SELECT a.* FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id WHERE e.distribution = 3 AND e.published AND NOT a.deleted) TO STDOUT (FORMAT binary)").await?;
    let sink = c.copy_in("COPY bench_copy FROM STDIN (FORMAT binary)").await?;
    futures::pin_mut!(out);
    futures::pin_mut!(sink);
    while let Some(chunk) = out.next().await {
        sink.send(chunk?).await?;
    }
    let rows = sink.finish().await?;
    c.batch_execute("DROP TABLE bench_copy").await?;
    Ok(rows)
}
