//! `cairnctl bench search`: restSearch at scale against a running instance (scripts/run --detach).
//! Loads 1M attributes through the API when the instance holds fewer, then measures value lookups on
//! both controllers, a CSV export of everything (rate, and the platform process's memory while it
//! streams), and same-run baselines straight from PostgreSQL.

use crate::BoxError;
use crate::bench::{bar, percentile};
use crate::bench_data;
use cairn_platform::Settings;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Data-set seed (values of `bench search` differ from those of `bench correlator`).
const SEED: u64 = 0x5ea2_c4;

#[derive(Args)]
pub(crate) struct SearchArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// File holding a site admin's API key.
    #[arg(long, default_value = ".local/admin.key")]
    key_file: PathBuf,
    /// Pid file of the platform process (scripts/run writes it); its memory is sampled during the export.
    #[arg(long, default_value = ".local/run/cairn.pid")]
    pid_file: PathBuf,
    /// Attributes the instance must hold; the missing ones are loaded through the API first.
    #[arg(long, default_value_t = 1_000_000)]
    attributes: u64,
    /// Attributes per Event when loading.
    #[arg(long, default_value_t = 1_000)]
    per_event: u64,
    /// Concurrent clients when loading.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Never load, whatever the instance holds.
    #[arg(long)]
    skip_load: bool,
    /// Sequential value lookups per controller.
    #[arg(long, default_value_t = 1_000)]
    lookups: usize,
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) key: String,
}

impl Api {
    pub(crate) fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .header("Authorization", self.key.clone())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .json(body)
    }

    /// Attributes the admin sees (`X-Result-Count` of a count search; the body is not read).
    async fn attribute_count(&self) -> Result<u64, BoxError> {
        let r = self.post("/attributes/restSearch", &json!({"returnFormat": "count"})).send().await?;
        if !r.status().is_success() {
            return Err(format!("count search failed: {}", r.status()).into());
        }
        let header = r.headers().get("X-Result-Count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        match header {
            Some(n) => Ok(n),
            None => Ok(r.text().await?.trim().parse()?),
        }
    }
}

pub(crate) async fn search(settings: &Settings, args: SearchArgs) -> Result<(), BoxError> {
    let key = std::fs::read_to_string(&args.key_file).map_err(|e| format!("{}: {e}", args.key_file.display()))?.trim().to_string();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(1800)).pool_max_idle_per_host(16).build()?;
    let api = Arc::new(Api { http, url: args.url.clone(), key });

    // 1. Data: load what is missing.
    let held = api.attribute_count().await?;
    println!("the instance holds {held} attributes (target {})", args.attributes);
    if held < args.attributes && !args.skip_load {
        load(&api, held, &args).await?;
    }
    let held = api.attribute_count().await?;
    let (pg, conn) = tokio_postgres::connect(settings.database_url.expose(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let events: i64 = pg.query_one("SELECT count(*) FROM rm.events", &[]).await?.get(0);
    println!("measuring with {held} attributes in {events} Events");

    // 2. Value lookups: random existing values (any type, composites as `a|b`).
    let values = sample_values(&pg, held, args.lookups).await?;
    let attr = lookups(&api, "/attributes/restSearch", &values, false).await?;
    let event = lookups(&api, "/events/restSearch", &values, false).await?;
    let event_meta = lookups(&api, "/events/restSearch", &values, true).await?;
    let direct = direct_lookups(&pg, &values).await?;

    // 3. CSV export of everything, read incrementally, with the platform's memory sampled.
    let pid = read_pid(&args.pid_file);
    let export = export_csv(&api, pid).await?;

    // 4. Baseline: COPY of the same columns straight out of PostgreSQL.
    let copy = copy_baseline(&pg).await?;

    // 5. One organisation's cached csv_all (the exporter), generated, then regenerated on request.
    let cached = cached_export(&api).await?;

    println!();
    println!("| value lookup ({} sequential requests) | p50 ms | p95 ms | p99 ms | max ms | rows/lookup (mean) |", values.len());
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, l) in [
        ("`POST /attributes/restSearch {\"value\": v}`", &attr),
        ("`POST /events/restSearch {\"value\": v}` (whole Events)", &event),
        ("`POST /events/restSearch {\"value\": v, \"metadata\": 1}`", &event_meta),
        ("baseline: the same rows by SQL (tokio-postgres, prepared)", &direct),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            percentile(&l.millis, 0.50),
            percentile(&l.millis, 0.95),
            percentile(&l.millis, 0.99),
            l.millis.last().copied().unwrap_or_default(),
            l.rows as f64 / l.millis.len().max(1) as f64
        );
    }
    println!();
    println!("| export | rows | MB | seconds | rows/s | MB/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| `POST /attributes/restSearch {{\"returnFormat\": \"csv\"}}` (first byte after {:.2} s) | {} | {:.1} | {:.2} | {:.0} | {:.1} |",
        export.first_byte,
        export.rows,
        export.bytes as f64 / 1e6,
        export.secs,
        export.rows as f64 / export.secs,
        export.bytes as f64 / 1e6 / export.secs
    );
    println!(
        "| baseline: `COPY (SELECT same columns, no tags) TO STDOUT (FORMAT csv)` | {} | {:.1} | {:.2} | {:.0} | {:.1} |",
        copy.rows,
        copy.bytes as f64 / 1e6,
        copy.secs,
        copy.rows as f64 / copy.secs,
        copy.bytes as f64 / 1e6 / copy.secs
    );
    println!();
    match export.memory {
        Some(m) => println!(
            "platform process (pid {}) during the export: VmRSS before {:.0} MB, max {:.0} MB (sampled every 50 ms, {} samples), after {:.0} MB; VmHWM {:.0} MB (process lifetime)",
            m.pid,
            m.before as f64 / 1024.0,
            m.max as f64 / 1024.0,
            m.samples,
            m.after as f64 / 1024.0,
            m.hwm as f64 / 1024.0
        ),
        None => println!("platform process memory not sampled (no readable pid file at {})", args.pid_file.display()),
    }
    println!("export / COPY rate: {:.0}%", 100.0 * (export.rows as f64 / export.secs) / (copy.rows as f64 / copy.secs));
    println!();
    println!("| cached export `csv_all` of the host organisation's view ({} rows, {:.1} MB) | seconds | rows/s |", cached.rows, cached.bytes as f64 / 1e6);
    println!("|---|---:|---:|");
    println!("| first generation (`jobs/cache/csv_all` → file served) | {:.2} | {:.0} |", cached.first, cached.rows as f64 / cached.first);
    println!("| regeneration (`jobs/cache/csv_all` again → new file served) | {:.2} | {:.0} |", cached.again, cached.rows as f64 / cached.again);
    Ok(())
}

