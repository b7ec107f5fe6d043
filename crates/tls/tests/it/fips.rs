//! The FIPS build (cargo feature `fips`): every configuration this crate makes is FIPS in
//! rustls's judgement (`fips()`: a FIPS provider, FIPS suites, groups and primitives, the
//! module in FIPS mode), and so is a handshake between them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{connect, echo, start_echo_server};
use cryptoutil_tls::{
    ClientAuth, ClientIdentity, CryptoModule, DemoCaOptions, ReloadableCert, TrustConfig,
    client_config, client_config_from_ca_file, init_demo_ca, server_config,
};

#[tokio::test]
async fn every_tls_configuration_is_fips_and_so_is_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let leaf = &demo.service("kms").unwrap().paths;
    let cert = || Arc::new(ReloadableCert::from_leaf_paths(leaf).unwrap());
    let roots = [demo.root_path()];

    // Servers: without, with optional and with required client certificates.
    for auth in [
        ClientAuth::None,
        ClientAuth::optional_from_files(&roots).unwrap(),
        ClientAuth::required_from_files(&roots).unwrap(),
    ] {
        let what = format!("{auth:?}").chars().take(8).collect::<String>();
        let config = server_config(cert(), auth).unwrap();
        assert!(config.fips(), "server_config ({what}) is not FIPS");
        assert!(config.crypto_provider().fips());
    }
    // Clients: without and with a client certificate.
    let trust = || TrustConfig::from_ca_files(&roots).unwrap();
    assert!(client_config(trust(), None).unwrap().fips());
    let id = ClientIdentity::load(&demo.client.paths.cert, &demo.client.paths.key).unwrap();
    assert!(client_config(trust(), Some(id)).unwrap().fips());
    assert!(client_config_from_ca_file(demo.root_path()).unwrap().fips());

    // A handshake between them is a FIPS connection on both ends.
    let server = server_config(cert(), ClientAuth::None).unwrap();
    let addr = start_echo_server(server).await;
    let mut s = connect(
        addr,
        client_config_from_ca_file(demo.root_path()).unwrap(),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(echo(&mut s, "fips").await.unwrap(), "fips");
    assert!(s.get_ref().1.fips(), "the client connection is not FIPS");

    // What `cryptoutil version --verbose` reports says so too.
    let module = CryptoModule::current();
    assert_eq!(module.module, "AWS-LC FIPS");
    assert!(module.fips_mode && module.fips_build && module.tls.fips);
    assert!(module.fips_module_version.is_some());
}
