//! Negative tests at the API: responses built here by a minimal ES256 authenticator (aws-lc-rs
//! keys, ciborium encoding), each broken in one way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;

use super::*;

const ORIGIN: &str = "https://id.example";
const CHALLENGE: [u8; 32] = [9; 32];
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

fn relying_party() -> RelyingParty {
    RelyingParty {
        id: "id.example".to_owned(),
        origins: vec![ORIGIN.to_owned()],
        attestation: AttestationPolicy::NoneOrPacked,
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn client_data(kind: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
        URL_SAFE_NO_PAD.encode(CHALLENGE)
    )
    .into_bytes()
}

struct Authenticator {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Authenticator {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        Self { key, rng }
    }

    fn cose_key(&self, alg: i64) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let int = |i: i64| Value::Integer(i.into());
        cbor(&Value::Map(vec![
            (int(1), int(2)),
            (int(3), int(alg)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(point[1..33].to_vec())),
            (int(-3), Value::Bytes(point[33..].to_vec())),
        ]))
    }

    fn auth_data(&self, flags: u8, count: u32, credential: Option<&[u8]>) -> Vec<u8> {
        let mut data = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"id.example")
            .as_ref()
            .to_vec();
        data.push(flags);
        data.extend_from_slice(&count.to_be_bytes());
        if let Some(key) = credential {
            data.extend_from_slice(&[0x5a; 16]);
            data.extend_from_slice(&16u16.to_be_bytes());
            data.extend_from_slice(&[0x42; 16]);
            data.extend_from_slice(key);
        }
        data
    }

    fn sign(&self, auth_data: &[u8], client_data: &[u8]) -> Vec<u8> {
        let mut signed = auth_data.to_vec();
        signed.extend_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client_data).as_ref(),
        );
        self.key.sign(&self.rng, &signed).unwrap().as_ref().to_vec()
    }

    fn attestation(
        &self,
        format: &str,
        statement: Vec<(Value, Value)>,
        auth_data: Vec<u8>,
    ) -> Vec<u8> {
        cbor(&Value::Map(vec![
            (text("fmt"), text(format)),
            (text("attStmt"), Value::Map(statement)),
            (text("authData"), Value::Bytes(auth_data)),
        ]))
    }

    /// A packed self attestation with `flags` (AT added).
    fn packed_self(&self, flags: u8, alg: i64) -> Vec<u8> {
        let auth_data = self.auth_data(flags | AT, 0, Some(&self.cose_key(-7)));
        let sig = self.sign(&auth_data, &client_data("webauthn.create"));
        self.attestation(
            "packed",
            vec![
                (text("alg"), Value::Integer(alg.into())),
                (text("sig"), Value::Bytes(sig)),
            ],
            auth_data,
        )
    }
}

fn register(
    rp: &RelyingParty,
    uv: bool,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<RegisteredCredential, WebAuthnError> {
    verify_registration(
        rp,
        &CHALLENGE,
        uv,
        &RegistrationResponse {
            client_data_json,
            attestation_object,
        },
    )
}

#[test]
fn a_well_formed_registration_and_assertion_verify() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    let credential = register(
        &relying_party(),
        true,
        &create,
        &authenticator.packed_self(UP | UV, -7),
    )
    .unwrap();
    assert_eq!(credential.attestation_format, AttestationFormat::Packed);
    assert_eq!(credential.credential_id, vec![0x42; 16]);
    assert!(credential.user_verified && !credential.backup_eligible);
    let get = client_data("webauthn.get");
    let auth_data = authenticator.auth_data(UP | UV, 3, None);
    let signature = authenticator.sign(&auth_data, &get);
    let stored = StoredCredential {
        public_key: &credential.public_key,
        algorithm: -7,
        sign_count: 2,
    };
    let response = AssertionResponse {
        client_data_json: &get,
        authenticator_data: &auth_data,
        signature: &signature,
    };
    let verified =
        verify_assertion(&relying_party(), &CHALLENGE, true, &stored, &response).unwrap();
    assert_eq!(verified.sign_count, 3);
}

