//! The TLS checklist (issue 13, SPEC §1), against the real servers in their own processes:
//! every listener (public and admin of the KMS, Identity and the sample resource server) speaks
//! TLS 1.3 only, answers nothing in plaintext and is refused by a client that does not trust its
//! CA; and the servers' own clients (the KMS and the resource server fetching Identity's keys)
//! verify the certificate of what they call. And the crypto policy (issue 26) as an auditor sees
//! it with `openssl s_client` against the KMS's public listener: AES-GCM on TLS 1.3 only, no
//! ChaCha20-Poly1305, no plain X25519; our own client negotiates hybrid ML-KEM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoutil_tls::rustls::{self, ClientConfig, ClientConnection, NamedGroup, ProtocolVersion};
use serde_json::Value;

use common::{ServerProcess, https_client, start_server};

/// A client that trusts `ca` and offers only `version`: on the crypto policy for TLS 1.3; for
/// older versions on aws-lc-rs's whole default provider (the policy has no TLS 1.2 suite, so a
/// TLS 1.2 client cannot even be built from it).
fn client(ca: &Path, version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
    let roots = cryptoutil_tls::load_trust_anchors(&[ca]).unwrap();
    let provider = if version == &rustls::version::TLS13 {
        cryptoutil_tls::provider::provider()
    } else {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    };
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The `host:port` of a listener URL.
fn address(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned()
}

/// Completes a handshake as `localhost`: the negotiated version, or why it failed.
fn handshake(address: &str, config: Arc<ClientConfig>) -> Result<ProtocolVersion, String> {
    handshake_connection(address, config)?
        .protocol_version()
        .ok_or_else(|| "no version".to_owned())
}

/// Completes a handshake as `localhost`: the connection, or why it failed.
fn handshake_connection(
    address: &str,
    config: Arc<ClientConfig>,
) -> Result<ClientConnection, String> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut connection = ClientConnection::new(config, name).unwrap();
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while connection.is_handshaking() {
        connection
            .complete_io(&mut socket)
            .map_err(|e| e.to_string())?;
    }
    Ok(connection)
}

