//! Strict base64url without padding (RFC 7515 §2): no `=`, no characters outside the URL-safe
//! alphabet, no whitespace, and non-canonical trailing bits are rejected.

use base64_simd::URL_SAFE_NO_PAD;

use crate::error::{JoseError, Result};

/// Encodes `data` as base64url without padding.
#[must_use]
pub fn encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode_to_string(data)
}

/// Appends the base64url encoding of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_append(data, out);
}

/// Length of the base64url (unpadded) encoding of `n` bytes.
#[must_use]
pub const fn encoded_len(n: usize) -> usize {
    (n / 3) * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Decodes strict base64url; `what` names the field in the error.
///
/// # Errors
/// [`JoseError::Base64`] on any non-canonical or invalid input.
pub fn decode(input: &[u8], what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_into(input, &mut out, what)?;
    Ok(out)
}

/// Decodes strict base64url, appending to `out`.
///
/// # Errors
/// [`JoseError::Base64`] on any non-canonical or invalid input.
pub fn decode_into(input: &[u8], out: &mut Vec<u8>, what: &'static str) -> Result<()> {
    // An unpadded encoding can never have length 1 mod 4.
    if input.len() % 4 == 1 {
        return Err(JoseError::Base64(what));
    }
    // base64-simd (non-forgiving) rejects padding, non-alphabet bytes and non-canonical
    // trailing bits.
    URL_SAFE_NO_PAD
        .decode_append(input, out)
        .map_err(|_| JoseError::Base64(what))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| i as u8 ^ 0xa5).collect();
            let e = encode(&data);
            assert_eq!(e.len(), encoded_len(n));
            assert_eq!(decode(e.as_bytes(), "t").unwrap(), data);
        }
        assert!(decode(b"AA==", "t").is_err());
        assert!(decode(b"A+B/", "t").is_err());
        assert!(decode(b"AB", "t").is_err(), "non-canonical trailing bits");
        assert!(decode(b"AA", "t").is_ok());
        assert!(decode(b"A", "t").is_err());
        assert!(decode(b"AA A", "t").is_err());
        assert!(decode(b"AA\n", "t").is_err());
    }

    #[test]
    fn agrees_with_the_base64_crate() {
        use base64::Engine as _;
        let oracle = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut x: u32 = 1;
        for n in 0..300usize {
            let data: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let e = encode(&data);
            assert_eq!(e, oracle.encode(&data));
            assert_eq!(decode(e.as_bytes(), "t").unwrap(), data);
            // Every single-byte corruption is judged the same way by both decoders.
            if !e.is_empty() {
                for c in [b'=', b'+', b'/', b' ', 0xff, b'A', b'_', b'-'] {
                    let mut bad = e.clone().into_bytes();
                    let i = n % bad.len();
                    bad[i] = c;
                    assert_eq!(
                        decode(&bad, "t").is_ok(),
                        oracle.decode(&bad).is_ok(),
                        "{n} {c}"
                    );
                }
            }
        }
    }
}
