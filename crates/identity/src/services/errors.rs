//! How the services turn storage and internal failures into protocol errors.

use crate::oauth::{ErrorCode, OAuthError};
use crate::storage::StoreError;

/// A storage failure as a protocol error: 503 `temporarily_unavailable` when the database is
/// unreachable, else 500 `server_error` (logged, never shown).
pub(crate) fn storage(e: StoreError) -> OAuthError {
    match e {
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            OAuthError::temporarily_unavailable()
        }
        other => internal("storage", other),
    }
}

/// An internal failure: logged, answered with a bare `server_error`.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "{what} failed");
    OAuthError::server_error()
}

/// `invalid_grant` with a description.
pub(crate) fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}
