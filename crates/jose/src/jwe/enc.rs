//! Content encryption (RFC 7518 §5): AES-GCM and AES-CBC-HMAC-SHA2.

use aws_lc_rs::cipher::{
    self, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{aead, hmac, rand};
use subtle::ConstantTimeEq as _;

use crate::error::{JoseError, Result};
use crate::jwa::ContentEncryption;
use crate::jwk::gcm_key;

/// IV, ciphertext and tag of one content encryption.
pub struct Sealed {
    /// The IV (12 bytes for GCM, 16 for CBC).
    pub iv: [u8; 16],
    /// How many bytes of `iv` are used.
    pub iv_len: usize,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The authentication tag (16, 24 or 32 bytes used).
    pub tag: [u8; 32],
    /// How many bytes of `tag` are used.
    pub tag_len: usize,
}

impl Sealed {
    /// The IV bytes.
    #[must_use]
    pub fn iv(&self) -> &[u8] {
        &self.iv[..self.iv_len]
    }

    /// The tag bytes.
    #[must_use]
    pub fn tag(&self) -> &[u8] {
        &self.tag[..self.tag_len]
    }
}

fn aes_cipher(key_len: usize) -> Result<&'static cipher::Algorithm> {
    match key_len {
        16 => Ok(&cipher::AES_128),
        24 => Ok(&cipher::AES_192),
        32 => Ok(&cipher::AES_256),
        _ => Err(JoseError::InvalidKey("AES key must be 16, 24 or 32 bytes")),
    }
}

fn cbc_hmac_tag(
    enc: ContentEncryption,
    mac_key: &[u8],
    aad: &[u8],
    iv: &[u8],
    ct: &[u8],
) -> hmac::Tag {
    let alg = match enc {
        ContentEncryption::A128CbcHs256 => hmac::HMAC_SHA256,
        ContentEncryption::A192CbcHs384 => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let key = hmac::Key::new(alg, mac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ct);
    let al = (aad.len() as u64).wrapping_mul(8);
    ctx.update(&al.to_be_bytes());
    ctx.sign()
}

/// Encrypts `plaintext` with a caller-chosen IV. Only for deterministic test vectors: reusing an
/// IV with the same key destroys GCM's security. Normal code uses [`encrypt`]. In the FIPS build
/// AES-GCM takes its IV from the module instead (`Sealed::iv` says which).
///
/// `gcm` may carry a prepared AES-GCM key for `cek` (the `dir` fast path).
///
/// # Errors
/// Wrong CEK or IV length, or a primitive failure.
pub fn encrypt_with_iv(
    enc: ContentEncryption,
    cek: &[u8],
    gcm: Option<&aead::LessSafeKey>,
    iv: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed> {
    if cek.len() != enc.key_len() {
        return Err(JoseError::KeyMismatch("CEK length does not match enc"));
    }
    if iv.len() != enc.iv_len() {
        return Err(JoseError::Malformed("IV length does not match enc"));
    }
    let mut out = Sealed {
        iv: [0u8; 16],
        iv_len: iv.len(),
        ciphertext: Vec::new(),
        tag: [0u8; 32],
        tag_len: enc.tag_len(),
    };
    out.iv[..iv.len()].copy_from_slice(iv);
    if enc.is_gcm() && crate::policy::ENFORCED {
        // FIPS: the module draws the IV (a caller's IV is not approved for AES-GCM sealing).
        let (iv, ciphertext, tag) = crate::policy::seal_gcm(cek, aad, plaintext)?;
        out.iv[..12].copy_from_slice(&iv);
        out.tag[..16].copy_from_slice(&tag);
        out.ciphertext = ciphertext;
        return Ok(out);
    }
    if enc.is_gcm() {
        let owned;
        let key = match gcm {
            Some(k) => k,
            None => {
                owned = gcm_key(cek)?;
                &owned
            }
        };
        let nonce =
            aead::Nonce::try_assume_unique_for_key(iv).map_err(|_| JoseError::Crypto("nonce"))?;
        let mut ct = Vec::with_capacity(plaintext.len() + 16);
        ct.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), &mut ct)
            .map_err(|_| JoseError::Crypto("AES-GCM seal"))?;
        out.tag[..16].copy_from_slice(tag.as_ref());
        out.ciphertext = ct;
    } else {
        let half = cek.len() / 2;
        let (mac_key, enc_key) = cek.split_at(half);
        let key = PaddedBlockEncryptingKey::cbc_pkcs7(
            UnboundCipherKey::new(aes_cipher(enc_key.len())?, enc_key)
                .map_err(|_| JoseError::InvalidKey("AES key"))?,
        )
        .map_err(|_| JoseError::Crypto("AES-CBC"))?;
        let mut iv16 = [0u8; 16];
        iv16.copy_from_slice(iv);
        let mut ct = Vec::with_capacity(plaintext.len() + 16);
        ct.extend_from_slice(plaintext);
        key.less_safe_encrypt(&mut ct, EncryptionContext::Iv128(FixedLength::from(iv16)))
            .map_err(|_| JoseError::Crypto("AES-CBC encrypt"))?;
        let tag = cbc_hmac_tag(enc, mac_key, aad, iv, &ct);
        out.tag[..out.tag_len].copy_from_slice(&tag.as_ref()[..out.tag_len]);
        out.ciphertext = ct;
    }
    Ok(out)
}

