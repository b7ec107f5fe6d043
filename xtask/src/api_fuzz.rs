//! `cargo xtask api-fuzz`: schemathesis against the KMS's own OpenAPI document, both surfaces,
//! authenticated, over verified TLS 1.3.
//!
//! 1. A Python venv under `<target>/api-fuzz/venv` with schemathesis installed from
//!    `interop/schemathesis/requirements.txt` (exact versions and hashes of every package,
//!    `--require-hashes --no-deps --only-binary :all:`); reused while that file is unchanged.
//! 2. The release binary as `cryptoutil kms server start --dev --demo` on free ports.
//! 3. `schemathesis run <public>/ui/swagger/doc.json` with the demo CA as its only trust anchor,
//!    the hooks of `interop/schemathesis/hooks.py` (Basic on `/service/api/v1`, Basic plus the
//!    CSRF cookie and header a page fetches on `/browser/api/v1`; real key and user identifiers
//!    mixed into the generated ones), derandomized generation (the same cases every run), a
//!    bounded number of examples per operation, the checks [`CHECKS`], and a client-side rate
//!    below the browser surface's default limit. Any failure fails the step; schemathesis prints
//!    each one with a curl line that reproduces it.
//!
//! The run authenticates as `api-fuzz` of `interop/schemathesis/realms.yml` (a file-realm
//! `kms:admin` of both demo tenants): it fuzzes user administration too, which could otherwise
//! disable or re-password the very demo user it runs as; the demo users and keys are its targets.
//!
//! Options: `--max-examples N` (default [`MAX_EXAMPLES`]); `--seed N` for a seeded random run
//! instead of the derandomized one (reproduce it with the same seed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::server::{ServerProcess, build_release, unique_temp_dir};
use crate::{root, run};

/// Checks run on every response: no 5xx, and the status code, content type, headers and body
/// are those the document declares for the operation.
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";
/// Examples per operation and phase in CI: the whole step stays within a few minutes on 2 cores.
pub const MAX_EXAMPLES: u32 = 40;
/// Requests per second the client sends: under the browser surface's default limit (100/s per
/// address), so the operations are exercised rather than refused with 429.
pub const RATE_LIMIT: &str = "90/s";
/// The user the run authenticates as (`interop/schemathesis/realms.yml`), `kms:admin` in both
/// demo tenants, so every operation, user administration included, is reachable.
const FUZZ_USER: &str = "api-fuzz";
/// Its password (test-only, public like the demo users').
const FUZZ_PASSWORD: &str = "api-fuzz-password";
/// The Python the pinned wheels are for.
const PYTHON: &str = "python3.11";

/// Installs schemathesis, starts the KMS and fuzzes its API.
pub fn api_fuzz(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let options = Options::parse(args)?;
    let dir = root().join("interop").join("schemathesis");
    let schemathesis = ensure_venv(&dir.join("requirements.txt"))?;
    let binary = build_release()?;
    // The realm file adds the run's own user; everything else is `--dev --demo` as shipped.
    let server = ServerProcess::start_with_env(
        &binary,
        "kms",
        &[("CRYPTOUTIL_KMS__AUTH__REALMS_FILE", dir.join("realms.yml"))],
    )?;
    let ready = server.ready.clone();
    let reports = unique_temp_dir("cryptoutil-api-fuzz")?;

    let outcome = run(
        "schemathesis (both KMS API surfaces)",
        Command::new(&schemathesis)
            .arg("run")
            .arg(format!("{}/ui/swagger/doc.json", ready.public_url))
            .args(["--url", &ready.public_url])
            .arg("--tls-verify")
            .arg(&ready.ca_cert)
            .args(["--checks", CHECKS])
            .args(["--max-examples", &options.max_examples.to_string()])
            .args(options.generation())
            .args(["--rate-limit", RATE_LIMIT])
            .args(["--workers", "1"])
            .args(["--request-timeout", "30"])
            .arg("--continue-on-failure")
            .arg("--no-color")
            .args(["--report", "junit"])
            .arg("--report-dir")
            .arg(&reports)
            .env("SCHEMATHESIS_HOOKS", dir.join("hooks.py"))
            .env("KMS_URL", &ready.public_url)
            .env("KMS_CA_CERT", &ready.ca_cert)
            .env("KMS_USERNAME", FUZZ_USER)
            .env("KMS_PASSWORD", FUZZ_PASSWORD)
            .current_dir(&reports),
    );
    if outcome.is_err() {
        println!("==> server log (tail):\n{}", server.log_tail());
    }
    let stopped = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
        .and_then(|rt| rt.block_on(server.shutdown()));
    match &outcome {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&reports);
        }
        Err(_) => println!("==> schemathesis report kept in {}", reports.display()),
    }
    println!(
        "==> api-fuzz {} in {:.0?} ({} examples per operation, {})",
        if outcome.is_ok() { "passed" } else { "FAILED" },
        started.elapsed(),
        options.max_examples,
        options
            .seed
            .map_or_else(|| "derandomized".to_owned(), |s| format!("seed {s}"))
    );
    outcome?;
    stopped
}

