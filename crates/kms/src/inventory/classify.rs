//! What an elastic key's algorithm is, cryptographically: family, key type and size, and whether
//! a cryptographically relevant quantum computer breaks it.
//!
//! Classification is by the algorithm's *name* (the stored string, `ES256` or `A256GCM/A256KW`),
//! matched against a table, so a name this build's JOSE layer does not know (a newer release's
//! algorithm in a shared database, or a corrupted row) gets [`QuantumStatus::Unknown`], never a
//! panic or an error. Whether the JOSE layer parses the name is reported beside it
//! ([`Classification::recognized`]).
//!
//! The rules (docs: `crates/kms/README.md`, "Cryptographic inventory"):
//! - RSA (signatures and RSA-OAEP), ECDSA, EdDSA (Ed25519) and ECDH-ES (P-256/384/521, X25519):
//!   Shor's algorithm recovers the private key: **vulnerable**, NIST quantum level 0.
//! - AES (key wrap, GCM key wrap, content encryption) and HMAC: Grover's algorithm at best halves
//!   the bits of security: **not vulnerable**. AES-256 and HMAC keys of 256 bits or more keep
//!   ≥ 128-bit security (NIST category 5). AES-128 (category 1) and AES-192 (category 3) are also
//!   *not* flagged, but carry a note: Grover leaves them about 64 and 96 bits, fine for NIST's
//!   categories yet weaker than AES-256 for data that must stay secret for decades.
//! - ML-DSA (FIPS 204) and ML-KEM (FIPS 203), also ML-KEM with AES key wrap: **not vulnerable**,
//!   NIST categories 2/3/5 (ML-DSA-44/65/87) and 3/5 (ML-KEM-768/1024).

use serde::Serialize;

/// Whether a quantum computer breaks the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuantumStatus {
    /// Shor's algorithm breaks it (RSA, elliptic curves).
    Vulnerable,
    /// No known quantum attack beyond Grover's square-root speed-up (AES, HMAC) or designed to
    /// resist one (ML-DSA, ML-KEM).
    Resistant,
    /// The algorithm is not in the table: review it by hand.
    Unknown,
}

impl QuantumStatus {
    /// `true`, `false`, or `None` when unknown.
    pub fn vulnerable(self) -> Option<bool> {
        match self {
            Self::Vulnerable => Some(true),
            Self::Resistant => Some(false),
            Self::Unknown => None,
        }
    }
}

/// What kind of secret the KMS holds for the key (CycloneDX `relatedCryptoMaterialProperties.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MaterialType {
    /// A symmetric key (AES, HMAC).
    SecretKey,
    /// The private half of a key pair (the public half is published beside it).
    PrivateKey,
    /// Unknown algorithm.
    Unknown,
}

/// One algorithm (a JWS `alg`, a JWE `alg` or `enc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlgorithmInfo {
    /// The JOSE name (`ES256`, `A256KW`, `A256GCM`, `ML-KEM-768`).
    pub name: String,
    /// Family: `AES`, `HMAC`, `RSA`, `ECDSA`, `EdDSA`, `ECDH`, `ML-DSA`, `ML-KEM`, `unknown`.
    pub family: &'static str,
    /// CycloneDX primitive (`ae`, `block-cipher`, `mac`, `signature`, `pke`, `key-agree`, `kem`,
    /// `unknown`).
    pub primitive: &'static str,
    /// JWK key type of the key this algorithm uses (`oct`, `RSA`, `EC`, `OKP`, `AKP`).
    pub key_type: &'static str,
    /// Key size in bits (modulus, curve order or symmetric key length); `None` for parameter-set
    /// algorithms (ML-DSA, ML-KEM) and unknown ones.
    pub key_size_bits: Option<u32>,
    /// Parameter set (`256` for AES-256, `65` for ML-DSA-65, `768` for ML-KEM-768).
    pub parameter_set: Option<&'static str>,
    /// Elliptic curve (`secp256r1`, `Ed25519`).
    pub curve: Option<&'static str>,
    /// Block cipher mode (`gcm`, `cbc`) where one applies.
    pub mode: Option<&'static str>,
    /// Padding (`pkcs1v15`, `oaep`) where one applies.
    pub padding: Option<&'static str>,
    /// Quantum status.
    pub quantum: QuantumStatus,
    /// NIST post-quantum security category (0–6; 0: broken by a quantum computer).
    pub nist_quantum_security_level: Option<u8>,
    /// Classical security in bits.
    pub classical_security_bits: Option<u32>,
    /// The algorithm's object identifier, where one is registered.
    pub oid: Option<&'static str>,
    /// What the KMS does with it (CycloneDX `cryptoFunctions`).
    pub functions: &'static [&'static str],
    /// Why it is classified so, when that needs saying (AES-128/192 and Grover).
    pub note: Option<&'static str>,
}

