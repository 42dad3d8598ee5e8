//! Stream types (one per aggregate kind) and well-known stream ids.

use uuid::Uuid;

pub const INSTANCE: &str = "instance";
pub const ORGANISATION: &str = "organisation";
pub const USER: &str = "user";
pub const EVENT: &str = "event";
pub const TAG: &str = "tag";
pub const EVENT_TEMPLATE: &str = "event_template";
/// A user's audit queries (see [`audit_stream`]).
pub const AUDIT: &str = "audit";
pub const SHARING_GROUP: &str = "sharing_group";
/// The sightings of one Event (see [`crate::sighting`] for why they are not in the Event's stream).
pub const SIGHTINGS: &str = "sightings";

/// The singleton stream holding instance-wide facts (bootstrap, settings, default role).
pub fn instance_stream() -> Uuid {
    Uuid::from_u128(0xca1e_0000_0000_4000_8000_0000_0000_0001)
}

/// A tag's stream: derived from its (lower-cased) name at creation, so two concurrent creations of the
/// same tag name collide in the store (the second finds the stream existing) instead of duplicating it.
pub fn tag_stream(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::from_u128(0xca1e_0000_0000_5000_8000_0000_0000_0002), name.trim().to_lowercase().as_bytes())
}

/// The stream of an Event's sightings: derived from the Event's uuid, so every writer finds the same
/// stream without a lookup, and it never collides with an Event, tag or other stream id.
pub fn sightings_stream(event_uuid: Uuid) -> Uuid {
    Uuid::new_v5(&Uuid::from_u128(0xca1e_0000_0000_5000_8000_0000_0000_0003), event_uuid.as_bytes())
}

/// The stream recording one user's audit queries: derived from the user's uuid.
pub fn audit_stream(user_uuid: Uuid) -> Uuid {
    Uuid::new_v5(&Uuid::from_u128(0xca1e_0000_0000_5000_8000_0000_0000_0005), user_uuid.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_sightings_stream_is_stable_and_distinct_from_the_event() {
        let event = Uuid::from_u128(0xE000_0001);
        assert_eq!(sightings_stream(event), sightings_stream(event));
        assert_ne!(sightings_stream(event), event);
        assert_ne!(sightings_stream(event), sightings_stream(Uuid::from_u128(0xE000_0002)));
        assert_ne!(sightings_stream(event), tag_stream(&event.to_string()));
    }
}
