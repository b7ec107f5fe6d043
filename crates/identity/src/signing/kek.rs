//! The key-encryption key that seals signing keys at rest.

use core::fmt;
use core::str::FromStr;

use cryptoutil_jose::{Jwk, b64};
use zeroize::Zeroizing;

use super::SigningError;

/// A 32-byte AES-256 key that seals private signing keys (JWE `dir`/`A256GCM`). The bytes are
/// zeroized on drop; `Debug` never shows them.
pub struct KeyEncryptionKey {
    bytes: Zeroizing<[u8; 32]>,
    /// The same bytes as an `oct` JWK (zeroized by the JOSE crate), with its AES-GCM key cached.
    jwk: Jwk,
}

impl KeyEncryptionKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// Wraps exactly 32 key bytes.
    ///
    /// # Errors
    /// [`SigningError::InvalidKek`] when `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SigningError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| SigningError::InvalidKek)?;
        let bytes = Zeroizing::new(array);
        let jwk = Jwk::from_oct_bytes(&bytes[..]).map_err(|_| SigningError::InvalidKek)?;
        Ok(Self { bytes, jwk })
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`SigningError::Crypto`] when the system RNG fails.
    pub fn generate() -> Result<Self, SigningError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| SigningError::Crypto("RNG"))?;
        Self::from_bytes(&bytes[..])
    }

    /// Parses the base64url (unpadded, 43 characters) text form; surrounding whitespace (a
    /// trailing newline in a secret file) is ignored.
    ///
    /// # Errors
    /// [`SigningError::InvalidKek`].
    pub fn from_base64url(text: &str) -> Result<Self, SigningError> {
        let decoded = Zeroizing::new(
            b64::decode(text.trim().as_bytes(), "key-encryption key")
                .map_err(|_| SigningError::InvalidKek)?,
        );
        Self::from_bytes(&decoded)
    }

    /// The base64url text form (for writing a generated key to a secret file).
    #[must_use]
    pub fn to_base64url(&self) -> Zeroizing<String> {
        Zeroizing::new(b64::encode(&self.bytes[..]))
    }

    /// A 32-byte key for another purpose, HMAC-SHA256(this key, `label`): every instance that
    /// shares the key-encryption key derives the same key, and it reveals nothing about this
    /// one (the DPoP nonce key, [`crate::dpop::nonce`]).
    pub(crate) fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.bytes[..]);
        let tag = aws_lc_rs::hmac::sign(&key, label);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The key as an `oct` JWK, for the JWE layer.
    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

impl FromStr for KeyEncryptionKey {
    type Err = SigningError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64url(s)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_strictness() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let text = kek.to_base64url();
        assert_eq!(text.len(), 43);
        let again: KeyEncryptionKey = format!("{}\n", *text).parse().unwrap();
        assert_eq!(*again.to_base64url(), *text);
        assert!(KeyEncryptionKey::from_base64url("AAAA").is_err());
        assert!(KeyEncryptionKey::from_base64url(&format!("{}=", *text)).is_err());
        assert!(KeyEncryptionKey::from_bytes(&[0u8; 31]).is_err());
        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey(..)");
    }
}
