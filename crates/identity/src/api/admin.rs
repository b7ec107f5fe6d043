//! Client administration on the admin listener (127.0.0.1 by default, mutual TLS in
//! production): register, rotate a secret, delete. Secrets are generated here and returned once.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use cryptoutil_server::{ClientCertificate, Problem};
use serde_json::json;
use time::OffsetDateTime;

use super::state::AppState;
use crate::account::AccountService;
use crate::registration::{RegistrationError as RegistrationError2, RegistrationService};
use crate::services::{ClientRegistration, ClientService, RegistrationError, SigningKeyService};

/// `POST /admin/v1/clients`, `POST /admin/v1/clients/{client_id}/secret`,
/// `DELETE /admin/v1/clients/{client_id}`, `POST /admin/v1/signing-keys/rotate`;
/// `POST`/`GET /admin/v1/initial-access-tokens`, `DELETE /admin/v1/initial-access-tokens/{id}`
/// (dynamic registration's initial access tokens, RFC 7591 §3);
/// `DELETE /admin/v1/users/{username}/factors` (removes every second factor of a user and ends
/// their sessions, audited).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/v1/clients", post(register))
        .route("/admin/v1/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/v1/clients/{client_id}", delete(remove))
        .route("/admin/v1/signing-keys/rotate", post(rotate_signing_key))
        .route(
            "/admin/v1/initial-access-tokens",
            post(create_initial_access_token).get(list_initial_access_tokens),
        )
        .route(
            "/admin/v1/initial-access-tokens/{id}",
            delete(revoke_initial_access_token),
        )
        .route("/admin/v1/users/{username}/factors", delete(reset_factors))
        .with_state(state)
}

fn problem(e: RegistrationError) -> Response {
    match e {
        RegistrationError::Invalid(m) => Problem::bad_request(m).into_response(),
        RegistrationError::Conflict(m) => Problem::new(StatusCode::CONFLICT)
            .with_detail(m)
            .into_response(),
        RegistrationError::NotFound => Problem::not_found()
            .with_detail("no such client")
            .into_response(),
        RegistrationError::Store(e) => {
            tracing::error!(error = %e, "client administration failed");
            Problem::unavailable("storage failed").into_response()
        }
        RegistrationError::Internal(e) => {
            tracing::error!(error = %e, "client administration failed");
            Problem::internal().into_response()
        }
    }
}

async fn register(
    State(clients): State<Arc<ClientService>>,
    body: Result<axum::Json<ClientRegistration>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(axum::Json(registration)) = body else {
        return Problem::bad_request("the body must be a JSON client registration").into_response();
    };
    match clients
        .register(registration, OffsetDateTime::now_utc())
        .await
    {
        Ok((client, secret)) => {
            tracing::info!(client_id = %client.client_id, "client registered");
            (
                StatusCode::CREATED,
                axum::Json(json!({
                    "client_id": client.client_id,
                    "auth_method": client.metadata.token_endpoint_auth_method,
                    "client_secret": secret,
                })),
            )
                .into_response()
        }
        Err(e) => problem(e),
    }
}

async fn rotate_secret(
    State(clients): State<Arc<ClientService>>,
    Path(client_id): Path<String>,
) -> Response {
    match clients
        .rotate_secret(&client_id, OffsetDateTime::now_utc())
        .await
    {
        Ok(secret) => {
            tracing::info!(%client_id, "client secret rotated");
            axum::Json(json!({"client_id": client_id, "client_secret": secret})).into_response()
        }
        Err(e) => problem(e),
    }
}

async fn remove(
    State(clients): State<Arc<ClientService>>,
    Path(client_id): Path<String>,
) -> Response {
    match clients.delete(&client_id).await {
        Ok(()) => {
            tracing::info!(%client_id, "client deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => problem(e),
    }
}

/// Adds a new signing key at once (an administrative rotation, e.g. after a suspected
/// compromise of the old key's record). Every instance serves it in its JWKS within a second
/// and it signs from `activates_at`; the previous key stays published for the overlap.
async fn rotate_signing_key(State(signing): State<Arc<SigningKeyService>>) -> Response {
    let now = OffsetDateTime::now_utc();
    match signing.rotate(now).await {
        Ok(rotated) => {
            tracing::info!(kid = %rotated.kid, "signing key rotated by the administrator");
            axum::Json(json!({
                "kid": rotated.kid,
                "activates_at": rotated.activates_at,
                "signing_kid": rotated.signing_kid,
            }))
            .into_response()
        }
        Err(crate::signing::SigningError::Store(e)) => {
            tracing::error!(error = %e, "signing key rotation failed");
            Problem::unavailable("storage failed").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "signing key rotation failed");
            Problem::internal().into_response()
        }
    }
}

/// `POST /admin/v1/initial-access-tokens`: `{"max_clients": n, "expires_in": seconds}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInitialAccessToken {
    /// Most clients the token may register (default 1).
    #[serde(default = "one")]
    max_clients: i64,
    /// Lifetime in seconds (default 1 day).
    #[serde(default = "one_day")]
    expires_in: i64,
}

