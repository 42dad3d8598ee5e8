//! `cairnctl bench …`: benchmarks whose numbers go to docs/benchmarks.md. Each runs against a scratch
//! database created on the configured PostgreSQL server and dropped afterwards.

use crate::BoxError;
use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StreamWrite};
use cairn_platform::{Settings, connect};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::time::Instant;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

#[derive(Subcommand)]
pub(crate) enum Which {
    /// Append throughput through the group-commit appender vs a raw COPY of the same rows.
    Append(AppendArgs),
    /// The MISP API end to end against a running instance (scripts/run --detach): a 10,000-attribute
    /// Event, then concurrent PyMISP-style single-attribute adds.
    Api(ApiArgs),
    /// Freetext extraction throughput, linearity and adversarial inputs (in process, one thread).
    Freetext(crate::bench_engines::FreetextArgs),
    /// Loading every warninglist, and checking values against all of them.
    Warninglists(crate::bench_engines::WarninglistArgs),
    /// restSearch at 1M attributes against a running instance (scripts/run --detach): value lookups,
    /// a CSV export of everything and the platform's memory meanwhile (loads the data when missing).
    Search(crate::bench_search::SearchArgs),
    /// The correlator at 1M attributes / 50k Events (scratch database): full rebuild and the work per
    /// single attribute change.
    Correlator(crate::bench_correlator::CorrelatorArgs),
    /// Publish-to-subscriber latency of the NATS feeds against a running instance.
    Feed(crate::bench_feed::FeedArgs),
    /// Initial sync of 10,000 Events / 1M attributes from a running instance into a new peer, and a
    /// no-op resync.
    Sync(crate::bench_sync::SyncArgs),
}

#[derive(Args)]
pub(crate) struct ApiArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// File holding a site admin's API key.
    #[arg(long, default_value = ".local/admin.key")]
    key_file: std::path::PathBuf,
    /// Attributes in the big Event.
    #[arg(long, default_value_t = 10_000)]
    big: usize,
    /// Concurrent clients adding single attributes.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Single-attribute adds per client.
    #[arg(long, default_value_t = 300)]
    per_client: usize,
}

#[derive(Args)]
pub(crate) struct AppendArgs {
    /// Concurrent clients sending single-change commands.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Total single-change commands.
    #[arg(long, default_value_t = 40_000)]
    single: usize,
    /// Number of large commands.
    #[arg(long, default_value_t = 200)]
    batches: usize,
    /// Changes per large command.
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Keep the scratch database.
    #[arg(long)]
    keep: bool,
}

pub(crate) async fn run(settings: &Settings, which: Which) -> Result<(), BoxError> {
    match which {
        Which::Append(args) => append(settings, args).await,
        Which::Api(args) => api(args).await,
        Which::Freetext(args) => crate::bench_engines::freetext(&settings.data_dir, &args),
        Which::Warninglists(args) => crate::bench_engines::warninglists(&settings.data_dir, &args),
        Which::Search(args) => crate::bench_search::search(settings, args).await,
        Which::Correlator(args) => crate::bench_correlator::correlator(settings, args).await,
        Which::Sync(args) => crate::bench_sync::sync(settings, args).await,
        Which::Feed(args) => crate::bench_feed::feed(settings, args).await,
    }
}

/// A scratch database on the configured server, migrated; dropped by [`Scratch::drop_db`].
pub(crate) struct Scratch {
    admin_url: tokio_postgres::Config,
    pub(crate) name: String,
    pub(crate) pool: deadpool_postgres::Pool,
}

impl Scratch {
    /// The scratch database's connection string.
    pub(crate) fn url(&self) -> String {
        database_url(&self.admin_url, &self.name)
    }

    pub(crate) async fn create(settings: &Settings, pool_size: usize) -> Result<Self, BoxError> {
        Self::create_named(settings, &format!("cairn_bench_{}", std::process::id()), pool_size).await
    }

