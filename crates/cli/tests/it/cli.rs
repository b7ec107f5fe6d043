//! End-to-end tests of the `cryptoutil` binary, spawned as a process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{
    cryptoutil, generate_shares, https_client, init_demo_ca, run, start_server, stderr, unique,
    wait_for_exit,
};

#[test]
fn help_and_version_work_everywhere() {
    for args in [
        vec![],
        vec!["kms"],
        vec!["kms", "server"],
        vec!["kms", "server", "start"],
        vec!["identity"],
        vec!["identity", "server", "start"],
        vec!["identity", "rs", "start"],
        vec!["identity", "login"],
        vec!["identity", "token"],
        vec!["identity", "logout"],
        vec!["demo"],
        vec!["demo", "kms"],
        vec!["demo", "identity"],
        vec!["demo", "all"],
        vec!["tls"],
        vec!["tls", "init-demo-ca"],
        vec!["tls", "issue"],
        vec!["config", "schema"],
        vec!["config", "check"],
        vec!["health"],
    ] {
        let mut help = args.clone();
        help.push("--help");
        let out = run(&help);
        assert!(out.status.success(), "{help:?}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: cryptoutil"),
            "{help:?}"
        );
        let mut version = args.clone();
        version.push("--version");
        let out = run(&version);
        assert!(out.status.success(), "{version:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{version:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2_without_a_backtrace() {
    for args in [
        vec!["frobnicate"],
        vec!["kms", "server", "start", "--public-port", "70000"],
        vec!["kms", "server", "start", "--no-such-flag"],
        vec![
            "identity",
            "server",
            "start",
            "--trust-issuer",
            "https://x.example",
        ],
        vec!["demo", "kms", "--output", "xml"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
}

#[test]
fn the_resource_server_needs_an_issuer_and_takes_it_from_the_flags() {
    let out = run(&["identity", "rs", "start", "--dev", "--public-port", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--trust-issuer URL"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "identity",
        "rs",
        "start",
        "--dev",
        "--trust-issuer",
        "http://identity.example",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("identity.issuer"), "{}", stderr(&out));

    // With a reachable issuer the server starts; its readiness follows the issuer's JWKS.
    let dir = tempfile::tempdir().unwrap();
    let identity = start_server(&["identity", "server", "start", "--dev"], dir.path());
    let issuer = identity.ready["public_url"].as_str().unwrap().to_owned();
    let identity_ca = identity.ready["ca_cert"].as_str().unwrap().to_owned();
    let rs_dir = tempfile::tempdir().unwrap();
    let rs = start_server(
        &[
            "identity",
            "rs",
            "start",
            "--dev",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            &identity_ca,
        ],
        rs_dir.path(),
    );
    let rs_ca = PathBuf::from(rs.ready["ca_cert"].as_str().unwrap());
    let admin = rs.ready["admin_url"].as_str().unwrap().to_owned();
    let ready = https_client(&rs_ca, None)
        .get(format!("{admin}/admin/v1/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
    let public = rs.ready["public_url"].as_str().unwrap().to_owned();
    let resource = https_client(&rs_ca, None)
        .get(format!("{public}/api/v1/protected/resource"))
        .send()
        .unwrap();
    assert_eq!(resource.status(), 401);
}

#[test]
fn configuration_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("kms.yml");
    std::fs::write(
        &bad,
        "server:\n  public:\n    port: 8081\n    colour: blue\n",
    )
    .unwrap();
    let out = run(&["kms", "server", "start", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
    assert!(err.contains("colour"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, "server: [\n").unwrap();
    let out = run(&[
        "config",
        "check",
        "kms",
        "--config",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));

    let missing = dir.path().join("missing.yml");
    let out = run(&[
        "identity",
        "rs",
        "start",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.yml"), "{}", stderr(&out));

    let unreadable_cert = dir.path().join("tls.yml");
    std::fs::write(
        &unreadable_cert,
        "server:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n",
    )
    .unwrap();
    let out = run(&[
        "kms",
        "server",
        "start",
        "--config",
        unreadable_cert.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/cert.pem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn environment_layer_is_strict() {
    let out = cryptoutil()
        .args(["config", "check", "kms"])
        .env("CRYPTOUTIL_KMS__SERVER__PUBLIC__PORT", "18081")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("port: 18081"));

    let out = cryptoutil()
        .args(["config", "check", "kms"])
        .env("CRYPTOUTIL_KMS__SERVER__PUBLIK__PORT", "18081")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CRYPTOUTIL_KMS__SERVER__PUBLIK__PORT"));
}

#[test]
fn config_schema_matches_the_shipped_file() {
    let out = run(&["config", "schema", "kms"]);
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployments/kms/config.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, shipped);
}

#[test]
fn tls_init_demo_ca_and_issue_write_the_spec_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join(unique("pki"));
    let out = run(&["tls", "init-demo-ca", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in [
        "ca/root.pem",
        "kms/cert.pem",
        "kms/key.pem",
        "identity/cert.pem",
        "rs/key.pem",
        "demo/cert.pem",
        "demo/key.pem",
    ] {
        assert!(out_dir.join(file).is_file(), "{file} missing");
    }
    // A second run refuses to overwrite the CA.
    let again = run(&["tls", "init-demo-ca", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));

    let leaf = dir.path().join("extra");
    let out = run(&[
        "tls",
        "issue",
        "--ca-dir",
        out_dir.join("ca").to_str().unwrap(),
        "--out",
        leaf.to_str().unwrap(),
        "--name",
        "extra.cryptoutil.demo.local",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(leaf.join("cert.pem").is_file());

    let bad_name = run(&[
        "tls",
        "issue",
        "--ca-dir",
        out_dir.join("ca").to_str().unwrap(),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
        "--name",
        "-not-a-name-",
    ]);
    assert_eq!(bad_name.status.code(), Some(2));
    let too_long = run(&[
        "tls",
        "issue",
        "--ca-dir",
        out_dir.join("ca").to_str().unwrap(),
        "--out",
        dir.path().join("long").to_str().unwrap(),
        "--name",
        "a.example",
        "--days",
        "400",
    ]);
    assert_eq!(too_long.status.code(), Some(2));
}

#[test]
fn trust_issuer_flags_are_checked_before_start() {
    // Outside --demo/--dev the introspection secret must come from its Docker secret file.
    let out = run(&[
        "kms",
        "server",
        "start",
        "--trust-issuer",
        "https://identity.example",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/run/secrets/kms-introspection-client-secret"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "kms",
        "server",
        "start",
        "--dev",
        "--trust-issuer",
        "http://identity.example",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auth.federation.issuers[0].issuer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dev_kms_trusting_a_dev_identity_accepts_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let identity = start_server(
        &["identity", "server", "start", "--dev", "--demo"],
        dir.path(),
    );
    let issuer = identity.ready["public_url"].as_str().unwrap().to_owned();
    let identity_ca = identity.ready["ca_cert"].as_str().unwrap().to_owned();
    let kms = start_server(
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--demo",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            &identity_ca,
        ],
        dir.path(),
    );
    let token: serde_json::Value = https_client(Path::new(&identity_ca), None)
        .post(format!("{issuer}/oauth2/v1/token"))
        .basic_auth("demo-kms-client", Some("demo-kms-client-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let kms_ca = PathBuf::from(kms.ready["ca_cert"].as_str().unwrap());
    let client = https_client(&kms_ca, None);
    let public = kms.ready["public_url"].as_str().unwrap();
    let listed = client
        .get(format!(
            "{public}/service/api/v1/elastickeys?names=demo-encryption-aes256"
        ))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: serde_json::Value = listed.json().unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    let admin = kms.ready["admin_url"].as_str().unwrap();
    let ready = client
        .get(format!("{admin}/admin/v1/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.text().unwrap().contains(&format!("jwks {issuer}")));
    drop(kms);
    drop(identity);
}

#[test]
fn dev_kms_serves_its_api_reports_ready_and_shuts_down_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&["kms", "server", "start", "--dev", "--demo"], dir.path());
    let ca = PathBuf::from(server.ready["ca_cert"].as_str().unwrap());
    let admin = server.ready["admin_url"].as_str().unwrap().to_owned();
    let public = server.ready["public_url"].as_str().unwrap().to_owned();
    let client = https_client(&ca, None);
    let anonymous = client
        .get(format!("{public}/service/api/v1/elastickeys"))
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401, "the API needs a credential");
    let seeded: Value = client
        .get(format!("{public}/service/api/v1/elastickeys"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seeded["total"], 7, "--demo seeded the demo keys");

    let live = client
        .get(format!("{admin}/admin/v1/livez"))
        .send()
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = client
        .get(format!("{admin}/admin/v1/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
    let report: Value = ready.json().unwrap();
    assert_eq!(report["checks"]["database"]["status"], "ok");
    assert_eq!(report["checks"]["barrier"]["status"], "ok");

    let id = create_key(&client, &public, &unique("cli"));
    let jwe = client
        .post(format!("{public}/service/api/v1/elastickey/{id}/encrypt"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .body("from the cli test")
        .send()
        .unwrap();
    assert_eq!(jwe.status(), 200);
    let jwe = jwe.text().unwrap();
    let clear = client
        .post(format!("{public}/service/api/v1/elastickey/{id}/decrypt"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .body(jwe)
        .send()
        .unwrap();
    assert_eq!(clear.text().unwrap(), "from the cli test");

    let stop = client
        .post(format!("{admin}/admin/v1/shutdown"))
        .send()
        .unwrap();
    assert_eq!(stop.status(), 202);
    assert!(wait_for_exit(&mut server.child).success());
}

fn create_key(client: &reqwest::blocking::Client, public: &str, name: &str) -> String {
    let created = client
        .post(format!("{public}/service/api/v1/elastickey"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "name": name }).to_string())
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let key: Value = created.json().unwrap();
    key["elastic_key_id"].as_str().unwrap().to_owned()
}

#[test]
fn kms_with_share_files_keeps_keys_across_restarts_and_refuses_wrong_shares() {
    let dir = tempfile::tempdir().unwrap();
    let shares = dir.path().join("shares");
    let all = generate_shares(&shares);
    let again = run(&[
        "kms",
        "barrier",
        "generate-shares",
        "--out",
        shares.to_str().unwrap(),
        "--count",
        "3",
    ]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "share files are never overwritten"
    );
    let pki = dir.path().join("pki");
    init_demo_ca(&pki);
    let ca = pki.join("ca/root.pem");
    let config = |files: &[PathBuf]| {
        let path = dir.path().join(unique("kms")).with_extension("yml");
        let list: String = files
            .iter()
            .map(|f| format!("      - {}\n", f.display()))
            .collect();
        std::fs::write(
            &path,
            format!(
                "server:\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/kms/cert.pem\n    key_file: {p}/kms/key.pem\n    watch: false\n\
                 database:\n  url: sqlite://{db}\nbarrier:\n  unseal:\n    mode: shares\n    threshold: 2\n    files:\n{list}",
                p = pki.display(),
                db = dir.path().join("kms.db").display()
            ),
        )
        .unwrap();
        path
    };
    let first = config(&all);
    let server = start_server(
        &[
            "kms",
            "server",
            "start",
            "--demo",
            "--config",
            first.to_str().unwrap(),
        ],
        dir.path(),
    );
    let client = https_client(&ca, None);
    let public = server.ready["public_url"].as_str().unwrap().to_owned();
    let id = create_key(&client, &public, &unique("kept"));
    let jwe = client
        .post(format!("{public}/service/api/v1/elastickey/{id}/encrypt"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .body("kept")
        .send()
        .unwrap()
        .text()
        .unwrap();
    drop(server);

    // Two of the three shares are enough after initialisation.
    let two = config(&[all[0].clone(), dir.path().join("absent"), all[2].clone()]);
    let server = start_server(
        &["kms", "server", "start", "--config", two.to_str().unwrap()],
        dir.path(),
    );
    let client = https_client(&ca, None);
    let public = server.ready["public_url"].as_str().unwrap().to_owned();
    let clear = client
        .post(format!("{public}/service/api/v1/elastickey/{id}/decrypt"))
        .basic_auth("demo-user", Some("demo-user-password"))
        .body(jwe)
        .send()
        .unwrap();
    assert_eq!(clear.text().unwrap(), "kept");
    drop(server);

    let wrong = generate_shares(&dir.path().join("wrong"));
    let refused = run(&[
        "kms",
        "server",
        "start",
        "--config",
        config(&wrong).to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("unseal"), "{}", stderr(&refused));
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&["identity", "server", "start", "--dev"], dir.path());
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_for_exit(&mut server.child).success());
}

/// The sample resource server as in production (config `DIR/rs.yml`): certificates from the
/// demo CA in `pki`, the admin listener requiring client certificates (the default outside `--dev`).
fn start_production_rs(dir: &Path, pki: &Path) -> common::ServerProcess {
    let config = dir.join("rs.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  public:\n    address: 127.0.0.1\n  tls:\n    cert_file: {p}/rs/cert.pem\n    key_file: {p}/rs/key.pem\n    client_ca_file: {p}/ca/root.pem\n    ca_file: {p}/ca/root.pem\nlogging:\n  format: text\nidentity:\n  issuer: https://identity.cryptoutil.demo.local:8082\n",
            p = pki.display()
        ),
    )
    .unwrap();
    start_server(
        &[
            "identity",
            "rs",
            "start",
            "--config",
            config.to_str().unwrap(),
        ],
        dir,
    )
}

#[test]
fn production_mode_uses_configured_certificates_and_requires_mtls_on_admin() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init_demo_ca(&pki);
    let server = start_production_rs(dir.path(), &pki);
    let admin = server.ready["admin_url"].as_str().unwrap().to_owned();
    let ca = pki.join("ca/root.pem");
    let anonymous = https_client(&ca, None);
    assert!(
        anonymous
            .get(format!("{admin}/admin/v1/livez"))
            .send()
            .is_err()
    );
    let demo = https_client(
        &ca,
        Some((pki.join("demo/cert.pem"), pki.join("demo/key.pem"))),
    );
    assert_eq!(
        demo.get(format!("{admin}/admin/v1/livez"))
            .send()
            .unwrap()
            .status(),
        200
    );

    // Port in use: a second server on the same public port fails with exit 2 and says why.
    let port = server.ready["public_url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let out = run(&[
        "identity",
        "rs",
        "start",
        "--config",
        dir.path().join("rs.yml").to_str().unwrap(),
        "--public-port",
        &port,
        "--admin-port",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_certificates_and_without_dev_the_server_refuses_to_start() {
    let out = run(&[
        "kms",
        "server",
        "start",
        "--public-port",
        "0",
        "--admin-port",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--dev"), "{}", stderr(&out));
}

/// The serial number of the certificate a server presents to a new connection.
fn presented_serial(ca: &Path, url: &str) -> String {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let config = cryptoutil_tls::client_config(
        cryptoutil_tls::TrustConfig::from_ca_files(&[ca]).unwrap(),
        None,
    )
    .unwrap();
    let name = cryptoutil_tls::rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn =
        cryptoutil_tls::rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    let leaf = &conn.peer_certificates().unwrap()[0];
    cryptoutil_tls::CertInfo::from_der(leaf).unwrap().serial
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init_demo_ca(&pki);
    let config = dir.path().join("kms.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  public:\n    address: 127.0.0.1\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/kms/cert.pem\n    key_file: {p}/kms/key.pem\n    watch: false\ndatabase:\n  url: \"sqlite::memory:\"\n",
            p = pki.display()
        ),
    )
    .unwrap();
    let server = start_server(
        &[
            "kms",
            "server",
            "start",
            "--config",
            config.to_str().unwrap(),
        ],
        dir.path(),
    );
    let ca = pki.join("ca/root.pem");
    let public = server.ready["public_url"].as_str().unwrap().to_owned();
    let before = presented_serial(&ca, &public);

    let out = run(&[
        "tls",
        "issue",
        "--ca-dir",
        pki.join("ca").to_str().unwrap(),
        "--out",
        pki.join("kms").to_str().unwrap(),
        "--name",
        "kms.cryptoutil.demo.local",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        presented_serial(&ca, &public),
        before,
        "no watcher: nothing changes yet"
    );

    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while presented_serial(&ca, &public) == before {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tls_init_demo_ca_if_missing_keeps_a_complete_ca_and_refuses_a_different_one() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join(unique("pki"));
    let out = out_dir.to_str().unwrap();
    let init = |extra: &[&str]| {
        let mut args = vec!["tls", "init-demo-ca", "--out", out, "--if-missing"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let sans = ["--san", "kms=kms-1", "--san", "postgres=postgres"];
    let first = init(&sans);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(out_dir.join("postgres/cert.pem").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out_dir.join("postgres/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let root = std::fs::read(out_dir.join("ca/root.pem")).unwrap();

    // Again with the same names: untouched, success.
    let again = init(&sans);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("left untouched"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(out_dir.join("ca/root.pem")).unwrap(), root);

    // A name the existing CA lacks: an error that says what to do, the CA unchanged.
    let other = init(&["--san", "kms=kms-2"]);
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("kms-2") && stderr(&other).contains("remove the directory"),
        "{}",
        stderr(&other)
    );
    assert_eq!(std::fs::read(out_dir.join("ca/root.pem")).unwrap(), root);

    // Malformed --san values are usage errors.
    for bad in ["kms", "=x", "ca=x", "kms=-bad-"] {
        let out = run(&[
            "tls",
            "init-demo-ca",
            "--out",
            dir.path().join(unique("bad")).to_str().unwrap(),
            "--san",
            bad,
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn health_probes_an_admin_listener_over_verified_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let other_pki = dir.path().join("other-pki");
    for out in [&pki, &other_pki] {
        let init = run(&["tls", "init-demo-ca", "--out", out.to_str().unwrap()]);
        assert!(init.status.success(), "{}", stderr(&init));
    }
    let server = start_production_rs(dir.path(), &pki);
    let admin = server.ready["admin_url"].as_str().unwrap().to_owned();
    let livez = format!("{admin}/admin/v1/livez");
    let ca = pki.join("ca/root.pem");
    let demo_cert = pki.join("demo/cert.pem");
    let demo_key = pki.join("demo/key.pem");
    let health = |url: &str, ca: &Path, client: bool| {
        let mut args = vec![
            "health".to_owned(),
            url.to_owned(),
            "--ca-cert".to_owned(),
            ca.display().to_string(),
        ];
        if client {
            args.extend([
                "--client-cert".to_owned(),
                demo_cert.display().to_string(),
                "--client-key".to_owned(),
                demo_key.display().to_string(),
            ]);
        }
        cryptoutil().args(&args).output().unwrap()
    };

    let ok = health(&livez, &ca, true);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(ok.stdout.is_empty());

    // Each failure: exit 1 and one line saying why.
    let one_line_failure = |out: &Output, expect: &str| {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
        let err = stderr(out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(expect), "expected {expect:?} in {err}");
    };
    // No client certificate: the admin listener refuses the handshake.
    one_line_failure(&health(&livez, &ca, false), "GET ");
    // A server certificate from another CA is not trusted.
    one_line_failure(
        &health(&livez, &other_pki.join("ca/root.pem"), true),
        "certificate",
    );
    // A non-2xx answer.
    one_line_failure(
        &health(&format!("{admin}/admin/v1/no-such-thing"), &ca, true),
        "HTTP 404",
    );
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    one_line_failure(
        &health(
            &format!("https://127.0.0.1:{port}/admin/v1/livez"),
            &ca,
            true,
        ),
        "GET ",
    );
    // Unreadable CA file.
    one_line_failure(
        &health(&livez, &dir.path().join("missing.pem"), true),
        "missing.pem",
    );
    // Usage errors: not https, a client certificate without its key.
    let plain = health(&livez.replace("https://", "http://"), &ca, true);
    assert_eq!(plain.status.code(), Some(2), "{}", stderr(&plain));
    let half = run(&[
        "health",
        &livez,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--client-cert",
        demo_cert.to_str().unwrap(),
    ]);
    assert_eq!(half.status.code(), Some(2), "{}", stderr(&half));
}

/// Identity pointed at a database written by a newer release (schema version 999) refuses to
/// start: exit 2, naming both versions, and the database is left as it was.
#[test]
fn identity_refuses_a_newer_database_schema_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init_demo_ca(&pki);
    let db = dir.path().join("identity.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let versions = |sql: &'static str| {
        runtime.block_on(async {
            use sqlx::{ConnectOptions, Connection};
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            let versions: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            conn.close().await.unwrap();
            versions
        })
    };
    // The bookkeeping table as Identity 0.1 wrote it.
    versions(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY);
         INSERT INTO schema_migrations (version) VALUES (1), (999);",
    );
    let kek = dir.path().join("kek");
    std::fs::write(&kek, "u0cmvy1ZwjmzxNQ5wbBqYfJ1Nd7xXrHq9cWc0cDdEAM").unwrap();
    let config = dir.path().join("identity.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/identity/cert.pem\n    key_file: {p}/identity/key.pem\n    watch: false\n\
             database:\n  url: sqlite://{db}\nkeys:\n  encryption_key: file://{kek}\n",
            p = pki.display(),
            db = db.display(),
            kek = kek.display(),
        ),
    )
    .unwrap();
    let out = run(&[
        "identity",
        "server",
        "start",
        "--config",
        config.to_str().unwrap(),
        "--public-port",
        "0",
        "--admin-port",
        "0",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("version 999") && err.contains("up to 6"),
        "{err}"
    );
    assert_eq!(versions("SELECT 1"), vec![1, 999]);
}
