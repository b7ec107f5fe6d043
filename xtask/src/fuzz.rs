//! `cargo xtask fuzz [TARGET] [--duration 10m]`: runs the cargo-fuzz targets of `fuzz/` one at a
//! time (libFuzzer, `-jobs=1`, the corpus in `fuzz/corpus/<target>/`), then minimises each
//! corpus with `cargo fuzz cmin` to the smallest set of inputs that covers every edge. Installs cargo-fuzz from crates.io when missing, and builds on
//! the stable toolchain with `RUSTC_BOOTSTRAP=1` (cargo-fuzz passes nightly-only flags: the
//! sanitizer and coverage instrumentation).
//!
//! Prints, per target, the executions, exec/s, coverage and corpus size from libFuzzer's last
//! lines, and fails (exit 1) when a target crashed, ran out of memory or timed out, naming the
//! artifact under `fuzz/artifacts/<target>/`. Not part of `cargo xtask ci` (minutes per target):
//! CI replays the stored corpus instead (`tests/it/fuzz_corpus.rs` of jose, kms and identity).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::load::parse_duration;

/// The targets, in the order they run, with extra libFuzzer flags.
const TARGETS: &[(&str, &[&str])] = &[
    ("jose_compact", &[]),
    ("jose_json", &[]),
    ("jwk", &[]),
    ("config", &[]),
    ("oauth_forms", &[]),
    ("dpop", &[]),
    ("client_metadata_document", &[]),
    ("client_metadata", &[]),
    ("webauthn", &[]),
];

/// cargo-fuzz version installed when missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const DEFAULT_DURATION: Duration = Duration::from_secs(600);

/// What one run printed last.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Total executions.
    pub execs: u64,
    /// Average executions per second.
    pub exec_per_sec: u64,
    /// Edge coverage (`cov:`).
    pub cov: u64,
    /// Features (`ft:`).
    pub features: u64,
    /// Corpus entries and size as libFuzzer prints it (`corp: 1212/161Kb`).
    pub corpus: String,
}

/// Runs the fuzz targets.
pub fn fuzz(args: &[String]) -> Result<(), String> {
    let mut duration = DEFAULT_DURATION;
    let mut only = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--duration" => {
                let value = rest.next().ok_or("--duration needs a value such as 10m")?;
                duration = parse_duration(value)?;
            }
            name if TARGETS.iter().any(|(t, _)| *t == name) && only.is_none() => only = Some(name),
            other => {
                let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                return Err(format!(
                    "unknown argument {other:?}; usage: cargo xtask fuzz [{}] [--duration 10m]",
                    names.join("|")
                ));
            }
        }
    }
    ensure_cargo_fuzz()?;
    let root = crate::root();
    let fuzz_dir = root.join("fuzz");
    let target_dir = crate::target_dir()?.join("fuzz");
    let mut failures = Vec::new();
    for (target, extra) in TARGETS.iter().filter(|(t, _)| only.is_none_or(|o| o == *t)) {
        let logs = target_dir.join("logs").join(target);
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let before = list(&artifacts);
        println!("==> fuzz {target} for {duration:?}");
        let started = Instant::now();
        let status = cargo_fuzz("run", &fuzz_dir, &target_dir, &logs)
            .args([target, "--"])
            .arg(format!("-max_total_time={}", duration.as_secs()))
            .args(["-jobs=1", "-workers=1", "-print_final_stats=1"])
            .args(*extra)
            .status()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let log = std::fs::read_to_string(logs.join("fuzz-0.log")).unwrap_or_default();
        let stats = parse_stats(&log);
        let new: Vec<PathBuf> = list(&artifacts)
            .into_iter()
            .filter(|a| !before.contains(a))
            .collect();
        println!(
            "==> {target}: {} executions in {:.0?} ({} exec/s), cov {} ft {}, corpus {}",
            stats.execs,
            started.elapsed(),
            stats.exec_per_sec,
            stats.cov,
            stats.features,
            stats.corpus
        );
        if !status.success() || !new.is_empty() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for line in tail.iter().rev() {
                println!("    {line}");
            }
            for a in &new {
                println!("==> {target}: CRASH input kept at {}", a.display());
            }
            failures.push(format!("{target} ({status}, {} new artifacts)", new.len()));
            continue;
        }
        println!("==> {target}: no crash; minimising the corpus");
        // Keep the smallest set covering every edge (not every hit-count or comparison
        // feature): a few hundred small files per target instead of thousands.
        let status = cargo_fuzz("cmin", &fuzz_dir, &target_dir, &logs)
            .args([
                target,
                "--",
                "-use_counters=0",
                "-use_cmp=0",
                "-use_value_profile=0",
            ])
            .status()
            .map_err(|e| format!("cannot run cargo fuzz cmin: {e}"))?;
        if !status.success() {
            failures.push(format!("{target}: cmin failed ({status})"));
        }
        let corpus = list(&fuzz_dir.join("corpus").join(target));
        let bytes: u64 = corpus
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "==> {target}: corpus after cmin: {} files, {} KiB",
            corpus.len(),
            bytes / 1024
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing found problems: {}", failures.join("; ")))
    }
}

