//! Stream types (one per aggregate kind) and well-known stream ids.

use uuid::Uuid;

pub const INSTANCE: &str = "instance";
pub const ORGANISATION: &str = "organisation";
pub const USER: &str = "user";
pub const EVENT: &str = "event";
pub const TAG: &str = "tag";
pub const SHARING_GROUP: &str = "sharing_group";

/// The singleton stream holding instance-wide facts (bootstrap, settings, default role).
pub fn instance_stream() -> Uuid {
    Uuid::from_u128(0xca1e_0000_0000_4000_8000_0000_0000_0001)
}

/// A tag's stream: derived from its (lower-cased) name at creation, so two concurrent creations of the
/// same tag name collide in the store (the second finds the stream existing) instead of duplicating it.
pub fn tag_stream(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::from_u128(0xca1e_0000_0000_5000_8000_0000_0000_0002), name.trim().to_lowercase().as_bytes())
}
