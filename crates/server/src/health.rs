//! Readiness checks: each dependency is checked concurrently, with a time limit.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What a check future resolves to: `Ok(note)` when healthy, `Err(reason)` otherwise.
pub type CheckResult = Result<String, String>;

type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync;

/// One named dependency check (database, barrier, upstream JWKS, telemetry exporter).
#[derive(Clone)]
pub struct ReadinessCheck {
    name: String,
    required: bool,
    run: Arc<CheckFn>,
}

impl std::fmt::Debug for ReadinessCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessCheck")
            .field("name", &self.name)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl ReadinessCheck {
    /// A check the server cannot be ready without.
    pub fn required<F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            required: true,
            run: Arc::new(move || Box::pin(run())),
        }
    }

    /// A check that is reported but does not make the server unready (e.g. the telemetry exporter).
    pub fn optional<F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        Self {
            required: false,
            ..Self::required(name, run)
        }
    }
}

/// The outcome of one check, as rendered by `/admin/v1/readyz`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    /// `ok` or `fail`.
    pub status: &'static str,
    /// Whether a failure makes the server unready.
    pub required: bool,
    /// A short note or the reason for failure.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// How long the check took.
    pub duration_ms: u64,
}

/// The `/admin/v1/readyz` document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadinessReport {
    /// `ok` when every required check passed, `degraded` otherwise.
    pub status: &'static str,
    /// Each check by name.
    pub checks: BTreeMap<String, CheckReport>,
    /// The server's version.
    pub version: &'static str,
}

impl ReadinessReport {
    /// Whether every required check passed.
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }
}

/// Runs all checks concurrently, each bounded by `timeout`.
pub async fn run_checks(checks: &[ReadinessCheck], timeout: Duration) -> ReadinessReport {
    let runs = checks.iter().map(|check| async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, (check.run)()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let report = match outcome {
            Ok(detail) => CheckReport {
                status: "ok",
                required: check.required,
                detail,
                duration_ms,
            },
            Err(detail) => CheckReport {
                status: "fail",
                required: check.required,
                detail,
                duration_ms,
            },
        };
        (check.name.clone(), report)
    });
    let checks: BTreeMap<_, _> = futures::future::join_all(runs).await.into_iter().collect();
    let ready = checks.values().all(|c| c.status == "ok" || !c.required);
    ReadinessReport {
        status: if ready { "ok" } else { "degraded" },
        checks,
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_concurrently_and_reports_failures() {
        // Each check waits for the other at a barrier: they can only pass if they run at once.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let meet = |barrier: Arc<tokio::sync::Barrier>| {
            move || {
                let barrier = barrier.clone();
                async move {
                    barrier.wait().await;
                    Ok::<_, String>(String::new())
                }
            }
        };
        let checks = vec![
            ReadinessCheck::required("a", meet(barrier.clone())),
            ReadinessCheck::required("b", meet(barrier)),
            ReadinessCheck::optional("telemetry", || async { Err("collector down".to_owned()) }),
        ];
        let report = run_checks(&checks, Duration::from_secs(10)).await;
        assert_eq!(report.checks["a"].status, "ok");
        assert_eq!(report.checks["b"].status, "ok");
        assert!(
            report.is_ready(),
            "an optional failure does not make the server unready"
        );
        assert_eq!(report.checks["telemetry"].status, "fail");

        let never = || std::future::pending::<CheckResult>();
        let report = run_checks(
            &[ReadinessCheck::required("db", never)],
            Duration::from_millis(50),
        )
        .await;
        assert!(!report.is_ready());
        assert_eq!(report.status, "degraded");
        assert!(report.checks["db"].detail.contains("no answer"));
    }
}
