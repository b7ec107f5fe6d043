//! Elastic key algorithms and data key kinds: parsing, key generation and import checks.

use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, jwe, jws};

use super::KeyError;

/// What an elastic key does, decided by its algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// JWE: encrypt, decrypt, generate.
    Encryption {
        /// Content encryption.
        enc: ContentEncryption,
        /// Key management.
        alg: JweAlgorithm,
    },
    /// JWS: sign, verify.
    Signing(JwsAlgorithm),
}

/// Parses an elastic key algorithm (`A256GCM/A256KW`, `ES256`), with a message that helps.
pub fn parse(text: &str) -> Result<(KeyAlgorithm, Purpose), KeyError> {
    let alg = KeyAlgorithm::parse(text).map_err(|_| {
        KeyError::Invalid(format!(
            "unknown or forbidden algorithm {:?}: use a JWS alg (HS256 … EdDSA, ML-DSA-44/65/87) \
             or a JWE enc/alg pair such as A256GCM/A256KW or A256GCM/ML-KEM-768",
            truncate(text)
        ))
    })?;
    // The FIPS build refuses what its approved table does not list, saying why (a 400).
    cryptoutil_jose::policy::check_key_algorithm(alg)
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    let purpose = match alg {
        KeyAlgorithm::Jws(a) => Purpose::Signing(a),
        KeyAlgorithm::Jwe { enc, alg } => Purpose::Encryption { enc, alg },
    };
    Ok((alg, purpose))
}

/// True when the material has a public half worth showing (`public_jwk`): RSA, EC, OKP and AKP
/// (ML-DSA, ML-KEM) keys.
pub fn is_asymmetric(key: &Jwk) -> bool {
    key.kty() != "oct"
}

/// Proves that an imported JWK works with the algorithm by a round trip through the JOSE layer:
/// it must hold private material and produce output its own public half accepts.
pub fn check_import(key: &Jwk, purpose: Purpose) -> Result<(), KeyError> {
    if !key.is_private() {
        return Err(KeyError::Invalid(
            "the imported JWK must hold private or secret key material".to_owned(),
        ));
    }
    const PROBE: &[u8] = b"cryptoutil import probe";
    let fail = |e: cryptoutil_jose::JoseError| {
        KeyError::Invalid(format!(
            "the JWK does not fit the elastic key's algorithm: {e}"
        ))
    };
    match purpose {
        Purpose::Signing(alg) => {
            let token = jws::sign(key, alg, PROBE, None).map_err(fail)?;
            let verifier = if is_asymmetric(key) {
                key.to_public().map_err(fail)?
            } else {
                key.clone()
            };
            jws::verify(&verifier, alg, &token).map_err(fail)?;
        }
        Purpose::Encryption { enc, alg } => {
            let public = if is_asymmetric(key) {
                key.to_public().map_err(fail)?
            } else {
                key.clone()
            };
            let token = jwe::encrypt(&public, alg, enc, PROBE, None).map_err(fail)?;
            let out = jwe::decrypt(key, alg, enc, &token).map_err(fail)?;
            if out.plaintext != PROBE {
                return Err(KeyError::Invalid("the JWK failed a round trip".to_owned()));
            }
        }
    }
    Ok(())
}

/// A data key kind for `generate?alg=` (SPEC §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKeyKind {
    /// `oct/<bits>`: 128, 192, 256, 384 or 512 bits.
    Oct(usize),
    /// `RSA/<bits>`: 2048, 3072 or 4096.
    Rsa(usize),
    /// `EC/P256`, `EC/P384`, `EC/P521`.
    Ec(cryptoutil_jose::EcCurve),
    /// `OKP/Ed25519`.
    Ed25519,
}

/// Every accepted `alg` value for data keys, for error messages and the API document.
pub const DATA_KEY_KINDS: &[&str] = &[
    "oct/128",
    "oct/192",
    "oct/256",
    "oct/384",
    "oct/512",
    "RSA/2048",
    "RSA/3072",
    "RSA/4096",
    "EC/P256",
    "EC/P384",
    "EC/P521",
    "OKP/Ed25519",
];

