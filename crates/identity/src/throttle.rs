//! Brute-force protection for passwords and client secrets: exponential backoff per account and
//! per client address, in bounded memory.
//!
//! Every failed attempt is counted twice: under the account (username or `client_id`) and under
//! the client's address (IPv4, or the IPv6 /64). After `free` failures a key is locked, and each
//! further failure doubles the lock (`base_delay`, `2 × base_delay`, … up to `max_delay`). While
//! either key is locked an attempt is refused *before* the credential is checked, so a locked
//! key costs no PBKDF2 and answers nothing about the password. A key is forgotten once it has
//! seen no failure for `forget_after` past the end of its lock.
//!
//! Lockout is backoff, never permanent: an attacker can hold an account to one guess per
//! `max_delay`, not shut it off. To keep even that from locking out the account's real owner,
//! an address that authenticated successfully as the account (within [`TRUSTED_SOURCE_TTL`]) is
//! counted under its own `(account, address)` key instead of the shared one: failures elsewhere
//! do not lock it, and its own failures still back off. A success clears the counter of the key
//! it was made under (never the address counter, which an attacker could otherwise reset with an
//! account of their own).
//!
//! Each table holds at most `max_tracked` keys. When a table is full, expired keys are swept (at
//! most once per second); if it is still full, new keys share one overflow entry, so a flood of
//! keys can make new accounts wait but never grows memory or escapes the limits.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoutil_realm::{Clock, cache::SystemClock};

/// How long a successful sign-in from an address exempts that address from the account's
/// shared lock.
pub const TRUSTED_SOURCE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most trusted addresses remembered per account (the most recent ones win).
pub const TRUSTED_SOURCES_PER_ACCOUNT: usize = 8;
/// Longest account name tracked as is; longer names are cut (they are never valid anyway).
const MAX_ACCOUNT_LEN: usize = 256;
/// Least time between two sweeps of a full table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Thresholds (from `brute_force:` in `identity.yml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account before backoff starts.
    pub account_free_failures: u32,
    /// Failures per client address before backoff starts.
    pub address_free_failures: u32,
    /// The first lock; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest lock.
    pub max_delay: Duration,
    /// A key without failures for this long after its lock ended starts afresh.
    pub forget_after: Duration,
    /// Most keys per table.
    pub max_tracked: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(15 * 60),
            max_tracked: 100_000,
        }
    }
}

/// An attempt refused because a key is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Whole seconds until the lock ends (at least 1).
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            last_failure: now,
            locked_until: None,
        }
    }

    fn expires_at(&self, forget_after: Duration) -> Instant {
        self.locked_until
            .map_or(self.last_failure, |l| l.max(self.last_failure))
            + forget_after
    }

    fn locked(&self, now: Instant) -> Option<Locked> {
        let until = self.locked_until.filter(|until| *until > now)?;
        let secs = until.saturating_duration_since(now).as_secs_f64().ceil();
        // Finite and at most `max_delay` in seconds.
        Some(Locked {
            retry_after_secs: (secs as u64).max(1),
        })
    }

    /// Counts a failure; locks once more than `free - 1` failures were seen.
    fn fail(&mut self, policy: &ThrottlePolicy, free: u32, now: Instant) -> Option<Locked> {
        if now >= self.expires_at(policy.forget_after) {
            *self = Self::new(now);
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures >= free {
            let doublings = (self.failures - free).min(30);
            let delay = policy
                .base_delay
                .saturating_mul(1u32 << doublings)
                .min(policy.max_delay);
            self.locked_until = Some(now + delay);
        }
        self.locked(now)
    }
}

/// A bounded map of keys to failure counters.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    overflow: Option<Entry>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq> Table<K> {
    fn new() -> Self {
        Self {
            entries: HashMap::new(),
            overflow: None,
            last_sweep: None,
        }
    }

    fn locked(&self, key: &K, now: Instant, max: usize) -> Option<Locked> {
        match self.entries.get(key) {
            Some(entry) => entry.locked(now),
            None if self.entries.len() >= max => self.overflow.and_then(|e| e.locked(now)),
            None => None,
        }
    }

    fn fail(&mut self, key: K, policy: &ThrottlePolicy, free: u32, now: Instant) -> Option<Locked> {
        if !self.entries.contains_key(&key) && self.entries.len() >= policy.max_tracked {
            self.sweep(policy.forget_after, now);
        }
        let entry = if self.entries.len() < policy.max_tracked || self.entries.contains_key(&key) {
            self.entries.entry(key).or_insert_with(|| Entry::new(now))
        } else {
            self.overflow.get_or_insert_with(|| Entry::new(now))
        };
        entry.fail(policy, free, now)
    }

    fn sweep(&mut self, forget_after: Duration, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.entries
            .retain(|_, entry| now < entry.expires_at(forget_after));
    }
}

