//! Post-quantum JOSE: `AKP` keys (RFC 9964), ML-DSA JWS, ML-KEM JWE (draft-ietf-jose-pqc-kem-05),
//! against published vectors (`tests/data/pq_vectors.json`: NIST ACVP ML-DSA keyGen, Wycheproof
//! ML-DSA verify and ML-KEM decapsulation, the ML-DSA draft's JOSE examples), plus round trips
//! and every malformed input the issue names.

use cryptoutil_jose::akp::AkpParams;
use cryptoutil_jose::jwe::alg::{ml_kem_decapsulate, ml_kem_kdf};
use cryptoutil_jose::{
    ContentEncryption, JoseError, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, b64, jwe, jws,
};
use serde_json::{Map, Value, json};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../data/pq_vectors.json")).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn akp(alg: &str, public: &[u8], private: Option<(&str, &[u8])>) -> Value {
    let mut m = Map::new();
    m.insert("kty".into(), "AKP".into());
    m.insert("alg".into(), alg.into());
    m.insert("pub".into(), b64::encode(public).into());
    if let Some((name, bytes)) = private {
        m.insert(name.into(), b64::encode(bytes).into());
    }
    Value::Object(m)
}

const ML_DSA: [JwsAlgorithm; 3] = [
    JwsAlgorithm::MlDsa44,
    JwsAlgorithm::MlDsa65,
    JwsAlgorithm::MlDsa87,
];
const ML_KEM: [JweAlgorithm; 4] = [
    JweAlgorithm::MlKem768,
    JweAlgorithm::MlKem1024,
    JweAlgorithm::MlKem768A192KW,
    JweAlgorithm::MlKem1024A256KW,
];

#[test]
fn ml_dsa_draft_jose_examples_verify_and_thumbprint() {
    for ex in vectors()["akp_examples"].as_array().unwrap() {
        let alg: JwsAlgorithm = ex["alg"].as_str().unwrap().parse().unwrap();
        // The example's private JWK: the all-zero seed must expand to its `pub`.
        let private = Jwk::from_value(ex["jwk"].clone()).unwrap();
        assert!(private.is_private());
        assert_eq!(
            private.to_value(true)["priv"],
            ex["jwk"]["priv"],
            "{alg}: priv (seed) kept"
        );
        // kid = RFC 7638 thumbprint over alg, kty, pub (RFC 9964).
        assert_eq!(private.thumbprint(), ex["jwk"]["kid"].as_str().unwrap());
        let public = private.to_public().unwrap();
        assert!(public.to_value(false).get("priv").is_none());
        let verified = jws::verify(&public, alg, ex["jws"].as_str().unwrap()).unwrap();
        assert_eq!(verified.header.alg(), Some(alg.name()));
        // And the signature does not verify under another parameter set's name.
        let other = ML_DSA.iter().copied().find(|a| *a != alg).unwrap();
        assert!(jws::verify(&public, other, ex["jws"].as_str().unwrap()).is_err());
    }
}

