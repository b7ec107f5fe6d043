//! Dynamic client registration over HTTP: `POST /oauth2/v1/register` (RFC 7591) and
//! `GET`/`PUT`/`DELETE /oauth2/v1/register/{client_id}` (RFC 7592). The logic is
//! [`crate::registration::RegistrationService`]; here only the bearer token, the body and the
//! answers: 201/200 JSON with `Cache-Control: no-store`, 400 `{"error","error_description"}`
//! with the RFC 7591 §3.2.2 codes, 401 with `WWW-Authenticate: Bearer error="invalid_token"`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::registration::{RegistrationError, RegistrationService};

/// The bearer token of `Authorization: Bearer <token>` (scheme case-insensitive), if any. A
/// malformed header counts as no token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn error_response(e: RegistrationError) -> Response {
    let error = |status, code: &str, description: &str| {
        json_response(
            status,
            &json!({"error": code, "error_description": description}),
        )
    };
    match e {
        RegistrationError::Metadata(e) => {
            error(StatusCode::BAD_REQUEST, e.code.as_str(), &e.description)
        }
        RegistrationError::InvalidToken(why) => {
            let mut response = error(StatusCode::UNAUTHORIZED, "invalid_token", why);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
        RegistrationError::Disabled | RegistrationError::NotFound => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "dynamic client registration is not enabled",
        ),
        RegistrationError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid_request", &m),
        RegistrationError::Store(e) => {
            tracing::error!(error = %e, "client registration failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "storage failed",
            )
        }
        RegistrationError::Internal(e) => {
            tracing::error!(error = %e, "client registration failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
    }
}

fn answer(status: StatusCode, result: Result<Map<String, Value>, RegistrationError>) -> Response {
    match result {
        Ok(doc) => json_response(status, &Value::Object(doc)),
        Err(e) => error_response(e),
    }
}

/// A body that could not be read (too large for the listener …) is refused metadata.
fn unreadable_body() -> Response {
    error_response(RegistrationError::Metadata(
        crate::registration::MetadataError::metadata("the request body could not be read"),
    ))
}

/// `POST /oauth2/v1/register`.
pub async fn register(
    State(registration): State<Arc<RegistrationService>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return unreadable_body();
    };
    let result = registration
        .register(bearer(&headers), &body, OffsetDateTime::now_utc())
        .await;
    answer(StatusCode::CREATED, result)
}

/// `GET /oauth2/v1/register/{client_id}`.
pub async fn read(
    State(registration): State<Arc<RegistrationService>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        StatusCode::OK,
        registration.read(&client_id, bearer(&headers)).await,
    )
}

/// `PUT /oauth2/v1/register/{client_id}`.
pub async fn update(
    State(registration): State<Arc<RegistrationService>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return unreadable_body();
    };
    let result = registration
        .update(
            &client_id,
            bearer(&headers),
            &body,
            OffsetDateTime::now_utc(),
        )
        .await;
    answer(StatusCode::OK, result)
}

/// `DELETE /oauth2/v1/register/{client_id}`: 204.
pub async fn remove(
    State(registration): State<Arc<RegistrationService>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match registration.delete(&client_id, bearer(&headers)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer(&headers).map(str::to_owned)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
