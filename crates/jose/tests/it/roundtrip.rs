//! Round trips for every algorithm and the defensive checks of the compact and JSON forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::OnceLock;

use cryptoutil_jose::jwe::{self, Recipient};
use cryptoutil_jose::jwk::JwkSet;
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JoseError, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, OkpCurve,
    b64, jws, policy,
};
use serde_json::{Map, Value, json};

fn rsa(bits: usize) -> &'static Jwk {
    static K2048: OnceLock<Jwk> = OnceLock::new();
    static K3072: OnceLock<Jwk> = OnceLock::new();
    static K4096: OnceLock<Jwk> = OnceLock::new();
    let cell = match bits {
        2048 => &K2048,
        3072 => &K3072,
        _ => &K4096,
    };
    cell.get_or_init(|| Jwk::generate_rsa(bits).unwrap())
}

fn jws_key(alg: JwsAlgorithm) -> Jwk {
    match alg.rsa_bits() {
        Some(bits) => rsa(bits).clone(),
        None => Jwk::generate_for(KeyAlgorithm::Jws(alg)).unwrap(),
    }
}

fn extra() -> Map<String, Value> {
    let Value::Object(m) =
        json!({"kid": "k-1", "typ": "JWT", "context": {"tenant": "t1"}, "iat": 1700000000})
    else {
        unreachable!()
    };
    m
}

#[test]
fn jws_round_trip_every_algorithm() {
    for &alg in JwsAlgorithm::ALL {
        let key = jws_key(alg);
        for payload in [&b""[..], b"hello", &[0xffu8; 1000][..]] {
            let token = jws::sign(&key, alg, payload, Some(&extra())).unwrap();
            let pubkey = if key.kty() == "oct" {
                key.clone()
            } else {
                key.to_public().unwrap()
            };
            let v = jws::verify(&pubkey, alg, &token).unwrap();
            assert_eq!(v.payload, payload);
            assert_eq!(v.header.kid(), Some("k-1"));
            assert_eq!(v.header.get("context"), Some(&json!({"tenant": "t1"})));
            // Tamper with the payload.
            let parts: Vec<&str> = token.split('.').collect();
            let forged = format!("{}.{}.{}", parts[0], b64::encode(b"other"), parts[2]);
            assert_eq!(
                jws::verify(&pubkey, alg, &forged).unwrap_err(),
                JoseError::InvalidSignature,
                "{alg}"
            );
        }
    }
}

