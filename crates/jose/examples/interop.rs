//! Interop with an independent implementation (panva's `jose` on Node, see `interop/node/`).
//!
//! ```text
//! cargo run -p cryptoutil-jose --example interop -- produce <file>   # our vectors, for Node to check
//! cargo run -p cryptoutil-jose --example interop -- check <file>     # check Node's vectors
//! ```
//!
//! Vector format (shared with `interop/node/interop.mjs`):
//! `{producer, jws: [{id, alg, kid, jwk, token, payload}], jwe: [{id, alg, enc, kid, jwk,
//! serialization, token, plaintext, aad?}]}`; `payload`/`plaintext`/`aad` are base64url, `jwk` is
//! the key the checker needs (public for signatures, private for decryption), `token` is a compact
//! string or a JWE JSON object. The checker compares payloads byte for byte, checks `alg`/`enc`/
//! `kid`, and requires every tampered variant of every token to be rejected. `cargo xtask interop`
//! runs both directions; the process exits 1 on any mismatch.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::process::ExitCode;

use cryptoutil_jose::jwe::{self, Recipient};
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, OkpCurve, b64, jws,
};
use serde_json::{Map, Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// An ECDH-ES key agreement curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Curve {
    Ec(EcCurve),
    X25519,
}

impl Curve {
    const ALL: [Curve; 4] = [
        Curve::Ec(EcCurve::P256),
        Curve::Ec(EcCurve::P384),
        Curve::Ec(EcCurve::P521),
        Curve::X25519,
    ];

    fn name(self) -> &'static str {
        match self {
            Curve::Ec(EcCurve::P256) => "P-256",
            Curve::Ec(EcCurve::P384) => "P-384",
            Curve::Ec(EcCurve::P521) => "P-521",
            Curve::X25519 => "X25519",
        }
    }
}

fn payloads() -> [Vec<u8>; 3] {
    [
        Vec::new(),
        br#"{"sub":"alice","iss":"cryptoutil-jose"}"#.to_vec(),
        // Same bytes as the Node side's third payload: (i * 131 + 7) mod 256.
        (0..3000u32).map(|i| ((i * 131 + 7) & 0xff) as u8).collect(),
    ]
}

/// RSA keys are slow to generate: one per size, cloned with the right `alg`/`use`.
#[derive(Default)]
struct Keys {
    rsa: HashMap<usize, Jwk>,
    jwe: HashMap<(JweAlgorithm, Option<Curve>, Option<ContentEncryption>), Jwk>,
}

impl Keys {
    fn rsa(&mut self, bits: usize, alg: &str, key_use: &str) -> Res<Jwk> {
        let base = match self.rsa.get(&bits) {
            Some(k) => k.clone(),
            None => {
                let k = Jwk::generate_rsa(bits)?;
                self.rsa.insert(bits, k.clone());
                k
            }
        };
        let mut key = base;
        key.set_alg(Some(alg.to_owned()));
        key.set_key_use(Some(key_use.to_owned()));
        Ok(key)
    }

    fn jws(&mut self, alg: JwsAlgorithm) -> Res<Jwk> {
        let mut key = match alg.rsa_bits() {
            Some(bits) => self.rsa(bits, alg.name(), "sig")?,
            None => Jwk::generate_for(KeyAlgorithm::Jws(alg))?,
        };
        key.set_kid(Some(format!("rust-{alg}")));
        Ok(key)
    }

    /// One key per (alg, curve) shared by every enc; `dir` needs one per enc.
    fn jwe(&mut self, alg: JweAlgorithm, crv: Option<Curve>, enc: ContentEncryption) -> Res<Jwk> {
        let dir_enc = (alg == JweAlgorithm::Dir).then_some(enc);
        if let Some(k) = self.jwe.get(&(alg, crv, dir_enc)) {
            return Ok(k.clone());
        }
        let mut key = if let Some(bits) = alg.rsa_bits() {
            self.rsa(bits, alg.name(), "enc")?
        } else if let Some(crv) = crv {
            let mut k = match crv {
                Curve::Ec(c) => Jwk::generate_ec(c)?,
                Curve::X25519 => Jwk::generate_okp(OkpCurve::X25519)?,
            };
            k.set_alg(Some(alg.name().to_owned()));
            k.set_key_use(Some("enc".to_owned()));
            k
        } else {
            Jwk::generate_for(KeyAlgorithm::Jwe { enc, alg })?
        };
        let mut kid = format!("rust-{alg}");
        if let Some(c) = crv {
            kid.push('-');
            kid.push_str(c.name());
        }
        if let Some(e) = dir_enc {
            kid.push('-');
            kid.push_str(e.name());
        }
        key.set_kid(Some(kid));
        self.jwe.insert((alg, crv, dir_enc), key.clone());
        Ok(key)
    }
}

