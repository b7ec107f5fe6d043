//! The crypto policy (issue 26), proved against a real TLS server built from `server_config` by
//! clients that are not ours: the `openssl s_client` CLI for the classical cases, and rustls
//! clients built here with exactly one key exchange group for the hybrid ML-KEM ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, echo, start_echo_server};
use cryptoutil_tls::rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use cryptoutil_tls::rustls::crypto::{CryptoProvider, SupportedKxGroup};
use cryptoutil_tls::rustls::{
    self, CipherSuite, ClientConfig, NamedGroup, ProtocolVersion, SupportedCipherSuite,
};
use cryptoutil_tls::{
    ClientAuth, DemoCa, DemoCaOptions, ReloadableCert, client_config_from_ca_file, init_demo_ca,
    load_trust_anchors, server_config,
};

const KMS: &str = "kms.cryptoutil.demo.local";

/// A demo CA and a TLS echo server with the KMS leaf, built from `server_config`.
async fn policy_server() -> (tempfile::TempDir, DemoCa, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let cert =
        Arc::new(ReloadableCert::from_leaf_paths(&demo.service("kms").unwrap().paths).unwrap());
    let addr = start_echo_server(server_config(cert, ClientAuth::None).unwrap()).await;
    (dir, demo, addr)
}

/// What `openssl s_client -brief` reported.
#[derive(Debug)]
struct Probe {
    /// The handshake completed (exit status 0 and "CONNECTION ESTABLISHED").
    connected: bool,
    /// "Protocol version: …"
    protocol: Option<String>,
    /// "Ciphersuite: …"
    cipher: Option<String>,
    /// "Server Temp Key: …" (e.g. `ECDH, prime256v1, 256 bits`)
    temp_key: Option<String>,
    /// Everything it printed, for the failure messages.
    output: String,
}

/// The `openssl` CLI, or `None` (with a message) where it is missing. In CI (`CI=true`) a
/// missing `openssl` fails the test: the proof must not be skipped there.
fn openssl() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("OPENSSL_BIN").unwrap_or_else(|| "openssl".into()));
    let works = Command::new(&path)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
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

/// Runs `openssl s_client -brief` against `addr` with `extra` options, stdin closed, killed
/// after 20 s.
fn s_client(openssl: &Path, addr: SocketAddr, ca: &Path, extra: &[&str]) -> Probe {
    let mut child = Command::new(openssl)
        .args(["s_client", "-brief", "-connect"])
        .arg(addr.to_string())
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
    let field = |name: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    Probe {
        connected: out.status.success() && output.contains("CONNECTION ESTABLISHED"),
        protocol: field("Protocol version:"),
        cipher: field("Ciphersuite:"),
        temp_key: field("Server Temp Key:"),
        output,
    }
}

