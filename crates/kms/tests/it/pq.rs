//! Post-quantum elastic keys over HTTPS: ML-DSA-44/65/87 signing keys and ML-KEM-768/1024
//! encryption keys (direct and +AxxxKW), through their whole life cycle, with the public AKP JWK
//! of `GET .../materialkeys` used by an outside party, and every malformed input a 4xx problem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Kms, Surface};

use cryptoutil_jose::{
    ContentEncryption, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, b64, jwe, jws,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

fn name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

fn replace_header(token: &str, f: impl FnOnce(&mut Map<String, Value>)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut h: Map<String, Value> =
        serde_json::from_slice(&b64::decode(parts[0].as_bytes(), "h").unwrap()).unwrap();
    f(&mut h);
    let mut out = vec![b64::encode(Value::Object(h).to_string().as_bytes())];
    out.extend(parts[1..].iter().map(|s| (*s).to_owned()));
    out.join(".")
}

#[tokio::test]
async fn ml_dsa_keys_sign_verify_rotate_and_publish_akp_jwks() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    for alg in [
        JwsAlgorithm::MlDsa44,
        JwsAlgorithm::MlDsa65,
        JwsAlgorithm::MlDsa87,
    ] {
        let created = api
            .post_json(
                "/elastickey",
                &json!({"name": name(alg.name()), "algorithm": alg.name()}),
            )
            .await;
        assert_eq!(created.status, 201, "{alg}: {}", created.text);
        assert_eq!(created.json()["algorithm"], alg.name());
        let id = created.json()["elastic_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let first = api
            .post_bytes(&format!("/elastickey/{id}/sign"), b"pq payload")
            .await;
        assert_eq!(first.status, 200, "{alg}: {}", first.text);
        let verified = api
            .post_bytes(&format!("/elastickey/{id}/verify"), first.text.as_bytes())
            .await;
        assert_eq!(verified.status, 200, "{alg}: {}", verified.text);
        assert_eq!(verified.body, b"pq payload");

        // The public AKP JWK from materialkeys verifies the KMS's JWS outside the KMS.
        let materials = api
            .get(&format!("/elastickey/{id}/materialkeys"))
            .await
            .json();
        let public = &materials["items"][0]["public_jwk"];
        assert_eq!(public["kty"], "AKP", "{alg}: {public}");
        assert_eq!(public["alg"], alg.name());
        assert!(public.get("priv").is_none() && public.get("dk").is_none());
        let public = Jwk::public_from_json(&public.to_string()).unwrap();
        let outside = jws::verify(&public, alg, &first.text).unwrap();
        assert_eq!(outside.payload, b"pq payload");
        assert_eq!(
            outside.header.kid(),
            materials["items"][0]["material_key_id"].as_str()
        );

        // Rotation: the new version signs, the old signature still verifies.
        let rotated = api
            .post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
            .await;
        assert_eq!(rotated.status, 201, "{}", rotated.text);
        assert_eq!(rotated.json()["public_jwk"]["kty"], "AKP");
        let second = api
            .post_bytes(&format!("/elastickey/{id}/sign"), b"v2")
            .await;
        assert_eq!(
            jws::peek_header(&second.text).unwrap().kid(),
            rotated.json()["material_key_id"].as_str()
        );
        for token in [&first.text, &second.text] {
            let ok = api
                .post_bytes(&format!("/elastickey/{id}/verify"), token.as_bytes())
                .await;
            assert_eq!(ok.status, 200, "{alg}: {}", ok.text);
        }
        let listed = api
            .get(&format!("/elastickey/{id}/materialkeys"))
            .await
            .json();
        assert_eq!(listed["total"], 2);

        // Tampered signature, truncated signature, another alg in the header: 400 problems.
        let parts: Vec<&str> = first.text.split('.').collect();
        let mut sig = b64::decode(parts[2].as_bytes(), "sig").unwrap();
        sig[11] ^= 1;
        let tampered = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
        api.post_bytes(&format!("/elastickey/{id}/verify"), tampered.as_bytes())
            .await
            .assert_problem(400, "invalid_signature");
        sig.truncate(100);
        let short = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
        api.post_bytes(&format!("/elastickey/{id}/verify"), short.as_bytes())
            .await
            .assert_problem(400, "");
        let other = if alg == JwsAlgorithm::MlDsa44 {
            "ML-DSA-65"
        } else {
            "ML-DSA-44"
        };
        let relabelled = replace_header(&first.text, |h| {
            h.insert("alg".into(), other.into());
        });
        api.post_bytes(&format!("/elastickey/{id}/verify"), relabelled.as_bytes())
            .await
            .assert_problem(400, "");
        api.post_bytes(&format!("/elastickey/{id}/encrypt"), b"x")
            .await
            .assert_problem(409, "signing");
    }
    kms.stop().await;
}

#[tokio::test]
async fn ml_dsa_import_takes_a_seed_jwk_and_refuses_malformed_akp_keys() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let created = api
        .post_json(
            "/elastickey",
            &json!({"name": name("pq-import"), "algorithm": "ML-DSA-65", "import_allowed": true}),
        )
        .await;
    let id = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::MlDsa65)).unwrap();
    let imported = api
        .post_bytes(
            &format!("/elastickey/{id}/import"),
            mine.to_json(true).as_bytes(),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    let token = api
        .post_bytes(&format!("/elastickey/{id}/sign"), b"mine")
        .await
        .text;
    // Signed with the imported seed: our own public key verifies it.
    let out = jws::verify(&mine.to_public().unwrap(), JwsAlgorithm::MlDsa65, &token).unwrap();
    assert_eq!(out.payload, b"mine");

    let value = mine.to_value(true);
    let mut bad_pub = value.clone();
    bad_pub["pub"] = b64::encode(&[1u8; 1000]).into();
    let mut bad_priv = value.clone();
    bad_priv["priv"] = b64::encode(&[1u8; 31]).into();
    let mut other_seed = value.clone();
    other_seed["priv"] = b64::encode(&[9u8; 32]).into();
    let mut no_alg = value.clone();
    no_alg.as_object_mut().unwrap().remove("alg");
    let mut unknown = value.clone();
    unknown["alg"] = "ML-DSA-99".into();
    let wrong_set = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::MlDsa44))
        .unwrap()
        .to_value(true);
    let public_only = mine.to_public().unwrap().to_value(false);
    for (what, bad) in [
        ("wrong pub length", bad_pub),
        ("wrong priv length", bad_priv),
        ("priv of another key", other_seed),
        ("no alg", no_alg),
        ("unknown alg", unknown),
        ("ML-DSA-44 key", wrong_set),
        ("public only", public_only),
    ] {
        let reply = api
            .post_bytes(
                &format!("/elastickey/{id}/import"),
                bad.to_string().as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        reply.assert_problem(400, "");
    }
    kms.stop().await;
}