/// The key an encrypter needs: public for RSA/EC/OKP, the secret for `oct`.
fn encryption_key(key: &Jwk) -> Res<Jwk> {
    Ok(if key.kty() == "oct" {
        key.clone()
    } else {
        key.to_public()?
    })
}

fn produce(file: &str) -> Res<()> {
    let payloads = payloads();
    let mut keys = Keys::default();
    let mut jws_out = Vec::new();
    // Node `jose` on Node 20 has no ML-DSA/ML-KEM: those are checked against Python (pq_* commands).
    for &alg in JwsAlgorithm::ALL.iter().filter(|a| !a.is_ml_dsa()) {
        let key = keys.jws(alg)?;
        let checker = if key.kty() == "oct" {
            key.to_value(true)
        } else {
            key.to_public()?.to_value(false)
        };
        let kid = key.kid().unwrap_or_default().to_owned();
        for (i, payload) in payloads.iter().enumerate() {
            let mut extra = Map::new();
            extra.insert("kid".into(), kid.clone().into());
            extra.insert("typ".into(), "JWT".into());
            extra.insert("context".into(), json!({"tenant": "t1"}));
            let token = jws::sign(&key, alg, payload, Some(&extra))?;
            jws_out.push(json!({
                "id": format!("jws/{alg}/p{i}"), "alg": alg.name(), "kid": kid,
                "jwk": checker, "token": token, "payload": b64::encode(payload),
            }));
        }
    }

    let mut jwe_out = Vec::new();
    for &alg in JweAlgorithm::ALL.iter().filter(|a| !a.is_ml_kem()) {
        let curves: Vec<Option<Curve>> = if alg.is_ecdh() {
            Curve::ALL.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for crv in curves {
            for &enc in ContentEncryption::ALL {
                let key = keys.jwe(alg, crv, enc)?;
                let kid = key.kid().unwrap_or_default().to_owned();
                let encrypt_key = encryption_key(&key)?;
                for (i, plaintext) in payloads.iter().enumerate() {
                    let mut extra = Map::new();
                    extra.insert("kid".into(), kid.clone().into());
                    if alg.is_ecdh() && i == 2 {
                        extra.insert("apu".into(), b64::encode(b"Alice").into());
                        extra.insert("apv".into(), b64::encode(b"Bob").into());
                    }
                    let token = jwe::encrypt(&encrypt_key, alg, enc, plaintext, Some(&extra))?;
                    let crv_part = crv.map(|c| format!("/{}", c.name())).unwrap_or_default();
                    jwe_out.push(json!({
                        "id": format!("jwe/{enc}/{alg}{crv_part}/p{i}"), "alg": alg.name(),
                        "enc": enc.name(), "kid": kid, "jwk": key.to_value(true),
                        "serialization": "compact", "token": token,
                        "plaintext": b64::encode(plaintext),
                    }));
                }
            }
        }
    }

    // General JSON: one CEK wrapped for several recipients.
    let recipients = [
        (JweAlgorithm::A256KW, None),
        (JweAlgorithm::A128GCMKW, None),
        (JweAlgorithm::RsaOaep256, None),
        (JweAlgorithm::EcdhEsA128KW, Some(Curve::Ec(EcCurve::P256))),
        (JweAlgorithm::EcdhEsA256KW, Some(Curve::X25519)),
    ];
    for (n, &enc) in ContentEncryption::ALL.iter().enumerate() {
        let plaintext = &payloads[1 + n % 2];
        let aad: Option<&[u8]> = (n % 2 == 0).then_some(b"interop-aad".as_slice());
        let mut members = Vec::new();
        for (alg, crv) in recipients {
            let key = keys.jwe(alg, crv, enc)?;
            let public = encryption_key(&key)?;
            members.push((alg, key, public));
        }
        let list: Vec<Recipient<'_>> = members
            .iter()
            .map(|(alg, _, public)| Recipient {
                key: public,
                alg: *alg,
                header: None,
            })
            .collect();
        let mut protected = Map::new();
        protected.insert("typ".into(), "interop".into());
        let token: Value = serde_json::from_str(&jwe::encrypt_json(
            &list,
            enc,
            plaintext,
            Some(&protected),
            aad,
        )?)?;
        for (r, (alg, key, _)) in members.iter().enumerate() {
            let mut v = json!({
                "id": format!("jwe-general/{enc}/r{r}-{alg}"), "alg": alg.name(),
                "enc": enc.name(), "kid": key.kid(), "jwk": key.to_value(true),
                "serialization": "general", "token": token,
                "plaintext": b64::encode(plaintext),
            });
            if let (Some(aad), Some(obj)) = (aad, v.as_object_mut()) {
                obj.insert("aad".into(), b64::encode(aad).into());
            }
            jwe_out.push(v);
        }
    }

    let (n_jws, n_jwe) = (jws_out.len(), jwe_out.len());
    let out = json!({"producer": "cryptoutil-jose (aws-lc-rs)", "jws": jws_out, "jwe": jwe_out});
    std::fs::write(file, serde_json::to_vec(&out)?)?;
    println!("rust produced: {n_jws} JWS, {n_jwe} JWE ({file})");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// check

fn str_field<'a>(v: &'a Value, name: &str) -> Res<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("vector member {name:?} missing").into())
}

