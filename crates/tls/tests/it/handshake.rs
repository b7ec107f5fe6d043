//! Real TLS handshakes over loopback with the configs of this crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{connect, echo, presented_leaf, roundtrip, start_echo_server};
use cryptoutil_tls::rustls::{self, ClientConfig, RootCertStore};
use cryptoutil_tls::{
    CaOptions, ClientAuth, ClientIdentity, DemoCa, DemoCaOptions, InMemoryEcdsaKey, KeyAlgorithm,
    ReloadableCert, TrustConfig, client_config, client_config_from_ca_file, init_demo_ca,
    load_trust_anchors, server_config,
};

const KMS: &str = "kms.cryptoutil.demo.local";

fn demo(dir: &std::path::Path, alg: KeyAlgorithm) -> DemoCa {
    init_demo_ca(
        dir,
        &DemoCaOptions {
            ca: CaOptions {
                algorithm: alg,
                ..CaOptions::default()
            },
            ..DemoCaOptions::default()
        },
    )
    .unwrap()
}

async fn kms_server(demo: &DemoCa, auth: ClientAuth) -> std::net::SocketAddr {
    let cert =
        Arc::new(ReloadableCert::from_leaf_paths(&demo.service("kms").unwrap().paths).unwrap());
    start_echo_server(server_config(cert, auth).unwrap()).await
}

#[tokio::test]
async fn tls13_handshake_with_demo_ca_all_names_and_curves() {
    for alg in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let demo = demo(dir.path(), alg);
        let addr = kms_server(&demo, ClientAuth::None).await;
        for name in [KMS, "localhost", "127.0.0.1", "::1"] {
            let mut s = connect(
                addr,
                client_config_from_ca_file(demo.root_path()).unwrap(),
                name,
            )
            .await
            .unwrap_or_else(|e| panic!("{alg:?} {name}: {e}"));
            assert_eq!(echo(&mut s, "hi").await.unwrap(), "hi");
            let conn = s.get_ref().1;
            assert_eq!(
                conn.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
        }
        // A name not in the certificate is refused.
        let e = connect(
            addr,
            client_config_from_ca_file(demo.root_path()).unwrap(),
            "other.example",
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("NotValidForName") || e.to_string().contains("certificate"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn alpn_h2_and_http11_offered() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP256);
    let addr = kms_server(&demo, ClientAuth::None).await;
    for proto in [&b"h2"[..], &b"http/1.1"[..]] {
        let mut cfg = client_config_from_ca_file(demo.root_path()).unwrap();
        cfg.alpn_protocols = vec![proto.to_vec()];
        let s = connect(addr, cfg, KMS).await.unwrap();
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(proto));
    }
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP256);
    let addr = kms_server(&demo, ClientAuth::None).await;
    let cfg = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(load_trust_anchors(&[demo.root_path()]).unwrap())
    .with_no_client_auth();
    let e = connect(addr, cfg, KMS).await.unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("version") || e.to_string().contains("Alert"),
        "{e}"
    );
}

#[tokio::test]
async fn client_without_the_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let demo1 = demo(&dir.path().join("a"), KeyAlgorithm::EcP256);
    let demo2 = demo(&dir.path().join("b"), KeyAlgorithm::EcP256);
    let addr = kms_server(&demo1, ClientAuth::None).await;
    let e = connect(
        addr,
        client_config_from_ca_file(demo2.root_path()).unwrap(),
        KMS,
    )
    .await
    .unwrap_err();
    // Both demo CAs use the same names, so webpki reports BadSignature rather than
    // UnknownIssuer; either way the peer certificate is refused.
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    // No anchors at all is a configuration error, not a silent "trust everything".
    let e = client_config(TrustConfig::from_roots(RootCertStore::empty()), None).unwrap_err();
    assert!(e.to_string().contains("no trust anchors"), "{e}");
    // Trusting the intermediates bundle only is not enough for a missing root either:
    // the root must be the anchor.
    assert!(client_config_from_ca_file(&dir.path().join("missing.pem")).is_err());
}

