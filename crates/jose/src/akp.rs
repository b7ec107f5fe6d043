//! `kty: AKP` keys (Algorithm Key Pair, RFC 9964): ML-DSA-44/65/87 (FIPS 204) and, per
//! draft-ietf-jose-pqc-kem-05, ML-KEM-768/1024 (FIPS 203).
//!
//! * `alg` is required and fixes the parameter set; `pub` is the raw public key (ML-DSA `pk`,
//!   ML-KEM encapsulation key `ek`).
//! * ML-DSA private keys: `priv` is the 32-byte seed (RFC 9964), expanded by aws-lc-rs.
//! * ML-KEM private keys: the draft's `priv` (the seed) cannot be loaded by aws-lc-rs, which has
//!   no ML-KEM import from a seed. Our private JWKs carry the FIPS 203 expanded decapsulation key
//!   in the member `dk` instead; a `priv` on an ML-KEM key is refused with a message saying so
//!   (documented in the crate README). Public ML-KEM JWKs are standard.
//!
//! Lengths are checked exactly, a private part must match `pub`, and the ML-KEM `dk` must embed
//! `pub` and its SHA3-256 hash (FIPS 203 §7.3 input check).

use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{digest, kem, signature};
use zeroize::Zeroizing;

use crate::error::{JoseError, Result};
use crate::jwa::{JweAlgorithm, JwsAlgorithm};

/// The parameter set of an AKP key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AkpParams {
    /// ML-DSA-44.
    MlDsa44,
    /// ML-DSA-65.
    MlDsa65,
    /// ML-DSA-87.
    MlDsa87,
    /// ML-KEM-768.
    MlKem768,
    /// ML-KEM-1024.
    MlKem1024,
}

/// ML-DSA seed length (FIPS 204 ξ).
pub const ML_DSA_SEED_LEN: usize = 32;

impl AkpParams {
    /// The parameter set an AKP `alg` names (`ML-DSA-65`, `ML-KEM-768`, `ML-KEM-768+A192KW`, …).
    ///
    /// # Errors
    /// [`JoseError::UnsupportedAlgorithm`] for any other name.
    pub fn from_alg(alg: &str) -> Result<(Self, &'static str)> {
        if let Ok(a) = alg.parse::<JwsAlgorithm>() {
            return match a {
                JwsAlgorithm::MlDsa44 => Ok((Self::MlDsa44, a.name())),
                JwsAlgorithm::MlDsa65 => Ok((Self::MlDsa65, a.name())),
                JwsAlgorithm::MlDsa87 => Ok((Self::MlDsa87, a.name())),
                _ => Err(JoseError::UnsupportedAlgorithm(crate::jwa::truncate(alg))),
            };
        }
        match alg.parse::<JweAlgorithm>() {
            Ok(a @ (JweAlgorithm::MlKem768 | JweAlgorithm::MlKem768A192KW)) => {
                Ok((Self::MlKem768, a.name()))
            }
            Ok(a @ (JweAlgorithm::MlKem1024 | JweAlgorithm::MlKem1024A256KW)) => {
                Ok((Self::MlKem1024, a.name()))
            }
            _ => Err(JoseError::UnsupportedAlgorithm(crate::jwa::truncate(alg))),
        }
    }

    fn ml_dsa(
        self,
    ) -> Option<(
        &'static signature::PqdsaVerificationAlgorithm,
        &'static signature::PqdsaSigningAlgorithm,
    )> {
        match self {
            Self::MlDsa44 => Some((&signature::ML_DSA_44, &signature::ML_DSA_44_SIGNING)),
            Self::MlDsa65 => Some((&signature::ML_DSA_65, &signature::ML_DSA_65_SIGNING)),
            Self::MlDsa87 => Some((&signature::ML_DSA_87, &signature::ML_DSA_87_SIGNING)),
            _ => None,
        }
    }

    fn ml_kem(self) -> Option<&'static kem::Algorithm> {
        match self {
            Self::MlKem768 => Some(&kem::ML_KEM_768),
            Self::MlKem1024 => Some(&kem::ML_KEM_1024),
            _ => None,
        }
    }

    /// Length of `pub` in bytes.
    #[must_use]
    pub const fn public_len(self) -> usize {
        match self {
            Self::MlDsa44 => 1312,
            Self::MlDsa65 => 1952,
            Self::MlDsa87 => 2592,
            Self::MlKem768 => 1184,
            Self::MlKem1024 => 1568,
        }
    }

    /// ML-DSA signature length, or ML-KEM ciphertext length, in bytes.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2420,
            Self::MlDsa65 => 3309,
            Self::MlDsa87 => 4627,
            Self::MlKem768 => 1088,
            Self::MlKem1024 => 1568,
        }
    }

    /// Length of the expanded ML-KEM decapsulation key (`dk`), 0 for ML-DSA.
    #[must_use]
    pub const fn dk_len(self) -> usize {
        match self {
            Self::MlKem768 => 2400,
            Self::MlKem1024 => 3168,
            _ => 0,
        }
    }

    /// Whether this is an ML-DSA parameter set.
    #[must_use]
    pub const fn is_ml_dsa(self) -> bool {
        matches!(self, Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87)
    }
}

