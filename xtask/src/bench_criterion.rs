//! `cargo xtask bench-criterion`: runs the criterion benchmarks of the workspace and records
//! them as data. Each bench target runs with `CRITERION_HOME` pointing at a fresh directory, so
//! the results read back are this run's only; every benchmark's `new/benchmark.json` and
//! `new/estimates.json` become one row of `<target>/bench-criterion/criterion.json` (median, its
//! 95 % confidence interval, mean, throughput), with the criterion text beside it
//! (`criterion.txt`) and a Markdown table (`criterion.md`). `--update-docs` copies the three to
//! `docs/benchmarks/`, the baseline `cargo xtask bench-compare --criterion` compares with.
//!
//! Wall time on a shared 2-core machine swings ±20 %: these figures are a record and a guide;
//! the regression gate CI enforces is the instruction counts of `bench-compare`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::cargo;

/// One criterion bench target of the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bench {
    /// Name on the command line and in the JSON.
    pub name: &'static str,
    /// Cargo package.
    pub package: &'static str,
    /// `[[bench]]` target.
    pub target: &'static str,
    /// Criterion filter (a regular expression over benchmark ids) for `--quick`; `None`: the
    /// bench is not part of the quick set.
    pub quick: Option<&'static str>,
}

/// Every criterion bench target, in the order they run.
pub const BENCHES: &[Bench] = &[
    Bench {
        name: "jose",
        package: "cryptoutil-jose",
        target: "jose",
        quick: Some("^(jwe_dir_A256GCM|jwe_A256KW_A256GCM|jws_ES256|jws_EdDSA|jws_RS256)/"),
    },
    Bench {
        name: "kms-keys",
        package: "cryptoutil-kms",
        target: "keys",
        quick: Some("^kms_service/(encrypt|decrypt) A256GCM/dir 64B$"),
    },
    Bench {
        name: "kms-auth",
        package: "cryptoutil-kms",
        target: "auth",
        quick: None,
    },
    Bench {
        name: "kms-federation",
        package: "cryptoutil-kms",
        target: "federation",
        quick: None,
    },
    Bench {
        name: "identity-tokens",
        package: "cryptoutil-identity",
        target: "tokens",
        quick: Some("^access_token/sign/ES256$"),
    },
    Bench {
        name: "tls-handshake",
        package: "cryptoutil-tls",
        target: "handshake",
        quick: None,
    },
];

/// Criterion's timing options for a full run and for `--quick`.
const FULL_TIMING: &[&str] = &["--warm-up-time", "1", "--measurement-time", "3"];
const QUICK_TIMING: &[&str] = &[
    "--warm-up-time",
    "0.3",
    "--measurement-time",
    "1",
    "--sample-size",
    "20",
];

/// `cargo xtask bench-criterion` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionArgs {
    /// The bench targets to run.
    pub benches: Vec<Bench>,
    /// The quick set with short timing (what CI records).
    pub quick: bool,
    /// Copy the results to docs/benchmarks/.
    pub update_docs: bool,
}