#[tokio::test]
async fn system_roots_are_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP256);
    let trust = TrustConfig::from_ca_files(&[demo.root_path()]).unwrap();
    assert!(!trust.system_roots());
    assert_eq!(trust.clone().into_root_store().unwrap().len(), 1);
    // With the flag, the system store is added when the machine has one.
    let with = trust.with_system_roots(true);
    match with.into_root_store() {
        Ok(store) => assert!(store.len() > 1),
        Err(e) => assert!(e.to_string().contains("system trust store"), "{e}"),
    }
}

#[tokio::test]
async fn mtls_required() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP256);
    let auth = ClientAuth::required_from_files(&[demo.root_path()]).unwrap();
    let addr = kms_server(&demo, auth).await;
    let trust = || TrustConfig::from_ca_files(&[demo.root_path()]).unwrap();

    // Without a client certificate: refused.
    let res = async {
        let mut s = connect(addr, client_config(trust(), None)?, KMS)
            .await
            .map_err(|e| cryptoutil_tls::TlsError::Signing(e.to_string()))?;
        echo(&mut s, "x")
            .await
            .map_err(|e| cryptoutil_tls::TlsError::Signing(e.to_string()))
    }
    .await;
    let e = res.unwrap_err();
    assert!(
        e.to_string().contains("CertificateRequired") || e.to_string().contains("closed"),
        "{e}"
    );

    // A server certificate is not a client certificate (EKU serverAuth only): refused.
    let kms = &demo.service("kms").unwrap().paths;
    let id = ClientIdentity::load(&kms.cert, &kms.key).unwrap();
    let mut s = connect(addr, client_config(trust(), Some(id)).unwrap(), KMS)
        .await
        .unwrap();
    assert!(echo(&mut s, "x").await.is_err());

    // A client certificate from another CA: refused.
    let other = demo_other(dir.path());
    let id = ClientIdentity::load(&other.client.paths.cert, &other.client.paths.key).unwrap();
    let mut s = connect(addr, client_config(trust(), Some(id)).unwrap(), KMS)
        .await
        .unwrap();
    assert!(echo(&mut s, "x").await.is_err());

    // The demo client certificate: accepted.
    let id = ClientIdentity::load(&demo.client.paths.cert, &demo.client.paths.key).unwrap();
    let mut s = connect(addr, client_config(trust(), Some(id)).unwrap(), KMS)
        .await
        .unwrap();
    assert_eq!(echo(&mut s, "hello").await.unwrap(), "hello");
}

fn demo_other(base: &std::path::Path) -> DemoCa {
    demo(&base.join("other"), KeyAlgorithm::EcP256)
}

#[tokio::test]
async fn server_key_behind_signing_key_provider() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP384);
    let kms = &demo.service("kms").unwrap().paths;
    let key = Arc::new(InMemoryEcdsaKey::from_pem_file(&kms.key).unwrap());
    let cert = Arc::new(ReloadableCert::with_key_provider(kms.cert.clone(), key).unwrap());
    assert!(cert.key_path().is_none());
    let addr = start_echo_server(server_config(cert, ClientAuth::None).unwrap()).await;
    let leaf = roundtrip(
        addr,
        client_config_from_ca_file(demo.root_path()).unwrap(),
        KMS,
    )
    .await
    .unwrap();
    assert_eq!(leaf, cryptoutil_tls::load_cert_chain(&kms.cert).unwrap()[0]);

    // A provider whose key is not the certificate's is refused.
    let wrong =
        Arc::new(InMemoryEcdsaKey::from_pem_file(&demo.service("rs").unwrap().paths.key).unwrap());
    let e = ReloadableCert::with_key_provider(kms.cert.clone(), wrong).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[tokio::test]
async fn presented_chain_is_leaf_and_intermediates() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo(dir.path(), KeyAlgorithm::EcP256);
    let addr = kms_server(&demo, ClientAuth::None).await;
    let s = connect(
        addr,
        client_config_from_ca_file(demo.root_path()).unwrap(),
        KMS,
    )
    .await
    .unwrap();
    let certs = s.get_ref().1.peer_certificates().unwrap();
    assert_eq!(certs.len(), 3);
    assert_eq!(presented_leaf(&s), certs[0]);
}
