//! RFC 7520 (JOSE Cookbook) examples within our algorithm set. The vectors are transcribed in
//! `tests/data/rfc7520.json`. RFC 7520 §5.1-5.3 use RSA1_5, SHA-1 RSA-OAEP and PBES2, which are
//! banned here (SPEC §1), so they are not exercised.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cryptoutil_jose::jwe::{self, alg::aes_kw_wrap, alg::concat_kdf, alg::ecdh_shared_secret, enc};
use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk, JwsAlgorithm, b64, jws};
use serde_json::{Map, Value};

fn data() -> Value {
    serde_json::from_str(include_str!("../data/rfc7520.json")).unwrap()
}

fn key(v: &Value) -> Jwk {
    Jwk::from_value(v.clone()).unwrap()
}

fn kid_header(kid: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kid".into(), kid.into());
    m
}

#[test]
fn jws_4_1_rs256_verify_and_sign() {
    let d = data();
    let k = key(&d["rsa_key"]);
    let token = d["jws_4_1_rs256"].as_str().unwrap();
    let v = jws::verify(&k.to_public().unwrap(), JwsAlgorithm::RS256, token).unwrap();
    assert_eq!(v.payload, d["jws_payload"].as_str().unwrap().as_bytes());
    assert_eq!(v.header.kid(), Some("bilbo.baggins@hobbiton.example"));
    // RSASSA-PKCS1-v1_5 is deterministic: our signature must be byte-identical.
    let ours = jws::sign(
        &k,
        JwsAlgorithm::RS256,
        d["jws_payload"].as_str().unwrap().as_bytes(),
        Some(&kid_header("bilbo.baggins@hobbiton.example")),
    )
    .unwrap();
    assert_eq!(ours, token);
    // The key is pinned to another algorithm by the caller: rejected.
    assert!(jws::verify(&k, JwsAlgorithm::PS256, token).is_err());
}

