//! Signed checkpoints of the log: at intervals the notary signs the chain head (commit, position, chain
//! hash, time) with the instance's Ed25519 key, stores it (`es.checkpoints`, append-only) and publishes it
//! on NATS (`cairn.audit.checkpoint`). A partner who kept a checkpoint can later check that the log still
//! holds that commit with that chain hash — i.e. that no history up to it was rewritten, even by someone
//! able to recompute the whole chain ([`check_against_log`], `cairnctl verify --checkpoint`).
//!
//! The signed body is plain text, one `key value` per line:
//! ```text
//! cairn checkpoint v1
//! instance <uuid>
//! commit <n>
//! position <n>
//! chain <hex>
//! time <RFC 3339>
//! ```

use crate::store::{self, StoreError};
use deadpool_postgres::GenericClient;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Where checkpoints are published (core NATS).
pub const SUBJECT: &str = "cairn.audit.checkpoint";

/// A signed checkpoint as stored, served and published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub commit: i64,
    pub position: i64,
    /// Hex.
    pub chain: String,
    pub time: String,
    /// The signed text.
    pub body: String,
    /// Hex Ed25519 signature of `body`.
    pub signature: String,
    /// Hex Ed25519 public key.
    pub public_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint key file {0} must hold 64 hex characters (an Ed25519 seed)")]
    BadKey(String),
    #[error("the signature does not match the checkpoint (or the key)")]
    BadSignature,
    #[error("the checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("the log does not hold what the checkpoint signed: {0}")]
    Rewritten(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// Reads a signing key: 64 hex characters (the Ed25519 seed), surrounding whitespace ignored.
///
/// # Errors
/// An unreadable file or a malformed key.
pub fn read_key(path: &std::path::Path) -> Result<SigningKey, CheckpointError> {
    let bad = || CheckpointError::BadKey(path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|_| bad())?;
    let bytes = hex::decode(text.trim()).map_err(|_| bad())?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A new key as its file content (hex seed), from 32 random bytes.
pub fn new_key_hex() -> String {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    hex::encode(seed)
}

/// The public key of `key`, hex.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().as_bytes())
}

/// Signs the log head `(commit, position, chain)` of `instance` at `time`.
pub fn sign(key: &SigningKey, instance: Uuid, commit: i64, position: i64, chain: &[u8], time: chrono::DateTime<chrono::Utc>) -> Checkpoint {
    let chain = hex::encode(chain);
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = format!("cairn checkpoint v1\ninstance {instance}\ncommit {commit}\nposition {position}\nchain {chain}\ntime {time}\n");
    let signature = hex::encode(key.sign(body.as_bytes()).to_bytes());
    Checkpoint { commit, position, chain, time, body, signature, public_key: public_key_hex(key) }
}

/// Checks the signature (with `expected_key` when given, else the key the checkpoint names) and that
/// the signed body says what the fields say.
///
/// # Errors
/// [`CheckpointError::BadSignature`] or [`CheckpointError::Malformed`].
pub fn check_signature(c: &Checkpoint, expected_key: Option<&str>) -> Result<(), CheckpointError> {
    let key_hex = expected_key.unwrap_or(&c.public_key);
    let key_bytes: [u8; 32] = hex::decode(key_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CheckpointError::Malformed("public key".into()))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| CheckpointError::Malformed("public key".into()))?;
    let sig_bytes: [u8; 64] = hex::decode(&c.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CheckpointError::Malformed("signature".into()))?;
    key.verify(c.body.as_bytes(), &Signature::from_bytes(&sig_bytes)).map_err(|_| CheckpointError::BadSignature)?;
    let field = |name: &str| c.body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' '))).map(str::to_string);
    let agrees = field("commit") == Some(c.commit.to_string()) && field("position") == Some(c.position.to_string()) && field("chain").as_deref() == Some(c.chain.as_str());
    if !agrees {
        return Err(CheckpointError::Malformed("the fields differ from the signed text".into()));
    }
    Ok(())
}