/// What an elastic key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// JWS: sign and verify (or MAC).
    Signing,
    /// JWE: encrypt, decrypt, data keys.
    Encryption,
    /// Unknown algorithm.
    Unknown,
}

/// An elastic key algorithm, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Signing or encryption.
    pub purpose: KeyPurpose,
    /// The algorithm the elastic key's own material is used with: the JWS `alg`; for JWE the key
    /// management `alg`, or the content encryption `enc` for `dir` (the key *is* the content key).
    pub key: AlgorithmInfo,
    /// Every algorithm the key involves (JWE: the key management and the content encryption).
    pub algorithms: Vec<AlgorithmInfo>,
    /// What kind of secret the KMS holds.
    pub material: MaterialType,
    /// Whether this build's JOSE layer parses the name (`cryptoutil_jose::KeyAlgorithm`).
    pub recognized: bool,
    /// The overall status: vulnerable if any involved algorithm is (for JWE the key management
    /// decides; content encryption is always symmetric).
    pub quantum: QuantumStatus,
    /// Notes of the involved algorithms.
    pub notes: Vec<&'static str>,
}

const GROVER_128: &str = "AES-128: Grover's algorithm leaves about 64 bits of security against a \
     quantum attacker (NIST category 1); not flagged as vulnerable, but prefer 256-bit keys for \
     data that must stay confidential for decades";
const GROVER_192: &str = "AES-192: Grover's algorithm leaves about 96 bits of security against a \
     quantum attacker (NIST category 3); not flagged as vulnerable";
const SHOR: &str = "broken by Shor's algorithm on a cryptographically relevant quantum computer; \
     plan a migration to ML-DSA (signing) or ML-KEM (encryption)";
const UNKNOWN: &str = "the algorithm is not in the inventory's table: review it by hand";

const SIGN_FUNCTIONS: &[&str] = &["keygen", "sign", "verify"];
const MAC_FUNCTIONS: &[&str] = &["keygen", "tag", "verify"];
const CIPHER_FUNCTIONS: &[&str] = &["keygen", "encrypt", "decrypt"];
const KEM_FUNCTIONS: &[&str] = &["keygen", "encapsulate", "decapsulate"];
const AGREE_FUNCTIONS: &[&str] = &["keygen", "keyderive"];

fn base(
    name: &str,
    family: &'static str,
    primitive: &'static str,
    kty: &'static str,
) -> AlgorithmInfo {
    AlgorithmInfo {
        name: name.to_owned(),
        family,
        primitive,
        key_type: kty,
        key_size_bits: None,
        parameter_set: None,
        curve: None,
        mode: None,
        padding: None,
        quantum: QuantumStatus::Unknown,
        nist_quantum_security_level: None,
        classical_security_bits: None,
        oid: None,
        functions: &[],
        note: None,
    }
}

fn unknown(name: &str) -> AlgorithmInfo {
    AlgorithmInfo {
        note: Some(UNKNOWN),
        ..base(name, "unknown", "unknown", "unknown")
    }
}

/// AES with a key of `bits` (128, 192, 256).
fn aes(
    name: &str,
    bits: u32,
    primitive: &'static str,
    mode: Option<&'static str>,
    oid: Option<&'static str>,
) -> AlgorithmInfo {
    let (set, level, note) = match bits {
        128 => ("128", 1, Some(GROVER_128)),
        192 => ("192", 3, Some(GROVER_192)),
        _ => ("256", 5, None),
    };
    AlgorithmInfo {
        key_size_bits: Some(bits),
        parameter_set: Some(set),
        mode,
        quantum: QuantumStatus::Resistant,
        nist_quantum_security_level: Some(level),
        classical_security_bits: Some(bits),
        oid,
        functions: CIPHER_FUNCTIONS,
        note,
        ..base(name, "AES", primitive, "oct")
    }
}

