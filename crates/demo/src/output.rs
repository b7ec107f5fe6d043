//! The three output formats (SPEC §6), all on stdout:
//! - `human`: `[i/N] description` with a spinner on a terminal, plain lines otherwise, then a
//!   summary; colour unless `--no-color`, `NO_COLOR`, a non-terminal stdout or CI;
//! - `json`: exactly one JSON document at the end;
//! - `structured`: logfmt lines, one per event.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::http::humanize;
use crate::runner::{Observer, Report, Status, StepResult, StepStart};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For people.
    #[default]
    Human,
    /// One JSON document.
    Json,
    /// logfmt lines.
    Structured,
}

/// `--quiet` / `--verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Only the summary (and what failed).
    Quiet,
    /// Steps and the summary.
    #[default]
    Normal,
    /// Also what each step saw (never secrets).
    Verbose,
}

/// Environment variables that mean "running under CI".
const CI_VARIABLES: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "DRONE",
];

/// Whether output may be coloured: not with `--no-color`, `NO_COLOR` set (to anything), stdout
/// not a terminal, or a CI variable set. `var` reads the environment.
pub fn color_enabled(
    no_color_flag: bool,
    stdout_is_terminal: bool,
    var: impl Fn(&str) -> Option<String>,
) -> bool {
    !no_color_flag
        && stdout_is_terminal
        && var("NO_COLOR").is_none()
        && !CI_VARIABLES.iter().any(|name| var(name).is_some())
}

/// Whether this process runs under CI (no spinner there, even on a pseudo-terminal).
fn under_ci(var: impl Fn(&str) -> Option<String>) -> bool {
    CI_VARIABLES.iter().any(|name| var(name).is_some())
}

/// Writes progress and the report in the chosen format.
pub struct Output {
    format: Format,
    verbosity: Verbosity,
    color: bool,
    spinner_allowed: bool,
    spinner: Option<ProgressBar>,
    demo: &'static str,
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("format", &self.format)
            .field("verbosity", &self.verbosity)
            .field("color", &self.color)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Output to this process's stdout; colour and spinner decided from the terminal and the
    /// environment.
    pub fn stdout(
        demo: &'static str,
        format: Format,
        verbosity: Verbosity,
        no_color: bool,
    ) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        Self {
            format,
            verbosity,
            color: color_enabled(no_color, terminal, env),
            spinner_allowed: terminal && !under_ci(env) && format == Format::Human,
            spinner: None,
            demo,
            out: Box::new(std::io::stdout()),
        }
    }

    /// Output to `out` (no terminal: no spinner, no colour), for tests.
    pub fn to_writer(
        demo: &'static str,
        format: Format,
        verbosity: Verbosity,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            format,
            verbosity,
            color: false,
            spinner_allowed: false,
            spinner: None,
            demo,
            out,
        }
    }

    fn line(&mut self, text: &str) {
        match &self.spinner {
            Some(spinner) => spinner.suspend(|| {
                let _ = writeln!(self.out, "{text}");
            }),
            None => {
                let _ = writeln!(self.out, "{text}");
            }
        }
        let _ = self.out.flush();
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn spin(&mut self, message: String) {
        self.stop_spinner();
        if !self.spinner_allowed || self.verbosity == Verbosity::Quiet {
            return;
        }
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let template = if self.color {
            "{spinner} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {msg} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            spinner.set_style(style);
        }
        spinner.set_message(message);
        spinner.enable_steady_tick(Duration::from_millis(80));
        self.spinner = Some(spinner);
    }

    fn stop_spinner(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }

    /// Something is being prepared (servers starting): a spinner or a line.
    pub fn preparing(&mut self, what: &str) {
        match self.format {
            Format::Human if self.spinner_allowed => self.spin(what.to_owned()),
            Format::Human => {}
            Format::Json => {}
            Format::Structured => {
                let line = logfmt(&[
                    ("level", "info"),
                    ("demo", self.demo),
                    ("event", "preparing"),
                    ("message", what),
                ]);
                self.line(&line);
            }
        }
    }

    /// A fact about the run (the servers' URLs).
    pub fn note(&mut self, text: &str) {
        match self.format {
            Format::Human if self.verbosity != Verbosity::Quiet => {
                self.stop_spinner();
                let text = self.paint("2", text);
                self.line(&text);
            }
            Format::Structured => {
                let line = logfmt(&[
                    ("level", "info"),
                    ("demo", self.demo),
                    ("event", "note"),
                    ("message", text),
                ]);
                self.line(&line);
            }
            _ => {}
        }
    }

    /// The end: the summary (human), the document (json) or the summary line (structured).
    pub fn finish(&mut self, report: &Report) {
        self.stop_spinner();
        match self.format {
            Format::Json => {
                let text = report.to_json().to_string();
                self.line(&text);
            }
            Format::Structured => {
                let (passed, failed, total) = (
                    report.passed().to_string(),
                    report.failed().to_string(),
                    report.steps.len().to_string(),
                );
                let duration = millis(report.duration);
                let line = logfmt(&[
                    ("level", if report.success() { "info" } else { "error" }),
                    ("demo", self.demo),
                    ("event", "summary"),
                    ("success", if report.success() { "true" } else { "false" }),
                    ("total_steps", &total),
                    ("passed_steps", &passed),
                    ("failed_steps", &failed),
                    ("duration_ms", &duration),
                ]);
                self.line(&line);
            }
            Format::Human => self.human_summary(report),
        }
    }

    fn human_summary(&mut self, report: &Report) {
        let total = report.steps.len();
        if self.verbosity == Verbosity::Quiet {
            let failed: Vec<&StepResult> = report
                .steps
                .iter()
                .filter(|s| s.status == Status::Failed)
                .collect();
            for step in failed {
                self.human_step(step, total);
            }
        }
        let took = humanize(report.duration);
        let line = if report.success() {
            self.paint(
                "1;32",
                &format!("✓ demo {}: all {total} steps passed in {took}", report.demo),
            )
        } else {
            let failed: Vec<String> = report
                .steps
                .iter()
                .filter(|s| s.status == Status::Failed)
                .map(|s| s.index.to_string())
                .collect();
            self.paint(
                "1;31",
                &format!(
                    "✗ demo {}: {} of {total} steps passed, {} failed (step {}) in {took}",
                    report.demo,
                    report.passed(),
                    report.failed(),
                    failed.join(", ")
                ),
            )
        };
        self.line(&line);
    }

    fn human_step(&mut self, result: &StepResult, total: usize) {
        let counter = format!("[{}/{total}]", result.index);
        let took = humanize(Duration::from_millis(result.duration_ms));
        let line = match result.status {
            Status::Passed => format!(
                "{} {counter} {} {}",
                self.paint("32", "✓"),
                result.description,
                self.paint("2", &format!("({took})"))
            ),
            Status::Failed => format!(
                "{} {counter} {} {}",
                self.paint("31", "✗"),
                result.description,
                self.paint("2", &format!("({took})"))
            ),
        };
        self.line(&line);
        if let Some(error) = &result.error {
            let text = format!("      error: {}", error.message);
            let text = self.paint("31", &text);
            self.line(&text);
            if let Some(cause) = &error.cause {
                self.line(&format!("      cause: {cause}"));
            }
        }
        if self.verbosity == Verbosity::Verbose {
            for detail in &result.details {
                let text = self.paint("2", &format!("      {detail}"));
                self.line(&text);
            }
        }
    }
}