/// Checks a (signature-checked) checkpoint against the log: its commit must exist, end at its position
/// and carry its chain hash.
///
/// # Errors
/// [`CheckpointError::Rewritten`] naming the commit.
pub async fn check_against_log(client: &impl GenericClient, c: &Checkpoint) -> Result<(), CheckpointError> {
    let commits = store::read_commits(client, c.commit - 1, 1).await?;
    let Some(commit) = commits.into_iter().next().filter(|x| x.commit_seq == c.commit) else {
        return Err(CheckpointError::Rewritten(format!("commit {} is missing", c.commit)));
    };
    if commit.last_position != c.position {
        return Err(CheckpointError::Rewritten(format!("commit {} ends at position {}, the checkpoint says {}", c.commit, commit.last_position, c.position)));
    }
    if hex::encode(&commit.chain_hash) != c.chain {
        return Err(CheckpointError::Rewritten(format!("commit {} has another chain hash than the one signed", c.commit)));
    }
    Ok(())
}

async fn instance_uuid(client: &impl GenericClient) -> Uuid {
    // The instance's uuid (from the read model when present; nil before the bootstrap is projected).
    match client.query_opt("SELECT instance_uuid FROM rm.instance WHERE id = 1", &[]).await {
        Ok(Some(r)) => r.get::<_, Option<Uuid>>(0).unwrap_or_default(),
        _ => Uuid::nil(),
    }
}

/// Signs, stores and publishes a checkpoint of the current head if it moved since the last one.
///
/// # Errors
/// Database errors.
pub async fn sign_head(client: &impl GenericClient, key: &SigningKey, nats: Option<&async_nats::Client>) -> Result<Option<Checkpoint>, CheckpointError> {
    let head = store::head(client).await?;
    let last: Option<i64> = client.query_one("SELECT max(commit_seq) FROM es.checkpoints", &[]).await?.get(0);
    if head.commit_seq == 0 || last.is_some_and(|l| l >= head.commit_seq) {
        return Ok(None);
    }
    let c = sign(key, instance_uuid(client).await, head.commit_seq, head.position, &head.chain_hash, chrono::Utc::now());
    client
        .execute(
            "INSERT INTO es.checkpoints (commit_seq, position, chain_hash, signed_at, body, signature, public_key) \
             VALUES ($1, $2, $3, now(), $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&c.commit, &c.position, &head.chain_hash, &c.body, &c.signature, &c.public_key],
        )
        .await?;
    if let Some(n) = nats {
        if let Ok(payload) = serde_json::to_vec(&c) {
            let _ = n.publish(SUBJECT, payload.into()).await;
        }
    }
    Ok(Some(c))
}

/// The stored checkpoints, newest first.
///
/// # Errors
/// Database errors.
pub async fn list(client: &impl GenericClient, limit: i64) -> Result<Vec<Checkpoint>, CheckpointError> {
    let rows = client
        .query(
            "SELECT commit_seq, position, chain_hash, body, signature, public_key FROM es.checkpoints ORDER BY commit_seq DESC LIMIT $1",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let body: String = r.get(3);
            let time = body.lines().find_map(|l| l.strip_prefix("time ")).unwrap_or_default().to_string();
            Checkpoint {
                commit: r.get(0),
                position: r.get(1),
                chain: hex::encode(r.get::<_, Vec<u8>>(2)),
                time,
                body,
                signature: r.get(4),
                public_key: r.get(5),
            }
        })
        .collect())
}

/// The notary: a checkpoint every `interval` while the log grows, until shutdown.
pub async fn run_notary(pool: deadpool_postgres::Pool, nats: Option<async_nats::Client>, key: SigningKey, interval: Duration, shutdown: cairn_platform::Shutdown) {
    loop {
        match pool.get().await {
            Ok(client) => {
                if let Err(e) = sign_head(&client, &key, nats.as_ref()).await {
                    tracing::warn!(error = %e, "checkpoint not signed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint: no database connection"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_and_any_change_to_it_does_not() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let c = sign(&key, Uuid::nil(), 7, 42, &[0xab; 32], chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"));
        assert!(c.body.contains("commit 7\nposition 42\n"), "{}", c.body);
        check_signature(&c, None).expect("valid");
        check_signature(&c, Some(&public_key_hex(&key))).expect("valid with the pinned key");
        let other = SigningKey::from_bytes(&[4u8; 32]);
        assert!(matches!(check_signature(&c, Some(&public_key_hex(&other))), Err(CheckpointError::BadSignature)));
        let forged = Checkpoint { body: c.body.replace("position 42", "position 43"), ..c.clone() };
        assert!(matches!(check_signature(&forged, None), Err(CheckpointError::BadSignature)));
        let mislabelled = Checkpoint { position: 43, ..c };
        assert!(matches!(check_signature(&mislabelled, None), Err(CheckpointError::Malformed(_))));
    }
}