/// What a listener answers to a plaintext HTTP request (the first bytes, or nothing).
fn plaintext_answer(address: &str) -> Vec<u8> {
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(b"GET /admin/v1/livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = vec![0; 64];
    let n = socket.read(&mut answer).unwrap_or(0);
    answer.truncate(n);
    answer
}

fn check_listener(label: &str, url: &str, ca: &Path, other_ca: &Path) {
    let address = address(url);
    assert_eq!(
        handshake(&address, client(ca, &rustls::version::TLS13)),
        Ok(ProtocolVersion::TLSv1_3),
        "{label}: a TLS 1.3 client that trusts the demo CA connects"
    );
    let old = handshake(&address, client(ca, &rustls::version::TLS12)).unwrap_err();
    assert!(
        old.contains("ProtocolVersion") || old.contains("protocol version"),
        "{label}: TLS 1.2 refused with a protocol-version alert, got {old}"
    );
    let untrusted = handshake(&address, client(other_ca, &rustls::version::TLS13)).unwrap_err();
    assert!(
        untrusted.contains("UnknownIssuer") || untrusted.contains("invalid peer certificate"),
        "{label}: a client trusting another CA refuses the certificate, got {untrusted}"
    );
    let answer = plaintext_answer(&address);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{label}: no plaintext HTTP answer, got {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// `GET /admin/v1/readyz` until it reports `want` (or a minute passes): the last report.
fn readiness(server: &ServerProcess, want: u16) -> (u16, Value) {
    let client = https_client(&server.ca_cert(), None);
    let url = format!("{}/admin/v1/readyz", server.url("admin_url"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(&url).send().unwrap();
        let status = response.status().as_u16();
        let report: Value = response.json().unwrap();
        if status == want || Instant::now() > deadline {
            return (status, report);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_listener_is_tls13_only_and_every_client_verifies_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start_server(&["kms", "server", "start", "--dev"], dir.path());
    let identity = start_server(&["identity", "server", "start", "--dev"], dir.path());
    let issuer = identity.url("public_url").to_owned();
    let identity_ca = identity.ca_cert();
    let rs = start_server(
        &[
            "identity",
            "rs",
            "start",
            "--dev",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            identity_ca.to_str().unwrap(),
        ],
        dir.path(),
    );
    // Each --dev server made its own demo CA: each is "another CA" for the others.
    for (name, server, other) in [
        ("KMS", &kms, &identity),
        ("Identity", &identity, &kms),
        ("resource server", &rs, &kms),
    ] {
        for listener in ["public_url", "admin_url"] {
            check_listener(
                &format!("{name} {listener}"),
                server.url(listener),
                &server.ca_cert(),
                &other.ca_cert(),
            );
        }
    }

    // The servers' own clients verify: the resource server trusts Identity's CA and is ready …
    let (status, report) = readiness(&rs, 200);
    assert_eq!(status, 200, "{report}");
    // … while a resource server and a KMS told to trust the wrong CA for that same issuer are
    // never ready: they refuse Identity's certificate rather than fetch its keys.
    let wrong_ca = kms.ca_cert();
    let misled_rs = start_server(
        &[
            "identity",
            "rs",
            "start",
            "--dev",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            wrong_ca.to_str().unwrap(),
        ],
        dir.path(),
    );
    let misled_kms = start_server(
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            wrong_ca.to_str().unwrap(),
        ],
        dir.path(),
    );
    for (label, server) in [("resource server", &misled_rs), ("KMS", &misled_kms)] {
        let (status, report) = readiness(server, 503);
        assert_eq!(status, 503, "{label}: {report}");
        assert!(
            report.to_string().contains("certificate"),
            "{label}: readyz names the certificate problem: {report}"
        );
    }
}

/// The `openssl` CLI, or `None` (with a message) where it is missing; in CI (`CI=true`) a missing
/// `openssl` fails the test.
fn openssl() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("OPENSSL_BIN").unwrap_or_else(|| "openssl".into()));
    let works = Command::new(&path)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the openssl CLI ({}) is required in CI", path.display());
    }
    eprintln!(
        "SKIPPED: the openssl CLI ({}) is not installed; the crypto policy is not probed",
        path.display()
    );
    None
}

/// `openssl s_client -brief` against `address` with `extra` options, stdin closed, killed after
/// 20 s: whether the handshake completed, and everything it printed.
fn s_client(openssl: &Path, address: &str, ca: &Path, extra: &[&str]) -> (bool, String) {
    let mut child = Command::new(openssl)
        .args(["s_client", "-brief", "-connect", address])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("openssl s_client {extra:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connected = out.status.success() && output.contains("CONNECTION ESTABLISHED");
    (connected, output)
}

#[test]
fn the_kms_public_listener_enforces_the_crypto_policy() {
    let dir = tempfile::tempdir().unwrap();
    let kms = start_server(&["kms", "server", "start", "--dev"], dir.path());
    let address = address(kms.url("public_url"));
    let ca = kms.ca_cert();

    // Our own client offers the hybrid first, and the KMS takes it.
    let ours = handshake_connection(&address, client(&ca, &rustls::version::TLS13)).unwrap();
    let group = ours.negotiated_key_exchange_group().unwrap().name();
    let suite = ours.negotiated_cipher_suite().unwrap().suite();
    eprintln!("our client against the KMS public listener: {group:?} with {suite:?}");
    assert_eq!(group, NamedGroup::X25519MLKEM768);
    assert_eq!(suite, rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);

    let Some(openssl) = openssl() else { return };
    let (connected, output) = s_client(&openssl, &address, &ca, &[]);
    assert!(connected, "openssl's defaults: {output}");
    assert!(
        output.contains("Protocol version: TLSv1.3")
            && output.contains("Ciphersuite: TLS_AES_256_GCM_SHA384")
            && output.contains("Server Temp Key: ECDH, prime256v1"),
        "openssl's defaults get TLS 1.3, AES-256-GCM and P-256: {output}"
    );
    for (label, extra) in [
        (
            "only ChaCha20-Poly1305",
            &["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"][..],
        ),
        ("only X25519", &["-groups", "X25519"][..]),
        ("TLS 1.2", &["-tls1_2"][..]),
    ] {
        let (connected, output) = s_client(&openssl, &address, &ca, extra);
        assert!(!connected, "{label} accepted: {output}");
        assert!(
            output.contains("alert"),
            "{label}: refused by the server: {output}"
        );
    }
    let (connected, output) = s_client(&openssl, &address, &ca, &["-groups", "P-384"]);
    assert!(connected, "only P-384: {output}");
    assert!(
        output.contains("Server Temp Key: ECDH, secp384r1"),
        "{output}"
    );
}
