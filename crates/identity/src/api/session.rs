//! Server-side browser sessions: the cookie carries a random id, the database its hash.

use axum::http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::model::Session;
use crate::provider::Provider;
use crate::storage::StoreError;
use crate::tokens;

/// The session cookie. `__Host-` binds it to this origin, `Secure` and path `/`.
pub const COOKIE: &str = "__Host-cryptoutil-identity";

/// The session cookie's value from the request, if any.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    cryptoutil_server::middleware::request_cookie(headers, COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The live session of the request.
pub async fn load(
    provider: &Provider,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Option<Session>, StoreError> {
    match cookie_value(headers) {
        Some(value) => {
            provider
                .store()
                .session(&tokens::secret_hash(value), now)
                .await
        }
        None => Ok(None),
    }
}

/// A new session (not yet stored) and the cookie that names it.
pub fn create(
    provider: &Provider,
    now: OffsetDateTime,
) -> Result<(Session, HeaderValue), tokens::TokenError> {
    let value = tokens::opaque_secret()?;
    let lifetime = provider.lifetimes().session;
    let session = Session {
        id_hash: tokens::secret_hash(&value),
        user_id: None,
        auth_time: None,
        pending_request: None,
        csrf_token: tokens::opaque_secret()?,
        expires_at: now + lifetime,
    };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        lifetime.whole_seconds()
    );
    let cookie = HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""));
    Ok((session, cookie))
}

/// True when `presented` equals the session's CSRF token (constant time).
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf_token.as_bytes())))
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-cryptoutil-identity=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}
