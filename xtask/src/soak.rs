//! `cargo xtask soak [--duration 10m]`: `cryptoutil demo all` in a loop against one Identity
//! server and one KMS federated to it (release build, `--dev --demo`, real TLS), for a fixed
//! time. Passes when every run passed and neither server's memory kept growing: the median
//! resident set of the last tenth of the runs is within 5 % (plus 2 MiB) of the median of the
//! tenth after the halfway point. The first half is for filling what is bounded: pools, the
//! audit ring (4096 events) and the KMS's verified-token cache (10,000 tokens, a few per run),
//! which a 10-minute soak fills after about 3,600 runs; a leak keeps growing after that.
//!
//! Writes `target/soak/soak.json` (every run's duration and both servers' RSS after it) and
//! prints a summary for the issue note.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::load::parse_duration;
use crate::server::{ServerProcess, build_release};

const DEFAULT_DURATION: Duration = Duration::from_secs(600);
/// Allowed growth of the median RSS from the tenth after the halfway point to the last tenth.
const GROWTH_RATIO: f64 = 1.05;
const GROWTH_SLACK_KIB: u64 = 2 * 1024;

/// One run of the demo and the servers' memory after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Wall time of the `demo all` process.
    pub millis: u64,
    /// Whether it exited 0.
    pub passed: bool,
    /// Identity's resident set, KiB.
    pub identity_rss_kib: u64,
    /// The KMS's resident set, KiB.
    pub kms_rss_kib: u64,
}

/// Runs the soak.
pub fn soak(args: &[String]) -> Result<(), String> {
    let duration = match args {
        [] => DEFAULT_DURATION,
        [flag, value] if flag == "--duration" => parse_duration(value)?,
        _ => return Err("usage: cargo xtask soak [--duration 10m]".to_owned()),
    };
    let binary = build_release()?;
    let identity = ServerProcess::start(&binary, "identity")?;
    let issuer = identity.ready.public_url.clone();
    let identity_ca = identity.ready.ca_cert.to_string_lossy().into_owned();
    let kms = ServerProcess::start_command(
        &binary,
        "kms",
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--demo",
            "--public-port",
            "0",
            "--admin-port",
            "0",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            &identity_ca,
        ],
    )?;
    println!("==> soak: demo all in a loop for {duration:?}");
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    while started.elapsed() < duration {
        let run = Instant::now();
        let out = Command::new(&binary)
            .args(["demo", "all", "--output", "json", "--kms-url"])
            .arg(&kms.ready.public_url)
            .arg("--kms-admin-url")
            .arg(&kms.ready.admin_url)
            .arg("--identity-url")
            .arg(&issuer)
            .arg("--ca-cert")
            .arg(&kms.ready.ca_cert)
            .arg("--ca-cert")
            .arg(&identity.ready.ca_cert)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the demo: {e}"))?;
        let passed = out.status.success();
        if !passed && failures.len() < 5 {
            failures.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        samples.push(Sample {
            millis: u64::try_from(run.elapsed().as_millis()).unwrap_or(u64::MAX),
            passed,
            identity_rss_kib: rss_kib(identity.pid()).unwrap_or(0),
            kms_rss_kib: rss_kib(kms.pid()).unwrap_or(0),
        });
    }
    let report = judge(&samples);
    write_json(&samples, &report)?;
    println!("{}", report.summary);
    for failure in &failures {
        println!("failed run: {failure}");
    }
    if report.ok {
        Ok(())
    } else {
        Err(format!("soak failed: {}", report.verdict))
    }
}

/// The outcome of a soak.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Every run passed and memory stayed flat.
    pub ok: bool,
    /// Why not, or "passed".
    pub verdict: String,
    /// Lines for the note.
    pub summary: String,
}