    /// A new, migrated database `name` on the server of `settings` (dropped first if it exists).
    pub(crate) async fn create_named(settings: &Settings, name: &str, pool_size: usize) -> Result<Self, BoxError> {
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || name.is_empty() {
            return Err(format!("database names are lower-case letters, digits and _: {name:?}").into());
        }
        let mut admin: tokio_postgres::Config = settings.database_url.expose().parse()?;
        admin.dbname("postgres");
        let name = name.to_string();
        let (client, conn) = admin.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let mut cfg = admin.clone();
        cfg.dbname(&name);
        let (mut c, conn) = cfg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        cairn_eventlog::migrate::migrate(&mut c).await?;
        let pool = connect::pg_pool_for(&database_url(&cfg, &name), pool_size)?;
        Ok(Self { admin_url: admin, name, pool })
    }

    /// An existing scratch database (one kept with `--keep`), not migrated again.
    pub(crate) async fn open(settings: &Settings, name: &str, pool_size: usize) -> Result<Self, BoxError> {
        let mut admin: tokio_postgres::Config = settings.database_url.expose().parse()?;
        admin.dbname("postgres");
        let pool = connect::pg_pool_for(&database_url(&admin, name), pool_size)?;
        drop(pool.get().await?);
        Ok(Self { admin_url: admin, name: name.to_string(), pool })
    }

    pub(crate) async fn drop_db(self) -> Result<(), BoxError> {
        self.pool.close();
        let (client, conn) = self.admin_url.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        Ok(())
    }
}

/// The connection string of database `name` on `cfg`'s server.
fn database_url(cfg: &tokio_postgres::Config, name: &str) -> String {
    format!(
        "host={} port={} user={} dbname={name}",
        host_of(cfg),
        cfg.get_ports().first().copied().unwrap_or(5432),
        cfg.get_user().unwrap_or("postgres")
    )
}

fn host_of(cfg: &tokio_postgres::Config) -> String {
    match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    }
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{what:<22} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A payload shaped like an attribute change (~300 bytes of JSON).
fn payload(i: usize) -> serde_json::Value {
    json!({
        "event_id": 12, "id": i, "uuid": Uuid::new_v4(), "type": "ip-dst", "category": "Network activity",
        "value": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255), "to_ids": true,
        "distribution": 5, "sharing_group_id": 0, "comment": "benchmark attribute", "timestamp": 1_700_000_000 + i,
        "disable_correlation": false, "object_id": 0, "first_seen": null, "last_seen": null
    })
}

