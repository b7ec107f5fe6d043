//! The session cookie: it carries a random id, the database its hash
//! ([`crate::signin::SignInService`]).

use axum::http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::signin::{BrowserSession, SignInService};
use crate::storage::StoreError;

/// The session cookie. `__Host-` binds it to this origin, `Secure` and path `/`.
pub const COOKIE: &str = "__Host-cryptoutil-identity";

/// The session cookie's value from the request, if any.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    cryptoutil_server::middleware::request_cookie(headers, COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The live session of the request.
pub async fn load(
    sign_in: &SignInService,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Option<BrowserSession>, StoreError> {
    match cookie_value(headers) {
        Some(value) => sign_in.load(value, now).await,
        None => Ok(None),
    }
}

/// The `Set-Cookie` value naming a new session.
pub fn set_cookie(sign_in: &SignInService, value: &str) -> HeaderValue {
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        sign_in.session_lifetime().whole_seconds()
    );
    HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-cryptoutil-identity=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}
