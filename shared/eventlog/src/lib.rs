//! The event store and everything that moves its changes.
//!
//! # Layout
//! - [`model`]: what is appended ([`CommitRequest`], [`StreamWrite`], [`NewChange`], [`ExpectedVersion`]) and read
//!   back ([`StoredChange`], [`StoredCommit`], [`Head`]).
//! - [`appender`]: the group-commit writer (one task per process): gap-free positions, expected versions,
//!   idempotent command ids, the hash chain.
//! - [`store`]: reads — the head, a stream, the log by position, commits.
//! - [`hash`]: content hashes and the commit chain; [`verify`] recomputes them; [`checkpoint`]: signed
//!   checkpoints of the chain head (Ed25519), checked later against the log.
//! - [`subjects`]: the JetStream layout; [`relay`]: PostgreSQL → JetStream.
//! - [`feed_access`]: per-organisation NATS feed users, their permissions and the users file.
//! - [`projector`]: the runtime every read model runs in; [`watcher`]: read-your-writes waits.
//! - [`migrate`]: numbered SQL migrations.
//! - [`bulk`]: the log read in one `COPY`, tables loaded by `COPY` with their indexes built last (rebuilds).

pub mod appender;
pub mod bulk;
pub mod checkpoint;
pub mod feed_access;
pub mod hash;
pub mod migrate;
pub mod model;
pub mod projector;
pub mod relay;
pub mod store;
pub mod subjects;
pub mod verify;
pub mod wake;
pub mod watcher;

pub use appender::Appender;
pub use model::{CommitReceipt, CommitRequest, ExpectedVersion, Head, NewChange, StoredChange, StoredCommit, StreamWrite};
pub use store::StoreError;
