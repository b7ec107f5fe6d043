//! `cargo xtask profile <scenario>`: where a request's time goes, measured on the real release
//! server. The server runs under callgrind with instrumentation off; after a warm-up the counters
//! are switched on and zeroed, the scenario runs for a fixed time over N keep-alive TLS
//! connections, and the dump is read back: instructions per request (the whole process, TLS,
//! HTTP, logging and the allocator included) and the functions with the largest inclusive share.
//! `perf` has no hardware counters in this VM, and instruction counts do not move with the load
//! of the machine, so this is the profile docs/benchmarks.md quotes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::bench_compare::parse_callgrind;
use crate::load::{self, Target, parse_duration};
use crate::server::{Protocol, ServerProcess, build_release};

/// `cargo xtask profile` options.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileArgs {
    /// The scenario (`cargo xtask load` names).
    pub scenario: String,
    /// Keep-alive connections.
    pub connections: usize,
    /// Measured period (instrumented).
    pub duration: Duration,
    /// Functions listed.
    pub top: usize,
    /// Also write the report to docs/benchmarks/profiles/<scenario>.md.
    pub update_docs: bool,
}

/// The usage text.
pub fn usage() -> String {
    "usage: cargo xtask profile <scenario> [--connections 4] [--duration 10s] [--top 40] \
     [--update-docs]\n\
     Runs the release server under callgrind and the scenario against it; prints instructions per \
     request and\nthe functions with the largest inclusive share (target/profile/<scenario>.txt, \
     the dump beside it;\n--update-docs: also docs/benchmarks/profiles/<scenario>.md).\n"
        .to_owned()
}

