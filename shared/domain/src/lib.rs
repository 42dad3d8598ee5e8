//! Cairn's pure domain: no I/O, no clock, no randomness (those arrive in commands).
//!
//! # Layout
//! - [`change`]: the [`Change`] enum — every fact Cairn records, tagged and versioned — and its mapping
//!   to stored records (with upcasting in one place).
//! - [`error`]: [`DomainError`], why a command is refused.
//! - [`actor`]: who issues a command.
//! - [`role`]: MISP's roles and permission flags (the six default roles).
//! - [`instance`], [`organisation`], [`user`]: aggregates as `decide`/`evolve` pairs.
//! - [`event`]: the MISP Event aggregate (Attributes, Objects, references, tag links, and the
//!   collaboration around them: Proposals, Delegation, the discussion, reporter contacts);
//!   [`sighting`]: Sightings (a stream per Event beside it); [`tag`]: tags;
//!   [`taxonomy`]: machine-tag vocabularies; [`event_template`]: MISP's event templates (forms that
//!   fill an Event).
//! - [`sharing_group`]: sharing groups (members, servers, extend).
//! - [`server`]: connected servers (peers this instance syncs with).
//! - [`sync_rules`]: MISP's push/pull distribution downgrades between instances.
//! - [`correlation`]: what correlates (keys, exclusion patterns).
//! - [`acl`]: the one access rule (who may see an Event, Object, Attribute, Proposal, Post, Sighting).
//! - [`types`]: MISP's type catalogue; [`value`]: value normalisation and validation.
//! - [`freetext`]: indicators typed out of free text (MISP's freetext import, with a compat mode).
//! - [`warninglist`]: MISP's warninglists (known false positives) and their matching.
//! - [`stream`]: stream types and well-known stream ids.

pub mod acl;
pub mod actor;
pub mod change;
pub mod correlation;
pub mod error;
pub mod event;
pub mod event_template;
pub mod freetext;
pub mod instance;
pub mod organisation;
pub mod role;
pub mod server;
pub mod sharing_group;
pub mod sighting;
pub mod stream;
pub mod sync_rules;
pub mod tag;
pub mod taxonomy;
pub mod types;
pub mod user;
pub mod value;
pub mod warninglist;

pub use actor::Actor;
pub use change::Change;
pub use error::DomainError;
