//! The Event aggregate: one stream per MISP Event (keyed by its uuid) holding the Event, its
//! Attributes, Objects, Object references and tag links, and the collaboration around it (Proposals,
//! the pending Delegation, the discussion, reporter contacts). Its Sightings have a stream of their
//! own ([`crate::sighting`]).
//!
//! - [`model`]: the records the changes carry.
//! - [`draft`]: what a request asks for (parsed, not yet validated).
//! - [`decide`]: commands → changes, with MISP's rules.
//! - [`collaboration`]: the collaboration commands' rules, and who is notified of what.
//! - [`state`]: the folded state and `evolve`; [`fold`]: every Event of a log folded, for bulk rebuilds.
//! - [`audit`]: which changes of an Event's history a viewer may read.
//! - [`sync`]: what is shared with a peer instance, and how a peer's Event becomes a local copy.

pub mod audit;
pub mod collaboration;
pub mod decide;
pub mod draft;
pub mod fold;
pub mod model;
pub mod state;
pub mod sync;

pub use decide::{Context, Decision, ElementRef, EventCommand, IdPool, TagTarget, TemplateBook, TemplateRule, decide};
pub use draft::{AttributeDraft, EventDraft, ObjectDraft, ReferenceDraft, TagDraft, TagInfo};
pub use collaboration::{Recipient, recipients};
pub use model::{Attribute, Delegation, EventMeta, Object, ObjectReference, Post, Proposal, TagLink, Thread};
pub use state::{EventState, evolve};
#[cfg(test)] mod tests;
