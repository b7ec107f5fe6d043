//! A bounded cache of tokens that passed validation, so a warm request skips the signature check.
//!
//! Keyed by [`TokenDigest`] (the SHA-256 of the token), so equal bytes are the only way to hit an
//! entry. An entry is used only before the token's `exp` (no clock-skew allowance: a cache hit is
//! never more lenient than validation) and for at most the cache's TTL, so a key the issuer has
//! withdrawn stops being trusted within that TTL. Least recently used entries are evicted first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;
use tokio::time::Instant;

use super::TokenDigest;

#[derive(Debug)]
struct Entry<T> {
    value: Arc<T>,
    expires_at: u64,
    stored: Instant,
}

/// Validated tokens (whatever the caller derives from them, `T`), by digest.
#[derive(Debug)]
pub struct VerifiedTokens<T> {
    ttl: Duration,
    entries: Option<Mutex<LruCache<TokenDigest, Entry<T>>>>,
}

impl<T> VerifiedTokens<T> {
    /// At most `capacity` entries, each used for at most `ttl`; a zero capacity or TTL disables
    /// the cache.
    #[must_use]
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let enabled = capacity > 0 && !ttl.is_zero();
        Self {
            ttl,
            entries: enabled.then(|| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The value stored for this token, if it is still usable at `now` (seconds since the epoch).
    /// Counted in `cryptoutil.credential.cache.lookups` (`cache=token`) when caching is on.
    pub fn get(&self, digest: &TokenDigest, now: u64) -> Option<Arc<T>> {
        let entries = self.entries.as_ref()?;
        let found = Self::lookup(entries, &self.ttl, digest, now);
        cryptoutil_telemetry::credential_cache_lookup("token", found.is_some());
        found
    }

    fn lookup(
        entries: &Mutex<LruCache<TokenDigest, Entry<T>>>,
        ttl: &Duration,
        digest: &TokenDigest,
        now: u64,
    ) -> Option<Arc<T>> {
        let mut entries = entries.lock().ok()?;
        let entry = entries.get(digest)?;
        if now < entry.expires_at && entry.stored.elapsed() < *ttl {
            return Some(entry.value.clone());
        }
        entries.remove(digest);
        None
    }

    /// Remembers `value` for a token that expires at `expires_at`.
    pub fn insert(&self, digest: TokenDigest, value: Arc<T>, expires_at: u64) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            let stored = Instant::now();
            entries.insert(
                digest,
                Entry {
                    value,
                    expires_at,
                    stored,
                },
            );
        }
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            entries.clear();
        }
    }

    /// How many entries are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .as_ref()
            .and_then(|e| e.lock().ok().map(|e| e.len()))
            .unwrap_or(0)
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_with_the_token_and_the_ttl() {
        let cache = VerifiedTokens::new(10, Duration::from_secs(60));
        let (a, b) = (TokenDigest::of("a"), TokenDigest::of("b"));
        cache.insert(a, Arc::new("alice"), 1000);
        cache.insert(b, Arc::new("bob"), 5000);
        assert_eq!(cache.get(&a, 999).as_deref(), Some(&"alice"));
        // Exactly at exp the token is no longer served from the cache.
        assert!(cache.get(&a, 1000).is_none());
        assert_eq!(cache.len(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.get(&b, 999).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_and_can_be_disabled() {
        let cache = VerifiedTokens::new(2, Duration::from_secs(60));
        for t in ["a", "b", "c"] {
            cache.insert(TokenDigest::of(t), Arc::new(t), u64::MAX);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&TokenDigest::of("a"), 0).is_none());
        cache.clear();
        assert!(cache.is_empty());
        let off = VerifiedTokens::new(0, Duration::from_secs(60));
        off.insert(TokenDigest::of("a"), Arc::new(1), u64::MAX);
        assert!(off.get(&TokenDigest::of("a"), 0).is_none());
    }
}