/// `cargo fuzz SUBCOMMAND` for `fuzz_dir`, building into `target_dir` on the stable toolchain,
/// run from `logs` (with `-jobs`, libFuzzer writes its output to `fuzz-0.log` in the working
/// directory).
fn cargo_fuzz(subcommand: &str, fuzz_dir: &Path, target_dir: &Path, logs: &Path) -> Command {
    let mut cmd = crate::cargo();
    cmd.current_dir(logs)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_BUILD_JOBS", "1")
        .args(["fuzz", subcommand])
        .arg("--fuzz-dir")
        .arg(fuzz_dir)
        .arg("--target-dir")
        .arg(target_dir);
    cmd
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = crate::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    crate::run(
        "install cargo-fuzz",
        crate::cargo().args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]),
    )
}

/// The files of `dir`, sorted (none when it does not exist).
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The numbers of libFuzzer's last status line (`#N DONE cov: … ft: … corp: …`) and final
/// statistics (`stat::number_of_executed_units`, `stat::average_exec_per_sec`).
pub fn parse_stats(log: &str) -> Stats {
    let mut stats = Stats::default();
    let field = |line: &str, name: &str| -> Option<String> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next().map(str::to_owned)
    };
    if let Some(line) = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "))
    {
        stats.cov = field(line, "cov:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        stats.features = field(line, "ft:").and_then(|v| v.parse().ok()).unwrap_or(0);
        stats.corpus = field(line, "corp:").unwrap_or_default();
        stats.execs = line
            .split_whitespace()
            .next()
            .and_then(|n| n.trim_start_matches('#').parse().ok())
            .unwrap_or(0);
    }
    for line in log.lines() {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            stats.execs = v.trim().parse().unwrap_or(stats.execs);
        }
        if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            stats.exec_per_sec = v.trim().parse().unwrap_or(0);
        }
    }
    stats
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_lines() {
        let log = "#3105852\tREDUCE cov: 3057 ft: 8319 corp: 1212/161Kb lim: 4096 exec/s: 42545 rss: 536Mb\n\
                   #25000000\tDONE   cov: 3100 ft: 8500 corp: 1300/170Kb lim: 4096 exec/s: 41666 rss: 540Mb\n\
                   Done 25000000 runs in 600 second(s)\n\
                   stat::number_of_executed_units: 25000123\n\
                   stat::average_exec_per_sec:     41666\n";
        let s = parse_stats(log);
        assert_eq!(s.execs, 25_000_123);
        assert_eq!(s.exec_per_sec, 41_666);
        assert_eq!((s.cov, s.features), (3100, 8500));
        assert_eq!(s.corpus, "1300/170Kb");
        assert_eq!(parse_stats(""), Stats::default());
    }
}
