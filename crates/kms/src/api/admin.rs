//! The KMS's routes on the admin listener (mTLS outside `--dev`): barrier key rotation.
//! `POST /admin/v1/barrier/rotate-root` makes a new root key; `POST
//! /admin/v1/barrier/rotate-intermediate` a new intermediate key for every tenant. Both are
//! audited, whether they succeed or not. `GET /admin/v1/crypto` reports the cryptographic module
//! (AWS-LC or AWS-LC FIPS, its version, FIPS mode) and the TLS policy.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use cryptoutil_server::Problem;
use cryptoutil_tls::CryptoModule;
use serde_json::json;

use super::Keys;
use crate::audit::{AuditEvent, BarrierOperation, Operation, Outcome};
use crate::barrier::BarrierError;
use crate::repository::StoreError;

/// Path of the root key rotation.
pub const ROTATE_ROOT_PATH: &str = "/admin/v1/barrier/rotate-root";
/// Path of the intermediate key rotation.
pub const ROTATE_INTERMEDIATE_PATH: &str = "/admin/v1/barrier/rotate-intermediate";
/// Path of the cryptographic module report.
pub const CRYPTO_PATH: &str = "/admin/v1/crypto";

/// The admin routes, added to the shared admin listener.
pub fn router(keys: Arc<Keys>) -> Router {
    Router::new()
        .route(ROTATE_ROOT_PATH, post(rotate_root))
        .route(ROTATE_INTERMEDIATE_PATH, post(rotate_intermediate))
        .route(CRYPTO_PATH, get(crypto))
        .with_state(keys)
}

/// The cryptographic module the process runs on and its TLS policy (`cryptoutil version
/// --verbose` prints the same).
async fn crypto() -> axum::Json<CryptoModule> {
    axum::Json(CryptoModule::current())
}

async fn rotate_root(
    State(keys): State<Arc<Keys>>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let result = keys.barrier().rotate_root().await;
    let (kid, outcome) = match &result {
        Ok(kid) => (Some(*kid), Outcome::Success),
        Err(e) => (None, barrier_outcome(e)),
    };
    keys.audit_sink().record(&AuditEvent::new(
        Operation::Barrier(BarrierOperation::RotateRoot { root_kid: kid }),
        outcome,
    ));
    let kid = result.map_err(rotation_problem)?;
    Ok(axum::Json(json!({ "root_kid": kid })))
}

async fn rotate_intermediate(
    State(keys): State<Arc<Keys>>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let result = keys.barrier().rotate_intermediate(None).await;
    let (count, outcome) = match &result {
        Ok(kids) => (kids.len(), Outcome::Success),
        Err(e) => (0, barrier_outcome(e)),
    };
    keys.audit_sink().record(&AuditEvent::new(
        Operation::Barrier(BarrierOperation::RotateIntermediate { count }),
        outcome,
    ));
    let kids = result.map_err(|e| {
        tracing::error!(error = %e, "intermediate key rotation failed");
        Problem::unavailable("intermediate key rotation failed; see the server log")
    })?;
    Ok(axum::Json(json!({ "intermediate_kids": kids })))
}

/// How a failed rotation ends in the audit trail.
fn barrier_outcome(e: &BarrierError) -> Outcome<'static> {
    match e {
        BarrierError::InvalidUnsealKeys(_) | BarrierError::WrongUnsealKeys(_) => {
            Outcome::Refused("unseal keys")
        }
        BarrierError::Store(StoreError::Unavailable(_)) => Outcome::Failed("unavailable"),
        _ => Outcome::Failed("internal"),
    }
}

/// Rotation failures: the operator can fix a missing unseal key (409) or wait for the database
/// (503); anything else is logged and reported as 500.
fn rotation_problem(e: BarrierError) -> Problem {
    match e {
        BarrierError::InvalidUnsealKeys(m) | BarrierError::WrongUnsealKeys(m) => {
            Problem::new(StatusCode::CONFLICT).with_detail(m)
        }
        BarrierError::Store(StoreError::Unavailable(_)) => {
            Problem::unavailable("the database is unavailable; nothing was rotated")
        }
        other => {
            tracing::error!(error = %other, "barrier rotation failed");
            Problem::internal()
        }
    }
}
