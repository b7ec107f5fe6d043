//! Key service errors as RFC 7807 problems.

use axum::http::StatusCode;
use cryptoutil_server::Problem;

use crate::keys::KeyError;

/// Base of our problem `type` URIs.
const TYPE_BASE: &str = "https://cryptoutil.dev/problems/";

impl From<KeyError> for Problem {
    fn from(e: KeyError) -> Self {
        let detail = e.to_string();
        match e {
            KeyError::Invalid(_) => Problem::bad_request(detail),
            KeyError::NotFound(_) => Problem::not_found().with_detail(detail),
            KeyError::Conflict(_) => Problem::new(StatusCode::CONFLICT).with_detail(detail),
            KeyError::InsufficientScope(scope) => Problem::new(StatusCode::FORBIDDEN)
                .with_type(format!("{TYPE_BASE}insufficient_scope"))
                .with_title("insufficient_scope")
                .with_detail(detail)
                .with_extension("scope", scope),
            KeyError::DecryptionFailed(_) => Problem::bad_request(detail)
                .with_type(format!("{TYPE_BASE}decryption_failed"))
                .with_title("decryption_failed"),
            KeyError::InvalidSignature(_) => Problem::bad_request(detail)
                .with_type(format!("{TYPE_BASE}invalid_signature"))
                .with_title("invalid_signature"),
            KeyError::Unavailable => Problem::unavailable(detail),
            KeyError::Internal(internal) => {
                tracing::error!(error = %internal, "key service internal error");
                Problem::internal()
            }
        }
    }
}
