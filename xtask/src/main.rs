//! Project automation, in Rust (no Makefiles, no shell scripts): `cargo xtask <task>`.
//!
//! - `test`    — install what the tests need, run the whole suite with coverage, enforce ≥ 80 %.
//! - `ci`      — `fmt --check`, `clippy -D warnings`, `test`, `interop`, `oidc`, `api-fuzz`, `bench-compare`,
//!   the benchmark record (artifacts), then `browser`: what `.ci/run` calls.
//! - `interop` — JOSE interop with panva's `jose` on Node (`interop/node/`), and ML-DSA/ML-KEM
//!   with Python `cryptography` (`interop/python/`), both directions; then WebAuthn responses
//!   from the Python `fido2` software authenticator checked by Identity.
//! - `oidc`    — the Identity server checked by panva's `openid-client` on Node (`interop/oidc/`).
//! - `mcp`     — the MCP authorization path with the official `@modelcontextprotocol/sdk`
//!   (`interop/mcp/`): `cimd` (default) or `dcr`.
//! - `api-fuzz` — schemathesis against the KMS's OpenAPI document, both surfaces (`interop/schemathesis/`).
//! - `browser` — the sample single-page client in headless Chromium (`interop/browser/`).
//! - `load`    — load generator for the servers (`cargo xtask load <scenario>`).
//! - `bench-load` — the load sweep: every scenario at concurrency 1, 4, 16, 64, plus start-up.
//! - `bench-compare` — micro-benchmark instruction counts (callgrind) against the baseline;
//!   `--criterion`/`--load`: a wall-clock run against its stored baseline.
//! - `bench-criterion` — the criterion benchmarks, recorded as JSON, text and Markdown.
//! - `profile` — where a request's instructions go, on the release server under callgrind.
//! - `schemas` — regenerate the configuration JSON Schemas under `deployments/`.
//! - `fips`    — the FIPS build (`--features fips`) and its tests; `setup-fips` installs CMake and Go.
//! - `rules`   — the architecture rules of ARCHITECTURE.md (no product imports the other, no
//!   import cycle, no HTTP types in the domain, …) as a report; `cargo test -p xtask` checks them.

#![allow(clippy::print_stdout)]

