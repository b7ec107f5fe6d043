//! Credential public keys (COSE_Key, RFC 9052/9053, RFC 8230) and signature verification with
//! aws-lc-rs: ES256, ES384, EdDSA (Ed25519), RS256 and PS256. The key's `alg` must match its
//! type and curve; anything else is [`WebAuthnError::UnsupportedAlgorithm`].

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use ciborium::Value;
use coset::iana::EnumI64 as _;
use coset::{AsCborValue as _, CoseKey, KeyType, Label, RegisteredLabelWithPrivate};

use super::WebAuthnError;

/// ECDSA with SHA-256 on P-256.
pub(super) const ES256: i64 = -7;
/// EdDSA (Ed25519 only).
pub(super) const EDDSA: i64 = -8;
/// ECDSA with SHA-384 on P-384.
pub(super) const ES384: i64 = -35;
/// RSASSA-PSS with SHA-256.
pub(super) const PS256: i64 = -37;
/// RSASSA-PKCS1-v1_5 with SHA-256.
pub(super) const RS256: i64 = -257;

/// The algorithms this module verifies, preferred first.
pub(super) const SUPPORTED: [i64; 5] = [ES256, EDDSA, ES384, PS256, RS256];
/// COSE key types.
const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
/// COSE curves.
const CRV_P256: i64 = 1;
const CRV_P384: i64 = 2;
const CRV_ED25519: i64 = 6;
/// The largest RSA modulus accepted (aws-lc-rs verifies 2048 to 8192 bits).
const MAX_RSA_MODULUS: usize = 1024;
/// The largest RSA public exponent accepted, in bytes.
const MAX_RSA_EXPONENT: usize = 8;

