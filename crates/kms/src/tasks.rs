//! The running KMS's background tasks (the purge task, following other instances' changes, and
//! later schedulers), owned together: each is spawned by name into one [`TaskSet`], reported
//! together ([`TaskSet::report`], and the `background tasks` readiness check), and stopped
//! together ([`TaskSet::stop`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::{AbortHandle, JoinSet};

/// What a background task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Still running.
    Running,
    /// Returned: it had nothing (more) to do (e.g. following changes on SQLite, which has none).
    Finished,
    /// Ended without returning: it panicked or was stopped.
    Failed,
}

impl TaskState {
    /// `running`, `finished` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }
}

struct Entry {
    name: &'static str,
    handle: AbortHandle,
    returned: Arc<AtomicBool>,
}

impl Entry {
    fn state(&self) -> TaskState {
        if !self.handle.is_finished() {
            TaskState::Running
        } else if self.returned.load(Ordering::Acquire) {
            TaskState::Finished
        } else {
            TaskState::Failed
        }
    }
}

/// Named background tasks, owned together.
#[derive(Default)]
pub struct TaskSet {
    set: JoinSet<()>,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet")
            .field("tasks", &self.report())
            .finish()
    }
}

impl TaskSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `task` under `name` (on the current Tokio runtime).
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let returned = Arc::new(AtomicBool::new(false));
        let flag = returned.clone();
        let handle = self.set.spawn(async move {
            task.await;
            flag.store(true, Ordering::Release);
        });
        tracing::debug!(task = name, "background task started");
        lock(&self.entries).push(Entry {
            name,
            handle,
            returned,
        });
    }

    /// Each task's name and state, in start order.
    pub fn report(&self) -> Vec<(&'static str, TaskState)> {
        report(&self.entries)
    }

    /// A readiness check that fails when a task has failed (panicked), naming every task's state.
    pub fn readiness_check(&self) -> cryptoutil_server::ReadinessCheck {
        let entries = self.entries.clone();
        cryptoutil_server::ReadinessCheck::required("background tasks", move || {
            let report = report(&entries);
            async move { describe(&report) }
        })
    }

    /// Stops every task and waits until they have ended.
    pub async fn stop(mut self) {
        let names: Vec<&str> = self.report().into_iter().map(|(name, _)| name).collect();
        self.set.shutdown().await;
        tracing::debug!(tasks = ?names, "background tasks stopped");
    }
}

fn lock(entries: &Mutex<Vec<Entry>>) -> std::sync::MutexGuard<'_, Vec<Entry>> {
    entries.lock().unwrap_or_else(PoisonError::into_inner)
}

fn report(entries: &Mutex<Vec<Entry>>) -> Vec<(&'static str, TaskState)> {
    lock(entries).iter().map(|e| (e.name, e.state())).collect()
}

/// `name: state; …`, an error when one has failed.
fn describe(report: &[(&'static str, TaskState)]) -> Result<String, String> {
    let text = report
        .iter()
        .map(|(name, state)| format!("{name}: {}", state.as_str()))
        .collect::<Vec<_>>()
        .join("; ");
    if report.iter().any(|(_, state)| *state == TaskState::Failed) {
        Err(text)
    } else {
        Ok(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn tasks_are_reported_and_stopped_together() {
        let mut tasks = TaskSet::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("forever", async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        tasks.spawn("returns", async {});
        settle().await;
        assert_eq!(
            tasks.report(),
            [
                ("forever", TaskState::Running),
                ("returns", TaskState::Finished)
            ]
        );
        assert_eq!(
            describe(&tasks.report()),
            Ok("forever: running; returns: finished".to_owned())
        );
        tasks.stop().await;
        // The running task was dropped, so its sender is gone.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn a_panicked_task_fails_the_readiness_check() {
        let mut tasks = TaskSet::new();
        tasks.spawn("panics", async { panic!("boom") });
        settle().await;
        assert_eq!(tasks.report(), [("panics", TaskState::Failed)]);
        assert_eq!(describe(&tasks.report()), Err("panics: failed".to_owned()));
        assert!(format!("{tasks:?}").contains("panics"));
        let _check = tasks.readiness_check();
        tasks.stop().await;
    }
}
