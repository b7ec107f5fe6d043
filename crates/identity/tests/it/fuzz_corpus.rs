//! Replays the stored `config`, `oauth_forms` and `dpop` fuzz corpora and regression inputs through
//! Identity's entry points (the ones the `cargo fuzz` targets call), so CI checks them on stable
//! without libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cryptoutil_jose::fuzzing::replay_corpus;

#[test]
fn config_corpus() {
    replay_corpus("config", cryptoutil_identity::fuzzing::config);
}

#[test]
fn oauth_forms_corpus() {
    replay_corpus("oauth_forms", cryptoutil_identity::fuzzing::oauth_forms);
}

#[test]
fn client_metadata_corpus() {
    replay_corpus(
        "client_metadata",
        cryptoutil_identity::fuzzing::client_metadata,
    );
}

#[test]
fn dpop_corpus() {
    replay_corpus("dpop", cryptoutil_identity::fuzzing::dpop);
}

#[test]
fn client_metadata_document_corpus() {
    replay_corpus(
        "client_metadata_document",
        cryptoutil_identity::fuzzing::client_metadata_document,
    );
}

/// The `client_metadata_document` seeds: the first four are accepted, the rest refused.
#[test]
fn client_metadata_document_seeds_are_judged() {
    use cryptoutil_identity::fuzzing::{DOCUMENT_CLIENT_ID, client_metadata_document_seeds};
    use cryptoutil_identity::metadata_document::document::{DocumentPolicy, parse};
    let allowed = ["openid".to_owned()];
    let policy = DocumentPolicy {
        allowed_scopes: &allowed,
        audiences: &[],
    };
    let judged: Vec<bool> = client_metadata_document_seeds()
        .iter()
        .map(|seed| {
            parse(
                seed,
                DOCUMENT_CLIENT_ID,
                policy,
                time::OffsetDateTime::UNIX_EPOCH,
            )
            .is_ok()
        })
        .collect();
    assert_eq!(judged, [true, true, true, true, false, false, false]);
}

/// The `dpop` seeds' valid proofs are accepted (so the corpus starts past every check).
#[test]
fn dpop_seeds_reach_acceptance() {
    use cryptoutil_identity::dpop::{DpopSettings, ProofRequest, verify};
    use cryptoutil_identity::fuzzing::{DPOP_ACCESS_TOKEN, DPOP_URI, NOW_UNIX};
    let uri = url::Url::parse(DPOP_URI).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(NOW_UNIX).unwrap();
    let seeds = cryptoutil_identity::fuzzing::dpop_seeds();
    let accepted = |proof: &[u8], access_token| {
        let request = ProofRequest {
            method: "POST",
            uri: &uri,
            now,
            nonce: None,
            access_token,
        };
        verify(
            std::str::from_utf8(proof).unwrap(),
            &request,
            &DpopSettings::default(),
        )
        .is_ok()
    };
    assert!(accepted(&seeds[0], None) && accepted(&seeds[1], None));
    assert!(accepted(&seeds[2], Some(DPOP_ACCESS_TOKEN)));
    // `HTTPS://Issuer.Example:443/...?x=1` normalises to the request's URI (RFC 9449 §4.3).
    assert!(accepted(&seeds[3], None));
    assert!(!accepted(&seeds[4], None), "an hour-old proof");
}

/// Writes the `oauth_forms` and `dpop` seeds into `fuzz/corpus/<target>/` (named by content
/// hash): `cargo test -p cryptoutil-identity --test it fuzz_corpus:: -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    let targets = [
        ("oauth_forms", cryptoutil_identity::fuzzing::seeds()),
        ("dpop", cryptoutil_identity::fuzzing::dpop_seeds()),
        (
            "client_metadata_document",
            cryptoutil_identity::fuzzing::client_metadata_document_seeds(),
        ),
        (
            "client_metadata",
            cryptoutil_identity::fuzzing::client_metadata_seeds(),
        ),
    ];
    for (target, seeds) in targets {
        let dir = cryptoutil_jose::fuzzing::fuzz_dir()
            .join("corpus")
            .join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for bytes in seeds {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
            let name: String = digest.as_ref()[..20]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(dir.join(name), &bytes).unwrap();
        }
    }
}

#[test]
fn webauthn_corpus() {
    replay_corpus("webauthn", cryptoutil_identity::fuzzing::webauthn);
}

