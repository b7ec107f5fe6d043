//! Fuzzing entry points (feature `fuzzing`): the functions the `fuzz/` targets call, and that
//! this crate's `fuzz_corpus` test replays every stored corpus and regression input through.
//!
//! Each takes untrusted bytes, drives every parser and check a hostile token or key reaches, and
//! asserts cheap invariants (round trips, tampering detected, public and private forms agree).
//! A failed invariant panics on purpose: that is how libFuzzer reports it. Nothing here is
//! reached by the product's own code paths; the keys are fixed test keys (RFC 7520 and constant
//! bytes) so that corpus tokens made with them decrypt and verify.
#![allow(clippy::panic, clippy::expect_used)]

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::header::Header;
use crate::jwa::{ContentEncryption, EcCurve, JweAlgorithm, JwsAlgorithm, OkpCurve};
use crate::jwk::{Jwk, JwkSet, KeyMaterial};
use crate::{b64, jwe, jws};

/// The fixed keys, one per algorithm family and size.
struct Keys {
    rsa: Jwk,
    p256: Jwk,
    p384: Jwk,
    p521: Jwk,
    ed25519: Jwk,
    /// `None` in the FIPS build, which refuses X25519 keys.
    x25519: Option<Jwk>,
    /// `oct` keys of 16, 24, 32, 48 and 64 bytes; the RFC 7520 ones where it has one.
    oct: Vec<Jwk>,
    hs256: Jwk,
    a128kw: Jwk,
    a256gcmkw: Jwk,
    dir_a128gcm: Jwk,
    /// `AKP` ML-DSA-44/65/87 keys from fixed seeds.
    ml_dsa: Vec<Jwk>,
    /// `AKP` ML-KEM keys, one per `alg` (an AKP key's `alg` is the one it is used with), from the
    /// FIPS 203 KeyGen vectors of `tests/data/pq_vectors.json`.
    ml_kem: Vec<(JweAlgorithm, Jwk)>,
}

