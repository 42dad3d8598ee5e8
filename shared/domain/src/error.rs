//! Why a command is refused. The API maps each variant to one HTTP status and MISP's error shape.

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
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }
}
