//! User codes (RFC 8628 §6.1): eight characters of a base-20 alphabet without vowels (so no
//! word can be spelled and no letter looks like a digit), shown as `XXXX-XXXX`, and typed
//! back case-, dash- and space-insensitively.
//!
//! 20⁸ ≈ 2.56 × 10¹⁰ codes (34 bits): with the entry page's backoff and a code living minutes,
//! guessing a live code is out of reach (RFC 8628 §5.1).

use crate::tokens::TokenError;

/// The alphabet: consonants only, no vowels (RFC 8628 §6.1's example).
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (without the dash).
pub const LENGTH: usize = 8;
/// Longest text accepted on the entry page before normalising (more is a wrong code).
pub const MAX_INPUT_LEN: usize = 64;

/// A user code in its normal form: exactly [`LENGTH`] characters of [`ALPHABET`], no dash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

impl std::fmt::Debug for UserCode {
    // A live user code is a short-lived credential: never print it whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(…)")
    }
}

impl UserCode {
    /// A new random code. Each character is drawn by rejection sampling (bytes ≥ 240 are
    /// redrawn), so every character of the alphabet is equally likely.
    pub fn generate() -> Result<Self, TokenError> {
        let mut out = String::with_capacity(LENGTH);
        let mut buf = [0u8; 16];
        while out.len() < LENGTH {
            aws_lc_rs::rand::fill(&mut buf).map_err(|_| TokenError::Crypto("RNG"))?;
            for b in buf {
                // 240 = 12 × 20: the largest multiple of the alphabet's size in a byte.
                if b < 240 && out.len() < LENGTH {
                    out.push(char::from(ALPHABET[usize::from(b % 20)]));
                }
            }
        }
        Ok(Self(out))
    }

    /// Normalises what a user typed: ASCII letters upper-cased, dashes and white space
    /// dropped. `None` unless exactly [`LENGTH`] characters of the alphabet remain (or the
    /// input is longer than [`MAX_INPUT_LEN`]).
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > MAX_INPUT_LEN {
            return None;
        }
        let mut out = String::with_capacity(LENGTH);
        for c in input.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) || out.len() == LENGTH {
                return None;
            }
            out.push(upper);
        }
        (out.len() == LENGTH).then_some(Self(out))
    }

    /// A code read back from storage (already normal); `None` if it is not.
    pub fn from_stored(text: &str) -> Option<Self> {
        (text.len() == LENGTH && text.bytes().all(|b| ALPHABET.contains(&b)))
            .then(|| Self(text.to_owned()))
    }

    /// The normal form (stored, indexed, compared).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown to people: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(LENGTH / 2);
        format!("{a}-{b}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_eight_alphabet_characters() {
        for _ in 0..200 {
            let code = UserCode::generate().unwrap();
            assert_eq!(code.as_str().len(), LENGTH);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(UserCode::parse(&code.display()), Some(code.clone()));
            assert_eq!(UserCode::from_stored(code.as_str()), Some(code));
        }
    }

    #[test]
    fn the_alphabet_has_no_vowels_and_twenty_distinct_letters() {
        let mut seen = std::collections::HashSet::new();
        for &c in ALPHABET {
            assert!(!b"AEIOUY0123456789".contains(&c));
            assert!(seen.insert(c));
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn generation_uses_the_whole_alphabet_evenly() {
        let mut counts = [0usize; 20];
        for _ in 0..2000 {
            for b in UserCode::generate().unwrap().as_str().bytes() {
                counts[ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
            }
        }
        // 16,000 draws: 800 expected per character; a biased sampler would stray far more.
        for count in counts {
            assert!((600..=1000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn entry_ignores_case_dashes_and_spaces() {
        let want = UserCode::parse("WDJB-MJHT").unwrap();
        assert_eq!(want.as_str(), "WDJBMJHT");
        assert_eq!(want.display(), "WDJB-MJHT");
        for typed in [
            "wdjb-mjht",
            "WDJBMJHT",
            " wdjb mjht ",
            "Wd-Jb-Mj-Ht",
            "WDJB\u{2009}MJHT",
            "w-d-j-b-m-j-h-t",
        ] {
            assert_eq!(UserCode::parse(typed), Some(want.clone()), "{typed:?}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for typed in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTT",
            "WDJB-MJHA",
            "WDJB-MJH1",
            "WDJB_MJHT",
            "ẄDJB-MJHT",
            "WDJB-MJHÉ",
            &"-".repeat(65),
            &format!("WDJBMJHT{}", " ".repeat(60)),
        ] {
            assert_eq!(UserCode::parse(typed), None, "{typed:?}");
        }
        assert_eq!(UserCode::from_stored("WDJB-MJHT"), None);
        assert_eq!(UserCode::from_stored("wdjbmjht"), None);
    }

    #[test]
    fn debug_does_not_show_the_code() {
        let code = UserCode::parse("WDJBMJHT").unwrap();
        assert!(!format!("{code:?}").contains("WDJB"));
    }
}
