//! JWE (RFC 7516): compact serialization and general JSON serialization with several
//! recipients.
//!
//! Decryption takes the `alg` and `enc` the caller's key is configured for and rejects tokens
//! that say otherwise. `zip` is rejected, `crit` follows RFC 7515 §4.1.11.

pub mod alg;
pub mod enc;
mod json;

pub use json::{Recipient, decrypt_json, encrypt_json};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{JoseError, Result};
use crate::header::{Header, check_crit};
use crate::jwa::{ContentEncryption, JweAlgorithm, truncate};
use crate::jwk::{Jwk, Op};
use crate::jws::{decode_header, split_compact, write_header};

/// A decrypted JWE.
///
/// The plaintext is a plain `Vec<u8>` (zeroizing 16 KiB byte by byte costs more than the
/// decryption itself); callers holding secrets wrap it in [`zeroize::Zeroizing`]. Keys and CEKs
/// are always zeroized by this crate. `Debug` shows only the plaintext length.
pub struct Decrypted {
    /// The protected header (compact), or the joint header of the recipient that matched (JSON).
    pub header: Header,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

impl core::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decrypted")
            .field("header", &self.header)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// Header names a caller may not set through the extra header (computed by this crate, or
/// unsupported).
pub(crate) const RESERVED: &[&str] = &[
    "alg", "enc", "zip", "crit", "epk", "ek", "iv", "tag", "p2s", "p2c",
];

/// Encrypts `plaintext` to `key` with `alg`/`enc`, returning the compact serialization.
/// `extra_header` adds protected members (`kid`, `iat`, a KMS `context`, and `apu`/`apv` for
/// ECDH-ES, given base64url-encoded).
///
/// # Errors
/// Key/algorithm mismatch, reserved header names, or a primitive failure.
pub fn encrypt(
    key: &Jwk,
    alg: JweAlgorithm,
    enc: ContentEncryption,
    plaintext: &[u8],
    extra_header: Option<&Map<String, Value>>,
) -> Result<String> {
    key.check_usage(&usage_names(alg, enc), Op::Encrypt)?;
    // One RNG call for the CEK (when this side chooses it) and the content IV: aws-lc's
    // RAND_bytes costs about as much per call as AES-GCM on a small message.
    let cek_len = if alg.is_direct() { 0 } else { enc.key_len() };
    let mut random = Zeroizing::new([0u8; 64 + 16]);
    let random = &mut random[..cek_len + enc.iv_len()];
    aws_lc_rs::rand::fill(random).map_err(|_| JoseError::Crypto("rng"))?;
    let (cek, iv) = random.split_at(cek_len);
    let wrapped = alg::wrap(key, alg, enc, (cek_len > 0).then_some(cek), extra_header)?;
    let mut header = Vec::with_capacity(96);
    write_header(&mut header, ("alg", alg.name()), None, &[])?;
    header.pop();
    header.extend_from_slice(b",\"enc\":\"");
    header.extend_from_slice(enc.name().as_bytes());
    header.push(b'"');
    for (k, v) in &wrapped.params {
        header.extend_from_slice(b",\"");
        header.extend_from_slice(k.as_bytes());
        header.extend_from_slice(b"\":");
        serde_json::to_writer(&mut header, v).map_err(|_| JoseError::Json("header"))?;
    }
    if let Some(extra) = extra_header {
        for (k, v) in extra {
            if RESERVED.contains(&k.as_str()) {
                return Err(JoseError::InvalidHeader(truncate(k)));
            }
            header.push(b',');
            serde_json::to_writer(&mut header, k).map_err(|_| JoseError::Json("header"))?;
            header.push(b':');
            serde_json::to_writer(&mut header, v).map_err(|_| JoseError::Json("header"))?;
        }
    }
    header.push(b'}');

    let ct_len = plaintext.len() + 16;
    let mut out = String::with_capacity(
        b64::encoded_len(header.len())
            + b64::encoded_len(wrapped.encrypted_key.len())
            + b64::encoded_len(ct_len)
            + 2 * 43
            + 4,
    );
    b64::encode_into(&header, &mut out);
    let sealed = enc::encrypt_with_iv(
        enc,
        wrapped.cek.bytes(),
        wrapped.cek.gcm(enc)?,
        iv,
        out.as_bytes(),
        plaintext,
    )?;
    out.push('.');
    b64::encode_into(&wrapped.encrypted_key, &mut out);
    out.push('.');
    b64::encode_into(sealed.iv(), &mut out);
    out.push('.');
    b64::encode_into(&sealed.ciphertext, &mut out);
    out.push('.');
    b64::encode_into(sealed.tag(), &mut out);
    Ok(out)
}

/// Names a key's `alg` may carry for this `alg`/`enc` pair.
pub(crate) fn usage_names(alg: JweAlgorithm, enc: ContentEncryption) -> [&'static str; 2] {
    if alg == JweAlgorithm::Dir {
        [alg.name(), enc.name()]
    } else {
        [alg.name(), alg.name()]
    }
}

/// Checks the `alg`/`enc` members of a (joint) header against the caller's expectation.
pub(crate) fn check_alg_enc(
    header: &Map<String, Value>,
    alg: JweAlgorithm,
    enc: ContentEncryption,
) -> Result<()> {
    for (name, expected) in [("alg", alg.name()), ("enc", enc.name())] {
        match header.get(name) {
            Some(Value::String(s)) if s == expected => {}
            Some(Value::String(s)) => {
                return Err(JoseError::AlgorithmMismatch {
                    expected: expected.to_owned(),
                    found: truncate(s),
                });
            }
            _ => return Err(JoseError::InvalidHeader(name.into())),
        }
    }
    if header.contains_key("zip") {
        return Err(JoseError::UnsupportedZip);
    }
    Ok(())
}

/// Decodes a bounded base64url segment whose decoded length must be exactly `len`.
pub(crate) fn decode_exact(s: &str, len: usize, what: &'static str) -> Result<Vec<u8>> {
    if s.len() != b64::encoded_len(len) {
        return Err(JoseError::Malformed(what));
    }
    b64::decode(s.as_bytes(), what)
}

/// Decrypts a compact JWE with `key`, requiring the header's `alg` and `enc` to equal the
/// expected ones.
///
/// # Errors
/// Malformed input, algorithm mismatch, `crit`/`zip` violations, or
/// [`JoseError::DecryptionFailed`].
pub fn decrypt(
    key: &Jwk,
    alg: JweAlgorithm,
    enc: ContentEncryption,
    compact: &str,
) -> Result<Decrypted> {
    key.check_usage(&usage_names(alg, enc), Op::Decrypt)?;
    let [h, ek, iv, ct, tag] = split_compact::<5>(compact)?;
    let header = decode_header(h)?;
    check_alg_enc(header.members(), alg, enc)?;
    check_crit(header.members(), &[])?;
    if ek.len() > b64::encoded_len(crate::limits::MAX_ENCRYPTED_KEY_LEN) {
        return Err(JoseError::TooLarge {
            what: "encrypted key",
            limit: crate::limits::MAX_ENCRYPTED_KEY_LEN,
        });
    }
    let encrypted_key = b64::decode(ek.as_bytes(), "encrypted key")?;
    let iv = decode_exact(iv, enc.iv_len(), "IV length does not match enc")?;
    let tag = decode_exact(tag, enc.tag_len(), "tag length does not match enc")?;
    let cek = alg::unwrap(key, alg, enc, header.members(), &encrypted_key)?;
    let mut buf = Vec::with_capacity(ct.len() / 4 * 3 + 3 + tag.len());
    b64::decode_into(ct.as_bytes(), &mut buf, "ciphertext")?;
    enc::decrypt_in_place(
        enc,
        cek.bytes(),
        cek.gcm(enc)?,
        &iv,
        h.as_bytes(),
        &mut buf,
        &tag,
    )?;
    Ok(Decrypted {
        header,
        plaintext: buf,
    })
}

/// Reads the protected header of a compact JWE without decrypting (for key selection by `kid`).
///
/// # Errors
/// Malformed input.
pub fn peek_header(compact: &str) -> Result<Header> {
    let [h, _, _, _, _] = split_compact::<5>(compact)?;
    decode_header(h)
}