/// Judges the samples (see the module documentation).
pub fn judge(samples: &[Sample]) -> Judgement {
    if samples.len() < 20 {
        return Judgement {
            ok: false,
            verdict: format!("only {} runs: too few to judge memory", samples.len()),
            summary: String::new(),
        };
    }
    let failed = samples.iter().filter(|s| !s.passed).count();
    let tenth = samples.len() / 10;
    let half = samples.len() / 2;
    let warm = &samples[tenth..2 * tenth];
    let middle = &samples[half..half + tenth];
    let late = &samples[samples.len() - tenth..];
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(format!("{failed} of {} runs failed", samples.len()));
    }
    let mut lines = vec![format!(
        "soak: {} runs of demo all, {failed} failed; run time median {} ms, max {} ms",
        samples.len(),
        median(samples.iter().map(|s| s.millis)),
        samples.iter().map(|s| s.millis).max().unwrap_or(0)
    )];
    for (name, rss) in [
        (
            "Identity",
            (|s: &Sample| s.identity_rss_kib) as fn(&Sample) -> u64,
        ),
        ("KMS", |s: &Sample| s.kms_rss_kib),
    ] {
        let warmed = median(warm.iter().map(rss));
        let before = median(middle.iter().map(rss));
        let after = median(late.iter().map(rss));
        let peak = samples.iter().map(rss).max().unwrap_or(0);
        lines.push(format!(
            "{name} RSS (medians): {:.1} MiB after warm-up, {:.1} MiB at half time, {:.1} MiB at \
             the end, peak {:.1} MiB",
            mib(warmed),
            mib(before),
            mib(after),
            mib(peak)
        ));
        if before == 0 || after as f64 > before as f64 * GROWTH_RATIO + GROWTH_SLACK_KIB as f64 {
            problems.push(format!(
                "{name} memory kept growing in the second half, from {:.1} to {:.1} MiB",
                mib(before),
                mib(after)
            ));
        }
    }
    Judgement {
        ok: problems.is_empty(),
        verdict: if problems.is_empty() {
            "passed".to_owned()
        } else {
            problems.join("; ")
        },
        summary: lines.join("\n"),
    }
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `VmRSS` of a process, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn write_json(samples: &[Sample], report: &Judgement) -> Result<(), String> {
    let dir = crate::root().join("target").join("soak");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let runs: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| {
            serde_json::json!({
                "ms": s.millis, "passed": s.passed,
                "identity_rss_kib": s.identity_rss_kib, "kms_rss_kib": s.kms_rss_kib,
            })
        })
        .collect();
    let document = serde_json::json!({
        "ok": report.ok, "verdict": report.verdict, "summary": report.summary, "runs": runs,
    });
    let path: &Path = &dir.join("soak.json");
    std::fs::write(path, document.to_string())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("==> soak: samples in {}", path.display());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn samples(rss: impl Fn(usize) -> u64, passed: impl Fn(usize) -> bool) -> Vec<Sample> {
        (0..100)
            .map(|i| Sample {
                millis: 300,
                passed: passed(i),
                identity_rss_kib: 30_000,
                kms_rss_kib: rss(i),
            })
            .collect()
    }

    #[test]
    fn flat_memory_and_passing_runs_pass() {
        // Warm-up growth in the first tenth does not count; noise within the slack does not.
        let judged = judge(&samples(
            |i| {
                if i < 10 {
                    20_000 + i as u64 * 500
                } else {
                    30_000 + (i as u64 % 3) * 100
                }
            },
            |_| true,
        ));
        assert!(judged.ok, "{judged:?}");
        assert!(judged.summary.contains("100 runs"), "{}", judged.summary);
    }

    #[test]
    fn steady_growth_or_a_failed_run_fails() {
        let judged = judge(&samples(|i| 30_000 + i as u64 * 200, |_| true));
        assert!(!judged.ok);
        assert!(
            judged.verdict.contains("KMS memory kept growing"),
            "{}",
            judged.verdict
        );
        let judged = judge(&samples(|_| 30_000, |i| i != 57));
        assert!(!judged.ok);
        assert!(
            judged.verdict.contains("1 of 100 runs failed"),
            "{}",
            judged.verdict
        );
        assert!(!judge(&samples(|_| 30_000, |_| true)[..5]).ok);
    }

    #[test]
    fn rss_of_this_process_is_read() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
