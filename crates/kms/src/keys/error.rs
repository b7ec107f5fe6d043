//! Errors of the key service, each mapped to one HTTP status by the API layer.

use crate::audit::Outcome;
use crate::repository::StoreError;
use crate::scopes::MissingScope;

/// Why a key operation failed. Messages are safe to show to the caller: they never contain key
/// material, plaintext, or anything about another tenant.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Malformed or unacceptable input (400).
    #[error("{0}")]
    Invalid(String),
    /// No such elastic or material key in the caller's tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// The key exists but its state or flags forbid the operation (409).
    #[error("{0}")]
    Conflict(String),
    /// The principal lacks the fine scope the operation names (403 `insufficient_scope`).
    #[error("this operation needs the scope {0}")]
    InsufficientScope(&'static str),
    /// A JWE did not decrypt: wrong key, wrong context, or tampered (400).
    #[error("{0}")]
    DecryptionFailed(String),
    /// A JWS did not verify (400 `invalid_signature`).
    #[error("{0}")]
    InvalidSignature(String),
    /// Storage is unavailable (503); the request changed nothing.
    #[error("the key store is unavailable, try again later")]
    Unavailable,
    /// A server-side fault (500): stored data or a barrier layer could not be used. Details go to
    /// the log, not to the caller.
    #[error("internal error")]
    Internal(String),
}

impl KeyError {
    /// How an operation that failed so ends in the audit trail: refused for the caller's
    /// errors, failed for the server's, with a fixed reason code (never the message).
    pub fn audit_outcome(&self) -> Outcome<'static> {
        match self {
            Self::Invalid(_) => Outcome::Refused("invalid"),
            Self::NotFound(_) => Outcome::Refused("not_found"),
            Self::Conflict(_) => Outcome::Refused("conflict"),
            Self::InsufficientScope(_) => Outcome::Refused("insufficient_scope"),
            Self::DecryptionFailed(_) => Outcome::Refused("decryption_failed"),
            Self::InvalidSignature(_) => Outcome::Refused("invalid_signature"),
            Self::Unavailable => Outcome::Failed("unavailable"),
            Self::Internal(_) => Outcome::Failed("internal"),
        }
    }
}

impl From<MissingScope> for KeyError {
    fn from(MissingScope(scope): MissingScope) -> Self {
        Self::InsufficientScope(scope)
    }
}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Corrupt(m) | StoreError::NewerSchema(m) => Self::Internal(m),
        }
    }
}