/// Flips the low bit of the first byte of a base64url segment; `None` when it is empty.
fn flip(segment: &str) -> Res<Option<String>> {
    let mut bytes = b64::decode(segment.as_bytes(), "segment")?;
    match bytes.first_mut() {
        Some(b) => {
            *b ^= 1;
            Ok(Some(b64::encode(&bytes)))
        }
        None => Ok(None),
    }
}

fn with_extra_header_member(segment: &str) -> Res<String> {
    let mut header: Map<String, Value> =
        serde_json::from_slice(&b64::decode(segment.as_bytes(), "header")?)?;
    header.insert("x-tampered".into(), true.into());
    Ok(b64::encode(&serde_json::to_vec(&header)?))
}

fn tampered_jws(token: &str) -> Res<Vec<(&'static str, String)>> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err("JWS is not three segments".into());
    };
    let other_payload = match flip(p)? {
        Some(x) => x,
        None => b64::encode(b" "),
    };
    let mut out = vec![
        ("payload", format!("{h}.{other_payload}.{s}")),
        (
            "header",
            format!("{}.{p}.{s}", with_extra_header_member(h)?),
        ),
    ];
    if let Some(bad) = flip(s)? {
        out.push(("signature", format!("{h}.{p}.{bad}")));
    }
    Ok(out)
}

fn tampered_jwe(token: &Value) -> Res<Vec<(&'static str, Value)>> {
    let mut out = Vec::new();
    if let Some(compact) = token.as_str() {
        let parts: Vec<&str> = compact.split('.').collect();
        let [h, ek, iv, ct, tag] = parts[..] else {
            return Err("JWE is not five segments".into());
        };
        let mut push = |what, s: String| out.push((what, Value::String(s)));
        if let Some(bad) = flip(tag)? {
            push("tag", format!("{h}.{ek}.{iv}.{ct}.{bad}"));
        }
        if let Some(bad) = flip(iv)? {
            push("iv", format!("{h}.{ek}.{bad}.{ct}.{tag}"));
        }
        push(
            "header",
            format!("{}.{ek}.{iv}.{ct}.{tag}", with_extra_header_member(h)?),
        );
        if let Some(bad) = flip(ct)? {
            push("ciphertext", format!("{h}.{ek}.{iv}.{bad}.{tag}"));
        }
        if let Some(bad) = flip(ek)? {
            push("encrypted_key", format!("{h}.{bad}.{iv}.{ct}.{tag}"));
        }
        return Ok(out);
    }
    let obj = token
        .as_object()
        .ok_or("JWE token is neither a string nor an object")?;
    for member in [
        "tag",
        "iv",
        "ciphertext",
        "aad",
        "encrypted_key",
        "protected",
    ] {
        let Some(s) = obj.get(member).and_then(Value::as_str) else {
            continue;
        };
        let bad = if member == "protected" {
            Some(with_extra_header_member(s)?)
        } else {
            flip(s)?
        };
        if let Some(bad) = bad {
            let mut t = obj.clone();
            t.insert(member.into(), bad.into());
            out.push((member, Value::Object(t)));
        }
    }
    Ok(out)
}

/// Result of opening one token: the payload/plaintext and the (joint) header.
struct Opened {
    payload: Vec<u8>,
    header: Map<String, Value>,
}

