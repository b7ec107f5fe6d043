//! Double-submit CSRF protection for the browser surface.
//!
//! `GET <prefix>/csrf-token` answers `{"csrf_token": "<token>"}` and sets the cookie
//! `__Host-csrf=<token>; Path=/; Secure; HttpOnly; SameSite=Strict`. Pages read the token from the
//! body (so the cookie can stay `HttpOnly`) and send it back as `X-CSRF-Token` on every unsafe
//! request; the browser adds the cookie by itself. A page on another site can neither read the
//! body nor set a `__Host-` cookie for this host, so it cannot produce a matching pair.
//!
//! A request carrying a well-formed token cookie gets the same token back, so several tabs (and
//! Swagger UI's one-time fetch) keep working together.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::problem::Problem;

/// The request header that carries the token.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// The cookie that carries the token.
pub const CSRF_COOKIE: &str = "__Host-csrf";
/// Random bytes per token.
const TOKEN_BYTES: usize = 32;
/// Characters of a token: 32 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

/// The body of `GET <prefix>/csrf-token`.
#[derive(Debug, Serialize)]
pub struct CsrfTokenResponse {
    /// Send this value as the `X-CSRF-Token` header on POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
}

/// Handler of `GET <prefix>/csrf-token`.
pub(crate) async fn issue_token(headers: HeaderMap) -> Response {
    let token = match cookie_token(&headers) {
        Some(existing) => existing.to_owned(),
        None => match new_token() {
            Some(token) => token,
            None => return Problem::internal().into_response(),
        },
    };
    let cookie = format!("{CSRF_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return Problem::internal().into_response();
    };
    let mut response = Json(CsrfTokenResponse { csrf_token: token }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// 32 random bytes from aws-lc-rs, base64url without padding.
fn new_token() -> Option<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The token cookie of a request, when present and well formed.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    crate::middleware::request_cookie(headers, CSRF_COOKIE).filter(|value| is_well_formed(value))
}

/// Whether the header token matches the cookie token (constant time on the token bytes).
fn tokens_match(headers: &HeaderMap) -> bool {
    let Some(cookie) = cookie_token(headers) else {
        return false;
    };
    let Some(sent) = headers.get(&CSRF_HEADER).map(HeaderValue::as_bytes) else {
        return false;
    };
    sent.len() == cookie.len() && bool::from(sent.ct_eq(cookie.as_bytes()))
}

/// Methods that change state and so need the token.
fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Middleware: unsafe methods need `X-CSRF-Token` equal to the `__Host-csrf` cookie, else 403
/// problem `csrf_token_invalid`.
pub(crate) async fn require_token(request: Request, next: Next) -> Response {
    if is_unsafe(request.method()) && !tokens_match(request.headers()) {
        return Problem::new(StatusCode::FORBIDDEN)
            .with_detail(
                "missing or wrong X-CSRF-Token header: fetch GET /browser/api/v1/csrf-token and send its csrf_token value as X-CSRF-Token",
            )
            .with_extension("error", "csrf_token_invalid")
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn headers(cookie: Option<&str>, sent: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        if let Some(s) = sent {
            h.insert(CSRF_HEADER, HeaderValue::from_str(s).unwrap());
        }
        h
    }

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed(&a), "{a}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), TOKEN_BYTES);
    }

    #[test]
    fn cookie_parsing_finds_the_token_among_others() {
        let t = new_token().unwrap();
        let h = headers(Some(&format!("a=1; {CSRF_COOKIE}={t}; b=2")), None);
        assert_eq!(cookie_token(&h), Some(t.as_str()));
        let h = headers(Some("__Host-csrf=short"), None);
        assert_eq!(cookie_token(&h), None, "malformed cookies are ignored");
        let h = headers(Some("x__Host-csrf=abc"), None);
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn matching_needs_both_and_equality() {
        let t = new_token().unwrap();
        let other = new_token().unwrap();
        let cookie = format!("{CSRF_COOKIE}={t}");
        assert!(tokens_match(&headers(Some(&cookie), Some(&t))));
        assert!(!tokens_match(&headers(Some(&cookie), Some(&other))));
        assert!(!tokens_match(&headers(Some(&cookie), None)));
        assert!(!tokens_match(&headers(None, Some(&t))));
        assert!(!tokens_match(&headers(Some(&cookie), Some(&t[..42]))));
    }

    #[test]
    fn safe_and_unsafe_methods() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(!is_unsafe(&m));
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_unsafe(&m));
        }
    }
}