/// Command-line options.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    max_examples: u32,
    /// `None`: derandomized generation (CI).
    seed: Option<u64>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            max_examples: MAX_EXAMPLES,
            seed: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--max-examples" => {
                    options.max_examples = value(arg)?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--max-examples takes a positive integer")?;
                }
                "--seed" => {
                    options.seed = Some(
                        value(arg)?
                            .parse()
                            .map_err(|_| "--seed takes a non-negative integer")?,
                    );
                }
                other => {
                    return Err(format!(
                        "unknown option {other}; usage: cargo xtask api-fuzz [--max-examples N] [--seed N]"
                    ));
                }
            }
        }
        Ok(options)
    }

    /// schemathesis' generation options: derandomized, or seeded.
    fn generation(&self) -> Vec<String> {
        match self.seed {
            None => vec!["--generation-deterministic".to_owned()],
            Some(seed) => vec!["--seed".to_owned(), seed.to_string()],
        }
    }
}

/// The venv's `schemathesis`, (re)creating the venv when the requirements file changed since it
/// was installed (its text is kept in the venv as a stamp) or when it no longer runs (a venv's
/// scripts name its interpreter by absolute path, so a moved target directory breaks them).
fn ensure_venv(requirements: &Path) -> Result<PathBuf, String> {
    let wanted = std::fs::read_to_string(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = crate::target_dir()?.join("api-fuzz").join("venv");
    let stamp = venv.join("cryptoutil-requirements.txt");
    let schemathesis = venv.join("bin").join("schemathesis");
    let runs = || {
        Command::new(&schemathesis)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if schemathesis.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted)
        && runs()
    {
        println!("==> schemathesis venv up to date ({})", venv.display());
        return Ok(schemathesis);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the old venv {}: {e}", venv.display()))?;
    }
    let found = Command::new(PYTHON)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        return Err(format!(
            "api-fuzz needs `{PYTHON}` on PATH (the pinned wheels are for CPython 3.11)"
        ));
    }
    run(
        "python venv for schemathesis",
        Command::new(PYTHON).args(["-m", "venv"]).arg(&venv),
    )?;
    run(
        "pip install schemathesis (pinned, hashes required)",
        Command::new(venv.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--require-hashes",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-r",
            ])
            .arg(requirements),
    )?;
    run(
        "pip check (every dependency is pinned)",
        Command::new(venv.join("bin").join("python")).args([
            "-m",
            "pip",
            "check",
            "--disable-pip-version-check",
        ]),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(schemathesis)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_default_and_parse() {
        assert_eq!(
            Options::parse(&[]).unwrap(),
            Options {
                max_examples: MAX_EXAMPLES,
                seed: None
            }
        );
        assert_eq!(
            Options::parse(&[]).unwrap().generation(),
            ["--generation-deterministic"]
        );
        assert_eq!(
            Options::parse(&args(&["--seed", "7", "--max-examples", "3"])).unwrap(),
            Options {
                max_examples: 3,
                seed: Some(7)
            }
        );
        assert_eq!(
            Options::parse(&args(&["--seed", "7"]))
                .unwrap()
                .generation(),
            ["--seed", "7"]
        );
        for bad in [
            &["--max-examples", "0"][..],
            &["--max-examples"],
            &["--seed", "-1"],
            &["--other"],
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_requirement_is_pinned_with_a_hash() {
        let text =
            std::fs::read_to_string(root().join("interop/schemathesis/requirements.txt")).unwrap();
        let mut packages = 0;
        let mut lines = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        while let Some(line) = lines.next() {
            if line.trim().is_empty() {
                continue;
            }
            let spec = line.trim_end_matches('\\').trim();
            assert!(spec.contains("=="), "not an exact pin: {spec}");
            let hash = lines.next().unwrap_or_default();
            assert!(
                hash.trim().starts_with("--hash=sha256:"),
                "{spec} has no hash"
            );
            packages += 1;
        }
        assert!(text.contains("schemathesis=="));
        assert!(packages > 10, "{packages} packages");
    }
}