/// Encrypts `plaintext` with a fresh random IV.
///
/// # Errors
/// Wrong CEK length, or a primitive failure.
pub fn encrypt(
    enc: ContentEncryption,
    cek: &[u8],
    gcm: Option<&aead::LessSafeKey>,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed> {
    let mut iv = [0u8; 16];
    let iv = &mut iv[..enc.iv_len()];
    rand::fill(iv).map_err(|_| JoseError::Crypto("rng"))?;
    encrypt_with_iv(enc, cek, gcm, iv, aad, plaintext)
}

/// Decrypts in place: `buf` holds the ciphertext on entry and the plaintext on success.
/// Every authentication or padding failure is [`JoseError::DecryptionFailed`]; the CBC tag is
/// checked in constant time before any decryption.
///
/// # Errors
/// Wrong lengths, or [`JoseError::DecryptionFailed`].
pub fn decrypt_in_place(
    enc: ContentEncryption,
    cek: &[u8],
    gcm: Option<&aead::LessSafeKey>,
    iv: &[u8],
    aad: &[u8],
    buf: &mut Vec<u8>,
    tag: &[u8],
) -> Result<()> {
    if cek.len() != enc.key_len() {
        return Err(JoseError::KeyMismatch("CEK length does not match enc"));
    }
    if iv.len() != enc.iv_len() {
        return Err(JoseError::Malformed("IV length does not match enc"));
    }
    if tag.len() != enc.tag_len() {
        return Err(JoseError::Malformed("tag length does not match enc"));
    }
    if enc.is_gcm() {
        let owned;
        let key = match gcm {
            Some(k) => k,
            None => {
                owned = gcm_key(cek)?;
                &owned
            }
        };
        let nonce =
            aead::Nonce::try_assume_unique_for_key(iv).map_err(|_| JoseError::Crypto("nonce"))?;
        let ct_len = buf.len();
        buf.extend_from_slice(tag);
        let result = key
            .open_in_place(nonce, aead::Aad::from(aad), buf)
            .map(|p| p.len());
        match result {
            Ok(n) => {
                buf.truncate(n);
                Ok(())
            }
            Err(_) => {
                buf.truncate(ct_len);
                Err(JoseError::DecryptionFailed)
            }
        }
    } else {
        if buf.is_empty() || !buf.len().is_multiple_of(16) {
            return Err(JoseError::DecryptionFailed);
        }
        let half = cek.len() / 2;
        let (mac_key, enc_key) = cek.split_at(half);
        let expected = cbc_hmac_tag(enc, mac_key, aad, iv, buf);
        if !bool::from(expected.as_ref()[..tag.len()].ct_eq(tag)) {
            return Err(JoseError::DecryptionFailed);
        }
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(
            UnboundCipherKey::new(aes_cipher(enc_key.len())?, enc_key)
                .map_err(|_| JoseError::InvalidKey("AES key"))?,
        )
        .map_err(|_| JoseError::Crypto("AES-CBC"))?;
        let mut iv16 = [0u8; 16];
        iv16.copy_from_slice(iv);
        let n = key
            .decrypt(buf, DecryptionContext::Iv128(FixedLength::from(iv16)))
            .map_err(|_| JoseError::DecryptionFailed)?
            .len();
        buf.truncate(n);
        Ok(())
    }
}

/// Decrypts to a new buffer.
///
/// # Errors
/// As [`decrypt_in_place`].
pub fn decrypt(
    enc: ContentEncryption,
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(ciphertext.len() + tag.len());
    buf.extend_from_slice(ciphertext);
    decrypt_in_place(enc, cek, None, iv, aad, &mut buf, tag)?;
    Ok(buf)
}