impl DataKeyKind {
    /// Parses `oct/256`, `RSA/3072`, `EC/P384`, `OKP/Ed25519`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        use cryptoutil_jose::EcCurve;
        Ok(match text {
            "oct/128" => Self::Oct(16),
            "oct/192" => Self::Oct(24),
            "oct/256" => Self::Oct(32),
            "oct/384" => Self::Oct(48),
            "oct/512" => Self::Oct(64),
            "RSA/2048" => Self::Rsa(2048),
            "RSA/3072" => Self::Rsa(3072),
            "RSA/4096" => Self::Rsa(4096),
            "EC/P256" => Self::Ec(EcCurve::P256),
            "EC/P384" => Self::Ec(EcCurve::P384),
            "EC/P521" => Self::Ec(EcCurve::P521),
            "OKP/Ed25519" => Self::Ed25519,
            other => {
                return Err(KeyError::Invalid(format!(
                    "unknown data key kind {:?}; accepted: {}",
                    truncate(other),
                    DATA_KEY_KINDS.join(", ")
                )));
            }
        })
    }

    /// Generates a fresh key of this kind.
    pub fn generate(self) -> Result<Jwk, KeyError> {
        let key = match self {
            Self::Oct(len) => Jwk::generate_oct(len),
            Self::Rsa(bits) => Jwk::generate_rsa(bits),
            Self::Ec(crv) => Jwk::generate_ec(crv),
            Self::Ed25519 => Jwk::generate_okp(cryptoutil_jose::OkpCurve::Ed25519),
        };
        key.map_err(|e| KeyError::Internal(format!("data key generation failed: {e}")))
    }
}

/// Shortens caller text before it goes into an error message.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_refuses_banned_names() {
        assert!(matches!(
            parse("A256GCM/A256KW").unwrap().1,
            Purpose::Encryption { .. }
        ));
        assert_eq!(
            parse("ES256").unwrap().1,
            Purpose::Signing(JwsAlgorithm::ES256)
        );
        assert_eq!(
            parse("ML-DSA-65").unwrap().1,
            Purpose::Signing(JwsAlgorithm::MlDsa65)
        );
        if cryptoutil_jose::policy::ENFORCED {
            // The FIPS build refuses ML-KEM JWE (KMAC256 is outside the module).
            assert!(parse("A256GCM/ML-KEM-1024+A256KW").is_err());
        } else {
            assert!(matches!(
                parse("A256GCM/ML-KEM-1024+A256KW").unwrap().1,
                Purpose::Encryption {
                    alg: JweAlgorithm::MlKem1024A256KW,
                    ..
                }
            ));
        }
        for bad in [
            "none",
            "RSA1_5",
            "A256GCM/RSA-OAEP",
            "HS1",
            "",
            "A256GCM/",
            "ML-DSA-99",
            "A256GCM/ML-KEM-512",
            "ML-KEM-768",
        ] {
            assert!(matches!(parse(bad), Err(KeyError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn import_check_accepts_fitting_keys_and_refuses_others() {
        for name in [
            "A256GCM/A256KW",
            "A128GCM/dir",
            "ES384",
            "HS512",
            "EdDSA",
            "A256GCM/ECDH-ES",
            "ML-DSA-44",
            "ML-DSA-87",
            "A256GCM/ML-KEM-768",
            "A128CBC-HS256/ML-KEM-1024+A256KW",
        ]
        .into_iter()
        .filter(|name| !cryptoutil_jose::policy::ENFORCED || !name.contains("ML-KEM"))
        {
            let (alg, purpose) = parse(name).unwrap();
            let key = Jwk::generate_for(alg).unwrap();
            check_import(&key, purpose).unwrap();
            if is_asymmetric(&key) {
                assert!(
                    check_import(&key.to_public().unwrap(), purpose).is_err(),
                    "{name}"
                );
            }
        }
        let p256 = Jwk::generate_for(parse("ES256").unwrap().0).unwrap();
        assert!(check_import(&p256, parse("ES384").unwrap().1).is_err());
        // An ML-DSA-44 key for an ML-DSA-65 elastic key, an ML-KEM-768 key for ML-KEM-1024.
        let dsa44 = Jwk::generate_for(parse("ML-DSA-44").unwrap().0).unwrap();
        assert!(check_import(&dsa44, parse("ML-DSA-65").unwrap().1).is_err());
        if !cryptoutil_jose::policy::ENFORCED {
            let kem768 = Jwk::generate_for(parse("A256GCM/ML-KEM-768").unwrap().0).unwrap();
            assert!(check_import(&kem768, parse("A256GCM/ML-KEM-1024").unwrap().1).is_err());
            assert!(check_import(&kem768, parse("A256GCM/ML-KEM-768+A192KW").unwrap().1).is_err());
        }
        let aes128 = Jwk::generate_oct(16).unwrap();
        assert!(check_import(&aes128, parse("A256GCM/dir").unwrap().1).is_err());
    }

    #[test]
    fn data_key_kinds_round_trip() {
        for kind in DATA_KEY_KINDS {
            let parsed = DataKeyKind::parse(kind).unwrap();
            if !matches!(parsed, DataKeyKind::Rsa(3072 | 4096)) {
                parsed.generate().unwrap();
            }
        }
        assert!(DataKeyKind::parse("oct/64").is_err());
        assert!(DataKeyKind::parse("RSA/1024").is_err());
    }
}