/// The addresses an account recently authenticated from.
#[derive(Debug)]
struct TrustedSources {
    accounts: HashMap<String, Vec<(IpAddr, Instant)>>,
    last_sweep: Option<Instant>,
}

impl TrustedSources {
    fn contains(&self, account: &str, source: IpAddr, now: Instant) -> bool {
        self.accounts.get(account).is_some_and(|sources| {
            sources.iter().any(|(ip, at)| {
                *ip == source && now.saturating_duration_since(*at) < TRUSTED_SOURCE_TTL
            })
        })
    }

    fn remember(&mut self, account: &str, source: IpAddr, now: Instant, max: usize) {
        if let Some(sources) = self.accounts.get_mut(account) {
            sources.retain(|(ip, at)| {
                *ip != source && now.saturating_duration_since(*at) < TRUSTED_SOURCE_TTL
            });
            if sources.len() >= TRUSTED_SOURCES_PER_ACCOUNT {
                sources.remove(0);
            }
            sources.push((source, now));
            return;
        }
        if self.accounts.len() >= max {
            if self
                .last_sweep
                .is_some_and(|last| now.saturating_duration_since(last) < SWEEP_INTERVAL)
            {
                return;
            }
            self.last_sweep = Some(now);
            self.accounts.retain(|_, sources| {
                sources
                    .iter()
                    .any(|(_, at)| now.saturating_duration_since(*at) < TRUSTED_SOURCE_TTL)
            });
            if self.accounts.len() >= max {
                return;
            }
        }
        self.accounts
            .insert(account.to_owned(), vec![(source, now)]);
    }
}

/// The account counter an attempt counts under: shared, or private to a trusted address.
type AccountKey = (String, Option<IpAddr>);

#[derive(Debug)]
struct State {
    accounts: Table<AccountKey>,
    addresses: Table<Option<IpAddr>>,
    trusted: TrustedSources,
}

