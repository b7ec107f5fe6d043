//! The published and independent proofs: every W3C WebAuthn Level 3 §16 test vector and every
//! response of the `fido2`-based software authenticator
//! (`interop/python/webauthn_authenticator.py`), each verified, then mutated to show the
//! mutation is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value as Json;

use super::*;

/// Where `cargo xtask interop` points [`fido2_fixtures`] at freshly generated fixtures.
const FIDO2_FIXTURES_ENV: &str = "CRYPTOUTIL_WEBAUTHN_FIDO2_FIXTURES";

fn fixtures(kind: &str) -> Vec<(String, Json)> {
    let fresh = std::env::var_os(FIDO2_FIXTURES_ENV).filter(|_| kind == "fido2");
    let dir = fresh.map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/webauthn")
                .join(kind)
        },
        PathBuf::from,
    );
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Json = serde_json::from_str(&text).unwrap();
            assert!(
                json["source"].is_string(),
                "{} names no source",
                path.display()
            );
            (json["name"].as_str().unwrap().to_owned(), json)
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2));
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(json: &Json) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(json.as_str().unwrap()).unwrap()
}

fn rp(id: &str, origin: &str) -> RelyingParty {
    RelyingParty {
        id: id.to_owned(),
        origins: vec![origin.to_owned()],
        attestation: AttestationPolicy::NoneOrPacked,
    }
}

/// One registration and one assertion, decoded.
struct Case {
    name: String,
    rp: RelyingParty,
    create_challenge: Vec<u8>,
    create_client_data: Vec<u8>,
    attestation_object: Vec<u8>,
    get_challenge: Vec<u8>,
    get_client_data: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
}

impl Case {
    fn register(&self) -> Result<RegisteredCredential, WebAuthnError> {
        self.register_with(
            &self.rp,
            &self.create_challenge,
            &self.create_client_data,
            &self.attestation_object,
        )
    }

    fn register_with(
        &self,
        rp: &RelyingParty,
        challenge: &[u8],
        client_data_json: &[u8],
        attestation_object: &[u8],
    ) -> Result<RegisteredCredential, WebAuthnError> {
        verify_registration(
            rp,
            challenge,
            false,
            &RegistrationResponse {
                client_data_json,
                attestation_object,
            },
        )
    }

    fn assert_with(
        &self,
        rp: &RelyingParty,
        challenge: &[u8],
        credential: &StoredCredential<'_>,
        client_data_json: &[u8],
        authenticator_data: &[u8],
        signature: &[u8],
    ) -> Result<VerifiedAssertion, WebAuthnError> {
        verify_assertion(
            rp,
            challenge,
            false,
            credential,
            &AssertionResponse {
                client_data_json,
                authenticator_data,
                signature,
            },
        )
    }

    fn assertion(
        &self,
        credential: &StoredCredential<'_>,
    ) -> Result<VerifiedAssertion, WebAuthnError> {
        self.assert_with(
            &self.rp,
            &self.get_challenge,
            credential,
            &self.get_client_data,
            &self.authenticator_data,
            &self.signature,
        )
    }

