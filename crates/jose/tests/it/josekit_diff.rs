//! Differential tests against josekit (an independent, OpenSSL-based implementation), in both
//! directions, for every algorithm of SPEC §3.3: we sign → josekit verifies, josekit signs → we
//! verify; we encrypt → josekit decrypts, josekit encrypts → we decrypt; plus the JWE general
//! JSON serialization with several recipients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::OnceLock;

use cryptoutil_jose::jwe::{self, Recipient};
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, OkpCurve, jws,
};
use josekit::jwe as kjwe;
use josekit::jwk::Jwk as KJwk;
use josekit::jws as kjws;
use serde_json::{Map, Value, json};

fn rsa(bits: usize) -> &'static Jwk {
    static K: [OnceLock<Jwk>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = match bits {
        2048 => 0,
        3072 => 1,
        _ => 2,
    };
    K[i].get_or_init(|| Jwk::generate_rsa(bits).unwrap())
}

fn kjwk(k: &Jwk, private: bool) -> KJwk {
    KJwk::from_bytes(k.to_json(private).as_bytes()).unwrap()
}

const PAYLOADS: [&[u8]; 3] = [b"", b"{\"sub\":\"alice\"}", &[0x5a; 3000]];

fn k_sign(alg: JwsAlgorithm, key: &KJwk, payload: &[u8], header: &kjws::JwsHeader) -> String {
    macro_rules! go {
        ($a:expr) => {
            kjws::serialize_compact(payload, header, &$a.signer_from_jwk(key).unwrap()).unwrap()
        };
    }
    match alg {
        JwsAlgorithm::HS256 => go!(kjws::HS256),
        JwsAlgorithm::HS384 => go!(kjws::HS384),
        JwsAlgorithm::HS512 => go!(kjws::HS512),
        JwsAlgorithm::RS256 => go!(kjws::RS256),
        JwsAlgorithm::RS384 => go!(kjws::RS384),
        JwsAlgorithm::RS512 => go!(kjws::RS512),
        JwsAlgorithm::PS256 => go!(kjws::PS256),
        JwsAlgorithm::PS384 => go!(kjws::PS384),
        JwsAlgorithm::PS512 => go!(kjws::PS512),
        JwsAlgorithm::ES256 => go!(kjws::ES256),
        JwsAlgorithm::ES384 => go!(kjws::ES384),
        JwsAlgorithm::ES512 => go!(kjws::ES512),
        JwsAlgorithm::EdDSA => go!(kjws::EdDSA),
        a => panic!("josekit has no {a}"),
    }
}

fn k_verify(alg: JwsAlgorithm, key: &KJwk, token: &str) -> (Vec<u8>, kjws::JwsHeader) {
    macro_rules! go {
        ($a:expr) => {
            kjws::deserialize_compact(token, &$a.verifier_from_jwk(key).unwrap()).unwrap()
        };
    }
    match alg {
        JwsAlgorithm::HS256 => go!(kjws::HS256),
        JwsAlgorithm::HS384 => go!(kjws::HS384),
        JwsAlgorithm::HS512 => go!(kjws::HS512),
        JwsAlgorithm::RS256 => go!(kjws::RS256),
        JwsAlgorithm::RS384 => go!(kjws::RS384),
        JwsAlgorithm::RS512 => go!(kjws::RS512),
        JwsAlgorithm::PS256 => go!(kjws::PS256),
        JwsAlgorithm::PS384 => go!(kjws::PS384),
        JwsAlgorithm::PS512 => go!(kjws::PS512),
        JwsAlgorithm::ES256 => go!(kjws::ES256),
        JwsAlgorithm::ES384 => go!(kjws::ES384),
        JwsAlgorithm::ES512 => go!(kjws::ES512),
        JwsAlgorithm::EdDSA => go!(kjws::EdDSA),
        a => panic!("josekit has no {a}"),
    }
}

#[test]
fn jws_both_directions_every_algorithm() {
    // josekit has no ML-DSA (tests/it/pq.rs and the Python interop cover it).
    for &alg in JwsAlgorithm::ALL.iter().filter(|a| !a.is_ml_dsa()) {
        let mut key = match alg.rsa_bits() {
            Some(bits) => rsa(bits).clone(),
            None => Jwk::generate_for(KeyAlgorithm::Jws(alg)).unwrap(),
        };
        key.set_kid(Some(format!("kid-{alg}")));
        let public = if key.kty() == "oct" {
            key.clone()
        } else {
            key.to_public().unwrap()
        };
        for payload in PAYLOADS {
            // Ours → josekit.
            let mut extra = Map::new();
            extra.insert("kid".into(), format!("kid-{alg}").into());
            extra.insert("typ".into(), "JWT".into());
            let token = jws::sign(&key, alg, payload, Some(&extra)).unwrap();
            let (p, h) = k_verify(alg, &kjwk(&public, key.kty() == "oct"), &token);
            assert_eq!(p, payload, "{alg}");
            assert_eq!(h.key_id(), Some(format!("kid-{alg}").as_str()));

            // josekit → ours.
            let mut header = kjws::JwsHeader::new();
            header.set_token_type("JWT");
            header
                .set_claim("context", Some(json!({"tenant": "t"})))
                .unwrap();
            let token = k_sign(alg, &kjwk(&key, true), payload, &header);
            let v = jws::verify(&public, alg, &token).unwrap();
            assert_eq!(v.payload, payload, "{alg}");
            assert_eq!(v.header.get("context"), Some(&json!({"tenant": "t"})));
        }
    }
}