#[test]
fn acvp_ml_dsa_keygen_seed_to_public_key() {
    let v = vectors();
    let cases = v["mldsa_keygen"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for c in cases {
        let set = c["set"].as_str().unwrap();
        let seed = hex(c["seed"].as_str().unwrap());
        let pk = hex(c["pk"].as_str().unwrap());
        let key = Jwk::from_value(akp(set, &pk, Some(("priv", &seed))))
            .unwrap_or_else(|e| panic!("tcId {}: {e}", c["tcId"]));
        assert!(key.is_private());
        // One bit of pk changed: the seed no longer matches.
        let mut bad = pk.clone();
        bad[100] ^= 1;
        assert!(matches!(
            Jwk::from_value(akp(set, &bad, Some(("priv", &seed)))),
            Err(JoseError::InvalidKey(_))
        ));
    }
}

#[test]
fn wycheproof_ml_dsa_verify() {
    let v = vectors();
    let cases = v["mldsa_verify"].as_array().unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for c in cases {
        let set = c["set"].as_str().unwrap();
        let alg: JwsAlgorithm = set.parse().unwrap();
        let pk = hex(c["pk"].as_str().unwrap());
        let msg = hex(c["msg"].as_str().unwrap());
        let sig = hex(c["sig"].as_str().unwrap());
        let expect = c["valid"].as_bool().unwrap();
        let key = match Jwk::from_value(akp(set, &pk, None)) {
            Ok(k) => k,
            Err(e) => {
                assert!(!expect, "tcId {}: valid key refused: {e}", c["tcId"]);
                invalid += 1;
                continue;
            }
        };
        let got = jws::verify_raw(&key, alg, &msg, &sig).is_ok();
        assert_eq!(got, expect, "{set} tcId {} {}", c["tcId"], c["comment"]);
        if expect {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid >= 3 && invalid >= 5,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn wycheproof_ml_kem_decapsulation_with_the_expanded_key() {
    let v = vectors();
    for c in v["mlkem_decaps"].as_array().unwrap() {
        let set = c["set"].as_str().unwrap();
        let ek = hex(c["ek"].as_str().unwrap());
        let dk = hex(c["dk"].as_str().unwrap());
        let ct = hex(c["c"].as_str().unwrap());
        let expect = c["valid"].as_bool().unwrap();
        let what = format!("{set} tcId {} {}", c["tcId"], c["comment"]);
        let key = match Jwk::from_value(akp(set, &ek, Some(("dk", &dk)))) {
            Ok(k) => k,
            Err(e) => {
                assert!(!expect, "{what}: refused: {e}");
                assert!(matches!(e, JoseError::InvalidKey(_)), "{what}: {e}");
                continue;
            }
        };
        match ml_kem_decapsulate(&key, &ct) {
            Ok(k) => {
                assert!(expect, "{what}: decapsulated");
                assert_eq!(*k, hex(c["K"].as_str().unwrap()), "{what}");
            }
            Err(e) => assert!(!expect, "{what}: {e}"),
        }
    }
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "ML-KEM JWE is refused in the FIPS build (its KMAC256 runs outside the module)"
)]
fn ml_kem_keygen_vectors_load_and_work() {
    let v = vectors();
    for c in v["mlkem_keygen"].as_array().unwrap() {
        let set = c["set"].as_str().unwrap();
        let ek = hex(c["ek"].as_str().unwrap());
        let dk = hex(c["dk"].as_str().unwrap());
        let key = Jwk::from_value(akp(set, &ek, Some(("dk", &dk)))).unwrap();
        let alg: JweAlgorithm = set.parse().unwrap();
        let token = jwe::encrypt(
            &key.to_public().unwrap(),
            alg,
            ContentEncryption::A256GCM,
            b"kat",
            None,
        )
        .unwrap();
        let out = jwe::decrypt(&key, alg, ContentEncryption::A256GCM, &token).unwrap();
        assert_eq!(out.plaintext, b"kat");
        // A flipped bit in the embedded ek or in its hash: the dk is refused.
        let pke = ek.len() - 32;
        for at in [pke + 5, pke + ek.len() + 3] {
            let mut bad = dk.clone();
            bad[at] ^= 1;
            assert!(Jwk::from_value(akp(set, &ek, Some(("dk", &bad)))).is_err());
        }
    }
}

#[test]
fn ml_kem_kdf_matches_pycryptodome_kmac256() {
    // Expected values computed with pycryptodome's KMAC256 (an independent implementation) for
    // K = 00 01 .. 1f and X = be32(len(id)) || id || be32(bits) as draft-ietf-jose-pqc-kem-05 §5.1.
    let ss: Vec<u8> = (0u8..32).collect();
    for (id, len, want) in [
        (
            "A256GCM",
            32,
            "5894d265a067febd11c45cd7277d2a94598c03d4b2d0389ed45402c023e714ed",
        ),
        (
            "ML-KEM-768+A192KW",
            24,
            "3ca895ec8c52f6c90562f607de97f1dd01e5cb9da6c23525",
        ),
        (
            "ML-KEM-1024+A256KW",
            32,
            "632f698ba49e81c9e8d5725a50dbd968dbd9c5c28625443ac8954208806f2695",
        ),
    ] {
        assert_eq!(*ml_kem_kdf(&ss, id, len).unwrap(), hex(want), "{id}");
    }
}

#[test]
fn ml_dsa_round_trip_and_key_forms() {
    for alg in ML_DSA {
        let key = Jwk::generate_for(KeyAlgorithm::Jws(alg)).unwrap();
        assert_eq!(key.kty(), "AKP");
        let private = key.to_value(true);
        assert_eq!(private["alg"], alg.name());
        assert_eq!(
            b64::decode(private["priv"].as_str().unwrap().as_bytes(), "priv")
                .unwrap()
                .len(),
            32
        );
        // Private JWK round trip (seed → same key).
        let back = Jwk::from_value(private.clone()).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        let public = key.to_public().unwrap();
        assert!(!public.is_private());
        assert!(public.to_value(false).get("priv").is_none());
        let token = jws::sign(&key, alg, b"{\"pq\":true}", None).unwrap();
        let out = jws::verify(&public, alg, &token).unwrap();
        assert_eq!(out.payload, b"{\"pq\":true}");
        // Tampered payload and signature fail.
        let parts: Vec<&str> = token.split('.').collect();
        let bad_payload = format!("{}.{}.{}", parts[0], b64::encode(b"{}"), parts[2]);
        assert_eq!(
            jws::verify(&public, alg, &bad_payload),
            Err(JoseError::InvalidSignature)
        );
        let mut sig = b64::decode(parts[2].as_bytes(), "sig").unwrap();
        sig[7] ^= 1;
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
        assert_eq!(
            jws::verify(&public, alg, &bad_sig),
            Err(JoseError::InvalidSignature)
        );
        sig.pop();
        let short = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
        assert!(jws::verify(&public, alg, &short).is_err());
        // Public key cannot sign; secrets never in Debug.
        assert!(jws::sign(&public, alg, b"x", None).is_err());
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(private["priv"].as_str().unwrap()));
    }
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "ML-KEM JWE is refused in the FIPS build (its KMAC256 runs outside the module)"
)]
fn ml_kem_round_trip_every_alg_and_enc() {
    for alg in ML_KEM {
        let key = Jwk::generate_for(KeyAlgorithm::Jwe {
            enc: ContentEncryption::A256GCM,
            alg,
        })
        .unwrap();
        assert_eq!(key.kty(), "AKP");
        let private = key.to_value(true);
        assert!(private.get("priv").is_none(), "no seed form: dk instead");
        let dk_len = b64::decode(private["dk"].as_str().unwrap().as_bytes(), "dk")
            .unwrap()
            .len();
        let params = AkpParams::from_alg(alg.name()).unwrap().0;
        assert_eq!(dk_len, params.dk_len());
        let back = Jwk::from_value(private).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        let public = key.to_public().unwrap();
        for enc in ContentEncryption::ALL.iter().copied() {
            let token = jwe::encrypt(&public, alg, enc, b"post-quantum", None).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let header: Value =
                serde_json::from_slice(&b64::decode(parts[0].as_bytes(), "h").unwrap()).unwrap();
            let ek = b64::decode(header["ek"].as_str().unwrap().as_bytes(), "ek").unwrap();
            assert_eq!(
                ek.len(),
                params.output_len(),
                "{alg} ek is the KEM ciphertext"
            );
            // Direct: no JWE Encrypted Key; key wrap: the wrapped CEK.
            if alg.is_direct() {
                assert!(parts[1].is_empty());
            } else {
                let wrapped = b64::decode(parts[1].as_bytes(), "ek").unwrap();
                assert_eq!(wrapped.len(), enc.key_len() + 8);
            }
            let out = jwe::decrypt(&key, alg, enc, &token).unwrap();
            assert_eq!(out.plaintext, b"post-quantum", "{alg} {enc}");
            assert!(jwe::decrypt(&public, alg, enc, &token).is_err());
        }
    }
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "ML-KEM JWE is refused in the FIPS build (its KMAC256 runs outside the module)"
)]
fn ml_kem_json_serialization_and_several_recipients() {
    let kw = Jwk::generate_akp("ML-KEM-1024+A256KW").unwrap();
    let other = Jwk::generate_for(KeyAlgorithm::DEFAULT).unwrap();
    let recipients = [
        jwe::Recipient {
            key: &kw.to_public().unwrap(),
            alg: JweAlgorithm::MlKem1024A256KW,
            header: None,
        },
        jwe::Recipient {
            key: &other,
            alg: JweAlgorithm::A256KW,
            header: None,
        },
    ];
    let enc = ContentEncryption::A128CbcHs256;
    let json = jwe::encrypt_json(&recipients, enc, b"two", None, Some(b"aad")).unwrap();
    let top: Value = serde_json::from_str(&json).unwrap();
    // ek goes into the ML-KEM recipient's own header.
    assert!(top["recipients"][0]["header"]["ek"].is_string());
    assert!(top["recipients"][1]["header"].get("ek").is_none());
    let a = jwe::decrypt_json(&kw, JweAlgorithm::MlKem1024A256KW, enc, &json).unwrap();
    let b = jwe::decrypt_json(&other, JweAlgorithm::A256KW, enc, &json).unwrap();
    assert_eq!(a.plaintext, b"two");
    assert_eq!(b.plaintext, b"two");
    // Direct ML-KEM cannot be one of several recipients.
    let direct = Jwk::generate_akp("ML-KEM-768").unwrap();
    let pd = direct.to_public().unwrap();
    let two = [
        jwe::Recipient {
            key: &pd,
            alg: JweAlgorithm::MlKem768,
            header: None,
        },
        jwe::Recipient {
            key: &other,
            alg: JweAlgorithm::A256KW,
            header: None,
        },
    ];
    assert!(jwe::encrypt_json(&two, enc, b"x", None, None).is_err());
}