#[test]
fn user_verification_is_enforced_when_required() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    let object = authenticator.packed_self(UP, -7);
    assert!(register(&relying_party(), false, &create, &object).is_ok());
    assert_eq!(
        register(&relying_party(), true, &create, &object),
        Err(WebAuthnError::UserNotVerified)
    );
}

#[test]
fn backed_up_without_backup_eligibility_is_refused() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    assert_eq!(
        register(
            &relying_party(),
            false,
            &create,
            &authenticator.packed_self(UP | BS, -7)
        ),
        Err(WebAuthnError::InvalidBackupState)
    );
    let credential = register(
        &relying_party(),
        false,
        &create,
        &authenticator.packed_self(UP | BE | BS, -7),
    )
    .unwrap();
    assert!(credential.backup_eligible && credential.backed_up);
}

#[test]
fn counters_must_increase_once_either_side_counts() {
    let authenticator = Authenticator::new();
    let key = authenticator.cose_key(-7);
    let get = client_data("webauthn.get");
    let check = |stored: u32, new: u32| {
        let auth_data = authenticator.auth_data(UP, new, None);
        let signature = authenticator.sign(&auth_data, &get);
        let credential = StoredCredential {
            public_key: &key,
            algorithm: -7,
            sign_count: stored,
        };
        let response = AssertionResponse {
            client_data_json: &get,
            authenticator_data: &auth_data,
            signature: &signature,
        };
        verify_assertion(&relying_party(), &CHALLENGE, false, &credential, &response)
            .map(|v| v.sign_count)
    };
    assert_eq!(check(0, 0), Ok(0), "authenticators without a counter");
    assert_eq!(check(0, 1), Ok(1));
    assert_eq!(check(5, 6), Ok(6));
    assert_eq!(check(5, 5), Err(WebAuthnError::CounterRegression));
    assert_eq!(check(5, 4), Err(WebAuthnError::CounterRegression));
    assert_eq!(check(5, 0), Err(WebAuthnError::CounterRegression));
}

#[test]
fn assertions_with_attested_data_or_a_bad_stored_key_are_refused() {
    let authenticator = Authenticator::new();
    let key = authenticator.cose_key(-7);
    let get = client_data("webauthn.get");
    let auth_data = authenticator.auth_data(UP | AT, 1, Some(&key));
    let signature = authenticator.sign(&auth_data, &get);
    let credential = StoredCredential {
        public_key: &key,
        algorithm: -7,
        sign_count: 0,
    };
    let response = AssertionResponse {
        client_data_json: &get,
        authenticator_data: &auth_data,
        signature: &signature,
    };
    assert!(matches!(
        verify_assertion(&relying_party(), &CHALLENGE, false, &credential, &response),
        Err(WebAuthnError::Malformed(_))
    ));
    let plain = authenticator.auth_data(UP, 1, None);
    let signature = authenticator.sign(&plain, &get);
    let response = AssertionResponse {
        client_data_json: &get,
        authenticator_data: &plain,
        signature: &signature,
    };
    let garbage = StoredCredential {
        public_key: &[0xa0, 0x00],
        algorithm: -7,
        sign_count: 0,
    };
    assert!(matches!(
        verify_assertion(&relying_party(), &CHALLENGE, false, &garbage, &response),
        Err(WebAuthnError::Malformed(_))
    ));
    let unknown = authenticator.cose_key(-260);
    let unknown = StoredCredential {
        public_key: &unknown,
        algorithm: -260,
        sign_count: 0,
    };
    assert_eq!(
        verify_assertion(&relying_party(), &CHALLENGE, false, &unknown, &response),
        Err(WebAuthnError::UnsupportedAlgorithm)
    );
}