fn k_encrypter(alg: JweAlgorithm, key: &KJwk) -> Box<dyn kjwe::JweEncrypter> {
    match alg {
        JweAlgorithm::Dir => Box::new(kjwe::Dir.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A128KW => Box::new(kjwe::A128KW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A192KW => Box::new(kjwe::A192KW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A256KW => Box::new(kjwe::A256KW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A128GCMKW => Box::new(kjwe::A128GCMKW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A192GCMKW => Box::new(kjwe::A192GCMKW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A256GCMKW => Box::new(kjwe::A256GCMKW.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep256 => Box::new(kjwe::RSA_OAEP_256.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep384 => Box::new(kjwe::RSA_OAEP_384.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep512 => Box::new(kjwe::RSA_OAEP_512.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::EcdhEs => Box::new(kjwe::ECDH_ES.encrypter_from_jwk(key).unwrap()),
        JweAlgorithm::EcdhEsA128KW => {
            Box::new(kjwe::ECDH_ES_A128KW.encrypter_from_jwk(key).unwrap())
        }
        JweAlgorithm::EcdhEsA192KW => {
            Box::new(kjwe::ECDH_ES_A192KW.encrypter_from_jwk(key).unwrap())
        }
        JweAlgorithm::EcdhEsA256KW => {
            Box::new(kjwe::ECDH_ES_A256KW.encrypter_from_jwk(key).unwrap())
        }
        a => panic!("josekit has no {a}"),
    }
}

fn k_decrypter(alg: JweAlgorithm, key: &KJwk) -> Box<dyn kjwe::JweDecrypter> {
    match alg {
        JweAlgorithm::Dir => Box::new(kjwe::Dir.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A128KW => Box::new(kjwe::A128KW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A192KW => Box::new(kjwe::A192KW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A256KW => Box::new(kjwe::A256KW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A128GCMKW => Box::new(kjwe::A128GCMKW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A192GCMKW => Box::new(kjwe::A192GCMKW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::A256GCMKW => Box::new(kjwe::A256GCMKW.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep256 => Box::new(kjwe::RSA_OAEP_256.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep384 => Box::new(kjwe::RSA_OAEP_384.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::RsaOaep512 => Box::new(kjwe::RSA_OAEP_512.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::EcdhEs => Box::new(kjwe::ECDH_ES.decrypter_from_jwk(key).unwrap()),
        JweAlgorithm::EcdhEsA128KW => {
            Box::new(kjwe::ECDH_ES_A128KW.decrypter_from_jwk(key).unwrap())
        }
        JweAlgorithm::EcdhEsA192KW => {
            Box::new(kjwe::ECDH_ES_A192KW.decrypter_from_jwk(key).unwrap())
        }
        JweAlgorithm::EcdhEsA256KW => {
            Box::new(kjwe::ECDH_ES_A256KW.decrypter_from_jwk(key).unwrap())
        }
        a => panic!("josekit has no {a}"),
    }
}

fn jwe_keys(alg: JweAlgorithm, enc: ContentEncryption) -> Vec<Jwk> {
    if let Some(bits) = alg.rsa_bits() {
        return vec![rsa(bits).clone()];
    }
    if alg.is_ecdh() {
        let mut keys = vec![
            Jwk::generate_ec(EcCurve::P256).unwrap(),
            Jwk::generate_ec(EcCurve::P384).unwrap(),
            Jwk::generate_ec(EcCurve::P521).unwrap(),
        ];
        if cryptoutil_jose::policy::allows("X25519") {
            keys.push(Jwk::generate_okp(OkpCurve::X25519).unwrap()); // refused in the FIPS build
        }
        return keys;
    }
    vec![Jwk::generate_for(KeyAlgorithm::Jwe { enc, alg }).unwrap()]
}

#[test]
fn jwe_both_directions_every_enc_alg_pair() {
    let mut pairs = 0;
    for &enc in ContentEncryption::ALL {
        // josekit has no ML-KEM (tests/it/pq.rs and the Python interop cover it).
        for &alg in JweAlgorithm::ALL.iter().filter(|a| !a.is_ml_kem()) {
            if ![alg.name(), enc.name()]
                .iter()
                .all(|n| cryptoutil_jose::policy::allows(n))
            {
                continue; // refused in the FIPS build
            }
            for key in jwe_keys(alg, enc) {
                let symmetric = key.kty() == "oct";
                let public = if symmetric {
                    key.clone()
                } else {
                    key.to_public().unwrap()
                };
                let kpriv = kjwk(&key, true);
                let kpub = kjwk(&public, symmetric);
                for payload in PAYLOADS {
                    // Ours → josekit.
                    let mut extra = Map::new();
                    extra.insert("kid".into(), "k1".into());
                    extra.insert("context".into(), json!({"elastic_key": "ek-1"}));
                    let token = jwe::encrypt(&public, alg, enc, payload, Some(&extra)).unwrap();
                    let (p, h) = kjwe::deserialize_compact(&token, &*k_decrypter(alg, &kpriv))
                        .unwrap_or_else(|e| {
                            panic!("josekit could not decrypt our {enc}/{alg}: {e}")
                        });
                    assert_eq!(p, payload, "{enc}/{alg}");
                    assert_eq!(h.claim("context"), Some(&json!({"elastic_key": "ek-1"})));

                    // josekit → ours.
                    let mut header = kjwe::JweHeader::new();
                    header.set_content_encryption(enc.name());
                    header.set_key_id("k2");
                    let token =
                        kjwe::serialize_compact(payload, &header, &*k_encrypter(alg, &kpub))
                            .unwrap();
                    let d = jwe::decrypt(&key, alg, enc, &token).unwrap_or_else(|e| {
                        panic!("we could not decrypt josekit's {enc}/{alg}: {e}")
                    });
                    assert_eq!(&d.plaintext[..], payload, "{enc}/{alg}");
                    assert_eq!(d.header.kid(), Some("k2"));
                }
                pairs += 1;
            }
        }
    }
    // FIPS build: 5 enc × (6 algs + 3 ECDH-ES on 3 curves); else 6 × (10 + 4 on 4 curves).
    let all = if cryptoutil_jose::policy::ENFORCED {
        5 * (6 + 3 * 3)
    } else {
        6 * (10 + 4 * 4)
    };
    assert_eq!(pairs, all);
}

#[test]
fn jwe_general_json_both_directions() {
    let k1 = Jwk::generate_oct(32).unwrap();
    let k2 = Jwk::generate_ec(EcCurve::P256).unwrap();
    let k3 = rsa(2048).clone();
    let enc = ContentEncryption::A256GCM;
    let recipients = [
        Recipient {
            key: &k1,
            alg: JweAlgorithm::A256KW,
            header: None,
        },
        Recipient {
            key: &k2,
            alg: JweAlgorithm::EcdhEsA128KW,
            header: None,
        },
        Recipient {
            key: &k3,
            alg: JweAlgorithm::RsaOaep256,
            header: None,
        },
    ];
    // Ours → josekit, each recipient.
    let json = jwe::encrypt_json(
        &recipients,
        enc,
        b"root key material",
        None,
        Some(b"barrier"),
    )
    .unwrap();
    for r in &recipients {
        let (p, _) = kjwe::deserialize_json(&json, &*k_decrypter(r.alg, &kjwk(r.key, true)))
            .unwrap_or_else(|e| panic!("josekit could not decrypt recipient {}: {e}", r.alg));
        assert_eq!(p, b"root key material");
    }
    // josekit → ours.
    let mut shared = kjwe::JweHeaderSet::new();
    shared.set_content_encryption(enc.name(), true);
    let e1 = k_encrypter(JweAlgorithm::A256KW, &kjwk(&k1, true));
    let e2 = k_encrypter(
        JweAlgorithm::EcdhEsA128KW,
        &kjwk(&k2.to_public().unwrap(), false),
    );
    let e3 = k_encrypter(
        JweAlgorithm::RsaOaep256,
        &kjwk(&k3.to_public().unwrap(), false),
    );
    let json = kjwe::serialize_general_json(
        b"root key material",
        Some(&shared),
        &[(None, &*e1), (None, &*e2), (None, &*e3)],
        Some(b"barrier"),
    )
    .unwrap();
    for r in &recipients {
        let d = jwe::decrypt_json(r.key, r.alg, enc, &json)
            .unwrap_or_else(|e| panic!("we could not decrypt josekit's recipient {}: {e}", r.alg));
        assert_eq!(&d.plaintext[..], b"root key material");
    }
    let _: Value = serde_json::from_str(&json).unwrap();
}
