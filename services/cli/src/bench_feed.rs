//! `cairnctl bench feed`: publish-to-subscriber latency of the exporter's NATS feeds against a running
//! instance (scripts/run --detach). Each round adds an Event of `--attributes` attributes, then times
//! from sending `events/publish` to a subscriber of `cairn.feed.community.event` receiving that Event;
//! the same-run baseline is a bare NATS publish → subscribe of a message of the same size.

use crate::BoxError;
use crate::bench::{bar, percentile};
use cairn_platform::Settings;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub(crate) struct FeedArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// File holding a site admin's API key.
    #[arg(long, default_value = ".local/admin.key")]
    key_file: PathBuf,
    /// Events published (one at a time).
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Attributes per Event.
    #[arg(long, default_value_t = 100)]
    attributes: usize,
}

fn report(name: &str, millis: &mut [f64]) {
    millis.sort_by(f64::total_cmp);
    println!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        millis.len(),
        percentile(millis, 0.50),
        percentile(millis, 0.95),
        percentile(millis, 0.99),
        millis.last().copied().unwrap_or_default()
    );
}

pub(crate) async fn feed(settings: &Settings, args: FeedArgs) -> Result<(), BoxError> {
    let key = std::fs::read_to_string(&args.key_file).map_err(|e| format!("{}: {e}", args.key_file.display()))?.trim().to_string();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let nats = cairn_platform::connect::nats(settings).await?;
    let mut feed = nats.subscribe("cairn.feed.community.event").await?;
    let post = |path: &str, body: &Value| {
        http.post(format!("{}{path}", args.url))
            .header("Authorization", key.clone())
            .header("Accept", "application/json")
            .json(body)
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let progress = bar(args.rounds as u64, "publish → subscriber");
    let (mut delivered, mut publish_call, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let attributes: Vec<Value> = (0..args.attributes)
            .map(|i| json!({"type": "domain", "value": format!("r{round}-a{i}.{run}.bench.example"), "to_ids": true}))
            .collect();
        let r = post("/events/add", &json!({"info": format!("bench feed {run} {round}"), "distribution": 1, "Attribute": attributes})).send().await?;
        let created: Value = r.json().await?;
        let id = created["Event"]["id"].as_str().ok_or_else(|| format!("events/add: {created}"))?.to_string();
        let uuid = created["Event"]["uuid"].as_str().unwrap_or_default().to_string();
        let started = Instant::now();
        let r = post(&format!("/events/publish/{id}"), &json!({})).send().await?;
        if !r.status().is_success() {
            return Err(format!("publish: {}", r.status()).into());
        }
        publish_call.push(started.elapsed().as_secs_f64() * 1000.0);
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), feed.next()).await?.ok_or("the feed subscription ended")?;
            let v: Value = serde_json::from_slice(&m.payload)?;
            if v["Event"]["uuid"] == uuid.as_str() {
                delivered.push(started.elapsed().as_secs_f64() * 1000.0);
                sizes.push(m.payload.len());
                break;
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    // Baseline: the same payload size through NATS alone (publish → core subscriber, same process).
    let size = sizes.iter().sum::<usize>() / sizes.len().max(1);
    let mut bare = nats.subscribe("bench.feed.baseline").await?;
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let mut baseline = Vec::new();
    for _ in 0..args.rounds {
        let started = Instant::now();
        nats.publish("bench.feed.baseline", payload.clone()).await?;
        nats.flush().await?;
        tokio::time::timeout(Duration::from_secs(10), bare.next()).await?.ok_or("baseline subscription ended")?;
        baseline.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    println!();
    println!("| {} Events of {} attributes (message ~{:.0} kB) | n | p50 ms | p95 ms | p99 ms | max ms |", args.rounds, args.attributes, size as f64 / 1e3);
    println!("|---|---:|---:|---:|---:|---:|");
    report("`events/publish` sent → `cairn.feed.community.event` received", &mut delivered);
    report("of which the `events/publish` call itself", &mut publish_call);
    report("baseline: bare NATS publish → subscriber, same size", &mut baseline);
    Ok(())
}
