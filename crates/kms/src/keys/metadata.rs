//! Elastic keys and their newest material key, cached per (tenant, elastic key), so a warm
//! encrypt, decrypt, sign or verify reads nothing from the database.
//!
//! Consistency (the rules every path follows):
//! - this instance's own writes drop the entry once the write returns (whatever its outcome);
//! - other instances sharing PostgreSQL announce their writes (`NOTIFY`), which drops the entry
//!   here; if announcements may have been missed (the listening connection was lost), every
//!   entry is dropped;
//! - every entry expires `ttl` after it was read (default 2 s): the bound on how late a change
//!   made elsewhere can take effect should an announcement be lost in flight; `ttl` zero turns
//!   the cache off;
//! - a generation counter, bumped by every drop, keeps a read that raced a write from caching
//!   the value from before the write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::cache::Clock;
use crate::model::{ElasticKey, MaterialKey, TenantId};

/// One cached elastic key and, once an operation needed it, its newest material key.
#[derive(Clone)]
struct Entry {
    key: Arc<ElasticKey>,
    latest: Option<Arc<MaterialKey>>,
    read_at: Instant,
}

struct Inner {
    entries: Clock<(TenantId, Uuid), Entry>,
    generation: u64,
}

/// The cache; see the module documentation for its consistency rules.
pub(super) struct MetadataCache {
    inner: Mutex<Inner>,
    ttl: Duration,
}

/// The cache's state before a database read: caching the read's result is allowed only if
/// nothing was dropped meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generation(u64);

