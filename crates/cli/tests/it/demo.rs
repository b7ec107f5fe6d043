//! End-to-end tests of `cryptoutil demo kms|identity`: the binary itself, spawned as a process,
//! against in-process servers (the default) and against servers running in other processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{ServerProcess, init_demo_ca, run, start_server, stderr, stdout};

/// Runs a demo with `--output json` and returns the exit code and the one document.
fn run_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = run(&all);
    let text = stdout(&out);
    let document: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {text}\n{}",
            stderr(&out)
        )
    });
    (out.status.code().unwrap(), document)
}

/// The document has the SPEC §6 shape and its counts add up.
fn check_document(document: &Value, demo: &str, steps: usize) {
    assert_eq!(document["demo"], demo);
    let listed = document["steps"].as_array().unwrap();
    assert_eq!(listed.len(), steps);
    assert_eq!(document["total_steps"], steps);
    let passed = listed.iter().filter(|s| s["status"] == "passed").count();
    let failed = listed.iter().filter(|s| s["status"] == "failed").count();
    assert_eq!(passed + failed, steps, "every step is passed or failed");
    assert_eq!(document["passed_steps"], passed);
    assert_eq!(document["failed_steps"], failed);
    assert_eq!(document["success"], failed == 0);
    assert!(document["duration_ms"].is_u64());
    for (i, step) in listed.iter().enumerate() {
        assert_eq!(step["index"], i + 1);
        assert!(step["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(step["phase"].as_str().is_some_and(|p| !p.is_empty()));
        assert!(step["duration_ms"].is_u64(), "{step}");
        if step["status"] == "failed" {
            assert!(step["error"]["message"].is_string(), "{step}");
        } else {
            assert!(step.get("error").is_none(), "{step}");
        }
    }
}

fn step<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Secrets the demo must never print, even with `--verbose`.
fn assert_no_secrets(text: &str) {
    for secret in [
        "demo-user-password",
        "demo-user-2-password",
        "demo-confidential-client-secret",
        "demo-admin-password",
        "eyJ", // the start of every JOSE header: no token, JWE or JWS is printed
    ] {
        assert!(!text.contains(secret), "printed {secret}: {text}");
    }
}

#[test]
fn demo_kms_passes_with_every_step_in_json() {
    let (code, document) = run_json(&["demo", "kms"]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "kms", 12);
    assert_eq!(document["success"], true);
    let names: Vec<&str> = document["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kms-health",
            "kms-seeded-data",
            "kms-create-key",
            "kms-rotate-key",
            "kms-encrypt",
            "kms-decrypt",
            "kms-sign",
            "kms-verify",
            "kms-generate-data-key",
            "kms-pq-sign-verify",
            "kms-pq-encrypt-decrypt",
            "kms-tenant-isolation",
        ]
    );
}

#[test]
fn demo_all_federates_the_kms_to_identity() {
    let (code, document) = run_json(&["demo", "all"]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "all", 20);
    let names: Vec<&str> = document["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kms-health",
            "identity-discovery",
            "federation-token",
            "federation-list",
            "federation-encrypt",
            "federation-decrypt",
            "federation-sign",
            "federation-verify",
            "federation-dpop-token",
            "federation-dpop-encrypt",
            "federation-user-token",
            "federation-user-token-refused",
            "federation-exchange",
            "federation-exchange-encrypt",
            "federation-no-token",
            "federation-tampered-token",
            "federation-read-only",
            "federation-revoked-token",
            "federation-dpop-stolen",
            "federation-audit",
        ]
    );
    assert_no_secrets(&document.to_string());
}