fn one() -> i64 {
    1
}

fn one_day() -> i64 {
    24 * 3600
}

fn registration_problem(e: RegistrationError2) -> Response {
    match e {
        RegistrationError2::Invalid(m) => Problem::bad_request(m).into_response(),
        RegistrationError2::NotFound => Problem::not_found()
            .with_detail("no such initial access token")
            .into_response(),
        RegistrationError2::Store(e) => {
            tracing::error!(error = %e, "initial access token administration failed");
            Problem::unavailable("storage failed").into_response()
        }
        other => {
            tracing::error!(error = %other, "initial access token administration failed");
            Problem::internal().into_response()
        }
    }
}

/// Creates an initial access token; its value is in this answer only.
async fn create_initial_access_token(
    State(registration): State<Arc<RegistrationService>>,
    body: Result<axum::Json<NewInitialAccessToken>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(axum::Json(request)) = body else {
        return Problem::bad_request(
            "the body must be JSON: {\"max_clients\": n, \"expires_in\": seconds}",
        )
        .into_response();
    };
    let now = OffsetDateTime::now_utc();
    match registration
        .create_initial_access_token(
            request.max_clients,
            time::Duration::seconds(request.expires_in),
            now,
        )
        .await
    {
        Ok((token, value)) => {
            tracing::info!(id = %token.id, max_clients = token.max_clients, "initial access token created");
            let mut body = serde_json::to_value(&token).unwrap_or_default();
            body["initial_access_token"] = value.into();
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => registration_problem(e),
    }
}

/// Lists the initial access tokens (never their values).
async fn list_initial_access_tokens(
    State(registration): State<Arc<RegistrationService>>,
) -> Response {
    match registration.initial_access_tokens().await {
        Ok(tokens) => axum::Json(json!({ "initial_access_tokens": tokens })).into_response(),
        Err(e) => registration_problem(e),
    }
}

/// Revokes an initial access token (the clients it registered stay).
async fn revoke_initial_access_token(
    State(registration): State<Arc<RegistrationService>>,
    Path(id): Path<String>,
) -> Response {
    match registration
        .revoke_initial_access_token(&id, OffsetDateTime::now_utc())
        .await
    {
        Ok(()) => {
            tracing::info!(%id, "initial access token revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => registration_problem(e),
    }
}

/// Who called the admin API, for the audit trail: the subject of the client certificate
/// (mutual TLS, required outside `--dev`), else `admin`.
fn admin_name(certificate: Option<&ClientCertificate>) -> String {
    certificate
        .and_then(|chain| chain.0.first())
        .and_then(|leaf| cryptoutil_tls::CertInfo::from_der(leaf).ok())
        .map(|info| info.subject)
        .filter(|subject| !subject.is_empty())
        .unwrap_or_else(|| "admin".to_owned())
}

/// Removes every second factor of the user (TOTP, recovery codes, passkeys) and ends their
/// sessions: the way back for a user who lost their factors.
/// `{"username", "removed": n, "sessions_ended": n}`; an unknown user is a 404 problem.
async fn reset_factors(
    State(account): State<Arc<AccountService>>,
    certificate: Option<Extension<ClientCertificate>>,
    Path(username): Path<String>,
) -> Response {
    if username.is_empty() || username.len() > crate::rules::MAX_NAME_LEN {
        return Problem::not_found()
            .with_detail("no such user")
            .into_response();
    }
    let admin = admin_name(certificate.as_ref().map(|Extension(c)| c));
    match account.reset_factors(&username, &admin).await {
        Ok(Some(reset)) => {
            tracing::info!(%username, removed = reset.removed, "factors reset by the administrator");
            axum::Json(json!({
                "username": username,
                "removed": reset.removed,
                "sessions_ended": reset.sessions_ended,
            }))
            .into_response()
        }
        Ok(None) => Problem::not_found()
            .with_detail("no such user")
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "factor reset failed");
            Problem::unavailable("storage failed").into_response()
        }
    }
}