#[test]
fn jws_rejects_alg_confusion_and_none() {
    let key = Jwk::generate_oct(32).unwrap();
    let token = jws::sign(&key, JwsAlgorithm::HS256, b"x", None).unwrap();
    assert!(matches!(
        jws::verify(&key, JwsAlgorithm::HS512, &token),
        Err(JoseError::AlgorithmMismatch { .. }) | Err(JoseError::InvalidKey(_))
    ));
    let key64 = Jwk::generate_oct(64).unwrap();
    let t = jws::sign(&key64, JwsAlgorithm::HS256, b"x", None).unwrap();
    assert!(matches!(
        jws::verify(&key64, JwsAlgorithm::HS512, &t),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    // alg=none token.
    let none = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none"}"#),
        b64::encode(b"x")
    );
    assert!(matches!(
        jws::verify(&key, JwsAlgorithm::HS256, &none),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    // Duplicate alg in the header.
    let dup = format!(
        "{}.{}.AAAA",
        b64::encode(br#"{"alg":"HS256","alg":"none"}"#),
        b64::encode(b"x")
    );
    assert!(matches!(
        jws::verify(&key, JwsAlgorithm::HS256, &dup),
        Err(JoseError::DuplicateMember(_))
    ));
    // crit naming an unknown extension.
    let mut h = Map::new();
    h.insert("crit".into(), json!(["exp"]));
    assert!(jws::sign(&key, JwsAlgorithm::HS256, b"x", Some(&h)).is_err());
    // Wrong key type, and key alg pinning.
    let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
    assert!(matches!(
        jws::verify(&ec, JwsAlgorithm::HS256, &token),
        Err(JoseError::KeyMismatch(_))
    ));
    let mut pinned = Jwk::generate_for(KeyAlgorithm::Jws(JwsAlgorithm::ES256)).unwrap();
    assert!(jws::sign(&pinned, JwsAlgorithm::ES384, b"x", None).is_err());
    pinned.set_alg(None);
    assert!(matches!(
        jws::sign(&pinned, JwsAlgorithm::ES384, b"x", None),
        Err(JoseError::KeyMismatch(_))
    ));
    // Structure.
    for bad in ["", "a.b", "a.b.c.d", "..", "e30.e30.", "e30..AAAA"] {
        assert!(
            jws::verify(&key, JwsAlgorithm::HS256, bad).is_err(),
            "{bad}"
        );
    }
    // Padding in the signature.
    assert!(jws::verify(&key, JwsAlgorithm::HS256, &format!("{token}=")).is_err());
}

fn jwe_key(alg: JweAlgorithm, enc: ContentEncryption, curve: Option<EcCurve>) -> Jwk {
    if let Some(bits) = alg.rsa_bits() {
        return rsa(bits).clone();
    }
    if alg.is_ecdh() {
        return match curve {
            Some(c) => Jwk::generate_ec(c).unwrap(),
            None => Jwk::generate_okp(OkpCurve::X25519).unwrap(),
        };
    }
    Jwk::generate_for(KeyAlgorithm::Jwe { enc, alg }).unwrap()
}

#[test]
fn jwe_round_trip_every_enc_alg_pair() {
    for &enc in ContentEncryption::ALL {
        for &alg in JweAlgorithm::ALL {
            let curves: Vec<Option<EcCurve>> = if alg.is_ecdh() {
                vec![
                    Some(EcCurve::P256),
                    Some(EcCurve::P384),
                    Some(EcCurve::P521),
                    None,
                ]
            } else {
                vec![Some(EcCurve::P256)]
            };
            for curve in curves {
                // The FIPS build refuses some (crates/jose/tests/it/fips.rs proves how).
                let crv = curve.map_or("X25519", EcCurve::name);
                if ![alg.name(), enc.name(), crv]
                    .iter()
                    .all(|n| policy::allows(n))
                {
                    continue;
                }
                let key = jwe_key(alg, enc, curve);
                let mut h = extra();
                if alg.is_ecdh() {
                    h.insert("apu".into(), b64::encode(b"Alice").into());
                    h.insert("apv".into(), b64::encode(b"Bob").into());
                }
                for pt in [&b""[..], b"secret", &[7u8; 5000][..]] {
                    let token = jwe::encrypt(&key, alg, enc, pt, Some(&h)).unwrap();
                    let d = jwe::decrypt(&key, alg, enc, &token).unwrap();
                    assert_eq!(&d.plaintext[..], pt, "{enc}/{alg}");
                    assert_eq!(d.header.get("context"), Some(&json!({"tenant": "t1"})));
                    // Flip a ciphertext bit.
                    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
                    let mut ct = b64::decode(parts[3].as_bytes(), "ct").unwrap();
                    if ct.is_empty() {
                        ct.push(0);
                    } else {
                        ct[0] ^= 1;
                    }
                    parts[3] = b64::encode(&ct);
                    let e = jwe::decrypt(&key, alg, enc, &parts.join(".")).unwrap_err();
                    assert_eq!(e, JoseError::DecryptionFailed, "{enc}/{alg}");
                    // Wrong expected algorithms.
                    let other_enc = if enc == ContentEncryption::A256GCM {
                        ContentEncryption::A128GCM
                    } else {
                        ContentEncryption::A256GCM
                    };
                    assert!(jwe::decrypt(&key, alg, other_enc, &token).is_err());
                }
                // Public key encrypts, private decrypts.
                if key.kty() != "oct" {
                    let public = key.to_public().unwrap();
                    let token = jwe::encrypt(&public, alg, enc, b"pub", None).unwrap();
                    assert_eq!(
                        &jwe::decrypt(&key, alg, enc, &token).unwrap().plaintext[..],
                        b"pub"
                    );
                    assert!(jwe::decrypt(&public, alg, enc, &token).is_err());
                }
            }
        }
    }
}

#[test]
fn jwe_rejects_zip_crit_and_bad_lengths() {
    let key = Jwk::generate_oct(32).unwrap();
    let (alg, enc) = (JweAlgorithm::A256KW, ContentEncryption::A256GCM);
    let token = jwe::encrypt(&key, alg, enc, b"x", None).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let with_header = |h: &str| {
        let mut p = parts.clone();
        let hb = b64::encode(h.as_bytes());
        p[0] = &hb;
        jwe::decrypt(&key, alg, enc, &p.join("."))
    };
    assert_eq!(
        with_header(r#"{"alg":"A256KW","enc":"A256GCM","zip":"DEF"}"#).unwrap_err(),
        JoseError::UnsupportedZip
    );
    assert!(matches!(
        with_header(r#"{"alg":"A256KW","enc":"A256GCM","crit":["x"],"x":1}"#),
        Err(JoseError::Crit(_))
    ));
    assert!(matches!(
        with_header(r#"{"alg":"A256KW","enc":"A256GCM","crit":[]}"#),
        Err(JoseError::Crit(_))
    ));
    assert!(matches!(
        with_header(r#"{"alg":"A256KW","enc":"A256GCM","enc":"A128GCM"}"#),
        Err(JoseError::DuplicateMember(_))
    ));
    assert!(matches!(
        with_header(r#"{"alg":"RSA1_5","enc":"A256GCM"}"#),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    // Wrong IV and tag lengths.
    let mut p = parts.clone();
    p[2] = "AAAAAAAAAAAAAAAAAAAAAA";
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &p.join(".")),
        Err(JoseError::Malformed(_))
    ));
    let mut p = parts.clone();
    p[4] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &p.join(".")),
        Err(JoseError::Malformed(_))
    ));
    // Too large.
    let huge = "a".repeat(cryptoutil_jose::limits::MAX_COMPACT_LEN + 1);
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &huge),
        Err(JoseError::TooLarge { .. })
    ));
    // Reserved header names from the caller.
    let mut h = Map::new();
    h.insert("zip".into(), "DEF".into());
    assert!(jwe::encrypt(&key, alg, enc, b"x", Some(&h)).is_err());
    // Wrong key size for the algorithm.
    assert!(matches!(
        jwe::encrypt(&key, JweAlgorithm::A128KW, enc, b"x", None),
        Err(JoseError::KeyMismatch(_))
    ));
    assert!(matches!(
        jwe::encrypt(
            &key,
            JweAlgorithm::Dir,
            ContentEncryption::A128GCM,
            b"x",
            None
        ),
        Err(JoseError::KeyMismatch(_))
    ));
}

#[test]
fn ecdh_rejects_invalid_epk() {
    let key = Jwk::generate_ec(EcCurve::P256).unwrap();
    let (alg, enc) = (JweAlgorithm::EcdhEs, ContentEncryption::A128GCM);
    let token = jwe::encrypt(&key, alg, enc, b"x", None).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let h =
        cryptoutil_jose::Header::parse(&b64::decode(parts[0].as_bytes(), "h").unwrap()).unwrap();
    let mut m = h.into_members();
    // Point not on the curve.
    m.insert(
        "epk".into(),
        json!({"kty":"EC","crv":"P-256","x": b64::encode(&[1u8;32]),"y": b64::encode(&[2u8;32])}),
    );
    let hb = b64::encode(Value::Object(m.clone()).to_string().as_bytes());
    let forged = [hb.as_str(), parts[1], parts[2], parts[3], parts[4]].join(".");
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &forged),
        Err(JoseError::InvalidHeader(_))
    ));
    // Curve mismatch.
    let other = Jwk::generate_ec(EcCurve::P384)
        .unwrap()
        .to_public()
        .unwrap();
    m.insert("epk".into(), other.to_value(false));
    let hb = b64::encode(Value::Object(m).to_string().as_bytes());
    let forged = [hb.as_str(), parts[1], parts[2], parts[3], parts[4]].join(".");
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &forged),
        Err(JoseError::InvalidHeader(_))
    ));
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "X25519 and ECDH-ES+A192KW are refused in the FIPS build"
)]
fn jwe_json_several_recipients() {
    let mut k1 = Jwk::generate_oct(32).unwrap();
    k1.set_kid(Some("unseal-1".into()));
    let mut k2 = Jwk::generate_ec(EcCurve::P384).unwrap();
    k2.set_kid(Some("unseal-2".into()));
    let mut k3 = rsa(2048).clone();
    k3.set_kid(Some("unseal-3".into()));
    let k4 = Jwk::generate_okp(OkpCurve::X25519).unwrap();
    let recipients = [
        Recipient {
            key: &k1,
            alg: JweAlgorithm::A256KW,
            header: None,
        },
        Recipient {
            key: &k2,
            alg: JweAlgorithm::EcdhEsA192KW,
            header: None,
        },
        Recipient {
            key: &k3,
            alg: JweAlgorithm::RsaOaep256,
            header: None,
        },
        Recipient {
            key: &k4,
            alg: JweAlgorithm::EcdhEsA256KW,
            header: None,
        },
    ];
    for enc in [ContentEncryption::A256GCM, ContentEncryption::A256CbcHs512] {
        let mut protected = extra();
        protected.remove("kid");
        let json = jwe::encrypt_json(
            &recipients,
            enc,
            b"root key",
            Some(&protected),
            Some(b"aad"),
        )
        .unwrap();
        for r in &recipients {
            let d = jwe::decrypt_json(r.key, r.alg, enc, &json).unwrap();
            assert_eq!(&d.plaintext[..], b"root key");
            assert_eq!(d.header.get("context"), Some(&json!({"tenant": "t1"})));
        }
        // A key that is not a recipient.
        let stranger = Jwk::generate_oct(32).unwrap();
        assert!(jwe::decrypt_json(&stranger, JweAlgorithm::A256KW, enc, &json).is_err());
        // Tampered aad.
        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["aad"] = b64::encode(b"AAD").into();
        assert_eq!(
            jwe::decrypt_json(&k1, JweAlgorithm::A256KW, enc, &v.to_string()).unwrap_err(),
            JoseError::DecryptionFailed
        );
        // Header conflict between protected and per-recipient headers.
        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["recipients"][0]["header"]["enc"] = "A256GCM".into();
        assert!(matches!(
            jwe::decrypt_json(&k1, JweAlgorithm::A256KW, enc, &v.to_string()),
            Err(JoseError::HeaderConflict(_))
        ));
    }
    // dir cannot be shared.
    let d1 = Jwk::generate_oct(32).unwrap();
    let bad = [
        Recipient {
            key: &d1,
            alg: JweAlgorithm::Dir,
            header: None,
        },
        Recipient {
            key: &k1,
            alg: JweAlgorithm::A256KW,
            header: None,
        },
    ];
    assert!(jwe::encrypt_json(&bad, ContentEncryption::A256GCM, b"x", None, None).is_err());
    // One dir recipient is fine (flattened-equivalent).
    let json = jwe::encrypt_json(&bad[..1], ContentEncryption::A256GCM, b"x", None, None).unwrap();
    assert_eq!(
        &jwe::decrypt_json(&d1, JweAlgorithm::Dir, ContentEncryption::A256GCM, &json)
            .unwrap()
            .plaintext[..],
        b"x"
    );
}

