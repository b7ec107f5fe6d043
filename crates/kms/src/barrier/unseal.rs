//! Unseal keys: derived from M-of-N share files, loaded from JWK files, or random (`dev`).

use std::fmt;
use std::path::Path;

use aws_lc_rs::hkdf;
use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk, jwe, jwk::JwkSet};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::BarrierError;
use super::settings::{BarrierSettings, MAX_UNSEAL_KEYS, UnsealSettings, binomial};

/// Smallest share, in bytes (SPEC §3.4).
pub const SHARE_MIN_LEN: usize = 32;
/// Largest share, in bytes (SPEC §3.4).
pub const SHARE_MAX_LEN: usize = 64;
/// Largest share or JWK file read (bounded like every input).
const MAX_FILE_LEN: u64 = 64 * 1024;

/// One unseal key: a 256-bit AES key-wrapping key with its `kid`.
struct UnsealKey {
    kid: String,
    jwk: Jwk,
}

/// The unseal keys of this process: the root key is wrapped for every one of them (one JWE
/// recipient each), and any one of them opens it.
///
/// Key bytes live only inside [`Jwk`]s, which zeroize them on drop; `Debug` prints the kids only.
pub struct UnsealKeys {
    keys: Vec<UnsealKey>,
    complete: bool,
}

impl fmt::Debug for UnsealKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealKeys")
            .field("kids", &self.kids())
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

/// The SPEC §3.4 HKDF construction for `what` = `key material` or `key identifier`.
fn derive(combination: &[u8], what: &str) -> Result<Zeroizing<[u8; 32]>, BarrierError> {
    let mut ikm =
        Zeroizing::new(format!("fixed IKM for derive bytes for {what} secret v1").into_bytes());
    ikm.extend_from_slice(combination);
    let mut salt =
        Zeroizing::new(format!("fixed IKM for derive bytes for {what} salt v1").into_bytes());
    salt.extend_from_slice(combination);
    let info = format!("fixed context for derive unseal JWKs {what} v1");
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, &salt)
        .extract(&ikm)
        .expand(&[info.as_bytes()], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| BarrierError::Crypto("HKDF failed".into()))?;
    Ok(out)
}

/// The unseal key and its kid (UUID text of the first 16 bytes of the identifier derivation) for
/// one combination of shares, concatenated in index order.
pub(crate) fn derive_unseal_key(
    combination: &[u8],
) -> Result<(Zeroizing<[u8; 32]>, String), BarrierError> {
    let key = derive(combination, "key material")?;
    let id = derive(combination, "key identifier")?;
    let mut kid = [0u8; 16];
    kid.copy_from_slice(&id[..16]);
    Ok((key, Uuid::from_bytes(kid).to_string()))
}