/// An AKP JWK from raw parts (`pub`, and `priv` or `dk`).
fn akp_key(alg: &str, public: &[u8], private: (&str, &[u8])) -> Jwk {
    let mut m = Map::new();
    m.insert("kty".into(), "AKP".into());
    m.insert("alg".into(), alg.into());
    m.insert("pub".into(), b64::encode(public).into());
    m.insert(private.0.into(), b64::encode(private.1).into());
    Jwk::from_map(&m).expect("AKP key")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A key from the RFC 7520 vectors with `use`, `alg` and `kid` cleared (the harness picks keys
/// by algorithm, not by label).
fn rfc_key(data: &Value, path: &[&str]) -> Jwk {
    let mut v = data;
    for p in path {
        v = &v[*p];
    }
    let mut k = Jwk::from_value(v.clone()).expect("RFC 7520 key");
    k.set_key_use(None);
    k.set_alg(None);
    k.set_kid(None);
    k
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let data: Value = serde_json::from_str(include_str!("../tests/data/rfc7520.json"))
            .expect("RFC 7520 data");
        let fixed = |len: usize, seed: u8| -> Vec<u8> {
            (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
        };
        let oct = [16usize, 24, 32, 48, 64]
            .iter()
            .map(|&len| Jwk::from_oct_bytes(&fixed(len, 0x40)).expect("oct key"))
            .collect();
        let pq: Value = serde_json::from_str(include_str!("../tests/data/pq_vectors.json"))
            .expect("PQ vectors");
        let ml_kem = |i: usize, alg: JweAlgorithm| {
            let v = &pq["mlkem_keygen"][i];
            let ek = hex(v["ek"].as_str().expect("ek"));
            let dk = hex(v["dk"].as_str().expect("dk"));
            (alg, akp_key(alg.name(), &ek, ("dk", &dk)))
        };
        let ml_dsa = [
            ("ML-DSA-44", &aws_lc_rs::signature::ML_DSA_44_SIGNING),
            ("ML-DSA-65", &aws_lc_rs::signature::ML_DSA_65_SIGNING),
            ("ML-DSA-87", &aws_lc_rs::signature::ML_DSA_87_SIGNING),
        ]
        .iter()
        .map(|(alg, signing)| {
            use aws_lc_rs::signature::KeyPair as _;
            let seed = fixed(32, 0x33);
            let pair =
                aws_lc_rs::signature::PqdsaKeyPair::from_seed(signing, &seed).expect("ML-DSA seed");
            akp_key(alg, pair.public_key().as_ref(), ("priv", &seed))
        })
        .collect();
        Keys {
            ml_dsa,
            ml_kem: vec![
                ml_kem(0, JweAlgorithm::MlKem768),
                ml_kem(0, JweAlgorithm::MlKem768A192KW),
                ml_kem(1, JweAlgorithm::MlKem1024),
                ml_kem(1, JweAlgorithm::MlKem1024A256KW),
            ],
            rsa: rfc_key(&data, &["rsa_key"]),
            p256: rfc_key(&data, &["jwe_5_5", "key"]),
            p384: rfc_key(&data, &["jwe_5_4", "key"]),
            p521: rfc_key(&data, &["ec_p521_key"]),
            ed25519: Jwk::from_okp_private_bytes(OkpCurve::Ed25519, &fixed(32, 0x11))
                .expect("Ed25519 key"),
            x25519: Jwk::from_okp_private_bytes(OkpCurve::X25519, &fixed(32, 0x22)).ok(),
            oct,
            hs256: rfc_key(&data, &["hmac_key"]),
            a128kw: rfc_key(&data, &["jwe_5_8", "key"]),
            a256gcmkw: rfc_key(&data, &["jwe_5_7", "key"]),
            dir_a128gcm: rfc_key(&data, &["jwe_5_6", "key"]),
        }
    })
}

impl Keys {
    fn oct_of(&self, len: usize) -> &Jwk {
        let i = match len {
            16 => 0,
            24 => 1,
            32 => 2,
            48 => 3,
            _ => 4,
        };
        &self.oct[i]
    }

    fn ec(&self, crv: EcCurve) -> &Jwk {
        match crv {
            EcCurve::P256 => &self.p256,
            EcCurve::P384 => &self.p384,
            EcCurve::P521 => &self.p521,
        }
    }

    /// The key a verifier configured for `alg` would hold.
    fn for_jws(&self, alg: JwsAlgorithm) -> &Jwk {
        match alg {
            JwsAlgorithm::HS256 => &self.hs256,
            JwsAlgorithm::HS384 => self.oct_of(48),
            JwsAlgorithm::HS512 => self.oct_of(64),
            JwsAlgorithm::EdDSA => &self.ed25519,
            JwsAlgorithm::MlDsa44 => &self.ml_dsa[0],
            JwsAlgorithm::MlDsa65 => &self.ml_dsa[1],
            JwsAlgorithm::MlDsa87 => &self.ml_dsa[2],
            a => match a.ec_curve() {
                Some(crv) => self.ec(crv),
                None => &self.rsa,
            },
        }
    }

    /// The key a recipient configured for `alg`/`enc` would hold; for ECDH-ES the curve is the
    /// one the header's `epk` names (a recipient has one key per curve it accepts).
    fn for_jwe(
        &self,
        alg: JweAlgorithm,
        enc: ContentEncryption,
        header: &Map<String, Value>,
    ) -> &Jwk {
        if alg.is_ecdh() {
            let crv = header
                .get("epk")
                .and_then(|e| e.get("crv"))
                .and_then(Value::as_str)
                .unwrap_or("P-256");
            return match crv {
                "X25519" => self
                    .x25519
                    .as_ref()
                    .unwrap_or_else(|| self.ec(EcCurve::P256)),
                c => self.ec(c.parse().unwrap_or(EcCurve::P256)),
            };
        }
        if let Some((_, key)) = self.ml_kem.iter().find(|(a, _)| *a == alg) {
            return key;
        }
        if alg.is_direct() {
            return match enc {
                ContentEncryption::A128GCM => &self.dir_a128gcm,
                e => self.oct_of(e.key_len()),
            };
        }
        match (alg, alg.kek_len()) {
            (JweAlgorithm::A128KW, _) => &self.a128kw,
            (JweAlgorithm::A256GCMKW, _) => &self.a256gcmkw,
            (_, Some(len)) => self.oct_of(len),
            (_, None) => &self.rsa,
        }
    }
}

/// Replaces the first character of `segment` (a base64url part of `token` starting at `at`)
/// with another base64url character, so the signed or authenticated bytes change.
fn tamper(token: &str, at: usize) -> Option<String> {
    let c = *token.as_bytes().get(at)?;
    if c == b'.' {
        return None;
    }
    let replacement = if c == b'A' { 'B' } else { 'A' };
    let mut out = String::with_capacity(token.len());
    out.push_str(&token[..at]);
    out.push(replacement);
    out.push_str(&token[at + 1..]);
    Some(out)
}

/// JWS and JWE compact parsing, verification and decryption with the fixed keys.
///
/// Invariants: a token that verifies stops verifying when one character of its signing input
/// or signature changes, and never verifies under another algorithm; a token that decrypts stops
/// decrypting when its tag changes; what verifies or decrypts survives a sign/encrypt round trip
/// with the same key.
pub fn jose_compact(data: &[u8]) {
    // The header parser on raw bytes (what a decoded protected header reaches).
    let _ = Header::parse(data);
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    if let Ok(header) = jws::peek_header(token)
        && let Some(Ok(alg)) = header.alg().map(str::parse::<JwsAlgorithm>)
    {
        let key = keys.for_jws(alg);
        if let Ok(verified) = jws::verify(key, alg, token) {
            assert_eq!(
                verified.header, header,
                "verified header differs from peeked"
            );
            // Tampering with the payload's first character or the signature's is detected.
            let payload_at = token.find('.').map_or(0, |i| i + 1);
            let sig_at = token.rfind('.').map_or(0, |i| i + 1);
            for at in [0, payload_at, sig_at] {
                if let Some(bad) = tamper(token, at) {
                    assert!(
                        jws::verify(key, alg, &bad).is_err(),
                        "tampered JWS verified"
                    );
                }
            }
            // The public form verifies what the private form does.
            if !matches!(key.material(), KeyMaterial::Oct(_)) {
                let public = key.to_public().expect("public form");
                assert!(
                    jws::verify(&public, alg, token).is_ok(),
                    "public key disagrees"
                );
            }
            // Another algorithm never accepts it.
            for other in JwsAlgorithm::ALL
                .iter()
                .copied()
                .filter(|a| *a != alg)
                .take(2)
            {
                assert!(jws::verify(keys.for_jws(other), other, token).is_err());
            }
            let again = jws::sign(key, alg, &verified.payload, None).expect("re-sign");
            let round = jws::verify(key, alg, &again).expect("re-signed JWS verifies");
            assert_eq!(round.payload, verified.payload);
        }
    }
    if let Ok(header) = jwe::peek_header(token)
        && let (Some(Ok(alg)), Some(Ok(enc))) = (
            header.alg().map(str::parse::<JweAlgorithm>),
            header.enc().map(str::parse::<ContentEncryption>),
        )
    {
        let key = keys.for_jwe(alg, enc, header.members());
        if let Ok(decrypted) = jwe::decrypt(key, alg, enc, token) {
            assert_eq!(
                decrypted.header, header,
                "decrypted header differs from peeked"
            );
            let tag_at = token.rfind('.').map_or(0, |i| i + 1);
            if let Some(bad) = tamper(token, tag_at) {
                assert!(
                    jwe::decrypt(key, alg, enc, &bad).is_err(),
                    "tampered JWE decrypted"
                );
            }
            let again =
                jwe::encrypt(key, alg, enc, &decrypted.plaintext, None).expect("re-encrypt");
            let round = jwe::decrypt(key, alg, enc, &again).expect("re-encrypted JWE decrypts");
            assert_eq!(round.plaintext, decrypted.plaintext);
        }
    }
}

/// The `alg`/`enc` a JWE JSON serialization announces (protected header, shared unprotected
/// header, or the first recipient's header), for choosing the recipient's key.
fn announced(
    top: &Map<String, Value>,
) -> Option<(JweAlgorithm, ContentEncryption, Map<String, Value>)> {
    let mut joint = Map::new();
    if let Some(Value::String(p)) = top.get("protected")
        && let Ok(bytes) = b64::decode(p.as_bytes(), "protected")
        && let Ok(Value::Object(h)) = serde_json::from_slice::<Value>(&bytes)
    {
        joint.extend(h);
    }
    let first = match top.get("recipients") {
        Some(Value::Array(r)) => r.first().and_then(|r| r.get("header")),
        _ => top.get("header"),
    };
    for h in [top.get("unprotected"), first].into_iter().flatten() {
        if let Value::Object(h) = h {
            joint.extend(h.clone());
        }
    }
    let alg = joint.get("alg")?.as_str()?.parse().ok()?;
    let enc = joint.get("enc")?.as_str()?.parse().ok()?;
    Some((alg, enc, joint))
}

/// The same serialization in the other syntax: flattened → general with one recipient, and
/// general with one recipient → flattened.
fn other_syntax(top: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out = top.clone();
    match out.remove("recipients") {
        Some(Value::Array(mut r)) if r.len() == 1 => {
            let Value::Object(recipient) = r.remove(0) else {
                return None;
            };
            out.extend(recipient);
        }
        Some(_) => return None,
        None => {
            let mut recipient = Map::new();
            for name in ["header", "encrypted_key"] {
                if let Some(v) = out.remove(name) {
                    recipient.insert(name.to_owned(), v);
                }
            }
            out.insert(
                "recipients".into(),
                Value::Array(vec![Value::Object(recipient)]),
            );
        }
    }
    Some(out)
}

/// JWE JSON serialization (general and flattened) parsing and decryption with the fixed keys.
///
/// Invariants: what decrypts also decrypts, to the same plaintext, in the other syntax (general
/// with one recipient ↔ flattened) and after an `encrypt_json` round trip; a changed tag fails.
/// (JWS JSON serialization is not implemented by this crate: it is rejected by design.)
pub fn jose_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    let top = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(top)) => top,
        // Still run the parser: it must reject what is not a JSON object.
        _ => {
            let _ = jwe::decrypt_json(
                &keys.a128kw,
                JweAlgorithm::A128KW,
                ContentEncryption::A128GCM,
                text,
            );
            return;
        }
    };
    let (alg, enc, joint) =
        announced(&top).unwrap_or((JweAlgorithm::A128KW, ContentEncryption::A128GCM, Map::new()));
    let key = keys.for_jwe(alg, enc, &joint);
    let Ok(decrypted) = jwe::decrypt_json(key, alg, enc, text) else {
        return;
    };
    if let Some(other) = other_syntax(&top) {
        let other = Value::Object(other).to_string();
        let again = jwe::decrypt_json(key, alg, enc, &other).expect("other syntax decrypts");
        assert_eq!(again.plaintext, decrypted.plaintext);
    }
    if let Some(Value::String(tag)) = top.get("tag") {
        let mut bad = top.clone();
        let changed = if tag.starts_with('A') { "B" } else { "A" };
        bad.insert(
            "tag".into(),
            Value::String(format!("{changed}{}", tag.get(1..).unwrap_or(""))),
        );
        assert!(
            jwe::decrypt_json(key, alg, enc, &Value::Object(bad).to_string()).is_err(),
            "tampered JWE JSON decrypted"
        );
    }
    let recipient = jwe::Recipient {
        key,
        alg,
        header: None,
    };
    let again =
        jwe::encrypt_json(&[recipient], enc, &decrypted.plaintext, None, None).expect("re-encrypt");
    let round = jwe::decrypt_json(key, alg, enc, &again).expect("re-encrypted JSON decrypts");
    assert_eq!(round.plaintext, decrypted.plaintext);
}

