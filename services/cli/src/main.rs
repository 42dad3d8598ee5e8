//! `cairnctl`: operate a Cairn instance.
//!
//! # Layout
//! - `migrate`, `bootstrap`: prepare a database ([`bootstrap`]).
//! - `status`, `verify`, `history`: inspect the log ([`inspect`]).
//! - `all`: run every service in one process (the single-machine default).
//! - `freetext`: the freetext importer on standard input ([`freetext`]).
//! - `bench`: benchmarks ([`bench`]).
//! - `feed-credentials`, `feed-subscribe`: NATS feed users and a minimal subscriber ([`feed_credentials`],
//!   [`feed_subscribe`]; docs/feeds.md).

mod bench;
mod bench_correlator;
mod bench_data;
mod bench_engines;
mod bench_feed;
mod bench_search;
mod bench_sync;
mod bootstrap;
mod feed_credentials;
mod feed_subscribe;
mod freetext;
mod inspect;
mod replay;

use cairn_platform::{Settings, Shutdown};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cairnctl", version, about = "Operate a Cairn instance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending SQL migrations (idempotent; refuses edited migrations).
    Migrate,
    /// Create the host organisation and a site admin with an API key (first start only).
    Bootstrap {
        /// Where to write the admin API key.
        #[arg(long, default_value = ".local/admin.key")]
        key_file: PathBuf,
    },
    /// Log head, projector checkpoints and lag, relay position, dead letters.
    Status,
    /// Recompute content hashes and the commit chain; exit non-zero naming the first bad commit.
    /// With `--checkpoint`, also check a signed checkpoint (as `/audit/checkpoints` serves it) against
    /// the log: its signature, and that its commit still carries the chain hash it signed.
    Verify {
        /// A checkpoint JSON file (from `/audit/checkpoints/latest` or the `cairn.audit.checkpoint` subject).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The instance's public key (hex) to check the signature with (default: the key the checkpoint names).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Create the Ed25519 key the relay signs log checkpoints with (unless the file exists); print its
    /// public key.
    CheckpointKey {
        /// The key file (hex seed; keep it secret).
        #[arg(long, default_value = ".local/checkpoint.key")]
        key_file: PathBuf,
    },
    /// Print a stream's changes (an Event, organisation, user…) in order, as JSON lines.
    History {
        /// The stream id (an Event's uuid, an organisation's uuid, …).
        stream: uuid::Uuid,
    },
    /// Run every service (api, relay, indexer, correlator, exporter) in this process.
    All,
    /// Run one service in this process (`api`, `relay`, `indexer`, `correlator` or `exporter`): for
    /// deployments that supervise them separately, and the fault-injection test.
    Serve {
        service: String,
    },
    /// Rebuild read models from the log in bulk (the log read once, folded in memory, tables written by
    /// COPY, indexes last) and compare them with the live ones. `indexer`: in a scratch database,
    /// compared table by table. `correlator`: in fresh tables, compared, then switched in atomically.
    /// `all`: both, from one read of the log.
    Rebuild {
        /// `correlator`, `indexer` or `all`.
        projector: String,
        /// Keep the indexer's scratch database (for inspection).
        #[arg(long)]
        keep: bool,
    },
    /// Materialise the platform as of a log position or an RFC 3339 time into a new read-only database.
    Replay {
        /// A log position, or a time (`2026-11-29T12:00:00Z`).
        #[arg(long)]
        until: String,
        /// The database to create (default `cairn_asof_<position>`).
        #[arg(long)]
        database: Option<String>,
    },
    /// Find indicators in text on standard input; print them as a JSON array of {"value", "type", …}.
    Freetext {
        /// Reproduce MISP exactly, quirks included (default: Cairn's fixes, see docs/freetext.md).
        #[arg(long)]
        compat: bool,
    },
    /// Issue (or revoke) an organisation's NATS feed user and reload nats-server (docs/feeds.md).
    FeedCredentials(feed_credentials::Args),
    /// Print an organisation's feed messages as JSON lines, live or replayed (a minimal subscriber).
    FeedSubscribe(feed_subscribe::Args),
    /// Benchmarks (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Services log at info; one-shot commands only warn (their output is the result).
    cairn_platform::telemetry::init(if matches!(cli.command, Command::All | Command::Serve { .. }) { "info" } else { "warn" });
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairnctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Migrate => bootstrap::migrate(&settings).await,
        Command::Bootstrap { key_file } => bootstrap::bootstrap(&settings, &key_file).await,
        Command::Status => inspect::status(&settings).await,
        Command::Verify { checkpoint, public_key } => inspect::verify(&settings, checkpoint.as_deref(), public_key.as_deref()).await,
        Command::CheckpointKey { key_file } => inspect::checkpoint_key(&key_file),
        Command::History { stream } => inspect::history(&settings, stream).await,
        Command::All => run_all(settings).await,
        Command::Serve { service } => serve(settings, &service).await,
        Command::Rebuild { projector, keep } => replay::rebuild(&settings, &projector, keep).await,
        Command::Replay { until, database } => replay::replay_until(&settings, &until, database).await,
        Command::Freetext { compat } => freetext::run(&settings.data_dir, compat),
        Command::Bench { which } => bench::run(&settings, which).await,
        Command::FeedCredentials(args) => feed_credentials::run(&settings, args).await,
        Command::FeedSubscribe(args) => feed_subscribe::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Print the whole cause chain ("db error" alone says nothing).
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("cairnctl: {message}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One service until SIGINT/SIGTERM.
async fn serve(settings: Settings, service: &str) -> Result<(), BoxError> {
    let shutdown = Shutdown::on_os_signals();
    match service {
        "api" => cairn_api::run(settings, shutdown).await,
        "relay" => cairn_relay::run(settings, shutdown).await,
        "indexer" => cairn_indexer::run(settings, shutdown).await,
        "correlator" => cairn_correlator::run(settings, shutdown).await,
        "exporter" => cairn_exporter::run(settings, shutdown).await,
        "sync" => cairn_api::sync::run(settings, shutdown).await,
        other => Err(format!("unknown service {other:?}: api, relay, indexer, correlator, exporter or sync").into()),
    }
}

/// Every service as a task of this process; the first to fail stops the others.
async fn run_all(settings: Settings) -> Result<(), BoxError> {
    let shutdown = Shutdown::on_os_signals();
    let mut tasks = tokio::task::JoinSet::new();
    let s = settings.clone();
    let sd = shutdown.clone();
    tasks.spawn(async move { ("relay", cairn_relay::run(s, sd).await) });
    let s = settings.clone();
    let sd = shutdown.clone();
    tasks.spawn(async move { ("indexer", cairn_indexer::run(s, sd).await) });
    let s = settings.clone();
    let sd = shutdown.clone();
    tasks.spawn(async move { ("correlator", cairn_correlator::run(s, sd).await) });
    let s = settings.clone();
    let sd = shutdown.clone();
    tasks.spawn(async move { ("exporter", cairn_exporter::run(s, sd).await) });
    let s = settings.clone();
    let sd = shutdown.clone();
    tasks.spawn(async move { ("sync", cairn_api::sync::run(s, sd).await) });
    let s = settings;
    let sd = shutdown.clone();
    tasks.spawn(async move { ("api", cairn_api::run(s, sd).await) });
    let mut failure: Option<BoxError> = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((name, Ok(()))) => tracing::info!(service = name, "stopped"),
            Ok((name, Err(e))) => {
                tracing::error!(service = name, error = %e, "service failed; stopping everything");
                failure.get_or_insert_with(|| format!("{name}: {e}").into());
                shutdown.trigger();
            }
            Err(e) => {
                failure.get_or_insert_with(|| format!("a service task failed: {e}").into());
                shutdown.trigger();
            }
        }
        if !shutdown.is_triggered() {
            // One service stopped on its own: stop the rest too.
            shutdown.trigger();
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