/// The usage text.
pub fn usage() -> String {
    format!(
        "usage: cargo xtask bench-criterion [--quick] [--benches NAME,NAME,...] [--update-docs]\n\
         Runs the criterion benchmarks (bench profile) and writes <target>/bench-criterion/\n\
         criterion.json, criterion.txt and criterion.md (--update-docs: also docs/benchmarks/).\n\
         --quick: only the headline benchmarks, {} (what CI records).\n\
         Benches: {}.\n",
        QUICK_TIMING.join(" "),
        BENCHES
            .iter()
            .map(|b| b.name)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Parses the arguments after `bench-criterion`.
pub fn parse_args(args: &[String]) -> Result<CriterionArgs, String> {
    let mut parsed = CriterionArgs {
        benches: BENCHES.to_vec(),
        quick: false,
        update_docs: false,
    };
    let mut named = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => parsed.quick = true,
            "--update-docs" => parsed.update_docs = true,
            "--benches" => {
                let list = it.next().ok_or("--benches needs a value")?;
                parsed.benches = list
                    .split(',')
                    .map(|name| {
                        BENCHES
                            .iter()
                            .find(|b| b.name == name.trim())
                            .copied()
                            .ok_or_else(|| format!("unknown bench {name:?}\n{}", usage()))
                    })
                    .collect::<Result<_, _>>()?;
                named = true;
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    if parsed.quick && !named {
        parsed.benches.retain(|b| b.quick.is_some());
    }
    if parsed.benches.is_empty() {
        return Err("nothing to run".to_owned());
    }
    Ok(parsed)
}

/// The output directory of a run.
pub fn output_dir() -> Result<PathBuf, String> {
    Ok(crate::target_dir()?.join("bench-criterion"))
}

/// `cargo xtask bench-criterion ...`.
pub fn bench_criterion(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let started = Instant::now();
    let out_dir = output_dir()?;
    let home = out_dir.join("data");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    let timing = if args.quick {
        QUICK_TIMING
    } else {
        FULL_TIMING
    };
    let executables = build(&args.benches)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for bench in &args.benches {
        let (executable, package_dir) = executables
            .get(bench.target)
            .ok_or_else(|| format!("cargo built no bench executable for {}", bench.name))?;
        let bench_home = home.join(bench.name);
        let filter = bench.quick.filter(|_| args.quick);
        // As `cargo bench` runs it: from the package's directory, with `--bench`.
        let mut cmd = Command::new(executable);
        cmd.current_dir(package_dir)
            .env("CRITERION_HOME", &bench_home)
            .args(["--bench", "--noplot"])
            .args(timing)
            .args(filter);
        let shown = format!(
            "cargo bench -p {} --bench {} -- --noplot {}{}",
            bench.package,
            bench.target,
            timing.join(" "),
            filter.map(|f| format!(" '{f}'")).unwrap_or_default()
        );
        println!("==> {shown}");
        let output = run_teed(&mut cmd)?;
        text.push_str(&format!("$ {shown}\n{output}\n"));
        let found = collect(&bench_home, bench.name)?;
        if found.is_empty() {
            return Err(format!(
                "{}: criterion wrote no results under {}",
                bench.name,
                bench_home.display()
            ));
        }
        rows.extend(found);
    }
    let report = json!({
        "tool": "criterion (cargo xtask bench-criterion); times in nanoseconds per iteration",
        "generated_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        "machine": crate::proc_stats::machine(),
        "settings": {
            "quick": args.quick,
            "criterion_options": timing,
            "profile": "bench (= release: thin LTO, 4 codegen units)",
        },
        "loadavg_after": crate::proc_stats::loadavg(),
        "benchmarks": rows_to_map(&rows),
    });
    let markdown = render_markdown(&report);
    let mut dirs = vec![out_dir];
    if args.update_docs {
        dirs.push(crate::root().join("docs").join("benchmarks"));
    }
    let json_text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n";
    crate::write_records(
        &dirs,
        &[
            ("criterion.json", &json_text),
            ("criterion.txt", &text),
            ("criterion.md", &markdown),
        ],
    )?;
    println!(
        "==> bench-criterion: {} benchmarks in {:.0?}",
        rows.len(),
        started.elapsed()
    );
    Ok(())
}

/// Builds every bench target in one cargo invocation (one feature resolution, so the dependencies
/// are compiled once) and returns each target's executable and package directory.
fn build(benches: &[Bench]) -> Result<BTreeMap<String, (PathBuf, PathBuf)>, String> {
    let started = Instant::now();
    println!("==> build the benches (bench profile)");
    let mut cmd = cargo();
    cmd.args([
        "bench",
        "--no-run",
        "--locked",
        "--message-format=json-render-diagnostics",
    ]);
    for bench in benches {
        cmd.args(["-p", bench.package, "--bench", bench.target]);
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("building the benches failed ({})", output.status));
    }
    let built = bench_executables(&String::from_utf8_lossy(&output.stdout));
    println!("==> build the benches: ok in {:.0?}", started.elapsed());
    Ok(built)
}

/// Bench target name → (executable, package directory), from cargo's JSON messages.
pub fn bench_executables(messages: &str) -> BTreeMap<String, (PathBuf, PathBuf)> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bench"))
        })
        .filter_map(|m| {
            let name = m["target"]["name"].as_str()?.to_owned();
            let executable = PathBuf::from(m["executable"].as_str()?);
            let package_dir = Path::new(m["manifest_path"].as_str()?)
                .parent()?
                .to_path_buf();
            Some((name, (executable, package_dir)))
        })
        .collect()
}

