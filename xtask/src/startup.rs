//! KMS start to ready on an existing SQLite database (issue 12: ≤ 300 ms).
//!
//! Set-up, with the product's own tools: three unseal shares (`kms barrier generate-shares`), a
//! demo CA and certificates (`tls init-demo-ca`), and a configuration with a SQLite file, the
//! shares (2 of 3) and the certificates. A first start with `--demo` creates, migrates and seeds
//! the database; then each timed start runs the same command without `--demo` and is measured
//! from spawning the process to its ready file (both listeners bound, barrier unsealed), polled
//! every 2 ms, and stopped through `POST /admin/v1/shutdown`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::proc_stats::{loadavg, rss};
use crate::server::{ServerProcess, unique_temp_dir};

/// Times `runs` starts of the KMS on a database created by a first, untimed start.
pub async fn kms_start_times(binary: &Path, runs: usize) -> Result<Value, String> {
    let dir = unique_temp_dir("cryptoutil-bench-start")?;
    let result = measure(binary, &dir, runs).await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn measure(binary: &Path, dir: &Path, runs: usize) -> Result<Value, String> {
    let shares = dir.join("shares");
    let pki = dir.join("pki");
    tool(
        binary,
        &[
            "kms",
            "barrier",
            "generate-shares",
            "--out",
            &shares.to_string_lossy(),
            "--count",
            "3",
        ],
    )?;
    tool(
        binary,
        &["tls", "init-demo-ca", "--out", &pki.to_string_lossy()],
    )?;
    let config = dir.join("kms.yml");
    std::fs::write(&config, config_text(dir, &pki, &shares))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let ca = pki.join("ca").join("root.pem");
    let config = config.to_string_lossy().into_owned();
    let args = |demo: bool| {
        let mut args = vec!["kms", "server", "start", "--config", &config];
        if demo {
            args.push("--demo");
        }
        args.extend(["--public-port", "0", "--admin-port", "0"]);
        args
    };
    println!("==> KMS start-up: creating the SQLite database (first start, with --demo)");
    let first = ServerProcess::start_command_trusting(binary, "kms", &args(true), Some(&ca))?;
    first.shutdown().await?;
    let mut times = Vec::new();
    let mut idle = None;
    let mut load = Vec::new();
    for _ in 0..runs {
        load.push(loadavg());
        let server = ServerProcess::start_command_trusting(binary, "kms", &args(false), Some(&ca))?;
        times.push(server.started_in.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        idle = rss(server.pid()).map(|r| r.current_kib).or(idle);
        server.shutdown().await?;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "runs_ms": times.iter().map(|t| round(*t)).collect::<Vec<_>>(),
        "median_ms": sorted.get(sorted.len() / 2).map(|t| round(*t)),
        "min_ms": sorted.first().map(|t| round(*t)),
        "max_ms": sorted.last().map(|t| round(*t)),
        "idle_rss_kib": idle,
        "loadavg": load.first().cloned().unwrap_or_default(),
        "loadavg_each": load,
    }))
}

/// The KMS configuration of the timed starts.
fn config_text(dir: &Path, pki: &Path, shares: &Path) -> String {
    let files: String = (1..=3)
        .map(|i| format!("      - {}\n", shares.join(format!("share-{i}")).display()))
        .collect();
    format!(
        "server:\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/kms/cert.pem\n    \
         key_file: {p}/kms/key.pem\n    watch: false\ndatabase:\n  url: sqlite://{db}\n\
         barrier:\n  unseal:\n    mode: shares\n    threshold: 2\n    files:\n{files}",
        p = pki.display(),
        db = dir.join("kms.db").display(),
    )
}

/// Runs one of the product's tools and requires success.
fn tool(binary: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new(binary)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run cryptoutil {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cryptoutil {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_the_database_shares_and_certificates() {
        let text = config_text(Path::new("/d"), Path::new("/d/pki"), Path::new("/d/shares"));
        assert!(text.contains("url: sqlite:///d/kms.db"));
        assert!(text.contains("cert_file: /d/pki/kms/cert.pem"));
        assert!(text.contains("      - /d/shares/share-3\n"));
        assert!(text.contains("threshold: 2"));
    }
}