struct Cached {
    rows: u64,
    bytes: u64,
    first: f64,
    again: f64,
}

/// Waits until `downloadExport/csv_all` serves a file generated after `after` (ms since the epoch).
async fn served_after(api: &Api, after: i64) -> Result<i64, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let r = api
            .http
            .get(format!("{}/events/downloadExport/csv_all", api.url))
            .header("Authorization", api.key.clone())
            .send()
            .await?;
        let generated = r.headers().get("X-Cairn-Export-Generated").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
        drop(r);
        if let Some(g) = generated.filter(|g| *g > after) {
            return Ok(g);
        }
        if Instant::now() > deadline {
            return Err("the cached csv_all export was not generated within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cached_export(admin: &Api) -> Result<Cached, BoxError> {
    // A user (role User) of the host organisation, which owns the loaded data.
    let me: Value = admin.http.get(format!("{}/users/view/me", admin.url)).header("Authorization", admin.key.clone()).header("Accept", "application/json").send().await?.json().await?;
    let org_id = me["User"]["org_id"].clone();
    let email = format!("bench-export-{}@bench.test", uuid::Uuid::new_v4().simple());
    let created: Value = admin.post("/admin/users/add", &json!({"email": email, "org_id": org_id, "role_id": 3})).send().await?.json().await?;
    let key = created["User"]["authkey"].as_str().ok_or_else(|| format!("admin/users/add: {created}"))?.to_string();
    let api = Api { http: admin.http.clone(), url: admin.url.clone(), key };
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let mut times = Vec::new();
    for _ in 0..2 {
        let before = now_ms();
        let started = Instant::now();
        let r = api.post("/jobs/cache/csv_all", &json!({})).send().await?;
        if !r.status().is_success() {
            return Err(format!("jobs/cache/csv_all: {}", r.status()).into());
        }
        served_after(&api, before - 1).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    let mut r = api.http.get(format!("{}/events/downloadExport/csv_all", api.url)).header("Authorization", api.key.clone()).send().await?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok(Cached { rows: lines.saturating_sub(1), bytes, first: times[0], again: times[1] })
}

/// Loads attributes `held..target` as Events of `per_event` attributes from concurrent clients.
async fn load(api: &Arc<Api>, held: u64, args: &SearchArgs) -> Result<(), BoxError> {
    let per_event = args.per_event.max(1);
    let first_event = held.div_ceil(per_event);
    let events = (args.attributes - held).div_ceil(per_event);
    load_events(api, first_event, events, per_event, args.clients, event_body).await
}

/// Adds Events `first .. first + events` (`body(n, per_event)`) through `events/add` from `clients`
/// concurrent clients, with a progress bar.
///
/// # Errors
/// A refused or failed request.
pub(crate) async fn load_events(api: &Arc<Api>, first_event: u64, events: u64, per_event: u64, clients: usize, body: fn(u64, u64) -> Value) -> Result<(), BoxError> {
    let progress = bar(events * per_event, "loading attributes");
    let next = Arc::new(AtomicU64::new(first_event));
    let last = first_event + events;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let api = api.clone();
        let next = next.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= last {
                    return Ok::<_, BoxError>(());
                }
                let r = api.post("/events/add/metadata:1", &body(n, per_event)).send().await?;
                let status = r.status();
                let text = r.text().await?;
                if !status.is_success() {
                    return Err(format!("events/add failed: {status} {}", text.chars().take(500).collect::<String>()).into());
                }
                if text.contains("\"errors\"") {
                    tracing::warn!(event = n, "events/add reported errors: {}", text.chars().take(300).collect::<String>());
                }
                progress.inc(per_event);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {} Events × {per_event} attributes in {secs:.0} s ({:.0} attributes/s, {} clients)",
        events,
        (events * per_event) as f64 / secs,
        clients
    );
    Ok(())
}

/// Event number `n` as PyMISP would send it: two Event tags, attributes of mixed types, 1% tagged.
fn event_body(n: u64, per_event: u64) -> Value {
    let tlp = ["tlp:green", "tlp:amber", "tlp:clear", "tlp:green"][(n % 4) as usize];
    let attributes: Vec<Value> = bench_data::event_values(SEED, n * per_event, per_event)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut a = json!({"type": v.attr_type, "value": v.value, "to_ids": v.to_ids});
            if bench_data::mix(n * per_event + i as u64) % 100 == 0 {
                a["Tag"] = json!([{"name": format!("bench:attribute-tag=\"{}\"", i % 5)}]);
            }
            a
        })
        .collect();
    json!({
        "info": format!("bench search: campaign report {n}"),
        "distribution": (n % 4),
        "threat_level_id": 1 + (n % 4),
        "analysis": n % 3,
        "date": chrono::DateTime::from_timestamp(1_600_000_000 + (n as i64) * 86_400 / 4, 0).map(|d| d.format("%Y-%m-%d").to_string()),
        "Tag": [{"name": tlp}, {"name": format!("bench:campaign=\"{}\"", n % 20)}],
        "Attribute": attributes,
    })
}