#[test]
fn jwk_set_and_debug_hide_secrets() {
    let mut k = Jwk::generate_ec(EcCurve::P521).unwrap();
    k.set_kid(Some("a".into()));
    let d = k.to_value(true)["d"].as_str().unwrap().to_owned();
    assert!(!format!("{k:?}").contains(&d));
    assert!(!k.to_json(false).contains(&d));
    let set = JwkSet { keys: vec![k] };
    let back = JwkSet::from_json(&set.to_json(true)).unwrap();
    assert!(back.find("a").unwrap().is_private());
    let public = JwkSet::from_json(&set.to_json(false)).unwrap();
    assert!(!public.find("a").unwrap().is_private());
    let oct = Jwk::generate_oct(32).unwrap();
    let k = oct.to_value(true)["k"].as_str().unwrap().to_owned();
    assert!(!oct.to_json(false).contains(&k));
    assert!(!format!("{oct:?}").contains(&k));
    let rsa = rsa(2048);
    let dbg = format!("{rsa:?}");
    assert!(!dbg.contains(rsa.to_value(true)["d"].as_str().unwrap()));
}

#[test]
fn rsa_generation_every_size() {
    for bits in [2048, 3072, 4096] {
        let k = rsa(bits);
        let json = k.to_json(true);
        let back = Jwk::from_json(&json).unwrap();
        assert_eq!(back.thumbprint(), k.thumbprint());
    }
}

