//! JSON Web Algorithms (RFC 7518), restricted to FIPS 140-3 approved algorithms.
//!
//! Names parse and print exactly as registered in the IANA JOSE registry. Banned algorithms
//! (`none`, `RSA1_5`, SHA-1 `RSA-OAEP`, PBES2, ...) fail to parse with
//! [`JoseError::UnsupportedAlgorithm`].

use core::fmt;
use core::str::FromStr;

use crate::error::{JoseError, Result};

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The registered JOSE name.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = JoseError;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(JoseError::UnsupportedAlgorithm(truncate(other))),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Truncates attacker-controlled names before putting them into errors.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

named_enum!(
    /// JWS signature / MAC algorithms (`alg` of a JWS).
    JwsAlgorithm {
        /// HMAC with SHA-256.
        HS256 => "HS256",
        /// HMAC with SHA-384.
        HS384 => "HS384",
        /// HMAC with SHA-512.
        HS512 => "HS512",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RS256 => "RS256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        RS384 => "RS384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        RS512 => "RS512",
        /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
        PS256 => "PS256",
        /// RSASSA-PSS with SHA-384 and MGF1-SHA-384.
        PS384 => "PS384",
        /// RSASSA-PSS with SHA-512 and MGF1-SHA-512.
        PS512 => "PS512",
        /// ECDSA on P-256 with SHA-256.
        ES256 => "ES256",
        /// ECDSA on P-384 with SHA-384.
        ES384 => "ES384",
        /// ECDSA on P-521 with SHA-512.
        ES512 => "ES512",
        /// EdDSA (Ed25519 only).
        EdDSA => "EdDSA",
        /// ML-DSA-44 (FIPS 204, RFC 9964), pure, empty context.
        MlDsa44 => "ML-DSA-44",
        /// ML-DSA-65 (FIPS 204, RFC 9964), pure, empty context.
        MlDsa65 => "ML-DSA-65",
        /// ML-DSA-87 (FIPS 204, RFC 9964), pure, empty context.
        MlDsa87 => "ML-DSA-87",
    }
);

named_enum!(
    /// JWE key management algorithms (`alg` of a JWE).
    JweAlgorithm {
        /// Direct use of a shared symmetric key as the CEK.
        Dir => "dir",
        /// AES-128 Key Wrap.
        A128KW => "A128KW",
        /// AES-192 Key Wrap.
        A192KW => "A192KW",
        /// AES-256 Key Wrap.
        A256KW => "A256KW",
        /// AES-128-GCM key wrapping.
        A128GCMKW => "A128GCMKW",
        /// AES-192-GCM key wrapping.
        A192GCMKW => "A192GCMKW",
        /// AES-256-GCM key wrapping.
        A256GCMKW => "A256GCMKW",
        /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
        RsaOaep256 => "RSA-OAEP-256",
        /// RSAES-OAEP with SHA-384 and MGF1-SHA-384.
        RsaOaep384 => "RSA-OAEP-384",
        /// RSAES-OAEP with SHA-512 and MGF1-SHA-512.
        RsaOaep512 => "RSA-OAEP-512",
        /// ECDH-ES direct key agreement (Concat KDF).
        EcdhEs => "ECDH-ES",
        /// ECDH-ES + AES-128 Key Wrap.
        EcdhEsA128KW => "ECDH-ES+A128KW",
        /// ECDH-ES + AES-192 Key Wrap.
        EcdhEsA192KW => "ECDH-ES+A192KW",
        /// ECDH-ES + AES-256 Key Wrap.
        EcdhEsA256KW => "ECDH-ES+A256KW",
        /// ML-KEM-768 direct key agreement (draft-ietf-jose-pqc-kem-05): the KMAC256 output is the CEK.
        MlKem768 => "ML-KEM-768",
        /// ML-KEM-1024 direct key agreement (draft-ietf-jose-pqc-kem-05).
        MlKem1024 => "ML-KEM-1024",
        /// ML-KEM-768 + AES-192 Key Wrap (draft-ietf-jose-pqc-kem-05).
        MlKem768A192KW => "ML-KEM-768+A192KW",
        /// ML-KEM-1024 + AES-256 Key Wrap (draft-ietf-jose-pqc-kem-05).
        MlKem1024A256KW => "ML-KEM-1024+A256KW",
    }
);

named_enum!(
    /// JWE content encryption algorithms (`enc`).
    ContentEncryption {
        /// AES-128-GCM.
        A128GCM => "A128GCM",
        /// AES-192-GCM.
        A192GCM => "A192GCM",
        /// AES-256-GCM.
        A256GCM => "A256GCM",
        /// AES-128-CBC + HMAC-SHA-256 (RFC 7518 §5.2.3).
        A128CbcHs256 => "A128CBC-HS256",
        /// AES-192-CBC + HMAC-SHA-384 (RFC 7518 §5.2.4).
        A192CbcHs384 => "A192CBC-HS384",
        /// AES-256-CBC + HMAC-SHA-512 (RFC 7518 §5.2.5).
        A256CbcHs512 => "A256CBC-HS512",
    }
);