/// An AKP key.
pub struct AkpKey {
    pub(crate) alg: &'static str,
    pub(crate) params: AkpParams,
    pub(crate) public: Vec<u8>,
    pub(crate) inner: AkpInner,
}

pub(crate) enum AkpInner {
    MlDsa {
        verify: signature::ParsedPublicKey,
        private: Option<(Zeroizing<Vec<u8>>, signature::PqdsaKeyPair)>,
    },
    MlKem {
        ek: kem::EncapsulationKey,
        private: Option<(Zeroizing<Vec<u8>>, kem::DecapsulationKey)>,
    },
}

impl AkpKey {
    /// Builds a key from its JWK members. `priv` is the ML-DSA seed; `dk` the ML-KEM expanded
    /// decapsulation key.
    pub(crate) fn from_parts(
        alg: &str,
        public: &[u8],
        seed: Option<Zeroizing<Vec<u8>>>,
        dk: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self> {
        let (params, alg) =
            AkpParams::from_alg(alg).map_err(|_| JoseError::InvalidKey("unsupported AKP alg"))?;
        if public.len() != params.public_len() {
            return Err(JoseError::InvalidKey(
                "AKP pub length does not match the alg",
            ));
        }
        let inner = if let Some((valg, salg)) = params.ml_dsa() {
            if dk.is_some() {
                return Err(JoseError::InvalidKey("dk is only for ML-KEM AKP keys"));
            }
            let verify = signature::ParsedPublicKey::new(valg, public)
                .map_err(|_| JoseError::InvalidKey("ML-DSA public key"))?;
            let private = match seed {
                None => None,
                Some(seed) => {
                    if seed.len() != ML_DSA_SEED_LEN {
                        return Err(JoseError::InvalidKey("ML-DSA priv (seed) must be 32 bytes"));
                    }
                    let pair = signature::PqdsaKeyPair::from_seed(salg, &seed)
                        .map_err(|_| JoseError::InvalidKey("ML-DSA seed"))?;
                    if pair.public_key().as_ref() != public {
                        return Err(JoseError::InvalidKey("AKP priv does not match pub"));
                    }
                    Some((seed, pair))
                }
            };
            AkpInner::MlDsa { verify, private }
        } else if let Some(kalg) = params.ml_kem() {
            if seed.is_some() {
                return Err(JoseError::InvalidKey(
                    "ML-KEM priv (seed) cannot be imported here (no seed import in aws-lc-rs); \
                     give the expanded decapsulation key as dk",
                ));
            }
            let ek = kem::EncapsulationKey::new(kalg, public)
                .map_err(|_| JoseError::InvalidKey("ML-KEM encapsulation key"))?;
            let private = match dk {
                None => None,
                Some(dk) => {
                    check_dk(params, &dk, public)?;
                    // aws-lc-rs cannot derive the public key of a key loaded from `dk`; the
                    // embedded `ek` (checked against `pub` and its hash above) is that key.
                    let key = kem::DecapsulationKey::new(kalg, &dk)
                        .map_err(|_| JoseError::InvalidKey("ML-KEM decapsulation key"))?;
                    Some((dk, key))
                }
            };
            AkpInner::MlKem { ek, private }
        } else {
            return Err(JoseError::InvalidKey("unsupported AKP alg"));
        };
        Ok(Self {
            alg,
            params,
            public: public.to_vec(),
            inner,
        })
    }

    /// Generates a key for `alg` (an ML-DSA or ML-KEM name). ML-DSA keys are generated by
    /// aws-lc-rs and their seed read back from its PKCS#8 (seed form); ML-KEM keys keep the
    /// expanded decapsulation key.
    pub(crate) fn generate(alg: &str) -> Result<Self> {
        let (params, _) = AkpParams::from_alg(alg)?;
        if let Some((_, salg)) = params.ml_dsa() {
            let pair = signature::PqdsaKeyPair::generate(salg)
                .map_err(|_| JoseError::Crypto("ML-DSA key generation"))?;
            let pkcs8 = pair
                .to_pkcs8v1()
                .map_err(|_| JoseError::Crypto("ML-DSA key export"))?;
            let seed = seed_from_pkcs8(pkcs8.as_ref())?;
            let public = pair.public_key().as_ref().to_vec();
            // Round trip: the seed must give the same key.
            Self::from_parts(alg, &public, Some(seed), None)
        } else if let Some(kalg) = params.ml_kem() {
            let key = kem::DecapsulationKey::generate(kalg)
                .map_err(|_| JoseError::Crypto("ML-KEM key generation"))?;
            let dk = Zeroizing::new(
                key.key_bytes()
                    .map_err(|_| JoseError::Crypto("ML-KEM key export"))?
                    .as_ref()
                    .to_vec(),
            );
            let public = key
                .encapsulation_key()
                .and_then(|e| e.key_bytes())
                .map_err(|_| JoseError::Crypto("ML-KEM key export"))?
                .as_ref()
                .to_vec();
            Self::from_parts(alg, &public, None, Some(dk))
        } else {
            Err(JoseError::UnsupportedAlgorithm(crate::jwa::truncate(alg)))
        }
    }

    /// The `alg` this key is for.
    #[must_use]
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The parameter set.
    #[must_use]
    pub fn params(&self) -> AkpParams {
        self.params
    }

    /// The raw public key (`pub`).
    #[must_use]
    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    pub(crate) fn is_private(&self) -> bool {
        match &self.inner {
            AkpInner::MlDsa { private, .. } => private.is_some(),
            AkpInner::MlKem { private, .. } => private.is_some(),
        }
    }

    /// The private JWK member: `("priv", seed)` for ML-DSA, `("dk", expanded key)` for ML-KEM.
    pub(crate) fn private_member(&self) -> Option<(&'static str, &[u8])> {
        match &self.inner {
            AkpInner::MlDsa { private, .. } => private.as_ref().map(|p| ("priv", &p.0[..])),
            AkpInner::MlKem { private, .. } => private.as_ref().map(|p| ("dk", &p.0[..])),
        }
    }

    /// ML-DSA signature (pure, empty context) over `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        match &self.inner {
            AkpInner::MlDsa {
                private: Some((_, pair)),
                ..
            } => {
                let mut sig = vec![0u8; self.params.output_len()];
                let n = pair
                    .sign(msg, &mut sig)
                    .map_err(|_| JoseError::Crypto("ML-DSA signing"))?;
                sig.truncate(n);
                Ok(sig)
            }
            AkpInner::MlDsa { private: None, .. } => {
                Err(JoseError::KeyMismatch("private key required"))
            }
            AkpInner::MlKem { .. } => Err(JoseError::KeyMismatch("ML-KEM keys cannot sign")),
        }
    }

    /// ML-DSA verification (pure, empty context).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<bool> {
        match &self.inner {
            AkpInner::MlDsa { verify, .. } => {
                Ok(sig.len() == self.params.output_len() && verify.verify_sig(msg, sig).is_ok())
            }
            AkpInner::MlKem { .. } => Err(JoseError::KeyMismatch("ML-KEM keys cannot verify")),
        }
    }

    /// ML-KEM encapsulation: (ciphertext, shared secret).
    pub(crate) fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        match &self.inner {
            AkpInner::MlKem { ek, .. } => {
                let (ct, ss) = ek
                    .encapsulate()
                    .map_err(|_| JoseError::Crypto("ML-KEM encapsulation"))?;
                Ok((ct.as_ref().to_vec(), Zeroizing::new(ss.as_ref().to_vec())))
            }
            AkpInner::MlDsa { .. } => Err(JoseError::KeyMismatch("ML-DSA keys cannot encrypt")),
        }
    }

    /// ML-KEM decapsulation of a ciphertext of exactly the parameter set's length.
    pub(crate) fn decapsulate(&self, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match &self.inner {
            AkpInner::MlKem {
                private: Some((_, dk)),
                ..
            } => {
                if ct.len() != self.params.output_len() {
                    return Err(JoseError::InvalidHeader("ek".into()));
                }
                let ss = dk
                    .decapsulate(kem::Ciphertext::from(ct))
                    .map_err(|_| JoseError::DecryptionFailed)?;
                Ok(Zeroizing::new(ss.as_ref().to_vec()))
            }
            AkpInner::MlKem { private: None, .. } => {
                Err(JoseError::KeyMismatch("private key required"))
            }
            AkpInner::MlDsa { .. } => Err(JoseError::KeyMismatch("ML-DSA keys cannot decrypt")),
        }
    }
}

