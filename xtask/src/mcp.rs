//! `cargo xtask mcp [cimd|dcr]`: the MCP authorization path end to end with the official
//! `@modelcontextprotocol/sdk` client auth helpers (`interop/mcp/`, pinned by its
//! package-lock.json).
//!
//! Installs the SDK with `npm ci`, builds the release binary, makes a demo CA for the client's
//! own metadata document server (`tls init-demo-ca`), starts Identity (`--dev --demo` with a
//! configuration trusting that CA for client ID metadata documents, private addresses allowed
//! because the document is on loopback, the resource server's URL as an allowed resource and its
//! scopes allowed) and the sample resource server (`identity rs start --dev`, trusting Identity,
//! its own URL as `resource.identifier` so it publishes RFC 9728 metadata),
//! runs `interop/mcp/mcp.mjs` (a client that knows only the resource's URL), always stops both
//! servers, and fails when any step failed. `cimd` identifies the client by a metadata document
//! URL; `dcr` registers it dynamically (RFC 7591; registered clients may name the resource
//! server, `registration.audiences`). Without a mode (and in `ci`) both run, each against its own
//! servers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::oidc::{require_node, run_checks};
use crate::server::{ServerProcess, build_release, unique_temp_dir};
use crate::{root, run};

/// Runs the MCP client against freshly started release servers.
pub fn mcp(args: &[String]) -> Result<(), String> {
    let modes: &[&str] = match args {
        [] => &["cimd", "dcr"],
        [mode] if mode == "cimd" => &["cimd"],
        [mode] if mode == "dcr" => &["dcr"],
        other => return Err(format!("usage: cargo xtask mcp [cimd|dcr] (got {other:?})")),
    };
    let dir = root().join("interop").join("mcp");
    require_node()?;
    run(
        "npm ci (interop/mcp)",
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
    let binary = build_release()?;
    for mode in modes {
        run_mode(&binary, &dir, mode)?;
    }
    Ok(())
}

/// One mode against its own freshly started servers.
fn run_mode(binary: &Path, dir: &Path, mode: &str) -> Result<(), String> {
    let started = Instant::now();
    let work = unique_temp_dir("cryptoutil-mcp")?;
    let outcome = with_servers(binary, &work, dir, mode);
    let _ = std::fs::remove_dir_all(&work);
    let outcome = outcome?;
    println!(
        "==> mcp ({mode}) summary ({:.0?}): {} passed, {} failed",
        started.elapsed(),
        outcome.passed,
        outcome.failed.len()
    );
    for name in &outcome.failed {
        println!("    FAIL {name}");
    }
    if outcome.success && outcome.failed.is_empty() && outcome.passed > 0 {
        Ok(())
    } else {
        Err(format!(
            "{} MCP step(s) failed",
            outcome.failed.len().max(1)
        ))
    }
}

/// Starts Identity and the resource server, runs the script, stops both.
fn with_servers(
    binary: &Path,
    work: &Path,
    dir: &Path,
    mode: &str,
) -> Result<crate::oidc::Outcome, String> {
    let pki = work.join("client-pki");
    run(
        "demo CA for the client's metadata document server",
        Command::new(binary).args(["tls", "init-demo-ca", "--out", &pki.to_string_lossy()]),
    )?;
    let rs_port = free_port()?;
    let rs_url = format!("https://127.0.0.1:{rs_port}");
    let config = work.join("identity.yml");
    std::fs::write(
        &config,
        identity_config(&pki.join("ca").join("root.pem"), &rs_url),
    )
    .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let config = config.to_string_lossy().into_owned();
    let identity = ServerProcess::start_command(
        binary,
        "identity",
        &[
            "identity",
            "server",
            "start",
            "--dev",
            "--demo",
            "--config",
            &config,
            "--public-port",
            "0",
            "--admin-port",
            "0",
        ],
    )?;
    let issuer = identity.ready.public_url.clone();
    let identity_ca = identity.ready.ca_cert.display().to_string();
    let port = rs_port.to_string();
    // The resource identifier (RFC 9728 `resource`, the accepted `aud`, and what makes the
    // resource server name its metadata in `resource_metadata`) is its own URL.
    let rs = ServerProcess::start_command_with_env(
        binary,
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
        &[(
            "CRYPTOUTIL_RS__RESOURCE__IDENTIFIER",
            PathBuf::from(&rs_url),
        )],
    );
    let outcome = rs.map(|rs| {
        let outcome = if rs.ready.public_url == rs_url {
            ca_bundle(
                work,
                &[
                    &identity.ready.ca_cert,
                    &rs.ready.ca_cert,
                    &pki.join("ca").join("root.pem"),
                ],
            )
            .and_then(|bundle| {
                println!("==> MCP client ({mode}, interop/mcp/mcp.mjs)");
                run_checks(
                    Command::new("node")
                        .arg("mcp.mjs")
                        .current_dir(dir)
                        .env("RS_URL", &rs_url)
                        .env("ISSUER", &issuer)
                        .env("MODE", mode)
                        .env("DOC_CERT", pki.join("rs").join("cert.pem"))
                        .env("DOC_KEY", pki.join("rs").join("key.pem"))
                        .env("NODE_EXTRA_CA_CERTS", bundle),
                )
            })
        } else {
            Err(format!(
                "the resource server reports {} instead of {rs_url}",
                rs.ready.public_url
            ))
        };
        if outcome.as_ref().map_or(true, |o| !o.success) {
            println!("==> identity log (tail):\n{}", identity.log_tail());
            println!("==> rs log (tail):\n{}", rs.log_tail());
        }
        (outcome, rs)
    });
    let (outcome, stopped) = crate::server::stop_identity_and_rs(identity, outcome);
    let outcome = outcome?;
    stopped?;
    Ok(outcome)
}

/// Identity's configuration for the run: client ID metadata documents trusted from the client's
/// CA (and only it), on loopback (the client serves its document there), with the resource
/// server as the one resource and its scopes allowed. Test settings: never the shipped demo
/// defaults.
fn identity_config(client_ca: &Path, rs_url: &str) -> String {
    format!(
        "client_id_metadata_documents:\n  enabled: true\n  public_roots: false\n  ca_file: \
         {ca:?}\n  allow_private_addresses: true\n  allowed_scopes: [{scopes}]\n  audiences: \
         [{rs_url:?}]\nregistration:\n  allowed_scopes: [{scopes}]\n  audiences: [{rs_url:?}]\n",
        scopes = "openid, profile, email, offline_access, \"read:resource\", \"write:resource\"",
        ca = client_ca.display().to_string(),
    )
}

/// A free TCP port of 127.0.0.1 (bound and released: the resource server takes it next, and
/// its URL must be known to Identity's configuration first).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// One PEM file with every CA Node must trust (NODE_EXTRA_CA_CERTS takes one file).
fn ca_bundle(work: &Path, cas: &[&Path]) -> Result<PathBuf, String> {
    let mut bundle = String::new();
    for ca in cas {
        bundle.push_str(
            &std::fs::read_to_string(ca)
                .map_err(|e| format!("cannot read {}: {e}", ca.display()))?,
        );
        bundle.push('\n');
    }
    let path = work.join("ca-bundle.pem");
    std::fs::write(&path, bundle).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_configuration_names_the_run_s_values() {
        let text = identity_config(Path::new("/tmp/x/ca/root.pem"), "https://127.0.0.1:4242");
        for line in [
            "client_id_metadata_documents:",
            "  enabled: true",
            "  ca_file: \"/tmp/x/ca/root.pem\"",
            "  allow_private_addresses: true",
            "  audiences: [\"https://127.0.0.1:4242\"]",
            "registration:",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
        }
        assert!(text.contains("\"read:resource\""));
    }
}
