//! `cryptoutil health URL`: the container health probe (the runtime image has no curl).
//!
//! One GET over TLS 1.3 with the server certificate verified against `--ca-cert`, optionally
//! presenting a client certificate (admin listeners require one outside `--dev`). Exit 0 on a
//! 2xx answer; 1 with a one-line reason otherwise (Docker treats any non-zero exit as
//! unhealthy); 2 for a malformed command line.

use std::time::Duration;

use cryptoutil_tls::{ClientIdentity, TrustConfig, client_config};

use crate::Failure;
use crate::cli::HealthArgs;

/// Longest `--timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(args: &HealthArgs) -> Result<(), Failure> {
    let url = super::https_url(&args.url)?;
    let timeout = super::timeout(&args.timeout, MAX_TIMEOUT, "5s")?;
    let client = client(args, timeout).map_err(Failure::Runtime)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let status = runtime
        .block_on(async { client.get(url.clone()).send().await })
        .map_err(|e| Failure::Runtime(format!("GET {url}: {}", one_line(&e))))?
        .status();
    if status.is_success() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!("GET {url}: HTTP {status}")))
    }
}

fn client(args: &HealthArgs, timeout: Duration) -> Result<reqwest::Client, String> {
    let trust = TrustConfig::from_ca_files(&args.ca_cert).map_err(|e| e.to_string())?;
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            Some(ClientIdentity::load(cert, key).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let tls = client_config(trust, identity).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("cryptoutil-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// An error's causes on one line: reqwest's own message only repeats the URL, the TLS or socket
/// reason is in its sources.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(error.source().unwrap_or(error));
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ").replace('\n', " ")
}