/// Parses the arguments after `profile`.
pub fn parse_args(args: &[String]) -> Result<ProfileArgs, String> {
    let mut it = args.iter();
    let scenario = it
        .next()
        .filter(|s| !s.starts_with("--"))
        .ok_or_else(usage)?;
    if load::product_of(scenario).is_none() {
        return Err(format!("unknown scenario {scenario:?}\n{}", usage()));
    }
    let mut parsed = ProfileArgs {
        scenario: scenario.clone(),
        connections: 4,
        duration: Duration::from_secs(10),
        top: 40,
        update_docs: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--update-docs" {
            parsed.update_docs = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => {
                parsed.connections = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or("--connections needs a number within 1..=256")?;
            }
            "--duration" => parsed.duration = parse_duration(value)?,
            "--top" => {
                parsed.top = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or("--top needs a number within 1..=500")?;
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    if parsed.duration.is_zero() || parsed.duration > Duration::from_secs(120) {
        return Err("--duration must be within (0, 120s]".to_owned());
    }
    Ok(parsed)
}

/// `cargo xtask profile ...`.
pub fn profile(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let product = load::product_of(&args.scenario).ok_or("unknown scenario")?;
    for tool in ["valgrind", "callgrind_control", "callgrind_annotate"] {
        // `callgrind_annotate --version` exits 255 after printing its version: being able to
        // start it is the check.
        let found = Command::new(tool).arg("--version").output().is_ok();
        if !found {
            return Err(format!("profile needs {tool} (apt-get install valgrind)"));
        }
    }
    let binary = build_release()?;
    let out_dir = crate::target_dir()?.join("profile");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let dump_base = out_dir.join(format!("{}.callgrind", args.scenario));
    for stale in dump_files(&dump_base) {
        let _ = std::fs::remove_file(stale);
    }
    let out_file = format!("--callgrind-out-file={}", dump_base.display());
    let server = ServerProcess::start_for_load_under(
        &binary,
        product.command(),
        &[
            "--tool=callgrind",
            "--instr-atstart=no",
            "--dump-instr=no",
            "--compress-strings=no",
            "--compress-pos=no",
            &out_file,
        ],
    )?;
    let pid = server.pid();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let measured = runtime.block_on(run_instrumented(&args, &server, pid));
    let stopped = runtime.block_on(server.shutdown());
    let requests = measured?;
    stopped?;
    // The first numbered dump is the one `callgrind_control -d` asked for; the unnumbered file
    // holds what ran between it and the exit.
    let dump = PathBuf::from(format!("{}.1", dump_base.display()));
    let text = std::fs::read_to_string(&dump)
        .map_err(|e| format!("cannot read {}: {e}", dump.display()))?;
    let total = parse_callgrind(&text)?.instructions;
    let rows = annotate(&dump, true)?;
    let by_crate = by_crate(&annotate(&dump, false)?);
    let report = render(&args, requests, total, &by_crate, &rows);
    println!("{report}");
    println!("==> callgrind dump: {}", dump.display());
    crate::write_records(&[out_dir], &[(&format!("{}.txt", args.scenario), &report)])?;
    if args.update_docs {
        let docs = crate::root()
            .join("docs")
            .join("benchmarks")
            .join("profiles");
        crate::write_records(&[docs], &[(&format!("{}.md", args.scenario), &report)])?;
    }
    Ok(())
}

/// The `(instructions, function)` rows of `callgrind_annotate`, inclusive or own (exclusive).
fn annotate(dump: &Path, inclusive: bool) -> Result<Vec<(u64, String)>, String> {
    let output = Command::new("callgrind_annotate")
        .arg(if inclusive {
            "--inclusive=yes"
        } else {
            "--inclusive=no"
        })
        // Every function for the by-crate sums; the inclusive list is cut to --top anyway.
        .arg(if inclusive {
            "--threshold=99"
        } else {
            "--threshold=100"
        })
        .arg(dump)
        .output()
        .map_err(|e| format!("cannot run callgrind_annotate: {e}"))?;
    Ok(annotated_rows(&String::from_utf8_lossy(&output.stdout)))
}

/// Warms up uninstrumented, then counts `args.duration` of load; returns the good responses.
async fn run_instrumented(
    args: &ProfileArgs,
    server: &ServerProcess,
    pid: u32,
) -> Result<u64, String> {
    let target = Target {
        public_url: server.ready.public_url.clone(),
        admin_url: Some(server.ready.admin_url.clone()),
        ca_cert: server.ready.ca_cert.clone(),
    };
    let scenario = Arc::new(load::prepare(&args.scenario, &target).await?);
    let warm = load::measure(
        Arc::clone(&scenario),
        &target.ca_cert,
        Protocol::Http1,
        args.connections,
        Duration::ZERO,
        Duration::from_secs(3),
        None,
    )
    .await?;
    println!("==> warm-up: {} requests uninstrumented", warm.ok);
    control(pid, &["-i", "on"])?;
    // The measured period starts after one second of its own warm-up (new connections, their
    // handshakes): the counters are zeroed at that moment, so what is counted is steady state.
    let warmup = Duration::from_secs(1);
    let zero = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        tokio::task::spawn_blocking(move || control(pid, &["-z"]))
            .await
            .map_err(|e| e.to_string())?
    });
    let report = load::measure(
        scenario,
        &target.ca_cert,
        Protocol::Http1,
        args.connections,
        warmup,
        args.duration,
        None,
    )
    .await?;
    zero.await.map_err(|e| e.to_string())??;
    control(pid, &["-d"])?;
    control(pid, &["-i", "off"])?;
    if report.errors > 0 {
        return Err(format!(
            "{} request(s) failed: {:?}",
            report.errors, report.first_errors
        ));
    }
    println!(
        "==> measured: {} requests in {:.1?} under callgrind",
        report.ok, report.elapsed
    );
    Ok(report.ok)
}

fn control(pid: u32, args: &[&str]) -> Result<(), String> {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} failed ({status})"))
    }
}

/// `<base>.1`, `<base>.2`, … that exist, and `<base>` itself (written at exit).
fn dump_files(base: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=16)
        .map(|n| PathBuf::from(format!("{}.{n}", base.display())))
        .filter(|p| p.is_file())
        .collect();
    if base.is_file() {
        files.push(base.to_path_buf());
    }
    files
}

/// `(instructions, function)` rows of `callgrind_annotate` output (inclusive or own, as it was
/// asked), largest first, without the program total.
pub fn annotated_rows(annotated: &str) -> Vec<(u64, String)> {
    annotated
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (count, rest) = line.split_once(' ')?;
            let count: u64 = count.replace(',', "").parse().ok()?;
            let rest = rest.trim_start();
            let name = rest.strip_prefix('(')?.split_once(")")?.1.trim();
            if name == "PROGRAM TOTALS" {
                return None;
            }
            let name = name.strip_prefix("???:").unwrap_or(name);
            // "file:function [object]" → "function" (or "file:function" for C files).
            let name = match name.rfind(" [") {
                Some(at) if name.ends_with(']') => &name[..at],
                _ => name,
            };
            Some((count, name.to_owned()))
        })
        .collect()
}

