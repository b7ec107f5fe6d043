//! `cryptoutil kms …` commands that talk to a running KMS: `inventory`.
//!
//! `kms inventory` GETs `/service/api/v1/crypto-inventory` (the tenant of the user or token,
//! which needs `kms:admin`: HTTP Basic, a token file, or with `--login` the stored token of
//! `cryptoutil identity login`, refreshed when about to expire) or, with `--admin`,
//! `/admin/v1/crypto-inventory` on the admin listener (every tenant), over TLS 1.3 with the
//! certificate verified against `--ca-cert`, and prints a table, the JSON, or the CycloneDX
//! CBOM. Exit 1 when the KMS refuses or cannot be reached, 2 for a malformed command line.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use cryptoutil_tls::{ClientIdentity, TrustConfig, client_config};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::Failure;
use crate::cli::{InventoryArgs, InventoryFormat};

/// Longest `--timeout`.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest answer read (a CBOM of a very large KMS is still far below this).
const MAX_BODY: usize = 256 * 1024 * 1024;

enum Auth {
    Basic(String, Zeroizing<String>),
    Bearer(Zeroizing<String>),
    /// The stored sign-in of `identity login` (of this issuer, if given).
    Login(Option<String>),
    None,
}

/// Reads a secret file's first line (a trailing newline is not part of the secret).
fn read_secret(path: &Path, flag: &str) -> Result<Zeroizing<String>, Failure> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))?,
    );
    let line = text.lines().next().unwrap_or_default().trim_end();
    if line.is_empty() {
        return Err(Failure::Usage(format!(
            "{flag} {} is empty",
            path.display()
        )));
    }
    Ok(Zeroizing::new(line.to_owned()))
}

fn auth(args: &InventoryArgs) -> Result<Auth, Failure> {
    if args.admin {
        return Ok(Auth::None);
    }
    if let Some(issuer) = &args.login {
        return Ok(Auth::Login(Some(issuer.clone()).filter(|i| !i.is_empty())));
    }
    match (&args.username, &args.password_file, &args.token_file) {
        (Some(user), Some(file), None) => Ok(Auth::Basic(
            user.clone(),
            read_secret(file, "--password-file")?,
        )),
        (None, None, Some(file)) => Ok(Auth::Bearer(read_secret(file, "--token-file")?)),
        _ => Err(Failure::Usage(
            "give --username with --password-file, --token-file, or --login (the token of \
             `cryptoutil identity login`), or --admin for every tenant from the admin listener"
                .to_owned(),
        )),
    }
}

fn client(args: &InventoryArgs, timeout: Duration) -> Result<reqwest::Client, Failure> {
    let trust =
        TrustConfig::from_ca_files(&args.ca_cert).map_err(|e| Failure::Usage(e.to_string()))?;
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            Some(ClientIdentity::load(cert, key).map_err(|e| Failure::Usage(e.to_string()))?)
        }
        _ => None,
    };
    let tls = client_config(trust, identity).map_err(|e| Failure::Usage(e.to_string()))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!(
            "cryptoutil-kms-inventory/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot build the HTTPS client: {e}")))
}

/// `cryptoutil kms inventory`.
pub fn inventory(args: &InventoryArgs) -> Result<(), Failure> {
    let base = super::https_url(&args.url)?;
    let timeout = super::timeout(&args.timeout, MAX_TIMEOUT, "30s")?;
    let mut auth = auth(args)?;
    let path = if args.admin {
        "/admin/v1/crypto-inventory"
    } else {
        "/service/api/v1/crypto-inventory"
    };
    let format = match args.format {
        InventoryFormat::Cyclonedx => "cyclonedx",
        InventoryFormat::Table | InventoryFormat::Json => "json",
    };
    let mut url = base
        .join(path)
        .map_err(|e| Failure::Usage(format!("--url {:?}: {e}", args.url)))?;
    url.set_query(Some(&format!("format={format}")));
    let client = client(args, timeout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    if let Auth::Login(issuer) = &auth {
        let store = crate::client::store::Store::from_env().map_err(Failure::Usage)?;
        let token = runtime.block_on(super::identity::access_token(
            &store,
            issuer.as_deref(),
            None,
        ))?;
        auth = Auth::Bearer(token);
    }
    let document = runtime.block_on(fetch(&client, url, &auth))?;
    let text = match args.format {
        InventoryFormat::Table => table(&document),
        InventoryFormat::Json | InventoryFormat::Cyclonedx => {
            let mut text = serde_json::to_string_pretty(&document)
                .map_err(|e| Failure::Runtime(format!("cannot print the inventory: {e}")))?;
            text.push('\n');
            text
        }
    };
    match &args.output {
        Some(file) => std::fs::write(file, text.as_bytes())
            .map_err(|e| Failure::Runtime(format!("--output {}: {e}", file.display()))),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::Runtime(format!("cannot write to standard output: {e}"))),
    }
}