async fn append(settings: &Settings, args: AppendArgs) -> Result<(), BoxError> {
    let scratch = Scratch::create(settings, args.clients + 4).await?;
    println!("scratch database {}", scratch.name);
    let appender = Appender::spawn(scratch.pool.clone(), None);
    let actor = json!({"bench": true});

    // 1. Single-change commands from N concurrent clients, each on its own stream with exact versions.
    let per_client = args.single.div_ceil(args.clients.max(1));
    let progress = bar((per_client * args.clients) as u64, "single-change commands");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let appender = appender.clone();
        let actor = actor.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let stream = Uuid::new_v4();
            for v in 0..per_client {
                let expected = if v == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(v as i64) };
                appender
                    .commit(CommitRequest {
                        command_id: Uuid::new_v4(),
                        command_type: "bench.single".into(),
                        actor: actor.clone(),
                        writes: vec![StreamWrite {
                            stream_id: stream,
                            stream_type: "bench".into(),
                            expected,
                            changes: vec![NewChange::new("bench.attribute_added", 1, payload(c * per_client + v))],
                        }],
                    })
                    .await?;
                progress.inc(1);
            }
            Ok::<_, cairn_eventlog::StoreError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let single_secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let single_rate = (per_client * args.clients) as f64 / single_secs;
    let registry = cairn_platform::metrics::Registry::global();
    let batches = registry.counter("cairn_appender_batches_total", "Group-commit transactions.", &[]).get();
    println!("single-change phase: {batches} transactions, {:.1} commands per transaction", (per_client * args.clients) as f64 / batches.max(1) as f64);

    // 2. Large commands: one stream each (like adding an Event with its attributes).
    let progress = bar((args.batches * args.batch_size) as u64, "1,000-change commands");
    let batches: Vec<Vec<NewChange>> = (0..args.batches)
        .map(|b| (0..args.batch_size).map(|i| NewChange::new("bench.attribute_added", 1, payload(b * args.batch_size + i))).collect())
        .collect();
    let started = Instant::now();
    for changes in batches {
        appender
            .commit(CommitRequest {
                command_id: Uuid::new_v4(),
                command_type: "bench.batch".into(),
                actor: actor.clone(),
                writes: vec![StreamWrite {
                    stream_id: Uuid::new_v4(),
                    stream_type: "bench".into(),
                    expected: ExpectedVersion::NoStream,
                    changes,
                }],
            })
            .await?;
        progress.inc(args.batch_size as u64);
    }
    let batch_secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let batch_rate = (args.batches * args.batch_size) as f64 / batch_secs;

    // 3. Baseline: raw binary COPY of the same number of rows, same columns and indexes, no hashing,
    //    no log head, no commits table.
    let client = scratch.pool.get().await?;
    client
        .batch_execute("CREATE TABLE bench_copy (LIKE es.changes INCLUDING DEFAULTS INCLUDING INDEXES)")
        .await?;
    let rows = args.batches * args.batch_size;
    let progress = bar(rows as u64, "raw COPY baseline");
    let started = Instant::now();
    let sink = client
        .copy_in(
            "COPY bench_copy (position, commit_seq, change_id, stream_id, stream_type, stream_version, change_type, \
             schema_version, payload, metadata, recorded_at, content_hash) FROM STDIN BINARY",
        )
        .await?;
    let types = [
        Type::INT8, Type::INT8, Type::UUID, Type::UUID, Type::TEXT, Type::INT8, Type::TEXT, Type::INT2,
        Type::JSONB, Type::JSONB, Type::TIMESTAMPTZ, Type::BYTEA,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    let now = chrono::Utc::now();
    let metadata = json!({"command_id": Uuid::new_v4(), "command_type": "bench.batch", "actor": actor});
    let stream_type = "bench".to_string();
    let change_type = "bench.attribute_added".to_string();
    let hash = vec![0u8; 32];
    let mut stream = Uuid::new_v4();
    for i in 0..rows {
        if i % args.batch_size == 0 {
            stream = Uuid::new_v4();
        }
        let position = i as i64 + 1;
        let commit = (i / args.batch_size) as i64 + 1;
        let version = (i % args.batch_size) as i64 + 1;
        let change_id = Uuid::new_v4();
        let p = payload(i);
        let schema: i16 = 1;
        let row: [&(dyn ToSql + Sync); 12] =
            [&position, &commit, &change_id, &stream, &stream_type, &version, &change_type, &schema, &p, &metadata, &now, &hash];
        writer.as_mut().write(&row).await?;
        if i % 1000 == 0 {
            progress.set_position(i as u64);
        }
    }
    writer.finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let copy_rate = rows as f64 / copy_secs;
    drop(client);

    println!();
    println!("| mode | changes | seconds | changes/s |");
    println!("|---|---:|---:|---:|");
    println!("| {} clients × single-change commands | {} | {single_secs:.2} | {single_rate:.0} |", args.clients, per_client * args.clients);
    println!("| {}-change commands (sequential) | {} | {batch_secs:.2} | {batch_rate:.0} |", args.batch_size, args.batches * args.batch_size);
    println!("| raw binary COPY, same rows and indexes | {rows} | {copy_secs:.2} | {copy_rate:.0} |");
    println!();
    println!("large commands reach {:.0}% of the raw COPY rate", 100.0 * batch_rate / copy_rate);
    if args.keep {
        println!("kept scratch database {}", scratch.name);
    } else {
        scratch.drop_db().await?;
    }
    Ok(())
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn api(args: ApiArgs) -> Result<(), BoxError> {
    let key = std::fs::read_to_string(&args.key_file)?.trim().to_string();
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(300)).pool_max_idle_per_host(64).build()?;
    let post = |path: String, body: serde_json::Value| {
        http.post(format!("{}{}", args.url, path))
            .header("Authorization", key.clone())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .json(&body)
            .send()
    };

    // 1. One Event with many attributes: the add returns once the read models have it.
    let attributes: Vec<serde_json::Value> = (0..args.big)
        .map(|i| json!({"type": "ip-dst", "value": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)}))
        .collect();
    let started = Instant::now();
    let r = post("/events/add/metadata:1".into(), json!({"info": "bench: big event", "distribution": 0, "Attribute": attributes})).await?;
    let add_secs = started.elapsed().as_secs_f64();
    let status = r.status();
    let created: serde_json::Value = r.json().await?;
    if !status.is_success() {
        return Err(format!("events/add failed: {status} {created}").into());
    }
    let id = created["Event"]["id"].as_str().unwrap_or_default().to_string();
    let get = |path: String| {
        let request = http.get(format!("{}{path}", args.url)).header("Authorization", key.clone()).header("Accept", "application/json");
        async move { request.send().await?.json::<serde_json::Value>().await }
    };
    let started = Instant::now();
    let view = get(format!("/events/view/{id}")).await?;
    let view_secs = started.elapsed().as_secs_f64();
    let seen = view["Event"]["Attribute"].as_array().map_or(0, Vec::len);
    println!("| Event with {} attributes: events/add (until readable) | {add_secs:.2} s |", args.big);
    println!("| then events/view of it ({seen} attributes) | {view_secs:.2} s |");
    println!("| add + view | {:.2} s |", add_secs + view_secs);
    // The audit reviewer's as-of views of the same Event, five times each: after one more attribute,
    // the Event as it was before it (projected and rendered in a rolled-back transaction), and as it
    // is now (the live read model, once the indexer has it).
    let r = post(format!("/attributes/add/{id}"), json!({"type": "ip-dst", "value": "10.255.255.254"})).await?;
    if !r.status().is_success() {
        return Err(format!("attributes/add failed: {}", r.status()).into());
    }
    let mut timings = Vec::new();
    for point in [format!("/version:{}", args.big + 1), String::new()] {
        let mut as_of = Vec::new();
        let mut as_of_seen = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let v = get(format!("/audit/event/{id}{point}")).await?;
            as_of.push(started.elapsed().as_secs_f64() * 1000.0);
            as_of_seen = v["Event"]["Attribute"].as_array().map_or(0, Vec::len);
        }
        as_of.sort_by(f64::total_cmp);
        timings.push((as_of_seen, as_of));
    }
    let (seen, t) = &timings[0];
    println!("| audit/event as of the version before the last change ({seen} attributes; projected), 5 runs | median {:.0} ms, max {:.0} ms |", t[2], t[4]);
    let (seen, t) = &timings[1];
    println!("| audit/event as of now ({seen} attributes; the live read model), 5 runs | median {:.0} ms, max {:.0} ms |", t[2], t[4]);

    // 2. Concurrent clients adding single attributes, each to its own Event.
    let progress = bar((args.clients * args.per_client) as u64, "single-attribute adds");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let http = http.clone();
        let key = key.clone();
        let url = args.url.clone();
        let per_client = args.per_client;
        let progress = progress.clone();
        tasks.spawn(async move {
            let send = |path: String, body: serde_json::Value| {
                http.post(format!("{url}{path}"))
                    .header("Authorization", key.clone())
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .json(&body)
                    .send()
            };
            let created: serde_json::Value =
                send("/events/add".into(), json!({"info": format!("bench: client {c}"), "distribution": 0})).await?.json().await?;
            let id = created["Event"]["id"].as_str().unwrap_or_default().to_string();
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                let r = send(format!("/attributes/add/{id}"), json!({"type": "domain", "value": format!("c{c}-a{i}.bench.example")})).await?;
                if !r.status().is_success() {
                    return Err(format!("attributes/add failed: {}", r.status()).into());
                }
                let _ = r.bytes().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                progress.inc(1);
            }
            Ok::<_, BoxError>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r??);
    }
    let secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    latencies.sort_by(f64::total_cmp);
    println!(
        "| {} clients × single-attribute adds | {} adds | {:.0} attributes/s | p50 {:.1} ms | p99 {:.1} ms |",
        args.clients,
        latencies.len(),
        latencies.len() as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(())
}
