//! `cairnctl feed-credentials`: issue (or revoke) an organisation's NATS feed user, and have the running
//! nats-server pick it up. The users file and the permissions are [`cairn_eventlog::feed_access`]'s.

use crate::BoxError;
use cairn_eventlog::feed_access;
use cairn_eventlog::subjects::{Audience, FEEDS_STREAM};
use cairn_platform::{Settings, connect};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The organisation: its uuid, numeric id or name.
    #[arg(required_unless_present = "init")]
    org: Option<String>,
    /// Remove the organisation's feed user instead of issuing a password.
    #[arg(long, conflicts_with = "init")]
    revoke: bool,
    /// Only make sure the users file exists (the service user, no feed user yet); with
    /// CAIRN_NATS_PASSWORD set, give the service user that password. scripts/run does this before
    /// starting nats-server.
    #[arg(long)]
    init: bool,
    /// The users file nats-server includes.
    #[arg(long, env = "CAIRN_NATS_USERS_FILE", default_value = ".local/run/nats/users.conf")]
    users_file: PathBuf,
    /// nats-server's pid file: it is sent SIGHUP to reload the users.
    #[arg(long, env = "CAIRN_NATS_PID_FILE", default_value = ".local/run/nats.pid")]
    nats_pid_file: PathBuf,
}

pub(crate) async fn run(settings: &Settings, args: Args) -> Result<(), BoxError> {
    if args.init {
        let service_password = settings.nats_password.as_ref().map(|p| p.expose().to_string());
        let users = feed_access::ensure_users_file(&args.users_file, service_password.as_deref())?;
        println!("feed-credentials: {} ready ({} feed users)", args.users_file.display(), users.feeds.len());
        return Ok(());
    }
    let Some(wanted) = args.org.as_deref() else { return Err("an organisation is required".into()) };
    let (org, name) = find_org(settings, wanted).await?;
    let user = feed_access::user_name(org);
    if args.revoke {
        if !feed_access::revoke_credentials(&args.users_file, org)? {
            println!("feed-credentials: {name:?} has no feed user in {}", args.users_file.display());
            return Ok(());
        }
        println!("feed-credentials: removed {user} ({name:?}) from {}", args.users_file.display());
        reload(&args.nats_pid_file);
        return Ok(());
    }
    let password = feed_access::issue_credentials(&args.users_file, org, &name)?;
    println!("feed-credentials: wrote {user} ({name:?}) to {}", args.users_file.display());
    if reload(&args.nats_pid_file) {
        verify(settings, &user, &password).await;
    }
    print_instructions(settings, org, &name, &user, &password);
    Ok(())
}

/// The organisation named by uuid, numeric id or (case-insensitive) name.
async fn find_org(settings: &Settings, wanted: &str) -> Result<(Uuid, String), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let client = pool.get().await?;
    let rows = if let Ok(uuid) = Uuid::parse_str(wanted) {
        client.query("SELECT uuid, name FROM rm.organisations WHERE uuid = $1 AND NOT deleted", &[&uuid]).await?
    } else if let Ok(id) = wanted.parse::<i64>() {
        client.query("SELECT uuid, name FROM rm.organisations WHERE id = $1 AND NOT deleted", &[&id]).await?
    } else {
        client
            .query("SELECT uuid, name FROM rm.organisations WHERE lower(name) = lower($1) AND NOT deleted", &[&wanted])
            .await?
    };
    match rows.as_slice() {
        [row] => Ok((row.get(0), row.get(1))),
        [] => Err(format!("no organisation {wanted:?} (give its uuid, id or name)").into()),
        _ => Err(format!("{} organisations are named {wanted:?}: give the uuid or id", rows.len()).into()),
    }
}

/// Sends SIGHUP to the nats-server of `pid_file`; says what it did. Whether it signalled.
fn reload(pid_file: &Path) -> bool {
    let pid = match std::fs::read_to_string(pid_file) {
        Ok(text) => text.trim().to_string(),
        Err(e) => {
            println!(
                "feed-credentials: no nats-server pid in {} ({e}); reload it yourself: nats-server --signal reload",
                pid_file.display()
            );
            return false;
        }
    };
    // A stale pid file may name another process by now: only signal a nats-server.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.trim().starts_with("nats-server") {
        println!(
            "feed-credentials: process {pid} of {} is not a running nats-server; reload it yourself: nats-server --signal reload",
            pid_file.display()
        );
        return false;
    }
    match std::process::Command::new("kill").args(["-HUP", &pid]).status() {
        Ok(status) if status.success() => {
            println!("feed-credentials: asked nats-server (pid {pid}) to reload its users (SIGHUP)");
            true
        }
        _ => {
            println!("feed-credentials: could not signal nats-server (pid {pid}); reload it yourself: nats-server --signal reload={pid}");
            false
        }
    }
}

/// Connects as the new user once the reload is through (nats-server reloads in the background, and
/// logs and keeps its old configuration when the new one is refused).
async fn verify(settings: &Settings, user: &str, password: &str) {
    for _ in 0..20 {
        if let Some(options) = feed_access::connect_options(user, password)
            && let Ok(client) = options.connection_timeout(Duration::from_secs(1)).connect(settings.nats_url.as_str()).await
        {
            drop(client);
            println!("feed-credentials: checked: {user} connects to {}", settings.nats_url);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "feed-credentials: warning: {user} cannot connect to {} yet; see nats-server's log (.local/logs/nats.log)",
        settings.nats_url
    );
}

fn print_instructions(settings: &Settings, org: Uuid, name: &str, user: &str, password: &str) {
    let url = &settings.nats_url;
    let own = feed_access::audience_filter(&Audience::Org(org));
    let public = feed_access::audience_filter(&Audience::Public);
    let inbox = feed_access::inbox_prefix(org);
    let durable = feed_access::durable_consumer(org);
    let replay = feed_access::replay_consumer(org);
    println!(
        "
Feed credentials for {name:?} (organisation {org}); the password is shown once:
  user       {user}
  password   {password}
  server     {url}
  subjects   {own}  (everything {name:?} may see: event, retract, sighting)
             {public}  (distribution \"All communities\")
  inbox      {inbox}  (clients must use this inbox prefix)
  consumers  {durable}  (durable, explicit acks), {replay}  (replays)
             on stream {FEEDS_STREAM}, filtered on one of the subjects above

Live messages with the nats CLI:
  nats --server {url} --user {user} --password '<password>' sub '{own}'

Replay from sequence 1 (or --deliver 2026-01-01T00:00:00Z, --deliver new):
  nats --server {url} --user {user} --password '<password>' --inbox-prefix {inbox} \\
    consumer add {FEEDS_STREAM} {replay} --pull --filter '{own}' --deliver 1 --ack none \\
    --replay instant --inactive-threshold 1m --defaults
  nats --server {url} --user {user} --password '<password>' --inbox-prefix {inbox} \\
    consumer next {FEEDS_STREAM} {replay} --count 100 --no-ack

The example subscriber (JSON lines: seq, subject, msg_id, payload):
  CAIRN_FEED_PASSWORD='<password>' cairnctl feed-subscribe --url {url} --user {user} --from-seq 1

See docs/feeds.md."
    );
}