/// `n` random values of existing attributes (MISP's `value`: `value1` or `value1|value2`).
async fn sample_values(pg: &tokio_postgres::Client, held: u64, n: usize) -> Result<Vec<String>, BoxError> {
    let percent = ((n as f64 * 4.0) / held.max(1) as f64 * 100.0).clamp(0.001, 100.0);
    let rows = pg
        .query(
            &format!(
                "SELECT CASE WHEN value2 = '' THEN value1 ELSE value1 || '|' || value2 END FROM rm.attributes \
                 TABLESAMPLE BERNOULLI ({percent}) WHERE NOT deleted LIMIT {}",
                n * 4
            ),
            &[],
        )
        .await?;
    let mut values: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // Shuffle (the sample comes in physical order).
    let mut rng = bench_data::Rng::new(0xface);
    for i in (1..values.len()).rev() {
        values.swap(i, rng.below(i as u64 + 1) as usize);
    }
    values.truncate(n);
    if values.is_empty() {
        return Err("no attributes to look up".into());
    }
    Ok(values)
}

struct Latencies {
    millis: Vec<f64>,
    rows: u64,
}

/// Sequential lookups, timed from sending to the last byte of the answer.
async fn lookups(api: &Api, path: &str, values: &[String], metadata: bool) -> Result<Latencies, BoxError> {
    let label = format!("{path}{}", if metadata { " (metadata)" } else { "" });
    let progress = bar(values.len() as u64, &label);
    let mut millis = Vec::with_capacity(values.len());
    let mut rows = 0u64;
    let mut misses = 0usize;
    for v in values {
        let body = if metadata { json!({"value": v, "metadata": 1}) } else { json!({"value": v}) };
        let started = Instant::now();
        let r = api.post(path, &body).send().await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            return Err(format!("{path} failed: {status}").into());
        }
        let parsed: Value = serde_json::from_slice(&bytes)?;
        let found = match &parsed["response"] {
            Value::Array(events) => events.len(),
            other => other["Attribute"].as_array().map_or(0, Vec::len),
        };
        rows += found as u64;
        misses += usize::from(found == 0);
        progress.inc(1);
    }
    progress.finish_and_clear();
    if misses > 0 {
        println!("warning: {misses} lookups on {path} found nothing");
    }
    millis.sort_by(f64::total_cmp);
    Ok(Latencies { millis, rows })
}