    /// The registration refused under each mutation.
    fn registration_mutations_fail(&self, packed: bool) {
        let name = &self.name;
        let other_origin = rp(&self.rp.id, "https://evil.example");
        assert_eq!(
            self.register_with(
                &other_origin,
                &self.create_challenge,
                &self.create_client_data,
                &self.attestation_object
            ),
            Err(WebAuthnError::OriginNotAllowed),
            "{name}"
        );
        let other_rp = RelyingParty {
            id: "evil.example".to_owned(),
            ..self.rp.clone()
        };
        assert_eq!(
            self.register_with(
                &other_rp,
                &self.create_challenge,
                &self.create_client_data,
                &self.attestation_object
            ),
            Err(WebAuthnError::RpIdMismatch),
            "{name}"
        );
        let mut challenge = self.create_challenge.clone();
        challenge[0] ^= 1;
        assert_eq!(
            self.register_with(
                &self.rp,
                &challenge,
                &self.create_client_data,
                &self.attestation_object
            ),
            Err(WebAuthnError::ChallengeMismatch),
            "{name}"
        );
        assert_eq!(
            self.register_with(
                &self.rp,
                &self.get_challenge,
                &self.get_client_data,
                &self.attestation_object
            ),
            Err(WebAuthnError::WrongType),
            "{name}"
        );
        let auth_data = embedded_auth_data(&self.attestation_object);
        // Clear UP inside the attestation object.
        let mut no_up = self.attestation_object.clone();
        no_up[auth_data + 32] &= !0x01;
        assert_eq!(
            self.register_with(
                &self.rp,
                &self.create_challenge,
                &self.create_client_data,
                &no_up
            ),
            Err(WebAuthnError::UserNotPresent),
            "{name}"
        );
        // Change a byte of the signed credential id: a packed statement no longer verifies.
        let mut tampered = self.attestation_object.clone();
        tampered[auth_data + 37 + 18] ^= 0x80;
        let result = self.register_with(
            &self.rp,
            &self.create_challenge,
            &self.create_client_data,
            &tampered,
        );
        if packed {
            assert_eq!(result, Err(WebAuthnError::BadSignature), "{name}");
        } else {
            assert!(result.is_ok(), "{name}: none attests nothing");
        }
        // A trailing byte after the attestation object.
        let mut trailing = self.attestation_object.clone();
        trailing.push(0);
        assert_eq!(
            self.register_with(
                &self.rp,
                &self.create_challenge,
                &self.create_client_data,
                &trailing
            ),
            Err(WebAuthnError::Malformed("attestation object")),
            "{name}"
        );
        // Truncated.
        let cut = &self.attestation_object[..self.attestation_object.len() - 1];
        assert!(
            self.register_with(
                &self.rp,
                &self.create_challenge,
                &self.create_client_data,
                cut
            )
            .is_err(),
            "{name}"
        );
    }

    /// The assertion refused under each mutation.
    fn assertion_mutations_fail(&self, credential: &StoredCredential<'_>) {
        let name = &self.name;
        let mut signature = self.signature.clone();
        let last = signature.len() - 1;
        signature[last] ^= 0x01;
        assert_eq!(
            self.assert_with(
                &self.rp,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &self.authenticator_data,
                &signature
            ),
            Err(WebAuthnError::BadSignature),
            "{name}"
        );
        let other_origin = rp(&self.rp.id, "https://evil.example");
        assert_eq!(
            self.assert_with(
                &other_origin,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &self.authenticator_data,
                &self.signature
            ),
            Err(WebAuthnError::OriginNotAllowed),
            "{name}"
        );
        let other_rp = RelyingParty {
            id: "evil.example".to_owned(),
            ..self.rp.clone()
        };
        assert_eq!(
            self.assert_with(
                &other_rp,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &self.authenticator_data,
                &self.signature
            ),
            Err(WebAuthnError::RpIdMismatch),
            "{name}"
        );
        let mut rp_hash = self.authenticator_data.clone();
        rp_hash[0] ^= 1;
        assert_eq!(
            self.assert_with(
                &self.rp,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &rp_hash,
                &self.signature
            ),
            Err(WebAuthnError::RpIdMismatch),
            "{name}"
        );
        assert_eq!(
            self.assert_with(
                &self.rp,
                &self.create_challenge,
                credential,
                &self.get_client_data,
                &self.authenticator_data,
                &self.signature
            ),
            Err(WebAuthnError::ChallengeMismatch),
            "{name}"
        );
        let mut no_up = self.authenticator_data.clone();
        no_up[32] &= !0x01;
        assert_eq!(
            self.assert_with(
                &self.rp,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &no_up,
                &self.signature
            ),
            Err(WebAuthnError::UserNotPresent),
            "{name}"
        );
        // Flags the signature did not cover (BE on, which is never refused by itself).
        let mut be = self.authenticator_data.clone();
        be[32] ^= 0x08;
        if be[32] & 0x18 != 0x10 {
            assert_eq!(
                self.assert_with(
                    &self.rp,
                    &self.get_challenge,
                    credential,
                    &self.get_client_data,
                    &be,
                    &self.signature
                ),
                Err(WebAuthnError::BadSignature),
                "{name}"
            );
        }
        // A counter at or above the new one.
        let mut counter = self.authenticator_data.clone();
        counter[36] ^= 1;
        assert_eq!(
            self.assert_with(
                &self.rp,
                &self.get_challenge,
                credential,
                &self.get_client_data,
                &counter,
                &self.signature
            ),
            Err(WebAuthnError::BadSignature),
            "{name}"
        );
    }
}