/// Probes `addr` off the async runtime (the server runs on it).
async fn probe(openssl: &Path, addr: SocketAddr, ca: &Path, extra: &[&str]) -> Probe {
    let (openssl, ca) = (openssl.to_owned(), ca.to_owned());
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        s_client(&openssl, addr, &ca, &extra)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn openssl_s_client_sees_only_the_policy() {
    let Some(openssl) = openssl() else { return };
    let (_dir, demo, addr) = policy_server().await;
    let ca = demo.root_path();

    // openssl 3.0's defaults: it offers ChaCha20 and X25519 too; the server picks AES-256-GCM on
    // TLS 1.3 and (after a HelloRetryRequest) P-256.
    let default = probe(&openssl, addr, ca, &[]).await;
    assert!(default.connected, "default handshake: {}", default.output);
    assert_eq!(default.protocol.as_deref(), Some("TLSv1.3"), "{default:?}");
    assert_eq!(
        default.cipher.as_deref(),
        Some("TLS_AES_256_GCM_SHA384"),
        "{default:?}"
    );
    assert!(
        default
            .temp_key
            .as_deref()
            .unwrap_or("")
            .contains("prime256v1"),
        "{default:?}"
    );
    assert!(default.output.contains("Verification: OK"), "{default:?}");

    // Only AES-128-GCM offered: accepted.
    let aes128 = probe(
        &openssl,
        addr,
        ca,
        &["-ciphersuites", "TLS_AES_128_GCM_SHA256"],
    )
    .await;
    assert!(aes128.connected, "{}", aes128.output);
    assert_eq!(aes128.cipher.as_deref(), Some("TLS_AES_128_GCM_SHA256"));

    // Only ChaCha20-Poly1305: refused.
    let chacha = probe(
        &openssl,
        addr,
        ca,
        &["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
    )
    .await;
    assert!(!chacha.connected, "ChaCha20 accepted: {}", chacha.output);
    assert!(chacha.output.contains("alert"), "{}", chacha.output);

    // Only X25519: refused.
    let x25519 = probe(&openssl, addr, ca, &["-groups", "X25519"]).await;
    assert!(!x25519.connected, "X25519 accepted: {}", x25519.output);
    assert!(x25519.output.contains("alert"), "{}", x25519.output);

    // Only P-256, only P-384: accepted, and that is the group used.
    for (group, reported) in [
        ("P-256", "ECDH, prime256v1, 256 bits"),
        ("P-384", "ECDH, secp384r1, 384 bits"),
    ] {
        let p = probe(&openssl, addr, ca, &["-groups", group]).await;
        assert!(p.connected, "{group}: {}", p.output);
        assert_eq!(p.protocol.as_deref(), Some("TLSv1.3"), "{group}: {p:?}");
        assert_eq!(p.temp_key.as_deref(), Some(reported), "{group}: {p:?}");
    }

    // TLS 1.2 (with its default, FIPS-friendly ECDHE-ECDSA-AES-GCM suites): refused.
    let tls12 = probe(&openssl, addr, ca, &["-tls1_2"]).await;
    assert!(!tls12.connected, "TLS 1.2 accepted: {}", tls12.output);
    assert!(tls12.output.contains("alert"), "{}", tls12.output);
}

/// A TLS 1.3 client (not ours: aws-lc-rs's whole default provider as a base) that trusts the
/// demo root and offers exactly these groups and suites.
fn foreign_client(
    demo: &DemoCa,
    groups: &[&'static dyn SupportedKxGroup],
    suites: &[SupportedCipherSuite],
) -> ClientConfig {
    let provider = CryptoProvider {
        kx_groups: groups.to_vec(),
        cipher_suites: suites.to_vec(),
        ..aws_lc_rs::default_provider()
    };
    ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(load_trust_anchors(&[demo.root_path()]).unwrap())
        .with_no_client_auth()
}

/// Handshakes and echoes once; the negotiated group and suite as the client saw them.
async fn negotiate(
    addr: SocketAddr,
    config: ClientConfig,
) -> std::io::Result<(NamedGroup, CipherSuite)> {
    let mut s = connect(addr, config, KMS).await?;
    assert_eq!(echo(&mut s, "pq").await?, "pq");
    let conn = s.get_ref().1;
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    let group = conn.negotiated_key_exchange_group().unwrap().name();
    let suite = conn.negotiated_cipher_suite().unwrap().suite();
    Ok((group, suite))
}

static BOTH_AES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
];

#[tokio::test]
async fn hybrid_ml_kem_groups_each_negotiate_alone() {
    let (_dir, demo, addr) = policy_server().await;
    for group in [kx_group::X25519MLKEM768, kx_group::SECP256R1MLKEM768] {
        let (picked, suite) = negotiate(addr, foreign_client(&demo, &[group], BOTH_AES))
            .await
            .unwrap_or_else(|e| panic!("{:?} alone: {e}", group.name()));
        println!(
            "client offering only {:?}: the server picked {picked:?} with {suite:?}",
            group.name()
        );
        assert_eq!(picked, group.name());
        assert_eq!(suite, CipherSuite::TLS13_AES_256_GCM_SHA384);
    }
}

#[tokio::test]
async fn our_client_offers_the_hybrid_first() {
    let (_dir, demo, addr) = policy_server().await;
    let (picked, suite) = negotiate(addr, client_config_from_ca_file(demo.root_path()).unwrap())
        .await
        .unwrap();
    println!("our client against our server: {picked:?} with {suite:?}");
    assert_eq!(picked, NamedGroup::X25519MLKEM768);
    assert_eq!(suite, CipherSuite::TLS13_AES_256_GCM_SHA384);
}

#[tokio::test]
async fn outside_the_policy_is_refused_by_a_rustls_client_too() {
    let (_dir, demo, addr) = policy_server().await;
    for (label, groups, suites) in [
        ("only X25519", &[kx_group::X25519][..], BOTH_AES),
        ("only pure ML-KEM-768", &[kx_group::MLKEM768][..], BOTH_AES),
        ("only ML-KEM-1024", &[kx_group::MLKEM1024][..], BOTH_AES),
        (
            "only ChaCha20-Poly1305",
            &[kx_group::X25519MLKEM768][..],
            &[cipher_suite::TLS13_CHACHA20_POLY1305_SHA256][..],
        ),
    ] {
        let e = negotiate(addr, foreign_client(&demo, groups, suites))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("HandshakeFailure") || e.to_string().contains("alert"),
            "{label}: {e}"
        );
    }
}

#[tokio::test]
async fn server_order_and_hello_retry() {
    let (_dir, demo, addr) = policy_server().await;
    // A client preferring AES-128 still gets AES-256: the server's order decides.
    let (_, suite) = negotiate(
        addr,
        foreign_client(
            &demo,
            &[kx_group::SECP256R1],
            &[
                cipher_suite::TLS13_AES_128_GCM_SHA256,
                cipher_suite::TLS13_AES_256_GCM_SHA384,
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(suite, CipherSuite::TLS13_AES_256_GCM_SHA384);
    // A client whose first key share is X25519 (refused) but which also supports P-384 is asked
    // for a P-384 share and completes with it.
    let (group, _) = negotiate(
        addr,
        foreign_client(&demo, &[kx_group::X25519, kx_group::SECP384R1], BOTH_AES),
    )
    .await
    .unwrap();
    assert_eq!(group, NamedGroup::secp384r1);
}

#[test]
fn configs_report_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let cert =
        Arc::new(ReloadableCert::from_leaf_paths(&demo.service("kms").unwrap().paths).unwrap());
    let server = server_config(cert, ClientAuth::None).unwrap();
    let client = client_config_from_ca_file(demo.root_path()).unwrap();
    for provider in [server.crypto_provider(), client.crypto_provider()] {
        let groups: Vec<NamedGroup> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [
                NamedGroup::X25519MLKEM768,
                NamedGroup::secp256r1MLKEM768,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
        let suites: Vec<CipherSuite> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            suites,
            [
                CipherSuite::TLS13_AES_256_GCM_SHA384,
                CipherSuite::TLS13_AES_128_GCM_SHA256
            ]
        );
    }
    // fips() is true exactly in the fips build, on every config.
    let fips = cfg!(feature = "fips");
    assert_eq!(cryptoutil_tls::provider::is_fips(), fips);
    assert_eq!(server.fips(), fips);
    assert_eq!(client.fips(), fips);
    println!(
        "policy: {:?} {:?} {:?} fips={fips}",
        cryptoutil_tls::provider::protocol_version_names(),
        cryptoutil_tls::provider::cipher_suite_names(),
        cryptoutil_tls::provider::kx_group_names()
    );
}
