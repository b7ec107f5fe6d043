//! PKCE (RFC 7636), S256 only, required for every authorization code.
//!
//! - Authorization request: `code_challenge` is 43 base64url characters (a SHA-256 digest) and
//!   `code_challenge_method` must be `S256`. An absent method means `plain` (RFC 7636 §4.3) and is
//!   refused like `plain` and unknown methods: `invalid_request`.
//! - Token request: `code_verifier` is 43–128 unreserved characters (`[A-Za-z0-9-._~]`, §4.1),
//!   else `invalid_request`; a verifier that does not match the challenge is `invalid_grant`
//!   (§4.6). The digests are compared in constant time.

use aws_lc_rs::digest;
use cryptoutil_jose::b64;
use subtle::ConstantTimeEq;

use super::error::OAuthError;

/// The one supported `code_challenge_method`.
pub const S256: &str = "S256";
/// Length of an S256 challenge (base64url of 32 bytes, unpadded).
pub const CHALLENGE_LEN: usize = 43;
/// Shortest verifier.
pub const MIN_VERIFIER_LEN: usize = 43;
/// Longest verifier.
pub const MAX_VERIFIER_LEN: usize = 128;

/// Validates the authorization request's `code_challenge` and `code_challenge_method`.
pub fn validate_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<(), OAuthError> {
    let challenge =
        challenge.ok_or_else(|| OAuthError::invalid_request("code_challenge is required"))?;
    if method != Some(S256) {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    decode_challenge(challenge).map(|_| ())
}

/// Checks `verifier` against a stored S256 `challenge`.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), OAuthError> {
    validate_verifier(verifier)?;
    let expected = decode_challenge(challenge)
        .map_err(|_| OAuthError::invalid_grant("the authorization code is invalid"))?;
    let actual = digest::digest(&digest::SHA256, verifier.as_bytes());
    if bool::from(actual.as_ref().ct_eq(&expected)) {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ))
    }
}

/// Checks the syntax of a `code_verifier` (RFC 7636 §4.1).
pub fn validate_verifier(verifier: &str) -> Result<(), OAuthError> {
    let ok = (MIN_VERIFIER_LEN..=MAX_VERIFIER_LEN).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 unreserved characters",
        ))
    }
}

/// The S256 challenge of `verifier` (for clients and tests).
pub fn challenge_for(verifier: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

fn decode_challenge(challenge: &str) -> Result<[u8; 32], OAuthError> {
    let invalid = || OAuthError::invalid_request("code_challenge must be 43 base64url characters");
    if challenge.len() != CHALLENGE_LEN {
        return Err(invalid());
    }
    let bytes = b64::decode(challenge.as_bytes(), "code_challenge").map_err(|_| invalid())?;
    bytes.try_into().map_err(|_| invalid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(challenge_for(VERIFIER), CHALLENGE);
        validate_challenge(Some(CHALLENGE), Some("S256")).unwrap();
        verify(VERIFIER, CHALLENGE).unwrap();
    }

    #[test]
    fn only_s256_is_accepted() {
        for method in [None, Some("plain"), Some("s256"), Some("S512"), Some("")] {
            let e = validate_challenge(Some(CHALLENGE), method).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{method:?}");
        }
        let e = validate_challenge(None, Some("S256")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn challenge_syntax() {
        for bad in [
            &CHALLENGE[..42],
            &format!("{CHALLENGE}A"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", // standard alphabet
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", // non-canonical trailing bits
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=",
        ] {
            let e = validate_challenge(Some(bad), Some("S256")).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn bad_verifiers() {
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert_eq!(
            verify(wrong, CHALLENGE).unwrap_err().code,
            ErrorCode::InvalidGrant
        );
        for malformed in [
            &VERIFIER[..42],
            &"a".repeat(129),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX k",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXé",
        ] {
            assert_eq!(
                verify(malformed, CHALLENGE).unwrap_err().code,
                ErrorCode::InvalidRequest,
                "{malformed}"
            );
        }
        // Bounds are inclusive.
        let long = "~".repeat(128);
        verify(&long, &challenge_for(&long)).unwrap();
        // A stored challenge that is somehow malformed fails closed.
        assert_eq!(
            verify(VERIFIER, "short").unwrap_err().code,
            ErrorCode::InvalidGrant
        );
    }
}
