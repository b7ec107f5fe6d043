//! `cargo xtask bench-load`: the load sweep. Starts the release servers (`--dev --demo` with
//! `xtask/bench/<product>.yml`), and for every scenario and concurrency (default 1, 4, 16, 64)
//! warms up, measures for a fixed time with [`load::measure`], and records requests/s, latency
//! percentiles, errors, the server's CPU per request and its peak RSS, and the load average of
//! the machine at that moment. Then it times the KMS's start to ready on an existing SQLite
//! database ([`crate::startup`]). Output: `<target>/bench-load/load.json` and `load.md`
//! (`--update-docs` copies both to `docs/benchmarks/`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::{self, Product, Target, parse_duration};
use crate::proc_stats::{self, loadavg, reset_peak_rss, rss};
use crate::server::{Protocol, ServerProcess, build_release};

/// How long one connection primes each scenario before its rows.
const PRIME: Duration = Duration::from_millis(200);
/// The default concurrencies.
const CONCURRENCY: &[usize] = &[1, 4, 16, 64];
/// `--quick` (what CI records): the headline scenarios, at concurrency 16 only.
const QUICK_SCENARIOS: &[&str] = &[
    "kms-echo",
    "kms-encrypt-dir-64",
    "kms-decrypt-dir-64",
    "kms-sign-es256",
    "kms-generate",
    "identity-client-credentials",
    "identity-introspect",
    "identity-jwks",
];

/// `cargo xtask bench-load` options.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepArgs {
    /// Scenarios, in order.
    pub scenarios: Vec<&'static str>,
    /// Connections (one request in flight each).
    pub concurrency: Vec<usize>,
    /// Warm-up before each measured period.
    pub warmup: Duration,
    /// Measured period per (scenario, concurrency).
    pub duration: Duration,
    /// HTTP version.
    pub protocol: Protocol,
    /// Timed KMS starts on an existing database (0: skip).
    pub starts: usize,
    /// Copy the results to docs/benchmarks/.
    pub update_docs: bool,
}

/// The usage text.
pub fn usage() -> String {
    "usage: cargo xtask bench-load [--quick] [--scenarios all|kms|identity|NAME,NAME,...] \
     [--concurrency 1,4,16,64]\n\
     \x20                             [--warmup 500ms] [--duration 2s] [--http 1|2] [--starts 5] \
     [--update-docs]\n\
     Starts the release servers (--dev --demo, xtask/bench/<product>.yml), sweeps every scenario \
     over the concurrencies,\n\
     times the KMS's start on an existing SQLite database, and writes \
     <target>/bench-load/load.json and load.md\n\
     (--update-docs: also docs/benchmarks/). Scenarios: see `cargo xtask load`.\n\
     --quick: eight headline scenarios at concurrency 16, 300ms + 1s each, 3 starts (what CI \
     records; later options override it).\n"
        .to_owned()
}

/// The scenarios of the default sweep: every KMS and Identity scenario (not the harness's own
/// `baseline-livez`).
fn default_scenarios(filter: &str) -> Vec<&'static str> {
    load::scenarios()
        .into_iter()
        .filter(|(_, product, _)| {
            matches!(
                (filter, product),
                ("kms", Some(Product::Kms))
                    | ("identity", Some(Product::Identity))
                    | ("all", Some(_))
            )
        })
        .map(|(name, _, _)| name)
        .collect()
}

