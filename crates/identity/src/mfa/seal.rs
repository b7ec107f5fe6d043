//! TOTP secrets sealed at rest: AES-256-GCM under a key derived from the key-encryption key
//! (the key hierarchy of the signing keys), with a random 96-bit nonce drawn by AWS-LC itself
//! (`RandomizedNonceKey`: the IV generation FIPS 140-3 approves) and the user id as additional
//! data, so a sealed secret copied to another user's row does not open.
//!
//! Stored text: `v1.` + base64url(nonce ‖ ciphertext ‖ tag).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// The label the sealing key is derived under (`KeyEncryptionKey::derive`).
pub const KEY_LABEL: &[u8] = b"cryptoutil-identity totp-secret key v1";

const PREFIX: &str = "v1.";
const AAD_PREFIX: &str = "cryptoutil-identity totp v1 user:";
/// Longest sealed text opened (a 32-byte secret seals to well under 100 characters).
const MAX_SEALED_LEN: usize = 512;

/// Sealing or opening failed (wrong key, tampered or foreign text, RNG failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the TOTP secret could not be {0}")]
pub struct SealError(&'static str);

impl SealError {
    /// The secret given to seal was not acceptable (not base32, too short).
    pub const INPUT: Self = Self("read from its text");
}

/// Seals and opens TOTP secrets. `Debug` never shows the key.
pub struct SecretSealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer(..)")
    }
}

impl SecretSealer {
    /// A sealer over 32 key bytes (derived from the key-encryption key under [`KEY_LABEL`]).
    ///
    /// # Errors
    /// When the key is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, key).map_err(|_| SealError("keyed"))?;
        Ok(Self { key })
    }

    fn aad(user_id: &str) -> Vec<u8> {
        format!("{AAD_PREFIX}{user_id}").into_bytes()
    }

    /// Seals `secret` for `user_id`.
    ///
    /// # Errors
    /// When the random generator fails.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> Result<String, SealError> {
        let mut buffer = Zeroizing::new(secret.to_vec());
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(Self::aad(user_id)), &mut *buffer)
            .map_err(|_| SealError("sealed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buffer);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a sealed secret of `user_id`.
    ///
    /// # Errors
    /// When the text is malformed, was sealed for another user or under another key, or was
    /// tampered with.
    pub fn open(&self, user_id: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SealError("opened"));
        }
        let body = sealed.strip_prefix(PREFIX).ok_or(SealError("opened"))?;
        let mut bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| SealError("opened"))?,
        );
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError("opened"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(user_id)),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| SealError("opened"))?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let sealer = SecretSealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal("user-a", b"12345678901234567890").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("MTIzNDU2"), "the secret shows through");
        assert_eq!(
            &sealer.open("user-a", &sealed).unwrap()[..],
            b"12345678901234567890"
        );
        // Random nonce: sealing twice differs.
        assert_ne!(
            sealed,
            sealer.seal("user-a", b"12345678901234567890").unwrap()
        );
        assert!(sealer.open("user-b", &sealed).is_err());
        let other = SecretSealer::new(&[8u8; 32]).unwrap();
        assert!(other.open("user-a", &sealed).is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open("user-a", &String::from_utf8(tampered).unwrap())
                .is_err()
        );
        for bad in [
            "",
            "v1.",
            "v1.AAAA",
            "v2.AAAA",
            "v1.!!!!",
            &"v1.".repeat(400),
        ] {
            assert!(sealer.open("user-a", bad).is_err(), "{bad:?}");
        }
        assert!(SecretSealer::new(&[0u8; 16]).is_err());
        assert_eq!(format!("{sealer:?}"), "SecretSealer(..)");
    }
}
