//! The FIPS policy at the JOSE layer's entry points (`src/policy.rs`): in the FIPS build
//! (`--features fips`) what the table refuses fails with a clear `NotFipsApproved` error at
//! key parsing, key generation, encryption, decryption, signing and verification; what it
//! approves works end to end. In other builds the same calls succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cryptoutil_jose::jwe;
use cryptoutil_jose::policy::{self, ENFORCED};
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JoseError, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, OkpCurve,
    b64, jws,
};

/// In the FIPS build: refused, naming `what` and FIPS. Elsewhere: fine.
fn refused_in_fips<T: std::fmt::Debug>(result: Result<T, JoseError>, what: &str) {
    match (ENFORCED, result) {
        (true, Err(e @ JoseError::NotFipsApproved { .. })) => {
            let text = e.to_string();
            assert!(text.contains(what) && text.contains("FIPS"), "{text}");
        }
        (true, other) => panic!("{what} was not refused in the FIPS build: {other:?}"),
        (false, r) => {
            r.unwrap();
        }
    }
}

/// A public X25519 JWK as another party would send it (RFC 8037 A.6's Bob).
const X25519_PUBLIC: &str =
    r#"{"kty":"OKP","crv":"X25519","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"}"#;

#[test]
fn ecdh_es_over_x25519_is_refused_everywhere_it_could_enter() {
    // Parsing a JWK, generating one, and raw key bytes.
    refused_in_fips(Jwk::from_json(X25519_PUBLIC), "X25519");
    refused_in_fips(Jwk::generate_okp(OkpCurve::X25519), "X25519");
    refused_in_fips(
        Jwk::from_okp_private_bytes(OkpCurve::X25519, &[7u8; 32]),
        "X25519",
    );
    if !ENFORCED {
        // Outside the FIPS build, encryption to it works (and the test above is meaningful).
        let k = Jwk::from_json(X25519_PUBLIC).unwrap();
        jwe::encrypt(
            &k,
            JweAlgorithm::EcdhEs,
            ContentEncryption::A256GCM,
            b"x",
            None,
        )
        .unwrap();
    }
    // A token whose ephemeral key is X25519 is refused before any agreement.
    let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
    let token = jwe::encrypt(
        &ec.to_public().unwrap(),
        JweAlgorithm::EcdhEs,
        ContentEncryption::A256GCM,
        b"approved",
        None,
    )
    .unwrap();
    let out = jwe::decrypt(
        &ec,
        JweAlgorithm::EcdhEs,
        ContentEncryption::A256GCM,
        &token,
    );
    assert_eq!(out.unwrap().plaintext, b"approved");
}

#[test]
fn refused_algorithms_fail_at_generation_encryption_and_decryption() {
    for (enc, alg) in [
        (ContentEncryption::A256GCM, JweAlgorithm::A192KW),
        (ContentEncryption::A256GCM, JweAlgorithm::A256GCMKW),
        (ContentEncryption::A256GCM, JweAlgorithm::EcdhEsA192KW),
        (ContentEncryption::A192GCM, JweAlgorithm::A256KW),
    ] {
        let ka = KeyAlgorithm::Jwe { enc, alg };
        let what = if policy::allows(alg.name()) {
            enc.name()
        } else {
            alg.name()
        };
        refused_in_fips(policy::check_key_algorithm(ka), what);
        refused_in_fips(Jwk::generate_for(ka), what);
        // A key made for an approved sibling cannot be used with the refused pair either.
        let key = match alg {
            JweAlgorithm::EcdhEsA192KW => Jwk::generate_ec(EcCurve::P384).unwrap(),
            _ => Jwk::generate_oct(alg.kek_len().unwrap_or(32)).unwrap(),
        };
        let public = key.to_public().unwrap_or_else(|_| key.clone());
        refused_in_fips(jwe::encrypt(&public, alg, enc, b"x", None), what);
        // Decryption refuses before any key management: a well-formed token for the pair.
        let header = format!(r#"{{"alg":"{alg}","enc":"{enc}"}}"#);
        let token = [
            b64::encode(header.as_bytes()),
            b64::encode(&[1u8; 40]),
            b64::encode(&vec![2u8; enc.iv_len()]),
            b64::encode(b"ciphertext"),
            b64::encode(&vec![3u8; enc.tag_len()]),
        ]
        .join(".");
        let e = jwe::decrypt(&key, alg, enc, &token).unwrap_err();
        if ENFORCED {
            assert!(matches!(e, JoseError::NotFipsApproved { .. }), "{e:?}");
        }
    }
}

#[test]
fn approved_signatures_work_in_every_build() {
    let hs = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::HS384)).unwrap();
    let token = jws::sign(&hs, JwsAlgorithm::HS384, b"p", None).unwrap();
    jws::verify(&hs, JwsAlgorithm::HS384, &token).unwrap();
    let es = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::ES384)).unwrap();
    let token = jws::sign(&es, JwsAlgorithm::ES384, b"p", None).unwrap();
    jws::verify(&es.to_public().unwrap(), JwsAlgorithm::ES384, &token).unwrap();
    // Ed25519 is an approved service of the module (FIPS 186-5): signed and verified.
    let ed = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::EdDSA)).unwrap();
    let token = jws::sign(&ed, JwsAlgorithm::EdDSA, b"p", None).unwrap();
    jws::verify(&ed.to_public().unwrap(), JwsAlgorithm::EdDSA, &token).unwrap();
}

#[test]
fn every_approved_pair_round_trips_with_module_chosen_ivs() {
    let mut pairs = 0;
    for &enc in ContentEncryption::ALL {
        for &alg in JweAlgorithm::ALL {
            let ka = KeyAlgorithm::Jwe { enc, alg };
            if policy::check_key_algorithm(ka).is_err() || alg.rsa_bits().is_some_and(|b| b > 2048)
            {
                continue;
            }
            let key = Jwk::generate_for(ka).unwrap();
            let public = key.to_public().unwrap_or_else(|_| key.clone());
            let a = jwe::encrypt(&public, alg, enc, b"payload", None).unwrap();
            let b = jwe::encrypt(&public, alg, enc, b"payload", None).unwrap();
            // Fresh IVs every time (in the FIPS build the module draws them for AES-GCM).
            assert_ne!(a.split('.').nth(2), b.split('.').nth(2), "{ka}");
            assert_eq!(
                jwe::decrypt(&key, alg, enc, &a).unwrap().plaintext,
                b"payload"
            );
            pairs += 1;
        }
    }
    assert!(pairs >= if ENFORCED { 5 * 7 } else { 6 * 12 }, "{pairs}");
}