impl Observer for Output {
    fn step_started(&mut self, start: &StepStart) {
        match self.format {
            Format::Human => {
                self.spin(format!(
                    "[{}/{}] {}",
                    start.index, start.total, start.step.description
                ));
            }
            Format::Structured if self.verbosity == Verbosity::Verbose => {
                let (index, total) = (start.index.to_string(), start.total.to_string());
                let line = logfmt(&[
                    ("level", "info"),
                    ("demo", self.demo),
                    ("event", "step_started"),
                    ("index", &index),
                    ("total", &total),
                    ("name", start.step.name),
                    ("phase", start.step.phase),
                    ("description", start.step.description),
                ]);
                self.line(&line);
            }
            _ => {}
        }
    }

    fn step_finished(&mut self, result: &StepResult, total: usize) {
        match self.format {
            Format::Human => {
                self.stop_spinner();
                if self.verbosity != Verbosity::Quiet {
                    self.human_step(result, total);
                }
            }
            Format::Structured => {
                let (index, total) = (result.index.to_string(), total.to_string());
                let duration = result.duration_ms.to_string();
                let status = match result.status {
                    Status::Passed => "passed",
                    Status::Failed => "failed",
                };
                let mut fields = vec![
                    (
                        "level",
                        if result.status == Status::Passed {
                            "info"
                        } else {
                            "error"
                        },
                    ),
                    ("demo", self.demo),
                    ("event", "step"),
                    ("index", index.as_str()),
                    ("total", total.as_str()),
                    ("name", result.name),
                    ("phase", result.phase),
                    ("status", status),
                    ("duration_ms", duration.as_str()),
                ];
                if let Some(error) = &result.error {
                    fields.push(("error", error.message.as_str()));
                    if let Some(cause) = &error.cause {
                        fields.push(("cause", cause.as_str()));
                    }
                }
                let line = logfmt(&fields);
                self.line(&line);
                if self.verbosity == Verbosity::Verbose {
                    for detail in &result.details {
                        let line = logfmt(&[
                            ("level", "debug"),
                            ("demo", self.demo),
                            ("event", "step_detail"),
                            ("index", index.as_str()),
                            ("detail", detail),
                        ]);
                        self.line(&line);
                    }
                }
            }
            Format::Json => {}
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.stop_spinner();
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// One logfmt line: `ts=… key=value …`, values quoted when they need it.
pub fn logfmt(fields: &[(&str, &str)]) -> String {
    let ts = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut line = format!("ts={ts}");
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&logfmt_value(value));
    }
    line
}

/// A logfmt value: bare when it is non-empty and has no space, `=`, `"` or control character;
/// otherwise quoted with `\"`, `\\`, `\n`, `\r`, `\t` escaped.
pub fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '=' && c != '"' && c != '\\');
    if bare {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_off_for_the_flag_no_color_a_pipe_or_ci() {
        let none = |_: &str| None;
        assert!(color_enabled(false, true, none));
        assert!(!color_enabled(true, true, none));
        assert!(!color_enabled(false, false, none));
        for set in ["NO_COLOR", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD"] {
            let env = |name: &str| (name == set).then(String::new);
            assert!(!color_enabled(false, true, env), "{set}");
        }
    }

    #[test]
    fn logfmt_values_are_quoted_and_escaped_when_needed() {
        assert_eq!(logfmt_value("passed"), "passed");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("two words"), "\"two words\"");
        assert_eq!(logfmt_value("a=b"), "\"a=b\"");
        assert_eq!(logfmt_value("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(logfmt_value("back\\slash"), "\"back\\\\slash\"");
        let line = logfmt(&[("event", "step"), ("error", "HTTP 401: no")]);
        assert!(line.starts_with("ts="), "{line}");
        assert!(
            line.ends_with(" event=step error=\"HTTP 401: no\""),
            "{line}"
        );
    }
}
