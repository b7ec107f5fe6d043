//! The verified-credential cache (SPEC §3.6): the first request of a credential pays for PBKDF2,
//! later ones find it here.
//!
//! - Key: HMAC-SHA256 under a per-process random key of `realm`, `username` and `password`, each
//!   length-prefixed so no field can shift into another. The password is never stored.
//! - Value: what the verification produced (for realms, an `Arc<RealmUser>`).
//! - Expiry: a short TTL (default 5 minutes) from the time of verification; bounded size (default
//!   10,000) with least-recently-used eviction.
//! - [`CredentialCache::invalidate_user`] drops every entry of a user at once (password change,
//!   disable, delete) through a per-user index. A verification that was in flight while any
//!   invalidation happened is not cached (see [`CredentialCache::ticket`]), so a stale result can
//!   never be inserted after the invalidation that should have removed it.
//!
//! - [`CredentialCache::verification`]: one verification per credential at a time. Without it, N
//!   concurrent first requests of one credential (a client opening N connections) each ran
//!   PBKDF2 (≈ 70 ms); now the first verifies and the others wait, then find its result here.
//!
//! A `std::sync::Mutex` guards the state; it is never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use hashlink::LinkedHashMap;
use zeroize::Zeroizing;

use crate::RealmError;
use crate::user::RealmUser;

/// Default time a verified credential stays cached.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default most entries kept.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry lives after the verification that made it. Zero disables caching.
    pub ttl: Duration,
    /// Most entries kept; the least recently used is evicted first. Zero disables caching.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// A source of the current time, injectable so tests control expiry without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Proof of the invalidation state before a verification started; pass it to
/// [`CredentialCache::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

type EntryKey = [u8; 32];
type UserKey = (String, String);

struct Entry<V> {
    user: UserKey,
    expires: Instant,
    value: Arc<V>,
}

/// The verifications in flight, by credential (an HMAC like the entries' keys): the lock, and how
/// many hold or wait for it. An entry exists only while that count is above zero, so the map is
/// bounded by the requests in flight.
type Flights = HashMap<EntryKey, (Arc<tokio::sync::Mutex<()>>, usize)>;

/// Held while verifying one credential; others verifying the same credential wait for its drop.
/// (Empty when caching is off: waiting would gain nothing.)
pub struct Verification<'a> {
    held: Option<Held<'a>>,
}

struct Held<'a> {
    flights: &'a Mutex<Flights>,
    key: EntryKey,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl fmt::Debug for Verification<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("held", &self.held.is_some())
            .finish()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, interested)) = flights.get_mut(&self.key) {
            *interested -= 1;
            if *interested == 0 {
                flights.remove(&self.key);
            }
        }
    }
}

struct Inner<V> {
    entries: LinkedHashMap<EntryKey, Entry<V>>,
    by_user: HashMap<UserKey, HashSet<EntryKey>>,
    invalidations: u64,
}

impl<V> Inner<V> {
    fn remove(&mut self, key: &EntryKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.unindex(&entry.user, key);
        }
    }

    fn unindex(&mut self, user: &UserKey, key: &EntryKey) {
        if let Some(keys) = self.by_user.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_user.remove(user);
            }
        }
    }
}

/// The verified-credential cache; generic over the cached value so other products can reuse it.
pub struct CredentialCache<V = RealmUser> {
    key: hmac::Key,
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner<V>>,
    flights: Mutex<Flights>,
}