#[test]
fn keys_and_results_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Jwk>();
    assert_send_sync::<JwkSet>();
    assert_send_sync::<jwe::Decrypted>();
    assert_send_sync::<jws::Verified>();
    assert_send_sync::<JoseError>();
    // A key shared across threads keeps working (caches are filled concurrently).
    let key = std::sync::Arc::new(Jwk::generate_oct(32).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let key = key.clone();
            std::thread::spawn(move || {
                let t = jwe::encrypt(
                    &key,
                    JweAlgorithm::Dir,
                    ContentEncryption::A256GCM,
                    &[i; 10],
                    None,
                )
                .unwrap();
                let s = jws::sign(&key, JwsAlgorithm::HS256, &[i; 10], None).unwrap();
                (t, s)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (t, s) = h.join().unwrap();
        let d = jwe::decrypt(&key, JweAlgorithm::Dir, ContentEncryption::A256GCM, &t).unwrap();
        assert_eq!(d.plaintext, vec![i as u8; 10]);
        assert_eq!(
            jws::verify(&key, JwsAlgorithm::HS256, &s).unwrap().payload,
            vec![i as u8; 10]
        );
    }
}

#[test]
fn key_usage_restrictions() {
    let mut k = Jwk::generate_ec(EcCurve::P256).unwrap();
    k.set_key_ops(Some(vec!["verify".into()]));
    assert!(matches!(
        jws::sign(&k, JwsAlgorithm::ES256, b"x", None),
        Err(JoseError::KeyMismatch(_))
    ));
    k.set_key_ops(Some(vec!["sign".into(), "verify".into()]));
    let t = jws::sign(&k, JwsAlgorithm::ES256, b"x", None).unwrap();
    jws::verify(&k, JwsAlgorithm::ES256, &t).unwrap();
    k.set_key_use(Some("enc".into()));
    assert!(matches!(
        jws::verify(&k, JwsAlgorithm::ES256, &t),
        Err(JoseError::KeyMismatch(_))
    ));
    assert!(matches!(
        jwe::encrypt(
            &k,
            JweAlgorithm::EcdhEs,
            ContentEncryption::A128GCM,
            b"x",
            None
        ),
        Err(JoseError::KeyMismatch(_))
    ));
    k.set_key_ops(None);
    let t = jwe::encrypt(
        &k,
        JweAlgorithm::EcdhEs,
        ContentEncryption::A128GCM,
        b"x",
        None,
    )
    .unwrap();
    jwe::decrypt(&k, JweAlgorithm::EcdhEs, ContentEncryption::A128GCM, &t).unwrap();
    // A JWK parsed with key_ops enforces them too; duplicates are rejected.
    let json =
        r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","key_ops":["decrypt"]}"#;
    let k = Jwk::from_json(json).unwrap();
    assert!(
        jwe::encrypt(
            &k,
            JweAlgorithm::Dir,
            ContentEncryption::A256GCM,
            b"x",
            None
        )
        .is_err()
    );
    assert!(Jwk::from_json(r#"{"kty":"oct","k":"AAAA","key_ops":["sign","sign"]}"#).is_err());
}

#[test]
#[cfg_attr(feature = "fips", ignore = "AES-GCMKW is refused in the FIPS build")]
fn jwe_flattened_json_and_gcmkw_header_checks() {
    let key = Jwk::generate_oct(16).unwrap();
    let (alg, enc) = (JweAlgorithm::A128GCMKW, ContentEncryption::A128CbcHs256);
    let token = jwe::encrypt(&key, alg, enc, b"flat", None).unwrap();
    let p: Vec<&str> = token.split('.').collect();
    let flat = json!({"protected": p[0], "encrypted_key": p[1], "iv": p[2], "ciphertext": p[3], "tag": p[4]});
    assert_eq!(
        &jwe::decrypt_json(&key, alg, enc, &flat.to_string())
            .unwrap()
            .plaintext[..],
        b"flat"
    );
    // crit outside the protected header.
    let mut bad = flat.clone();
    bad["header"] = json!({"crit": ["x"], "x": 1});
    assert!(matches!(
        jwe::decrypt_json(&key, alg, enc, &bad.to_string()),
        Err(JoseError::Crit(_))
    ));
    // Both general and flattened members.
    let mut bad = flat.clone();
    bad["recipients"] = json!([]);
    assert!(jwe::decrypt_json(&key, alg, enc, &bad.to_string()).is_err());
    // GCMKW iv/tag header of the wrong size.
    let h = cryptoutil_jose::Header::parse(&b64::decode(p[0].as_bytes(), "h").unwrap()).unwrap();
    for (name, value) in [
        ("iv", b64::encode(&[0u8; 16])),
        ("tag", b64::encode(&[0u8; 12])),
        ("iv", "AA=".into()),
    ] {
        let mut m = h.clone().into_members();
        m.insert(name.into(), value.into());
        let hb = b64::encode(Value::Object(m).to_string().as_bytes());
        let forged = [hb.as_str(), p[1], p[2], p[3], p[4]].join(".");
        assert!(jwe::decrypt(&key, alg, enc, &forged).is_err(), "{name}");
    }
    // dir with a non-empty encrypted key, and a key-wrap alg with an empty one.
    let dkey = Jwk::generate_oct(16).unwrap();
    let t = jwe::encrypt(
        &dkey,
        JweAlgorithm::Dir,
        ContentEncryption::A128GCM,
        b"x",
        None,
    )
    .unwrap();
    let q: Vec<&str> = t.split('.').collect();
    let forged = [q[0], "AAAAAAAAAAAAAAAAAAAAAA", q[2], q[3], q[4]].join(".");
    assert!(matches!(
        jwe::decrypt(
            &dkey,
            JweAlgorithm::Dir,
            ContentEncryption::A128GCM,
            &forged
        ),
        Err(JoseError::Malformed(_))
    ));
    let forged = [p[0], "", p[2], p[3], p[4]].join(".");
    assert!(matches!(
        jwe::decrypt(&key, alg, enc, &forged),
        Err(JoseError::Malformed(_))
    ));
}

#[test]
fn key_algorithm_serde_and_generation_defaults() {
    let a: KeyAlgorithm = serde_json::from_str("\"A256GCM/A256KW\"").unwrap();
    assert_eq!(a, KeyAlgorithm::DEFAULT);
    assert_eq!(serde_json::to_string(&a).unwrap(), "\"A256GCM/A256KW\"");
    assert!(serde_json::from_str::<KeyAlgorithm>("\"A256GCM/RSA-OAEP\"").is_err());
    let k = Jwk::generate_for(KeyAlgorithm::parse("A128CBC-HS256/dir").unwrap()).unwrap();
    assert_eq!(
        (k.kty(), k.alg(), k.key_use()),
        ("oct", Some("dir"), Some("enc"))
    );
    assert_eq!(
        b64::decode(k.to_value(true)["k"].as_str().unwrap().as_bytes(), "k")
            .unwrap()
            .len(),
        32
    );
    let k = Jwk::generate_for(KeyAlgorithm::parse("A256GCM/ECDH-ES+A256KW").unwrap()).unwrap();
    assert_eq!(k.to_value(false)["crv"], "P-521");
    let k = Jwk::generate_for(KeyAlgorithm::parse("EdDSA").unwrap()).unwrap();
    assert_eq!(k.to_value(false)["crv"], "Ed25519");
    // Oversized JWK input.
    let big = format!(
        r#"{{"kty":"oct","k":"{}"}}"#,
        "A".repeat(cryptoutil_jose::limits::MAX_JWK_LEN)
    );
    assert!(matches!(
        Jwk::from_json(&big),
        Err(JoseError::TooLarge { .. })
    ));
}