/// Where `authData`'s bytes start inside an attestation object.
fn embedded_auth_data(object: &[u8]) -> usize {
    let parsed = attestation::AttestationObject::parse(object).unwrap();
    object
        .windows(parsed.auth_data.len())
        .position(|window| window == parsed.auth_data.as_slice())
        .unwrap()
}

fn w3c_case(name: &str, json: &Json) -> Case {
    let reg = &json["registration"];
    let auth = &json["authentication"];
    Case {
        name: name.to_owned(),
        rp: rp("example.org", "https://example.org"),
        create_challenge: hex(reg["challenge"].as_str().unwrap()),
        create_client_data: hex(reg["clientDataJSON"].as_str().unwrap()),
        attestation_object: hex(reg["attestationObject"].as_str().unwrap()),
        get_challenge: hex(auth["challenge"].as_str().unwrap()),
        get_client_data: hex(auth["clientDataJSON"].as_str().unwrap()),
        authenticator_data: hex(auth["authenticatorData"].as_str().unwrap()),
        signature: hex(auth["signature"].as_str().unwrap()),
    }
}

/// The credential key inside an attestation object, read without the registration checks (for
/// the vectors whose registration this relying party refuses on purpose).
fn credential_key_of(object: &[u8]) -> (Vec<u8>, i64) {
    let parsed = attestation::AttestationObject::parse(object).unwrap();
    let data = AuthenticatorData::parse(&parsed.auth_data, true).unwrap();
    let credential = data.attested.unwrap();
    let key = PublicKey::from_cose(credential.public_key_value).unwrap();
    (credential.public_key, key.algorithm())
}

#[test]
fn w3c_test_vectors() {
    let all = fixtures("w3c");
    assert_eq!(
        all.len(),
        15,
        "every §16 registration/authentication example"
    );
    for (name, json) in &all {
        let case = w3c_case(name, json);
        let reg = &json["registration"];
        let expected = match name.as_str() {
            "none-es256-crossOrigin" | "none-es256-topOrigin" => Err(WebAuthnError::CrossOrigin),
            "packed-es512" | "packed-ed448" => Err(WebAuthnError::UnsupportedAlgorithm),
            "tpm-es256" | "android-key-es256" | "apple-es256" | "fido-u2f-es256" => {
                Err(WebAuthnError::UnsupportedAttestation)
            }
            _ => Ok(()),
        };
        let registered = case.register();
        match (&expected, &registered) {
            (Ok(()), Ok(credential)) => {
                assert_eq!(
                    credential.credential_id,
                    hex(reg["credential_id"].as_str().unwrap()),
                    "{name}"
                );
                assert_eq!(
                    credential.aaguid.to_vec(),
                    hex(reg["aaguid"].as_str().unwrap()),
                    "{name}"
                );
                let packed = name.starts_with("packed");
                let format = if packed {
                    AttestationFormat::Packed
                } else {
                    AttestationFormat::None
                };
                assert_eq!(credential.attestation_format, format, "{name}");
                assert!(credential.user_present, "{name}");
                case.registration_mutations_fail(packed);
                let stored = StoredCredential {
                    public_key: &credential.public_key,
                    algorithm: credential.algorithm,
                    sign_count: credential.sign_count,
                };
                let asserted = case
                    .assertion(&stored)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(asserted.user_present, "{name}");
                case.assertion_mutations_fail(&stored);
                // Require UV: refused exactly when the vector's UV flag is clear.
                let uv = verify_assertion(
                    &case.rp,
                    &case.get_challenge,
                    true,
                    &stored,
                    &AssertionResponse {
                        client_data_json: &case.get_client_data,
                        authenticator_data: &case.authenticator_data,
                        signature: &case.signature,
                    },
                );
                if asserted.user_verified {
                    assert!(uv.is_ok(), "{name}");
                } else {
                    assert_eq!(uv, Err(WebAuthnError::UserNotVerified), "{name}");
                }
            }
            (Err(expected), Err(got)) => assert_eq!(expected, got, "{name}"),
            _ => panic!("{name}: expected {expected:?}, got {registered:?}"),
        }
        // The refused-format vectors still carry good ES256 assertions: verify them with the
        // key read from the attestation object.
        if matches!(
            name.as_str(),
            "tpm-es256" | "android-key-es256" | "apple-es256" | "fido-u2f-es256"
        ) {
            let (public_key, algorithm) = credential_key_of(&case.attestation_object);
            let stored = StoredCredential {
                public_key: &public_key,
                algorithm,
                sign_count: 0,
            };
            assert!(case.assertion(&stored).is_ok(), "{name}");
            case.assertion_mutations_fail(&stored);
        }
    }
}

