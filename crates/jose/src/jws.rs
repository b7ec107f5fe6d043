//! JWS compact serialization (RFC 7515 §7.1).
//!
//! Verification never trusts the token: the caller passes the algorithm its key is configured
//! for, a header `alg` that differs is rejected, `none` can never be expressed, and `crit`
//! follows RFC 7515 §4.1.11.

use aws_lc_rs::{hmac, signature};
use serde_json::{Map, Value};

use crate::b64;
use crate::error::{JoseError, Result};
use crate::header::{Header, check_crit};
use crate::jwa::{JwsAlgorithm, truncate};
use crate::jwk::{Jwk, KeyMaterial, OkpInner, Op};
use crate::limits::MAX_COMPACT_LEN;

/// A verified JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The protected header.
    pub header: Header,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Header parameters a caller may not set through `extra_header` (they are computed here or
/// would change how the JWS is processed).
const RESERVED: &[&str] = &["alg", "crit", "b64", "zip", "enc"];

/// Serializes `{"alg":...}` plus the caller's extra members into `out`.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    first: (&str, &str),
    extra: Option<&Map<String, Value>>,
    reserved: &[&str],
) -> Result<()> {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(first.0.as_bytes());
    out.extend_from_slice(b"\":\"");
    out.extend_from_slice(first.1.as_bytes());
    out.push(b'"');
    if let Some(extra) = extra {
        for (k, v) in extra {
            if reserved.contains(&k.as_str()) || k == first.0 {
                return Err(JoseError::InvalidHeader(truncate(k)));
            }
            out.push(b',');
            serde_json::to_writer(&mut *out, k).map_err(|_| JoseError::Json("header"))?;
            out.push(b':');
            serde_json::to_writer(&mut *out, v).map_err(|_| JoseError::Json("header"))?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// Signs `payload` with `key` using `alg`, returning the compact serialization.
/// `extra_header` adds protected header members (`kid`, `typ`, custom claims); `alg`, `crit`,
/// `b64` and `zip` are rejected there.
///
/// # Errors
/// Key/algorithm mismatch, missing private key, reserved header names.
pub fn sign(
    key: &Jwk,
    alg: JwsAlgorithm,
    payload: &[u8],
    extra_header: Option<&Map<String, Value>>,
) -> Result<String> {
    key.check_usage(&[alg.name()], Op::Sign)?;
    let mut header = Vec::with_capacity(64);
    write_header(&mut header, ("alg", alg.name()), extra_header, RESERVED)?;
    let sig_len = if alg.is_ml_dsa() { 4627 } else { 512 };
    let mut out = String::with_capacity(
        b64::encoded_len(header.len())
            + b64::encoded_len(payload.len())
            + 2
            + b64::encoded_len(sig_len),
    );
    b64::encode_into(&header, &mut out);
    out.push('.');
    b64::encode_into(payload, &mut out);
    let sig = sign_raw(key, alg, out.as_bytes())?;
    out.push('.');
    b64::encode_into(&sig, &mut out);
    Ok(out)
}

/// Raw signature (JWS encoding: fixed-size `r||s` for ECDSA) over arbitrary `input`, for
/// detached use and for testing against published vectors. Applies no `alg`/`use`/`key_ops`
/// checks; prefer [`sign`].
///
/// # Errors
/// Key/algorithm mismatch or missing private key.
pub fn sign_raw(key: &Jwk, alg: JwsAlgorithm, input: &[u8]) -> Result<Vec<u8>> {
    crate::policy::check_jws(alg)?;
    match (&key.material, alg) {
        (KeyMaterial::Oct(k), JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512) => {
            Ok(hmac::sign(k.hmac(alg)?, input).as_ref().to_vec())
        }
        (
            KeyMaterial::Rsa(k),
            JwsAlgorithm::RS256
            | JwsAlgorithm::RS384
            | JwsAlgorithm::RS512
            | JwsAlgorithm::PS256
            | JwsAlgorithm::PS384
            | JwsAlgorithm::PS512,
        ) => {
            let private = k
                .private
                .as_ref()
                .ok_or(JoseError::KeyMismatch("private key required"))?;
            let padding: &'static dyn signature::RsaEncoding = match alg {
                JwsAlgorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                JwsAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                JwsAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                JwsAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
                JwsAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut sig = vec![0u8; private.pair.public_modulus_len()];
            private
                .pair
                .sign(
                    padding,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    input,
                    &mut sig,
                )
                .map_err(|_| JoseError::Crypto("RSA signing"))?;
            Ok(sig)
        }
        (KeyMaterial::Ec(k), JwsAlgorithm::ES256 | JwsAlgorithm::ES384 | JwsAlgorithm::ES512) => {
            if alg.ec_curve() != Some(k.crv) {
                return Err(JoseError::KeyMismatch(
                    "EC curve does not match the algorithm",
                ));
            }
            let private = k
                .private
                .as_ref()
                .ok_or(JoseError::KeyMismatch("private key required"))?;
            let sig = private
                .sign
                .sign(&aws_lc_rs::rand::SystemRandom::new(), input)
                .map_err(|_| JoseError::Crypto("ECDSA signing"))?;
            Ok(sig.as_ref().to_vec())
        }
        (KeyMaterial::Okp(k), JwsAlgorithm::EdDSA) => match &k.inner {
            OkpInner::Ed25519 {
                private: Some((_, pair)),
                ..
            } => Ok(pair.sign(input).as_ref().to_vec()),
            OkpInner::Ed25519 { private: None, .. } => {
                Err(JoseError::KeyMismatch("private key required"))
            }
            OkpInner::X25519 { .. } => Err(JoseError::KeyMismatch("X25519 keys cannot sign")),
        },
        (
            KeyMaterial::Akp(k),
            JwsAlgorithm::MlDsa44 | JwsAlgorithm::MlDsa65 | JwsAlgorithm::MlDsa87,
        ) => {
            if k.alg != alg.name() {
                return Err(JoseError::KeyMismatch(
                    "AKP key's alg does not match the algorithm",
                ));
            }
            k.sign(input)
        }
        _ => Err(JoseError::KeyMismatch(
            "key type does not match the algorithm",
        )),
    }
}

/// Verifies a raw signature (JWS encoding) over arbitrary `input`. Applies no
/// `alg`/`use`/`key_ops` checks; prefer [`verify`].
///
/// # Errors
/// Key/algorithm mismatch or [`JoseError::InvalidSignature`].
pub fn verify_raw(key: &Jwk, alg: JwsAlgorithm, input: &[u8], sig: &[u8]) -> Result<()> {
    crate::policy::check_jws(alg)?;
    let ok = match (&key.material, alg) {
        (KeyMaterial::Oct(k), JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512) => {
            // Constant-time comparison inside aws-lc-rs.
            hmac::verify(k.hmac(alg)?, input, sig).is_ok()
        }
        (
            KeyMaterial::Rsa(k),
            JwsAlgorithm::RS256
            | JwsAlgorithm::RS384
            | JwsAlgorithm::RS512
            | JwsAlgorithm::PS256
            | JwsAlgorithm::PS384
            | JwsAlgorithm::PS512,
        ) => {
            if sig.len() != k.n.len() {
                return Err(JoseError::InvalidSignature);
            }
            k.verifier(alg)?.verify_sig(input, sig).is_ok()
        }
        (KeyMaterial::Ec(k), JwsAlgorithm::ES256 | JwsAlgorithm::ES384 | JwsAlgorithm::ES512) => {
            if alg.ec_curve() != Some(k.crv) {
                return Err(JoseError::KeyMismatch(
                    "EC curve does not match the algorithm",
                ));
            }
            if sig.len() != 2 * k.crv.coordinate_len() {
                return Err(JoseError::InvalidSignature);
            }
            k.verify.verify_sig(input, sig).is_ok()
        }
        (KeyMaterial::Okp(k), JwsAlgorithm::EdDSA) => match &k.inner {
            OkpInner::Ed25519 { verify, .. } => {
                sig.len() == 64 && verify.verify_sig(input, sig).is_ok()
            }
            OkpInner::X25519 { .. } => {
                return Err(JoseError::KeyMismatch("X25519 keys cannot verify"));
            }
        },
        (
            KeyMaterial::Akp(k),
            JwsAlgorithm::MlDsa44 | JwsAlgorithm::MlDsa65 | JwsAlgorithm::MlDsa87,
        ) => {
            if k.alg != alg.name() {
                return Err(JoseError::KeyMismatch(
                    "AKP key's alg does not match the algorithm",
                ));
            }
            k.verify(input, sig)?
        }
        _ => {
            return Err(JoseError::KeyMismatch(
                "key type does not match the algorithm",
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(JoseError::InvalidSignature)
    }
}

/// Splits a compact serialization into exactly `N` parts (`N` ≥ 2).
///
/// Only the short leading parts are scanned from the front and the last part from the back, so
/// a large payload/ciphertext in the second-to-last position is not scanned here; a stray `.`
/// inside it is rejected by its base64url decoding.
pub(crate) fn split_compact<const N: usize>(compact: &str) -> Result<[&str; N]> {
    if compact.len() > MAX_COMPACT_LEN {
        return Err(JoseError::TooLarge {
            what: "compact serialization",
            limit: MAX_COMPACT_LEN,
        });
    }
    const WRONG: JoseError = JoseError::Malformed("wrong number of parts");
    let mut parts = [""; N];
    let (head, last) = compact.rsplit_once('.').ok_or(WRONG)?;
    let mut rest = head;
    for p in parts.iter_mut().take(N.saturating_sub(2)) {
        let (part, tail) = rest.split_once('.').ok_or(WRONG)?;
        *p = part;
        rest = tail;
    }
    if N < 2 {
        return Err(WRONG);
    }
    parts[N - 2] = rest;
    parts[N - 1] = last;
    Ok(parts)
}

/// Decodes and parses a base64url protected header, bounded in size.
pub(crate) fn decode_header(b64_header: &str) -> Result<Header> {
    if b64_header.len() > b64::encoded_len(crate::limits::MAX_HEADER_LEN) {
        return Err(JoseError::TooLarge {
            what: "header",
            limit: crate::limits::MAX_HEADER_LEN,
        });
    }
    Header::parse(&b64::decode(b64_header.as_bytes(), "protected header")?)
}

/// Verifies a compact JWS with `key`, requiring the header `alg` to equal `expected_alg`.
///
/// # Errors
/// Malformed input, algorithm mismatch, `crit` violations, or [`JoseError::InvalidSignature`].
pub fn verify(key: &Jwk, expected_alg: JwsAlgorithm, compact: &str) -> Result<Verified> {
    key.check_usage(&[expected_alg.name()], Op::Verify)?;
    let [h, p, s] = split_compact::<3>(compact)?;
    let header = decode_header(h)?;
    match header.get("alg") {
        Some(Value::String(a)) if a == expected_alg.name() => {}
        Some(Value::String(a)) => {
            return Err(JoseError::AlgorithmMismatch {
                expected: expected_alg.name().to_owned(),
                found: truncate(a),
            });
        }
        _ => return Err(JoseError::InvalidHeader("alg".into())),
    }
    check_crit(header.members(), &[])?;
    if header.get("b64").is_some() {
        // RFC 7797 unencoded payloads are not supported (and b64 requires crit, rejected above).
        return Err(JoseError::InvalidHeader("b64".into()));
    }
    if header.get("zip").is_some() {
        return Err(JoseError::UnsupportedZip);
    }
    let sig = b64::decode(s.as_bytes(), "signature")?;
    let input_len = h.len() + 1 + p.len();
    verify_raw(key, expected_alg, &compact.as_bytes()[..input_len], &sig)?;
    let payload = b64::decode(p.as_bytes(), "payload")?;
    Ok(Verified { header, payload })
}

/// Reads the protected header of a compact JWS without verifying it (for key selection by
/// `kid`). Never use the result for anything else before [`verify`] succeeds.
///
/// # Errors
/// Malformed input.
pub fn peek_header(compact: &str) -> Result<Header> {
    let [h, _, _] = split_compact::<3>(compact)?;
    decode_header(h)
}
