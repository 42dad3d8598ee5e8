//! Why a command is refused. The API maps each variant to one HTTP status and MISP's error shape.

use crate::event::model::{Attribute, Proposal};

/// A refused command. Nothing is written when `decide` returns one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field failed validation (400-class; MISP answers 403 "Could not add …" for saves).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The target does not exist (or must look as if it did not: no existence leak).
    #[error("{0}")]
    NotFound(String),
    /// The actor's role or organisation does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The target exists already (duplicate uuid, name, e-mail…).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request contradicts the current state (stale version, nothing to do…).
    #[error("{0}")]
    Conflict(String),
    /// Accepting a Proposal whose attribute was modified after the proposal was made (409): carries the
    /// attribute as it is now and the proposal (its complete proposed version, with the revision and
    /// timestamp it was based on) so the client can show both and decide. Nothing was overwritten.
    #[error(
        "The attribute was modified after this proposal was made (revision {} now, proposal based on revision {}): \
         accepting it would overwrite a newer edit. Review both versions and propose again.",
        .0.current_revision, .0.proposal.base_revision
    )]
    StaleProposal(Box<StaleProposal>),
}

/// Both versions of a refused Proposal acceptance ([`DomainError::StaleProposal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleProposal {
    /// The attribute as it is now.
    pub current: Attribute,
    /// Its revision now (the proposal holds the one it was based on).
    pub current_revision: u64,
    pub proposal: Proposal,
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }
}
