//! HOTP (RFC 4226) and TOTP (RFC 6238) on aws-lc-rs HMAC, the base32 text of secrets
//! (RFC 4648, what authenticator apps read) and the `otpauth://` enrolment URI.
//!
//! Verification accepts the current time step and one step either side, compares in constant
//! time and returns the step that matched, so the caller can spend it (each code is usable
//! once: [`crate::storage::Store::claim_totp_step`]).

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::settings::TotpAlgorithm;

/// Steps accepted either side of the current one (clock drift and typing time).
pub const WINDOW: i64 = 1;
/// Longest code text looked at (anything longer is refused before any HMAC).
pub const MAX_CODE_LEN: usize = 64;

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The parameters of one authenticator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    /// The HMAC.
    pub algorithm: TotpAlgorithm,
    /// Digits per code (6 or 8).
    pub digits: u32,
    /// Seconds per time step.
    pub period_secs: u32,
}

fn hmac_algorithm(algorithm: TotpAlgorithm) -> hmac::Algorithm {
    match algorithm {
        TotpAlgorithm::SHA1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        TotpAlgorithm::SHA256 => hmac::HMAC_SHA256,
    }
}

/// The secret length generated for an algorithm: its HMAC output size (RFC 4226 §4 asks for
/// at least 128 bits and recommends 160).
pub fn secret_len(algorithm: TotpAlgorithm) -> usize {
    match algorithm {
        TotpAlgorithm::SHA1 => 20,
        TotpAlgorithm::SHA256 => 32,
    }
}

/// A fresh random secret for `algorithm`.
///
/// # Errors
/// When the system random generator fails.
pub fn generate_secret(algorithm: TotpAlgorithm) -> Result<Zeroizing<Vec<u8>>, RandomFailed> {
    let mut secret = Zeroizing::new(vec![0u8; secret_len(algorithm)]);
    aws_lc_rs::rand::fill(&mut secret[..]).map_err(|_| RandomFailed)?;
    Ok(secret)
}

/// The system random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the random generator failed")]
pub struct RandomFailed;

fn modulus(digits: u32) -> u32 {
    10u32.saturating_pow(digits.min(9))
}

/// HOTP (RFC 4226 §5.3): the `digits`-digit code of `counter` (dynamic truncation of the
/// HMAC), as a number.
pub fn hotp(algorithm: TotpAlgorithm, secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac_algorithm(algorithm), secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
    word % modulus(digits)
}

/// The code as text, zero-padded to `digits`.
pub fn format_code(code: u32, digits: u32) -> String {
    format!("{code:0width$}", width = digits as usize)
}

/// The time step of a Unix time (RFC 6238 §4.2, T0 = 0).
pub fn step_at(unix_secs: i64, period_secs: u32) -> i64 {
    unix_secs.div_euclid(i64::from(period_secs.max(1)))
}

/// The TOTP code text of `step`.
pub fn code_at_step(params: TotpParams, secret: &[u8], step: i64) -> String {
    let counter = u64::try_from(step).unwrap_or(0);
    format_code(
        hotp(params.algorithm, secret, counter, params.digits),
        params.digits,
    )
}

/// The TOTP code text at a Unix time.
pub fn code_at(params: TotpParams, secret: &[u8], unix_secs: i64) -> String {
    code_at_step(params, secret, step_at(unix_secs, params.period_secs))
}

