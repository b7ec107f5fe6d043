//! Post-quantum JOSE interop with independent implementations: PyPI `cryptography` (ML-DSA and
//! ML-KEM on OpenSSL) and `pycryptodome` (KMAC256), driven by `interop/python/pq_interop.py`;
//! and npm `@noble/post-quantum` + `@noble/hashes` (pure JavaScript), `interop/node/pq.mjs`,
//! which can load our expanded ML-KEM `dk` and so also decrypts `jwe_own`.
//!
//! ```text
//! python pq_interop.py keys K.json                 # Python's ML-KEM key pairs (seeds kept in K)
//! cargo run -p cryptoutil-jose --example pq_interop -- produce K.json R.json
//! python pq_interop.py check K.json R.json         # Python verifies/decrypts ours
//! python pq_interop.py produce R.json P.json       # Python signs, and encrypts to our keys
//! cargo run -p cryptoutil-jose --example pq_interop -- check R.json P.json
//! ```
//!
//! `R.json` (ours): `{producer, jws: [{id, alg, kid, jwk, jwk_private, token, payload}], jwe:
//! [{id, alg, enc, kid, token, plaintext}], jwe_own: [same, to our own recipients], recipients:
//! [{alg, kid, public, private}]}`. JWS are
//! made like the KMS's (`kid`, `typ`, a `context` member); `jwk` is the public AKP key, and
//! `jwk_private` its private form with the seed, so Python checks seed → public key too. Our JWE
//! go to Python's public keys from `K.json` (`kid` names which). `recipients` are our ML-KEM keys
//! Python encrypts to: the public JWK, and the private one (`dk`) that only we read back.
//! `P.json` (Python's): the same `jws` shape (its JWK with the seed as `priv`), and `jwe` to our
//! `recipients` by `kid`. Every token is checked, and tampered variants (signature, payload,
//! `ek`, tag, encrypted key) must be rejected. Exit code 1 on any mismatch.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use cryptoutil_jose::{
    ContentEncryption, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, b64, jwe, jws,
};
use serde_json::{Map, Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const DSA: [JwsAlgorithm; 3] = [
    JwsAlgorithm::MlDsa44,
    JwsAlgorithm::MlDsa65,
    JwsAlgorithm::MlDsa87,
];
const KEM: [JweAlgorithm; 4] = [
    JweAlgorithm::MlKem768,
    JweAlgorithm::MlKem1024,
    JweAlgorithm::MlKem768A192KW,
    JweAlgorithm::MlKem1024A256KW,
];
const ENCS: [ContentEncryption; 3] = [
    ContentEncryption::A256GCM,
    ContentEncryption::A128GCM,
    ContentEncryption::A128CbcHs256,
];

fn payloads() -> [Vec<u8>; 3] {
    [
        Vec::new(),
        br#"{"sub":"alice","iss":"cryptoutil-kms"}"#.to_vec(),
        (0..3000u32).map(|i| ((i * 131 + 7) & 0xff) as u8).collect(),
    ]
}

fn read(path: &str) -> Res<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn s<'a>(v: &'a Value, name: &str) -> Res<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {name}").into())
}