/// Checks one parsed key: serialization round trips, the public form, the thumbprint, and one
/// real operation with it.
fn check_key(key: &Jwk) {
    let private = key.to_value(true);
    let reparsed = Jwk::from_value(private.clone()).expect("serialized JWK parses");
    assert_eq!(
        reparsed.to_value(true),
        private,
        "JWK round trip changed it"
    );
    assert_eq!(reparsed.thumbprint(), key.thumbprint());
    let public = match key.material() {
        KeyMaterial::Oct(_) => {
            assert!(key.to_public().is_err(), "oct keys have no public form");
            assert!(
                !key.to_value(false)
                    .as_object()
                    .is_some_and(|m| m.contains_key("k"))
            );
            None
        }
        _ => {
            let public = key.to_public().expect("public form");
            assert!(!public.is_private(), "public form is private");
            assert_eq!(public.thumbprint(), key.thumbprint(), "thumbprints differ");
            assert_eq!(public.to_value(false), key.to_value(false));
            Some(public)
        }
    };
    // Usable: sign and verify, or agree, with what was parsed.
    let alg = match key.material() {
        KeyMaterial::Oct(_) => Some(JwsAlgorithm::HS256),
        KeyMaterial::Rsa(_) => Some(JwsAlgorithm::PS256),
        KeyMaterial::Ec(k) => JwsAlgorithm::ALL
            .iter()
            .copied()
            .find(|a| a.ec_curve() == Some(k.curve())),
        KeyMaterial::Okp(k) if k.curve() == OkpCurve::Ed25519 => Some(JwsAlgorithm::EdDSA),
        KeyMaterial::Okp(_) => None,
        KeyMaterial::Akp(k) => k.alg().parse::<JwsAlgorithm>().ok(),
    };
    let mut bare = reparsed;
    bare.set_alg(None);
    bare.set_key_use(None);
    bare.set_key_ops(None);
    if let Some(alg) = alg
        && (key.is_private() || matches!(key.material(), KeyMaterial::Oct(_)))
        && let Ok(token) = jws::sign(&bare, alg, b"fuzz", None)
    {
        let verifier = public.as_ref().unwrap_or(&bare);
        let mut verifier = verifier.clone();
        verifier.set_alg(None);
        verifier.set_key_use(None);
        verifier.set_key_ops(None);
        let ok = jws::verify(&verifier, alg, &token).expect("own signature verifies");
        assert_eq!(ok.payload, b"fuzz");
    }
    if key.is_private()
        && let Some(public) = &public
        && matches!(key.material(), KeyMaterial::Ec(_) | KeyMaterial::Okp(_))
        && alg != Some(JwsAlgorithm::EdDSA)
    {
        assert!(
            crate::jwe::alg::ecdh_shared_secret(key, public).is_ok(),
            "ECDH with itself"
        );
    }
    // An ML-KEM key: the public form encrypts, the private form decrypts.
    if let KeyMaterial::Akp(k) = key.material()
        && let Ok(alg) = k.alg().parse::<JweAlgorithm>()
        && crate::policy::allows(alg.name())
        && key.is_private()
        && let Some(public) = &public
    {
        let token = jwe::encrypt(public, alg, ContentEncryption::A256GCM, b"fuzz", None)
            .expect("ML-KEM encrypt");
        let out =
            jwe::decrypt(key, alg, ContentEncryption::A256GCM, &token).expect("ML-KEM decrypt");
        assert_eq!(out.plaintext, b"fuzz");
    }
}

