//! Strict base64url without padding (RFC 7515 §2): no `=`, no characters outside the URL-safe
//! alphabet, no whitespace, and non-canonical trailing bits are rejected.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::{JoseError, Result};

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes `data` as base64url without padding.
#[must_use]
pub fn encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Appends the base64url encoding of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(data, out);
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
    STRICT
        .decode_vec(input, out)
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
}