fn produce(keys_file: &str, out: &str) -> Res<()> {
    let theirs = read(keys_file)?;
    let payloads = payloads();
    let mut jws_out = Vec::new();
    for alg in DSA {
        let mut key = Jwk::generate_for(KeyAlgorithm::Jws(alg))?;
        let kid = format!("rust-{alg}");
        key.set_kid(Some(kid.clone()));
        for (i, payload) in payloads.iter().enumerate() {
            let mut extra = Map::new();
            extra.insert("kid".into(), kid.clone().into());
            extra.insert("typ".into(), "JWT".into());
            extra.insert(
                "context".into(),
                json!({"elastic_key": "ek-1", "tenant": "t1"}),
            );
            let token = jws::sign(&key, alg, payload, Some(&extra))?;
            jws_out.push(json!({
                "id": format!("jws/{alg}/p{i}"), "alg": alg.name(), "kid": kid,
                "jwk": key.to_public()?.to_value(false), "jwk_private": key.to_value(true),
                "token": token, "payload": b64::encode(payload),
            }));
        }
    }
    let mut jwe_out = Vec::new();
    for recipient in theirs["keys"].as_array().ok_or("keys")? {
        let public = Jwk::from_value(recipient["public"].clone())?;
        let alg: JweAlgorithm = s(recipient, "alg")?.parse()?;
        let kid = s(recipient, "kid")?;
        for enc in ENCS {
            for (i, plaintext) in payloads.iter().enumerate() {
                let mut extra = Map::new();
                extra.insert("kid".into(), kid.into());
                let token = jwe::encrypt(&public, alg, enc, plaintext, Some(&extra))?;
                jwe_out.push(json!({
                    "id": format!("jwe/{enc}/{alg}/p{i}"), "alg": alg.name(), "enc": enc.name(),
                    "kid": kid, "token": token, "plaintext": b64::encode(plaintext),
                }));
            }
        }
    }
    let mut recipients = Vec::new();
    let mut jwe_own = Vec::new();
    for alg in KEM {
        let mut key = Jwk::generate_for(KeyAlgorithm::Jwe {
            enc: ContentEncryption::A256GCM,
            alg,
        })?;
        let kid = format!("rust-{alg}");
        key.set_kid(Some(kid.clone()));
        let public = key.to_public()?;
        recipients.push(json!({
            "alg": alg.name(), "kid": kid,
            "public": public.to_value(false), "private": key.to_value(true),
        }));
        // To our own keys, for a checker that can load the expanded `dk` (noble).
        for enc in [ContentEncryption::A256GCM, ContentEncryption::A128GCM] {
            for (i, plaintext) in payloads.iter().enumerate() {
                let mut extra = Map::new();
                extra.insert("kid".into(), kid.clone().into());
                let token = jwe::encrypt(&public, alg, enc, plaintext, Some(&extra))?;
                jwe_own.push(json!({
                    "id": format!("jwe-own/{enc}/{alg}/p{i}"), "alg": alg.name(),
                    "enc": enc.name(), "kid": kid, "token": token,
                    "plaintext": b64::encode(plaintext),
                }));
            }
        }
    }
    let doc = json!({
        "producer": "cryptoutil-jose", "jws": jws_out, "jwe": jwe_out, "jwe_own": jwe_own,
        "recipients": recipients,
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc)?)?;
    println!(
        "rust produced {} ML-DSA JWS, {} ML-KEM JWE, {} recipient keys",
        doc["jws"].as_array().map_or(0, Vec::len),
        doc["jwe"].as_array().map_or(0, Vec::len),
        doc["recipients"].as_array().map_or(0, Vec::len),
    );
    Ok(())
}

/// One base64url character of `part` (0-based part index) of a compact token changed.
fn tamper(token: &str, part: usize, at: usize) -> Option<String> {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let p = parts.get_mut(part)?;
    let bytes = b64::decode(p.as_bytes(), "part").ok()?;
    if bytes.is_empty() {
        return None;
    }
    let mut bytes = bytes;
    let i = at % bytes.len();
    bytes[i] ^= 1;
    *p = b64::encode(&bytes);
    Some(parts.join("."))
}

/// The compact JWE with its protected header's `ek` changed by one bit.
fn tamper_ek(token: &str) -> Option<String> {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut h: Map<String, Value> =
        serde_json::from_slice(&b64::decode(parts[0].as_bytes(), "h").ok()?).ok()?;
    let mut ek = b64::decode(h.get("ek")?.as_str()?.as_bytes(), "ek").ok()?;
    ek[3] ^= 1;
    h.insert("ek".into(), b64::encode(&ek).into());
    parts[0] = b64::encode(Value::Object(h).to_string().as_bytes());
    Some(parts.join("."))
}

