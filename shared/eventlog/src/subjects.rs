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

/// Every projector's checkpoint announcements (a wildcard: [`checkpoint_subject`] would turn `*` into `_`).
pub const CHECKPOINT_SUBJECTS: &str = "cairn.checkpoint.*";

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

/// The stream of feeds for subscribers outside the platform (the exporter fills it).
pub const FEEDS_STREAM: &str = "CAIRN_FEEDS";
/// Subjects are `cairn.feed.<audience>.<kind>`; audiences `public`, `community`, `org.<org uuid>`.
pub const FEEDS_SUBJECTS: &str = "cairn.feed.>";

/// Who a feed message is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// Distribution "All communities": what may leave the instance.
    Public,
    /// Every organisation on this instance (distribution 1–3).
    Community,
    /// Everything one organisation may see, sharing groups included.
    Org(uuid::Uuid),
}

impl Audience {
    /// The audience's subject tokens (`public`, `community`, `org.<uuid>`).
    pub fn token(&self) -> String {
        match self {
            Audience::Public => "public".into(),
            Audience::Community => "community".into(),
            Audience::Org(u) => format!("org.{u}"),
        }
    }

    /// Parses [`Audience::token`].
    pub fn parse(token: &str) -> Option<Self> {
        match token {
            "public" => Some(Audience::Public),
            "community" => Some(Audience::Community),
            _ => token.strip_prefix("org.").and_then(|u| uuid::Uuid::parse_str(u).ok()).map(Audience::Org),
        }
    }
}

/// Feed message kinds.
pub const FEED_KINDS: [&str; 3] = ["event", "retract", "sighting"];

/// The subject of a feed message: `cairn.feed.<audience>.<kind>`.
pub fn feed_subject(audience: &Audience, kind: &str) -> String {
    format!("cairn.feed.{}.{}", audience.token(), subject_token(kind))
}

pub fn feeds_stream_config() -> stream::Config {
    stream::Config {
        name: FEEDS_STREAM.into(),
        subjects: vec![FEEDS_SUBJECTS.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        // The exporter's outbox in PostgreSQL is the archive of what was sent.
        max_age: Duration::from_secs(90 * 24 * 3600),
        deny_delete: true,
        deny_purge: true,
        // Direct get would let any reader fetch any message by sequence, bypassing subject permissions.
        allow_direct: false,
        ..Default::default()
    }
}

/// Gets the feeds stream, creating it when missing.
///
/// # Errors
/// NATS errors.
pub async fn ensure_feeds_stream(js: &jetstream::Context) -> Result<stream::Stream, async_nats::Error> {
    Ok(js.get_or_create_stream(feeds_stream_config()).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_bounded_tokens() {
        assert_eq!(super::change_subject("event", "attribute.added"), "cairn.change.event.attribute.added");
        assert_eq!(super::change_subject("a b", "x*>"), "cairn.change.a_b.x__");
        assert!(super::CHECKPOINT_SUBJECTS.strip_suffix('*').is_some_and(|p| super::checkpoint_subject("indexer").starts_with(p)));
        let org = uuid::Uuid::from_u128(7);
        let a = super::Audience::Org(org);
        assert_eq!(super::feed_subject(&a, "event"), format!("cairn.feed.org.{org}.event"));
        assert_eq!(super::Audience::parse(&a.token()), Some(a));
        assert_eq!(super::feed_subject(&super::Audience::Public, "retract"), "cairn.feed.public.retract");
    }
}