fn vulnerable(mut info: AlgorithmInfo, classical: u32) -> AlgorithmInfo {
    info.quantum = QuantumStatus::Vulnerable;
    info.nist_quantum_security_level = Some(0);
    info.classical_security_bits = Some(classical);
    info.note = Some(SHOR);
    info
}

/// RSA classical strength by modulus size (NIST SP 800-57 Part 1, Table 2).
fn rsa_strength(bits: u32) -> u32 {
    match bits {
        0..=2048 => 112,
        2049..=3072 => 128,
        3073..=7680 => 152,
        _ => 192,
    }
}

fn rsa(
    name: &str,
    bits: u32,
    primitive: &'static str,
    padding: &'static str,
    oid: &'static str,
) -> AlgorithmInfo {
    let functions = if primitive == "pke" {
        CIPHER_FUNCTIONS
    } else {
        SIGN_FUNCTIONS
    };
    vulnerable(
        AlgorithmInfo {
            key_size_bits: Some(bits),
            parameter_set: Some(match bits {
                2048 => "2048",
                3072 => "3072",
                _ => "4096",
            }),
            padding: Some(padding),
            oid: Some(oid),
            functions,
            ..base(name, "RSA", primitive, "RSA")
        },
        rsa_strength(bits),
    )
}

/// A NIST curve: (bits, curve name, classical strength).
fn nist_curve(bits: u32) -> (&'static str, u32) {
    match bits {
        256 => ("secp256r1", 128),
        384 => ("secp384r1", 192),
        _ => ("secp521r1", 256),
    }
}

fn ecdsa(name: &str, bits: u32, oid: &'static str) -> AlgorithmInfo {
    let (curve, strength) = nist_curve(bits);
    vulnerable(
        AlgorithmInfo {
            key_size_bits: Some(bits),
            curve: Some(curve),
            oid: Some(oid),
            functions: SIGN_FUNCTIONS,
            ..base(name, "ECDSA", "signature", "EC")
        },
        strength,
    )
}

fn ecdh(name: &str, bits: u32) -> AlgorithmInfo {
    let (curve, strength) = nist_curve(bits);
    vulnerable(
        AlgorithmInfo {
            key_size_bits: Some(bits),
            curve: Some(curve),
            // id-ecPublicKey: the key's OID (ECDH-ES has no single scheme OID in JOSE).
            oid: Some("1.2.840.10045.2.1"),
            functions: AGREE_FUNCTIONS,
            ..base(name, "ECDH", "key-agree", "EC")
        },
        strength,
    )
}

fn hmac(name: &str, bits: u32, oid: &'static str) -> AlgorithmInfo {
    AlgorithmInfo {
        key_size_bits: Some(bits),
        parameter_set: Some(match bits {
            256 => "256",
            384 => "384",
            _ => "512",
        }),
        quantum: QuantumStatus::Resistant,
        nist_quantum_security_level: Some(5),
        classical_security_bits: Some(256),
        oid: Some(oid),
        functions: MAC_FUNCTIONS,
        ..base(name, "HMAC", "mac", "oct")
    }
}

fn ml_dsa(
    name: &str,
    set: &'static str,
    level: u8,
    classical: u32,
    oid: &'static str,
) -> AlgorithmInfo {
    AlgorithmInfo {
        parameter_set: Some(set),
        quantum: QuantumStatus::Resistant,
        nist_quantum_security_level: Some(level),
        classical_security_bits: Some(classical),
        oid: Some(oid),
        functions: SIGN_FUNCTIONS,
        ..base(name, "ML-DSA", "signature", "AKP")
    }
}

fn ml_kem(
    name: &str,
    set: &'static str,
    level: u8,
    classical: u32,
    oid: &'static str,
) -> AlgorithmInfo {
    AlgorithmInfo {
        parameter_set: Some(set),
        quantum: QuantumStatus::Resistant,
        nist_quantum_security_level: Some(level),
        classical_security_bits: Some(classical),
        oid: Some(oid),
        functions: KEM_FUNCTIONS,
        ..base(name, "ML-KEM", "kem", "AKP")
    }
}