#[test]
fn demo_identity_passes_with_human_output_and_no_secrets_even_verbose() {
    let out = run(&["demo", "identity", "--verbose"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for i in 1..=16 {
        assert!(text.contains(&format!("[{i}/16] ")), "step {i}: {text}");
    }
    assert!(
        text.contains("demo identity: all 16 steps passed"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(text.contains("at_hash ok"), "verbose details: {text}");
    assert_no_secrets(&text);
    assert_no_secrets(&stderr(&out));

    let (code, document) = run_json(&["demo", "identity"]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "identity", 16);
}

#[test]
fn demo_kms_verbose_and_quiet() {
    let out = run(&["demo", "kms", "--verbose"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("[12/12] Tenant isolation"), "{text}");
    assert!(text.contains("ML-DSA-65"), "{text}");
    assert!(
        text.contains("404 like a key that does not exist"),
        "{text}"
    );
    assert_no_secrets(&text);

    let out = run(&["demo", "kms", "--quiet"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "only the summary: {lines:?}");
    assert!(lines[0].contains("all 12 steps passed"), "{lines:?}");
}

#[test]
fn a_wrong_password_fails_the_steps_that_need_it_with_exit_1() {
    let (code, document) = run_json(&["demo", "kms", "--password", "not-the-password"]);
    assert_eq!(code, 1, "health passed, the rest failed: {document:#}");
    check_document(&document, "kms", 12);
    assert_eq!(step(&document, "kms-health")["status"], "passed");
    let seeded = step(&document, "kms-seeded-data");
    assert_eq!(seeded["status"], "failed");
    let cause = seeded["error"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("demo-user cannot sign in") && cause.contains("401"),
        "{cause}"
    );
    let create = step(&document, "kms-create-key");
    assert!(
        create["error"]["cause"].as_str().unwrap().contains("401"),
        "{create}"
    );
    let rotate = step(&document, "kms-rotate-key");
    assert_eq!(rotate["error"]["message"], "skipped: step 3 failed");
    assert!(!document.to_string().contains("not-the-password"));
}

#[test]
fn a_wrong_client_secret_from_a_file_fails_with_exit_1_naming_invalid_client() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "not-the-secret\n").unwrap();
    let (code, document) = run_json(&[
        "demo",
        "identity",
        "--client-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{document:#}");
    check_document(&document, "identity", 16);
    assert_eq!(step(&document, "identity-discovery")["status"], "passed");
    // The browser part does not use the secret; the token endpoint refuses it.
    assert_eq!(step(&document, "identity-authorize")["status"], "passed");
    let exchange = step(&document, "identity-token-exchange");
    assert_eq!(exchange["status"], "failed");
    assert!(
        exchange["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{exchange}"
    );
    assert!(!document.to_string().contains("not-the-secret"));
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let (code, document) =
        run_json(&["demo", "kms", "--password", "wrong-password", "--fail-fast"]);
    assert_eq!(code, 1);
    check_document(&document, "kms", 12);
    let create = step(&document, "kms-create-key");
    assert!(
        create["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--fail-fast"),
        "{create}"
    );
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_server_fails_every_step_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init_demo_ca(&pki);
    let ca = pki.join("ca/root.pem");
    let url = format!("https://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let (code, document) = run_json(&[
        "demo",
        "kms",
        "--kms-url",
        &url,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--health-timeout",
        "1s",
        "--retry",
        "0",
    ]);
    assert_eq!(code, 2, "nothing passed: {document:#}");
    check_document(&document, "kms", 12);
    assert_eq!(document["passed_steps"], 0);
    let health = step(&document, "kms-health");
    assert!(
        health["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not healthy within 1 s"),
        "{health}"
    );
    let cause = health["error"]["cause"].as_str().unwrap().to_lowercase();
    assert!(
        cause.contains("connect") && cause.contains("refused"),
        "{cause}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn structured_output_is_logfmt() {
    let out = run(&["demo", "kms", "--output", "structured"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let steps: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(" event=step "))
        .collect();
    assert_eq!(steps.len(), 12, "{text}");
    for line in &lines {
        let fields = parse_logfmt(line).unwrap_or_else(|e| panic!("not logfmt ({e}): {line}"));
        assert_eq!(fields[0].0, "ts", "{line}");
        assert!(
            fields.iter().any(|(k, v)| k == "demo" && v == "kms"),
            "{line}"
        );
    }
    let summary = parse_logfmt(lines.last().unwrap()).unwrap();
    let get = |key: &str| {
        summary
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("event"), Some("summary"));
    assert_eq!(get("success"), Some("true"));
    assert_eq!(get("total_steps"), Some("12"));
    assert_eq!(get("passed_steps"), Some("12"));
    let first = parse_logfmt(steps[0]).unwrap();
    assert!(first.iter().any(|(k, v)| k == "status" && v == "passed"));
    assert!(first.iter().any(|(k, _)| k == "duration_ms"));
}

/// A strict logfmt parser: `key=value` pairs separated by single spaces; keys `[a-z_]+`; values
/// bare (no space, `=` or `"`) or double-quoted with backslash escapes.
fn parse_logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_lowercase() || *c == '_')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return Err(format!("bad key after {fields:?}"));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.push(chars.next().ok_or("dangling escape")?),
                    Some(c) => value.push(c),
                    None => return Err("unterminated quote".to_owned()),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ' ')).collect();
            if value.is_empty() || value.contains(['=', '"']) {
                return Err(format!("bad bare value for {key}"));
            }
        }
        fields.push((key, value));
        match chars.next() {
            None => return Ok(fields),
            Some(' ') => {}
            Some(c) => return Err(format!("unexpected {c:?}")),
        }
    }
}

#[test]
fn usage_errors_exit_2_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    for (args, says) in [
        (
            vec!["demo", "kms", "--identity-url", "https://127.0.0.1:8082"],
            "does not apply",
        ),
        (
            vec!["demo", "kms", "--kms-url", "https://127.0.0.1:8081"],
            "--ca-cert is required",
        ),
        (
            vec![
                "demo",
                "identity",
                "--identity-url",
                "http://127.0.0.1:8082",
                "--ca-cert",
                "x.pem",
            ],
            "https://",
        ),
        (
            vec!["demo", "kms", "--ca-cert", "x.pem"],
            "--ca-cert applies",
        ),
        (
            vec!["demo", "kms", "--health-timeout", "soon"],
            "--health-timeout",
        ),
        (
            vec!["demo", "kms", "--health-timeout", "0s"],
            "--health-timeout",
        ),
        (
            vec!["demo", "kms", "--password-file", "/nonexistent/secret"],
            "/nonexistent/secret",
        ),
        (
            vec!["demo", "kms", "--password-file", empty.to_str().unwrap()],
            "empty",
        ),
        (vec!["demo", "kms", "--retry", "11"], "11"),
        (
            vec!["demo", "kms", "--password", "a", "--password-file", "b"],
            "cannot be used with",
        ),
        (
            vec![
                "demo",
                "all",
                "--kms-url",
                "https://127.0.0.1:1",
                "--ca-cert",
                "x.pem",
            ],
            "both --kms-url and --identity-url",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn the_demos_validate_servers_running_in_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start_server(&["kms", "server", "start", "--dev", "--demo"], dir.path());
    let identity = start_server(
        &["identity", "server", "start", "--dev", "--demo"],
        dir.path(),
    );
    let password = dir.path().join("password");
    std::fs::write(&password, "demo-user-password\n").unwrap();

    let (code, document) = run_json(&[
        "demo",
        "kms",
        "--kms-url",
        kms.ready["public_url"].as_str().unwrap(),
        "--ca-cert",
        kms.ready["ca_cert"].as_str().unwrap(),
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "kms", 12);

    let (code, document) = run_json(&[
        "demo",
        "identity",
        "--identity-url",
        identity.ready["public_url"].as_str().unwrap(),
        "--ca-cert",
        identity.ready["ca_cert"].as_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "identity", 16);

    // `demo all` against a KMS that trusts that Identity server, its admin listener requiring
    // client certificates as in production: every step passes, the audit events read over mTLS.
    let strict_admin = dir.path().join("strict-admin.yml");
    std::fs::write(
        &strict_admin,
        "server:\n  admin:\n    require_client_cert: true\n",
    )
    .unwrap();
    let federated = start_server(
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--demo",
            "--config",
            strict_admin.to_str().unwrap(),
            "--trust-issuer",
            identity.ready["public_url"].as_str().unwrap(),
            "--trust-issuer-ca",
            identity.ready["ca_cert"].as_str().unwrap(),
        ],
        dir.path(),
    );
    let kms_ca = PathBuf::from(federated.ready["ca_cert"].as_str().unwrap());
    let demo_cert = kms_ca.parent().unwrap().parent().unwrap().join("demo");
    let running = |extra: &[&str]| {
        let mut args = vec![
            "demo",
            "all",
            "--kms-url",
            federated.ready["public_url"].as_str().unwrap(),
            "--identity-url",
            identity.ready["public_url"].as_str().unwrap(),
            "--ca-cert",
            federated.ready["ca_cert"].as_str().unwrap(),
            "--ca-cert",
            identity.ready["ca_cert"].as_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_json(&args)
    };
    let cert = demo_cert.join("cert.pem");
    let key = demo_cert.join("key.pem");
    let (code, document) = running(&[
        "--kms-admin-url",
        federated.ready["admin_url"].as_str().unwrap(),
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{document:#}");
    check_document(&document, "all", 20);
    let health = step(&document, "kms-health");
    assert_eq!(health["status"], "passed", "{health}");

    // Without the admin listener the audit step cannot run, and says what it needs.
    let (code, document) = running(&[]);
    assert_eq!(code, 1, "{document:#}");
    assert_eq!(document["failed_steps"], 1, "{document:#}");
    let audit = step(&document, "federation-audit");
    assert!(
        audit["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--kms-admin-url"),
        "{audit}"
    );

    // The admin listener refuses a demo without the client certificate.
    let (code, document) = running(&[
        "--kms-admin-url",
        federated.ready["admin_url"].as_str().unwrap(),
        "--health-timeout",
        "2s",
    ]);
    assert_eq!(code, 1, "{document:#}");
    let health = step(&document, "kms-health");
    assert!(
        health["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requires a client certificate"),
        "{health}"
    );

    // The Identity server's certificate does not chain to the KMS's demo CA: refused at once.
    let (code, document) = run_json(&[
        "demo",
        "identity",
        "--identity-url",
        identity.ready["public_url"].as_str().unwrap(),
        "--ca-cert",
        kms.ready["ca_cert"].as_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{document:#}");
    let discovery = step(&document, "identity-discovery");
    assert!(
        discovery["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not trusted"),
        "{discovery}"
    );
    assert!(
        discovery["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{discovery}"
    );

    // After all of that, at debug level, no server logged a credential or a token.
    for server in [kms, identity, federated] {
        drop_and_check_log(server);
    }
}

/// Every password and client secret of the canonical demo data (SPEC §3.7, §4), read from the
/// seed files so the list cannot fall behind them.
fn demo_secrets() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut secrets = Vec::new();
    for seed in [
        "deployments/kms/config/demo-seed.yml",
        "deployments/identity/config/demo-seed.yml",
    ] {
        let text = std::fs::read_to_string(root.join(seed)).unwrap();
        for line in text.lines().map(str::trim) {
            if let Some(value) = line
                .strip_prefix("password: ")
                .or_else(|| line.strip_prefix("secret: "))
            {
                secrets.push(value.trim().to_owned());
            }
        }
    }
    assert!(secrets.len() >= 10, "{secrets:?}");
    secrets
}

/// Whether `pattern` occurs in `line` not preceded by a base64url character: a token starts
/// there, while a random key id may hold `eyJ` inside it (one did, and failed this check).
fn contains_at_word_start(line: &str, pattern: &str) -> bool {
    line.match_indices(pattern).any(|(at, _)| {
        !line[..at]
            .bytes()
            .next_back()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[test]
fn token_patterns_match_only_where_a_token_starts() {
    assert!(contains_at_word_start(r#"{"token":"eyJhbGciOi"}"#, "eyJ"));
    assert!(contains_at_word_start("eyJhbGciOi", "eyJ"));
    assert!(!contains_at_word_start(
        r#"{"kid":"s6mqI_nZeyJSct"}"#,
        "eyJ"
    ));
    assert!(!contains_at_word_start(r#"{"kid":"a-eyJ"}"#, "eyJ"));
}

/// Stops the server and checks its log: it holds the audit events of what it served (so it
/// was captured), and no demo password, client secret, token (a JWS or JWE starts with base64url
/// `{"` = `eyJ`), Authorization header value or password hash.
fn drop_and_check_log(server: ServerProcess) {
    let log = server.log.clone();
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"level\":\"DEBUG\"") && text.contains("\"path\":\"/"),
        "{} was not captured at debug level: {}",
        log.display(),
        &text[..text.len().min(500)]
    );
    for secret in demo_secrets() {
        assert!(
            !text.contains(&secret),
            "{} logged {secret:?}",
            log.display()
        );
    }
    for pattern in ["eyJ", "Basic ZGVt", "Bearer ", "pbkdf2-sha256$"] {
        let found = text
            .lines()
            .find(|line| contains_at_word_start(line, pattern));
        assert!(
            found.is_none(),
            "{} logged {pattern:?}: {found:?}",
            log.display()
        );
    }
}
