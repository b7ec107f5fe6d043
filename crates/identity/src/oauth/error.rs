//! OAuth error responses: RFC 6749 §5.2 (token endpoint), RFC 6750 §3 (bearer tokens), RFC 7009
//! (revocation), RFC 9126 (PAR), RFC 8707 (resource indicators) and the OpenID Connect Core
//! §3.1.2.6 codes.
//!
//! The body is JSON `{"error", "error_description"}` with `Cache-Control: no-store` and
//! `Pragma: no-cache`. Descriptions are sanitized when rendered to the RFC 6749 charset
//! (`%x20-21 / %x23-5B / %x5D-7E`, so they are also safe inside a quoted header parameter) and
//! truncated; callers still must never put secrets into them.

use std::borrow::Cow;
use std::fmt;

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "cryptoutil-identity";

/// Longest description rendered, in characters (longer ones are cut).
pub const MAX_DESCRIPTION_LEN: usize = 256;

/// A registered OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (code, refresh token) is invalid, expired, revoked or was issued to another client.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The scope is invalid, unknown, malformed or exceeds what is allowed.
    InvalidScope,
    /// The resource owner or the server denied the request.
    AccessDenied,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// An unexpected condition (never caused by the request itself).
    ServerError,
    /// A dependency is temporarily unavailable.
    TemporarilyUnavailable,
    /// The access token is expired, revoked, malformed or invalid (RFC 6750).
    InvalidToken,
    /// The access token lacks a required scope (RFC 6750).
    InsufficientScope,
    /// The `request_uri` is invalid or expired (RFC 9126).
    InvalidRequestUri,
    /// The request object is invalid (RFC 9101 / OIDC Core).
    InvalidRequestObject,
    /// `prompt=none` but the user is not signed in (OIDC Core).
    LoginRequired,
    /// `prompt=none` but consent is needed (OIDC Core).
    ConsentRequired,
    /// `prompt=none` but some interaction is needed (OIDC Core).
    InteractionRequired,
    /// The token type hint or token type is not supported (RFC 7009).
    UnsupportedTokenType,
    /// The DPoP proof is missing, invalid, replayed or for another key (RFC 9449 §5).
    InvalidDpopProof,
    /// The DPoP proof lacks the server's current nonce (RFC 9449 §8).
    UseDpopNonce,
    /// The requested resource or audience is invalid, unknown or not allowed (RFC 8707 §2,
    /// RFC 8693 §2.2.2).
    InvalidTarget,
    /// The user has not decided yet: poll again after the interval (RFC 8628 §3.5).
    AuthorizationPending,
    /// Polled too fast: the interval grows by 5 seconds (RFC 8628 §3.5).
    SlowDown,
    /// The device code expired before the user decided (RFC 8628 §3.5).
    ExpiredToken,
}

impl ErrorCode {
    /// The registered wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidTarget => "invalid_target",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }

    /// The status a JSON error response with this code gets unless overridden: 400, except
    /// `invalid_token` 401, `insufficient_scope` and `access_denied` 403, `server_error` 500 and
    /// `temporarily_unavailable` 503. (`invalid_client` becomes 401 with a challenge through
    /// [`OAuthError::with_basic_challenge`].)
    pub fn default_status(self) -> u16 {
        match self {
            Self::InvalidToken => 401,
            Self::InsufficientScope | Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `WWW-Authenticate` challenge an error carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="cryptoutil-identity"` (RFC 6749 §5.2, after a failed Basic attempt).
    Basic,
    /// `Bearer realm=…, error=…, error_description=…[, scope=…]` (RFC 6750 §3).
    Bearer {
        /// The scope needed (for `insufficient_scope`).
        scope: Option<String>,
    },
    /// `Bearer realm=…` without an error: the request carried no token (RFC 6750 §3.1).
    BearerNoToken,
    /// `DPoP realm=…, error=…, error_description=…, algs=…` (RFC 9449 §7.1): a refused
    /// DPoP-bound access token or its proof.
    Dpop {
        /// The accepted proof algorithms, space-separated.
        algs: String,
    },
}

/// An OAuth error, rendered as RFC 6749 JSON by the HTTP layer (`api`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {}", sanitize(.description))]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// A human-readable explanation (sanitized when rendered; never put secrets here).
    pub description: Cow<'static, str>,
    /// The HTTP status code.
    pub status: u16,
    /// The `WWW-Authenticate` challenge, if any.
    pub challenge: Option<Challenge>,
    /// `Retry-After` in seconds, if any (with 429 or 503).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with `code`'s default status and no challenge.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            status: code.default_status(),
            challenge: None,
            retry_after: None,
        }
    }

    /// `invalid_client` with 429 and `Retry-After`: client authentication is refused unchecked
    /// after too many failures (see [`crate::throttle`]).
    pub fn client_auth_throttled(retry_after_secs: u64) -> Self {
        Self {
            status: 429,
            retry_after: Some(retry_after_secs),
            ..Self::new(
                ErrorCode::InvalidClient,
                format!(
                    "too many failed client authentication attempts; retry in {retry_after_secs} seconds"
                ),
            )
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client` (400; see [`Self::with_basic_challenge`]).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `server_error` (500; for failures the client cannot cause).
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// `temporarily_unavailable` (503; a dependency such as the database failed).
    pub fn temporarily_unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the service is temporarily unavailable",
        )
    }