/// A credential public key ready to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PublicKey {
    /// ES256 or ES384: the uncompressed SEC1 point.
    Ecdsa { algorithm: i64, point: Vec<u8> },
    /// EdDSA over Ed25519: the 32-byte key.
    Ed25519(Vec<u8>),
    /// RS256 or PS256: modulus and exponent, big-endian without leading zeros.
    Rsa {
        algorithm: i64,
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl PublicKey {
    /// Decodes a COSE_Key value.
    pub(super) fn from_cose(value: Value) -> Result<Self, WebAuthnError> {
        let malformed = || WebAuthnError::Malformed("credential public key");
        // coset refuses algorithms outside its registry: an unknown algorithm is unsupported,
        // not malformed.
        if let Value::Map(entries) = &value {
            let alg = entries
                .iter()
                .find(|(label, _)| *label == Value::Integer(3.into()));
            if let Some((_, Value::Integer(alg))) = alg {
                let known = i64::try_from(*alg).is_ok_and(|alg| SUPPORTED.contains(&alg));
                if !known {
                    return Err(WebAuthnError::UnsupportedAlgorithm);
                }
            }
        }
        let key = CoseKey::from_cbor_value(value).map_err(|_| malformed())?;
        let kty = match &key.kty {
            KeyType::Assigned(kty) => kty.to_i64(),
            _ => return Err(WebAuthnError::UnsupportedAlgorithm),
        };
        let algorithm = match &key.alg {
            Some(RegisteredLabelWithPrivate::Assigned(alg)) => alg.to_i64(),
            Some(RegisteredLabelWithPrivate::PrivateUse(alg)) => *alg,
            _ => return Err(WebAuthnError::UnsupportedAlgorithm),
        };
        let param = |label: i64| {
            key.params
                .iter()
                .find(|(l, _)| *l == Label::Int(label))
                .map(|(_, value)| value)
        };
        let key = Self::from_parameters(kty, algorithm, param)?;
        key.check_usable()?;
        Ok(key)
    }

    /// The key of type `kty` for `algorithm` from its COSE parameters.
    fn from_parameters<'k>(
        kty: i64,
        algorithm: i64,
        param: impl Fn(i64) -> Option<&'k Value>,
    ) -> Result<Self, WebAuthnError> {
        let malformed = || WebAuthnError::Malformed("credential public key");
        let bytes = |label: i64| match param(label) {
            Some(Value::Bytes(bytes)) => Ok(bytes.as_slice()),
            _ => Err(malformed()),
        };
        let curve = || match param(-1) {
            Some(Value::Integer(crv)) => i64::try_from(*crv).map_err(|_| malformed()),
            _ => Err(malformed()),
        };
        match (kty, algorithm) {
            (KTY_EC2, ES256 | ES384) => {
                // d (-4) would be a private key: never accepted.
                if param(-4).is_some() {
                    return Err(malformed());
                }
                let (expected_curve, size) = if algorithm == ES256 {
                    (CRV_P256, 32)
                } else {
                    (CRV_P384, 48)
                };
                if curve()? != expected_curve {
                    return Err(WebAuthnError::UnsupportedAlgorithm);
                }
                let (x, y) = (bytes(-2)?, bytes(-3)?);
                if x.len() != size || y.len() != size {
                    return Err(malformed());
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok(Self::Ecdsa { algorithm, point })
            }
            (KTY_OKP, EDDSA) => {
                if param(-4).is_some() {
                    return Err(malformed());
                }
                if curve()? != CRV_ED25519 {
                    return Err(WebAuthnError::UnsupportedAlgorithm);
                }
                let x = bytes(-2)?;
                if x.len() != 32 {
                    return Err(malformed());
                }
                Ok(Self::Ed25519(x.to_vec()))
            }
            (KTY_RSA, RS256 | PS256) => {
                if param(-3).is_some() {
                    return Err(malformed());
                }
                let n = strip_leading_zeros(bytes(-1)?);
                let e = strip_leading_zeros(bytes(-2)?);
                if n.len() < 256 {
                    return Err(WebAuthnError::UnsupportedAlgorithm);
                }
                if n.len() > MAX_RSA_MODULUS || e.is_empty() || e.len() > MAX_RSA_EXPONENT {
                    return Err(malformed());
                }
                Ok(Self::Rsa {
                    algorithm,
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
            }
            _ => Err(WebAuthnError::UnsupportedAlgorithm),
        }
    }

    /// Parses the key with aws-lc-rs once, so a key that could never verify (an EC point off
    /// its curve, an inconsistent RSA key) is refused at registration rather than stored.
    fn check_usable(&self) -> Result<(), WebAuthnError> {
        let parsed = match self {
            Self::Ecdsa { algorithm, point } => {
                signature::ParsedPublicKey::new(ecdsa_verifier(*algorithm)?, point).map(drop)
            }
            Self::Ed25519(key) => {
                signature::ParsedPublicKey::new(&signature::ED25519, key).map(drop)
            }
            Self::Rsa { algorithm, n, e } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(rsa_verifier(*algorithm)?)
                .map(drop),
        };
        parsed.map_err(|_| WebAuthnError::Malformed("credential public key"))
    }

    /// The COSE algorithm the key is bound to.
    pub(super) fn algorithm(&self) -> i64 {
        match self {
            Self::Ecdsa { algorithm, .. } | Self::Rsa { algorithm, .. } => *algorithm,
            Self::Ed25519(_) => EDDSA,
        }
    }

    /// Verifies `signature` over `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebAuthnError> {
        let verified = match self {
            Self::Ecdsa { algorithm, point } => {
                UnparsedPublicKey::new(ecdsa_verifier(*algorithm)?, point)
                    .verify(message, signature)
            }
            Self::Ed25519(key) => {
                UnparsedPublicKey::new(&signature::ED25519, key).verify(message, signature)
            }
            Self::Rsa { algorithm, n, e } => RsaPublicKeyComponents { n, e }.verify(
                rsa_verifier(*algorithm)?,
                message,
                signature,
            ),
        };
        verified.map_err(|_| WebAuthnError::BadSignature)
    }
}

/// Verifies `signature` over `message` with an X.509 subject public key (the bit string of
/// its SubjectPublicKeyInfo: a SEC1 point, an Ed25519 key or a PKCS#1 RSAPublicKey) under
/// the COSE `algorithm`.
pub(super) fn verify_with_certificate_key(
    algorithm: i64,
    key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), WebAuthnError> {
    let verifier: &dyn signature::VerificationAlgorithm = match algorithm {
        ES256 | ES384 => ecdsa_verifier(algorithm)?,
        EDDSA => &signature::ED25519,
        RS256 | PS256 => rsa_verifier(algorithm)?,
        _ => return Err(WebAuthnError::UnsupportedAlgorithm),
    };
    UnparsedPublicKey::new(verifier, key)
        .verify(message, signature)
        .map_err(|_| WebAuthnError::BadSignature)
}

fn ecdsa_verifier(
    algorithm: i64,
) -> Result<&'static signature::EcdsaVerificationAlgorithm, WebAuthnError> {
    match algorithm {
        ES256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
        ES384 => Ok(&signature::ECDSA_P384_SHA384_ASN1),
        _ => Err(WebAuthnError::UnsupportedAlgorithm),
    }
}

fn rsa_verifier(algorithm: i64) -> Result<&'static signature::RsaParameters, WebAuthnError> {
    match algorithm {
        RS256 => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
        PS256 => Ok(&signature::RSA_PSS_2048_8192_SHA256),
        _ => Err(WebAuthnError::UnsupportedAlgorithm),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

    use super::*;

    fn map(entries: Vec<(i64, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Integer(k.into()), v))
                .collect(),
        )
    }

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    fn ec2(alg: i64, crv: i64, x: Vec<u8>, y: Vec<u8>) -> Value {
        map(vec![
            (1, int(KTY_EC2)),
            (3, int(alg)),
            (-1, int(crv)),
            (-2, Value::Bytes(x)),
            (-3, Value::Bytes(y)),
        ])
    }

    #[test]
    fn verifies_es256_and_refuses_a_tampered_signature() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let key = PublicKey::from_cose(ec2(
            ES256,
            CRV_P256,
            point[1..33].to_vec(),
            point[33..].to_vec(),
        ))
        .unwrap();
        assert_eq!(key.algorithm(), ES256);
        let sig = pair.sign(&rng, b"message").unwrap();
        assert_eq!(key.verify(b"message", sig.as_ref()), Ok(()));
        assert_eq!(
            key.verify(b"messagf", sig.as_ref()),
            Err(WebAuthnError::BadSignature)
        );
        let mut bad = sig.as_ref().to_vec();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            key.verify(b"message", &bad),
            Err(WebAuthnError::BadSignature)
        );
    }

    #[test]
    fn verifies_ed25519() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let cose = map(vec![
            (1, int(KTY_OKP)),
            (3, int(EDDSA)),
            (-1, int(CRV_ED25519)),
            (-2, Value::Bytes(pair.public_key().as_ref().to_vec())),
        ]);
        let key = PublicKey::from_cose(cose).unwrap();
        let sig = pair.sign(b"m");
        assert_eq!(key.verify(b"m", sig.as_ref()), Ok(()));
        assert_eq!(
            key.verify(b"n", sig.as_ref()),
            Err(WebAuthnError::BadSignature)
        );
    }

    #[test]
    fn algorithm_must_match_key_type_and_curve() {
        let xy = || (vec![1; 32], vec![2; 32]);
        let (x, y) = xy();
        assert_eq!(
            PublicKey::from_cose(ec2(ES256, CRV_P384, x.clone(), y.clone())),
            Err(WebAuthnError::UnsupportedAlgorithm)
        );
        assert_eq!(
            PublicKey::from_cose(ec2(ES384, CRV_P256, x.clone(), y.clone())),
            Err(WebAuthnError::UnsupportedAlgorithm)
        );
        // ES512 (-36), an unknown algorithm, and RS256 on an EC2 key.
        for alg in [-36, -65535, 12345, RS256, EDDSA] {
            assert_eq!(
                PublicKey::from_cose(ec2(alg, CRV_P256, x.clone(), y.clone())),
                Err(WebAuthnError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        // Ed448 on OKP.
        let ed448 = map(vec![
            (1, int(KTY_OKP)),
            (3, int(EDDSA)),
            (-1, int(7)),
            (-2, Value::Bytes(vec![0; 57])),
        ]);
        assert_eq!(
            PublicKey::from_cose(ed448),
            Err(WebAuthnError::UnsupportedAlgorithm)
        );
        // No alg at all.
        let no_alg = map(vec![(1, int(KTY_EC2)), (-1, int(CRV_P256))]);
        assert_eq!(
            PublicKey::from_cose(no_alg),
            Err(WebAuthnError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(PublicKey::from_cose(ec2(ES256, CRV_P256, vec![1; 31], vec![2; 32])).is_err());
        // The right sizes, but not a point of P-256.
        assert_eq!(
            PublicKey::from_cose(ec2(ES256, CRV_P256, vec![1; 32], vec![2; 32])),
            Err(WebAuthnError::Malformed("credential public key"))
        );
        assert!(PublicKey::from_cose(int(1)).is_err());
        let private = map(vec![
            (1, int(KTY_EC2)),
            (3, int(ES256)),
            (-1, int(CRV_P256)),
            (-2, Value::Bytes(vec![1; 32])),
            (-3, Value::Bytes(vec![2; 32])),
            (-4, Value::Bytes(vec![3; 32])),
        ]);
        assert!(PublicKey::from_cose(private).is_err());
        // Duplicate labels (coset polices them).
        let duplicate = Value::Map(vec![
            (int(1), int(KTY_EC2)),
            (int(1), int(KTY_EC2)),
            (int(3), int(ES256)),
        ]);
        assert!(PublicKey::from_cose(duplicate).is_err());
        // A compressed point (y as a bool).
        let compressed = map(vec![
            (1, int(KTY_EC2)),
            (3, int(ES256)),
            (-1, int(CRV_P256)),
            (-2, Value::Bytes(vec![1; 32])),
            (-3, Value::Bool(true)),
        ]);
        assert!(PublicKey::from_cose(compressed).is_err());
    }

    #[test]
    fn rsa_keys_below_2048_bits_are_refused() {
        let rsa = |n: Vec<u8>| {
            map(vec![
                (1, int(KTY_RSA)),
                (3, int(RS256)),
                (-1, Value::Bytes(n)),
                (-2, Value::Bytes(vec![1, 0, 1])),
            ])
        };
        assert_eq!(
            PublicKey::from_cose(rsa(vec![0xff; 128])),
            Err(WebAuthnError::UnsupportedAlgorithm)
        );
        let mut padded = vec![0; 1];
        padded.extend(vec![0xff; 256]);
        assert!(matches!(
            PublicKey::from_cose(rsa(padded)),
            Ok(PublicKey::Rsa { ref n, .. }) if n.len() == 256
        ));
        assert!(PublicKey::from_cose(rsa(vec![0xff; 1025])).is_err());
    }
}