fn set_header(token: &str, f: impl FnOnce(&mut Map<String, Value>)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut h: Map<String, Value> =
        serde_json::from_slice(&b64::decode(parts[0].as_bytes(), "h").unwrap()).unwrap();
    f(&mut h);
    let mut out = vec![b64::encode(Value::Object(h).to_string().as_bytes())];
    out.extend(parts[1..].iter().map(|s| (*s).to_owned()));
    out.join(".")
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "ML-KEM JWE is refused in the FIPS build (its KMAC256 runs outside the module)"
)]
fn malformed_akp_keys_and_tokens_are_clear_errors() {
    let dsa = Jwk::generate_akp("ML-DSA-65").unwrap();
    let v = dsa.to_value(true);
    let public = b64::decode(v["pub"].as_str().unwrap().as_bytes(), "pub").unwrap();
    let seed = b64::decode(v["priv"].as_str().unwrap().as_bytes(), "priv").unwrap();
    let parse = |value: Value| Jwk::from_value(value);
    // Wrong pub / priv lengths.
    assert!(matches!(
        parse(akp("ML-DSA-65", &public[1..], None)),
        Err(JoseError::InvalidKey(_))
    ));
    assert!(matches!(
        parse(akp("ML-DSA-65", &public, Some(("priv", &seed[1..])))),
        Err(JoseError::InvalidKey(_))
    ));
    // Key of one parameter set labelled as another.
    assert!(matches!(
        parse(akp("ML-DSA-44", &public, None)),
        Err(JoseError::InvalidKey(_))
    ));
    assert!(matches!(
        parse(akp("ML-DSA-87", &public, Some(("priv", &seed)))),
        Err(JoseError::InvalidKey(_))
    ));
    // Unknown or missing alg; an ML-DSA key with an ML-KEM private member.
    assert!(parse(akp("ML-DSA-99", &public, None)).is_err());
    assert!(parse(akp("ES256", &public, None)).is_err());
    let mut no_alg = akp("ML-DSA-65", &public, None);
    no_alg.as_object_mut().unwrap().remove("alg");
    assert!(matches!(parse(no_alg), Err(JoseError::InvalidKey(_))));
    assert!(parse(akp("ML-DSA-65", &public, Some(("dk", &[0u8; 2400])))).is_err());
    assert!(parse(json!({"kty": "AKP", "alg": "ML-DSA-65", "pub": 5})).is_err());
    // ML-KEM with a seed `priv`: refused, saying what to use instead.
    let kem = Jwk::generate_akp("ML-KEM-768").unwrap();
    let kv = kem.to_value(false);
    let ek = b64::decode(kv["pub"].as_str().unwrap().as_bytes(), "pub").unwrap();
    match parse(akp("ML-KEM-768", &ek, Some(("priv", &[7u8; 64])))) {
        Err(JoseError::InvalidKey(m)) => assert!(m.contains("dk"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(parse(akp("ML-KEM-1024", &ek, None)).is_err());
    // Private parts where only a public key is allowed.
    assert!(matches!(
        Jwk::public_from_json(&dsa.to_json(true)),
        Err(JoseError::KeyMismatch(_))
    ));
    assert!(matches!(
        Jwk::public_from_json(&kem.to_json(true)),
        Err(JoseError::KeyMismatch(_))
    ));
    assert!(Jwk::public_from_json(&dsa.to_json(false)).is_ok());

    // alg that does not match the key.
    let token = jws::sign(&dsa, JwsAlgorithm::MlDsa65, b"p", None).unwrap();
    assert!(matches!(
        jws::verify(&dsa, JwsAlgorithm::MlDsa44, &token),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    assert!(jws::sign(&dsa, JwsAlgorithm::MlDsa87, b"p", None).is_err());
    assert!(jws::sign(&dsa, JwsAlgorithm::ES256, b"p", None).is_err());
    assert!(jws::verify_raw(&dsa, JwsAlgorithm::MlDsa44, b"p", &[0; 2420]).is_err());
    assert!(
        jwe::encrypt(
            &dsa,
            JweAlgorithm::MlKem768,
            ContentEncryption::A256GCM,
            b"x",
            None
        )
        .is_err()
    );

    // JWE: the ek header missing, of the wrong length, not base64url, or tampered.
    let enc = ContentEncryption::A256GCM;
    let alg = JweAlgorithm::MlKem768;
    let token = jwe::encrypt(&kem.to_public().unwrap(), alg, enc, b"secret", None).unwrap();
    let missing = set_header(&token, |h| {
        h.remove("ek");
    });
    assert_eq!(
        jwe::decrypt(&kem, alg, enc, &missing).unwrap_err(),
        JoseError::InvalidHeader("ek".into())
    );
    let short = set_header(&token, |h| {
        h.insert("ek".into(), b64::encode(&[1u8; 1087]).into());
    });
    assert_eq!(
        jwe::decrypt(&kem, alg, enc, &short).unwrap_err(),
        JoseError::InvalidHeader("ek".into())
    );
    let not_b64 = set_header(&token, |h| {
        h.insert("ek".into(), "!".repeat(1451).into());
    });
    assert!(jwe::decrypt(&kem, alg, enc, &not_b64).is_err());
    let tampered = set_header(&token, |h| {
        let mut ct = b64::decode(h["ek"].as_str().unwrap().as_bytes(), "ek").unwrap();
        ct[10] ^= 1;
        h.insert("ek".into(), b64::encode(&ct).into());
    });
    // The protected header changed, so the tag fails; ML-KEM's implicit rejection gives a wrong
    // key, never an error that tells the two apart.
    assert_eq!(
        jwe::decrypt(&kem, alg, enc, &tampered).unwrap_err(),
        JoseError::DecryptionFailed
    );
    // A direct-mode key refuses a key-wrap token and the other way round.
    assert!(matches!(
        jwe::decrypt(&kem, JweAlgorithm::MlKem768A192KW, enc, &token),
        Err(JoseError::AlgorithmMismatch { .. })
    ));
    let kw = Jwk::generate_akp("ML-KEM-768+A192KW").unwrap();
    assert!(jwe::decrypt(&kw, JweAlgorithm::MlKem768A192KW, enc, &token).is_err());
    // A direct token with an encrypted key is malformed.
    let parts: Vec<&str> = token.split('.').collect();
    let with_key = format!(
        "{}.AAAAAAAAAAA.{}.{}.{}",
        parts[0], parts[2], parts[3], parts[4]
    );
    assert!(jwe::decrypt(&kem, alg, enc, &with_key).is_err());
    // A caller may not set ek.
    let mut extra = Map::new();
    extra.insert("ek".into(), "AAAA".into());
    assert!(jwe::encrypt(&kem, alg, enc, b"x", Some(&extra)).is_err());
}

#[test]
#[cfg_attr(
    feature = "fips",
    ignore = "ML-KEM JWE is refused in the FIPS build (its KMAC256 runs outside the module)"
)]
fn elastic_key_algorithm_names() {
    for name in [
        "ML-DSA-44",
        "ML-DSA-65",
        "ML-DSA-87",
        "A256GCM/ML-KEM-768",
        "A256GCM/ML-KEM-1024",
        "A256GCM/ML-KEM-768+A192KW",
        "A256GCM/ML-KEM-1024+A256KW",
        "A128CBC-HS256/ML-KEM-768",
    ] {
        let alg = KeyAlgorithm::parse(name).unwrap();
        assert_eq!(alg.to_string(), name);
        let key = Jwk::generate_for(alg).unwrap();
        assert_eq!(key.kty(), "AKP");
    }
    for bad in [
        "ML-DSA",
        "A256GCM/ML-KEM-512",
        "ML-KEM-768",
        "A256GCM/ML-DSA-44",
    ] {
        assert!(
            KeyAlgorithm::parse(bad).is_err()
                || Jwk::generate_for(KeyAlgorithm::parse(bad).unwrap()).is_err(),
            "{bad}"
        );
    }
}

/// ML-KEM JWE works in the default build and is refused, saying why, in the FIPS build (its
/// KMAC256 key derivation is not a service of the module; docs/security.md "FIPS build").
#[test]
fn ml_kem_jwe_follows_the_build_policy() {
    let alg = KeyAlgorithm::parse("A256GCM/ML-KEM-768").unwrap();
    let made = Jwk::generate_for(alg);
    if cryptoutil_jose::policy::ENFORCED {
        let err = made.unwrap_err().to_string();
        assert!(err.contains("FIPS") && err.contains("KMAC256"), "{err}");
    } else {
        let key = made.unwrap();
        let public = key.to_public().unwrap();
        let token = jwe::encrypt(
            &public,
            JweAlgorithm::MlKem768,
            ContentEncryption::A256GCM,
            b"policy",
            None,
        )
        .unwrap();
        let out = jwe::decrypt(
            &key,
            JweAlgorithm::MlKem768,
            ContentEncryption::A256GCM,
            &token,
        )
        .unwrap();
        assert_eq!(out.plaintext, b"policy");
    }
}
