//! The step runner: steps run in order against one [`RunContext`]; a step whose dependency failed
//! fails without running ("skipped: step 3 failed"); `--fail-fast` fails every step after the
//! first failure without running it. Nothing is ever counted as passed without having run.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument;

use crate::context::RunContext;
use crate::step_error::StepError;

/// What a passed step reports for `--verbose` (never secrets).
pub type Details = Vec<String>;

/// The future a step's function returns.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Details, StepError>> + Send + 'a>>;

/// One check of a demo.
#[derive(Clone, Copy)]
pub struct Step {
    /// Stable machine name, unique across all demos (`kms-create-key`).
    pub name: &'static str,
    /// What the step shows, for people (`Create an elastic key`).
    pub description: &'static str,
    /// The part of the demo it belongs to (`health`, `crypto`, `authorization-code`, …).
    pub phase: &'static str,
    /// Names of earlier steps whose results it uses; if one failed, this step fails unrun.
    pub needs: &'static [&'static str],
    /// The check itself.
    pub run: for<'a> fn(&'a mut RunContext) -> StepFuture<'a>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran and every check held.
    Passed,
    /// It ran and a check failed, or it could not run.
    Failed,
}

/// The result of one step, as `--output json` prints it (plus `description` and `details`,
/// which only the human output uses).
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// 1-based position.
    pub index: usize,
    /// Machine name.
    pub name: &'static str,
    /// For people.
    #[serde(skip)]
    pub description: &'static str,
    /// Part of the demo.
    pub phase: &'static str,
    /// Passed or failed.
    pub status: Status,
    /// Wall time of the step (0 for steps that did not run).
    pub duration_ms: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// `--verbose` lines.
    #[serde(skip)]
    pub details: Details,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `kms`, `identity`, `all`.
    pub demo: &'static str,
    /// Every step, in order, run or not.
    pub steps: Vec<StepResult>,
    /// Wall time of the run, server start-up included.
    pub duration: Duration,
}

impl Report {
    /// Steps that passed.
    pub fn passed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.status == Status::Passed)
            .count()
    }

    /// Steps that failed or did not run.
    pub fn failed(&self) -> usize {
        self.steps.len() - self.passed()
    }

    /// Every step passed (and there was at least one).
    pub fn success(&self) -> bool {
        !self.steps.is_empty() && self.failed() == 0
    }

    /// SPEC §6: 0 all steps passed; 1 some failed and some passed; 2 nothing passed.
    pub fn exit_code(&self) -> u8 {
        match (self.passed(), self.failed()) {
            (0, _) => 2,
            (_, 0) => 0,
            _ => 1,
        }
    }

    /// The one JSON document of `--output json` (SPEC §6).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "demo": self.demo,
            "success": self.success(),
            "total_steps": self.steps.len(),
            "passed_steps": self.passed(),
            "failed_steps": self.failed(),
            "duration_ms": millis(self.duration),
            "steps": self.steps,
        })
    }
}

/// A step's position and what it is, told to the output before it runs.
#[derive(Debug, Clone, Copy)]
pub struct StepStart {
    /// 1-based position.
    pub index: usize,
    /// Number of steps.
    pub total: usize,
    /// The step.
    pub step: Step,
}

/// Receives progress (the output formats implement it).
pub trait Observer {
    /// A step is about to run.
    fn step_started(&mut self, start: &StepStart);
    /// A step finished (or failed without running).
    fn step_finished(&mut self, result: &StepResult, total: usize);
}

/// How the runner handles failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop at the first failure: later steps fail without running.
    pub fail_fast: bool,
}

