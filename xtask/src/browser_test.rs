//! `cargo xtask browser`: the sample single-page client in headless Chromium (Debian's package,
//! driven by npm `playwright-core` from `interop/browser/`, pinned by its package-lock.json).
//!
//! Builds the release binary, starts `identity server start --dev --demo` on free ports (its
//! issuer `https://localhost:<port>`: WebAuthn refuses IP-address origins) and
//! `identity rs start --dev --public-port 8084 --trust-issuer … --trust-issuer-ca …` (8084
//! because `demo-spa-client`'s registered redirect URI is `https://localhost:8084/callback`),
//! trusts both demo CAs in the NSS database of a temporary HOME (certificate errors are never
//! ignored), runs `interop/browser/browser.mjs`, always stops both servers, and lists the
//! screenshots written to `target/browser-artifacts/`. With `--update-docs` the signed-in
//! screenshot after the read and write calls is also copied to `docs/images/` (the one
//! embedded in the README).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::browser::{CHROMIUM, setup_browser};
use crate::oidc::run_checks;
use crate::server::{ServerProcess, build_release, unique_temp_dir};
use crate::{root, run};

/// The sample client's port: fixed by `demo-spa-client`'s registered redirect URI.
const RS_PORT: u16 = 8084;
/// The screenshot shown in the README.
const DOCS_SCREENSHOT: &str = "docs/images/sample-client-signed-in.png";

/// Runs the browser test; `--update-docs` refreshes the README's screenshot.
pub fn browser(args: &[String]) -> Result<(), String> {
    let update_docs = match args {
        [] => false,
        [flag] if flag == "--update-docs" => true,
        other => {
            return Err(format!(
                "usage: cargo xtask browser [--update-docs] (got {other:?})"
            ));
        }
    };
    let started = Instant::now();
    setup_browser()?;
    let dir = root().join("interop").join("browser");
    crate::oidc::require_node()?;
    run(
        "npm ci (interop/browser)",
        Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--ignore-scripts",
            ])
            .current_dir(&dir),
    )?;
    port_is_free(RS_PORT)?;
    let binary = build_release()?;
    // WebAuthn refuses IP-address origins: Identity is reached as https://localhost:<port>
    // (its demo certificate names localhost), so the passkey steps can run.
    let identity_port = free_port()?.to_string();
    let issuer = format!("https://localhost:{identity_port}");
    let identity = ServerProcess::start_command_with_env(
        &binary,
        "identity",
        &[
            "identity",
            "server",
            "start",
            "--dev",
            "--demo",
            "--public-port",
            &identity_port,
            "--admin-port",
            "0",
        ],
        &[("CRYPTOUTIL_IDENTITY__ISSUER", PathBuf::from(&issuer))],
    )?;
    let identity_ca = identity.ready.ca_cert.display().to_string();
    let port = RS_PORT.to_string();
    let rs = ServerProcess::start_command(
        &binary,
        "rs",
        &[
            "identity",
            "rs",
            "start",
            "--dev",
            "--public-port",
            &port,
            "--admin-port",
            "0",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            &identity_ca,
        ],
    );
    let outcome = rs.map(|rs| {
        let outcome = drive(&dir, &issuer, &identity.ready.ca_cert, &rs.ready.ca_cert);
        if outcome.as_ref().map_or(true, |o| !o.success) {
            println!("==> identity log (tail):\n{}", identity.log_tail());
            println!("==> rs log (tail):\n{}", rs.log_tail());
        }
        (outcome, rs)
    });
    let (outcome, stopped) = crate::server::stop_identity_and_rs(identity, outcome);

    let artifacts = artifacts_dir();
    let mut shots: Vec<PathBuf> = std::fs::read_dir(&artifacts)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    shots.sort();
    println!("==> screenshots in {}:", artifacts.display());
    for shot in &shots {
        println!("    {}", shot.display());
    }
    let outcome = outcome?;
    println!(
        "==> browser summary ({:.0?}): {} passed, {} failed",
        started.elapsed(),
        outcome.passed,
        outcome.failed.len()
    );
    for name in &outcome.failed {
        println!("    FAIL {name}");
    }
    stopped?;
    if !(outcome.success && outcome.failed.is_empty() && outcome.passed > 0) {
        return Err(format!(
            "{} browser step(s) failed",
            outcome.failed.len().max(1)
        ));
    }
    if update_docs {
        let signed_in = shots
            .iter()
            .find(|p| p.to_string_lossy().ends_with("-resource-write.png"))
            .ok_or("no signed-in screenshot was taken")?;
        let target = root().join(DOCS_SCREENSHOT);
        std::fs::copy(signed_in, &target)
            .map_err(|e| format!("cannot copy to {}: {e}", target.display()))?;
        println!("==> copied {} to {}", signed_in.display(), target.display());
    }
    Ok(())
}

/// A free TCP port on the loopback interface (bound, read, released).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `target/browser-artifacts/` of the repository, emptied for each run.
fn artifacts_dir() -> PathBuf {
    root().join("target").join("browser-artifacts")
}

/// Fails with the reason when the sample client's port is taken.
fn port_is_free(port: u16) -> Result<(), String> {
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map(drop)
        .map_err(|e| {
            format!(
                "port {port} is not available ({e}): the browser test runs the sample client on \
                 https://localhost:{port} because that is demo-spa-client's registered redirect \
                 URI (https://localhost:{port}/callback); stop whatever listens there and retry"
            )
        })
}

/// Trusts the CAs in a fresh NSS database under a temporary HOME, then runs the script.
fn drive(
    dir: &Path,
    issuer: &str,
    identity_ca: &Path,
    rs_ca: &Path,
) -> Result<crate::oidc::Outcome, String> {
    let home = unique_temp_dir("cryptoutil-browser-home")?;
    let profile = unique_temp_dir("cryptoutil-browser-profile")?;
    let result = trust_cas(&home, &[identity_ca, rs_ca]).and_then(|()| {
        let artifacts = artifacts_dir();
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)
            .map_err(|e| format!("cannot create {}: {e}", artifacts.display()))?;
        println!("==> browser steps (interop/browser/browser.mjs)");
        run_checks(
            Command::new("node")
                .arg("browser.mjs")
                .current_dir(dir)
                .env("RS_URL", format!("https://localhost:{RS_PORT}"))
                .env("ISSUER", issuer)
                .env("CHROMIUM", CHROMIUM)
                .env("BROWSER_HOME", &home)
                .env("USER_DATA_DIR", &profile)
                .env("ARTIFACTS", &artifacts)
                // The device steps call Identity's endpoints from Node (TLS verified).
                .env("NODE_EXTRA_CA_CERTS", identity_ca),
        )
    });
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&profile);
    result
}

/// Creates `$HOME/.pki/nssdb` trusting each CA for TLS servers (`certutil -t C,,`).
fn trust_cas(home: &Path, cas: &[&Path]) -> Result<(), String> {
    let db = home.join(".pki").join("nssdb");
    std::fs::create_dir_all(&db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    let db_arg = format!("sql:{}", db.display());
    certutil(&["-N", "--empty-password", "-d", &db_arg])?;
    for (i, ca) in cas.iter().enumerate() {
        let name = format!("cryptoutil-demo-ca-{i}");
        let ca = ca.display().to_string();
        certutil(&["-A", "-n", &name, "-t", "C,,", "-d", &db_arg, "-i", &ca])?;
    }
    Ok(())
}

fn certutil(args: &[&str]) -> Result<(), String> {
    let status = Command::new("certutil")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run certutil: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("certutil {} failed ({status})", args.join(" ")))
    }
}