impl MetadataCache {
    /// Holds at most `capacity` keys, each for at most `ttl` (zero: nothing is cached).
    pub(super) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: Clock::new(capacity),
                generation: 0,
            }),
            ttl,
        }
    }

    /// Taken before reading the database (see [`Generation`]).
    pub(super) fn generation(&self) -> Generation {
        Generation(self.inner.lock().map(|i| i.generation).unwrap_or(u64::MAX))
    }

    /// The elastic key, when cached and fresh.
    pub(super) fn key(&self, tenant: TenantId, id: Uuid) -> Option<Arc<ElasticKey>> {
        self.fresh(tenant, id).map(|e| e.key)
    }

    /// The elastic key and its newest material key, when both are cached and fresh.
    pub(super) fn latest(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Option<(Arc<ElasticKey>, Arc<MaterialKey>)> {
        let entry = self.fresh(tenant, id)?;
        Some((entry.key, entry.latest?))
    }

    /// Caches `key` as read from the database, unless something was dropped since `before`.
    pub(super) fn put_key(&self, before: Generation, tenant: TenantId, key: Arc<ElasticKey>) {
        self.put(before, tenant, key, None);
    }

    /// Caches `key` with its newest material key, unless something was dropped since `before`.
    pub(super) fn put_latest(
        &self,
        before: Generation,
        tenant: TenantId,
        key: Arc<ElasticKey>,
        latest: Arc<MaterialKey>,
    ) {
        self.put(before, tenant, key, Some(latest));
    }

    /// Drops one key (after a write to it, here or announced by another instance).
    pub(super) fn forget(&self, tenant: TenantId, id: Uuid) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation = inner.generation.wrapping_add(1);
            inner.entries.remove(&(tenant, id));
        }
    }

    /// Drops everything (announcements may have been missed).
    pub(super) fn forget_all(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation = inner.generation.wrapping_add(1);
            let capacity = inner.entries.capacity();
            inner.entries = Clock::new(capacity);
        }
    }

    fn fresh(&self, tenant: TenantId, id: Uuid) -> Option<Entry> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut inner = self.inner.lock().ok()?;
        let found = inner
            .entries
            .get(&(tenant, id))
            .filter(|e| e.read_at.elapsed() < self.ttl)
            .cloned();
        cryptoutil_telemetry::barrier_cache_lookup("elastic_key", found.is_some());
        found
    }

    fn put(
        &self,
        before: Generation,
        tenant: TenantId,
        key: Arc<ElasticKey>,
        latest: Option<Arc<MaterialKey>>,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation == before.0
        {
            let entry = Entry {
                key,
                latest,
                read_at: Instant::now(),
            };
            inner.entries.insert((tenant, entry.key.id), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyStatus;

    fn key(status: KeyStatus) -> Arc<ElasticKey> {
        let now = time::OffsetDateTime::now_utc();
        Arc::new(ElasticKey {
            id: Uuid::now_v7(),
            name: format!("metadata-{}", Uuid::now_v7()),
            description: String::new(),
            algorithm: "A256GCM/dir".to_owned(),
            versioning_allowed: true,
            import_allowed: false,
            export_allowed: false,
            status,
            created_at: now,
            updated_at: now,
            purge_after: None,
        })
    }

    fn material(owner: &ElasticKey) -> Arc<MaterialKey> {
        Arc::new(MaterialKey {
            id: Uuid::now_v7(),
            elastic_key_id: owner.id,
            generate_date: owner.created_at,
            import_date: None,
            revocation_date: None,
            public_jwk: None,
            sealed_jwk: String::new(),
        })
    }

    fn tenant() -> TenantId {
        TenantId(Uuid::now_v7())
    }

    #[test]
    fn cached_keys_are_returned_until_forgotten() {
        let cache = MetadataCache::new(8, Duration::from_secs(60));
        let (t, k) = (tenant(), key(KeyStatus::Active));
        assert!(cache.key(t, k.id).is_none());
        cache.put_key(cache.generation(), t, k.clone());
        assert_eq!(cache.key(t, k.id).map(|c| c.id), Some(k.id));
        assert!(cache.latest(t, k.id).is_none(), "no material cached yet");
        assert!(cache.key(tenant(), k.id).is_none(), "another tenant's view");
        let m = material(&k);
        cache.put_latest(cache.generation(), t, k.clone(), m.clone());
        assert_eq!(cache.latest(t, k.id).map(|(_, l)| l.id), Some(m.id));
        cache.forget(t, k.id);
        assert!(cache.key(t, k.id).is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let cache = MetadataCache::new(8, Duration::from_secs(60));
        let (t, k) = (tenant(), key(KeyStatus::Active));
        let before = cache.generation();
        // A write (here or elsewhere) lands between the read and the caching of its result.
        cache.forget(t, k.id);
        cache.put_key(before, t, k.clone());
        assert!(cache.key(t, k.id).is_none());
        let other = key(KeyStatus::Disabled);
        cache.forget_all();
        cache.put_key(before, t, other.clone());
        assert!(cache.key(t, other.id).is_none());
    }

    #[test]
    fn entries_expire_and_zero_ttl_caches_nothing() {
        let off = MetadataCache::new(8, Duration::ZERO);
        let (t, k) = (tenant(), key(KeyStatus::Active));
        off.put_key(off.generation(), t, k.clone());
        assert!(off.key(t, k.id).is_none());

        let short = MetadataCache::new(8, Duration::from_millis(1));
        short.put_key(short.generation(), t, k.clone());
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.key(t, k.id).is_none(), "expired");
    }

    #[test]
    fn forget_all_drops_every_tenant_and_capacity_bounds_the_cache() {
        let cache = MetadataCache::new(2, Duration::from_secs(60));
        let keys: Vec<_> = (0..3).map(|_| (tenant(), key(KeyStatus::Active))).collect();
        for (t, k) in &keys {
            cache.put_key(cache.generation(), *t, k.clone());
        }
        let held = keys
            .iter()
            .filter(|(t, k)| cache.key(*t, k.id).is_some())
            .count();
        assert_eq!(held, 2);
        cache.forget_all();
        assert!(keys.iter().all(|(t, k)| cache.key(*t, k.id).is_none()));
    }
}