/// Runs `steps` in order. Every step appears in the report; a failed dependency or `--fail-fast`
/// makes a step fail without running.
pub async fn run(
    demo: &'static str,
    steps: &[Step],
    ctx: &mut RunContext,
    options: RunOptions,
    observer: &mut dyn Observer,
    started: Instant,
) -> Report {
    let total = steps.len();
    let mut results: Vec<StepResult> = Vec::with_capacity(total);
    let mut first_failure: Option<usize> = None;
    for (i, step) in steps.iter().enumerate() {
        let index = i + 1;
        let start = StepStart {
            index,
            total,
            step: *step,
        };
        observer.step_started(&start);
        let blocked = match (options.fail_fast, first_failure) {
            (true, Some(failed)) => Some(StepError::with_cause(
                format!("not run: --fail-fast stopped after step {failed} failed"),
                format!("step {failed} ({}) failed", steps[failed - 1].name),
            )),
            _ => unmet_dependency(step, &results),
        };
        let clock = Instant::now();
        let span = step_span(index, step);
        let outcome = match blocked {
            Some(error) => Err(error),
            None => (step.run)(ctx).instrument(span.clone()).await,
        };
        if outcome.is_err() {
            span.record("otel.status_code", "error");
        }
        let duration_ms = millis(clock.elapsed());
        let result = match outcome {
            Ok(details) => StepResult {
                index,
                name: step.name,
                description: step.description,
                phase: step.phase,
                status: Status::Passed,
                duration_ms,
                error: None,
                details,
            },
            Err(error) => {
                first_failure.get_or_insert(index);
                StepResult {
                    index,
                    name: step.name,
                    description: step.description,
                    phase: step.phase,
                    status: Status::Failed,
                    duration_ms,
                    error: Some(error),
                    details: Vec::new(),
                }
            }
        };
        observer.step_finished(&result, total);
        results.push(result);
    }
    Report {
        demo,
        steps: results,
        duration: started.elapsed(),
    }
}

/// The span of one step (`demo.step <name>`), parent of the servers' spans of the requests it
/// makes; [`tracing::Span::none`] when telemetry is off.
fn step_span(index: usize, step: &Step) -> tracing::Span {
    if !cryptoutil_telemetry::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "step",
        otel.name = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        demo.step.index = index,
        demo.step.name = step.name,
        demo.step.phase = step.phase,
    );
    span.record("otel.name", format!("demo.step {}", step.name));
    span
}

