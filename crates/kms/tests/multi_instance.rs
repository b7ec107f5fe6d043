//! Two KMS instances on one PostgreSQL database (issue 13), beyond what `api.rs` covers (shared
//! keys across restarts): an elastic key rotated on one instance is used by the other for
//! encryption at once, and both decrypt the ciphertexts of every version. Needs
//! `CRYPTOUTIL_TEST_POSTGRES_URL` (skips loudly without).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Kms, Surface, postgres_url, shares};
use cryptoutil_jose::jwe;
use serde_json::json;

#[tokio::test]
async fn a_key_rotated_on_one_instance_encrypts_on_the_other_and_both_decrypt_every_version() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = shares(dir.path(), "multi", 2);
    let (one, two) = tokio::join!(
        Kms::with_shares(&db.url, 1, &files),
        Kms::with_shares(&db.url, 1, &files)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let api1 = one.api(Surface::Service).await;
    let api2 = two.api_as(Surface::Service, Some(&one.user)).await;

    let created = api1
        .post_json(
            "/elastickey",
            &json!({"name": format!("multi-{}", uuid::Uuid::now_v7())}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Instance two encrypts first (so it has version 1 cached), then one rotates.
    let v1 = api2
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"version one")
        .await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    let v1_kid = jwe::peek_header(&v1.text)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();

    let rotated = api1
        .post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let v2_kid = rotated.json()["material_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(v1_kid, v2_kid);

    // Instance two encrypts with the new version at once.
    let v2 = api2
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"version two")
        .await;
    assert_eq!(v2.status, 200, "{}", v2.text);
    assert_eq!(
        jwe::peek_header(&v2.text).unwrap().kid(),
        Some(v2_kid.as_str()),
        "instance two must encrypt with the version instance one rotated to"
    );
    // Both decrypt both versions.
    for api in [&api1, &api2] {
        for (token, clear) in [(&v1.text, &b"version one"[..]), (&v2.text, b"version two")] {
            let out = api
                .post_bytes(&format!("/elastickey/{id}/decrypt"), token.as_bytes())
                .await;
            assert_eq!(out.status, 200, "{}", out.text);
            assert_eq!(out.body, clear);
        }
    }
    one.stop().await;
    two.stop().await;
    db.drop().await;
}