#[tokio::test]
async fn ml_kem_keys_encrypt_decrypt_rotate_generate_and_refuse_bad_ciphertexts() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    for (enc, alg) in [
        (ContentEncryption::A256GCM, JweAlgorithm::MlKem768),
        (ContentEncryption::A256GCM, JweAlgorithm::MlKem1024),
        (ContentEncryption::A256GCM, JweAlgorithm::MlKem768A192KW),
        (ContentEncryption::A256GCM, JweAlgorithm::MlKem1024A256KW),
        (ContentEncryption::A128CbcHs256, JweAlgorithm::MlKem768),
    ] {
        let algorithm = format!("{enc}/{alg}");
        let created = api
            .post_json(
                "/elastickey",
                &json!({"name": name("kem"), "algorithm": algorithm}),
            )
            .await;
        assert_eq!(created.status, 201, "{algorithm}: {}", created.text);
        assert_eq!(created.json()["algorithm"], algorithm.as_str());
        let id = created.json()["elastic_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = api
            .post_bytes(
                &format!("/elastickey/{id}/encrypt?context=pq"),
                b"kem secret",
            )
            .await;
        assert_eq!(token.status, 200, "{algorithm}: {}", token.text);
        let header = jwe::peek_header(&token.text).unwrap();
        assert_eq!(header.alg(), Some(alg.name()));
        assert!(header.get("ek").is_some_and(Value::is_string));
        let clear = api
            .post_bytes(
                &format!("/elastickey/{id}/decrypt?context=pq"),
                token.text.as_bytes(),
            )
            .await;
        assert_eq!(clear.status, 200, "{algorithm}: {}", clear.text);
        assert_eq!(clear.body, b"kem secret");

        // The public AKP JWK lets anyone encrypt to the KMS; the KMS decrypts.
        let materials = api
            .get(&format!("/elastickey/{id}/materialkeys"))
            .await
            .json();
        let item = &materials["items"][0];
        assert_eq!(item["public_jwk"]["kty"], "AKP", "{algorithm}");
        assert_eq!(item["public_jwk"]["alg"], alg.name());
        assert!(item["public_jwk"].get("dk").is_none());
        assert!(item["public_jwk"].get("priv").is_none());
        let public = Jwk::public_from_json(&item["public_jwk"].to_string()).unwrap();
        let mut kid = Map::new();
        kid.insert("kid".into(), item["material_key_id"].clone());
        let outside = jwe::encrypt(&public, alg, enc, b"from outside", Some(&kid)).unwrap();
        let inside = api
            .post_bytes(&format!("/elastickey/{id}/decrypt"), outside.as_bytes())
            .await;
        assert_eq!(inside.status, 200, "{algorithm}: {}", inside.text);
        assert_eq!(inside.body, b"from outside");

        // Data keys under the ML-KEM key.
        let generated = api
            .post_bytes(
                &format!("/elastickey/{id}/generate?alg=oct/256&include_plaintext=true"),
                b"",
            )
            .await;
        assert_eq!(generated.status, 200, "{algorithm}: {}", generated.text);
        let body = generated.json();
        let unwrapped = api
            .post_bytes(
                &format!("/elastickey/{id}/decrypt"),
                body["encrypted_jwk"].as_str().unwrap().as_bytes(),
            )
            .await;
        assert_eq!(unwrapped.status, 200, "{}", unwrapped.text);
        let unwrapped: Value = serde_json::from_slice(&unwrapped.body).unwrap();
        assert_eq!(unwrapped, body["jwk"]);

        // Rotation: the old ciphertext still decrypts.
        let rotated = api
            .post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
            .await;
        assert_eq!(rotated.status, 201, "{}", rotated.text);
        let old = api
            .post_bytes(
                &format!("/elastickey/{id}/decrypt?context=pq"),
                token.text.as_bytes(),
            )
            .await;
        assert_eq!(old.body, b"kem secret");

        // Malformed ciphertexts: ek of the wrong length, not base64url, missing, tampered;
        // another ML-KEM alg in the header; a tampered tag. Each a 400 problem.
        let ct_len = if matches!(alg, JweAlgorithm::MlKem768 | JweAlgorithm::MlKem768A192KW) {
            1088
        } else {
            1568
        };
        let cases = [
            replace_header(&token.text, |h| {
                h.insert("ek".into(), b64::encode(&vec![3u8; ct_len - 1]).into());
            }),
            replace_header(&token.text, |h| {
                h.insert("ek".into(), b64::encode(&vec![3u8; ct_len + 1]).into());
            }),
            replace_header(&token.text, |h| {
                h.insert("ek".into(), "not base64url!".into());
            }),
            replace_header(&token.text, |h| {
                h.remove("ek");
            }),
            replace_header(&token.text, |h| {
                let mut ek = b64::decode(h["ek"].as_str().unwrap().as_bytes(), "ek").unwrap();
                ek[0] ^= 1;
                h.insert("ek".into(), b64::encode(&ek).into());
            }),
            replace_header(&token.text, |h| {
                let other = if alg.is_direct() {
                    "ML-KEM-768+A192KW"
                } else {
                    "ML-KEM-768"
                };
                h.insert("alg".into(), other.into());
            }),
            {
                let mut parts: Vec<String> = token.text.split('.').map(str::to_owned).collect();
                let mut tag = b64::decode(parts[4].as_bytes(), "tag").unwrap();
                tag[0] ^= 1;
                parts[4] = b64::encode(&tag);
                parts.join(".")
            },
        ];
        for (i, bad) in cases.iter().enumerate() {
            let reply = api
                .post_bytes(
                    &format!("/elastickey/{id}/decrypt?context=pq"),
                    bad.as_bytes(),
                )
                .await;
            assert_eq!(reply.status, 400, "{algorithm} case {i}: {}", reply.text);
            reply.assert_problem(400, "");
        }
        api.post_bytes(&format!("/elastickey/{id}/sign"), b"x")
            .await
            .assert_problem(409, "encryption");
    }
    // An ML-KEM name without enc, and ML-KEM-512, are refused at creation.
    for bad in ["ML-KEM-768", "A256GCM/ML-KEM-512", "ML-DSA-99"] {
        api.post_json(
            "/elastickey",
            &json!({"name": name("bad"), "algorithm": bad}),
        )
        .await
        .assert_problem(400, "");
    }
    kms.stop().await;
}
