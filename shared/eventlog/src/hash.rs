//! Tamper evidence: a content hash per change and a SHA-256 chain over commits.
//!
//! * `content_hash = SHA-256("cairn.change.v1" ‖ stream_id ‖ stream_type ‖ stream_version ‖ change_id ‖
//!   change_type ‖ schema_version ‖ recorded_at(µs) ‖ canonical(payload) ‖ canonical(metadata))`
//! * `batch_digest = SHA-256(content_hash(first) ‖ … ‖ content_hash(last))`
//! * `commit_digest = SHA-256("cairn.commit.v1" ‖ commit_seq ‖ first ‖ last ‖ command_id ‖ command_type ‖
//!   canonical(actor) ‖ committed_at(µs) ‖ batch_digest)`
//! * `chain_hash(n) = SHA-256(chain_hash(n-1) ‖ commit_digest(n))`, with 32 zero bytes before commit 1.
//!
//! Variable-length fields are length-prefixed so no two inputs share an encoding. JSON is hashed in a
//! canonical form (object keys sorted, no whitespace) so a jsonb round trip through PostgreSQL, which
//! reorders keys, verifies to the same value.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const GENESIS: [u8; 32] = [0; 32];

/// Writes `value` as canonical JSON: keys sorted by their UTF-8 bytes, no insignificant whitespace.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(key, out);
                out.push(b':');
                canonical_json(&map[key.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_json_string(s, out),
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is deterministic; reuse it (writing to a Vec cannot fail).
    let _ = serde_json::to_writer(&mut *out, s);
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_json(h: &mut Sha256, v: &Value, scratch: &mut Vec<u8>) {
    scratch.clear();
    canonical_json(v, scratch);
    h.update((scratch.len() as u64).to_be_bytes());
    h.update(&scratch[..]);
}

/// Microseconds since the epoch: PostgreSQL's timestamp precision, so stored times hash identically.
pub fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Truncates a timestamp to PostgreSQL's microsecond precision.
pub fn to_pg_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The fields of one change that its content hash covers.
pub struct ChangeFields<'a> {
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub stream_version: i64,
    pub change_id: Uuid,
    pub change_type: &'a str,
    pub schema_version: i16,
    pub recorded_at: &'a DateTime<Utc>,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

pub fn content_hash(c: &ChangeFields<'_>, scratch: &mut Vec<u8>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"cairn.change.v1");
    h.update(c.stream_id.as_bytes());
    put_str(&mut h, c.stream_type);
    h.update(c.stream_version.to_be_bytes());
    h.update(c.change_id.as_bytes());
    put_str(&mut h, c.change_type);
    h.update(c.schema_version.to_be_bytes());
    h.update(micros(c.recorded_at).to_be_bytes());
    put_json(&mut h, c.payload, scratch);
    put_json(&mut h, c.metadata, scratch);
    h.finalize().into()
}

pub fn batch_digest<'a>(content_hashes: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in content_hashes {
        h.update(c);
    }
    h.finalize().into()
}

/// The fields of one commit that the chain covers.
pub struct CommitFields<'a> {
    pub commit_seq: i64,
    pub first_position: i64,
    pub last_position: i64,
    pub command_id: Uuid,
    pub command_type: &'a str,
    pub actor: &'a Value,
    pub committed_at: &'a DateTime<Utc>,
    pub batch_digest: &'a [u8],
}

pub fn chain_hash(prev: &[u8], c: &CommitFields<'_>, scratch: &mut Vec<u8>) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(b"cairn.commit.v1");
    d.update(c.commit_seq.to_be_bytes());
    d.update(c.first_position.to_be_bytes());
    d.update(c.last_position.to_be_bytes());
    d.update(c.command_id.as_bytes());
    put_str(&mut d, c.command_type);
    put_json(&mut d, c.actor, scratch);
    d.update(micros(c.committed_at).to_be_bytes());
    d.update(c.batch_digest);
    let commit_digest: [u8; 32] = d.finalize().into();
    let mut h = Sha256::new();
    h.update(prev);
    h.update(commit_digest);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": 1, "a": {"d": [1, {"z": true, "y": null}], "c": "x\"y"}}), &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"a":{"c":"x\"y","d":[1,{"y":null,"z":true}]},"b":1}"#
        );
    }

    #[test]
    fn content_hash_changes_with_any_field() {
        let t = Utc::now();
        let payload = json!({"value": "1.2.3.4"});
        let meta = json!({"actor": "a"});
        let base = ChangeFields {
            stream_id: Uuid::nil(),
            stream_type: "event",
            stream_version: 1,
            change_id: Uuid::nil(),
            change_type: "x",
            schema_version: 1,
            recorded_at: &t,
            payload: &payload,
            metadata: &meta,
        };
        let mut s = Vec::new();
        let h1 = content_hash(&base, &mut s);
        let other = json!({"value": "1.2.3.5"});
        let h2 = content_hash(&ChangeFields { payload: &other, ..base }, &mut s);
        assert_ne!(h1, h2);
        let h3 = content_hash(&ChangeFields { stream_version: 2, ..base }, &mut s);
        assert_ne!(h1, h3);
    }
}