/// Parses the arguments after `bench-load`.
pub fn parse_args(args: &[String]) -> Result<SweepArgs, String> {
    let mut parsed = SweepArgs {
        scenarios: default_scenarios("all"),
        concurrency: CONCURRENCY.to_vec(),
        warmup: Duration::from_millis(500),
        duration: Duration::from_secs(2),
        protocol: Protocol::Http1,
        starts: 5,
        update_docs: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--scenarios" => {
                let text = value()?;
                parsed.scenarios = match text.as_str() {
                    "all" | "kms" | "identity" => default_scenarios(&text),
                    list => {
                        let known = load::scenarios();
                        list.split(',')
                            .map(|name| {
                                known
                                    .iter()
                                    .find(|(n, _, _)| *n == name.trim())
                                    .map(|(n, _, _)| *n)
                                    .ok_or_else(|| format!("unknown scenario {name:?}"))
                            })
                            .collect::<Result<_, _>>()?
                    }
                };
            }
            "--concurrency" => {
                parsed.concurrency = value()?
                    .split(',')
                    .map(|c| match c.trim().parse::<usize>() {
                        Ok(n) if (1..=1024).contains(&n) => Ok(n),
                        _ => Err(format!("--concurrency: {c:?} is not within 1..=1024")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--warmup" => parsed.warmup = parse_duration(&value()?)?,
            "--duration" => parsed.duration = parse_duration(&value()?)?,
            "--http" => {
                parsed.protocol = match value()?.as_str() {
                    "1" | "1.1" => Protocol::Http1,
                    "2" => Protocol::Http2,
                    other => return Err(format!("--http {other}: use 1 or 2")),
                };
            }
            "--starts" => {
                parsed.starts = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n <= 100)
                    .ok_or("--starts needs a number up to 100")?;
            }
            "--update-docs" => parsed.update_docs = true,
            "--quick" => {
                parsed.scenarios = QUICK_SCENARIOS.to_vec();
                parsed.concurrency = vec![16];
                parsed.warmup = Duration::from_millis(300);
                parsed.duration = Duration::from_secs(1);
                parsed.starts = 3;
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    if parsed.scenarios.is_empty() || parsed.concurrency.is_empty() {
        return Err("nothing to measure".to_owned());
    }
    if parsed.duration.is_zero() || parsed.duration > Duration::from_secs(60) {
        return Err("--duration must be within (0, 60s]".to_owned());
    }
    if parsed.warmup > Duration::from_secs(30) {
        return Err("--warmup must be at most 30s".to_owned());
    }
    Ok(parsed)
}

/// `cargo xtask bench-load ...`.
pub fn bench_load(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let binary = build_release()?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let runs = args.scenarios.len() * args.concurrency.len();
    println!(
        "==> bench-load: {} scenario(s) × {:?} connections, {:?} warm-up + {:?} each ({runs} runs, ≈ {:.0?}); load average now {}",
        args.scenarios.len(),
        args.concurrency,
        args.warmup,
        args.duration,
        (args.warmup + args.duration) * u32::try_from(runs).unwrap_or(u32::MAX),
        loadavg()
    );
    let mut servers = Vec::new();
    let mut results = Vec::new();
    let mut paired = Value::Null;
    let mut failed = 0u64;
    for product in [Product::Kms, Product::Identity] {
        let names: Vec<&str> = args
            .scenarios
            .iter()
            .copied()
            .filter(|n| load::product_of(n) == Some(product))
            .collect();
        if names.is_empty() {
            continue;
        }
        let server = ServerProcess::start_for_load(&binary, product.command())?;
        let outcome = runtime.block_on(sweep_product(&args, &server, product, &names));
        let stopped = runtime.block_on(server.shutdown());
        let (info, rows, pairs) = outcome?;
        stopped?;
        if !pairs.is_null() {
            paired = pairs;
        }
        failed += rows
            .iter()
            .map(|r| r["errors"].as_u64().unwrap_or(0))
            .sum::<u64>();
        servers.push(info);
        results.extend(rows);
    }
    let startup = if args.starts > 0 {
        Some(runtime.block_on(crate::startup::kms_start_times(&binary, args.starts))?)
    } else {
        None
    };
    let report = json!({
        "generated_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        "machine": proc_stats::machine(),
        "settings": {
            "warmup_ms": args.warmup.as_millis() as u64,
            "duration_ms": args.duration.as_millis() as u64,
            "http": args.protocol.label(),
            "concurrency": args.concurrency,
        },
        "servers": servers,
        "results": results,
        "paired": paired,
        "startup": startup,
    });
    let markdown = render_markdown(&report);
    write_outputs(&report, &markdown, args.update_docs)?;
    println!("{markdown}");
    if failed > 0 {
        Err(format!(
            "{failed} request(s) failed (see the errors column)"
        ))
    } else {
        Ok(())
    }
}

/// Runs every scenario of one server; returns the server's facts, one row per run and, for the
/// KMS, the paired echo/encrypt rounds ([`paired_rounds`]).
async fn sweep_product(
    args: &SweepArgs,
    server: &ServerProcess,
    product: Product,
    names: &[&str],
) -> Result<(Value, Vec<Value>, Value), String> {
    let pid = server.pid();
    // Let start-up work (seeding, the first purge tick) settle before taking the idle figure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss(pid);
    let info = json!({
        "product": product.command(),
        "dev_start_ms": server.started_in.as_secs_f64() * 1000.0,
        "idle_rss_kib": idle.map(|r| r.current_kib),
        "idle_peak_rss_kib": idle.map(|r| r.peak_kib),
        "loadavg": loadavg(),
    });
    println!(
        "==> {}: idle RSS {} (peak so far {}), load average {}",
        product.command(),
        mib(idle.map(|r| r.current_kib)),
        mib(idle.map(|r| r.peak_kib)),
        loadavg()
    );
    let target = Target {
        public_url: server.ready.public_url.clone(),
        admin_url: Some(server.ready.admin_url.clone()),
        ca_cert: server.ready.ca_cert.clone(),
    };
    let mut rows = Vec::new();
    for name in names {
        let scenario = Arc::new(load::prepare(name, &target).await?);
        // One connection first, so the credential's first verification (PBKDF2, ≈ 70 ms) is
        // paid once, as a real client population would have paid it: 16 or 64 connections
        // starting cold would each pay it at once and spill it into the measured period.
        load::measure(
            Arc::clone(&scenario),
            &target.ca_cert,
            args.protocol,
            1,
            Duration::ZERO,
            PRIME,
            None,
        )
        .await?;
        for &connections in &args.concurrency {
            let load_before = loadavg();
            let reset = reset_peak_rss(pid);
            let report = load::measure(
                Arc::clone(&scenario),
                &target.ca_cert,
                args.protocol,
                connections,
                args.warmup,
                args.duration,
                Some(pid),
            )
            .await?;
            let after = rss(pid);
            let elapsed = report.elapsed.as_secs_f64().max(1e-9);
            let row = json!({
                "scenario": name,
                "product": product.command(),
                "concurrency": connections,
                "requests_per_s": round1(report.rate()),
                "ok": report.ok,
                "errors": report.errors,
                "first_errors": report.first_errors,
                "p50_ms": report.latency_us.percentile(50.0).map(ms),
                "p95_ms": report.latency_us.percentile(95.0).map(ms),
                "p99_ms": report.latency_us.percentile(99.0).map(ms),
                "max_ms": report.latency_us.max().map(ms),
                "server_cpu_us_per_request": report.server_cpu
                    .filter(|_| report.ok > 0)
                    .map(|s| round1(s * 1e6 / report.ok as f64)),
                "server_cores": report.server_cpu.map(|s| round2(s / elapsed)),
                "generator_cores": report.generator_cpu.map(|s| round2(s / elapsed)),
                "peak_rss_kib": after.map(|r| r.peak_kib),
                "peak_rss_is_since_start": !reset,
                "rss_after_kib": after.map(|r| r.current_kib),
                "loadavg_before": load_before,
                "loadavg_after": loadavg(),
            });
            println!(
                "    {name:<28} c{connections:<3} {:>8.0} req/s  p50 {:>7} p95 {:>7} p99 {:>7}  errors {:<4} server {:>6} µs/req  peak RSS {}  load {}",
                report.rate(),
                fmt_ms(&row["p50_ms"]),
                fmt_ms(&row["p95_ms"]),
                fmt_ms(&row["p99_ms"]),
                report.errors,
                fmt_num(&row["server_cpu_us_per_request"], 0),
                mib(after.map(|r| r.peak_kib)),
                row["loadavg_before"].as_str().unwrap_or("?"),
            );
            for e in &report.first_errors {
                println!("             error: {e}");
            }
            rows.push(row);
        }
    }
    let paired = if names.contains(&PAIRED.0)
        && names.contains(&PAIRED.1)
        && args.concurrency.contains(&PAIRED_CONCURRENCY)
    {
        paired_rounds(args, &target).await?
    } else {
        Value::Null
    };
    Ok((info, rows, paired))
}

/// The ceiling and the operation the ≥ 70 % target compares.
const PAIRED: (&str, &str) = ("kms-echo", "kms-encrypt-dir-64");
/// The concurrency of that target.
const PAIRED_CONCURRENCY: usize = 16;
/// Alternating rounds of the paired measurement.
const PAIRED_ROUNDS: usize = 3;

/// The echo route and encrypt, measured in alternation ([`PAIRED_ROUNDS`] rounds of each at
/// [`PAIRED_CONCURRENCY`]): the machine's speed drifts over a sweep (other tenants of the host,
/// the generator's own state), and rows measured a minute apart can differ by ±15 % for that
/// alone. Alternating exposes both to the same drift; the target is judged on the median of the
/// per-round ratios.
async fn paired_rounds(args: &SweepArgs, target: &Target) -> Result<Value, String> {
    let echo = Arc::new(load::prepare(PAIRED.0, target).await?);
    let encrypt = Arc::new(load::prepare(PAIRED.1, target).await?);
    let mut rounds = Vec::new();
    for _ in 0..PAIRED_ROUNDS {
        let mut rates = [0.0; 2];
        for (rate, scenario) in rates.iter_mut().zip([&echo, &encrypt]) {
            let report = load::measure(
                Arc::clone(scenario),
                &target.ca_cert,
                args.protocol,
                PAIRED_CONCURRENCY,
                args.warmup,
                args.duration,
                None,
            )
            .await?;
            if report.errors > 0 {
                return Err(format!(
                    "paired rounds: {} request(s) failed: {:?}",
                    report.errors, report.first_errors
                ));
            }
            *rate = round1(report.rate());
        }
        rounds.push(json!({"echo": rates[0], "encrypt": rates[1],
            "ratio": round2(rates[1] / rates[0].max(1e-9))}));
    }
    let paired = json!({
        "echo_scenario": PAIRED.0,
        "encrypt_scenario": PAIRED.1,
        "concurrency": PAIRED_CONCURRENCY,
        "rounds": rounds,
        "median_ratio": median_ratio(&rounds),
    });
    println!(
        "    paired {} / {} at c{PAIRED_CONCURRENCY}: {}; median ratio {}",
        PAIRED.1,
        PAIRED.0,
        rounds
            .iter()
            .map(|r| format!("{}/{}", r["encrypt"], r["echo"]))
            .collect::<Vec<_>>()
            .join(", "),
        paired["median_ratio"]
    );
    Ok(paired)
}

/// The median of the rounds' `ratio`s.
fn median_ratio(rounds: &[Value]) -> Option<f64> {
    let mut ratios: Vec<f64> = rounds.iter().filter_map(|r| r["ratio"].as_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    match ratios.len() {
        0 => None,
        n if n % 2 == 1 => Some(ratios[n / 2]),
        n => Some(round2((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0)),
    }
}

fn ms(micros: u64) -> f64 {
    round2(micros as f64 / 1000.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn fmt_ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |m| format!("{m:.2}"))
}

fn fmt_num(v: &Value, decimals: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

fn fmt_mib(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn output_dir() -> Result<PathBuf, String> {
    Ok(crate::target_dir()?.join("bench-load"))
}

fn write_outputs(report: &Value, markdown: &str, update_docs: bool) -> Result<(), String> {
    let mut dirs = vec![output_dir()?];
    if update_docs {
        dirs.push(crate::root().join("docs").join("benchmarks"));
    }
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())? + "\n";
    crate::write_records(&dirs, &[("load.json", &json), ("load.md", markdown)])
}

// ---------------------------------------------------------------------------------------------
// The Markdown report, from the JSON (so it can be regenerated from a stored load.json)

/// The report as Markdown: the machine, one table row per (scenario, concurrency), the servers'
/// memory and start-up, and the targets of the performance issue with their verdicts.
pub fn render_markdown(report: &Value) -> String {
    let mut out = String::from("# Load sweep (`cargo xtask bench-load`)\n\n");
    let machine = &report["machine"];
    let settings = &report["settings"];
    out.push_str(&format!(
        "Machine: {} ({} cores, {} GiB). {} over TLS 1.3, keep-alive, one request in flight per \
         connection, {} ms warm-up + {} ms measured per row. The load generator runs on the same \
         cores as the server. `load` is /proc/loadavg (1, 5, 15 min) just before the row: \
         anything much above the generator and server's own ≈ 2 means other work shared the \
         machine.\n\n",
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["memory_gib"],
        settings["http"].as_str().unwrap_or("?"),
        settings["warmup_ms"],
        settings["duration_ms"],
    ));
    out.push_str(
        "| scenario | conc. | req/s | p50 ms | p95 ms | p99 ms | errors | server µs CPU/req | server cores | generator cores | peak RSS MiB | load |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in report["results"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row["scenario"].as_str().unwrap_or("?"),
            row["concurrency"],
            fmt_num(&row["requests_per_s"], 0),
            fmt_ms(&row["p50_ms"]),
            fmt_ms(&row["p95_ms"]),
            fmt_ms(&row["p99_ms"]),
            row["errors"],
            fmt_num(&row["server_cpu_us_per_request"], 0),
            fmt_num(&row["server_cores"], 2),
            fmt_num(&row["generator_cores"], 2),
            fmt_mib(&row["peak_rss_kib"]),
            row["loadavg_before"].as_str().unwrap_or("?"),
        ));
    }
    let paired = &report["paired"];
    if let Some(rounds) = paired["rounds"].as_array() {
        out.push_str(&format!(
            "\nPaired at c{}: `{}` and `{}` measured in alternation ({} rounds, same duration as \
             the rows), so both see the same drift of the machine: {}; median ratio **{}**.\n",
            paired["concurrency"],
            paired["echo_scenario"].as_str().unwrap_or("?"),
            paired["encrypt_scenario"].as_str().unwrap_or("?"),
            rounds.len(),
            rounds
                .iter()
                .map(|r| format!(
                    "{} / {} req/s ({:.0} %)",
                    fmt_num(&r["encrypt"], 0),
                    fmt_num(&r["echo"], 0),
                    r["ratio"].as_f64().unwrap_or(0.0) * 100.0
                ))
                .collect::<Vec<_>>()
                .join(", "),
            paired["median_ratio"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |r| format!("{:.0} %", r * 100.0)),
        ));
    }
    out.push_str("\n| server | idle RSS MiB | `--dev --demo` start to ready ms | load |\n|---|---:|---:|---|\n");
    for server in report["servers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            server["product"].as_str().unwrap_or("?"),
            fmt_mib(&server["idle_rss_kib"]),
            fmt_num(&server["dev_start_ms"], 0),
            server["loadavg"].as_str().unwrap_or("?"),
        ));
    }
    let startup = &report["startup"];
    if startup.is_object() {
        out.push_str(&format!(
            "\nKMS start to ready on an existing SQLite database (shares unseal, configured \
             certificates, no seeding), {} starts: median {} ms, min {} ms, max {} ms; idle RSS \
             after start {} MiB; load {}.\n",
            startup["runs_ms"].as_array().map_or(0, Vec::len),
            fmt_num(&startup["median_ms"], 0),
            fmt_num(&startup["min_ms"], 0),
            fmt_num(&startup["max_ms"], 0),
            fmt_mib(&startup["idle_rss_kib"]),
            startup["loadavg"].as_str().unwrap_or("?"),
        ));
    }
    out.push_str("\n## Targets (issue 12)\n\n| target | measured | verdict |\n|---|---|---|\n");
    for (target, measured, verdict) in targets(report) {
        out.push_str(&format!("| {target} | {measured} | {verdict} |\n"));
    }
    out
}

fn row<'a>(report: &'a Value, scenario: &str, concurrency: u64) -> Option<&'a Value> {
    report["results"]
        .as_array()?
        .iter()
        .find(|r| r["scenario"] == scenario && r["concurrency"].as_u64() == Some(concurrency))
}

fn best_rate(report: &Value, scenario: &str) -> Option<(f64, u64)> {
    report["results"]
        .as_array()?
        .iter()
        .filter(|r| r["scenario"] == scenario)
        .filter_map(|r| Some((r["requests_per_s"].as_f64()?, r["concurrency"].as_u64()?)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// `(target, measured, verdict)` for each target the report can judge.
pub fn targets(report: &Value) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    let encrypt = row(report, "kms-encrypt-dir-64", 16);
    let echo = row(report, "kms-echo", 16);
    let rate = |r: Option<&Value>| r.and_then(|r| r["requests_per_s"].as_f64());
    let (enc_rate, echo_rate) = (rate(encrypt), rate(echo));
    out.push((
        "KMS encrypt 64 B (`A256GCM/dir`) at c16 ≥ 32,000/s".to_owned(),
        enc_rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}/s")),
        verdict(enc_rate.map(|r| r >= 32_000.0)),
    ));
    let ratio = enc_rate.zip(echo_rate).map(|(e, c)| e / c.max(1e-9));
    let paired = report["paired"]["median_ratio"].as_f64();
    out.push((
        "… ≥ 70 % of the echo route at c16".to_owned(),
        match (paired, ratio, echo_rate) {
            (Some(p), row, _) => format!(
                "{:.0} % (median of {} alternating rounds{})",
                p * 100.0,
                report["paired"]["rounds"].as_array().map_or(0, Vec::len),
                row.map(|q| format!("; the sweep's rows: {:.0} %", q * 100.0))
                    .unwrap_or_default()
            ),
            (None, Some(q), Some(c)) => format!("{:.0} % (echo {c:.0}/s)", q * 100.0),
            _ => "-".to_owned(),
        },
        verdict(paired.or(ratio).map(|q| q >= 0.7)),
    ));
    let p99 = encrypt.and_then(|r| r["p99_ms"].as_f64());
    out.push((
        "… p99 ≤ 5 ms".to_owned(),
        p99.map_or_else(|| "-".to_owned(), |p| format!("{p:.2} ms")),
        verdict(p99.map(|p| p <= 5.0)),
    ));
    for (scenario, label, goal) in [
        (
            "identity-client-credentials",
            "Identity client_credentials ≥ 6,000 tokens/s",
            6_000.0,
        ),
        (
            "identity-introspect",
            "Identity introspection ≥ 10,000/s",
            10_000.0,
        ),
    ] {
        let best = best_rate(report, scenario);
        out.push((
            label.to_owned(),
            best.map_or_else(|| "-".to_owned(), |(r, c)| format!("{r:.0}/s (best, c{c})")),
            verdict(best.map(|(r, _)| r >= goal)),
        ));
    }
    let idle = report["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["product"].as_str()?, s["idle_rss_kib"].as_u64()?)))
        .collect::<Vec<_>>();
    let idle_max = idle.iter().map(|(_, k)| *k).max();
    out.push((
        "idle RSS ≤ 40 MiB".to_owned(),
        if idle.is_empty() {
            "-".to_owned()
        } else {
            idle.iter()
                .map(|(p, k)| format!("{p} {:.1} MiB", *k as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        },
        verdict(idle_max.map(|k| k <= 40 * 1024)),
    ));
    let peak = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["peak_rss_kib"].as_u64()?, r["scenario"].as_str()?)))
        .max();
    out.push((
        "RSS under load ≤ 128 MiB".to_owned(),
        peak.map_or_else(
            || "-".to_owned(),
            |(k, s)| format!("{:.1} MiB (highest peak, {s})", k as f64 / 1024.0),
        ),
        verdict(peak.map(|(k, _)| k <= 128 * 1024)),
    ));
    let start = report["startup"]["median_ms"].as_f64();
    out.push((
        "KMS start to ready ≤ 300 ms (existing SQLite database)".to_owned(),
        start.map_or_else(|| "-".to_owned(), |m| format!("{m:.0} ms (median)")),
        verdict(start.map(|m| m <= 300.0)),
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_and_scenario_sets_resolve() {
        let all = parse_args(&[]).unwrap();
        assert_eq!(all.concurrency, vec![1, 4, 16, 64]);
        assert!(all.scenarios.contains(&"kms-echo"));
        assert!(all.scenarios.contains(&"identity-jwks"));
        assert!(!all.scenarios.contains(&"baseline-livez"));
        let args: Vec<String> = [
            "--scenarios",
            "kms-echo,identity-jwks",
            "--concurrency",
            "2,8",
            "--duration",
            "1s",
            "--warmup",
            "0ms",
            "--http",
            "2",
            "--starts",
            "0",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.scenarios, vec!["kms-echo", "identity-jwks"]);
        assert_eq!(parsed.concurrency, vec![2, 8]);
        assert_eq!(parsed.protocol, Protocol::Http2);
        assert_eq!(parsed.starts, 0);
        let quick = parse_args(&["--quick".to_owned()]).unwrap();
        assert_eq!(quick.concurrency, vec![16]);
        assert!(quick.scenarios.contains(&"kms-encrypt-dir-64"));
        assert!(
            quick
                .scenarios
                .iter()
                .all(|s| load::product_of(s).is_some()),
            "every quick scenario is known"
        );
        let longer = ["--quick", "--duration", "5s"].map(String::from);
        assert_eq!(
            parse_args(&longer).unwrap().duration,
            Duration::from_secs(5),
            "later options override --quick"
        );
        let kms = parse_args(&["--scenarios".to_owned(), "kms".to_owned()]).unwrap();
        assert!(
            kms.scenarios
                .iter()
                .all(|s| load::product_of(s) == Some(Product::Kms))
        );
        for bad in [
            &["--scenarios", "nope"][..],
            &["--concurrency", "0"],
            &["--concurrency", "4,x"],
            &["--duration", "0s"],
            &["--http", "3"],
            &["--bogus"],
        ] {
            let args: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
            assert!(parse_args(&args).is_err(), "{bad:?}");
        }
    }

    fn sample() -> Value {
        let r = |scenario: &str, c: u64, rate: f64, p99: f64, peak: u64| {
            json!({"scenario": scenario, "concurrency": c, "requests_per_s": rate,
                   "p50_ms": 0.4, "p95_ms": 1.0, "p99_ms": p99, "errors": 0,
                   "server_cpu_us_per_request": 50.0, "server_cores": 1.0,
                   "generator_cores": 0.8, "peak_rss_kib": peak, "loadavg_before": "2.00 2.10 2.20"})
        };
        json!({
            "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 23.4},
            "settings": {"http": "HTTP/1.1", "warmup_ms": 500, "duration_ms": 2000},
            "servers": [
                {"product": "kms", "idle_rss_kib": 30 * 1024, "dev_start_ms": 900.0, "loadavg": "1 1 1"},
                {"product": "identity", "idle_rss_kib": 45 * 1024, "dev_start_ms": 800.0, "loadavg": "1 1 1"}
            ],
            "results": [
                r("kms-echo", 16, 40_000.0, 2.0, 60 * 1024),
                r("kms-encrypt-dir-64", 16, 33_000.0, 4.0, 70 * 1024),
                r("identity-client-credentials", 4, 5_000.0, 3.0, 50 * 1024),
                r("identity-client-credentials", 16, 7_000.0, 3.0, 50 * 1024),
            ],
            "startup": {"runs_ms": [100.0, 120.0, 110.0], "median_ms": 110.0, "min_ms": 100.0,
                        "max_ms": 120.0, "idle_rss_kib": 20 * 1024, "loadavg": "1 1 1"}
        })
    }

    #[test]
    fn targets_are_judged_from_the_report() {
        let targets = targets(&sample());
        let find = |prefix: &str| {
            targets
                .iter()
                .find(|(t, _, _)| t.starts_with(prefix))
                .unwrap()
                .clone()
        };
        assert_eq!(find("KMS encrypt").2, "met");
        let ratio = find("… ≥ 70 %");
        assert_eq!(ratio.1, "82 % (echo 40000/s)");
        assert_eq!(ratio.2, "met");
        // With paired rounds, their median decides.
        let mut with_pairs = sample();
        with_pairs["paired"] = json!({"rounds": [
            {"echo": 40_000.0, "encrypt": 26_000.0, "ratio": 0.65},
            {"echo": 40_000.0, "encrypt": 27_000.0, "ratio": 0.68},
            {"echo": 40_000.0, "encrypt": 34_000.0, "ratio": 0.85}],
            "median_ratio": 0.68, "concurrency": 16,
            "echo_scenario": "kms-echo", "encrypt_scenario": "kms-encrypt-dir-64"});
        let paired = super::targets(&with_pairs)
            .into_iter()
            .find(|(t, _, _)| t.starts_with("… ≥ 70 %"))
            .unwrap();
        assert_eq!(
            paired.1,
            "68 % (median of 3 alternating rounds; the sweep's rows: 82 %)"
        );
        assert_eq!(paired.2, "**missed**");
        assert!(render_markdown(&with_pairs).contains(
            "26000 / 40000 req/s (65 %), 27000 / 40000 req/s (68 %), 34000 / 40000 req/s (85 %); median ratio **68 %**"
        ));
        assert_eq!(
            median_ratio(&with_pairs["paired"]["rounds"].as_array().unwrap().clone()),
            Some(0.68)
        );
        assert_eq!(median_ratio(&[]), None);
        assert_eq!(
            median_ratio(&[json!({"ratio": 0.6}), json!({"ratio": 0.8})]),
            Some(0.7)
        );
        assert_eq!(find("… p99").2, "met");
        let cc = find("Identity client_credentials");
        assert_eq!(cc.1, "7000/s (best, c16)");
        assert_eq!(cc.2, "met");
        assert_eq!(find("Identity introspection").2, "not measured");
        assert_eq!(find("idle RSS").2, "**missed**", "identity idles at 45 MiB");
        let peak = find("RSS under load");
        assert_eq!(peak.1, "70.0 MiB (highest peak, kms-encrypt-dir-64)");
        assert_eq!(peak.2, "met");
        assert_eq!(find("KMS start").2, "met");
    }

    #[test]
    fn markdown_has_a_row_per_run_and_the_targets() {
        let text = render_markdown(&sample());
        assert!(text.contains("Machine: Test CPU (2 cores, 23.4 GiB)"));
        assert!(text.contains(
            "| kms-encrypt-dir-64 | 16 | 33000 | 0.40 | 1.00 | 4.00 | 0 | 50 | 1.00 | 0.80 | 70.0 | 2.00 2.10 2.20 |"
        ));
        assert!(text.contains("| identity | 45.0 | 800 | 1 1 1 |"));
        assert!(text.contains("median 110 ms"));
        assert_eq!(text.matches("| identity-client-credentials |").count(), 2);
        assert!(text.contains("| Identity introspection ≥ 10,000/s | - | not measured |"));
    }
}