/// Runs a command, printing its standard output as it comes and returning it; standard error
/// (cargo's progress) goes to the terminal only.
fn run_teed(cmd: &mut Command) -> Result<String, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let mut captured = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading the bench's output: {e}"))?;
            println!("{line}");
            captured.push_str(&line);
            captured.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))?;
    if status.success() {
        Ok(captured)
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

/// One benchmark's figures, read from criterion's files.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `group/function/value`, as criterion prints it.
    pub id: String,
    /// The bench target it came from.
    pub bench: String,
    /// Median time per iteration, ns.
    pub median_ns: f64,
    /// The median's 95 % confidence interval, ns.
    pub median_ci_ns: (f64, f64),
    /// Mean time per iteration, ns.
    pub mean_ns: f64,
    /// Bytes (or elements) per iteration, when the bench declared a throughput.
    pub throughput: Option<(String, u64)>,
}

/// Reads every benchmark under a `CRITERION_HOME` (`…/new/benchmark.json` + `estimates.json`).
pub fn collect(home: &Path, bench: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                let read = |name: &str| {
                    let file = path.join(name);
                    std::fs::read_to_string(&file)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))
                        .and_then(|t| {
                            serde_json::from_str::<Value>(&t)
                                .map_err(|e| format!("{}: {e}", file.display()))
                        })
                };
                let row = parse_row(&read("benchmark.json")?, &read("estimates.json")?, bench)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                rows.push(row);
            } else {
                stack.push(path);
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

/// One row from criterion's `benchmark.json` and `estimates.json`.
pub fn parse_row(benchmark: &Value, estimates: &Value, bench: &str) -> Result<Row, String> {
    let id = benchmark["full_id"]
        .as_str()
        .ok_or("benchmark.json has no full_id")?
        .to_owned();
    let point = |name: &str| {
        estimates[name]["point_estimate"]
            .as_f64()
            .ok_or_else(|| format!("estimates.json has no {name}.point_estimate"))
    };
    let interval = &estimates["median"]["confidence_interval"];
    let bound = |name: &str| {
        interval[name]
            .as_f64()
            .ok_or_else(|| format!("estimates.json has no median confidence {name}"))
    };
    let throughput = benchmark["throughput"].as_object().and_then(|t| {
        t.iter()
            .find_map(|(unit, n)| Some((unit.to_lowercase(), n.as_u64()?)))
    });
    Ok(Row {
        id,
        bench: bench.to_owned(),
        median_ns: point("median")?,
        median_ci_ns: (bound("lower_bound")?, bound("upper_bound")?),
        mean_ns: point("mean")?,
        throughput,
    })
}

fn round(x: f64) -> f64 {
    if x >= 100.0 {
        x.round()
    } else {
        (x * 100.0).round() / 100.0
    }
}

fn rows_to_map(rows: &[Row]) -> Value {
    let map: serde_json::Map<String, Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({
                "bench": r.bench,
                "median_ns": round(r.median_ns),
                "median_ci95_ns": [round(r.median_ci_ns.0), round(r.median_ci_ns.1)],
                "mean_ns": round(r.mean_ns),
            });
            if let Some((unit, n)) = &r.throughput {
                v["throughput"] = json!({ unit.as_str(): n });
            }
            (r.id.clone(), v)
        })
        .collect();
    Value::Object(map)
}

