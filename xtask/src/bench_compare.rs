//! `cargo xtask bench-compare [--update]`: instruction counts of a handful of hot operations
//! under callgrind, compared with the baseline in `docs/benchmarks/callgrind.json`.
//!
//! Wall time on a shared 2-core machine swings ±20 %; the number of instructions an operation
//! executes does not. `crates/kms/examples/hot_ops.rs` runs one operation N times inside
//! `hot_ops_measured`, which calls `hot_ops_done` at its end; callgrind dumps its counters on
//! entry to each, so one dump holds exactly the measured loop (all threads, SQLite's worker
//! included), and its `Ir`
//! total / N is the figure. The same dump's function list must not name what a warm request
//! never does (PBKDF2, barrier unsealing, a JWKS fetch). A figure more than
//! [`THRESHOLD_PERCENT`] above its baseline fails; `--update` rewrites the baseline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::verdict::{THRESHOLD_PERCENT, Verdict, judge};
use crate::{cargo, run, wall_compare};

/// The function the example measures in (callgrind dumps the set-up on entering it).
const MEASURED_FN: &str = "hot_ops_measured";
/// The function that ends the measured loop (callgrind dumps the loop on entering it).
const DONE_FN: &str = "hot_ops_done";

/// Functions a warm operation must not call: each rule is a set of substrings that together
/// identify one (matched against callgrind's function names, case-sensitive).
const NO_PBKDF2: &[&str] = &["pbkdf2"];
const NO_PBKDF2_C: &[&str] = &["PBKDF2"];
const NO_UNSEAL: &[&str] = &["barrier", "unseal"];
const NO_CONTENT_KEY_LOAD: &[&str] = &["barrier", "load_content"];
const NO_JWKS_FETCH: &[&str] = &["Jwks", "fetch"];
const WARM: &[&[&str]] = &[
    NO_PBKDF2,
    NO_PBKDF2_C,
    NO_UNSEAL,
    NO_CONTENT_KEY_LOAD,
    NO_JWKS_FETCH,
];

/// `(operation, iterations, forbidden functions)`; see `crates/kms/examples/hot_ops.rs`.
const OPERATIONS: &[(&str, u64, &[&[&str]])] = &[
    ("jose-dir-a256gcm-64", 2000, &[]),
    ("jose-es256-sign-64", 300, &[]),
    ("kms-encrypt-dir-64", 300, WARM),
    ("kms-auth-basic-cached", 2000, WARM),
    ("kms-auth-bearer-cached", 2000, WARM),
];

/// One callgrind dump: what triggered it, its instruction total, the functions it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// The `desc: Trigger:` text.
    pub trigger: String,
    /// Instructions executed (`Ir`), from `totals:` (or `summary:`).
    pub instructions: u64,
    /// Every `fn=`/`cfn=` name.
    pub functions: BTreeSet<String>,
}

