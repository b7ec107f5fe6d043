//! PBKDF2-HMAC-SHA256 password hashes (SPEC §1).
//!
//! Written format (canonical): `pbkdf2-sha256$<iterations>$<b64url-nopad salt>$<b64url-nopad key>`.
//! Also read: `$pbkdf2-sha256$<iterations>$<std b64 salt>$<std b64 key>` (padding optional).
//! New hashes use 600,000 iterations, a 32-byte random salt and a 32-byte key. Parsed hashes must
//! have 210,000–10,000,000 iterations, a 16–64-byte salt and a 32–64-byte key.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::LazyLock;

use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::RealmError;

/// Iterations used for new hashes.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Fewest iterations accepted in a stored hash.
pub const MIN_ITERATIONS: u32 = 210_000;
/// Most iterations accepted in a stored hash (bounds the CPU one verification can cost).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Salt length of new hashes, in bytes.
pub const SALT_LEN: usize = 32;
/// Derived key length of new hashes, in bytes.
pub const KEY_LEN: usize = 32;

const CANONICAL_ID: &str = "pbkdf2-sha256";
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;
const MIN_KEY_LEN: usize = 32;
const MAX_KEY_LEN: usize = 64;
/// Longest hash string read (far above any valid one; bounds parsing work).
const MAX_HASH_LEN: usize = 512;

/// A parsed PBKDF2-HMAC-SHA256 password hash. `Debug` shows the iterations only.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Hashes `password` with fresh random salt and the default parameters; returns the canonical string.
pub fn hash_password(password: &str) -> Result<String, RealmError> {
    Ok(PasswordHash::new(password, DEFAULT_ITERATIONS)?.to_string())
}

/// Hashes `secret` with fresh random salt and `iterations`, which must lie within the accepted
/// bounds ([`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`]): for high-entropy secrets (recovery codes)
/// that need no more than the floor.
///
/// # Errors
/// [`RealmError::InvalidHash`] when `iterations` is out of bounds.
pub fn hash_password_with(secret: &str, iterations: u32) -> Result<String, RealmError> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(RealmError::InvalidHash("iterations out of range"));
    }
    Ok(PasswordHash::new(secret, iterations)?.to_string())
}

/// Performs a PBKDF2 verification of the same cost as a real one against a fixed dummy hash, and
/// throws the result away: call it when no user matches so unknown users cost what wrong passwords do.
pub fn dummy_verify(password: &str) {
    static DUMMY: LazyLock<PasswordHash> = LazyLock::new(|| PasswordHash {
        iterations: nonzero(DEFAULT_ITERATIONS),
        salt: vec![0x5a; SALT_LEN],
        key: Zeroizing::new(vec![0xa5; KEY_LEN]),
    });
    let _ = std::hint::black_box(DUMMY.verify(password));
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl PasswordHash {
    /// Hashes `password` with `iterations` and fresh random salt (no bounds check: for the crate's
    /// tests and for `hash_password`).
    pub(crate) fn new(password: &str, iterations: u32) -> Result<Self, RealmError> {
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| RealmError::Internal("random generator failed"))?;
        let iterations = nonzero(iterations);
        let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut key,
        );
        Ok(Self {
            iterations,
            salt,
            key,
        })
    }

    /// Parses either accepted format, refusing parameters outside the accepted bounds.
    pub fn parse(text: &str) -> Result<Self, RealmError> {
        let hash = Self::parse_unbounded(text)?;
        let n = hash.iterations.get();
        if n < MIN_ITERATIONS {
            return Err(RealmError::InvalidHash("fewer than 210000 iterations"));
        }
        if n > MAX_ITERATIONS {
            return Err(RealmError::InvalidHash("more than 10000000 iterations"));
        }
        Ok(hash)
    }

    /// Parses the syntax and salt/key lengths, but not the iteration bounds.
    fn parse_unbounded(text: &str) -> Result<Self, RealmError> {
        if text.len() > MAX_HASH_LEN {
            return Err(RealmError::InvalidHash("too long"));
        }
        let (rest, modular) = match text.strip_prefix('$') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let mut parts = rest.split('$');
        let (Some(id), Some(iterations), Some(salt), Some(key), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(RealmError::InvalidHash(
                "expected pbkdf2-sha256$<iterations>$<salt>$<key>",
            ));
        };
        if id != CANONICAL_ID {
            return Err(RealmError::InvalidHash("not a pbkdf2-sha256 hash"));
        }
        if iterations.is_empty()
            || !iterations.bytes().all(|b| b.is_ascii_digit())
            || iterations.starts_with('0')
        {
            return Err(RealmError::InvalidHash(
                "iterations is not a positive integer",
            ));
        }
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(RealmError::InvalidHash("iterations out of range"))?;
        let decode = |s: &str| -> Option<Vec<u8>> {
            if modular {
                STANDARD_NO_PAD.decode(s.trim_end_matches('=')).ok()
            } else {
                URL_SAFE_NO_PAD.decode(s).ok()
            }
        };
        let salt = decode(salt).ok_or(RealmError::InvalidHash("salt is not valid base64"))?;
        let key =
            Zeroizing::new(decode(key).ok_or(RealmError::InvalidHash("key is not valid base64"))?);
        if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
            return Err(RealmError::InvalidHash("salt must be 16 to 64 bytes"));
        }
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(RealmError::InvalidHash("key must be 32 to 64 bytes"));
        }
        Ok(Self {
            iterations,
            salt,
            key,
        })
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// Whether `password` matches; the comparison is constant time.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.key,
        )
        .is_ok()
    }

    /// Whether this hash is weaker than what new hashes get (so a caller may re-hash on login).
    pub fn needs_rehash(&self) -> bool {
        self.iterations.get() < DEFAULT_ITERATIONS
            || self.salt.len() < SALT_LEN
            || self.key.len() < KEY_LEN
    }
}

