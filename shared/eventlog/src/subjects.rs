//! JetStream layout of the change log (ARCHITECTURE.md §5).

use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// The stream the relay fills; stream sequence == log position.
pub const CHANGES_STREAM: &str = "CAIRN_CHANGES";
/// Subjects are `cairn.change.<stream_type>.<change_type>`.
pub const CHANGES_SUBJECTS: &str = "cairn.change.>";

pub const HEADER_POSITION: &str = "Cairn-Position";
pub const HEADER_STREAM: &str = "Cairn-Stream";
pub const HEADER_STREAM_VERSION: &str = "Cairn-Stream-Version";
pub const HEADER_SCHEMA_VERSION: &str = "Cairn-Schema-Version";
pub const HEADER_COMMIT: &str = "Cairn-Commit";
/// Set when the change was too large for one NATS message: the body omits payload and metadata and
/// consumers read the change from PostgreSQL.
pub const HEADER_TRUNCATED: &str = "Cairn-Truncated";

/// Core-NATS subject on which a projector announces its new checkpoint (read-your-writes waiters listen).
pub fn checkpoint_subject(projector: &str) -> String {
    format!("cairn.checkpoint.{}", subject_token(projector))
}

/// The subject of one change.
pub fn change_subject(stream_type: &str, change_type: &str) -> String {
    let change_type: Vec<String> = change_type.split('.').map(subject_token).collect();
    format!("cairn.change.{}.{}", subject_token(stream_type), change_type.join("."))
}

/// A subject token: only `[A-Za-z0-9_-]`, never empty.
fn subject_token(s: &str) -> String {
    let t: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if t.is_empty() { "_".into() } else { t }
}

pub fn changes_stream_config() -> stream::Config {
    stream::Config {
        name: CHANGES_STREAM.into(),
        subjects: vec![CHANGES_SUBJECTS.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        // PostgreSQL is the archive; consumers further behind than this catch up from it.
        max_age: Duration::from_secs(30 * 24 * 3600),
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Gets the change stream, creating it when missing.
///
/// # Errors
/// NATS errors.
pub async fn ensure_changes_stream(js: &jetstream::Context) -> Result<stream::Stream, async_nats::Error> {
    Ok(js.get_or_create_stream(changes_stream_config()).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_bounded_tokens() {
        assert_eq!(super::change_subject("event", "attribute.added"), "cairn.change.event.attribute.added");
        assert_eq!(super::change_subject("a b", "x*>"), "cairn.change.a_b.x__");
    }
}