/// A JWS `alg`.
pub fn signing_algorithm(name: &str) -> AlgorithmInfo {
    match name {
        "HS256" => hmac(name, 256, "1.2.840.113549.2.9"),
        "HS384" => hmac(name, 384, "1.2.840.113549.2.10"),
        "HS512" => hmac(name, 512, "1.2.840.113549.2.11"),
        "RS256" => rsa(name, 2048, "signature", "pkcs1v15", "1.2.840.113549.1.1.11"),
        "RS384" => rsa(name, 3072, "signature", "pkcs1v15", "1.2.840.113549.1.1.12"),
        "RS512" => rsa(name, 4096, "signature", "pkcs1v15", "1.2.840.113549.1.1.13"),
        "PS256" => rsa(name, 2048, "signature", "other", "1.2.840.113549.1.1.10"),
        "PS384" => rsa(name, 3072, "signature", "other", "1.2.840.113549.1.1.10"),
        "PS512" => rsa(name, 4096, "signature", "other", "1.2.840.113549.1.1.10"),
        "ES256" => ecdsa(name, 256, "1.2.840.10045.4.3.2"),
        "ES384" => ecdsa(name, 384, "1.2.840.10045.4.3.3"),
        "ES512" => ecdsa(name, 521, "1.2.840.10045.4.3.4"),
        "EdDSA" | "Ed25519" => vulnerable(
            AlgorithmInfo {
                key_size_bits: Some(256),
                curve: Some("Ed25519"),
                oid: Some("1.3.101.112"),
                functions: SIGN_FUNCTIONS,
                ..base(name, "EdDSA", "signature", "OKP")
            },
            128,
        ),
        // FIPS 204; OIDs id-ml-dsa-44/65/87 (NIST CSOR).
        "ML-DSA-44" => ml_dsa(name, "44", 2, 128, "2.16.840.1.101.3.4.3.17"),
        "ML-DSA-65" => ml_dsa(name, "65", 3, 192, "2.16.840.1.101.3.4.3.18"),
        "ML-DSA-87" => ml_dsa(name, "87", 5, 256, "2.16.840.1.101.3.4.3.19"),
        _ => unknown(name),
    }
}

/// A JWE key management `alg`.
pub fn key_management_algorithm(name: &str) -> AlgorithmInfo {
    match name {
        "A128KW" => aes(
            name,
            128,
            "block-cipher",
            None,
            Some("2.16.840.1.101.3.4.1.5"),
        ),
        "A192KW" => aes(
            name,
            192,
            "block-cipher",
            None,
            Some("2.16.840.1.101.3.4.1.25"),
        ),
        "A256KW" => aes(
            name,
            256,
            "block-cipher",
            None,
            Some("2.16.840.1.101.3.4.1.45"),
        ),
        "A128GCMKW" => aes(name, 128, "ae", Some("gcm"), Some("2.16.840.1.101.3.4.1.6")),
        "A192GCMKW" => aes(
            name,
            192,
            "ae",
            Some("gcm"),
            Some("2.16.840.1.101.3.4.1.26"),
        ),
        "A256GCMKW" => aes(
            name,
            256,
            "ae",
            Some("gcm"),
            Some("2.16.840.1.101.3.4.1.46"),
        ),
        "RSA-OAEP-256" => rsa(name, 2048, "pke", "oaep", "1.2.840.113549.1.1.7"),
        "RSA-OAEP-384" => rsa(name, 3072, "pke", "oaep", "1.2.840.113549.1.1.7"),
        "RSA-OAEP-512" => rsa(name, 4096, "pke", "oaep", "1.2.840.113549.1.1.7"),
        // The curves the KMS generates for each (SPEC §3.3).
        "ECDH-ES" | "ECDH-ES+A128KW" => ecdh(name, 256),
        "ECDH-ES+A192KW" => ecdh(name, 384),
        "ECDH-ES+A256KW" => ecdh(name, 521),
        // FIPS 203 (draft-ietf-jose-pqc-kem); OIDs id-alg-ml-kem-768/1024 (NIST CSOR).
        "ML-KEM-768" | "ML-KEM-768+A192KW" => ml_kem(name, "768", 3, 192, "2.16.840.1.101.3.4.4.2"),
        "ML-KEM-1024" | "ML-KEM-1024+A256KW" => {
            ml_kem(name, "1024", 5, 256, "2.16.840.1.101.3.4.4.3")
        }
        _ => unknown(name),
    }
}

