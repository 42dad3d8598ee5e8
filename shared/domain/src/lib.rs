//! Cairn's pure domain: no I/O, no clock, no randomness (those arrive in commands).
//!
//! # Layout
//! - [`change`]: the [`Change`] enum — every fact Cairn records, tagged and versioned — and its mapping
//!   to stored records (with upcasting in one place).
//! - [`error`]: [`DomainError`], why a command is refused.
//! - [`actor`]: who issues a command.
//! - [`role`]: MISP's roles and permission flags (the six default roles).
//! - [`instance`], [`organisation`], [`user`]: aggregates as `decide`/`evolve` pairs.
//! - [`stream`]: stream types and well-known stream ids.

pub mod actor;
pub mod change;
pub mod error;
pub mod instance;
pub mod organisation;
pub mod role;
pub mod stream;
pub mod user;

pub use actor::Actor;
pub use change::Change;
pub use error::DomainError;