/// Checks `code` (exactly `digits` ASCII digits; surrounding spaces and inner spaces are
/// ignored, as people type "123 456") against the steps around `unix_secs`: the step it
/// matched, or `None`. Every candidate step is computed and compared in constant time.
pub fn verify(params: TotpParams, secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let typed = normalize_code(code, params.digits)?;
    let current = step_at(unix_secs, params.period_secs);
    let mut matched = None;
    for step in current.saturating_sub(WINDOW)..=current.saturating_add(WINDOW) {
        if step < 0 {
            continue;
        }
        let expected = code_at_step(params, secret, step);
        if bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The code without spaces when it is exactly `digits` ASCII digits; `None` otherwise.
pub fn normalize_code(code: &str, digits: u32) -> Option<String> {
    if code.len() > MAX_CODE_LEN {
        return None;
    }
    let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (typed.len() == digits as usize && typed.bytes().all(|b| b.is_ascii_digit())).then_some(typed)
}

/// Base32 (RFC 4648 §6) without padding, as authenticator apps expect in `secret=`.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// Strict base32 (RFC 4648 §6) decoding: upper-case alphabet only, `=` padding optional but
/// complete when present, a length a real encoding can have, and unused trailing bits zero.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let data = text.trim_end_matches('=');
    let padding = text.len() - data.len();
    if padding > 0 && (!text.len().is_multiple_of(8) || padding > 6) {
        return None;
    }
    // Lengths mod 8 a real encoding leaves: 0, 2, 4, 5, 7 characters.
    if !matches!(data.len() % 8, 0 | 2 | 4 | 5 | 7) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for byte in data.bytes() {
        let value = BASE32_ALPHABET.iter().position(|&c| c == byte)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    (buffer == 0).then_some(out)
}

/// The secret as people type it: base32 in groups of four.
pub fn grouped(secret_base32: &str) -> String {
    secret_base32
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The enrolment URI authenticator apps read (Key Uri Format):
/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=…&digits=…&period=…`, labels
/// percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8], params: TotpParams) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm={algorithm}\
         &digits={digits}&period={period}",
        account = percent_encode(account),
        secret = base32_encode(secret),
        algorithm = params.algorithm.as_str(),
        digits = params.digits,
        period = params.period_secs,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";

    fn params(algorithm: TotpAlgorithm, digits: u32) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period_secs: 30,
        }
    }

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(TotpAlgorithm::SHA1, SEED_SHA1, counter as u64, 6),
                code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let rows: [(i64, &str, &str); 6] = [
            (59, "94287082", "46119246"),
            (1111111109, "07081804", "68084774"),
            (1111111111, "14050471", "67062674"),
            (1234567890, "89005924", "91819424"),
            (2000000000, "69279037", "90698825"),
            (20000000000, "65353130", "77737706"),
        ];
        for (time, sha1, sha256) in rows {
            assert_eq!(
                code_at(params(TotpAlgorithm::SHA1, 8), SEED_SHA1, time),
                sha1,
                "SHA1 at {time}"
            );
            assert_eq!(
                code_at(params(TotpAlgorithm::SHA256, 8), SEED_SHA256, time),
                sha256,
                "SHA256 at {time}"
            );
        }
        assert_eq!(step_at(1111111109, 30), 0x023523EC);
    }

    #[test]
    fn the_window_is_one_step_either_side_and_returns_the_step() {
        let p = params(TotpAlgorithm::SHA1, 6);
        let now = 1_700_000_000;
        let step = step_at(now, 30);
        for delta in -1..=1 {
            let code = code_at_step(p, SEED_SHA1, step + delta);
            assert_eq!(verify(p, SEED_SHA1, &code, now), Some(step + delta));
        }
        for delta in [-2, 2] {
            let code = code_at_step(p, SEED_SHA1, step + delta);
            assert_eq!(verify(p, SEED_SHA1, &code, now), None, "delta {delta}");
        }
        // The last second of a step still accepts the next one; the first of the step after
        // next no longer accepts the previous one.
        let end = (step + 1) * 30 - 1;
        let next = code_at_step(p, SEED_SHA1, step + 1);
        assert_eq!(verify(p, SEED_SHA1, &next, end), Some(step + 1));
        let old = code_at_step(p, SEED_SHA1, step - 1);
        assert_eq!(verify(p, SEED_SHA1, &old, (step + 1) * 30), None);
        // Spaces are what people type.
        let spaced = format!(" {} {} ", &next[..3], &next[3..]);
        assert_eq!(verify(p, SEED_SHA1, &spaced, end), Some(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused_without_panicking() {
        let p = params(TotpAlgorithm::SHA256, 6);
        let now = 1_700_000_000;
        let right = code_at(p, SEED_SHA256, now);
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "１２３４５６",
            "-12345",
            &"1".repeat(10_000),
            &format!("{right}0"),
        ] {
            assert_eq!(verify(p, SEED_SHA256, bad, now), None, "{bad:?}");
        }
        assert_eq!(verify(p, SEED_SHA256, &right, 0), None);
        assert_eq!(verify(p, SEED_SHA256, &right, i64::MIN), None);
        assert_eq!(verify(p, b"", "000000", i64::MAX), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(base32_decode("MY======").unwrap(), b"f");
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn base32_decoding_is_strict() {
        for bad in [
            "my",        // lower case
            "MZ",        // trailing bits not zero
            "M",         // impossible length
            "MZX",       // impossible length
            "MZXW6Y",    // impossible length
            "MY=",       // incomplete padding
            "MZXW6YQ1",  // 1 is not in the alphabet
            "MZXW 6YQ",  // space
            "MZXW6YTB=", // padding after a full block
            "========",
        ] {
            assert_eq!(base32_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_have_the_hmac_output_size() {
        assert_eq!(generate_secret(TotpAlgorithm::SHA1).unwrap().len(), 20);
        assert_eq!(generate_secret(TotpAlgorithm::SHA256).unwrap().len(), 32);
        assert_ne!(
            generate_secret(TotpAlgorithm::SHA1).unwrap(),
            generate_secret(TotpAlgorithm::SHA1).unwrap()
        );
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }

    #[test]
    fn the_uri_percent_encodes_labels() {
        let uri = otpauth_uri(
            "cryptoutil Identity",
            "ann@example.com",
            b"foobar",
            params(TotpAlgorithm::SHA256, 8),
        );
        assert_eq!(
            uri,
            "otpauth://totp/cryptoutil%20Identity:ann%40example.com?secret=MZXW6YTBOI\
             &issuer=cryptoutil%20Identity&algorithm=SHA256&digits=8&period=30"
        );
        let tricky = otpauth_uri("a:b", "x?y&z=/", b"f", params(TotpAlgorithm::SHA1, 6));
        assert!(tricky.starts_with("otpauth://totp/a%3Ab:x%3Fy%26z%3D%2F?secret=MY&"));
    }
}