mod api_fuzz;
mod bench_compare;
mod bench_criterion;
mod bench_load;
mod browser;
mod browser_test;
mod fips;
mod fuzz;
mod load;
mod mcp;
mod oidc;
mod pq_interop;
mod proc_stats;
mod profile;
mod rules;
mod server;
mod soak;
mod startup;
mod verdict;
mod wall_compare;
mod webauthn_interop;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Minimum line coverage over the workspace (SPEC §1).
const COVERAGE_FLOOR: &str = "80";
/// cargo-llvm-cov version installed when missing.
const LLVM_COV_VERSION: &str = "0.9.1";
/// LLVM major version matching the pinned Rust toolchain (rustc -vV: LLVM 22).
const LLVM_MAJOR: &str = "22";
/// Files that do not count for coverage: automation, fuzz harnesses and examples (the JOSE
/// interop driver, exercised by `cargo xtask interop` rather than by the test suite).
const COVERAGE_IGNORE: &str = r"(^|/)(xtask|fuzz|examples)/";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => test(&args[1..]),
        Some("schemas") => schemas(),
        Some("setup-browser") => browser::setup_browser(),
        Some("setup-fips") => fips::setup_fips(),
        Some("fips") => fips::stage(),
        Some("interop") => interop(),
        Some("oidc") => oidc::oidc(),
        Some("mcp") => mcp::mcp(&args[1..]),
        Some("api-fuzz") => api_fuzz::api_fuzz(&args[1..]),
        Some("browser") => browser_test::browser(&args[1..]),
        Some("load") => load::load(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("bench-load") => bench_load::bench_load(&args[1..]),
        Some("bench-compare") => bench_compare::bench_compare(&args[1..]),
        Some("bench-criterion") => bench_criterion::bench_criterion(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("profile") => profile::profile(&args[1..]),
        Some("rules") => rules::rules(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|test|interop|oidc|mcp|api-fuzz|browser|load|soak|bench-load|bench-compare|bench-criterion|profile|fuzz|rules|setup-browser|setup-fips|fips|schemas>\n\n  test           run the test suite with coverage (≥ {COVERAGE_FLOOR} % lines)\n  ci             fmt check, clippy -D warnings, test, fips, interop, oidc, mcp, api-fuzz, bench-compare,\n                 the benchmark record (target/ci-artifacts/), then browser\n  interop        JOSE interop with Node `jose` (needs node and npm), and ML-DSA/ML-KEM with\n                 Python `cryptography` (needs python3.11; a pinned venv), both directions\n  oidc           Identity server checked by Node `openid-client` (needs node and npm)\n  mcp            the MCP authorization path with @modelcontextprotocol/sdk ([cimd|dcr]; none:\n                 both; needs node)\n  api-fuzz       schemathesis against the KMS OpenAPI document, both surfaces, authenticated\n                 (needs python3.11; --max-examples N, --seed N)\n  browser        sample client signed in through Identity in headless Chromium (port 8084;\n                 --update-docs copies the signed-in screenshot to docs/images/)\n  load           load generator: cargo xtask load <scenario> (see cargo xtask load)\n  soak           demo all in a loop against running servers (--duration 10m): no failure, flat memory\n  bench-load     load sweep of every scenario at concurrency 1/4/16/64 and KMS start-up\n                 (target/bench-load/load.json and .md; --update-docs: docs/benchmarks/)\n  bench-compare  micro-benchmark instruction counts under callgrind against\n                 docs/benchmarks/callgrind.json (fails above +10 %; --update rewrites it);\n                 --criterion [RUN] / --load [RUN]: a wall-clock run against docs/benchmarks/\n  bench-criterion  the criterion benchmarks as JSON, text and Markdown\n                 (target/bench-criterion/; --quick, --benches A,B, --update-docs)\n  profile        one load scenario against the release server under callgrind: instructions\n                 per request and the top functions (target/profile/<scenario>.txt;\n                 --update-docs: docs/benchmarks/profiles/)\n  fuzz           cargo-fuzz targets in fuzz/ ([TARGET] [--duration 10m]),\n                 not in ci: the corpus is replayed by the tests instead\n  rules          the architecture rules of ARCHITECTURE.md (products apart, no import cycle,\n                 no HTTP types in the domain); also checked by cargo test -p xtask\n                 ([WORKSPACE]: check another checkout)\n  setup-browser  install Debian's chromium and NSS tools for the browser tests\n  setup-fips     install CMake, Go and Perl (Debian's packages) for the AWS-LC FIPS module build\n  fips           build with --features fips once; run the JOSE, TLS, KMS crypto and CLI version\n                 tests on it (part of ci)\n  schemas        regenerate deployments/*/*.schema.json"
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

/// Cargo's target directory (honours CARGO_TARGET_DIR), from `cargo metadata`.
fn target_dir() -> Result<PathBuf, String> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata is not JSON: {e}"))?;
    metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata has no target_directory".to_owned())
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
    run(
        "xtask unit tests",
        cargo().args(["test", "-p", "xtask", "--locked"]),
    )?;
    // The FIPS build (installs CMake and Go first): built once, JOSE/TLS/KMS crypto tests.
    fips::stage()?;
    interop()?;
    oidc::oidc()?;
    // After `oidc`, which built the release binary this starts: the MCP path with a client ID
    // metadata document, then with dynamic registration.
    mcp::mcp(&[])?;
    // After `oidc`, which built the release binary this starts.
    api_fuzz::api_fuzz(&[])?;
    // After `oidc`, which built the release dependencies this reuses.
    bench_compare::bench_compare(&[])?;
    record_benchmarks()?;
    // Installs Chromium first when missing: in CI this step runs, it never skips.
    browser_test::browser(&[])?;
    println!("==> ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Writes each `(file name, text)` into each directory (created when missing) and says so: the
/// benchmark commands' records, under the target directory and, on request, under docs/.
pub fn write_records(dirs: &[PathBuf], files: &[(&str, &str)]) -> Result<(), String> {
    for dir in dirs {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("==> wrote {}", path.display());
        }
    }
    Ok(())
}

/// Where CI leaves its benchmark records: `CRYPTOUTIL_CI_ARTIFACTS`, else `<target>/ci-artifacts`.
fn artifacts_dir() -> Result<PathBuf, String> {
    match std::env::var_os("CRYPTOUTIL_CI_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(target_dir()?.join("ci-artifacts")),
    }
}

/// Records this run's benchmarks as CI artifacts: the instruction counts `bench-compare` just
/// measured, criterion's headline set (`bench-criterion --quick`) and a short load sweep
/// (`bench-load --quick`), as JSON plus the criterion text and the Markdown tables. The
/// wall-clock figures are compared with the docs baselines and the comparison is printed, but
/// only the instruction counts fail CI: wall time on a shared 2-core machine is too noisy to gate
/// on.
fn record_benchmarks() -> Result<(), String> {
    bench_criterion::bench_criterion(&["--quick".to_owned()])?;
    bench_load::bench_load(&["--quick".to_owned()])?;
    for kind in [wall_compare::Kind::Criterion, wall_compare::Kind::Load] {
        match wall_compare::compare(kind, None) {
            Ok(slower) if !slower.is_empty() => println!(
                "==> NOTE: slower than the stored baseline (recorded, not gated: wall time on a shared machine): {}",
                slower.join("; ")
            ),
            Ok(_) => {}
            Err(e) => println!("==> NOTE: no wall-clock comparison: {e}"),
        }
    }
    let target = target_dir()?;
    let dir = artifacts_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = [
        ("bench-compare", "callgrind.json"),
        ("bench-criterion", "criterion.json"),
        ("bench-criterion", "criterion.txt"),
        ("bench-criterion", "criterion.md"),
        ("bench-load", "load.json"),
        ("bench-load", "load.md"),
    ];
    for (from, name) in files {
        let source = target.join(from).join(name);
        std::fs::copy(&source, dir.join(name))
            .map_err(|e| format!("cannot copy {} to {}: {e}", source.display(), dir.display()))?;
    }
    println!(
        "==> benchmark artifacts: {} ({})",
        dir.display(),
        files.map(|(_, n)| n).join(", ")
    );
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

/// JOSE interop with an independent implementation (panva's `jose` on Node, pinned by
/// `interop/node/package-lock.json`): we produce → Node checks, Node produces → we check. Every
/// JWS algorithm and every JWE `enc`×`alg` pair of SPEC §3.3 (ECDH-ES on P-256/384/521 and
/// X25519), general JSON with several recipients, plus tampered variants that must be rejected.
/// Then ML-DSA and ML-KEM against Python's `cryptography` (OpenSSL) and npm
/// `@noble/post-quantum`, both directions ([`pq_interop`]): Node `jose` on Node 20 has neither.
/// Last, fresh WebAuthn responses of the `fido2` software authenticator ([`webauthn_interop`]).
fn interop() -> Result<(), String> {
    let started = Instant::now();
    let node_dir = root().join("interop").join("node");
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Err(format!(
                "interop needs `{tool}` (Node 20+ with npm) on PATH; install Node.js and retry"
            ));
        }
    }
    run(
        "npm ci (interop/node)",
        Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--ignore-scripts",
            ])
            .current_dir(&node_dir),
    )?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir =
        std::env::temp_dir().join(format!("cryptoutil-interop-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ours = dir.join("cryptoutil-jose.json");
    let theirs = dir.join("node-jose.json");
    let example = |command: &str, file: &Path| {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "cryptoutil-jose",
            "--example",
            "interop",
            "--",
            command,
        ])
        .arg(file);
        cmd
    };
    let node = |command: &str, file: &Path| {
        let mut cmd = Command::new("node");
        cmd.current_dir(&node_dir)
            .args(["interop.mjs", command])
            .arg(file);
        cmd
    };
    let result = (|| {
        run("rust produces", &mut example("produce", &ours))?;
        let node_checked = capture("node checks rust's vectors", &mut node("check", &ours))?;
        run("node produces", &mut node("produce", &theirs))?;
        let rust_checked = capture("rust checks node's vectors", &mut example("check", &theirs))?;
        let pq = pq_interop::run_pq(&dir)?;
        let webauthn = webauthn_interop::run_webauthn(&dir)?;
        Ok::<_, String>((node_checked, rust_checked, pq, webauthn))
    })();
    match result {
        Ok((node_checked, rust_checked, pq, webauthn)) => {
            let _ = std::fs::remove_dir_all(&dir);
            println!("==> interop summary ({:.0?}):", started.elapsed());
            // "<who> checked <producer>: <counts>" → "<counts>".
            let counts = |out: &str| {
                let line = out.lines().next().unwrap_or_default();
                line.split_once(": ").map_or(line, |(_, c)| c).to_owned()
            };
            println!("    rust -> node: {}", counts(&node_checked));
            println!("    node -> rust: {}", counts(&rust_checked));
            println!("    rust -> python (ML-DSA, ML-KEM): {}", pq.rust_python);
            println!("    python -> rust (ML-DSA, ML-KEM): {}", pq.python_rust);
            println!("    rust -> noble  (ML-DSA, ML-KEM): {}", pq.rust_noble);
            println!("    noble -> rust  (ML-DSA, ML-KEM): {}", pq.noble_rust);
            println!("    python fido2 -> rust (WebAuthn): {webauthn}");
            Ok(())
        }
        Err(e) => Err(format!("{e}; vectors kept in {}", dir.display())),
    }
}

/// Like [`run`], but also returns the command's standard output (printed as it is returned).
fn capture(step: &str, cmd: &mut Command) -> Result<String, String> {
    let started = Instant::now();
    println!("==> {step}");
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{step}: cannot start {cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{stdout}");
    println!(
        "==> {step}: {} in {:.0?}",
        if output.status.success() {
            "ok"
        } else {
            "FAILED"
        },
        started.elapsed()
    );
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{step} failed ({})", output.status))
    }
}