#[test]
fn oversized_inputs_are_refused_before_parsing() {
    let big_json = vec![b' '; MAX_CLIENT_DATA_JSON + 1];
    let big_object = vec![0; MAX_ATTESTATION_OBJECT + 1];
    let create = client_data("webauthn.create");
    assert_eq!(
        register(&relying_party(), false, &big_json, &[]),
        Err(WebAuthnError::TooLarge("client data"))
    );
    assert_eq!(
        register(&relying_party(), false, &create, &big_object),
        Err(WebAuthnError::TooLarge("attestation object"))
    );
    let get = client_data("webauthn.get");
    let credential = StoredCredential {
        public_key: &[],
        algorithm: -7,
        sign_count: 0,
    };
    let assert = |client_data_json: &[u8], authenticator_data: &[u8], signature: &[u8]| {
        verify_assertion(
            &relying_party(),
            &CHALLENGE,
            false,
            &credential,
            &AssertionResponse {
                client_data_json,
                authenticator_data,
                signature,
            },
        )
    };
    assert_eq!(
        assert(&big_json, &[], &[]),
        Err(WebAuthnError::TooLarge("client data"))
    );
    assert_eq!(
        assert(&get, &vec![0; MAX_AUTHENTICATOR_DATA + 1], &[]),
        Err(WebAuthnError::TooLarge("authenticator data"))
    );
    assert_eq!(
        assert(&get, &[], &vec![0; MAX_SIGNATURE + 1]),
        Err(WebAuthnError::TooLarge("signature"))
    );
}