/// Parses a callgrind output file written with `--compress-strings=no`.
pub fn parse_callgrind(text: &str) -> Result<Dump, String> {
    let mut trigger = String::new();
    let mut totals = None;
    let mut summary = None;
    let mut events = None;
    let mut functions = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("desc: Trigger:") {
            trigger = rest.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("events:") {
            events = Some(
                rest.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        } else if let Some(rest) = line.strip_prefix("totals:") {
            totals = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("summary:") {
            summary = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(name) = line
            .strip_prefix("fn=")
            .or_else(|| line.strip_prefix("cfn="))
        {
            // `(id) name` when strings are compressed; the name alone otherwise.
            let name = match name.strip_prefix('(') {
                Some(rest) => rest.split_once(") ").map_or("", |(_, n)| n),
                None => name,
            };
            if !name.is_empty() {
                functions.insert(name.to_owned());
            }
        }
    }
    if let Some(events) = events
        && events.first().map(String::as_str) != Some("Ir")
    {
        return Err(format!("the first event is not Ir: {events:?}"));
    }
    let instructions = totals
        .or(summary)
        .ok_or("no totals: or summary: line")?
        .parse()
        .map_err(|e| format!("bad instruction total: {e}"))?;
    Ok(Dump {
        trigger,
        instructions,
        functions,
    })
}

/// The functions of `dump` that match a forbidden rule.
pub fn forbidden_calls(dump: &Dump, rules: &[&[&str]]) -> Vec<String> {
    dump.functions
        .iter()
        .filter(|f| {
            rules
                .iter()
                .any(|rule| rule.iter().all(|part| f.contains(part)))
        })
        .cloned()
        .collect()
}

/// Instructions per operation by name, from a baseline document.
pub fn baseline_figures(doc: &Value) -> BTreeMap<String, f64> {
    doc["operations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, v)| Some((name.clone(), v["instructions_per_op"].as_f64()?)))
        .collect()
}

fn baseline_path() -> PathBuf {
    crate::root()
        .join("docs")
        .join("benchmarks")
        .join("callgrind.json")
}

/// `cargo xtask bench-compare [--update] [OPERATION ...]`; with `--criterion [RUN]` or
/// `--load [RUN]`, the wall-clock comparison of [`wall_compare`] instead.
pub fn bench_compare(args: &[String]) -> Result<(), String> {
    for (flag, kind) in [
        ("--criterion", wall_compare::Kind::Criterion),
        ("--load", wall_compare::Kind::Load),
    ] {
        if let Some(at) = args.iter().position(|a| a == flag) {
            let run = args
                .get(at + 1)
                .filter(|a| !a.starts_with("--"))
                .map(Path::new);
            let regressions = wall_compare::compare(kind, run)?;
            return if regressions.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "bench-compare {flag}: slower than the baseline: {}",
                    regressions.join("; ")
                ))
            };
        }
    }
    let started = Instant::now();
    let update = args.iter().any(|a| a == "--update");
    let only: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if let Some(unknown) = only
        .iter()
        .find(|o| !OPERATIONS.iter().any(|(n, _, _)| n == *o))
    {
        return Err(format!(
            "unknown operation {unknown:?}; known: {}",
            OPERATIONS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    ensure_valgrind()?;
    run(
        "build the hot-operation runner (release)",
        cargo().args([
            "build",
            "--release",
            "--locked",
            "-p",
            "cryptoutil-kms",
            "--example",
            "hot_ops",
        ]),
    )?;
    let target = crate::target_dir()?;
    let binary = target.join("release").join("examples").join("hot_ops");
    let out_dir = target.join("bench-compare");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;

    let baseline_doc: Value = std::fs::read_to_string(baseline_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    let baseline = baseline_figures(&baseline_doc);
    let mut measured = serde_json::Map::new();
    let mut failures = Vec::new();
    println!("==> callgrind instruction counts per operation (threshold +{THRESHOLD_PERCENT} %)");
    for &(name, iterations, rules) in OPERATIONS {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let dump = callgrind(&binary, &out_dir, name, iterations)?;
        let per_op = dump.instructions as f64 / iterations as f64;
        let forbidden = forbidden_calls(&dump, rules);
        let verdict = judge(baseline.get(name).copied(), per_op, THRESHOLD_PERCENT);
        let base = baseline
            .get(name)
            .map_or_else(|| "-".to_owned(), |b| format!("{b:.0}"));
        let shown = match &verdict {
            Verdict::Same(c) => format!("{c:+.1} %"),
            Verdict::Regressed(c) => format!("{c:+.1} % REGRESSION"),
            Verdict::Improved(c) => format!("{c:+.1} % (improved: record it with --update)"),
            Verdict::New => "new".to_owned(),
        };
        println!(
            "    {name:<26} {per_op:>12.0} Ir/op   baseline {base:>10}   {shown}   ({} functions in the loop)",
            dump.functions.len()
        );
        if let Verdict::Regressed(c) = verdict
            && !update
        {
            failures.push(format!("{name}: {c:+.1} % instructions per operation"));
        }
        if !forbidden.is_empty() {
            failures.push(format!(
                "{name}: the warm loop called {}",
                forbidden.join(", ")
            ));
        }
        measured.insert(
            name.to_owned(),
            json!({
                "iterations": iterations,
                "instructions_per_op": per_op.round(),
                "functions_in_loop": dump.functions.len(),
            }),
        );
    }
    let current = json!({
        "tool": "valgrind --tool=callgrind (Ir of the measured loop / iterations); cargo xtask bench-compare",
        "threshold_percent": THRESHOLD_PERCENT,
        "operations": measured,
    });
    let text = serde_json::to_string_pretty(&current).map_err(|e| e.to_string())? + "\n";
    let current_path = out_dir.join("callgrind.json");
    std::fs::write(&current_path, &text)
        .map_err(|e| format!("cannot write {}: {e}", current_path.display()))?;
    if update && failures.is_empty() {
        let mut doc = baseline_doc.clone();
        let operations = doc
            .as_object_mut()
            .map(|o| o.entry("operations").or_insert_with(|| json!({})));
        if let (Some(Value::Object(ops)), Value::Object(new)) = (operations, &current["operations"])
        {
            for (k, v) in new {
                ops.insert(k.clone(), v.clone());
            }
        }
        doc["tool"] = current["tool"].clone();
        doc["threshold_percent"] = current["threshold_percent"].clone();
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
        std::fs::write(baseline_path(), text)
            .map_err(|e| format!("cannot write {}: {e}", baseline_path().display()))?;
        println!("==> baseline updated: {}", baseline_path().display());
    }
    println!("==> bench-compare in {:.0?}", started.elapsed());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench-compare: {} (profiles in {})",
            failures.join("; "),
            out_dir.display()
        ))
    }
}

/// Runs one operation under callgrind and returns the dump of the measured loop.
fn callgrind(binary: &Path, out_dir: &Path, name: &str, iterations: u64) -> Result<Dump, String> {
    let base = out_dir.join(format!("{name}.callgrind"));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", base.display()))
        .arg(format!("--dump-before=*{MEASURED_FN}*"))
        .arg(format!("--dump-before=*{DONE_FN}*"))
        .args([
            "--dump-instr=no",
            "--compress-strings=no",
            "--compress-pos=no",
        ])
        .arg(binary)
        .arg(name)
        .arg(iterations.to_string())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{name} failed under callgrind ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            tail(&String::from_utf8_lossy(&output.stderr))
        ));
    }
    // Dumps are <base>.1, <base>.2, ...; the loop's is the one the end marker triggered.
    let mut loop_dump = None;
    for part in 1..=8 {
        let path = PathBuf::from(format!("{}.{part}", base.display()));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let dump = parse_callgrind(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if dump.trigger.contains(DONE_FN) {
            loop_dump = Some(dump);
        }
    }
    loop_dump.ok_or_else(|| {
        format!(
            "{name}: no callgrind dump was triggered by {DONE_FN} (see {}.*)",
            base.display()
        )
    })
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Installs valgrind from Debian's packages when it is missing.
fn ensure_valgrind() -> Result<(), String> {
    let found = || {
        Command::new("valgrind")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found() {
        return Ok(());
    }
    println!("==> installing valgrind from Debian's packages");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "valgrind"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        install();
    }
    if found() {
        Ok(())
    } else {
        Err("bench-compare needs valgrind (apt-get install valgrind)".to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The shape of a callgrind dump with `--compress-strings=no --dump-instr=no`.
    const DUMP: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 4242\n\
cmd:  target/release/examples/hot_ops kms-auth-basic-cached 2000\npart: 2\n\n\
desc: I1 cache: \ndesc: Timerange: Basic block 1000 - 5000\n\
desc: Trigger: --dump-before=hot_ops::hot_ops_done\n\n\
positions: line\nevents: Ir\nsummary: 3400000\n\n\
ob=/work/target/release/examples/hot_ops\nfl=???\n\
fn=hot_ops::hot_ops_measured\n0 12\ncfn=cryptoutil_kms::auth::Authenticator<S>::authenticate_for::{{closure}}\ncalls=2000 0\n0 3399000\n\
fn=cryptoutil_realm::cache::CredentialCache<V>::get\n0 500000\n\
fn=aws_lc_rs::hmac::Context::sign\n0 100000\n\ntotals: 3400012\n";

    #[test]
    fn a_dump_yields_its_trigger_total_and_functions() {
        let dump = parse_callgrind(DUMP).unwrap();
        assert_eq!(
            dump.trigger, "--dump-before=hot_ops::hot_ops_done",
            "the trigger names the end marker"
        );
        assert_eq!(dump.instructions, 3_400_012, "totals: wins over summary:");
        assert!(
            dump.functions
                .contains("cryptoutil_realm::cache::CredentialCache<V>::get")
        );
        assert!(
            dump.functions
                .contains("cryptoutil_kms::auth::Authenticator<S>::authenticate_for::{{closure}}")
        );
        assert_eq!(dump.functions.len(), 4);

        let summary_only = DUMP.replace("totals: 3400012\n", "");
        assert_eq!(
            parse_callgrind(&summary_only).unwrap().instructions,
            3_400_000
        );
        assert!(parse_callgrind("events: Ir\nfn=x\n").is_err(), "no total");
        assert!(
            parse_callgrind("events: Dr Ir\ntotals: 5\n").is_err(),
            "Ir must come first"
        );
        assert!(parse_callgrind("events: Ir\ntotals: many\n").is_err());
        // Compressed names: "(id) name" the first time, "(id)" after.
        let compressed = parse_callgrind("events: Ir\nfn=(1) a::b\nfn=(1)\ntotals: 1\n").unwrap();
        assert_eq!(
            compressed.functions.into_iter().collect::<Vec<_>>(),
            ["a::b"]
        );
    }

    #[test]
    fn forbidden_functions_are_found_by_all_their_parts() {
        let mut dump = parse_callgrind(DUMP).unwrap();
        assert!(forbidden_calls(&dump, WARM).is_empty());
        dump.functions
            .insert("aws_lc_rs::pbkdf2::verify".to_owned());
        dump.functions
            .insert("cryptoutil_kms::barrier::Barrier<S>::unseal::{{closure}}".to_owned());
        dump.functions.insert(
            "<hot_ops::Jwks as cryptoutil_realm::bearer::jwks::JwksFetcher>::fetch".to_owned(),
        );
        // "unseal" alone (another module) or "barrier" alone is not a barrier unwrap.
        dump.functions
            .insert("cryptoutil_kms::barrier::Barrier<S>::status".to_owned());
        dump.functions.insert("other::unseal_report".to_owned());
        let found = forbidden_calls(&dump, WARM);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(forbidden_calls(&dump, &[]).is_empty());
    }

    #[test]
    fn baseline_figures_are_read_by_operation() {
        let doc = json!({"operations": {
            "a": {"iterations": 10, "instructions_per_op": 1234.0},
            "b": {"iterations": 10},
        }});
        let figures = baseline_figures(&doc);
        assert_eq!(figures.get("a"), Some(&1234.0));
        assert!(!figures.contains_key("b"));
        assert!(baseline_figures(&json!({})).is_empty());
        // The stored baseline covers every operation.
        let stored: Value =
            serde_json::from_str(&std::fs::read_to_string(baseline_path()).unwrap()).unwrap();
        let stored = baseline_figures(&stored);
        for (name, _, _) in OPERATIONS {
            assert!(stored.contains_key(*name), "{name} has no baseline");
        }
    }
}
