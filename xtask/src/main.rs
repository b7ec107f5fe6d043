//! Project automation, in Rust (no Makefiles, no shell scripts): `cargo xtask <task>`.
//!
//! - `test`    — install what the tests need, run the whole suite with coverage, enforce ≥ 80 %.
//! - `ci`      — `fmt --check`, `clippy -D warnings`, then `test`: what `.ci/run` calls.
//! - `schemas` — regenerate the configuration JSON Schemas under `deployments/`.

#![allow(clippy::print_stdout)]

mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Minimum line coverage over the workspace (SPEC §1).
const COVERAGE_FLOOR: &str = "80";
/// cargo-llvm-cov version installed when missing.
const LLVM_COV_VERSION: &str = "0.9.1";
/// LLVM major version matching the pinned Rust toolchain (rustc -vV: LLVM 22).
const LLVM_MAJOR: &str = "22";
/// Files that do not count for coverage: automation and fuzz harnesses.
const COVERAGE_IGNORE: &str = r"(^|/)(xtask|fuzz)/";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => test(&args[1..]),
        Some("schemas") => schemas(),
        Some("setup-browser") => browser::setup_browser(),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|test|schemas>\n\n  test     run the test suite with coverage (≥ {COVERAGE_FLOOR} % lines)\n  ci       fmt check, clippy -D warnings, then test\n  schemas  regenerate deployments/*/*.schema.json"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(root());
    cmd
}

fn run(step: &str, cmd: &mut Command) -> Result<(), String> {
    let started = Instant::now();
    println!("==> {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start {cmd:?}: {e}"))?;
    println!(
        "==> {step}: {} in {:.0?}",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    let started = Instant::now();
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    test(&[])?;
    println!("==> ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Runs every test of the workspace once, instrumented, and enforces the coverage floor.
fn test(extra: &[String]) -> Result<(), String> {
    let tools = ensure_coverage_tools()?;
    browser::setup_browser()?;
    if std::env::var_os("CRYPTOUTIL_TEST_POSTGRES_URL").is_none() {
        println!(
            "==> NOTE: CRYPTOUTIL_TEST_POSTGRES_URL is not set: PostgreSQL tests will skip (CI sets it; see .ci/run)"
        );
    }
    let mut cmd = cargo();
    cmd.env("LLVM_COV", &tools.llvm_cov)
        .env("LLVM_PROFDATA", &tools.llvm_profdata)
        .args([
            "llvm-cov",
            "--workspace",
            "--exclude",
            "xtask",
            "--locked",
            "--no-fail-fast",
        ])
        .args(["--ignore-filename-regex", COVERAGE_IGNORE])
        .args(["--fail-under-lines", COVERAGE_FLOOR])
        .args(extra);
    run("tests with coverage", &mut cmd)
}

struct CoverageTools {
    llvm_cov: PathBuf,
    llvm_profdata: PathBuf,
}

/// Finds (or installs, from Debian's packages and crates.io) llvm-cov/llvm-profdata matching the
/// toolchain's LLVM, and cargo-llvm-cov.
fn ensure_coverage_tools() -> Result<CoverageTools, String> {
    let bin = PathBuf::from(format!("/usr/lib/llvm-{LLVM_MAJOR}/bin"));
    let tools = CoverageTools {
        llvm_cov: bin.join("llvm-cov"),
        llvm_profdata: bin.join("llvm-profdata"),
    };
    if !tools.llvm_profdata.is_file() || !tools.llvm_cov.is_file() {
        let package = format!("llvm-{LLVM_MAJOR}");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", &package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        println!("==> installing {package} (llvm-cov, llvm-profdata) from Debian's packages");
        if !install() {
            let _ = Command::new("apt-get").arg("update").status();
            if !install() {
                return Err(format!(
                    "cannot install {package}; install it (apt-get install {package}) and retry"
                ));
            }
        }
    }
    let has_llvm_cov = cargo()
        .args(["llvm-cov", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_llvm_cov {
        run(
            "install cargo-llvm-cov",
            cargo().args([
                "install",
                "--locked",
                "cargo-llvm-cov",
                "--version",
                LLVM_COV_VERSION,
            ]),
        )?;
    }
    Ok(tools)
}

/// Regenerates the configuration schemas by running the tests that check them in update mode.
fn schemas() -> Result<(), String> {
    run(
        "regenerate schemas",
        cargo().env("CRYPTOUTIL_UPDATE_SCHEMAS", "1").args([
            "test",
            "-p",
            "cryptoutil-kms",
            "-p",
            "cryptoutil-identity",
            "--lib",
            "shipped_schema",
        ]),
    )
}