impl FromStr for PasswordHash {
    type Err = RealmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Writes the canonical format.
impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{CANONICAL_ID}${}${}${}",
            self.iterations,
            URL_SAFE_NO_PAD.encode(&self.salt),
            URL_SAFE_NO_PAD.encode(self.key.as_slice())
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Computed once with Python `hashlib.pbkdf2_hmac('sha256', b'correct horse battery staple',
    /// bytes(range(32)), 600000, 32)`.
    const VECTOR: &str = "pbkdf2-sha256$600000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8$YTpMNBE5TiT__mxRmUMHckVy5XS82Y6oz0V8ZImb-_4";
    const VECTOR_MODULAR: &str = "$pbkdf2-sha256$600000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=$YTpMNBE5TiT//mxRmUMHckVy5XS82Y6oz0V8ZImb+/4=";
    const VECTOR_PASSWORD: &str = "correct horse battery staple";

    #[test]
    fn known_vector_verifies_in_both_formats() {
        let canonical = PasswordHash::parse(VECTOR).unwrap();
        assert!(canonical.verify(VECTOR_PASSWORD));
        assert!(!canonical.verify("correct horse battery stapler"));
        let modular = PasswordHash::parse(VECTOR_MODULAR).unwrap();
        assert_eq!(canonical, modular);
        // The modular format is read, the canonical one written.
        assert_eq!(modular.to_string(), VECTOR);
        assert!(!canonical.needs_rehash());
    }

    #[test]
    fn hash_password_writes_canonical_default_parameters() {
        let text = hash_password("s3cret").unwrap();
        let parts: Vec<&str> = text.split('$').collect();
        assert_eq!(parts[0], "pbkdf2-sha256");
        assert_eq!(parts[1], "600000");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len(), 32);
        let parsed = PasswordHash::parse(&text).unwrap();
        assert!(parsed.verify("s3cret"));
        assert!(!parsed.verify("s3cret "));
    }

    #[test]
    fn salts_are_random() {
        let a = PasswordHash::new("same", 1000).unwrap();
        let b = PasswordHash::new("same", 1000).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.to_string(), b.to_string());
        assert!(a.verify("same") && b.verify("same"));
    }

    #[test]
    fn low_iteration_round_trip_through_unbounded_parser() {
        let h = PasswordHash::new("pw", 1000).unwrap();
        let back = PasswordHash::parse_unbounded(&h.to_string()).unwrap();
        assert!(back.verify("pw"));
        assert!(!back.verify("PW"));
        assert!(back.needs_rehash());
    }

    #[test]
    fn iteration_bounds_are_enforced() {
        let salt = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let key = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let at = |n: u32| format!("pbkdf2-sha256${n}${salt}${key}");
        assert!(PasswordHash::parse(&at(209_999)).is_err());
        assert_eq!(
            PasswordHash::parse(&at(210_000)).unwrap().iterations(),
            210_000
        );
        assert!(PasswordHash::parse(&at(10_000_000)).is_ok());
        assert!(PasswordHash::parse(&at(10_000_001)).is_err());
    }

    #[test]
    fn hash_password_with_stays_within_the_bounds() {
        let text = hash_password_with("abcd-efgh", MIN_ITERATIONS).unwrap();
        let hash = PasswordHash::parse(&text).unwrap();
        assert_eq!(hash.iterations(), MIN_ITERATIONS);
        assert!(hash.verify("abcd-efgh"));
        assert!(!hash.verify("abcd-efgi"));
        assert!(hash_password_with("x", MIN_ITERATIONS - 1).is_err());
        assert!(hash_password_with("x", MAX_ITERATIONS + 1).is_err());
    }

    #[test]
    fn malformed_hashes_are_refused() {
        let salt = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let key = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let std_salt = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        let bad = [
            String::new(),
            "pbkdf2-sha256".to_owned(),
            format!("pbkdf2-sha512$600000${salt}${key}"),
            format!("pbkdf2-sha256$0600000${salt}${key}"),
            format!("pbkdf2-sha256$+600000${salt}${key}"),
            format!("pbkdf2-sha256$99999999999${salt}${key}"),
            format!("pbkdf2-sha256$600000${salt}"),
            format!("pbkdf2-sha256$600000${salt}${key}$extra"),
            format!("pbkdf2-sha256$600000$!!!${key}"),
            format!(
                "pbkdf2-sha256$600000${}${key}",
                URL_SAFE_NO_PAD.encode([1u8; 8])
            ),
            format!(
                "pbkdf2-sha256$600000${salt}${}",
                URL_SAFE_NO_PAD.encode([2u8; 16])
            ),
            // Standard alphabet in the canonical (url-safe) format, and the reverse.
            format!("pbkdf2-sha256$600000${std_salt}${key}"),
            format!(
                "$pbkdf2-sha256$600000${}${key}",
                URL_SAFE_NO_PAD.encode([0xfbu8; 32])
            ),
            format!("pbkdf2-sha256$600000${}${key}", "A".repeat(600)),
        ];
        for text in &bad {
            assert!(PasswordHash::parse(text).is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn debug_does_not_show_salt_or_key() {
        let h = PasswordHash::parse(VECTOR).unwrap();
        let shown = format!("{h:?}");
        assert!(shown.contains("600000"));
        assert!(!shown.contains("AAECAw") && !shown.contains("YTpMNBE5"));
    }

    #[test]
    fn dummy_verify_runs() {
        // Only checks it completes; equal cost is by construction (same parameters as new hashes).
        dummy_verify("anything");
    }
}