/// The error of a step whose dependency failed or is missing (a dependency must come earlier;
/// a misdeclared one fails the step rather than letting it run without its inputs).
fn unmet_dependency(step: &Step, done: &[StepResult]) -> Option<StepError> {
    for need in step.needs {
        match done.iter().find(|r| r.name == *need) {
            Some(r) if r.status == Status::Passed => {}
            Some(r) => {
                return Some(StepError::with_cause(
                    format!("skipped: step {} failed", r.index),
                    format!(
                        "this step needs the result of step {} ({})",
                        r.index, r.name
                    ),
                ));
            }
            None => {
                return Some(StepError::new(format!(
                    "skipped: step {need} must run before this one"
                )));
            }
        }
    }
    None
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pass(_: &mut RunContext) -> StepFuture<'_> {
        Box::pin(async { Ok(vec!["did it".to_owned()]) })
    }

    fn fail(_: &mut RunContext) -> StepFuture<'_> {
        Box::pin(async { Err(StepError::with_cause("it broke", "because")) })
    }

    /// Counts its runs in the run context's scratch counter.
    fn count(ctx: &mut RunContext) -> StepFuture<'_> {
        Box::pin(async move {
            ctx.test_runs += 1;
            Ok(Vec::new())
        })
    }

    fn step(
        name: &'static str,
        needs: &'static [&'static str],
        run: fn(&mut RunContext) -> StepFuture<'_>,
    ) -> Step {
        Step {
            name,
            description: name,
            phase: "test",
            needs,
            run,
        }
    }

    #[derive(Default)]
    struct Recorder {
        started: Vec<usize>,
        finished: Vec<(usize, Status)>,
    }

    impl Observer for Recorder {
        fn step_started(&mut self, start: &StepStart) {
            self.started.push(start.index);
        }
        fn step_finished(&mut self, result: &StepResult, _: usize) {
            self.finished.push((result.index, result.status));
        }
    }

    async fn run_steps(steps: &[Step], fail_fast: bool) -> (Report, Recorder, RunContext) {
        let mut ctx = RunContext::for_tests();
        let mut recorder = Recorder::default();
        let report = run(
            "test",
            steps,
            &mut ctx,
            RunOptions { fail_fast },
            &mut recorder,
            Instant::now(),
        )
        .await;
        (report, recorder, ctx)
    }

    #[tokio::test]
    async fn exit_codes_follow_the_spec() {
        let (all, _, _) = run_steps(&[step("a", &[], pass), step("b", &[], pass)], false).await;
        assert_eq!((all.exit_code(), all.success()), (0, true));
        let (some, _, _) = run_steps(&[step("a", &[], pass), step("b", &[], fail)], false).await;
        assert_eq!((some.exit_code(), some.success()), (1, false));
        let (none, _, _) = run_steps(&[step("a", &[], fail), step("b", &[], fail)], false).await;
        assert_eq!((none.exit_code(), none.success()), (2, false));
        let (empty, _, _) = run_steps(&[], false).await;
        assert_eq!((empty.exit_code(), empty.success()), (2, false));
    }

    #[tokio::test]
    async fn dependants_of_a_failed_step_fail_without_running() {
        let steps = [
            step("a", &[], pass),
            step("b", &[], fail),
            step("c", &["b"], count),
            step("d", &["c"], count),
            step("e", &["a"], count),
        ];
        let (report, recorder, ctx) = run_steps(&steps, false).await;
        assert_eq!(ctx.test_runs, 1, "only e ran");
        let c = &report.steps[2];
        assert_eq!(c.status, Status::Failed);
        let error = c.error.as_ref().unwrap();
        assert_eq!(error.message, "skipped: step 2 failed");
        assert!(error.cause.as_ref().unwrap().contains("step 2 (b)"));
        assert_eq!(
            report.steps[3].error.as_ref().unwrap().message,
            "skipped: step 3 failed",
            "a skipped step counts as failed for its own dependants"
        );
        assert_eq!(report.steps[4].status, Status::Passed);
        assert_eq!((report.passed(), report.failed()), (2, 3));
        assert_eq!(recorder.started, [1, 2, 3, 4, 5]);
        assert_eq!(recorder.finished.len(), 5);
    }

    #[tokio::test]
    async fn an_undeclared_or_later_dependency_fails_the_step() {
        let steps = [step("a", &["b"], count), step("b", &[], pass)];
        let (report, _, ctx) = run_steps(&steps, false).await;
        assert_eq!(ctx.test_runs, 0);
        assert_eq!(report.steps[0].status, Status::Failed);
    }

    #[tokio::test]
    async fn fail_fast_fails_the_rest_unrun() {
        let steps = [
            step("a", &[], fail),
            step("b", &[], count),
            step("c", &[], count),
        ];
        let (report, _, ctx) = run_steps(&steps, true).await;
        assert_eq!(ctx.test_runs, 0);
        assert_eq!(report.failed(), 3);
        let error = report.steps[2].error.as_ref().unwrap();
        assert!(error.message.contains("--fail-fast"), "{error}");
        assert_eq!(report.exit_code(), 2);

        let (report, _, ctx) = run_steps(&steps, false).await;
        assert_eq!(ctx.test_runs, 2, "without --fail-fast the others run");
        assert_eq!(report.exit_code(), 1);
    }

    #[tokio::test]
    async fn the_json_document_has_the_spec_fields_and_counts_add_up() {
        let (report, _, _) = run_steps(&[step("a", &[], pass), step("b", &[], fail)], false).await;
        let json = report.to_json();
        assert_eq!(json["demo"], "test");
        assert_eq!(json["success"], false);
        assert_eq!(json["total_steps"], 2);
        assert_eq!(json["passed_steps"], 1);
        assert_eq!(json["failed_steps"], 1);
        assert!(json["duration_ms"].is_u64());
        let steps = json["steps"].as_array().unwrap();
        assert_eq!(steps[0]["status"], "passed");
        assert!(steps[0].get("error").is_none());
        assert!(steps[0].get("details").is_none(), "details are for people");
        assert_eq!(steps[1]["status"], "failed");
        assert_eq!(steps[1]["error"]["message"], "it broke");
        assert_eq!(steps[1]["error"]["cause"], "because");
        assert_eq!(steps[1]["index"], 2);
        assert_eq!(steps[1]["phase"], "test");
        assert!(steps[1]["duration_ms"].is_u64());
    }
}