named_enum!(
    /// NIST curves for `kty: EC`.
    EcCurve {
        /// NIST P-256.
        P256 => "P-256",
        /// NIST P-384.
        P384 => "P-384",
        /// NIST P-521.
        P521 => "P-521",
    }
);

named_enum!(
    /// Curves for `kty: OKP` (RFC 8037).
    OkpCurve {
        /// Ed25519 signatures.
        Ed25519 => "Ed25519",
        /// X25519 key agreement.
        X25519 => "X25519",
    }
);

impl EcCurve {
    /// Size of a coordinate / private scalar in bytes.
    #[must_use]
    pub const fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }
}

impl JwsAlgorithm {
    /// Length of the HMAC key this algorithm is generated with (the hash output size).
    #[must_use]
    pub const fn hmac_key_len(self) -> Option<usize> {
        match self {
            JwsAlgorithm::HS256 => Some(32),
            JwsAlgorithm::HS384 => Some(48),
            JwsAlgorithm::HS512 => Some(64),
            _ => None,
        }
    }

    /// RSA modulus size (bits) generated for this algorithm (SPEC §3.3).
    #[must_use]
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            JwsAlgorithm::RS256 | JwsAlgorithm::PS256 => Some(2048),
            JwsAlgorithm::RS384 | JwsAlgorithm::PS384 => Some(3072),
            JwsAlgorithm::RS512 | JwsAlgorithm::PS512 => Some(4096),
            _ => None,
        }
    }

    /// Whether this is an ML-DSA algorithm (keys of `kty: AKP`).
    #[must_use]
    pub const fn is_ml_dsa(self) -> bool {
        matches!(
            self,
            JwsAlgorithm::MlDsa44 | JwsAlgorithm::MlDsa65 | JwsAlgorithm::MlDsa87
        )
    }

    /// The curve this ECDSA algorithm uses.
    #[must_use]
    pub const fn ec_curve(self) -> Option<EcCurve> {
        match self {
            JwsAlgorithm::ES256 => Some(EcCurve::P256),
            JwsAlgorithm::ES384 => Some(EcCurve::P384),
            JwsAlgorithm::ES512 => Some(EcCurve::P521),
            _ => None,
        }
    }
}

impl ContentEncryption {
    /// CEK length in bytes.
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128GCM => 16,
            ContentEncryption::A192GCM => 24,
            ContentEncryption::A256GCM | ContentEncryption::A128CbcHs256 => 32,
            ContentEncryption::A192CbcHs384 => 48,
            ContentEncryption::A256CbcHs512 => 64,
        }
    }

    /// IV length in bytes.
    #[must_use]
    pub const fn iv_len(self) -> usize {
        if self.is_gcm() { 12 } else { 16 }
    }

    /// Authentication tag length in bytes.
    #[must_use]
    pub const fn tag_len(self) -> usize {
        match self {
            ContentEncryption::A128GCM
            | ContentEncryption::A192GCM
            | ContentEncryption::A256GCM
            | ContentEncryption::A128CbcHs256 => 16,
            ContentEncryption::A192CbcHs384 => 24,
            ContentEncryption::A256CbcHs512 => 32,
        }
    }

    /// Whether this is an AES-GCM algorithm.
    #[must_use]
    pub const fn is_gcm(self) -> bool {
        matches!(
            self,
            ContentEncryption::A128GCM | ContentEncryption::A192GCM | ContentEncryption::A256GCM
        )
    }
}

impl JweAlgorithm {
    /// Symmetric key length (bytes) required of an `oct` key for AES-KW / AES-GCMKW.
    #[must_use]
    pub const fn kek_len(self) -> Option<usize> {
        match self {
            JweAlgorithm::A128KW | JweAlgorithm::A128GCMKW | JweAlgorithm::EcdhEsA128KW => Some(16),
            JweAlgorithm::A192KW
            | JweAlgorithm::A192GCMKW
            | JweAlgorithm::EcdhEsA192KW
            | JweAlgorithm::MlKem768A192KW => Some(24),
            JweAlgorithm::A256KW
            | JweAlgorithm::A256GCMKW
            | JweAlgorithm::EcdhEsA256KW
            | JweAlgorithm::MlKem1024A256KW => Some(32),
            _ => None,
        }
    }

    /// Whether the CEK is determined by the key management algorithm (`dir`, `ECDH-ES`,
    /// `ML-KEM-768`, `ML-KEM-1024`), which makes the algorithm unusable with several recipients.
    #[must_use]
    pub const fn is_direct(self) -> bool {
        matches!(
            self,
            JweAlgorithm::Dir
                | JweAlgorithm::EcdhEs
                | JweAlgorithm::MlKem768
                | JweAlgorithm::MlKem1024
        )
    }