/// JWK and JWK Set parsing (every `kty`/`crv`, private and public) and conversion to usable keys.
///
/// Invariants: a parsed key serializes and parses back to the same members and thumbprint; its
/// public form drops every private member and keeps the thumbprint; a private key signs (or
/// agrees) and its public form verifies; a parsed set round-trips with the same keys in order.
pub fn jwk(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = Jwk::from_json(text) {
        check_key(&key);
    }
    if let Ok(set) = JwkSet::from_json(text) {
        let again = JwkSet::from_json(&set.to_json(true)).expect("serialized set parses");
        assert_eq!(again.keys.len(), set.keys.len());
        for (a, b) in set.keys.iter().zip(&again.keys) {
            assert_eq!(a.thumbprint(), b.thumbprint());
            if let Some(kid) = a.kid() {
                assert!(set.find(kid).is_some_and(|k| k.kid() == Some(kid)));
            }
        }
        if let Some(first) = set.keys.first() {
            check_key(first);
        }
    }
}

/// Seed inputs made with the fixed keys, so that the fuzzers start from tokens that verify or
/// decrypt: `(target, input)` for a JWS per algorithm, a compact JWE per `alg` and per `enc`,
/// and general and flattened JSON per `alg` (`tests/it/fuzz_corpus.rs` writes them with
/// `--ignored`).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let keys = keys();
    let mut out = Vec::new();
    let mut kid = Map::new();
    kid.insert("kid".into(), "fuzz".into());
    for &alg in JwsAlgorithm::ALL {
        let token =
            jws::sign(keys.for_jws(alg), alg, b"{\"sub\":\"fuzz\"}", Some(&kid)).expect("seed JWS");
        out.push(("jose_compact", token.into_bytes()));
    }
    let pairs = JweAlgorithm::ALL
        .iter()
        .map(|&a| (a, ContentEncryption::A256GCM))
        .chain(
            ContentEncryption::ALL
                .iter()
                .map(|&e| (JweAlgorithm::Dir, e)),
        )
        .chain(
            ContentEncryption::ALL
                .iter()
                .map(|&e| (JweAlgorithm::A128KW, e)),
        );
    for (alg, enc) in pairs {
        let crv_header = |crv: &str| {
            let mut h = Map::new();
            h.insert("epk".into(), serde_json::json!({ "crv": crv }));
            h
        };
        let curves: &[&str] = if alg.is_ecdh() {
            &["P-256", "P-384", "P-521", "X25519"]
        } else {
            &["P-256"]
        };
        for crv in curves {
            let key = keys.for_jwe(alg, enc, &crv_header(crv));
            let token = jwe::encrypt(key, alg, enc, b"fuzz plaintext", None).expect("seed JWE");
            out.push(("jose_compact", token.into_bytes()));
            let recipient = jwe::Recipient {
                key,
                alg,
                header: None,
            };
            let general = jwe::encrypt_json(
                &[recipient],
                enc,
                b"fuzz plaintext",
                Some(&kid),
                Some(b"aad"),
            )
            .expect("seed JWE JSON");
            if let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&general)
                && let Some(flat) = other_syntax(&top)
            {
                out.push(("jose_json", Value::Object(flat).to_string().into_bytes()));
            }
            out.push(("jose_json", general.into_bytes()));
        }
    }
    for key in [
        &keys.rsa,
        &keys.p256,
        &keys.p384,
        &keys.p521,
        &keys.ed25519,
        &keys.hs256,
        &keys.ml_dsa[0],
        &keys.ml_dsa[1],
        &keys.ml_dsa[2],
        &keys.ml_kem[0].1,
        &keys.ml_kem[3].1,
    ]
    .into_iter()
    .chain(keys.x25519.as_ref())
    {
        out.push(("jwk", key.to_json(true).as_bytes().to_vec()));
        if let Ok(public) = key.to_public() {
            out.push(("jwk", public.to_json(false).as_bytes().to_vec()));
        }
    }
    out
}

/// The repository's `fuzz/` directory.
pub fn fuzz_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs every stored input of `target` (`fuzz/corpus/<target>/` and
/// `fuzz/regressions/<target>/`) through `run`, the fuzz target's entry point, naming each on
/// stderr first (so a panic shows which one). Returns how many ran; panics when there are none
/// (a corpus that went missing must not pass silently). The `fuzz_corpus` tests of this crate,
/// the KMS and Identity call it.
pub fn replay_corpus(target: &str, run: fn(&[u8])) -> usize {
    let mut paths = Vec::new();
    for kind in ["corpus", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) {
            paths.extend(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no stored inputs for fuzz target {target}"
    );
    for path in &paths {
        eprintln!("{}", path.display());
        let bytes = std::fs::read(path).expect("readable corpus file");
        run(&bytes);
    }
    paths.len()
}