fn check(ours_file: &str, theirs_file: &str) -> Res<bool> {
    let ours = read(ours_file)?;
    let theirs = read(theirs_file)?;
    let producer = theirs["producer"].as_str().unwrap_or("?").to_owned();
    let (mut ok_jws, mut ok_jwe, mut rejected, mut failures) = (0usize, 0usize, 0usize, Vec::new());
    let jws_list = theirs["jws"].as_array().ok_or("jws")?;
    for v in jws_list {
        let id = s(v, "id")?.to_owned();
        let result = (|| -> Res<usize> {
            let alg: JwsAlgorithm = s(v, "alg")?.parse()?;
            // Their private JWK (seed) must expand to the public key they published.
            let private = Jwk::from_value(v["jwk"].clone())?;
            if !private.is_private() {
                return Err("the JWK has no priv".into());
            }
            let public = private.to_public()?;
            let token = s(v, "token")?;
            let verified = jws::verify(&public, alg, token)?;
            if verified.payload != b64::decode(s(v, "payload")?.as_bytes(), "payload")? {
                return Err("payload differs".into());
            }
            if verified.header.kid() != v["kid"].as_str() {
                return Err("kid differs".into());
            }
            let mut n = 0;
            for (part, at) in [(2usize, 5usize), (1, 0), (0, 2)] {
                if let Some(bad) = tamper(token, part, at) {
                    if jws::verify(&public, alg, &bad).is_ok() {
                        return Err(format!("tampered part {part} verified").into());
                    }
                    n += 1;
                }
            }
            Ok(n)
        })();
        match result {
            Ok(n) => {
                ok_jws += 1;
                rejected += n;
            }
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    let mut keys = std::collections::HashMap::new();
    for r in ours["recipients"].as_array().ok_or("recipients")? {
        keys.insert(
            s(r, "kid")?.to_owned(),
            Jwk::from_value(r["private"].clone())?,
        );
    }
    let jwe_list = theirs["jwe"].as_array().ok_or("jwe")?;
    for v in jwe_list {
        let id = s(v, "id")?.to_owned();
        let result = (|| -> Res<usize> {
            let alg: JweAlgorithm = s(v, "alg")?.parse()?;
            let enc: ContentEncryption = s(v, "enc")?.parse()?;
            let key = keys.get(s(v, "kid")?).ok_or("unknown kid")?;
            let token = s(v, "token")?;
            let out = jwe::decrypt(key, alg, enc, token)?;
            if out.plaintext != b64::decode(s(v, "plaintext")?.as_bytes(), "plaintext")? {
                return Err("plaintext differs".into());
            }
            let mut n = 0;
            let mut variants = vec![tamper(token, 4, 0), tamper(token, 3, 1), tamper_ek(token)];
            if !alg.is_direct() {
                variants.push(tamper(token, 1, 9));
            }
            for bad in variants.into_iter().flatten() {
                if jwe::decrypt(key, alg, enc, &bad).is_ok() {
                    return Err("a tampered token decrypted".into());
                }
                n += 1;
            }
            Ok(n)
        })();
        match result {
            Ok(n) => {
                ok_jwe += 1;
                rejected += n;
            }
            Err(e) => failures.push(format!("{id}: {e}")),
        }
    }
    println!(
        "rust checked {producer}: ML-DSA JWS {ok_jws}/{} verified, ML-KEM JWE {ok_jwe}/{} decrypted, {rejected} tampered tokens rejected, {} failure(s)",
        jws_list.len(),
        jwe_list.len(),
        failures.len()
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    Ok(failures.is_empty() && !jws_list.is_empty() && !jwe_list.is_empty())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["produce", keys, out] => produce(keys, out).map(|()| true),
        ["check", ours, theirs] => check(ours, theirs),
        _ => Err("usage: pq_interop produce <python-keys.json> <out.json> | check <ours.json> <theirs.json>".into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
