//! HTTP endpoints (SPEC §4). Handlers are thin: they parse the request, call the
//! [`Provider`](crate::provider::Provider) and shape the response.
//!
//! - [`discovery`]: `/.well-known/*`, JWKS.
//! - [`protocol`]: token, introspection, revocation, PAR, userinfo (JSON, RFC 6749 errors).
//! - [`authorize`]: the authorization endpoint and the login and consent pages (HTML).
//! - [`admin`]: client registration and secret rotation on the admin listener.

pub mod admin;
pub mod authorize;
pub mod discovery;
mod html;
pub mod logout;
pub mod paths;
pub mod protocol;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::provider::Provider;

/// Shared handler state.
pub type AppState = Arc<Provider>;

/// The public router of the Identity server.
pub fn router(provider: AppState) -> Router {
    Router::new()
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
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            paths::LOGIN,
            get(authorize::login_page).post(authorize::login_submit),
        )
        .route(
            paths::CONSENT,
            get(authorize::consent_page).post(authorize::consent_submit),
        )
        .route(
            paths::LOGOUT,
            get(logout::logout_get).post(logout::logout_post),
        )
        .route(paths::TOKEN, axum::routing::post(protocol::token))
        .route(paths::INTROSPECT, axum::routing::post(protocol::introspect))
        .route(paths::REVOKE, axum::routing::post(protocol::revoke))
        .route(paths::PAR, axum::routing::post(protocol::par))
        .route(
            paths::USERINFO,
            get(protocol::userinfo_get).post(protocol::userinfo_post),
        )
        .with_state(provider)
}