/// Median ns per benchmark id, from a criterion.json document.
pub fn medians(doc: &Value) -> BTreeMap<String, f64> {
    doc["benchmarks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, v)| Some((id.clone(), v["median_ns"].as_f64()?)))
        .collect()
}

/// A duration in ns as criterion would show it.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The report as a Markdown table.
pub fn render_markdown(report: &Value) -> String {
    let machine = &report["machine"];
    let mut out = format!(
        "# Criterion benchmarks (`cargo xtask bench-criterion`)\n\nMachine: {} ({} cores, {} GiB); \
         criterion {}; load average after the run {}. Medians with their 95 % confidence \
         interval; throughput from the median.\n\n\
         | bench | benchmark | median | 95 % CI | throughput |\n|---|---|---:|---|---:|\n",
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["memory_gib"],
        report["settings"]["criterion_options"]
            .as_array()
            .map(|o| o
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "))
            .unwrap_or_default(),
        report["loadavg_after"].as_str().unwrap_or("?"),
    );
    for (id, v) in report["benchmarks"].as_object().into_iter().flatten() {
        let median = v["median_ns"].as_f64().unwrap_or(0.0);
        let ci = v["median_ci95_ns"]
            .as_array()
            .filter(|a| a.len() == 2)
            .map(|a| {
                format!(
                    "{} – {}",
                    human_ns(a[0].as_f64().unwrap_or(0.0)),
                    human_ns(a[1].as_f64().unwrap_or(0.0))
                )
            })
            .unwrap_or_default();
        let throughput = v["throughput"]["bytes"]
            .as_f64()
            .filter(|_| median > 0.0)
            .map(|b| format!("{:.1} MiB/s", b / (median / 1e9) / (1024.0 * 1024.0)))
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | `{id}` | {} | {ci} | {throughput} |\n",
            v["bench"].as_str().unwrap_or("?"),
            human_ns(median),
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_choose_the_benches() {
        let all = parse_args(&[]).unwrap();
        assert_eq!(all.benches.len(), BENCHES.len());
        assert!(!all.quick && !all.update_docs);
        let quick = parse_args(&strings(&["--quick"])).unwrap();
        assert!(quick.quick);
        assert!(quick.benches.iter().all(|b| b.quick.is_some()));
        assert!(quick.benches.iter().any(|b| b.name == "jose"));
        assert!(!quick.benches.iter().any(|b| b.name == "kms-auth"));
        let named = parse_args(&strings(&["--benches", "kms-auth,jose", "--update-docs"])).unwrap();
        assert_eq!(
            named.benches.iter().map(|b| b.name).collect::<Vec<_>>(),
            ["kms-auth", "jose"]
        );
        assert!(named.update_docs);
        for bad in [&["--benches", "nope"][..], &["--benches"], &["--fast"]] {
            assert!(parse_args(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_quick_filters_are_valid_for_their_benches() {
        // Each quick filter matches benchmarks its bench really defines (the ids of the stored
        // baseline, which a full run wrote), as criterion's own regex filter would.
        let stored: Value = serde_json::from_str(
            &std::fs::read_to_string(
                crate::root()
                    .join("docs")
                    .join("benchmarks")
                    .join("criterion.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let ids = medians(&stored);
        for bench in BENCHES {
            assert!(
                ids.keys()
                    .any(|id| stored["benchmarks"][id]["bench"] == bench.name),
                "{} has no stored results",
                bench.name
            );
            let Some(filter) = bench.quick else { continue };
            let filter = regex::Regex::new(filter).unwrap();
            assert!(
                ids.keys().any(
                    |id| filter.is_match(id) && stored["benchmarks"][id]["bench"] == bench.name
                ),
                "{}: the quick filter matches none of its stored benchmarks",
                bench.name
            );
        }
    }

    #[test]
    fn a_row_is_read_from_criterions_files() {
        let benchmark = json!({
            "group_id": "jws_ES256", "function_id": "sign", "value_str": "64",
            "throughput": {"Bytes": 64}, "full_id": "jws_ES256/sign/64",
            "directory_name": "jws_ES256/sign/64", "title": "jws_ES256/sign/64"
        });
        let est = |p: f64| {
            json!({"point_estimate": p, "standard_error": 1.0,
            "confidence_interval": {"confidence_level": 0.95, "lower_bound": p - 10.0, "upper_bound": p + 10.0}})
        };
        let estimates = json!({"mean": est(20_100.0), "median": est(19_900.0),
            "median_abs_dev": est(50.0), "slope": null, "std_dev": est(300.0)});
        let row = parse_row(&benchmark, &estimates, "jose").unwrap();
        assert_eq!(row.id, "jws_ES256/sign/64");
        assert_eq!(row.median_ns, 19_900.0);
        assert_eq!(row.median_ci_ns, (19_890.0, 19_910.0));
        assert_eq!(row.mean_ns, 20_100.0);
        assert_eq!(row.throughput, Some(("bytes".to_owned(), 64)));
        assert!(parse_row(&json!({}), &estimates, "jose").is_err());
        assert!(parse_row(&benchmark, &json!({"mean": est(1.0)}), "jose").is_err());

        // And from a directory tree shaped as criterion writes it.
        let home = std::env::temp_dir().join(format!(
            "xtask-criterion-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let new = home.join("jws_ES256").join("sign").join("64").join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("benchmark.json"), benchmark.to_string()).unwrap();
        std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
        // criterion's previous run lives in `base`; it is not read.
        let base = home.join("jws_ES256").join("sign").join("64").join("base");
        std::fs::create_dir_all(&base).unwrap();
        let rows = collect(&home, "jose").unwrap();
        assert_eq!(rows, vec![row.clone()]);
        std::fs::write(new.join("estimates.json"), "{").unwrap();
        assert!(
            collect(&home, "jose").is_err(),
            "a damaged file is an error"
        );
        std::fs::remove_dir_all(&home).unwrap();

        let report = json!({
            "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 23.4},
            "settings": {"criterion_options": ["--measurement-time", "3"]},
            "loadavg_after": "1.00 1.00 1.00",
            "benchmarks": rows_to_map(&[row]),
        });
        assert_eq!(medians(&report).get("jws_ES256/sign/64"), Some(&19_900.0));
        let text = render_markdown(&report);
        assert!(
            text.contains(
                "| jose | `jws_ES256/sign/64` | 19.90 µs | 19.89 µs – 19.91 µs | 3.1 MiB/s |"
            ),
            "{text}"
        );
    }

    #[test]
    fn bench_executables_come_from_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/jose/Cargo.toml","target":{"kind":["bench"],"name":"jose"},"executable":"/w/target/release/deps/jose-1"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/jose/Cargo.toml","target":{"kind":["lib"],"name":"cryptoutil_jose"},"executable":null}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\nnot json\n",
        );
        let found = bench_executables(messages);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found.get("jose"),
            Some(&(
                PathBuf::from("/w/target/release/deps/jose-1"),
                PathBuf::from("/w/crates/jose")
            ))
        );
        // Bench target names are the keys: they must be unique across the workspace.
        let names: std::collections::BTreeSet<_> = BENCHES.iter().map(|b| b.target).collect();
        assert_eq!(names.len(), BENCHES.len());
    }

    #[test]
    fn durations_are_shown_in_criterions_units() {
        assert_eq!(human_ns(706.2), "706 ns");
        assert_eq!(human_ns(19_730.0), "19.73 µs");
        assert_eq!(human_ns(68_100_000.0), "68.10 ms");
    }
}
