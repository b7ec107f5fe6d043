//! `cargo xtask oidc`: the Identity server checked by an independent OpenID Connect client,
//! panva's `openid-client` on Node (`interop/oidc/`, pinned by its package-lock.json).
//!
//! Installs the client with `npm ci`, unit-tests its scripted browser (`node --test`), builds
//! the release binary, starts `cryptoutil identity server start --dev --demo` on free ports,
//! runs `interop/oidc/oidc.mjs` against it (ISSUER, ADMIN_URL, NODE_EXTRA_CA_CERTS = demo CA),
//! always shuts the server down, and fails when any case failed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::server::{ServerProcess, build_release};
use crate::{root, run};

/// Runs the openid-client checks against a freshly started release server.
pub fn oidc() -> Result<(), String> {
    let started = Instant::now();
    let dir = root().join("interop").join("oidc");
    require_node()?;
    run(
        "npm ci (interop/oidc)",
        Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--ignore-scripts",
            ])
            .current_dir(&dir),
    )?;
    run(
        "scripted browser unit tests (node --test)",
        Command::new("node")
            .args(["--test", "browser.test.mjs"])
            .current_dir(&dir),
    )?;
    let binary = build_release()?;
    let server = ServerProcess::start(&binary, "identity")?;
    let ready = server.ready.clone();

    println!("==> openid-client checks (interop/oidc/oidc.mjs)");
    let outcome = run_checks(
        Command::new("node")
            .arg("oidc.mjs")
            .current_dir(&dir)
            .env("ISSUER", &ready.public_url)
            .env("ADMIN_URL", &ready.admin_url)
            .env("NODE_EXTRA_CA_CERTS", &ready.ca_cert),
    );
    if outcome.as_ref().map_or(true, |o| !o.success) {
        println!("==> server log (tail):\n{}", server.log_tail());
    }
    let stopped = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
        .and_then(|rt| rt.block_on(server.shutdown()));

    let outcome = outcome?;
    println!(
        "==> oidc summary ({:.0?}): {} passed, {} failed",
        started.elapsed(),
        outcome.passed,
        outcome.failed.len()
    );
    for name in &outcome.failed {
        println!("    FAIL {name}");
    }
    stopped?;
    if outcome.success && outcome.failed.is_empty() && outcome.passed > 0 {
        Ok(())
    } else if outcome.passed == 0 && outcome.failed.is_empty() {
        Err("the openid-client checks reported no case".to_owned())
    } else {
        Err(format!(
            "{} openid-client check(s) failed",
            outcome.failed.len().max(1)
        ))
    }
}

/// Fails unless `node` and `npm` are on PATH.
pub(crate) fn require_node() -> Result<(), String> {
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "`{tool}` (Node 20+ with npm) is needed on PATH; install Node.js and retry"
            ));
        }
    }
    Ok(())
}

/// What the check script reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// `PASS` lines.
    pub passed: usize,
    /// The names on `FAIL` lines.
    pub failed: Vec<String>,
    /// The script exited 0.
    pub success: bool,
}

/// Runs the script, echoing its output line by line, and tallies `PASS`/`FAIL` lines.
pub(crate) fn run_checks(cmd: &mut Command) -> Result<Outcome, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let mut outcome = Outcome::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading the script's output: {e}"))?;
            println!("    {line}");
            tally(&mut outcome, &line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the script: {e}"))?;
    outcome.success = status.success();
    Ok(outcome)
}

/// Counts one output line: `PASS  name (…)` or `FAIL  name` (the reason follows, indented).
fn tally(outcome: &mut Outcome, line: &str) {
    if line.starts_with("PASS ") {
        outcome.passed += 1;
    } else if let Some(name) = line.strip_prefix("FAIL ") {
        outcome.failed.push(name.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_and_fail_lines_are_tallied() {
        let mut o = Outcome::default();
        for line in [
            "openid-client checks against https://127.0.0.1:1",
            "PASS  discovery: both documents (12 ms)",
            "FAIL  code reuse: second redemption invalid_grant",
            "      expected error invalid_grant, but the request succeeded",
            "FAIL  (harness)",
            "      boom",
            "oidc: 1 passed, 2 failed",
        ] {
            tally(&mut o, line);
        }
        assert_eq!(o.passed, 1);
        assert_eq!(
            o.failed,
            ["code reuse: second redemption invalid_grant", "(harness)"]
        );
    }
}
