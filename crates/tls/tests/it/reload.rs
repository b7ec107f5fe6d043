//! Certificate reload: explicit reload(), refusal of broken files, and the file watcher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, echo, presented_leaf, roundtrip, start_echo_server};
use cryptoutil_tls::{
    CaChain, ClientAuth, DemoCaOptions, LeafKind, ReloadableCert, TlsError,
    client_config_from_ca_file, init_demo_ca, load_cert_chain, server_config,
};

const KMS: &str = "kms.cryptoutil.demo.local";

fn new_leaf(ca_dir: &std::path::Path) -> cryptoutil_tls::IssuedLeaf {
    CaChain::load(ca_dir)
        .unwrap()
        .issue(
            &LeafKind::Server {
                names: vec![KMS.into()],
            },
            time::Duration::days(30),
        )
        .unwrap()
}

#[tokio::test]
async fn reload_swaps_cert_for_new_connections_and_keeps_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let kms = demo.service("kms").unwrap().paths.clone();
    let cert = Arc::new(ReloadableCert::from_leaf_paths(&kms).unwrap());
    let addr = start_echo_server(server_config(cert.clone(), ClientAuth::None).unwrap()).await;
    let client = || client_config_from_ca_file(demo.root_path()).unwrap();

    let original = load_cert_chain(&kms.cert).unwrap()[0].clone();
    let mut in_flight = connect(addr, client(), KMS).await.unwrap();
    assert_eq!(echo(&mut in_flight, "before").await.unwrap(), "before");
    assert_eq!(presented_leaf(&in_flight), original);
    let old_serial = cert.info().serial.clone();

    // Issue a second leaf, write it over the files, reload.
    let second = new_leaf(&demo.ca.dir);
    second.write_to_dir(kms.cert.parent().unwrap()).unwrap();
    cert.reload().unwrap();
    assert_ne!(cert.info().serial, old_serial);

    // New connection: new certificate.
    let seen = roundtrip(addr, client(), KMS).await.unwrap();
    assert_eq!(seen, second.cert_chain[0]);
    assert_ne!(seen, original);
    // In-flight connection still works.
    assert_eq!(echo(&mut in_flight, "after").await.unwrap(), "after");
}

#[tokio::test]
async fn broken_new_cert_is_refused_and_old_kept() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let kms = demo.service("kms").unwrap().paths.clone();
    let cert = Arc::new(ReloadableCert::from_leaf_paths(&kms).unwrap());
    let addr = start_echo_server(server_config(cert.clone(), ClientAuth::None).unwrap()).await;
    let client = || client_config_from_ca_file(demo.root_path()).unwrap();
    let original = load_cert_chain(&kms.cert).unwrap()[0].clone();
    let serial = cert.info().serial.clone();

    // 1. Garbage in cert.pem.
    std::fs::write(
        &kms.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = cert.reload().unwrap_err();
    assert!(e.to_string().contains("cert.pem"), "{e}");
    assert_eq!(cert.info().serial, serial);
    assert_eq!(roundtrip(addr, client(), KMS).await.unwrap(), original);

    // 2. Empty cert.pem.
    std::fs::write(&kms.cert, "").unwrap();
    assert!(matches!(
        cert.reload().unwrap_err(),
        TlsError::NoCertificate { .. }
    ));

    // 3. A valid certificate that does not match key.pem.
    let other = new_leaf(&demo.ca.dir);
    std::fs::write(&kms.cert, other.cert_pem()).unwrap();
    let e = cert.reload().unwrap_err();
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("key.pem"), "{e}");
    assert_eq!(cert.info().serial, serial);

    // 4. A valid, matching pair that is a client certificate (no serverAuth).
    let client_dir = dir.path().join("demo");
    std::fs::copy(client_dir.join("cert.pem"), &kms.cert).unwrap();
    std::fs::copy(client_dir.join("key.pem"), &kms.key).unwrap();
    let e = cert.reload().unwrap_err();
    assert!(e.to_string().contains("serverAuth"), "{e}");
    assert_eq!(cert.info().serial, serial);

    // 5. Missing key file.
    std::fs::remove_file(&kms.key).unwrap();
    assert!(matches!(cert.reload().unwrap_err(), TlsError::Io { .. }));

    assert_eq!(roundtrip(addr, client(), KMS).await.unwrap(), original);
}

#[tokio::test]
async fn watcher_picks_up_file_change() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let kms = demo.service("kms").unwrap().paths.clone();
    let cert = Arc::new(ReloadableCert::from_leaf_paths(&kms).unwrap());
    let addr = start_echo_server(server_config(cert.clone(), ClientAuth::None).unwrap()).await;
    let watcher = cert.clone().spawn_watcher().unwrap();
    let old_serial = cert.info().serial.clone();

    // Atomic replacement (rename) of both files, as `issue` / cert-manager do.
    let second = new_leaf(&demo.ca.dir);
    second.write_to_dir(kms.cert.parent().unwrap()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    while cert.info().serial == old_serial {
        assert!(
            Instant::now() < deadline,
            "watcher did not reload within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = roundtrip(
        addr,
        client_config_from_ca_file(demo.root_path()).unwrap(),
        KMS,
    )
    .await
    .unwrap();
    assert_eq!(seen, second.cert_chain[0]);

    // In-place rewrite (not rename) is seen too.
    let serial2 = cert.info().serial.clone();
    let third = new_leaf(&demo.ca.dir);
    std::fs::write(&kms.key, third.key_pem().as_bytes()).unwrap();
    std::fs::write(&kms.cert, third.cert_pem()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while cert.info().serial == serial2 {
        assert!(
            Instant::now() < deadline,
            "watcher did not reload the in-place write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // After stop(), changes are no longer picked up.
    watcher.stop();
    let serial3 = cert.info().serial.clone();
    new_leaf(&demo.ca.dir)
        .write_to_dir(kms.cert.parent().unwrap())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cert.info().serial, serial3);
}
