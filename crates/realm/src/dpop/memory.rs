//! [`MemoryReplayCache`]: the in-process [`ReplayCache`] of a single resource server instance.
//!
//! Bounded and sharded: the keys are spread over [`SHARDS`] maps, each behind its own mutex and
//! holding at most its share of the capacity, so concurrent requests rarely wait on each other
//! (no global lock on the hot path). An entry lives until its `until`; expired entries are
//! dropped when a shard fills up (at most one sweep per shard until its earliest entry expires).
//! When a shard is full of unexpired entries the cache fails closed with [`ReplayError::Full`]:
//! a live entry is never evicted, since an evicted proof could be replayed.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use super::{ReplayCache, ReplayError};
use crate::BoxFuture;

/// Number of shards (a power of two).
pub const SHARDS: usize = 16;
/// Longest key stored, in bytes (longer keys are refused as full: they are not proof keys).
pub const MAX_KEY_LEN: usize = 512;

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Box<str>, OffsetDateTime>,
    /// No entry expires before this (a sweep before it would free nothing).
    earliest: Option<OffsetDateTime>,
}

impl Shard {
    fn sweep(&mut self, now: OffsetDateTime) {
        if self.earliest.is_none_or(|e| e > now) {
            return;
        }
        self.entries.retain(|_, until| *until > now);
        self.earliest = self.entries.values().min().copied();
    }
}

/// Proofs seen by this process, bounded (see the module documentation).
#[derive(Debug)]
pub struct MemoryReplayCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live entries (at least one per shard).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// The most entries held at once.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// How many entries are held (expired ones included until they are swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`ReplayCache::first_use`] as of `now`.
    ///
    /// # Errors
    /// [`ReplayError::Full`] when the key's shard holds its share of unexpired entries.
    pub fn first_use_at(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, ReplayError> {
        if key.len() > MAX_KEY_LEN {
            return Err(ReplayError::Full);
        }
        let index = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        let Some(shard) = self.shards.get(index) else {
            return Err(ReplayError::Full);
        };
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(seen) = shard.entries.get_mut(key) {
            if *seen > now {
                return Ok(false);
            }
            // Expired: this is a new use (the proof itself is too old to pass verification).
            *seen = until;
            shard.earliest = shard.earliest.map_or(Some(until), |e| Some(e.min(until)));
            return Ok(true);
        }
        if shard.entries.len() >= self.per_shard {
            shard.sweep(now);
            if shard.entries.len() >= self.per_shard {
                return Err(ReplayError::Full);
            }
        }
        shard.entries.insert(key.into(), until);
        shard.earliest = shard.earliest.map_or(Some(until), |e| Some(e.min(until)));
        Ok(true)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        until: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, ReplayError>> {
        let answer = self.first_use_at(key, until, OffsetDateTime::now_utc());
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use time::Duration;

    use super::*;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn a_key_is_accepted_once_until_it_expires() {
        let cache = MemoryReplayCache::new(100);
        assert_eq!(cache.first_use_at("a", t(60), t(0)), Ok(true));
        assert_eq!(cache.first_use_at("a", t(60), t(1)), Ok(false));
        assert_eq!(cache.first_use_at("a", t(60), t(59)), Ok(false));
        assert_eq!(cache.first_use_at("b", t(60), t(1)), Ok(true));
        // Past its `until` the entry is forgotten.
        assert_eq!(cache.first_use_at("a", t(120), t(60)), Ok(true));
        assert_eq!(cache.first_use_at("a", t(120), t(61)), Ok(false));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn full_of_live_entries_it_fails_closed_and_evicts_nothing() {
        let cache = MemoryReplayCache::new(SHARDS); // one entry per shard
        assert_eq!(cache.capacity(), SHARDS);
        let mut accepted = Vec::new();
        let mut refused = 0;
        for i in 0..SHARDS * 8 {
            let key = format!("k{i}");
            match cache.first_use_at(&key, t(60), t(0)) {
                Ok(true) => accepted.push(key),
                Err(ReplayError::Full) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(refused > 0);
        assert!(accepted.len() <= SHARDS);
        // Every accepted key is still remembered: none was evicted to make room.
        for key in &accepted {
            assert_eq!(cache.first_use_at(key, t(60), t(1)), Ok(false), "{key}");
        }
        // Once they expire there is room again.
        for i in 0..SHARDS * 8 {
            let key = format!("k{i}");
            if !accepted.contains(&key) {
                assert_eq!(cache.first_use_at(&key, t(200), t(61)), Ok(true));
                break;
            }
        }
    }

    #[test]
    fn oversized_keys_are_refused() {
        let cache = MemoryReplayCache::new(10);
        let key = "x".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            cache.first_use_at(&key, t(60), t(0)),
            Err(ReplayError::Full)
        );
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn concurrent_uses_of_one_key_accept_exactly_one() {
        let cache = Arc::new(MemoryReplayCache::new(10_000));
        let until = OffsetDateTime::now_utc() + Duration::seconds(60);
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.first_use("same", until).await })
            })
            .collect();
        let mut firsts = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
    }
}