/// The same lookups straight from PostgreSQL: the attribute rows with their Event and Object, as the
/// API's query reads them.
async fn direct_lookups(pg: &tokio_postgres::Client, values: &[String]) -> Result<Latencies, BoxError> {
    let stmt = pg
        .prepare(
            "SELECT a.id, a.uuid, a.event_id, a.object_id, a.object_relation, o.uuid, o.name, o.meta_category, a.category, a.type, \
             a.value1, a.value2, a.to_ids, a.comment, a.timestamp, a.distribution, a.sharing_group_id, a.deleted, a.first_seen, a.last_seen \
             FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id \
             WHERE (lower(a.value1) = $1 OR (a.value2 <> '' AND lower(a.value2) = $1) OR (lower(a.value1) = $2 AND lower(a.value2) = $3)) \
             AND NOT a.deleted ORDER BY a.id",
        )
        .await?;
    let progress = bar(values.len() as u64, "baseline: SQL lookups");
    let mut millis = Vec::with_capacity(values.len());
    let mut rows = 0u64;
    for v in values {
        let v = v.to_lowercase();
        let (left, right) = v.split_once('|').map_or((String::new(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
        let started = Instant::now();
        let found = pg.query(&stmt, &[&v, &left, &right]).await?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        rows += found.len() as u64;
        progress.inc(1);
    }
    progress.finish_and_clear();
    millis.sort_by(f64::total_cmp);
    Ok(Latencies { millis, rows })
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `VmRSS:` / `VmHWM:` of a process, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

struct Memory {
    pid: u32,
    before: u64,
    max: u64,
    after: u64,
    hwm: u64,
    samples: usize,
}

struct Export {
    rows: u64,
    bytes: u64,
    secs: f64,
    first_byte: f64,
    memory: Option<Memory>,
}

async fn export_csv(api: &Api, pid: Option<u32>) -> Result<Export, BoxError> {
    let pid = pid.filter(|p| status_kib(*p, "VmRSS:").is_some());
    let before = pid.and_then(|p| status_kib(p, "VmRSS:")).unwrap_or(0);
    // Sample the platform's resident memory every 50 ms on a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|p| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut max, mut samples) = (0u64, 0usize);
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(p, "VmRSS:") {
                    max = max.max(kib);
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (max, samples)
        })
    });
    let progress = bar(0, "CSV export (rows)");
    progress.set_style(
        indicatif::ProgressStyle::with_template("CSV export             {pos} rows {per_sec} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let mut r = api.post("/attributes/restSearch", &json!({"returnFormat": "csv"})).send().await?;
    if !r.status().is_success() {
        return Err(format!("CSV export failed: {}", r.status()).into());
    }
    let announced: Option<u64> = r.headers().get("X-Result-Count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut first_byte = None;
    while let Some(chunk) = r.chunk().await? {
        first_byte.get_or_insert_with(|| started.elapsed().as_secs_f64());
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        progress.set_position(lines);
    }
    let secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    let memory = match (pid, sampler) {
        (Some(p), Some(h)) => {
            let (max, samples) = h.join().map_err(|_| "sampler thread panicked")?;
            Some(Memory {
                pid: p,
                before,
                max,
                after: status_kib(p, "VmRSS:").unwrap_or(0),
                hwm: status_kib(p, "VmHWM:").unwrap_or(0),
                samples,
            })
        }
        _ => None,
    };
    let rows = lines.saturating_sub(1); // the header line
    if let Some(n) = announced.filter(|n| *n != rows) {
        println!("warning: X-Result-Count said {n} rows, the CSV holds {rows}");
    }
    Ok(Export { rows, bytes, secs, first_byte: first_byte.unwrap_or(secs), memory })
}

struct Copied {
    rows: u64,
    bytes: u64,
    secs: f64,
}

/// The CSV columns (minus tags) of every attribute, by `COPY … TO STDOUT`, read as it streams.
async fn copy_baseline(pg: &tokio_postgres::Client) -> Result<Copied, BoxError> {
    let progress = bar(0, "baseline: COPY");
    progress.set_style(
        indicatif::ProgressStyle::with_template("baseline: COPY         {pos} rows {per_sec} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let stream = pg
        .copy_out(
            "COPY (SELECT a.uuid, a.event_id, a.category, a.type, CASE WHEN a.value2 = '' THEN a.value1 ELSE a.value1 || '|' || a.value2 END, \
             a.comment, a.to_ids::int, a.timestamp, a.object_relation, o.uuid, o.name, o.meta_category \
             FROM rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id WHERE NOT a.deleted) \
             TO STDOUT (FORMAT csv)",
        )
        .await?;
    futures::pin_mut!(stream);
    let (mut bytes, mut rows) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if rows % 50_000 < 200 {
            progress.set_position(rows);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    Ok(Copied { rows, bytes, secs })
}