async fn fetch(client: &reqwest::Client, url: url::Url, auth: &Auth) -> Result<Value, Failure> {
    let request = client.get(url.clone());
    let request = match auth {
        Auth::Basic(user, password) => request.basic_auth(user, Some(password.as_str())),
        Auth::Bearer(token) => request.bearer_auth(token.as_str()),
        Auth::Login(_) | Auth::None => request,
    };
    let mut response = request
        .send()
        .await
        .map_err(|e| Failure::Runtime(format!("GET {url}: {}", one_line(&e))))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Runtime(format!("GET {url}: {}", one_line(&e))))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::Runtime(format!(
                "GET {url}: the answer is larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(Failure::Runtime(format!(
            "GET {url}: HTTP {status}: {detail}"
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Failure::Runtime(format!("GET {url}: the answer is not JSON: {e}")))
}

/// An error's causes on one line.
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

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Control characters out, so a key name cannot rewrite the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn columns(rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; rows.first().map_or(0, Vec::len)];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One row per key, then the totals and the counts per algorithm.
fn table(inventory: &Value) -> String {
    let mut rows = vec![
        [
            "TENANT",
            "NAME",
            "ALGORITHM",
            "TYPE",
            "SIZE",
            "VERSIONS",
            "ROTATION",
            "STATUS",
            "CREATED",
            "LAST USE",
            "QUANTUM",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let empty = Vec::new();
    for key in inventory["keys"].as_array().unwrap_or(&empty) {
        let tenant = match &key["tenant_name"] {
            Value::String(name) => name.clone(),
            _ => text(&key["tenant_id"]),
        };
        let size = match (&key["key_size_bits"], &key["parameter_set"]) {
            (Value::Number(bits), _) => bits.to_string(),
            (_, Value::String(set)) => set.clone(),
            _ => "-".to_owned(),
        };
        let quantum = match &key["quantum_vulnerable"] {
            Value::Bool(true) => "VULNERABLE",
            Value::Bool(false) => "resistant",
            _ => "unknown",
        };
        let date = |v: &Value| {
            let t = text(v);
            // 2026-12-07T13:40:00Z → 2026-12-07 13:40
            t.get(..16).map_or(t.clone(), |s| s.replace('T', " "))
        };
        rows.push(
            [
                tenant,
                text(&key["name"]),
                text(&key["algorithm"]),
                text(&key["key_type"]),
                size,
                text(&key["versions"]),
                text(&key["rotation_policy"]),
                text(&key["status"]),
                date(&key["created_at"]),
                date(&key["last_used_at"]),
                quantum.to_owned(),
            ]
            .map(|c| printable(&c))
            .to_vec(),
        );
    }
    let mut out = columns(&rows);
    let totals = &inventory["totals"];
    out.push_str(&format!(
        "\n{} keys ({} purged): {} quantum-vulnerable, {} resistant, {} unknown\n",
        text(&totals["keys"]),
        text(&totals["deleted"]),
        text(&totals["quantum_vulnerable"]),
        text(&totals["quantum_resistant"]),
        text(&totals["quantum_unknown"]),
    ));
    let mut per = vec![["ALGORITHM", "KEYS", "QUANTUM"].map(str::to_owned).to_vec()];
    for total in totals["by_algorithm"].as_array().unwrap_or(&empty) {
        let quantum = match &total["quantum_vulnerable"] {
            Value::Bool(true) => "VULNERABLE",
            Value::Bool(false) => "resistant",
            _ => "unknown",
        };
        per.push(
            [
                printable(&text(&total["algorithm"])),
                text(&total["keys"]),
                quantum.to_owned(),
            ]
            .to_vec(),
        );
    }
    out.push('\n');
    out.push_str(&columns(&per));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_table_has_a_row_per_key_and_the_totals() {
        let inventory = json!({
            "keys": [
                {"tenant_name": "t1", "name": "sig\u{1b}[2J", "algorithm": "ES256", "key_type": "EC",
                 "key_size_bits": 256, "versions": 2, "rotation_policy": "manual",
                 "status": "active", "created_at": "2026-12-07T13:40:05Z", "last_used_at": null,
                 "quantum_vulnerable": true},
                {"tenant_id": "0190", "name": "pq", "algorithm": "ML-DSA-65", "key_type": "AKP",
                 "key_size_bits": null, "parameter_set": "65", "versions": 1,
                 "rotation_policy": "none", "status": "disabled",
                 "created_at": "2026-12-07T13:41:00Z", "last_used_at": "2026-12-07T14:00:00Z",
                 "quantum_vulnerable": false},
            ],
            "totals": {"keys": 2, "deleted": 0, "quantum_vulnerable": 1, "quantum_resistant": 1,
                       "quantum_unknown": 0,
                       "by_algorithm": [{"algorithm": "ES256", "keys": 1, "quantum_vulnerable": true},
                                        {"algorithm": "ML-DSA-65", "keys": 1, "quantum_vulnerable": false}]}
        });
        let out = table(&inventory);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("TENANT"), "{out}");
        assert!(
            lines[1].contains("t1") && lines[1].contains("VULNERABLE"),
            "{out}"
        );
        assert!(
            lines[1].contains("2026-12-07 13:40") && lines[1].contains("sig?[2J"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'));
        assert!(
            lines[2].contains("0190") && lines[2].contains(" 65 "),
            "{out}"
        );
        assert!(lines[2].contains("2026-12-07 14:00") && lines[2].contains("resistant"));
        assert!(out.contains("2 keys (0 purged): 1 quantum-vulnerable, 1 resistant, 0 unknown"));
        assert!(out.contains("ML-DSA-65  1     resistant"), "{out}");
    }
}