#[test]
fn malformed_attestation_objects_are_refused() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    let auth_data = authenticator.auth_data(UP | AT, 0, Some(&authenticator.cose_key(-7)));
    let entry = |k: &str, v: Value| (text(k), v);
    let objects = [
        // Not a map, empty, truncated.
        cbor(&Value::Array(vec![])),
        vec![],
        vec![0xa3, 0x63],
        // Missing authData, duplicate fmt, an unknown member, a wrong type.
        cbor(&Value::Map(vec![
            entry("fmt", text("none")),
            entry("attStmt", Value::Map(vec![])),
        ])),
        cbor(&Value::Map(vec![
            entry("fmt", text("none")),
            entry("fmt", text("none")),
            entry("attStmt", Value::Map(vec![])),
            entry("authData", Value::Bytes(auth_data.clone())),
        ])),
        cbor(&Value::Map(vec![
            entry("fmt", text("none")),
            entry("attStmt", Value::Map(vec![])),
            entry("authData", Value::Bytes(auth_data.clone())),
            entry("extra", Value::Null),
        ])),
        cbor(&Value::Map(vec![
            entry("fmt", text("none")),
            entry("attStmt", Value::Map(vec![])),
            entry("authData", text("not bytes")),
        ])),
        // Nested 100 arrays deep.
        [vec![0x81; 100], vec![0]].concat(),
    ];
    for object in objects {
        assert!(
            matches!(
                register(&relying_party(), false, &create, &object),
                Err(WebAuthnError::Malformed(_))
            ),
            "{object:02x?}"
        );
    }
    // A good none object parses: the failures above are the mutations.
    let good = authenticator.attestation("none", vec![], auth_data.clone());
    assert!(register(&relying_party(), false, &create, &good).is_ok());
    // attStmt not a map.
    let not_map = cbor(&Value::Map(vec![
        entry("fmt", text("none")),
        entry("attStmt", Value::Array(vec![])),
        entry("authData", Value::Bytes(auth_data)),
    ]));
    assert!(matches!(
        register(&relying_party(), false, &create, &not_map),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
}

#[test]
fn attestation_statements_are_judged() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    let auth_data = authenticator.auth_data(UP | AT, 0, Some(&authenticator.cose_key(-7)));
    let sig = authenticator.sign(&auth_data, &create);
    let int = |i: i64| Value::Integer(i.into());
    let run = |format: &str, statement: Vec<(Value, Value)>| {
        register(
            &relying_party(),
            false,
            &create,
            &authenticator.attestation(format, statement, auth_data.clone()),
        )
    };
    assert_eq!(
        run("tpm", vec![]),
        Err(WebAuthnError::UnsupportedAttestation)
    );
    assert_eq!(
        run("fido-u2f", vec![]),
        Err(WebAuthnError::UnsupportedAttestation)
    );
    assert!(matches!(
        run("none", vec![(text("alg"), int(-7))]),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    // Self attestation under another algorithm than the key's.
    assert!(matches!(
        run(
            "packed",
            vec![
                (text("alg"), int(-257)),
                (text("sig"), Value::Bytes(sig.clone()))
            ]
        ),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    assert_eq!(
        run(
            "packed",
            vec![
                (text("alg"), int(-36)),
                (text("sig"), Value::Bytes(sig.clone()))
            ]
        ),
        Err(WebAuthnError::UnsupportedAlgorithm)
    );
    assert!(matches!(
        run("packed", vec![(text("alg"), int(-7))]),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    assert!(matches!(
        run(
            "packed",
            vec![
                (text("alg"), int(-7)),
                (text("sig"), Value::Bytes(sig.clone())),
                (text("ecdaaKeyId"), Value::Bytes(vec![]))
            ]
        ),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    // x5c: empty, too long, not certificates.
    let x5c = |certificates: Vec<Value>| {
        vec![
            (text("alg"), int(-7)),
            (text("sig"), Value::Bytes(sig.clone())),
            (text("x5c"), Value::Array(certificates)),
        ]
    };
    assert!(matches!(
        run("packed", x5c(vec![])),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    assert_eq!(
        run("packed", x5c(vec![Value::Bytes(vec![0x30]); 5])),
        Err(WebAuthnError::TooLarge("x5c chain"))
    );
    assert!(matches!(
        run("packed", x5c(vec![Value::Bytes(vec![0x30, 0x00])])),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    assert!(matches!(
        run("packed", x5c(vec![text("MII")])),
        Err(WebAuthnError::InvalidAttestation(_))
    ));
    // The right statement verifies; a bit flipped in it does not.
    assert!(
        run(
            "packed",
            vec![
                (text("alg"), int(-7)),
                (text("sig"), Value::Bytes(sig.clone()))
            ]
        )
        .is_ok()
    );
    let mut flipped = sig.clone();
    flipped[10] ^= 0x04;
    assert_eq!(
        run(
            "packed",
            vec![(text("alg"), int(-7)), (text("sig"), Value::Bytes(flipped))]
        ),
        Err(WebAuthnError::BadSignature)
    );
}

#[test]
fn none_is_refused_under_packed_only() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    let auth_data = authenticator.auth_data(UP | AT, 0, Some(&authenticator.cose_key(-7)));
    let none = authenticator.attestation("none", vec![], auth_data);
    let strict = RelyingParty {
        attestation: AttestationPolicy::PackedOnly,
        ..relying_party()
    };
    assert_eq!(
        register(&strict, false, &create, &none),
        Err(WebAuthnError::AttestationRequired)
    );
    assert!(register(&strict, false, &create, &authenticator.packed_self(UP, -7)).is_ok());
}

#[test]
fn unknown_credential_algorithms_are_refused() {
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    for alg in [-36, -260, 1, 999_999] {
        let auth_data = authenticator.auth_data(UP | AT, 0, Some(&authenticator.cose_key(alg)));
        let object = authenticator.attestation("none", vec![], auth_data);
        assert_eq!(
            register(&relying_party(), false, &create, &object),
            Err(WebAuthnError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn supported_algorithms_are_what_the_verifier_accepts() {
    assert_eq!(SUPPORTED_ALGORITHMS.first(), Some(&-7));
    assert_eq!(SUPPORTED_ALGORITHMS.len(), 5);
    let mut sorted = SUPPORTED_ALGORITHMS.to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, [-257, -37, -35, -8, -7]);
}

#[test]
fn relying_party_origins_are_serialized_as_browsers_send_them() {
    let urls = [
        url::Url::parse("https://id.example/").unwrap(),
        url::Url::parse("https://ID.Example:443/path?q").unwrap(),
        url::Url::parse("https://id.example:8443").unwrap(),
        url::Url::parse("data:text/plain,x").unwrap(),
    ];
    let rp = RelyingParty::new("id.example", &urls, AttestationPolicy::PackedOnly);
    assert_eq!(rp.id, "id.example");
    assert_eq!(
        rp.origins,
        [
            "https://id.example",
            "https://id.example",
            "https://id.example:8443"
        ]
    );
    assert_eq!(rp.attestation, AttestationPolicy::PackedOnly);
    // And such an origin is the one a registration from `https://id.example` matches.
    let authenticator = Authenticator::new();
    let create = client_data("webauthn.create");
    assert!(register(&rp, false, &create, &authenticator.packed_self(UP, -7)).is_ok());
}