/// Every `k`-combination of `items`, in lexicographic order.
fn combinations(items: &[usize], k: usize) -> Vec<Vec<usize>> {
    fn go(rest: &[usize], k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for (i, &item) in rest.iter().enumerate() {
            current.push(item);
            go(rest.get(i + 1..).unwrap_or(&[]), k, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    if k > 0 && k <= items.len() {
        go(items, k, &mut Vec::with_capacity(k), &mut out);
    }
    out
}

/// Constant-time equality of two secrets of equal length.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks that a JWK can be an unseal key: a 256-bit `oct` key usable for `A256KW`, with a kid.
fn check_unseal_jwk(jwk: &Jwk) -> Result<String, BarrierError> {
    let kid = jwk
        .kid()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| BarrierError::InvalidUnsealKeys("an unseal JWK has no kid".into()))?
        .to_owned();
    // A256KW only accepts 32-byte oct keys whose alg/use/key_ops allow encryption: probe it.
    if jwk.kty() != "oct"
        || jwe::encrypt(
            jwk,
            JweAlgorithm::A256KW,
            ContentEncryption::A256GCM,
            b"probe",
            None,
        )
        .is_err()
    {
        return Err(BarrierError::InvalidUnsealKeys(format!(
            "unseal JWK {kid:?} is not a 256-bit oct key usable for A256KW"
        )));
    }
    Ok(kid)
}

impl UnsealKeys {
    /// One random unseal key, for in-memory databases only (the caller checks that): data sealed
    /// under it is unrecoverable after the process exits.
    ///
    /// # Errors
    /// RNG failure.
    pub fn dev() -> Result<Self, BarrierError> {
        let mut jwk = Jwk::generate_oct(32)
            .map_err(|e| BarrierError::Crypto(format!("generating the dev unseal key: {e}")))?;
        let kid = Uuid::now_v7().to_string();
        jwk.set_kid(Some(kid.clone()));
        Ok(Self {
            keys: vec![UnsealKey { kid, jwk }],
            complete: true,
        })
    }

    /// Derives one unseal key per `threshold`-combination of the present shares (SPEC §3.4).
    ///
    /// `shares` are the N shares in index order, `None` for a share not provided. This is not
    /// Shamir secret sharing: every share is an independent random secret, and the root key is
    /// wrapped once per M-combination, so any M shares unseal. Initialising and rotating the root
    /// key need every share present (so that every combination gets a recipient).
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`]: bad threshold, a share outside 32–64 bytes, two equal
    /// shares, fewer than `threshold` shares present, or more than 64 combinations.
    pub fn from_shares(threshold: usize, shares: &[Option<Vec<u8>>]) -> Result<Self, BarrierError> {
        let n = shares.len();
        if threshold == 0 || threshold > n {
            return Err(BarrierError::InvalidUnsealKeys(format!(
                "the threshold must be between 1 and the number of shares ({n}), got {threshold}"
            )));
        }
        if binomial(n, threshold) > MAX_UNSEAL_KEYS {
            return Err(BarrierError::InvalidUnsealKeys(format!(
                "{threshold}-of-{n} gives {} combinations; at most {MAX_UNSEAL_KEYS} are supported",
                binomial(n, threshold)
            )));
        }
        let mut present: Vec<usize> = Vec::new();
        for (i, share) in shares.iter().enumerate() {
            let Some(share) = share else { continue };
            if !(SHARE_MIN_LEN..=SHARE_MAX_LEN).contains(&share.len()) {
                return Err(BarrierError::InvalidUnsealKeys(format!(
                    "share {} must be {SHARE_MIN_LEN} to {SHARE_MAX_LEN} bytes, got {}",
                    i + 1,
                    share.len()
                )));
            }
            for &j in &present {
                if let Some(other) = shares.get(j).and_then(Option::as_ref)
                    && same_secret(share.as_slice(), other.as_slice())
                {
                    return Err(BarrierError::InvalidUnsealKeys(format!(
                        "shares {} and {} are identical",
                        j + 1,
                        i + 1
                    )));
                }
            }
            present.push(i);
        }
        if present.len() < threshold {
            return Err(BarrierError::InvalidUnsealKeys(format!(
                "{} of {n} shares are present; at least {threshold} are needed",
                present.len()
            )));
        }
        let mut keys = Vec::new();
        for combo in combinations(&present, threshold) {
            let mut c = Zeroizing::new(Vec::with_capacity(threshold * SHARE_MAX_LEN));
            for i in combo {
                if let Some(Some(share)) = shares.get(i) {
                    c.extend_from_slice(share);
                }
            }
            let (key, kid) = derive_unseal_key(&c)?;
            let mut jwk = Jwk::from_oct_bytes(&key[..])
                .map_err(|e| BarrierError::Crypto(format!("unseal key: {e}")))?;
            jwk.set_kid(Some(kid.clone()));
            keys.push(UnsealKey { kid, jwk });
        }
        Ok(Self {
            keys,
            complete: present.len() == n,
        })
    }

    /// Uses the given `oct` 256-bit JWKs (each with a distinct `kid`) as unseal keys.
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`]: no keys, too many, a missing or duplicate kid, or a key
    /// that is not a 256-bit `oct` key usable for `A256KW`.
    pub fn from_jwks(jwks: Vec<Jwk>) -> Result<Self, BarrierError> {
        Self::from_jwks_inner(jwks, true)
    }

    fn from_jwks_inner(jwks: Vec<Jwk>, complete: bool) -> Result<Self, BarrierError> {
        if jwks.is_empty() || jwks.len() > MAX_UNSEAL_KEYS {
            return Err(BarrierError::InvalidUnsealKeys(format!(
                "between 1 and {MAX_UNSEAL_KEYS} unseal JWKs are needed, got {}",
                jwks.len()
            )));
        }
        let mut keys: Vec<UnsealKey> = Vec::with_capacity(jwks.len());
        for jwk in jwks {
            let kid = check_unseal_jwk(&jwk)?;
            if keys.iter().any(|k| k.kid == kid) {
                return Err(BarrierError::InvalidUnsealKeys(format!(
                    "unseal JWK kid {kid:?} appears twice"
                )));
            }
            keys.push(UnsealKey { kid, jwk });
        }
        Ok(Self { keys, complete })
    }

    /// Reads the unseal keys the settings name: [`Self::dev`], [`Self::from_share_files`] or
    /// [`Self::from_jwk_files`].
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`] when too few usable files remain or the keys are invalid.
    pub fn load(settings: &BarrierSettings) -> Result<Self, BarrierError> {
        match &settings.unseal {
            UnsealSettings::Dev {} => Self::dev(),
            UnsealSettings::Shares { threshold, files } => {
                Self::from_share_files(*threshold, files)
            }
            UnsealSettings::Jwk { files } => Self::from_jwk_files(files),
        }
    }

    /// Reads N share files (in index order) and derives the unseal keys as
    /// [`Self::from_shares`]. Each file holds one share as base64url text (RFC 4648 §5, no
    /// padding; surrounding whitespace ignored) decoding to 32–64 bytes. Missing, unreadable or
    /// invalid files are skipped with a warning naming the path (never the content) as long as
    /// `threshold` remain; the result is then incomplete: enough to unseal, not to initialise or
    /// rotate the root key.
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`] when fewer than `threshold` shares are usable.
    pub fn from_share_files<P: AsRef<Path>>(
        threshold: usize,
        files: &[P],
    ) -> Result<Self, BarrierError> {
        let shares: Vec<Option<Vec<u8>>> = files
            .iter()
            .map(|path| match read_share(path.as_ref()) {
                Ok(share) => Some(share.to_vec()),
                Err(why) => {
                    tracing::warn!(path = %path.as_ref().display(), reason = why, "unseal share file skipped");
                    None
                }
            })
            .collect();
        let result = Self::from_shares(threshold, &shares);
        // `from_shares` copies what it needs; wipe the decoded shares.
        for share in shares.into_iter().flatten() {
            drop(Zeroizing::new(share));
        }
        result
    }

    /// Reads JWK files (one JWK or a JWK set each) as [`Self::from_jwks`]. Unusable files are
    /// skipped with a warning naming the path as long as one key remains; the result is then
    /// incomplete.
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`] when no file is usable or a key is invalid.
    pub fn from_jwk_files<P: AsRef<Path>>(files: &[P]) -> Result<Self, BarrierError> {
        let mut jwks = Vec::new();
        let mut complete = true;
        for path in files {
            match read_jwks(path.as_ref()) {
                Ok(mut found) => jwks.append(&mut found),
                Err(why) => {
                    tracing::warn!(path = %path.as_ref().display(), reason = why, "unseal JWK file skipped");
                    complete = false;
                }
            }
        }
        if jwks.is_empty() {
            return Err(BarrierError::InvalidUnsealKeys(
                "none of the unseal JWK files could be read".into(),
            ));
        }
        Self::from_jwks_inner(jwks, complete)
    }

    /// The kids of the unseal keys, in derivation (combination) or file order.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Number of unseal keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false for a constructed value (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when every share or JWK file was available, so the root key can be initialised and
    /// rotated for every combination.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The keys as JWKs (with kids), for wrapping and unwrapping the root key.
    pub(crate) fn jwks(&self) -> impl Iterator<Item = &Jwk> {
        self.keys.iter().map(|k| &k.jwk)
    }
}

/// Reads a bounded file into a zeroized buffer.
fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|_| "cannot be opened")?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|_| "cannot be read")?;
    if buf.len() as u64 > MAX_FILE_LEN {
        return Err("is too large");
    }
    Ok(buf)
}

/// Reads and decodes one base64url share file.
fn read_share(path: &Path) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let raw = read_secret_file(path)?;
    let text = raw.trim_ascii();
    let share = Zeroizing::new(
        cryptoutil_jose::b64::decode(text, "share").map_err(|_| "is not base64url text")?,
    );
    if !(SHARE_MIN_LEN..=SHARE_MAX_LEN).contains(&share.len()) {
        return Err("does not decode to 32-64 bytes");
    }
    Ok(share)
}

/// Reads one JWK or JWK set file.
fn read_jwks(path: &Path) -> Result<Vec<Jwk>, &'static str> {
    let raw = read_secret_file(path)?;
    let text = std::str::from_utf8(&raw).map_err(|_| "is not UTF-8")?;
    if let Ok(set) = JwkSet::from_json(text) {
        return Ok(set.keys);
    }
    Jwk::from_json(text)
        .map(|k| vec![k])
        .map_err(|_| "is not a JWK or JWK set")
}

/// `n` random shares of `len` bytes (32–64) for `M-of-N` unseal: independent secrets, not
/// Shamir shares (see [`UnsealKeys::from_shares`]). Write each with [`encode_share`].
///
/// # Errors
/// `len` outside 32–64, `n` of 0 or above 64, or RNG failure.
pub fn generate_shares(n: usize, len: usize) -> Result<Vec<Zeroizing<Vec<u8>>>, BarrierError> {
    if !(SHARE_MIN_LEN..=SHARE_MAX_LEN).contains(&len) || n == 0 || n > MAX_UNSEAL_KEYS {
        return Err(BarrierError::InvalidUnsealKeys(format!(
            "shares must be {SHARE_MIN_LEN}-{SHARE_MAX_LEN} bytes and 1-{MAX_UNSEAL_KEYS} of them"
        )));
    }
    (0..n)
        .map(|_| {
            let mut share = Zeroizing::new(vec![0u8; len]);
            aws_lc_rs::rand::fill(&mut share).map_err(|_| BarrierError::Crypto("rng".into()))?;
            Ok(share)
        })
        .collect()
}

/// The share file format: base64url without padding.
pub fn encode_share(share: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(cryptoutil_jose::b64::encode(share))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Vector computed once with Python's hmac/hashlib (see the file's description).
    #[test]
    fn derivation_matches_independent_vector() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/barrier/hkdf_2_of_3.json"))
                .unwrap();
        let shares: Vec<Vec<u8>> = v["shares_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| hex(s.as_str().unwrap()))
            .collect();
        let combos = v["combinations"].as_array().unwrap();
        assert_eq!(combos.len(), 3);
        for c in combos {
            let mut cat = Vec::new();
            for i in c["indexes"].as_array().unwrap() {
                cat.extend_from_slice(&shares[i.as_u64().unwrap() as usize]);
            }
            let (key, kid) = derive_unseal_key(&cat).unwrap();
            assert_eq!(key.to_vec(), hex(c["key_hex"].as_str().unwrap()));
            assert_eq!(kid, c["kid"].as_str().unwrap());
        }
        // from_shares derives the same kids, in combination order.
        let keys =
            UnsealKeys::from_shares(2, &shares.iter().cloned().map(Some).collect::<Vec<_>>())
                .unwrap();
        let expected: Vec<&str> = combos.iter().map(|c| c["kid"].as_str().unwrap()).collect();
        assert_eq!(keys.kids(), expected);
        assert!(keys.is_complete());
    }

    #[test]
    fn combinations_and_binomial() {
        assert_eq!(
            combinations(&[0, 2, 3, 5], 2),
            vec![
                vec![0, 2],
                vec![0, 3],
                vec![0, 5],
                vec![2, 3],
                vec![2, 5],
                vec![3, 5]
            ]
        );
        assert_eq!(combinations(&[1, 2, 3], 3), vec![vec![1, 2, 3]]);
        assert_eq!(combinations(&[1, 2, 3], 1).len(), 3);
        assert!(combinations(&[1], 2).is_empty());
        for (n, k) in [(5, 3), (8, 4), (7, 1), (6, 6), (10, 5)] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(combinations(&items, k).len(), binomial(n, k));
        }
        assert_eq!(binomial(5, 3), 10);
        assert_eq!(binomial(8, 4), 70);
        assert_eq!(binomial(3, 4), 0);
    }

    #[test]
    fn debug_shows_kids_only() {
        let keys = UnsealKeys::dev().unwrap();
        let text = format!("{keys:?}");
        assert!(text.contains(keys.kids()[0]));
        assert!(!text.contains("\"k\""));
    }
}