fn open_jws(v: &Value, key: &Jwk, token: &Value) -> Res<Opened> {
    let alg: JwsAlgorithm = str_field(v, "alg")?.parse()?;
    let token = token.as_str().ok_or("JWS token is not a string")?;
    let verified = jws::verify(key, alg, token)?;
    Ok(Opened {
        payload: verified.payload,
        header: verified.header.into_members(),
    })
}

fn open_jwe(v: &Value, key: &Jwk, token: &Value) -> Res<Opened> {
    let alg: JweAlgorithm = str_field(v, "alg")?.parse()?;
    let enc: ContentEncryption = str_field(v, "enc")?.parse()?;
    let decrypted = match token.as_str() {
        Some(compact) if str_field(v, "serialization")? == "compact" => {
            jwe::decrypt(key, alg, enc, compact)?
        }
        Some(_) => return Err("compact token for a JSON serialization".into()),
        None => jwe::decrypt_json(key, alg, enc, &serde_json::to_string(token)?)?,
    };
    Ok(Opened {
        payload: decrypted.plaintext,
        header: decrypted.header.into_members(),
    })
}

type Opener = fn(&Value, &Jwk, &Value) -> Res<Opened>;

#[derive(Default)]
struct Tally {
    ok: usize,
    tampered_rejected: usize,
    failures: Vec<String>,
}

fn check_one(v: &Value, open: Opener, payload_member: &str, tally: &mut Tally) -> Res<()> {
    let id = str_field(v, "id")?.to_owned();
    let key = Jwk::from_value(
        v.get("jwk")
            .cloned()
            .ok_or("vector member \"jwk\" missing")?,
    )
    .map_err(|e| format!("key import failed: {e}"))?;
    let token = v.get("token").ok_or("vector member \"token\" missing")?;
    let expected = b64::decode(str_field(v, payload_member)?.as_bytes(), "payload")?;
    let opened = open(v, &key, token)?;
    if opened.payload != expected {
        return Err("payload differs".into());
    }
    for member in ["alg", "enc", "kid"] {
        if let Some(want) = v.get(member).filter(|w| !w.is_null())
            && opened.header.get(member) != Some(want)
        {
            return Err(format!("header {member} is {:?}", opened.header.get(member)).into());
        }
    }
    tally.ok += 1;
    let variants: Vec<(&str, Value)> = match token {
        Value::String(s) if payload_member == "payload" => tampered_jws(s)?
            .into_iter()
            .map(|(w, t)| (w, Value::String(t)))
            .collect(),
        _ => tampered_jwe(token)?,
    };
    for (what, bad) in variants {
        if open(v, &key, &bad).is_ok() {
            tally
                .failures
                .push(format!("{id}: tampered {what} was ACCEPTED"));
        } else {
            tally.tampered_rejected += 1;
        }
    }
    Ok(())
}

fn check(file: &str) -> Res<bool> {
    let vectors: Value = serde_json::from_slice(&std::fs::read(file)?)?;
    let producer = str_field(&vectors, "producer")?;
    let list = |name: &str| -> Res<&Vec<Value>> {
        vectors
            .get(name)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("vector list {name:?} missing").into())
    };
    let (jws_list, jwe_list) = (list("jws")?, list("jwe")?);
    let mut jws_tally = Tally::default();
    let mut jwe_tally = Tally::default();
    for (vectors, open, member, tally) in [
        (jws_list, open_jws as Opener, "payload", &mut jws_tally),
        (jwe_list, open_jwe as Opener, "plaintext", &mut jwe_tally),
    ] {
        for v in vectors {
            if let Err(e) = check_one(v, open, member, tally) {
                let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
                tally.failures.push(format!("{id}: {e}"));
            }
        }
    }
    let failures: Vec<&String> = jws_tally
        .failures
        .iter()
        .chain(&jwe_tally.failures)
        .collect();
    println!(
        "rust checked {producer}: JWS {}/{} verified, JWE {}/{} decrypted, {} tampered tokens rejected, {} failure(s)",
        jws_tally.ok,
        jws_list.len(),
        jwe_tally.ok,
        jwe_list.len(),
        jws_tally.tampered_rejected + jwe_tally.tampered_rejected,
        failures.len(),
    );
    for f in &failures {
        println!("  FAIL {f}");
    }
    if jws_list.is_empty() || jwe_list.is_empty() {
        println!("  FAIL no vectors");
        return Ok(false);
    }
    Ok(failures.is_empty())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("produce"), Some(file)) => produce(file).map(|()| true),
        (Some("check"), Some(file)) => check(file),
        _ => {
            eprintln!("usage: interop <produce|check> <file>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("interop: {e}");
            ExitCode::FAILURE
        }
    }
}