/// Where a function's own instructions are counted: its crate (for ours, crate and module), or
/// the C library it is in.
pub fn crate_of(function: &str) -> String {
    // `<T as some_crate::Trait>::f`: a generic type's impl is counted for the trait's crate.
    let function = match function
        .strip_prefix('<')
        .and_then(|f| f.split_once(" as "))
    {
        Some((ty, rest)) if ty.len() == 1 && ty.chars().all(|c| c.is_ascii_uppercase()) => rest,
        _ => function,
    };
    let name = function.trim_start_matches(['<', '&']);
    let name = name.strip_prefix("mut ").unwrap_or(name);
    let name = name.strip_prefix("dyn ").unwrap_or(name);
    // Functions without a Rust path are C or assembly: the allocator, libc, or aws-lc.
    if !name.contains("::") {
        return if name.starts_with("mi_") || name.starts_with("_mi_") {
            "mimalloc (allocator)"
        } else if name.contains("sysdeps") || name.contains("glibc") {
            "libc"
        } else {
            "aws-lc and other C or assembly"
        }
        .to_owned();
    }
    let mut segments = name.split("::");
    let first = segments.next().unwrap_or(name);
    if first.starts_with("cryptoutil")
        && let Some(module) = segments.next()
        && !module.contains(['<', '{', ' '])
    {
        return format!("{first}::{module}");
    }
    first.split(['<', ' ']).next().unwrap_or(first).to_owned()
}

/// Self instructions summed by [`crate_of`], largest first.
pub fn by_crate(exclusive: &[(u64, String)]) -> Vec<(u64, String)> {
    let mut sums = std::collections::BTreeMap::<String, u64>::new();
    for (ir, name) in exclusive {
        *sums.entry(crate_of(name)).or_default() += ir;
    }
    let mut rows: Vec<(u64, String)> = sums.into_iter().map(|(k, v)| (v, k)).collect();
    rows.sort_by(|a, b| b.cmp(a));
    rows
}