/// A JWE content encryption `enc`.
pub fn content_encryption(name: &str) -> AlgorithmInfo {
    let cbc = |bits: u32| AlgorithmInfo {
        // Key: AES half plus HMAC half (RFC 7518 §5.2).
        key_size_bits: Some(bits * 2),
        ..aes(name, bits, "ae", Some("cbc"), None)
    };
    match name {
        "A128GCM" => aes(name, 128, "ae", Some("gcm"), Some("2.16.840.1.101.3.4.1.6")),
        "A192GCM" => aes(
            name,
            192,
            "ae",
            Some("gcm"),
            Some("2.16.840.1.101.3.4.1.26"),
        ),
        "A256GCM" => aes(
            name,
            256,
            "ae",
            Some("gcm"),
            Some("2.16.840.1.101.3.4.1.46"),
        ),
        "A128CBC-HS256" => cbc(128),
        "A192CBC-HS384" => cbc(192),
        "A256CBC-HS512" => cbc(256),
        _ => unknown(name),
    }
}

/// Classifies an elastic key algorithm name (`ES256`, `A256GCM/A256KW`, `A256GCM/ML-KEM-768`).
/// Never fails: names outside the table are [`QuantumStatus::Unknown`].
pub fn classify(algorithm: &str) -> Classification {
    let recognized = cryptoutil_jose::KeyAlgorithm::parse(algorithm).is_ok();
    let (purpose, key, algorithms) = match algorithm.split_once('/') {
        Some((enc, alg)) => {
            let enc = content_encryption(enc);
            let (key, algorithms) = if alg == "dir" {
                (enc.clone(), vec![enc])
            } else {
                let alg = key_management_algorithm(alg);
                (alg.clone(), vec![alg, enc])
            };
            (KeyPurpose::Encryption, key, algorithms)
        }
        None => {
            let alg = signing_algorithm(algorithm);
            (KeyPurpose::Signing, alg.clone(), vec![alg])
        }
    };
    let statuses = || algorithms.iter().map(|a| a.quantum);
    let quantum = if statuses().any(|q| q == QuantumStatus::Vulnerable) {
        QuantumStatus::Vulnerable
    } else if statuses().any(|q| q == QuantumStatus::Unknown) {
        QuantumStatus::Unknown
    } else {
        QuantumStatus::Resistant
    };
    let material = match key.key_type {
        "oct" => MaterialType::SecretKey,
        "unknown" => MaterialType::Unknown,
        _ => MaterialType::PrivateKey,
    };
    let purpose = if key.family == "unknown" {
        KeyPurpose::Unknown
    } else {
        purpose
    };
    let mut notes: Vec<&'static str> = Vec::new();
    for note in algorithms.iter().filter_map(|a| a.note) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    Classification {
        purpose,
        key,
        algorithms,
        material,
        recognized,
        quantum,
        notes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn status(name: &str) -> QuantumStatus {
        classify(name).quantum
    }

    #[test]
    fn classical_public_key_algorithms_are_vulnerable() {
        for name in [
            "RS256",
            "RS512",
            "PS384",
            "ES256",
            "ES512",
            "EdDSA",
            "A256GCM/RSA-OAEP-256",
            "A128GCM/ECDH-ES",
            "A256GCM/ECDH-ES+A256KW",
        ] {
            let c = classify(name);
            assert_eq!(c.quantum, QuantumStatus::Vulnerable, "{name}");
            assert_eq!(c.quantum.vulnerable(), Some(true), "{name}");
            assert_eq!(c.key.nist_quantum_security_level, Some(0), "{name}");
            assert_eq!(c.material, MaterialType::PrivateKey, "{name}");
            assert!(c.recognized, "{name}");
            assert!(c.notes.iter().any(|n| n.contains("Shor")), "{name}");
        }
    }

    #[test]
    fn symmetric_algorithms_are_not_vulnerable_and_small_aes_says_why() {
        for (name, bits, level) in [
            ("A256GCM/A256KW", 256, 5),
            ("A256GCM/dir", 256, 5),
            ("A256GCM/A256GCMKW", 256, 5),
            ("HS256", 256, 5),
            ("HS512", 512, 5),
            ("A128GCM/dir", 128, 1),
            ("A256GCM/A128KW", 128, 1),
            ("A192GCM/dir", 192, 3),
            ("A128CBC-HS256/dir", 256, 1),
        ] {
            let c = classify(name);
            assert_eq!(c.quantum, QuantumStatus::Resistant, "{name}");
            assert_eq!(c.quantum.vulnerable(), Some(false), "{name}");
            assert_eq!(c.material, MaterialType::SecretKey, "{name}");
            assert_eq!(c.key.key_size_bits, Some(bits), "{name}");
            assert_eq!(c.key.nist_quantum_security_level, Some(level), "{name}");
        }
        assert!(classify("A256GCM/A256KW").notes.is_empty());
        assert!(classify("A128GCM/dir").notes[0].contains("Grover"));
        // AES-256 key wrap with AES-128 content encryption: the content key is the weaker part.
        let mixed = classify("A128GCM/A256KW");
        assert_eq!(mixed.quantum, QuantumStatus::Resistant);
        assert_eq!(mixed.key.key_size_bits, Some(256));
        assert!(mixed.notes.iter().any(|n| n.contains("AES-128")));
        assert_eq!(mixed.algorithms.len(), 2);
    }

    #[test]
    fn post_quantum_algorithms_are_not_vulnerable_whether_or_not_this_build_knows_them() {
        for (name, set, level) in [
            ("ML-DSA-44", "44", 2),
            ("ML-DSA-65", "65", 3),
            ("ML-DSA-87", "87", 5),
            ("A256GCM/ML-KEM-768", "768", 3),
            ("A256GCM/ML-KEM-1024", "1024", 5),
            ("A256GCM/ML-KEM-768+A192KW", "768", 3),
            ("A256GCM/ML-KEM-1024+A256KW", "1024", 5),
        ] {
            let c = classify(name);
            assert_eq!(c.quantum, QuantumStatus::Resistant, "{name}");
            assert_eq!(c.key.parameter_set, Some(set), "{name}");
            assert_eq!(c.key.nist_quantum_security_level, Some(level), "{name}");
            assert_eq!(c.key.key_type, "AKP", "{name}");
            assert_eq!(c.material, MaterialType::PrivateKey, "{name}");
            assert!(c.key.oid.is_some(), "{name}");
        }
        assert_eq!(classify("ML-DSA-65").purpose, KeyPurpose::Signing);
        assert_eq!(
            classify("A256GCM/ML-KEM-768").purpose,
            KeyPurpose::Encryption
        );
    }

    #[test]
    fn unknown_names_are_classified_as_unknown_without_panicking() {
        for name in [
            "",
            "/",
            "none",
            "RSA1_5",
            "A256GCM/",
            "/A256KW",
            "SLH-DSA-SHA2-128s",
            "A256GCM/A256KW/extra",
            "ES256\u{0}",
            "ℵ/ℶ",
        ] {
            let c = classify(name);
            assert_eq!(c.quantum, QuantumStatus::Unknown, "{name:?}");
            assert_eq!(c.quantum.vulnerable(), None, "{name:?}");
            assert!(!c.recognized, "{name:?}");
        }
        // An unknown content encryption with a vulnerable key management is still vulnerable.
        assert_eq!(status("X999/RSA-OAEP-256"), QuantumStatus::Vulnerable);
        assert_eq!(classify("SLH-DSA-SHA2-128s").purpose, KeyPurpose::Unknown);
        assert_eq!(
            classify("SLH-DSA-SHA2-128s").material,
            MaterialType::Unknown
        );
    }

    /// Every algorithm this build's JOSE layer accepts for an elastic key is in the table, so a
    /// new one cannot reach the inventory as "unknown" unnoticed.
    #[test]
    fn every_algorithm_the_jose_layer_knows_is_classified() {
        for alg in cryptoutil_jose::KeyAlgorithm::all() {
            let name = alg.to_string();
            let c = classify(&name);
            assert!(c.recognized, "{name}");
            assert_ne!(c.quantum, QuantumStatus::Unknown, "{name}");
            assert!(c.algorithms.iter().all(|a| a.family != "unknown"), "{name}");
        }
    }
}
