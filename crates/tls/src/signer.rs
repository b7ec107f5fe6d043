//! Extension point for signing keys the process cannot read (hardware keys).
//!
//! A TLS server only needs its private key to *sign* the handshake. [`SigningKeyProvider`] is
//! that capability and nothing more: public key, algorithm, `sign`. [`ProviderSigningKey`]
//! adapts any provider into a [`rustls::sign::SigningKey`], and
//! [`certified_key_with_provider`] / [`crate::ReloadableCert::with_key_provider`] put a
//! certificate in front of it.
//!
//! **PKCS#11 plugs in here**: an HSM- or token-backed implementation holds a session and an
//! object handle, returns the key's SubjectPublicKeyInfo from `public_key_spki_der`, and
//! implements `sign` with `C_Sign` (`CKM_ECDSA_SHA256`/`SHA384`/`SHA512`, converting the raw
//! `r‖s` output to the DER encoding this trait returns). No such implementation ships yet; the
//! one implementation here, [`InMemoryEcdsaKey`], is a real aws-lc-rs key held in memory.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};

use crate::ca::KeyAlgorithm;
use crate::error::{Result, TlsError};

/// A signing key whose private half may be out of the process's reach (HSM, PKCS#11 token,
/// cloud KMS), or in memory ([`InMemoryEcdsaKey`]).
pub trait SigningKeyProvider: Send + Sync + Debug {
    /// The key's algorithm; `sign` hashes with its hash (SHA-256/384/512 for P-256/384/521).
    fn algorithm(&self) -> KeyAlgorithm;

    /// The public key as a DER X.509 SubjectPublicKeyInfo.
    fn public_key_spki_der(&self) -> Vec<u8>;

    /// Signs `msg` (not pre-hashed): ECDSA over `hash(msg)`, signature DER-encoded (ASN.1
    /// `Ecdsa-Sig-Value`), as TLS 1.3 and X.509 expect.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
}

/// An ECDSA private key held in process memory (aws-lc-rs).
pub struct InMemoryEcdsaKey {
    algorithm: KeyAlgorithm,
    key_pair: EcdsaKeyPair,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl Debug for InMemoryEcdsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEcdsaKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl InMemoryEcdsaKey {
    /// Loads a PKCS#8 DER EC key; the curve is detected.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        for algorithm in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP521,
        ] {
            if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(algorithm.aws_signing(), der) {
                let spki = key_pair
                    .public_key()
                    .as_der()
                    .map_err(|_| TlsError::UnsupportedKey("cannot encode the public key".into()))?
                    .as_ref()
                    .to_vec();
                return Ok(Self {
                    algorithm,
                    key_pair,
                    spki,
                    rng: SystemRandom::new(),
                });
            }
        }
        Err(TlsError::UnsupportedKey(
            "not a PKCS#8 EC P-256/P-384/P-521 private key".to_owned(),
        ))
    }

    /// Loads a PKCS#8 PEM key file (e.g. `key.pem`).
    pub fn from_pem_file(path: &Path) -> Result<Self> {
        match crate::pem::load_private_key(path)? {
            PrivateKeyDer::Pkcs8(der) => {
                Self::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|e| TlsError::Pem {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
            _ => Err(TlsError::Pem {
                path: path.to_path_buf(),
                reason: "expected a PKCS#8 (BEGIN PRIVATE KEY) EC key".to_owned(),
            }),
        }
    }
}

impl SigningKeyProvider for InMemoryEcdsaKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_spki_der(&self) -> Vec<u8> {
        self.spki.clone()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.key_pair
            .sign(&self.rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| TlsError::Signing("ECDSA signing failed".to_owned()))
    }
}

/// Adapts a [`SigningKeyProvider`] into a rustls [`SigningKey`].
#[derive(Debug, Clone)]
pub struct ProviderSigningKey {
    inner: Arc<dyn SigningKeyProvider>,
    spki: Vec<u8>,
}

impl ProviderSigningKey {
    /// Wraps a provider.
    pub fn new(inner: Arc<dyn SigningKeyProvider>) -> Self {
        let spki = inner.public_key_spki_der();
        Self { inner, spki }
    }
}

impl SigningKey for ProviderSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.inner.algorithm().tls_scheme();
        offered.contains(&scheme).then(|| {
            Box::new(ProviderSigner {
                inner: self.inner.clone(),
                scheme,
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct ProviderSigner {
    inner: Arc<dyn SigningKeyProvider>,
    scheme: SignatureScheme,
}

impl Signer for ProviderSigner {
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, rustls::Error> {
        self.inner
            .sign(message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// A rustls [`CertifiedKey`] whose signatures come from `provider`.
///
/// Fails if the chain is empty or the leaf's public key is not the provider's.
pub fn certified_key_with_provider(
    cert_chain: Vec<CertificateDer<'static>>,
    provider: Arc<dyn SigningKeyProvider>,
) -> Result<Arc<CertifiedKey>> {
    if cert_chain.is_empty() {
        return Err(TlsError::InvalidCertificate {
            path: "<in-memory chain>".into(),
            reason: "empty certificate chain".to_owned(),
        });
    }
    let ck = CertifiedKey::new(cert_chain, Arc::new(ProviderSigningKey::new(provider)));
    ck.keys_match()
        .map_err(|e| TlsError::rustls("signing key provider does not match the certificate", e))?;
    Ok(Arc::new(ck))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ECDSA_P521_SHA512_ASN1, UnparsedPublicKey,
    };

    #[test]
    fn in_memory_key_signs_and_verifies() {
        for (alg, verify) in [
            (KeyAlgorithm::EcP256, &ECDSA_P256_SHA256_ASN1),
            (KeyAlgorithm::EcP384, &ECDSA_P384_SHA384_ASN1),
            (KeyAlgorithm::EcP521, &ECDSA_P521_SHA512_ASN1),
        ] {
            let doc =
                EcdsaKeyPair::generate_pkcs8(alg.aws_signing(), &SystemRandom::new()).unwrap();
            let key = InMemoryEcdsaKey::from_pkcs8_der(doc.as_ref()).unwrap();
            assert_eq!(key.algorithm(), alg);
            let sig = key.sign(b"hello").unwrap();
            let kp = EcdsaKeyPair::from_pkcs8(alg.aws_signing(), doc.as_ref()).unwrap();
            UnparsedPublicKey::new(verify, kp.public_key().as_ref())
                .verify(b"hello", &sig)
                .unwrap();
            let adapter = ProviderSigningKey::new(Arc::new(key));
            assert!(adapter.choose_scheme(&[alg.tls_scheme()]).is_some());
            assert!(adapter.choose_scheme(&[SignatureScheme::ED25519]).is_none());
        }
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(InMemoryEcdsaKey::from_pkcs8_der(b"nope").is_err());
    }
}
