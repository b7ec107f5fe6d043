//! OAuth error responses: RFC 6749 §5.2 (token endpoint), RFC 6750 §3 (bearer tokens), RFC 7009
//! (revocation), RFC 9126 (PAR) and the OpenID Connect Core §3.1.2.6 codes.
//!
//! The body is JSON `{"error", "error_description"}` with `Cache-Control: no-store` and
//! `Pragma: no-cache`. Descriptions are sanitized when rendered to the RFC 6749 charset
//! (`%x20-21 / %x23-5B / %x5D-7E`, so they are also safe inside a quoted header parameter) and
//! truncated; callers still must never put secrets into them.

use std::borrow::Cow;
use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
        }
    }

    /// The status a JSON error response with this code gets unless overridden: 400, except
    /// `invalid_token` 401, `insufficient_scope` and `access_denied` 403, `server_error` 500 and
    /// `temporarily_unavailable` 503. (`invalid_client` becomes 401 with a challenge through
    /// [`OAuthError::with_basic_challenge`].)
    pub fn default_status(self) -> StatusCode {
        match self {
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
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
}

/// An OAuth error, rendered as RFC 6749 JSON by [`IntoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {}", sanitize(.description))]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// A human-readable explanation (sanitized when rendered; never put secrets here).
    pub description: Cow<'static, str>,
    /// The HTTP status.
    pub status: StatusCode,
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
            status: StatusCode::TOO_MANY_REQUESTS,
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

    /// Makes this a 401 with `WWW-Authenticate: Basic realm="cryptoutil-identity"` (RFC 6749
    /// §5.2: required for `invalid_client` when the client used the `Authorization` header).
    pub fn with_basic_challenge(mut self) -> Self {
        self.status = StatusCode::UNAUTHORIZED;
        self.challenge = Some(Challenge::Basic);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
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

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let description = self.safe_description();
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.as_str().into());
        if !description.is_empty() {
            body.insert("error_description".into(), description.into());
        }
        let body = serde_json::Value::Object(body).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::Value;

    async fn render(error: OAuthError) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn json_body_and_no_store_headers() {
        let (status, headers, body) = render(OAuthError::invalid_grant("code expired")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "code expired");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn invalid_client_after_basic_is_401_with_basic_challenge() {
        let (status, headers, body) = render(
            OAuthError::invalid_client("client authentication failed").with_basic_challenge(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"cryptoutil-identity\""
        );
        assert_eq!(body["error"], "invalid_client");
        let (status, headers, _) = render(OAuthError::invalid_client("x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn bearer_challenges() {
        let (status, headers, _) =
            render(OAuthError::bearer(ErrorCode::InvalidToken, "token expired")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"cryptoutil-identity\", error=\"invalid_token\", error_description=\"token expired\""
        );
        let (status, headers, body) = render(OAuthError::insufficient_scope("openid")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "insufficient_scope");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .ends_with(", scope=\"openid\"")
        );
        let (status, headers, _) = render(OAuthError::bearer_token_missing()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"cryptoutil-identity\""
        );
    }

    #[tokio::test]
    async fn descriptions_are_sanitized_and_bounded() {
        let nasty = format!("a\"b\\c\r\nd\u{e9}\u{0}{}", "x".repeat(1000));
        let (_, headers, body) = render(OAuthError::bearer(ErrorCode::InvalidToken, nasty)).await;
        let described = body["error_description"].as_str().unwrap();
        assert!(described.starts_with("a?b?c??d??x"));
        assert_eq!(described.chars().count(), MAX_DESCRIPTION_LEN);
        assert!(
            described
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        );
        // The header stays a single well-formed line.
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(challenge.matches('"').count(), 6);
    }

    #[test]
    fn codes_and_statuses() {
        assert_eq!(
            ErrorCode::UnsupportedTokenType.as_str(),
            "unsupported_token_type"
        );
        assert_eq!(ErrorCode::InvalidRequestUri.as_str(), "invalid_request_uri");
        assert_eq!(
            ErrorCode::TemporarilyUnavailable.default_status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
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
                .with_status(StatusCode::FOUND)
                .status,
            StatusCode::FOUND
        );
    }
}
