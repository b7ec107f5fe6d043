//! `cargo xtask bench-compare --criterion [RUN]` and `--load [RUN]`: a run's wall-clock figures
//! against the baselines in `docs/benchmarks/` (criterion medians; load-sweep requests/s matched
//! by scenario and concurrency). More than [`THRESHOLD_PERCENT`] worse fails.
//!
//! Wall time on a shared 2-core machine is noisy (±20 % between runs is common), so these
//! comparisons are for a quiet machine; CI records its wall-clock runs and prints this
//! comparison without failing on it, and gates on instruction counts instead
//! ([`crate::bench_compare`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::bench_criterion;
use crate::verdict::{THRESHOLD_PERCENT, Verdict, judge};

/// One figure of a run against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Benchmark id, or `scenario c<concurrency>`.
    pub id: String,
    /// The baseline's figure.
    pub baseline: f64,
    /// This run's figure.
    pub now: f64,
    /// Judged so that `Regressed` always means slower.
    pub verdict: Verdict,
}

/// Criterion medians (ns; higher is slower) of `run` against `baseline`, for the benchmarks
/// both contain.
pub fn criterion_changes(baseline: &Value, run: &Value, threshold: f64) -> Vec<Change> {
    let base = bench_criterion::medians(baseline);
    bench_criterion::medians(run)
        .into_iter()
        .filter_map(|(id, now)| {
            let b = *base.get(&id)?;
            Some(Change {
                verdict: judge(Some(b), now, threshold),
                id,
                baseline: b,
                now,
            })
        })
        .collect()
}

/// Load-sweep requests/s (higher is faster) of `run` against `baseline`, row by row
/// (scenario and concurrency).
pub fn load_changes(baseline: &Value, run: &Value, threshold: f64) -> Vec<Change> {
    let rows = |doc: &Value| -> Vec<(String, f64)> {
        doc["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    format!(
                        "{} c{}",
                        r["scenario"].as_str()?,
                        r["concurrency"].as_u64()?
                    ),
                    r["requests_per_s"].as_f64()?,
                ))
            })
            .collect()
    };
    let base = rows(baseline);
    rows(run)
        .into_iter()
        .filter_map(|(id, now)| {
            let b = base.iter().find(|(i, _)| *i == id)?.1;
            // Judged on time per request, so a throughput drop reads as a regression.
            let verdict = match judge(Some(b), now, threshold) {
                Verdict::Regressed(c) => Verdict::Improved(c),
                Verdict::Improved(c) => Verdict::Regressed(c),
                other => other,
            };
            Some(Change {
                id,
                baseline: b,
                now,
                verdict,
            })
        })
        .collect()
}

/// Prints the changes as a table and returns the regressions.
pub fn print_changes(title: &str, unit: &str, changes: &[Change]) -> Vec<String> {
    println!(
        "==> {title} ({} compared, threshold {THRESHOLD_PERCENT} %)",
        changes.len()
    );
    let mut regressions = Vec::new();
    for c in changes {
        let shown = match c.verdict {
            Verdict::Same(p) => format!("{p:+.1} %"),
            Verdict::Regressed(p) => format!("{p:+.1} % SLOWER"),
            Verdict::Improved(p) => format!("{p:+.1} % faster"),
            Verdict::New => "new".to_owned(),
        };
        println!(
            "    {:<52} {:>12.1} {unit}  baseline {:>12.1}  {shown}",
            c.id, c.now, c.baseline
        );
        if let Verdict::Regressed(p) = c.verdict {
            regressions.push(format!("{}: {p:+.1} %", c.id));
        }
    }
    regressions
}

fn docs_file(name: &str) -> PathBuf {
    crate::root().join("docs").join("benchmarks").join(name)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Which wall-clock record to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `bench-criterion`'s criterion.json.
    Criterion,
    /// `bench-load`'s load.json.
    Load,
}

