//! One signing key: generation, sealing under the key-encryption key, opening.

use core::fmt;

use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk, JwsAlgorithm, KeyAlgorithm, jwe, jws};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{KeyEncryptionKey, SigningError};
use crate::model::SealedSigningKey;

/// The algorithm new signing keys are created for (`ES256` by default). Wire names as in JOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256.
    #[default]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA 2048).
    RS256,
    /// RSASSA-PSS with SHA-256 (RSA 2048).
    PS256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlgorithm {
    /// Every algorithm, in the order discovery lists them.
    pub const ALL: [SigningAlgorithm; 4] = [Self::ES256, Self::RS256, Self::PS256, Self::EdDSA];

    /// The JOSE name (`ES256` …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        self.jws().name()
    }

    /// The JOSE algorithm.
    #[must_use]
    pub const fn jws(self) -> JwsAlgorithm {
        match self {
            Self::ES256 => JwsAlgorithm::ES256,
            Self::RS256 => JwsAlgorithm::RS256,
            Self::PS256 => JwsAlgorithm::PS256,
            Self::EdDSA => JwsAlgorithm::EdDSA,
        }
    }

    /// Parses a JOSE name; `None` for anything else.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// True when `private` signs with this algorithm and `public` verifies that signature (a
    /// self-test: right key type and curve, and the two halves belong together).
    fn fits(self, private: &Jwk, public: &Jwk) -> bool {
        const PROBE: &[u8] = b"cryptoutil identity signing key self-test";
        jws::sign_raw(private, self.jws(), PROBE)
            .and_then(|sig| jws::verify_raw(public, self.jws(), PROBE, &sig))
            .is_ok()
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An opened signing key: the private JWK (with `kid`, `alg` and `use: sig` set), its
/// algorithm, its `kid` (the RFC 7638 thumbprint) and when it was created.
pub struct SigningKey {
    jwk: Jwk,
    alg: SigningAlgorithm,
    kid: String,
    created_at: OffsetDateTime,
    retire_at: Option<OffsetDateTime>,
}

/// Protected header members of a sealed key (authenticated as JWE additional data).
const H_KID: &str = "kid";
const H_ALG: &str = "jws_alg";
const H_CREATED: &str = "created_at";

impl SigningKey {
    /// Generates a key for `alg` (P-256, RSA 2048 or Ed25519), created at `now` (truncated to
    /// whole seconds so every store keeps it exactly).
    ///
    /// # Errors
    /// [`SigningError::Crypto`] when key generation fails.
    pub fn generate(alg: SigningAlgorithm, now: OffsetDateTime) -> Result<Self, SigningError> {
        let mut jwk = Jwk::generate_for(KeyAlgorithm::Jws(alg.jws()))
            .map_err(|_| SigningError::Crypto("generation"))?;
        let kid = jwk.thumbprint();
        jwk.set_kid(Some(kid.clone()));
        Ok(Self {
            jwk,
            alg,
            kid,
            created_at: whole_seconds(now),
            retire_at: None,
        })
    }

    /// The private JWK.
    #[must_use]
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The algorithm.
    #[must_use]
    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The `kid` (RFC 7638 thumbprint, base64url).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When the key was created.
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// An administrative retirement read from the stored record (`None`: the rotation timeline
    /// alone decides).
    #[must_use]
    pub fn retire_at(&self) -> Option<OffsetDateTime> {
        self.retire_at
    }

    /// The public JWK (`kty`, key members, `kid`, `alg`, `use`), as published in the JWKS.
    #[must_use]
    pub fn public_value(&self) -> Value {
        self.jwk.to_value(false)
    }

    /// Seals the key for storage: the private JWK as a compact JWE `dir`/`A256GCM` under `kek`,
    /// with `kid`, the JWS `alg` and `created_at` in the authenticated protected header.
    ///
    /// # Errors
    /// [`SigningError::Crypto`] when encryption fails.
    pub fn seal(&self, kek: &KeyEncryptionKey) -> Result<SealedSigningKey, SigningError> {
        let mut header = Map::new();
        header.insert(H_KID.into(), self.kid.clone().into());
        header.insert("cty".into(), "jwk+json".into());
        header.insert(H_ALG.into(), self.alg.name().into());
        header.insert(H_CREATED.into(), self.created_at.unix_timestamp().into());
        let private = self.jwk.to_json(true);
        let sealed_jwk = jwe::encrypt(
            kek.jwk(),
            JweAlgorithm::Dir,
            ContentEncryption::A256GCM,
            private.as_bytes(),
            Some(&header),
        )
        .map_err(|_| SigningError::Crypto("sealing"))?;
        Ok(SealedSigningKey {
            kid: self.kid.clone(),
            alg: self.alg.name().to_owned(),
            public_jwk: self.public_value().to_string(),
            sealed_jwk,
            created_at: self.created_at,
            retire_at: self.retire_at,
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retire_at", &self.retire_at)
            .finish_non_exhaustive()
    }
}

impl SealedSigningKey {
    /// Opens the record with `kek`. Refuses a record whose `kid`, `alg` or `created_at` differ
    /// from what was sealed, whose private key does not hash to its `kid`, or whose public JWK is
    /// not that key's.
    ///
    /// # Errors
    /// [`SigningError::Open`] (wrong key-encryption key or altered record) or
    /// [`SigningError::Unusable`] (an algorithm this server does not sign with).
    pub fn open(&self, kek: &KeyEncryptionKey) -> Result<SigningKey, SigningError> {
        let unusable = |reason| SigningError::Unusable {
            kid: self.kid.chars().take(64).collect(),
            reason,
        };
        let refused = || SigningError::Open {
            kid: self.kid.chars().take(64).collect(),
        };
        let alg = SigningAlgorithm::parse(&self.alg).ok_or_else(|| unusable("unknown alg"))?;
        let opened = jwe::decrypt(
            kek.jwk(),
            JweAlgorithm::Dir,
            ContentEncryption::A256GCM,
            &self.sealed_jwk,
        )
        .map_err(|_| refused())?;
        let plaintext = Zeroizing::new(opened.plaintext);
        let h = &opened.header;
        let bound = h.kid() == Some(self.kid.as_str())
            && h.get(H_ALG).and_then(Value::as_str) == Some(self.alg.as_str())
            && h.get(H_CREATED).and_then(Value::as_i64) == Some(self.created_at.unix_timestamp());
        if !bound {
            return Err(refused());
        }
        let text = core::str::from_utf8(&plaintext).map_err(|_| refused())?;
        let mut jwk = Jwk::from_json(text).map_err(|_| refused())?;
        if jwk.thumbprint() != self.kid {
            return Err(refused());
        }
        let public = Jwk::from_json(&self.public_jwk).map_err(|_| refused())?;
        if public.is_private() || public.thumbprint() != self.kid {
            return Err(refused());
        }
        if !jwk.is_private() || jwk.alg() != Some(alg.name()) || !alg.fits(&jwk, &public) {
            return Err(unusable("the key does not fit its alg"));
        }
        jwk.set_kid(Some(self.kid.clone()));
        Ok(SigningKey {
            jwk,
            alg,
            kid: self.kid.clone(),
            created_at: self.created_at,
            retire_at: self.retire_at,
        })
    }
}

/// `t` without its sub-second part.
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    #[test]
    fn algorithm_names_and_serde() {
        assert_eq!(SigningAlgorithm::default(), SigningAlgorithm::ES256);
        for a in SigningAlgorithm::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
            assert_eq!(serde_json::from_str::<SigningAlgorithm>(&json).unwrap(), a);
            assert_eq!(SigningAlgorithm::parse(a.name()), Some(a));
        }
        assert_eq!(SigningAlgorithm::parse("HS256"), None);
        assert!(serde_json::from_str::<SigningAlgorithm>("\"none\"").is_err());
    }

    #[test]
    fn seal_open_round_trip_every_algorithm() {
        let kek = KeyEncryptionKey::generate().unwrap();
        for alg in SigningAlgorithm::ALL {
            let key = SigningKey::generate(alg, now()).unwrap();
            assert_eq!(key.kid(), key.jwk().thumbprint());
            let sealed = key.seal(&kek).unwrap();
            assert_eq!(sealed.kid, key.kid());
            assert_eq!(sealed.alg, alg.name());
            assert!(!sealed.public_jwk.contains("\"d\""), "{alg}");
            assert!(!sealed.sealed_jwk.contains(key.kid()) || sealed.sealed_jwk.starts_with("ey"));
            let opened = sealed.open(&kek).unwrap();
            assert_eq!(opened.kid(), key.kid());
            assert_eq!(opened.alg(), alg);
            assert_eq!(opened.created_at(), key.created_at());
            assert_eq!(opened.jwk().to_json(true), key.jwk().to_json(true));
        }
    }

    #[test]
    fn wrong_kek_refused() {
        let key = SigningKey::generate(SigningAlgorithm::ES256, now()).unwrap();
        let sealed = key.seal(&KeyEncryptionKey::generate().unwrap()).unwrap();
        let other = KeyEncryptionKey::generate().unwrap();
        assert!(matches!(
            sealed.open(&other),
            Err(SigningError::Open { .. })
        ));
    }

    #[test]
    fn tampered_records_refused() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let a = SigningKey::generate(SigningAlgorithm::ES256, now()).unwrap();
        let b = SigningKey::generate(SigningAlgorithm::ES256, now()).unwrap();
        let sa = a.seal(&kek).unwrap();
        let sb = b.seal(&kek).unwrap();

        // Another key's sealed JWK under this kid.
        let mut r = sa.clone();
        r.sealed_jwk = sb.sealed_jwk.clone();
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // Relabelled kid (with the matching public key, too).
        let mut r = sb.clone();
        r.kid = sa.kid.clone();
        r.public_jwk = sa.public_jwk.clone();
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // Moved in time (reordering keys).
        let mut r = sa.clone();
        r.created_at += time::Duration::days(400);
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // Relabelled algorithm.
        let mut r = sa.clone();
        r.alg = "PS256".into();
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        let mut r = sa.clone();
        r.alg = "HS256".into();
        assert!(matches!(r.open(&kek), Err(SigningError::Unusable { .. })));
        // Another key's public JWK.
        let mut r = sa.clone();
        r.public_jwk = sb.public_jwk.clone();
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // A flipped ciphertext byte.
        let mut r = sa.clone();
        let parts: Vec<&str> = r.sealed_jwk.split('.').collect();
        let mut ct = parts[3].to_owned().into_bytes();
        ct[5] = if ct[5] == b'A' { b'B' } else { b'A' };
        r.sealed_jwk = format!(
            "{}.{}.{}.{}.{}",
            parts[0],
            parts[1],
            parts[2],
            String::from_utf8(ct).unwrap(),
            parts[4]
        );
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // Garbage.
        let mut r = sa.clone();
        r.sealed_jwk = "not a jwe".into();
        assert!(matches!(r.open(&kek), Err(SigningError::Open { .. })));
        // The untouched record still opens.
        assert!(sa.open(&kek).is_ok());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = SigningKey::generate(SigningAlgorithm::EdDSA, now()).unwrap();
        let d = key.jwk().to_value(true)["d"].as_str().unwrap().to_owned();
        assert!(!format!("{key:?}").contains(&d));
    }
}