/// Failure counters for one kind of credential (user passwords, or client secrets).
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl Throttle {
    /// A throttle on the system clock.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self::with_clock(policy, Arc::new(SystemClock))
    }

    /// A throttle on `clock` (tests advance it instead of sleeping).
    pub fn with_clock(policy: ThrottlePolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy: ThrottlePolicy {
                account_free_failures: policy.account_free_failures.max(1),
                address_free_failures: policy.address_free_failures.max(1),
                max_tracked: policy.max_tracked.max(1),
                ..policy
            },
            clock,
            state: Mutex::new(State {
                accounts: Table::new(),
                addresses: Table::new(),
                trusted: TrustedSources {
                    accounts: HashMap::new(),
                    last_sweep: None,
                },
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an attempt for `account` from `source` may be checked now. Call before
    /// verifying the credential; a `Locked` attempt must be refused unchecked.
    pub fn check(&self, account: &str, source: Option<IpAddr>) -> Result<(), Locked> {
        let now = self.clock.now();
        let source = source.map(address_key);
        let state = self.state();
        let max = self.policy.max_tracked;
        let key = account_key(&state.trusted, account, source, now);
        let locks = [
            state.addresses.locked(&source, now, max),
            state.accounts.locked(&key, now, max),
        ];
        match locks
            .into_iter()
            .flatten()
            .max_by_key(|l| l.retry_after_secs)
        {
            Some(locked) => Err(locked),
            None => Ok(()),
        }
    }

    /// Records a failed attempt; `Err` when it locked the account or the address.
    pub fn failed(&self, account: &str, source: Option<IpAddr>) -> Result<(), Locked> {
        let now = self.clock.now();
        let source = source.map(address_key);
        let mut guard = self.state();
        let state = &mut *guard;
        let key = account_key(&state.trusted, account, source, now);
        let policy = &self.policy;
        let locks = [
            state
                .addresses
                .fail(source, policy, policy.address_free_failures, now),
            state
                .accounts
                .fail(key, policy, policy.account_free_failures, now),
        ];
        match locks
            .into_iter()
            .flatten()
            .max_by_key(|l| l.retry_after_secs)
        {
            Some(locked) => Err(locked),
            None => Ok(()),
        }
    }

    /// Records a success: clears the account counter it was made under and trusts `source`
    /// for this account from now on.
    pub fn succeeded(&self, account: &str, source: Option<IpAddr>) {
        let now = self.clock.now();
        let source = source.map(address_key);
        let mut guard = self.state();
        let state = &mut *guard;
        let key = account_key(&state.trusted, account, source, now);
        if !state.accounts.entries.is_empty() {
            state.accounts.entries.remove(&key);
        }
        if let Some(source) = source {
            state
                .trusted
                .remember(&key.0, source, now, self.policy.max_tracked);
        }
    }

    /// Keys tracked (accounts, addresses): for tests and metrics.
    pub fn tracked(&self) -> (usize, usize) {
        let state = self.state();
        (state.accounts.entries.len(), state.addresses.entries.len())
    }
}

/// The account counter of an attempt: private when `source` is trusted for the account.
fn account_key(
    trusted: &TrustedSources,
    account: &str,
    source: Option<IpAddr>,
    now: Instant,
) -> AccountKey {
    let mut name: String = account.chars().take(MAX_ACCOUNT_LEN).collect();
    name = name.to_lowercase();
    let private = source.filter(|ip| trusted.contains(&name, *ip, now));
    (name, private)
}

/// IPv4 (also IPv4-mapped) as is; IPv6 by its /64, which one host or subscriber normally holds.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct TestClock(Mutex<Instant>);

    impl TestClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn throttle(policy: ThrottlePolicy) -> (Throttle, Arc<TestClock>) {
        let clock = Arc::new(TestClock(Mutex::new(Instant::now())));
        (Throttle::with_clock(policy, clock.clone()), clock)
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            account_free_failures: 3,
            address_free_failures: 10,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            forget_after: Duration::from_secs(300),
            max_tracked: 100,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn secs(n: u64) -> Result<(), Locked> {
        Err(Locked {
            retry_after_secs: n,
        })
    }

    #[test]
    fn free_failures_then_exponential_backoff_up_to_the_cap() {
        let (t, clock) = throttle(policy());
        let a = ip("192.0.2.1");
        for _ in 0..2 {
            assert_eq!(t.check("alice", a), Ok(()));
            assert_eq!(t.failed("alice", a), Ok(()));
        }
        assert_eq!(t.failed("alice", a), secs(2), "the third failure locks");
        assert_eq!(t.check("alice", a), secs(2));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(t.check("alice", a), secs(1), "rounded up");
        clock.advance(Duration::from_millis(500));
        assert_eq!(t.check("alice", a), Ok(()));
        for expected in [4, 8, 16, 32, 60, 60] {
            assert_eq!(t.failed("alice", a), secs(expected));
            clock.advance(Duration::from_secs(expected));
            assert_eq!(t.check("alice", a), Ok(()));
        }
    }

    #[test]
    fn accounts_are_case_insensitive_and_separate() {
        let (t, _) = throttle(policy());
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            let _ = t.failed("Alice", a);
        }
        assert!(t.check("alice", a).is_err());
        assert_eq!(t.check("bob", ip("192.0.2.2")), Ok(()));
        // Same address, another account: the address has failures left.
        assert_eq!(t.check("bob", a), Ok(()));
    }

    #[test]
    fn a_lock_is_forgotten_after_a_quiet_period_never_permanent() {
        let (t, clock) = throttle(policy());
        let a = ip("192.0.2.1");
        for _ in 0..8 {
            let _ = t.failed("alice", a);
        }
        assert_eq!(t.check("alice", a), secs(60));
        clock.advance(Duration::from_secs(60));
        assert_eq!(t.check("alice", a), Ok(()));
        clock.advance(Duration::from_secs(300));
        // Forgotten: free failures again.
        assert_eq!(t.failed("alice", a), Ok(()));
    }

    #[test]
    fn a_success_resets_the_account_but_not_the_address() {
        let (t, _) = throttle(ThrottlePolicy {
            address_free_failures: 4,
            ..policy()
        });
        let a = ip("192.0.2.1");
        let _ = t.failed("alice", a);
        let _ = t.failed("alice", a);
        t.succeeded("alice", a);
        assert_eq!(t.failed("alice", a), Ok(()), "account counter was reset");
        assert_eq!(t.failed("bob", a), secs(2), "address counter kept counting");
        assert_eq!(t.check("carol", a), secs(2));
    }

    #[test]
    fn the_address_limit_spans_usernames_and_ipv6_counts_per_slash_64() {
        let (t, _) = throttle(policy());
        for i in 0..10 {
            let _ = t.failed(&format!("user-{i}"), ip(&format!("2001:db8:1:1::{i}")));
        }
        assert!(t.check("someone-else", ip("2001:db8:1:1:ffff::1")).is_err());
        assert_eq!(t.check("someone-else", ip("2001:db8:1:2::1")), Ok(()));
        assert_eq!(t.check("someone-else", ip("192.0.2.9")), Ok(()));
    }

    #[test]
    fn a_trusted_address_is_not_locked_out_by_failures_elsewhere() {
        let (t, clock) = throttle(policy());
        let owner = ip("198.51.100.7");
        let attacker = ip("203.0.113.66");
        t.succeeded("svc", owner);
        for _ in 0..5 {
            let _ = t.failed("svc", attacker);
        }
        assert!(t.check("svc", attacker).is_err());
        assert_eq!(
            t.check("svc", owner),
            Ok(()),
            "the owner's address is exempt"
        );
        // The owner's address still backs off on its own failures.
        for _ in 0..2 {
            assert_eq!(t.failed("svc", owner), Ok(()));
        }
        assert!(t.failed("svc", owner).is_err());
        assert!(t.check("svc", owner).is_err());
        clock.advance(Duration::from_secs(2));
        assert_eq!(t.check("svc", owner), Ok(()));
    }

    #[test]
    fn a_trusted_success_does_not_unlock_the_shared_counter_and_trust_expires() {
        let (t, clock) = throttle(ThrottlePolicy {
            max_delay: Duration::from_secs(3600),
            base_delay: Duration::from_secs(3600),
            ..policy()
        });
        let owner = ip("198.51.100.7");
        let attacker = ip("203.0.113.66");
        t.succeeded("svc", owner);
        for _ in 0..3 {
            let _ = t.failed("svc", attacker);
        }
        t.succeeded("svc", owner);
        assert!(t.check("svc", attacker).is_err(), "still locked");
        assert_eq!(t.check("svc", owner), Ok(()));
        // Without a success for the trust period the owner's address counts as any other.
        clock.advance(TRUSTED_SOURCE_TTL + Duration::from_secs(1));
        for _ in 0..3 {
            let _ = t.failed("svc", attacker);
        }
        assert!(t.check("svc", owner).is_err(), "trust expired");
    }

    #[test]
    fn memory_is_bounded_and_overflow_keys_share_one_counter() {
        let (t, clock) = throttle(ThrottlePolicy {
            max_tracked: 3,
            address_free_failures: 1000,
            ..policy()
        });
        let a = ip("192.0.2.1");
        for name in ["a", "b", "c"] {
            let _ = t.failed(name, a);
        }
        assert_eq!(t.tracked().0, 3);
        // Full of live keys: newcomers share the overflow counter.
        for name in ["d", "e", "f"] {
            let _ = t.failed(name, a);
        }
        assert_eq!(t.tracked().0, 3);
        assert!(t.check("g", a).is_err(), "overflow counter locked");
        assert_eq!(
            t.check("a", a),
            Ok(()),
            "tracked keys keep their own counter"
        );
        // After the quiet period the stale keys are swept and newcomers get their own again.
        clock.advance(Duration::from_secs(400));
        assert_eq!(t.failed("h", a), Ok(()));
        assert_eq!(t.tracked().0, 1);
    }

    #[test]
    fn ipv4_mapped_addresses_share_the_ipv4_counter() {
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
    }
}