    /// Whether this is an ML-KEM variant (keys of `kty: AKP`, draft-ietf-jose-pqc-kem-05).
    #[must_use]
    pub const fn is_ml_kem(self) -> bool {
        matches!(
            self,
            JweAlgorithm::MlKem768
                | JweAlgorithm::MlKem1024
                | JweAlgorithm::MlKem768A192KW
                | JweAlgorithm::MlKem1024A256KW
        )
    }

    /// Whether this is an ECDH-ES variant.
    #[must_use]
    pub const fn is_ecdh(self) -> bool {
        matches!(
            self,
            JweAlgorithm::EcdhEs
                | JweAlgorithm::EcdhEsA128KW
                | JweAlgorithm::EcdhEsA192KW
                | JweAlgorithm::EcdhEsA256KW
        )
    }

    /// RSA modulus size (bits) generated for this algorithm (SPEC §3.3).
    #[must_use]
    pub const fn rsa_bits(self) -> Option<usize> {
        match self {
            JweAlgorithm::RsaOaep256 => Some(2048),
            JweAlgorithm::RsaOaep384 => Some(3072),
            JweAlgorithm::RsaOaep512 => Some(4096),
            _ => None,
        }
    }

    /// Default curve generated for ECDH-ES variants (SPEC §3.3; X25519 is available on request).
    #[must_use]
    pub const fn default_ec_curve(self) -> Option<EcCurve> {
        match self {
            JweAlgorithm::EcdhEs | JweAlgorithm::EcdhEsA128KW => Some(EcCurve::P256),
            JweAlgorithm::EcdhEsA192KW => Some(EcCurve::P384),
            JweAlgorithm::EcdhEsA256KW => Some(EcCurve::P521),
            _ => None,
        }
    }
}

/// An elastic key's algorithm: either a JWS `alg` (`"ES256"`) or a JWE `enc/alg` pair
/// (`"A256GCM/A256KW"`), as stored by the KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// A signing / MAC key.
    Jws(JwsAlgorithm),
    /// An encryption key.
    Jwe {
        /// Content encryption.
        enc: ContentEncryption,
        /// Key management.
        alg: JweAlgorithm,
    },
}

impl KeyAlgorithm {
    /// The KMS default elastic key algorithm, `A256GCM/A256KW`.
    pub const DEFAULT: KeyAlgorithm = KeyAlgorithm::Jwe {
        enc: ContentEncryption::A256GCM,
        alg: JweAlgorithm::A256KW,
    };

    /// Parses `"ES256"` or `"A256GCM/A256KW"` (enc/alg).
    ///
    /// # Errors
    /// [`JoseError::UnsupportedAlgorithm`] for unknown or banned names.
    pub fn parse(s: &str) -> Result<Self> {
        s.parse()
    }

    /// Every supported combination (16 JWS + 6 × 18 JWE).
    #[must_use]
    pub fn all() -> Vec<KeyAlgorithm> {
        let mut v: Vec<KeyAlgorithm> = JwsAlgorithm::ALL
            .iter()
            .map(|a| KeyAlgorithm::Jws(*a))
            .collect();
        for enc in ContentEncryption::ALL {
            for alg in JweAlgorithm::ALL {
                v.push(KeyAlgorithm::Jwe {
                    enc: *enc,
                    alg: *alg,
                });
            }
        }
        v
    }
}

impl FromStr for KeyAlgorithm {
    type Err = JoseError;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('/') {
            Some((enc, alg)) => Ok(KeyAlgorithm::Jwe {
                enc: enc.parse()?,
                alg: alg.parse()?,
            }),
            None => Ok(KeyAlgorithm::Jws(s.parse()?)),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Jws(a) => f.write_str(a.name()),
            KeyAlgorithm::Jwe { enc, alg } => write!(f, "{enc}/{alg}"),
        }
    }
}

impl serde::Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in KeyAlgorithm::all() {
            assert_eq!(KeyAlgorithm::parse(&a.to_string()).unwrap(), a);
        }
        assert_eq!(
            KeyAlgorithm::parse("A256GCM/A256KW").unwrap(),
            KeyAlgorithm::DEFAULT
        );
        assert_eq!(
            KeyAlgorithm::parse("ES256").unwrap(),
            KeyAlgorithm::Jws(JwsAlgorithm::ES256)
        );
        for banned in [
            "none",
            "RSA1_5",
            "RSA-OAEP",
            "A256GCM/RSA1_5",
            "HS1",
            "PBES2-HS256+A128KW",
            "ES256K",
            "",
        ] {
            assert!(KeyAlgorithm::parse(banned).is_err(), "{banned}");
        }
    }
}
