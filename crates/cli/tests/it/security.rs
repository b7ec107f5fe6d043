//! The TLS checklist (issue 13, SPEC §1), against the real servers in their own processes:
//! every listener (public and admin of the KMS, Identity and the sample resource server) speaks
//! TLS 1.3 only, answers nothing in plaintext and is refused by a client that does not trust its
//! CA; and the servers' own clients (the KMS and the resource server fetching Identity's keys)
//! verify the certificate of what they call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoutil_tls::rustls::{self, ClientConfig, ClientConnection, ProtocolVersion};
use serde_json::Value;

use common::{ServerProcess, https_client, start_server};

/// A client that trusts `ca` and offers only `version`.
fn client(ca: &Path, version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
    let roots = cryptoutil_tls::load_trust_anchors(&[ca]).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(cryptoutil_tls::config::provider())
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
    connection
        .protocol_version()
        .ok_or_else(|| "no version".to_owned())
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
