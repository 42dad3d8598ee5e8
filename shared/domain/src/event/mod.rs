//! The Event aggregate: one stream per MISP Event (keyed by its uuid) holding the Event, its
//! Attributes, Objects, Object references and tag links.
//!
//! - [`model`]: the records the changes carry.
//! - [`draft`]: what a request asks for (parsed, not yet validated).
//! - [`decide`]: commands → changes, with MISP's rules.
//! - [`state`]: the folded state and `evolve`.

pub mod decide;
pub mod draft;
pub mod model;
pub mod state;

pub use decide::{Context, Decision, ElementRef, EventCommand, IdPool, TagTarget, TemplateBook, TemplateRule, decide};
pub use draft::{AttributeDraft, EventDraft, ObjectDraft, ReferenceDraft, TagDraft, TagInfo};
pub use model::{Attribute, EventMeta, Object, ObjectReference, TagLink};
pub use state::{EventState, evolve};
#[cfg(test)] mod tests;