/// The report: per-request instructions, where they are spent by crate, and the top inclusive
/// functions.
pub fn render(
    args: &ProfileArgs,
    requests: u64,
    total: u64,
    by_crate: &[(u64, String)],
    rows: &[(u64, String)],
) -> String {
    let per_request = |ir: u64| ir as f64 / requests.max(1) as f64;
    let mut out = format!(
        "# Profile of `{}` (callgrind, release server, {} keep-alive connections, {:?} counted)\n\n\
         {requests} requests, {total} instructions: **{:.0} instructions per request**.\n\n\
         Own (exclusive) instructions per request by crate:\n\n\
         | Ir/request | share | crate |\n|---:|---:|---|\n",
        args.scenario,
        args.connections,
        args.duration,
        per_request(total),
    );
    for (ir, name) in by_crate.iter().take(args.top) {
        out.push_str(&format!(
            "| {:.0} | {:.1} % | {name} |\n",
            per_request(*ir),
            *ir as f64 / total.max(1) as f64 * 100.0,
        ));
    }
    out.push_str(
        "\nInclusive instructions per request of the functions with the largest share (a caller \
         includes its callees; recursion shows as a share above 100 %):\n\n\
         | Ir/request | share | function |\n|---:|---:|---|\n",
    );
    for (ir, name) in rows.iter().take(args.top) {
        out.push_str(&format!(
            "| {:.0} | {:.1} % | `{}` |\n",
            per_request(*ir),
            *ir as f64 / total.max(1) as f64 * 100.0,
            name.replace('|', "\\|")
                .chars()
                .take(160)
                .collect::<String>()
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let args: Vec<String> = [
            "kms-encrypt-dir-64",
            "--connections",
            "8",
            "--update-docs",
            "--top",
            "5",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.scenario, "kms-encrypt-dir-64");
        assert_eq!(parsed.connections, 8);
        assert_eq!(parsed.top, 5);
        assert!(parsed.update_docs);
        assert_eq!(parsed.duration, Duration::from_secs(10));
        for bad in [
            &[][..],
            &["nope"],
            &["--top", "5"],
            &["kms-echo", "--connections", "0"],
            &["kms-echo", "--duration"],
            &["kms-echo", "--bogus", "1"],
        ] {
            let args: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
            assert!(parse_args(&args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn functions_are_counted_by_crate() {
        for (function, krate) in [
            ("tokio::runtime::task::raw::poll", "tokio"),
            (
                "<axum::util::MapIntoResponseFuture<F> as core::future::Future>::poll'2",
                "axum",
            ),
            (
                "<&mut serde_json::ser::Serializer<W,F> as serde_core::ser::Serializer>::serialize_str",
                "serde_json",
            ),
            (
                "cryptoutil_server::logging::json_lines::push_escaped",
                "cryptoutil_server::logging",
            ),
            (
                "<cryptoutil_server::audit::AuditLayer as tracing_subscriber::layer::Layer<S>>::on_event",
                "cryptoutil_server::audit",
            ),
            ("cryptoutil_jose::jwe::encrypt", "cryptoutil_jose::jwe"),
            ("cryptoutil_kms::keys::audit", "cryptoutil_kms::keys"),
            ("mi_malloc_aligned", "mimalloc (allocator)"),
            ("_mi_page_malloc_zero", "mimalloc (allocator)"),
            (
                "aws_lc_0_47_0_EVP_AEAD_CTX_seal",
                "aws-lc and other C or assembly",
            ),
            (
                "AWS_LC_TRAMPOLINE_aws_lc_0_47_0_SHA256_Final",
                "aws-lc and other C or assembly",
            ),
            (
                "aead_aes_gcm_seal_scatter_impl",
                "aws-lc and other C or assembly",
            ),
            (
                "./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms",
                "libc",
            ),
            (
                "<alloc::string::String as core::fmt::Write>::write_str",
                "alloc",
            ),
            (
                "<T as tower::util::boxed_clone_sync::CloneService<R>>::clone_box'2",
                "tower",
            ),
            (
                "<F as axum::handler::Handler<(M,T1),S>>::call::{{closure}}",
                "axum",
            ),
            ("_aesni_ctr32_ghash_6x", "aws-lc and other C or assembly"),
            ("__ecp_nistz256_mul_montq", "aws-lc and other C or assembly"),
        ] {
            assert_eq!(crate_of(function), krate, "{function}");
        }
        let sums = by_crate(&[
            (5, "tokio::a".to_owned()),
            (7, "mi_free".to_owned()),
            (4, "tokio::b".to_owned()),
        ]);
        assert_eq!(
            sums,
            vec![
                (9, "tokio".to_owned()),
                (7, "mimalloc (allocator)".to_owned())
            ]
        );
    }

    #[test]
    fn annotate_rows_become_names_and_counts() {
        let text = "\
--------------------------------------------------------------------------------
Ir                   
--------------------------------------------------------------------------------
751,210,409 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                      file:function
--------------------------------------------------------------------------------
5,469,732,321 (728.1%)  ???:<axum::util::MapIntoResponseFuture<F> as core::future::future::Future>::poll'2 [/work/main/target/release/cryptoutil]
  750,395,300 (99.89%)  ???:tokio::runtime::scheduler::multi_thread::worker::run [/work/main/target/release/cryptoutil]
   53,644,339 ( 7.14%)  ./string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:__memcpy_avx_unaligned_erms [/usr/lib/x86_64-linux-gnu/libc.so.6]
";
        let rows = annotated_rows(text);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            rows[1],
            (
                750_395_300,
                "tokio::runtime::scheduler::multi_thread::worker::run".to_owned()
            )
        );
        assert!(rows[2].1.ends_with(":__memcpy_avx_unaligned_erms"));
        let args =
            parse_args(&["kms-echo".to_owned(), "--top".to_owned(), "2".to_owned()]).unwrap();
        let crates = by_crate(&rows);
        assert_eq!(crates[0].1, "axum");
        let report = render(&args, 5000, 751_210_409, &crates, &rows);
        assert!(report.contains("| 150079 | 99.9 % | tokio |"), "{report}");
        assert!(
            report.contains("**150242 instructions per request**"),
            "{report}"
        );
        assert!(
            report.contains(
                "| 150079 | 99.9 % | `tokio::runtime::scheduler::multi_thread::worker::run` |"
            ),
            "{report}"
        );
        assert!(!report.contains("memcpy"), "only the top 2");
    }
}
