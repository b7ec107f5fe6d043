//! The admin listener's routes (SPEC §2): liveness, readiness, shutdown, certificate reload and
//! the recent audit events.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::audit;
use crate::health::{ReadinessCheck, run_checks};
use crate::problem::Problem;

/// Reloads the server certificate: `Ok(description of the new certificate)` or `Err(reason)`
/// (the old certificate stays in use).
pub type ReloadFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    checks: Arc<[ReadinessCheck]>,
    check_timeout: Duration,
    shutdown: CancellationToken,
    reload: Option<ReloadFn>,
}

/// The admin router: the standard routes plus the product's own (`extra`).
pub(crate) fn router(
    checks: Vec<ReadinessCheck>,
    shutdown: CancellationToken,
    reload: Option<ReloadFn>,
    extra: Router,
) -> Router {
    let state = AdminState {
        checks: checks.into(),
        check_timeout: Duration::from_secs(5),
        shutdown,
        reload,
    };
    Router::new()
        .route("/admin/v1/livez", get(livez))
        .route("/admin/v1/readyz", get(readyz))
        .route("/admin/v1/shutdown", post(shutdown_now))
        .route("/admin/v1/reload-certs", post(reload_certs))
        .route("/admin/v1/audit", get(audit_events))
        .with_state(state)
        .merge(extra)
}

async fn livez() -> Response {
    axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
}

/// `GET /admin/v1/audit?after=SEQ&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Events after this position (default 0: from the oldest kept).
    #[serde(default)]
    after: u64,
    /// At most this many (default 100, capped at [`audit::MAX_PAGE`]).
    limit: Option<usize>,
}

/// The process's recent audit events, oldest first ([`audit::AuditPage`]).
async fn audit_events(
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query {
        Ok(Query(q)) => axum::Json(audit::read(q.after, q.limit.unwrap_or(100))).into_response(),
        Err(rejection) => Problem::from(rejection).into_response(),
    }
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let report = run_checks(&state.checks, state.check_timeout).await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn shutdown_now(State(state): State<AdminState>) -> Response {
    tracing::info!("shutdown requested through the admin API");
    state.shutdown.cancel();
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "shutting down"})),
    )
        .into_response()
}

async fn reload_certs(State(state): State<AdminState>) -> Response {
    let Some(reload) = state.reload else {
        return Problem::new(StatusCode::CONFLICT)
            .with_detail("this server has no reloadable certificate files")
            .into_response();
    };
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(description)) => {
            axum::Json(json!({"status": "reloaded", "certificate": description})).into_response()
        }
        Ok(Err(reason)) => Problem::new(StatusCode::CONFLICT)
            .with_title("Certificate reload refused")
            .with_detail(format!("the previous certificate stays in use: {reason}"))
            .into_response(),
        Err(_) => Problem::internal().into_response(),
    }
}