#[test]
fn w3c_long_credential_id_is_the_largest_accepted() {
    let all = fixtures("w3c");
    let (_, json) = all
        .iter()
        .find(|(name, _)| name == "none-es256-long-credential-id")
        .unwrap();
    let credential = w3c_case("long", json).register().unwrap();
    assert_eq!(credential.credential_id.len(), MAX_CREDENTIAL_ID);
}

#[test]
fn w3c_packed_x5c_needs_the_packed_policy_only_for_none() {
    let all = fixtures("w3c");
    for (name, json) in &all {
        let mut case = w3c_case(name, json);
        case.rp.attestation = AttestationPolicy::PackedOnly;
        match name.as_str() {
            "none-es256" | "none-es256-long-credential-id" => {
                assert_eq!(
                    case.register(),
                    Err(WebAuthnError::AttestationRequired),
                    "{name}"
                );
            }
            "packed-es256" | "packed-self-es256" | "packed-es384" | "packed-rs256"
            | "packed-eddsa" => {
                assert!(case.register().is_ok(), "{name}");
            }
            _ => {}
        }
    }
}

#[test]
fn fido2_fixtures() {
    let all = fixtures("fido2");
    assert!(all.len() >= 21);
    let mut verified = 0;
    for (name, json) in &all {
        let reg = &json["registration"];
        let auth = &json["authentication"];
        let case = Case {
            name: name.clone(),
            rp: rp(
                json["rp_id"].as_str().unwrap(),
                json["origin"].as_str().unwrap(),
            ),
            create_challenge: b64(&reg["challenge"]),
            create_client_data: b64(&reg["client_data_json"]),
            attestation_object: b64(&reg["attestation_object"]),
            get_challenge: b64(&auth["challenge"]),
            get_client_data: b64(&auth["client_data_json"]),
            authenticator_data: b64(&auth["authenticator_data"]),
            signature: b64(&auth["signature"]),
        };
        let expect = json["expect"].as_str().unwrap();
        if expect != "ok" {
            assert_eq!(expect, "InvalidAttestation");
            assert!(
                matches!(case.register(), Err(WebAuthnError::InvalidAttestation(_))),
                "{name}: {:?}",
                case.register()
            );
            continue;
        }
        let want = &json["expected"];
        let credential = case.register().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            credential.credential_id,
            b64(&want["credential_id"]),
            "{name}"
        );
        assert_eq!(credential.public_key, b64(&want["public_key"]), "{name}");
        assert_eq!(
            credential.algorithm,
            want["algorithm"].as_i64().unwrap(),
            "{name}"
        );
        assert_eq!(credential.aaguid.to_vec(), b64(&want["aaguid"]), "{name}");
        assert_eq!(
            credential.attestation_format.as_str(),
            want["attestation_format"],
            "{name}"
        );
        assert_eq!(
            u64::from(credential.sign_count),
            want["sign_count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(credential.user_verified, want["user_verified"], "{name}");
        assert_eq!(
            credential.backup_eligible, want["backup_eligible"],
            "{name}"
        );
        assert_eq!(credential.backed_up, want["backed_up"], "{name}");
        case.registration_mutations_fail(
            credential.attestation_format == AttestationFormat::Packed,
        );
        let stored = StoredCredential {
            public_key: &credential.public_key,
            algorithm: credential.algorithm,
            sign_count: credential.sign_count,
        };
        let asserted = case
            .assertion(&stored)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            u64::from(asserted.sign_count),
            want["assertion_sign_count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(asserted.backed_up, credential.backed_up, "{name}");
        case.assertion_mutations_fail(&stored);
        // The same assertion replayed against the counter it set is a regression (when counting).
        if asserted.sign_count != 0 {
            let after = StoredCredential {
                sign_count: asserted.sign_count,
                ..stored
            };
            assert_eq!(
                case.assertion(&after),
                Err(WebAuthnError::CounterRegression),
                "{name}"
            );
        }
        // Another algorithm claimed for the stored key.
        let wrong = StoredCredential {
            algorithm: if credential.algorithm == -7 { -8 } else { -7 },
            ..stored
        };
        assert_eq!(
            case.assertion(&wrong),
            Err(WebAuthnError::UnsupportedAlgorithm),
            "{name}"
        );
        verified += 1;
    }
    assert_eq!(
        verified, 16,
        "five algorithms × three formats, and an RSA attestation leaf"
    );
}

/// The W3C packed x5c vectors with their chain rearranged: the published root after the leaf
/// is accepted (the chain's other certificates are not judged), the root first is refused (a
/// CA as the leaf), and five certificates are too many.
#[test]
fn w3c_x5c_chains_are_judged_by_their_leaf() {
    let root_json: Json = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/webauthn/w3c-attestation-root.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let root = ciborium::Value::Bytes(hex(root_json["attestation_ca_cert"].as_str().unwrap()));
    let all = fixtures("w3c");
    let mut checked = 0;
    for name in [
        "packed-es256",
        "packed-es384",
        "packed-rs256",
        "packed-eddsa",
    ] {
        let (_, json) = all.iter().find(|(n, _)| n == name).unwrap();
        let case = w3c_case(name, json);
        let with_chain = |arrange: &dyn Fn(ciborium::Value) -> Vec<ciborium::Value>| {
            let mut object: ciborium::Value =
                ciborium::de::from_reader(case.attestation_object.as_slice()).unwrap();
            let ciborium::Value::Map(entries) = &mut object else {
                panic!("{name}: not a map")
            };
            let statement = entries
                .iter_mut()
                .find(|(k, _)| *k == ciborium::Value::Text("attStmt".into()))
                .map(|(_, v)| v)
                .unwrap();
            let ciborium::Value::Map(statement) = statement else {
                panic!("{name}: statement")
            };
            let x5c = statement
                .iter_mut()
                .find(|(k, _)| *k == ciborium::Value::Text("x5c".into()))
                .map(|(_, v)| v)
                .unwrap();
            let ciborium::Value::Array(certificates) = x5c else {
                panic!("{name}: x5c")
            };
            assert_eq!(
                certificates.len(),
                1,
                "{name}: the vectors carry the leaf only"
            );
            *certificates = arrange(certificates[0].clone());
            let mut bytes = Vec::new();
            ciborium::ser::into_writer(&object, &mut bytes).unwrap();
            case.register_with(
                &case.rp,
                &case.create_challenge,
                &case.create_client_data,
                &bytes,
            )
        };
        assert!(
            with_chain(&|leaf| vec![leaf]).is_ok(),
            "{name}: re-encoded as published"
        );
        assert!(
            with_chain(&|leaf| vec![leaf, root.clone()]).is_ok(),
            "{name}: leaf, root"
        );
        assert!(
            matches!(
                with_chain(&|leaf| vec![root.clone(), leaf]),
                Err(WebAuthnError::InvalidAttestation(_))
            ),
            "{name}: root first"
        );
        assert_eq!(
            with_chain(&|leaf| vec![leaf; 5]),
            Err(WebAuthnError::TooLarge("x5c chain")),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}
