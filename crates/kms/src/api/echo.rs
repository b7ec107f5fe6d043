//! `POST /service/api/v1/echo`: the load harness's ceiling (`cargo xtask bench-load`).
//!
//! Mounted only when `benchmark.echo: true` (off by default), on the service surface only. It
//! passes every layer an operation passes (no-store, allowlist, rate limit, authentication, the
//! `kms:encrypt` scope check) and returns the body unchanged: no key lookup, no cryptography, so
//! the encrypt scenarios can be compared with the same request minus the key service.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cryptoutil_server::Problem;

use super::Caller;
use super::handlers::OCTET_STREAM;
use crate::keys::KeyError;
use crate::scopes::{self, ECHO_PATH, ECHO_SCOPE};

/// The echo route (add it before the authentication layer).
pub fn router() -> Router {
    Router::new().route(ECHO_PATH, post(echo))
}

/// Returns the body as `application/octet-stream`.
async fn echo(Caller(who): Caller, body: Bytes) -> Result<Response, Problem> {
    scopes::require(&who, ECHO_SCOPE).map_err(KeyError::from)?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))],
        body,
    )
        .into_response())
}