/// The `webauthn` seeds, framed from the W3C and fido2 fixtures
/// (`crates/identity/tests/fixtures/webauthn/`): one registration and one assertion per
/// fixture, with whether the checks accept it.
fn webauthn_seeds() -> Vec<(String, Vec<u8>, bool)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use cryptoutil_identity::fuzzing::webauthn_input;
    use serde_json::Value;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webauthn");
    let hex = |v: &Value| -> Vec<u8> {
        let s = v.as_str().unwrap();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
    let mut seeds = Vec::new();
    for kind in ["w3c", "fido2"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let name = json["name"].as_str().unwrap().to_owned();
            let (reg, auth) = (&json["registration"], &json["authentication"]);
            let w3c = kind == "w3c";
            let decode = |v: &Value| if w3c { hex(v) } else { b64(v) };
            let rp_id = json["rp_id"]
                .as_str()
                .unwrap_or("example.org")
                .as_bytes()
                .to_vec();
            let (cdj, object) = if w3c {
                (
                    decode(&reg["clientDataJSON"]),
                    decode(&reg["attestationObject"]),
                )
            } else {
                (
                    decode(&reg["client_data_json"]),
                    decode(&reg["attestation_object"]),
                )
            };
            let registration =
                webauthn_input(b'0', &rp_id, &decode(&reg["challenge"]), &cdj, &[&object]);
            let ok = match kind {
                "fido2" => json["expect"] == "ok",
                _ => matches!(
                    name.as_str(),
                    "none-es256"
                        | "packed-self-es256"
                        | "none-es256-long-credential-id"
                        | "packed-es256"
                        | "packed-es384"
                        | "packed-rs256"
                        | "packed-eddsa"
                ),
            };
            seeds.push((format!("{kind}/{name} registration"), registration, ok));
            // The assertion, with the key as the fido2 script recorded it or as the W3C
            // registration carries it (its COSE key ends the attestation object).
            let key = if w3c {
                None
            } else {
                Some(b64(&json["expected"]["public_key"]))
            };
            let (cdj, auth_data, signature) = if w3c {
                (
                    decode(&auth["clientDataJSON"]),
                    decode(&auth["authenticatorData"]),
                    decode(&auth["signature"]),
                )
            } else {
                (
                    decode(&auth["client_data_json"]),
                    decode(&auth["authenticator_data"]),
                    decode(&auth["signature"]),
                )
            };
            if let Some(key) = key {
                let assertion = webauthn_input(
                    b'1',
                    &rp_id,
                    &decode(&auth["challenge"]),
                    &cdj,
                    &[&auth_data, &signature, &key],
                );
                // The x5c-refused fixtures' credentials still sign good assertions.
                seeds.push((format!("{kind}/{name} assertion"), assertion, true));
            }
        }
    }
    seeds
}

/// Every well-formed seed is accepted and every refused one refused, so the corpus starts past
/// the checks it should pass.
#[test]
fn webauthn_seeds_are_judged() {
    let seeds = webauthn_seeds();
    assert!(seeds.len() >= 15 + 2 * 21, "{}", seeds.len());
    for (name, bytes, ok) in seeds {
        assert_eq!(
            cryptoutil_identity::fuzzing::webauthn_verdict(&bytes),
            Some(ok),
            "{name}"
        );
    }
}

/// Writes the `webauthn` seeds into `fuzz/corpus/webauthn/` (named by content hash):
/// `cargo test -p cryptoutil-identity --test it fuzz_corpus::write_webauthn_seeds -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the fixtures change"]
fn write_webauthn_seeds() {
    let dir = cryptoutil_jose::fuzzing::fuzz_dir()
        .join("corpus")
        .join("webauthn");
    std::fs::create_dir_all(&dir).unwrap();
    for (_, bytes, _) in webauthn_seeds() {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let name: String = digest.as_ref()[..20]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(name), &bytes).unwrap();
    }
}

/// A short, deterministic stand-in for `cargo fuzz` in CI: every `webauthn` seed with bytes
/// flipped, dropped, duplicated and cut (xorshift-chosen) goes through the entry point, whose
/// invariants must hold and which must never panic.
#[test]
fn webauthn_seeds_survive_mutations() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % u64::try_from(bound.max(1)).unwrap()).unwrap()
    };
    let mut accepted = 0;
    for (_, seed, _) in webauthn_seeds() {
        for _ in 0..60 {
            let mut input = seed.clone();
            for _ in 0..=next(3) {
                let at = next(input.len());
                match next(4) {
                    0 => input[at] ^= 1 << next(8),
                    1 => {
                        input.remove(at);
                    }
                    2 => input.insert(at, input[at]),
                    _ => input.truncate(at.max(1)),
                }
                if input.is_empty() {
                    input.push(b'0');
                }
            }
            if cryptoutil_identity::fuzzing::webauthn_verdict(&input) == Some(true) {
                accepted += 1;
            }
        }
    }
    // Some mutations land in bytes nothing checks (extraData, unsigned padding): accepted
    // inputs must stay a small minority.
    assert!(accepted < 57 * 60 / 4, "{accepted} mutated inputs accepted");
}