/// FIPS 203 §7.3 decapsulation key check: `dk = dk_PKE ‖ ek ‖ H(ek) ‖ z` with `ek = pub`.
fn check_dk(params: AkpParams, dk: &[u8], public: &[u8]) -> Result<()> {
    if dk.len() != params.dk_len() {
        return Err(JoseError::InvalidKey(
            "ML-KEM dk length does not match the alg",
        ));
    }
    let pke = params.public_len() - 32;
    let ek = &dk[pke..pke + public.len()];
    let h = &dk[pke + public.len()..pke + public.len() + 32];
    if ek != public {
        return Err(JoseError::InvalidKey("AKP dk does not match pub"));
    }
    if digest::digest(&digest::SHA3_256, ek).as_ref() != h {
        return Err(JoseError::InvalidKey("ML-KEM dk hash check failed"));
    }
    Ok(())
}

/// Reads the 32-byte seed out of aws-lc-rs' ML-DSA PKCS#8 v1 (RFC 9881 seed form:
/// `OCTET STRING { [0] IMPLICIT OCTET STRING (SIZE 32) }` as the private key).
fn seed_from_pkcs8(der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    const ERR: JoseError = JoseError::Crypto("ML-DSA key export (seed form expected)");
    let n = der.len();
    if n < 36 || der[n - 36..n - 32] != [0x04, 0x22, 0x80, 0x20] {
        return Err(ERR);
    }
    Ok(Zeroizing::new(der[n - 32..].to_vec()))
}
