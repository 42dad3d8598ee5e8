//! The store's vocabulary: what a command appends and what a reader gets back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What the writer believes about a stream's version (KurrentDB's expected-revision variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must exist, at any version.
    Exists,
    /// The stream must be exactly at this version.
    Exact(i64),
}

impl ExpectedVersion {
    /// Does a stream currently at `actual` (None: absent) satisfy this expectation?
    pub fn admits(self, actual: Option<i64>) -> bool {
        match (self, actual) {
            (Self::Any, _) => true,
            (Self::NoStream, None) => true,
            (Self::NoStream, Some(_)) => false,
            (Self::Exists, actual) => actual.is_some(),
            (Self::Exact(v), Some(a)) => v == a,
            (Self::Exact(v), None) => v == 0,
        }
    }
}

/// One change to append, already typed by the domain.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChange {
    pub change_id: Uuid,
    pub change_type: String,
    pub schema_version: i16,
    pub payload: Value,
}

impl NewChange {
    pub fn new(change_type: impl Into<String>, schema_version: i16, payload: Value) -> Self {
        Self { change_id: Uuid::now_v7(), change_type: change_type.into(), schema_version, payload }
    }
}

/// The changes a command appends to one stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamWrite {
    pub stream_id: Uuid,
    pub stream_type: String,
    pub expected: ExpectedVersion,
    pub changes: Vec<NewChange>,
}

/// One command's append: one commit, possibly touching several streams (locked in id order).
#[derive(Clone, Debug, PartialEq)]
pub struct CommitRequest {
    /// Idempotency key: a repeated id returns the first commit's receipt and writes nothing.
    pub command_id: Uuid,
    pub command_type: String,
    /// Who did it (user, organisation, origin); recorded on the commit and in every change's metadata.
    pub actor: Value,
    pub writes: Vec<StreamWrite>,
}

/// What an accepted (or repeated) command got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReceipt {
    pub commit_seq: i64,
    pub first_position: i64,
    pub last_position: i64,
    /// True when the command id had already been committed and nothing new was written.
    pub duplicate: bool,
}

/// A change as stored in `es.changes` (and as carried on JetStream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredChange {
    pub position: i64,
    pub commit_seq: i64,
    pub change_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i64,
    pub change_type: String,
    pub schema_version: i16,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    #[serde(with = "hex_bytes")]
    pub content_hash: Vec<u8>,
}

/// A row of `es.commits`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCommit {
    pub commit_seq: i64,
    pub first_position: i64,
    pub last_position: i64,
    pub command_id: Uuid,
    pub command_type: String,
    pub actor: Value,
    pub committed_at: DateTime<Utc>,
    #[serde(with = "hex_bytes")]
    pub batch_digest: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub chain_hash: Vec<u8>,
}

/// The log head: last position, last commit and the chain head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub position: i64,
    pub commit_seq: i64,
    #[serde(with = "hex_bytes")]
    pub chain_hash: Vec<u8>,
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::ExpectedVersion::*;

    #[test]
    fn expectations_admit_what_they_say() {
        assert!(Any.admits(None) && Any.admits(Some(3)));
        assert!(NoStream.admits(None) && !NoStream.admits(Some(0)));
        assert!(Exists.admits(Some(0)) && !Exists.admits(None));
        assert!(Exact(2).admits(Some(2)) && !Exact(2).admits(Some(3)) && !Exact(2).admits(None));
        assert!(Exact(0).admits(None));
    }
}