    /// A bearer-token error (RFC 6750 §3.1): `invalid_token` (401), `insufficient_scope` (403)
    /// or `invalid_request` (400), with a `Bearer` challenge carrying the code and description.
    pub fn bearer(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            challenge: Some(Challenge::Bearer { scope: None }),
            ..Self::new(code, description)
        }
    }

    /// `insufficient_scope` (403) naming the scope the resource needs.
    pub fn insufficient_scope(required: impl Into<String>) -> Self {
        Self {
            challenge: Some(Challenge::Bearer {
                scope: Some(required.into()),
            }),
            ..Self::new(
                ErrorCode::InsufficientScope,
                "the access token lacks the required scope",
            )
        }
    }

    /// 401 for a request without any access token: `WWW-Authenticate: Bearer realm=…` with no
    /// error code in the challenge (RFC 6750 §3.1); the body still says `invalid_token`.
    pub fn bearer_token_missing() -> Self {
        Self {
            challenge: Some(Challenge::BearerNoToken),
            ..Self::new(ErrorCode::InvalidToken, "an access token is required")
        }
    }

    /// Makes this a DPoP resource error (RFC 9449 §7.1) with a `DPoP` challenge listing
    /// `algs`: `invalid_token` and `invalid_dpop_proof` 401, `invalid_request` 400,
    /// `insufficient_scope` 403. Other errors (server failures) are left as they are.
    pub fn with_dpop_challenge(mut self, algs: &[&str]) -> Self {
        let status = match self.code {
            ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof => 401,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InsufficientScope => 403,
            _ => return self,
        };
        self.status = status;
        self.challenge = Some(Challenge::Dpop {
            algs: algs.join(" "),
        });
        self
    }

    /// Makes this a 401 with `WWW-Authenticate: Basic realm="cryptoutil-identity"` (RFC 6749
    /// §5.2: required for `invalid_client` when the client used the `Authorization` header).
    pub fn with_basic_challenge(mut self) -> Self {
        self.status = 401;
        self.challenge = Some(Challenge::Basic);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The description as rendered: RFC 6749 charset only, at most [`MAX_DESCRIPTION_LEN`].
    pub fn safe_description(&self) -> String {
        sanitize(&self.description)
    }

    /// The `WWW-Authenticate` value, if this error has a challenge.
    pub fn www_authenticate(&self) -> Option<String> {
        let challenge = self.challenge.as_ref()?;
        Some(match challenge {
            Challenge::Basic => format!("Basic realm=\"{REALM}\""),
            Challenge::BearerNoToken => format!("Bearer realm=\"{REALM}\""),
            Challenge::Bearer { scope } => {
                let mut value = format!(
                    "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{}\"",
                    self.code,
                    self.safe_description()
                );
                if let Some(scope) = scope {
                    value.push_str(&format!(", scope=\"{}\"", sanitize(scope)));
                }
                value
            }
            Challenge::Dpop { algs } => format!(
                "DPoP realm=\"{REALM}\", error=\"{}\", error_description=\"{}\", algs=\"{}\"",
                self.code,
                self.safe_description(),
                sanitize(algs)
            ),
        })
    }
}

/// Keeps only the characters RFC 6749 allows in `error_description` (`%x20-21 / %x23-5B /
/// %x5D-7E`: printable ASCII without `"` and `\`), replacing others with `?`, cut to
/// [`MAX_DESCRIPTION_LEN`] characters.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .take(MAX_DESCRIPTION_LEN)
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert_eq!(
            ErrorCode::UnsupportedTokenType.as_str(),
            "unsupported_token_type"
        );
        assert_eq!(ErrorCode::InvalidRequestUri.as_str(), "invalid_request_uri");
        assert_eq!(ErrorCode::InvalidTarget.as_str(), "invalid_target");
        assert_eq!(ErrorCode::InvalidTarget.default_status(), 400);
        assert_eq!(ErrorCode::TemporarilyUnavailable.default_status(), 503);
        assert_eq!(
            OAuthError::invalid_scope("nope").to_string(),
            "invalid_scope: nope"
        );
        // Display (what logs see) is sanitized too.
        assert_eq!(
            OAuthError::invalid_request("a\nb").to_string(),
            "invalid_request: a?b"
        );
        assert_eq!(
            OAuthError::new(ErrorCode::LoginRequired, "")
                .with_status(302)
                .status,
            302
        );
    }

    #[test]
    fn dpop_codes_and_challenges() {
        assert_eq!(ErrorCode::InvalidDpopProof.as_str(), "invalid_dpop_proof");
        assert_eq!(ErrorCode::UseDpopNonce.as_str(), "use_dpop_nonce");
        assert_eq!(ErrorCode::InvalidDpopProof.default_status(), 400);
        assert_eq!(ErrorCode::UseDpopNonce.default_status(), 400);
        let e = OAuthError::new(ErrorCode::InvalidDpopProof, "replayed")
            .with_dpop_challenge(&["ES256", "EdDSA"]);
        assert_eq!(e.status, 401);
        assert_eq!(
            e.www_authenticate().unwrap(),
            "DPoP realm=\"cryptoutil-identity\", error=\"invalid_dpop_proof\", \
             error_description=\"replayed\", algs=\"ES256 EdDSA\""
        );
        let e = OAuthError::bearer(ErrorCode::InvalidRequest, "x").with_dpop_challenge(&["ES256"]);
        assert_eq!(e.status, 400);
        // Server failures keep their status and get no challenge.
        let e = OAuthError::temporarily_unavailable().with_dpop_challenge(&["ES256"]);
        assert_eq!((e.status, e.challenge), (503, None));
    }
}
