//! When each elastic key was last used, cheaply.
//!
//! Writing to the database on every encrypt would double its cost, so crypto operations only
//! note the minute of their use in memory ([`LastUse::touch`]): a sharded map from (tenant,
//! elastic key) to "minutes since the epoch". A background task drains it ([`LastUse::drain`])
//! and writes each key's newest minute to `elastic_keys.last_used_at` (only ever forward). The
//! inventory shows the later of the stored value and this instance's pending one, so on one
//! instance it is exact to the minute; across instances sharing a database it lags by at most the
//! flush interval ([`FLUSH_INTERVAL`]).
//!
//! The hot path does not allocate: a touch of a key already noted this minute is a hash, a lock
//! of one of [`SHARDS`] uncontended mutexes and a compare; a new key is inserted into capacity
//! the shard already has (draining keeps it) or, rarely, grows it. The map is bounded
//! ([`MAX_PENDING`]): when full, touches of keys not yet in it are dropped until the next flush
//! and counted ([`LastUse::dropped`]), so the recorded time is then late by up to one interval.
//! The hash is a multiply-fold of the UUIDs' bits, not SipHash: keys are UUIDs the KMS generated
//! (v7 for elastic keys, v4 for tenants), and only keys that exist are touched (after a
//! successful operation), so callers cannot choose colliding keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::TenantId;

/// Independent locks: concurrent operations on different keys rarely share one.
pub const SHARDS: usize = 16;
/// Keys noted between two flushes, at most (all shards together).
pub const MAX_PENDING: usize = 65_536;
/// How often the background task writes the noted times to the database.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(60);

const PER_SHARD: usize = MAX_PENDING / SHARDS;
/// Capacity each shard starts with (grows up to [`PER_SHARD`] as more keys are used).
const INITIAL_PER_SHARD: usize = 64;

/// A multiply-fold hasher for UUID pairs (see the module documentation).
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = HashMap<(TenantId, Uuid), u32, BuildHasherDefault<FoldHasher>>;

/// The in-memory last-use times; see the module documentation.
pub struct LastUse {
    shards: [Mutex<Shard>; SHARDS],
    dropped: AtomicU64,
}

impl std::fmt::Debug for LastUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastUse")
            .field("pending", &self.pending())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Default for LastUse {
    fn default() -> Self {
        Self::new()
    }
}

/// Minutes since the Unix epoch, now (0 if the clock is before 1970).
fn current_minute() -> u32 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(seconds / 60).unwrap_or(u32::MAX)
}

/// The start of a minute since the epoch.
pub fn minute_to_time(minute: u32) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(i64::from(minute))
}

impl LastUse {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| {
                Mutex::new(Shard::with_capacity_and_hasher(
                    INITIAL_PER_SHARD,
                    BuildHasherDefault::default(),
                ))
            }),
            dropped: AtomicU64::new(0),
        }
    }

    fn shard(&self, id: Uuid) -> &Mutex<Shard> {
        // The low bits of a UUIDv7 are random.
        let index = (id.as_u128() as usize) % SHARDS;
        &self.shards[index]
    }

    /// Notes that the key was used now. Never allocates once the key is pending; never blocks
    /// for long (one shard's lock, held for a lookup).
    pub fn touch(&self, tenant: TenantId, id: Uuid) {
        self.touch_at(tenant, id, current_minute());
    }

    /// [`Self::touch`] at a given minute since the epoch (tests).
    pub fn touch_at(&self, tenant: TenantId, id: Uuid, minute: u32) {
        let Ok(mut shard) = self.shard(id).lock() else {
            return;
        };
        if let Some(noted) = shard.get_mut(&(tenant, id)) {
            if *noted < minute {
                *noted = minute;
            }
        } else if shard.len() < PER_SHARD {
            shard.insert((tenant, id), minute);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The pending (not yet flushed) last use of a key, if any.
    pub fn peek(&self, tenant: TenantId, id: Uuid) -> Option<OffsetDateTime> {
        let shard = self.shard(id).lock().ok()?;
        shard.get(&(tenant, id)).copied().map(minute_to_time)
    }

    /// Takes every pending time, grouped by tenant (the shards keep their capacity).
    pub fn drain(&self) -> HashMap<TenantId, Vec<(Uuid, OffsetDateTime)>> {
        let mut out: HashMap<TenantId, Vec<(Uuid, OffsetDateTime)>> = HashMap::new();
        for shard in &self.shards {
            let Ok(mut shard) = shard.lock() else {
                continue;
            };
            for ((tenant, id), minute) in shard.drain() {
                out.entry(tenant)
                    .or_default()
                    .push((id, minute_to_time(minute)));
            }
        }
        out
    }

    /// Puts times back after a failed flush (keeping any newer touch).
    pub fn restore(&self, tenant: TenantId, times: &[(Uuid, OffsetDateTime)]) {
        for (id, at) in times {
            let minute = u32::try_from(at.unix_timestamp() / 60).unwrap_or(0);
            self.touch_at(tenant, *id, minute);
        }
    }

    /// Keys pending.
    pub fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// Touches dropped because the map was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId(Uuid::new_v4())
    }

    #[test]
    fn touches_keep_the_newest_minute_and_drain_empties() {
        let uses = LastUse::new();
        let (t, k) = (tenant(), Uuid::now_v7());
        assert_eq!(uses.peek(t, k), None);
        uses.touch_at(t, k, 100);
        uses.touch_at(t, k, 90);
        assert_eq!(uses.peek(t, k), Some(minute_to_time(100)));
        assert_eq!(uses.peek(tenant(), k), None, "another tenant's key");
        uses.touch_at(t, k, 101);
        let drained = uses.drain();
        assert_eq!(drained[&t], vec![(k, minute_to_time(101))]);
        assert_eq!(uses.pending(), 0);
        assert_eq!(uses.peek(t, k), None);
        uses.restore(t, &drained[&t]);
        assert_eq!(uses.peek(t, k), Some(minute_to_time(101)));
    }

    #[test]
    fn a_real_touch_is_now_to_the_minute() {
        let uses = LastUse::new();
        let (t, k) = (tenant(), Uuid::now_v7());
        let before = OffsetDateTime::now_utc();
        uses.touch(t, k);
        let at = uses.peek(t, k).unwrap();
        assert!(
            at <= before && before - at < time::Duration::minutes(1),
            "{at} vs {before}"
        );
    }

    #[test]
    fn the_map_is_bounded_and_counts_what_it_drops() {
        let uses = LastUse::new();
        let t = tenant();
        for _ in 0..MAX_PENDING + 500 {
            uses.touch_at(t, Uuid::now_v7(), 1);
        }
        assert!(uses.pending() <= MAX_PENDING);
        assert_eq!(
            uses.pending() as u64 + uses.dropped(),
            (MAX_PENDING + 500) as u64
        );
        assert!(uses.dropped() >= 500);
        uses.drain();
        uses.touch_at(t, Uuid::now_v7(), 2);
        assert_eq!(uses.pending(), 1, "room again after a flush");
    }
}
