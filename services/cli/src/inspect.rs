//! `cairnctl status`, `verify`, `history`.

use crate::BoxError;
use cairn_platform::{Settings, connect};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

pub(crate) async fn status(settings: &Settings) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let client = pool.get().await?;
    let head = cairn_eventlog::store::head(&client).await?;
    println!("log head:       position {} (commit {}, chain {})", head.position, head.commit_seq, hex_short(&head.chain_hash));
    let rows = client
        .query("SELECT projector, position, updated_at FROM es.projector_checkpoints ORDER BY projector", &[])
        .await?;
    for r in rows {
        let (name, position, at): (String, i64, chrono::DateTime<chrono::Utc>) = (r.get(0), r.get(1), r.get(2));
        println!("projector {name:<12} checkpoint {position:>10}  lag {:>8}  (updated {at})", head.position - position);
    }
    let dead: i64 = client.query_one("SELECT count(*) FROM es.dead_letters", &[]).await?.get(0);
    println!("dead letters:   {dead}");
    let relay = async {
        let client = connect::nats(settings).await.map_err(|e| e.to_string())?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(cairn_eventlog::subjects::CHANGES_STREAM).await.map_err(|e| e.to_string())?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        Ok::<u64, String>(info.state.last_sequence)
    };
    match tokio::time::timeout(Duration::from_secs(3), relay).await {
        Ok(Ok(last)) => println!("relay:          JetStream at position {last} (lag {})", head.position - last as i64),
        Ok(Err(e)) => println!("relay:          JetStream unavailable ({e})"),
        Err(_) => println!("relay:          JetStream unavailable (timeout)"),
    }
    Ok(())
}

fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn checkpoint_key(path: &std::path::Path) -> Result<(), BoxError> {
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        use std::io::Write as _;
        writeln!(options.open(path)?, "{}", cairn_eventlog::checkpoint::new_key_hex())?;
    }
    let key = cairn_eventlog::checkpoint::read_key(path)?;
    println!("{}", cairn_eventlog::checkpoint::public_key_hex(&key));
    Ok(())
}

pub(crate) async fn verify(settings: &Settings, checkpoint: Option<&std::path::Path>, public_key: Option<&str>) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let client = pool.get().await?;
    if let Some(path) = checkpoint {
        let c: cairn_eventlog::checkpoint::Checkpoint = serde_json::from_slice(&std::fs::read(path)?)?;
        cairn_eventlog::checkpoint::check_signature(&c, public_key).map_err(|e| format!("checkpoint FAILED: {e}"))?;
        cairn_eventlog::checkpoint::check_against_log(&client, &c).await.map_err(|e| format!("checkpoint FAILED: {e}"))?;
        println!("checkpoint: OK — commit {} at position {} is as signed on {}", c.commit, c.position, c.time);
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("verify [{bar:40}] {pos}/{len} commits {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = cairn_eventlog::verify::verify(&client, |done, total| {
        bar.set_length(total.max(0) as u64);
        bar.set_position(done.max(0) as u64);
    })
    .await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            println!(
                "verify: OK — {} commits, {} changes, chain head {}",
                report.commits,
                report.changes,
                hex_short(&report.head.chain_hash)
            );
            Ok(())
        }
        Err(e) => Err(format!("verify FAILED: {e}").into()),
    }
}

pub(crate) async fn history(settings: &Settings, stream: uuid::Uuid) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    let client = pool.get().await?;
    let changes = cairn_eventlog::store::read_stream(&client, stream, 0).await?;
    if changes.is_empty() {
        return Err(format!("no stream {stream}").into());
    }
    for c in changes {
        let line = serde_json::json!({
            "position": c.position,
            "stream_version": c.stream_version,
            "recorded_at": c.recorded_at,
            "change_type": c.change_type,
            "schema_version": c.schema_version,
            "command": c.metadata.get("command_type"),
            "command_id": c.metadata.get("command_id"),
            "actor": c.metadata.get("actor"),
            "payload": c.payload,
        });
        println!("{line}");
    }
    Ok(())
}

