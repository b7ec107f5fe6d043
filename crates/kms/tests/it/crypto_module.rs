//! `GET /admin/v1/crypto`: the cryptographic module and the TLS policy, on the admin listener
//! only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::Kms;
use cryptoutil_tls::CryptoModule;

#[tokio::test]
async fn the_admin_listener_reports_the_crypto_module_and_the_tls_policy() {
    let kms = Kms::dev().await;
    let reply = kms.get_admin("/admin/v1/crypto").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let doc = reply.json();
    // The same facts `cryptoutil version --verbose` prints, from the server's own process.
    let here = serde_json::to_value(CryptoModule::current()).unwrap();
    assert_eq!(doc, here);
    assert_eq!(doc["fips_build"], cfg!(feature = "fips"));
    assert_eq!(doc["fips_mode"], cfg!(feature = "fips"));
    let module = doc["module"].as_str().unwrap();
    assert_eq!(module == "AWS-LC FIPS", cfg!(feature = "fips"), "{doc}");
    assert!(!doc["version"].as_str().unwrap().is_empty());
    assert_eq!(doc["tls"]["versions"], serde_json::json!(["TLSv1.3"]));
    let suites = doc["tls"]["cipher_suites"].as_array().unwrap();
    assert!(!suites.is_empty());
    assert!(
        suites
            .iter()
            .all(|s| s.as_str().unwrap().starts_with("TLS13_"))
    );
    assert!(!doc["tls"]["kx_groups"].as_array().unwrap().is_empty());

    // Only on the admin listener.
    assert_eq!(kms.get_public("/admin/v1/crypto").await.status, 404);
    kms.stop().await;
}
