//! Client administration on the admin listener (127.0.0.1 by default, mutual TLS in
//! production): register, rotate a secret, delete. Secrets are generated here and returned once.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use cryptoutil_server::Problem;
use serde_json::json;
use time::OffsetDateTime;

use super::state::AppState;
use crate::services::{ClientRegistration, ClientService, RegistrationError, SigningKeyService};

/// `POST /admin/v1/clients`, `POST /admin/v1/clients/{client_id}/secret`,
/// `DELETE /admin/v1/clients/{client_id}`, `POST /admin/v1/signing-keys/rotate`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/v1/clients", post(register))
        .route("/admin/v1/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/v1/clients/{client_id}", delete(remove))
        .route("/admin/v1/signing-keys/rotate", post(rotate_signing_key))
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
