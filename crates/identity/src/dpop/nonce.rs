//! Stateless rotating DPoP server nonces (RFC 9449 §8).
//!
//! A nonce is `base64url(window || HMAC-SHA256(key, "dpop-nonce" || window)[..16])` where
//! `window = unix time / rotation period` (8 bytes, big-endian). Every instance that derives the
//! same key (from the shared key-encryption key) issues and accepts the same nonces without any
//! shared state. The nonce of the current and of the previous window are accepted, so a nonce
//! stays valid between one and two rotation periods.

use std::fmt;

use aws_lc_rs::hmac;
use cryptoutil_jose::b64;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// Bytes of the HMAC kept in a nonce.
const TAG_LEN: usize = 16;
/// Bytes of a decoded nonce: the window and the tag.
const NONCE_LEN: usize = 8 + TAG_LEN;
/// Longest nonce text considered (a valid one is 32 characters).
const MAX_NONCE_LEN: usize = 64;
/// The label mixed into every tag.
const LABEL: &[u8] = b"dpop-nonce";

/// Issues and checks the server's DPoP nonces.
pub struct NonceIssuer {
    key: hmac::Key,
    rotation_secs: i64,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("rotation_secs", &self.rotation_secs)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// Nonces under the 32-byte `key`, changing every `rotation` (at least one second).
    pub fn new(key: &[u8], rotation: Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            rotation_secs: rotation.whole_seconds().max(1),
        }
    }

    fn window(&self, now: OffsetDateTime) -> i64 {
        now.unix_timestamp().div_euclid(self.rotation_secs)
    }

    fn tag(&self, window: i64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(LABEL);
        ctx.update(&window.to_be_bytes());
        ctx.sign()
    }

    /// The nonce of the current window.
    #[must_use]
    pub fn current(&self, now: OffsetDateTime) -> String {
        let window = self.window(now);
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&window.to_be_bytes());
        bytes.extend_from_slice(&self.tag(window).as_ref()[..TAG_LEN]);
        b64::encode(&bytes)
    }

    /// Whether `nonce` is this server's nonce of the current or the previous window.
    #[must_use]
    pub fn accepts(&self, nonce: &str, now: OffsetDateTime) -> bool {
        if nonce.len() > MAX_NONCE_LEN {
            return false;
        }
        let Ok(bytes) = b64::decode(nonce.as_bytes(), "nonce") else {
            return false;
        };
        if bytes.len() != NONCE_LEN {
            return false;
        }
        let mut window = [0u8; 8];
        window.copy_from_slice(&bytes[..8]);
        let window = i64::from_be_bytes(window);
        let current = self.window(now);
        if window != current && window != current - 1 {
            return false;
        }
        bool::from(self.tag(window).as_ref()[..TAG_LEN].ct_eq(&bytes[8..]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn issuer() -> NonceIssuer {
        NonceIssuer::new(&[7u8; 32], Duration::minutes(5))
    }

    #[test]
    fn a_nonce_is_accepted_in_its_window_and_the_next_then_refused() {
        let n = issuer();
        let t = 1_800_000_000; // a multiple of 300: the start of a window
        assert_eq!(t % 300, 0);
        let nonce = n.current(at(t + 10));
        assert_eq!(nonce.len(), 32);
        assert_eq!(nonce, n.current(at(t + 299)), "stable within a window");
        assert_ne!(nonce, n.current(at(t + 300)), "rotates");
        assert!(n.accepts(&nonce, at(t)));
        assert!(n.accepts(&nonce, at(t + 299)));
        assert!(n.accepts(&nonce, at(t + 300)), "previous window");
        assert!(n.accepts(&nonce, at(t + 599)), "previous window");
        assert!(!n.accepts(&nonce, at(t + 600)), "two windows later");
        assert!(!n.accepts(&nonce, at(t - 1)), "a nonce from the future");
    }

    #[test]
    fn another_key_forged_or_malformed_nonces_are_refused() {
        let n = issuer();
        let now = at(1_800_000_000);
        let other = NonceIssuer::new(&[8u8; 32], Duration::minutes(5));
        assert!(!n.accepts(&other.current(now), now));
        assert!(other.accepts(&other.current(now), now));
        // Same key and window, one tag bit flipped.
        let mut bytes = b64::decode(n.current(now).as_bytes(), "n").unwrap();
        bytes[20] ^= 1;
        assert!(!n.accepts(&b64::encode(&bytes), now));
        for bad in ["", "x", "!!!!", &"A".repeat(32), &"A".repeat(5000)] {
            assert!(!n.accepts(bad, now), "{bad}");
        }
        // Two issuers with the same key (two instances) agree.
        let twin = issuer();
        assert!(twin.accepts(&n.current(now), now));
    }
}