impl<V> fmt::Debug for CredentialCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("config", &self.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<V> CredentialCache<V> {
    /// A cache with a fresh random key and the system clock.
    pub fn new(config: CacheConfig) -> Result<Self, RealmError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A cache with a fresh random key and the given clock.
    pub fn with_clock(config: CacheConfig, clock: Arc<dyn Clock>) -> Result<Self, RealmError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| RealmError::Internal("random generator failed"))?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref()),
            config,
            clock,
            inner: Mutex::new(Inner {
                entries: LinkedHashMap::new(),
                by_user: HashMap::new(),
                invalidations: 0,
            }),
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // Every update leaves the maps consistent before anything that could panic, so the state
        // behind a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry_key(&self, realm: &str, username: &str, password: &str) -> EntryKey {
        let mut ctx = hmac::Context::with_key(&self.key);
        for field in [realm, username, password] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn enabled(&self) -> bool {
        self.config.capacity > 0 && !self.config.ttl.is_zero()
    }

    /// The cached value for this exact credential, if present and not expired. Counted in
    /// `cryptoutil.credential.cache.lookups` (`cache=password`) when caching is on.
    pub fn get(&self, realm: &str, username: &str, password: &str) -> Option<Arc<V>> {
        if !self.enabled() {
            return None;
        }
        let found = self.lookup(realm, username, password);
        cryptoutil_telemetry::credential_cache_lookup("password", found.is_some());
        found
    }

    fn lookup(&self, realm: &str, username: &str, password: &str) -> Option<Arc<V>> {
        let key = self.entry_key(realm, username, password);
        let now = self.clock.now();
        let mut inner = self.lock();
        let expired = match inner.entries.to_back(&key) {
            None => return None,
            Some(entry) if now < entry.expires => return Some(Arc::clone(&entry.value)),
            Some(_) => true,
        };
        if expired {
            inner.remove(&key);
        }
        None
    }

    /// Waits until no other verification of this `username` and `password` is running, and
    /// holds off others until the result is dropped: look in the cache again once it returns.
    /// Dropping it early (a cancelled request) lets the next waiter verify instead.
    pub async fn verification(&self, username: &str, password: &str) -> Verification<'_> {
        if !self.enabled() {
            return Verification { held: None };
        }
        let key = self.entry_key("", username, password);
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            let (flight, interested) = flights.entry(key).or_default();
            *interested += 1;
            Arc::clone(flight)
        };
        // Counted before waiting, so a cancelled wait still gives its count back.
        let mut held = Held {
            flights: &self.flights,
            key,
            guard: None,
        };
        held.guard = Some(flight.lock_owned().await);
        Verification { held: Some(held) }
    }

    /// Verifications in flight or waited for (for tests and diagnostics).
    pub fn verifications_in_flight(&self) -> usize {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Take a ticket *before* verifying a credential, and give it to [`Self::insert`] after.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().invalidations)
    }

    /// Caches a successful verification. Refused (returns `false`) when caching is disabled or when
    /// any invalidation happened since `ticket` was taken.
    pub fn insert(
        &self,
        ticket: Ticket,
        realm: &str,
        username: &str,
        password: &str,
        value: Arc<V>,
    ) -> bool {
        if !self.enabled() {
            return false;
        }
        let key = self.entry_key(realm, username, password);
        let expires = self.clock.now() + self.config.ttl;
        let user = (realm.to_owned(), username.to_owned());
        let mut inner = self.lock();
        if inner.invalidations != ticket.0 {
            return false;
        }
        inner.remove(&key);
        while inner.entries.len() >= self.config.capacity {
            match inner.entries.pop_front() {
                Some((old_key, old)) => inner.unindex(&old.user, &old_key),
                None => break,
            }
        }
        inner.by_user.entry(user.clone()).or_default().insert(key);
        inner.entries.insert(
            key,
            Entry {
                user,
                expires,
                value,
            },
        );
        true
    }

    /// Drops every cached credential of `username` in `realm`, at once, and keeps verifications
    /// already in flight from being cached.
    pub fn invalidate_user(&self, realm: &str, username: &str) {
        let mut inner = self.lock();
        inner.invalidations = inner.invalidations.wrapping_add(1);
        if let Some(keys) = inner
            .by_user
            .remove(&(realm.to_owned(), username.to_owned()))
        {
            for key in keys {
                inner.entries.remove(&key);
            }
        }
    }

    /// Drops everything (e.g. after a realm file reload).
    pub fn invalidate_all(&self) {
        let mut inner = self.lock();
        inner.invalidations = inner.invalidations.wrapping_add(1);
        inner.entries.clear();
        inner.by_user.clear();
    }

    /// Number of entries, expired ones included until they are touched or evicted.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A clock tests move by hand.
    #[derive(Debug)]
    pub(crate) struct ManualClock {
        start: Instant,
        offset: Mutex<Duration>,
    }

    impl ManualClock {
        pub(crate) fn new() -> Arc<Self> {
            Arc::new(Self {
                start: Instant::now(),
                offset: Mutex::new(Duration::ZERO),
            })
        }
        pub(crate) fn advance(&self, by: Duration) {
            *self.offset.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + *self.offset.lock().unwrap()
        }
    }

    fn cache(ttl: Duration, capacity: usize) -> (CredentialCache<String>, Arc<ManualClock>) {
        let clock = ManualClock::new();
        let c = CredentialCache::with_clock(CacheConfig { ttl, capacity }, clock.clone()).unwrap();
        (c, clock)
    }

    fn put(c: &CredentialCache<String>, realm: &str, user: &str, pw: &str) -> bool {
        c.insert(
            c.ticket(),
            realm,
            user,
            pw,
            Arc::new(format!("{realm}/{user}")),
        )
    }

    #[test]
    fn hit_only_for_the_exact_credential() {
        let (c, _) = cache(DEFAULT_TTL, 10);
        assert!(put(&c, "file", "alice", "pw"));
        assert_eq!(c.get("file", "alice", "pw").unwrap().as_str(), "file/alice");
        assert!(c.get("file", "alice", "pw2").is_none());
        assert!(c.get("db", "alice", "pw").is_none());
        assert!(c.get("file", "bob", "pw").is_none());
    }

    #[test]
    fn fields_cannot_shift_into_each_other() {
        let (c, _) = cache(DEFAULT_TTL, 10);
        assert!(put(&c, "file", "ab", "c"));
        assert!(c.get("file", "a", "bc").is_none());
        assert!(c.get("fil", "eab", "c").is_none());
        assert!(c.get("file", "ab\0", "c").is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let (c, clock) = cache(Duration::from_secs(60), 10);
        assert!(put(&c, "file", "alice", "pw"));
        clock.advance(Duration::from_secs(59));
        assert!(c.get("file", "alice", "pw").is_some());
        clock.advance(Duration::from_secs(1));
        assert!(c.get("file", "alice", "pw").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn least_recently_used_is_evicted_at_capacity() {
        let (c, _) = cache(DEFAULT_TTL, 2);
        assert!(put(&c, "r", "a", "1"));
        assert!(put(&c, "r", "b", "1"));
        assert!(c.get("r", "a", "1").is_some()); // a is now most recent
        assert!(put(&c, "r", "c", "1"));
        assert_eq!(c.len(), 2);
        assert!(c.get("r", "b", "1").is_none());
        assert!(c.get("r", "a", "1").is_some());
        assert!(c.get("r", "c", "1").is_some());
        // The evicted user's index is gone too: invalidating it touches nothing else.
        c.invalidate_user("r", "b");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn invalidate_user_drops_all_of_that_users_entries_only() {
        let (c, _) = cache(DEFAULT_TTL, 10);
        assert!(put(&c, "file", "alice", "old"));
        assert!(put(&c, "file", "alice", "other"));
        assert!(put(&c, "db", "alice", "old"));
        assert!(put(&c, "file", "bob", "pw"));
        c.invalidate_user("file", "alice");
        assert!(c.get("file", "alice", "old").is_none());
        assert!(c.get("file", "alice", "other").is_none());
        assert!(c.get("db", "alice", "old").is_some());
        assert!(c.get("file", "bob", "pw").is_some());
        c.invalidate_all();
        assert!(c.is_empty());
    }

    #[test]
    fn a_verification_in_flight_during_invalidation_is_not_cached() {
        let (c, _) = cache(DEFAULT_TTL, 10);
        let ticket = c.ticket();
        c.invalidate_user("file", "alice");
        assert!(!c.insert(ticket, "file", "alice", "old", Arc::new(String::new())));
        assert!(c.get("file", "alice", "old").is_none());
        assert!(put(&c, "file", "alice", "new"));
    }

    #[test]
    fn zero_capacity_or_ttl_disables_caching() {
        let (c, _) = cache(DEFAULT_TTL, 0);
        assert!(!put(&c, "r", "a", "1"));
        assert!(c.get("r", "a", "1").is_none());
        let (c, _) = cache(Duration::ZERO, 10);
        assert!(!put(&c, "r", "a", "1"));
    }

    #[test]
    fn reinserting_refreshes_expiry_without_duplicates() {
        let (c, clock) = cache(Duration::from_secs(60), 10);
        assert!(put(&c, "r", "a", "1"));
        clock.advance(Duration::from_secs(50));
        assert!(put(&c, "r", "a", "1"));
        assert_eq!(c.len(), 1);
        clock.advance(Duration::from_secs(50));
        assert!(c.get("r", "a", "1").is_some());
    }

    #[test]
    fn concurrent_use_is_safe() {
        let (c, _) = cache(DEFAULT_TTL, 64);
        let c = Arc::new(c);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let user = format!("u{}", i % 50);
                        put(&c, "r", &user, &t.to_string());
                        let _ = c.get("r", &user, &t.to_string());
                        if i % 37 == 0 {
                            c.invalidate_user("r", &user);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(c.len() <= 64);
        let inner = c.lock();
        let indexed: usize = inner.by_user.values().map(HashSet::len).sum();
        assert_eq!(indexed, inner.entries.len());
    }
}