/// Compares a run (default: the last one under the target directory) with the docs baseline;
/// returns the regressions (empty: none).
pub fn compare(kind: Kind, run: Option<&Path>) -> Result<Vec<String>, String> {
    let (file, default_dir) = match kind {
        Kind::Criterion => ("criterion.json", bench_criterion::output_dir()?),
        Kind::Load => ("load.json", crate::target_dir()?.join("bench-load")),
    };
    let run_path = run.map_or_else(|| default_dir.join(file), Path::to_path_buf);
    let run = read_json(&run_path)?;
    let baseline = read_json(&docs_file(file))?;
    let (title, unit, changes) = match kind {
        Kind::Criterion => (
            "criterion medians against docs/benchmarks/criterion.json",
            "ns",
            criterion_changes(&baseline, &run, THRESHOLD_PERCENT),
        ),
        Kind::Load => (
            "load-sweep throughput against docs/benchmarks/load.json",
            "req/s",
            load_changes(&baseline, &run, THRESHOLD_PERCENT),
        ),
    };
    if changes.is_empty() {
        return Err(format!(
            "{} has nothing in common with the baseline {}",
            run_path.display(),
            docs_file(file).display()
        ));
    }
    Ok(print_changes(title, unit, &changes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slower_criterion_medians_are_regressions() {
        let baseline = json!({"benchmarks": {
            "a": {"median_ns": 1000.0}, "b": {"median_ns": 1000.0},
            "c": {"median_ns": 1000.0}, "gone": {"median_ns": 5.0}}});
        let run = json!({"benchmarks": {
            "a": {"median_ns": 1150.0}, "b": {"median_ns": 1050.0},
            "c": {"median_ns": 700.0}, "new": {"median_ns": 5.0}}});
        let changes = criterion_changes(&baseline, &run, 10.0);
        assert_eq!(
            changes.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"],
            "only benchmarks both runs have"
        );
        assert!(matches!(changes[0].verdict, Verdict::Regressed(p) if (p - 15.0).abs() < 1e-9));
        assert!(matches!(changes[1].verdict, Verdict::Same(_)));
        assert!(matches!(changes[2].verdict, Verdict::Improved(_)));
        assert_eq!(print_changes("t", "ns", &changes), vec!["a: +15.0 %"]);
    }

    #[test]
    fn lower_throughput_is_a_regression() {
        let row =
            |s: &str, c: u64, r: f64| json!({"scenario": s, "concurrency": c, "requests_per_s": r});
        let baseline = json!({"results": [
            row("kms-encrypt-dir-64", 16, 30_000.0), row("kms-encrypt-dir-64", 64, 30_000.0),
            row("kms-echo", 16, 40_000.0)]});
        let run = json!({"results": [
            row("kms-encrypt-dir-64", 16, 26_000.0), row("kms-encrypt-dir-64", 64, 36_000.0),
            row("kms-echo", 16, 39_000.0), row("identity-jwks", 16, 1.0)]});
        let changes = load_changes(&baseline, &run, 10.0);
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].id, "kms-encrypt-dir-64 c16");
        assert!(
            matches!(changes[0].verdict, Verdict::Regressed(_)),
            "−13 % req/s"
        );
        assert!(
            matches!(changes[1].verdict, Verdict::Improved(_)),
            "+20 % req/s"
        );
        assert!(matches!(changes[2].verdict, Verdict::Same(_)));
        assert_eq!(print_changes("t", "req/s", &changes).len(), 1);
    }

    #[test]
    fn the_stored_baselines_compare_with_themselves() {
        for file in ["criterion.json", "load.json"] {
            let doc = read_json(&docs_file(file)).unwrap();
            let changes = match file {
                "criterion.json" => criterion_changes(&doc, &doc, 10.0),
                _ => load_changes(&doc, &doc, 10.0),
            };
            assert!(!changes.is_empty(), "{file} holds figures");
            assert!(
                changes.iter().all(|c| c.verdict == Verdict::Same(0.0)),
                "{file}"
            );
        }
    }
}
