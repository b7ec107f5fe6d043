//! HTTP endpoints (SPEC §4). Handlers are thin: they parse the request, call the one service
//! they need ([`crate::services`], [`crate::signin`]; never the store) and shape the response.
//!
//! - [`discovery`]: `/.well-known/*`, JWKS.
//! - [`protocol`]: token, introspection, revocation, PAR, userinfo (JSON, RFC 6749 errors).
//! - [`authorize`], [`login`], [`consent`]: the authorization endpoint and the pages it hands
//!   the browser to (HTML); the logic is [`crate::signin::flow`].
//! - [`logout`]: RP-initiated logout.
//! - [`device`]: the device authorization endpoint and the device verification pages
//!   (RFC 8628).
//! - [`second_factor`]: the second-factor page after the password (TOTP, recovery code,
//!   passkey button).
//! - [`account`]: the signed-in user's account pages (`/account`).
//! - [`passkey`]: the passkey script and passkey sign-in (passwordless or second factor).
//! - [`admin`]: client registration and secret rotation on the admin listener.
//! - [`registration`]: dynamic client registration (RFC 7591) and management (RFC 7592),
//!   under the `registration` rate limit.
//! - [`extract`]: form and query extractors whose rejections are `invalid_request`;
//!   `oauth_error`: OAuth errors as responses.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod extract;
mod html;
mod interaction;
pub mod login;
pub mod logout;
mod oauth_error;
pub mod passkey;
pub mod protocol;
pub mod registration;
pub mod resume;
pub mod second_factor;
mod session_cookie;
mod state;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use cryptoutil_server::surface::{RateLimit, cross_origin};

use crate::config::RateLimitsSettings;
use crate::paths;

pub use state::{AppState, ClientAddr};

/// The protocol endpoints a single-page app may call cross-origin.
pub const CROSS_ORIGIN_PATHS: [&str; 7] = [
    paths::OPENID_CONFIGURATION,
    paths::OAUTH_AUTHORIZATION_SERVER,
    paths::JWKS,
    paths::WELL_KNOWN_JWKS,
    paths::TOKEN,
    paths::REVOKE,
    paths::USERINFO,
];

/// The rate-limit refusal of the pages: an HTML page (429 and `Retry-After` are added).
fn pages_refusal(retry_after_secs: u64) -> Response {
    html::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Too many requests from your network. Please wait {retry_after_secs} seconds and \
             try again."
        ),
    )
}

/// The public router of the Identity server: the pages (authorize, login, consent, logout)
/// under the `pages` rate limit; the protocol endpoints under the `protocol` one; CORS without
/// credentials for `cors_origins` on [`CROSS_ORIGIN_PATHS`] only.
pub fn router(
    state: AppState,
    rate_limits: &RateLimitsSettings,
    cors_origins: &[url::Url],
) -> Router {
    let pages = Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            paths::LOGIN,
            get(login::login_page).post(login::login_submit),
        )
        .route(
            paths::CONSENT,
            get(consent::consent_page).post(consent::consent_submit),
        )
        .route(
            paths::LOGOUT,
            get(logout::logout_get).post(logout::logout_post),
        )
        .route(
            paths::DEVICE,
            get(device::device_page).post(device::device_submit),
        )
        .route(paths::ACCOUNT, get(account::overview::account_page))
        .route(
            paths::ACCOUNT_PASSWORD,
            get(account::password::password_form).post(account::password::password_submit),
        )
        .route(
            paths::ACCOUNT_SESSIONS,
            get(account::sessions::sessions_page).post(account::sessions::end_other_sessions),
        )
        .route(
            &format!("{}/{{id}}/end", paths::ACCOUNT_SESSIONS),
            post(account::sessions::end_session),
        )
        .route(paths::PASSKEY_SCRIPT, get(passkey::script))
        .route(
            paths::LOGIN_PASSKEY,
            get(passkey::login_options).post(passkey::login_submit),
        )
        .route(
            paths::ACCOUNT_PASSKEYS,
            get(account::passkeys::passkeys_get).post(account::passkeys::passkeys_add),
        )
        .route(
            &format!("{}/options", paths::ACCOUNT_PASSKEYS),
            get(account::passkeys::creation_options),
        )
        .route(
            &format!("{}/{{id}}/rename", paths::ACCOUNT_PASSKEYS),
            post(account::passkeys::passkeys_rename),
        )
        .route(
            &format!("{}/{{id}}/remove", paths::ACCOUNT_PASSKEYS),
            post(account::passkeys::passkeys_remove),
        )
        .route(paths::LOGIN_CONTINUE, post(resume::continue_submit))
        .route(
            paths::LOGIN_SECOND_FACTOR,
            get(second_factor::second_factor_page).post(second_factor::second_factor_submit),
        )
        .route(
            paths::ACCOUNT_TOTP,
            get(account::totp::totp_page).post(account::totp::totp_confirm),
        )
        .route(
            &format!("{}/remove", paths::ACCOUNT_TOTP),
            post(account::totp::totp_remove),
        )
        .route(
            paths::ACCOUNT_RECOVERY_CODES,
            post(account::recovery_codes::regenerate),
        )
        .with_state(state.clone());
    let cross_origin_routes = Router::new()
        .route(
            paths::OPENID_CONFIGURATION,
            get(discovery::openid_configuration),
        )
        .route(
            paths::OAUTH_AUTHORIZATION_SERVER,
            get(discovery::oauth_authorization_server),
        )
        .route(paths::JWKS, get(discovery::jwks))
        .route(paths::WELL_KNOWN_JWKS, get(discovery::jwks))
        .route(paths::TOKEN, post(protocol::token))
        .route(paths::REVOKE, post(protocol::revoke))
        .route(
            paths::USERINFO,
            get(protocol::userinfo_get).post(protocol::userinfo_post),
        )
        .with_state(state.clone());
    let registration_routes = Router::new()
        .route(paths::REGISTER, post(registration::register))
        .route(
            &format!("{}/{{client_id}}", paths::REGISTER),
            get(registration::read)
                .put(registration::update)
                .delete(registration::remove),
        )
        .with_state(state.clone());
    let back_channel = Router::new()
        .route(paths::INTROSPECT, post(protocol::introspect))
        .route(paths::PAR, post(protocol::par))
        .route(
            paths::DEVICE_AUTHORIZATION,
            post(device::device_authorization),
        )
        .with_state(state);
    let page_limit = RateLimit::new(&rate_limits.pages).refusing_with(pages_refusal);
    let protocol_limit = RateLimit::new(&rate_limits.protocol);
    let registration_limit = RateLimit::new(&rate_limits.registration);
    page_limit
        .apply(pages)
        .merge(protocol_limit.apply(back_channel))
        .merge(registration_limit.apply(registration_routes))
        .merge(cross_origin(
            protocol_limit.apply(cross_origin_routes),
            &CROSS_ORIGIN_PATHS,
            cors_origins,
            false,
        ))
}