#[test]
fn jws_4_2_ps384_verify() {
    let d = data();
    let k = key(&d["rsa_key"]).to_public().unwrap();
    let v = jws::verify(
        &k,
        JwsAlgorithm::PS384,
        d["jws_4_2_ps384"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(v.payload, d["jws_payload"].as_str().unwrap().as_bytes());
    assert!(
        jws::verify(
            &k,
            JwsAlgorithm::RS384,
            d["jws_4_2_ps384"].as_str().unwrap()
        )
        .is_err()
    );
}

#[test]
fn jws_4_3_es512_verify() {
    let d = data();
    let k = key(&d["ec_p521_key"]);
    let v = jws::verify(
        &k.to_public().unwrap(),
        JwsAlgorithm::ES512,
        d["jws_4_3_es512"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(v.payload, d["jws_payload"].as_str().unwrap().as_bytes());
    // And our own ES512 signature with the RFC key verifies.
    let ours = jws::sign(&k, JwsAlgorithm::ES512, b"x", None).unwrap();
    jws::verify(&k, JwsAlgorithm::ES512, &ours).unwrap();
}

#[test]
fn jws_4_4_hs256_sign_deterministic() {
    let d = data();
    let k = key(&d["hmac_key"]);
    let token = d["jws_4_4_hs256"].as_str().unwrap();
    let ours = jws::sign(
        &k,
        JwsAlgorithm::HS256,
        d["jws_payload"].as_str().unwrap().as_bytes(),
        Some(&kid_header("018c0ae5-4d9b-471b-bfd6-eef314bc7037")),
    )
    .unwrap();
    assert_eq!(ours, token);
    jws::verify(&k, JwsAlgorithm::HS256, token).unwrap();
}

fn decrypt_case(name: &str) -> (Value, Jwk, JweAlgorithm, ContentEncryption) {
    let d = data();
    let c = d[name].clone();
    let k = key(&c["key"]);
    let alg: JweAlgorithm = c["alg"].as_str().unwrap().parse().unwrap();
    let enc: ContentEncryption = c["enc"].as_str().unwrap().parse().unwrap();
    let out = jwe::decrypt(&k, alg, enc, c["compact"].as_str().unwrap()).unwrap();
    assert_eq!(
        &out.plaintext[..],
        d["jwe_plaintext"].as_str().unwrap().as_bytes(),
        "{name}"
    );
    (c, k, alg, enc)
}

#[test]
fn jwe_5_4_ecdh_es_a128kw_a128gcm() {
    let (c, k, alg, enc) = decrypt_case("jwe_5_4");
    // The general JSON serialization of the same message.
    let out = jwe::decrypt_json(&k, alg, enc, &c["json"].to_string()).unwrap();
    assert_eq!(out.header.kid(), Some("peregrin.took@tuckborough.example"));
}

#[test]
fn jwe_5_5_ecdh_es_a128cbc_hs256() {
    let (c, k, _, _) = decrypt_case("jwe_5_5");
    // Recompute the CEK from the ephemeral private key: checks ECDH and Concat KDF directly.
    let compact = c["compact"].as_str().unwrap();
    let header = jwe::peek_header(compact).unwrap();
    let mut epk = header.get("epk").unwrap().clone();
    epk["d"] = c["epk_d"].clone();
    let epk = key(&epk);
    let z = ecdh_shared_secret(&epk, &k.to_public().unwrap()).unwrap();
    let cek = concat_kdf(&z, 32, b"A128CBC-HS256", b"", b"").unwrap();
    assert_eq!(b64::encode(&cek), c["cek"].as_str().unwrap());
}

/// Re-encrypts the content deterministically with the RFC's CEK and IV and compares.
fn check_content(c: &Value, enc_alg: ContentEncryption, cek: &[u8], plaintext: &[u8]) {
    let compact = c["compact"].as_str().unwrap();
    let parts: Vec<&str> = compact.split('.').collect();
    let iv = b64::decode(parts[2].as_bytes(), "iv").unwrap();
    let sealed =
        enc::encrypt_with_iv(enc_alg, cek, None, &iv, parts[0].as_bytes(), plaintext).unwrap();
    if cryptoutil_jose::policy::ENFORCED && enc_alg.is_gcm() {
        // The FIPS build seals AES-GCM with the module's own IV: the RFC's output cannot be
        // replayed (its ciphertext was decrypted above).
        assert_ne!(sealed.iv(), &iv[..]);
        return;
    }
    assert_eq!(b64::encode(&sealed.ciphertext), parts[3]);
    assert_eq!(b64::encode(sealed.tag()), parts[4]);
}

#[test]
fn jwe_5_6_dir_a128gcm() {
    let (c, k, _, enc_alg) = decrypt_case("jwe_5_6");
    let d = data();
    let kb = b64::decode(c["key"]["k"].as_str().unwrap().as_bytes(), "k").unwrap();
    check_content(
        &c,
        enc_alg,
        &kb,
        d["jwe_plaintext"].as_str().unwrap().as_bytes(),
    );
    let _ = k;
}

#[test]
#[cfg_attr(feature = "fips", ignore = "AES-GCMKW is refused in the FIPS build")]
fn jwe_5_7_a256gcmkw_a128cbc_hs256() {
    let (c, _, _, enc_alg) = decrypt_case("jwe_5_7");
    let d = data();
    let cek = b64::decode(c["cek"].as_str().unwrap().as_bytes(), "cek").unwrap();
    check_content(
        &c,
        enc_alg,
        &cek,
        d["jwe_plaintext"].as_str().unwrap().as_bytes(),
    );
}

#[test]
fn jwe_5_8_a128kw_a128gcm() {
    let (c, _, _, enc_alg) = decrypt_case("jwe_5_8");
    let d = data();
    let kek = b64::decode(c["key"]["k"].as_str().unwrap().as_bytes(), "k").unwrap();
    let cek = b64::decode(c["cek"].as_str().unwrap().as_bytes(), "cek").unwrap();
    assert_eq!(
        b64::encode(&aes_kw_wrap(&kek, &cek).unwrap()),
        c["encrypted_key"].as_str().unwrap()
    );
    check_content(
        &c,
        enc_alg,
        &cek,
        d["jwe_plaintext"].as_str().unwrap().as_bytes(),
    );
}
