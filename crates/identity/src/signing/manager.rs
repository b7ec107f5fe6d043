//! The key manager: the current key ring, refreshed from the store, rotating when due.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use time::{Duration, OffsetDateTime};

use super::key::whole_seconds;
use super::ring::{Slot, plan};
use super::{KeyEncryptionKey, KeyRing, RotationPolicy, SigningError, SigningKey, SigningKeyStore};
use crate::model::SealedSigningKey;

/// How often one refresh lists again after losing an insert race before giving up on rotating.
const MAX_ATTEMPTS: usize = 3;

/// Holds the current [`KeyRing`] (readers take an `Arc` clone, never wait for a refresh) and
/// refreshes it from a [`SigningKeyStore`].
pub struct KeyManager {
    kek: Arc<KeyEncryptionKey>,
    policy: RotationPolicy,
    current: RwLock<Arc<KeyRing>>,
    /// Opened keys by `kid`, so a refresh decrypts only records it has not seen.
    opened: Mutex<HashMap<String, Arc<SigningKey>>>,
    /// One refresh at a time per manager.
    refreshing: tokio::sync::Mutex<()>,
}

impl KeyManager {
    /// A manager with an empty ring: call [`KeyManager::refresh`] before signing (or use
    /// [`KeyManager::start`]).
    #[must_use]
    pub fn new(kek: KeyEncryptionKey, policy: RotationPolicy, now: OffsetDateTime) -> Self {
        Self {
            kek: Arc::new(kek),
            policy,
            current: RwLock::new(Arc::new(KeyRing::empty(now))),
            opened: Mutex::new(HashMap::new()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// A manager whose first refresh has succeeded (a key exists and signs).
    ///
    /// # Errors
    /// As [`KeyManager::refresh`].
    pub async fn start(
        kek: KeyEncryptionKey,
        policy: RotationPolicy,
        store: &dyn SigningKeyStore,
        now: OffsetDateTime,
    ) -> Result<Self, SigningError> {
        let manager = Self::new(kek, policy, now);
        manager.refresh(store, now).await?;
        Ok(manager)
    }

    /// The current ring (cheap: an `Arc` clone under a read lock).
    #[must_use]
    pub fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The rotation policy.
    #[must_use]
    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// Loads the stored keys, creates a key when none is usable or the newest is at least
    /// `rotation_period` old (only one of several racing instances succeeds; the others list
    /// again and adopt its key), opens records not yet opened, and installs a new ring.
    /// On error the previous ring stays in place.
    ///
    /// # Errors
    /// Store failures, a needed record that cannot be opened (wrong key-encryption key, altered
    /// record), key generation failure, or [`SigningError::NoSigningKey`].
    pub async fn refresh(
        &self,
        store: &dyn SigningKeyStore,
        now: OffsetDateTime,
    ) -> Result<Arc<KeyRing>, SigningError> {
        let _one_at_a_time = self.refreshing.lock().await;
        self.refresh_locked(store, now).await
    }

    /// The current ring when it was built less than `max_age` before `now`, otherwise a
    /// [`KeyManager::refresh`]. Concurrent callers share one refresh (they wait for it and then
    /// find a fresh ring), so however many callers there are, the store is listed at most once
    /// per `max_age`. Used where a key another instance just added must be seen: a token whose
    /// `kid` is unknown here, and the JWKS document.
    ///
    /// # Errors
    /// As [`KeyManager::refresh`].
    pub async fn refresh_if_older(
        &self,
        store: &dyn SigningKeyStore,
        max_age: Duration,
        now: OffsetDateTime,
    ) -> Result<Arc<KeyRing>, SigningError> {
        let fresh = |ring: &KeyRing| {
            let built = ring.built_at();
            built <= now + max_age && now < built + max_age && ring.signing_key().is_some()
        };
        let ring = self.ring();
        if fresh(&ring) {
            return Ok(ring);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let ring = self.ring();
        if fresh(&ring) {
            return Ok(ring);
        }
        self.refresh_locked(store, now).await
    }

    /// Adds a new key now, whatever the rotation period says (the administrative rotation), and
    /// installs the new ring. The key is published at once and signs from `created_at +
    /// activation_delay`, like a scheduled rotation. When several instances rotate at the same
    /// moment only one key is added (the conditional insert); the others adopt it.
    /// Returns the ring and the `kid` of the newest key.
    ///
    /// # Errors
    /// As [`KeyManager::refresh`].
    pub async fn rotate(
        &self,
        store: &dyn SigningKeyStore,
        now: OffsetDateTime,
    ) -> Result<(Arc<KeyRing>, String), SigningError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let records = store.list_signing_keys().await?;
        // Strictly newer than every stored key, so the new key is the newest on every instance.
        let threshold = records
            .iter()
            .map(|r| whole_seconds(r.created_at) + Duration::SECOND)
            .max()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (key, sealed) = self.create_key(now.max(threshold)).await?;
        if store.insert_signing_key(&sealed, threshold).await? {
            tracing::info!(kid = key.kid(), alg = %key.alg(), "rotated the signing key");
            self.cache().insert(key.kid().to_owned(), Arc::new(key));
        } else {
            tracing::info!("another instance rotated the signing key at the same moment");
        }
        let ring = self.refresh_locked(store, now).await?;
        // Published keys come newest first.
        let newest = ring
            .verification_keys()
            .first()
            .map(|k| k.kid.clone())
            .ok_or(SigningError::NoSigningKey)?;
        Ok((ring, newest))
    }

    async fn refresh_locked(
        &self,
        store: &dyn SigningKeyStore,
        now: OffsetDateTime,
    ) -> Result<Arc<KeyRing>, SigningError> {
        let mut attempt = 0;
        let records = loop {
            attempt += 1;
            let mut records = store.list_signing_keys().await?;
            let Some(threshold) = self.rotation_due(&records, now) else {
                break records;
            };
            if attempt > MAX_ATTEMPTS {
                // Lost every race yet still due (clocks far apart?): use what exists.
                tracing::warn!("signing key rotation still due after {MAX_ATTEMPTS} attempts");
                break records;
            }
            let (key, sealed) = self.create_key(now).await?;
            if store.insert_signing_key(&sealed, threshold).await? {
                tracing::info!(kid = key.kid(), alg = %key.alg(), "created a signing key");
                self.cache().insert(key.kid().to_owned(), Arc::new(key));
                records.push(sealed);
                break records;
            }
            tracing::debug!("another instance added a signing key first; listing again");
        };
        let ring = Arc::new(self.build(records, now).await?);
        if ring.signing_key().is_none() {
            return Err(SigningError::NoSigningKey);
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&ring);
        Ok(ring)
    }

    /// `Some(threshold)` when a new key is due: no usable key, or the newest is at least
    /// `rotation_period` old. The threshold makes the insert conditional on nobody having added
    /// a key newer than the newest one seen.
    fn rotation_due(
        &self,
        records: &[SealedSigningKey],
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let newest_alive = records
            .iter()
            .filter(|r| r.retire_at.is_none_or(|t| now < t))
            .map(|r| r.created_at)
            .max();
        let due = newest_alive.is_none_or(|t| t + self.policy.rotation_period <= now);
        due.then(|| {
            records
                .iter()
                .map(|r| r.created_at)
                .max()
                .map_or(OffsetDateTime::UNIX_EPOCH, |t| {
                    whole_seconds(t) + Duration::SECOND
                })
        })
    }

    /// Generates and seals a key off the async workers (RSA generation takes a while).
    async fn create_key(
        &self,
        now: OffsetDateTime,
    ) -> Result<(SigningKey, SealedSigningKey), SigningError> {
        let kek = Arc::clone(&self.kek);
        let alg = self.policy.algorithm;
        tokio::task::spawn_blocking(move || {
            let key = SigningKey::generate(alg, now)?;
            let sealed = key.seal(&kek)?;
            Ok((key, sealed))
        })
        .await
        .map_err(|_| SigningError::Crypto("task"))?
    }

    /// Opens the records still published (reusing opened keys) and builds the ring.
    async fn build(
        &self,
        records: Vec<SealedSigningKey>,
        now: OffsetDateTime,
    ) -> Result<KeyRing, SigningError> {
        let needed: Vec<usize> = {
            let slots: Vec<Slot<'_>> = records
                .iter()
                .map(|r| Slot {
                    kid: &r.kid,
                    created_at: r.created_at,
                    retire_at: r.retire_at,
                })
                .collect();
            plan(&slots, now, &self.policy).published
        };
        let mut keys: Vec<Arc<SigningKey>> = Vec::with_capacity(needed.len());
        let mut to_open: Vec<SealedSigningKey> = Vec::new();
        {
            let cache = self.cache();
            for &i in &needed {
                let r = &records[i];
                match cache.get(&r.kid) {
                    Some(k)
                        if k.created_at() == r.created_at
                            && k.retire_at() == r.retire_at
                            && k.alg().name() == r.alg =>
                    {
                        keys.push(Arc::clone(k));
                    }
                    _ => to_open.push(r.clone()),
                }
            }
        }
        if !to_open.is_empty() {
            let kek = Arc::clone(&self.kek);
            let opened = tokio::task::spawn_blocking(move || {
                to_open
                    .iter()
                    .map(|r| r.open(&kek).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|_| SigningError::Crypto("task"))??;
            keys.extend(opened);
        }
        {
            let mut cache = self.cache();
            cache.clear();
            for k in &keys {
                cache.insert(k.kid().to_owned(), Arc::clone(k));
            }
        }
        KeyRing::new(&keys, now, &self.policy)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SigningKey>>> {
        self.opened.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl core::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyManager")
            .field("policy", &self.policy)
            .field("ring", &self.ring())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::signing::SigningAlgorithm;
    use crate::signing::ring::jwks_kids;
    use crate::signing::testing::MemoryStore;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000 + s).unwrap()
    }

    fn kek_text() -> String {
        KeyEncryptionKey::generate()
            .unwrap()
            .to_base64url()
            .to_string()
    }

    fn policy() -> RotationPolicy {
        RotationPolicy::new(
            SigningAlgorithm::ES256,
            Duration::seconds(1000),
            Duration::seconds(300),
        )
    }

    #[tokio::test]
    async fn creates_then_rotates_with_overlap() {
        let store = MemoryStore::default();
        let m = KeyManager::start(kek_text().parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let first = m.ring();
        let k1 = first.signing_kid().unwrap().to_owned();
        assert_eq!(jwks_kids(&first.jwks_json()), vec![k1.clone()]);

        // Not yet due: same key, nothing inserted.
        let ring = m.refresh(&store, t(999)).await.unwrap();
        assert_eq!(ring.signing_kid(), Some(k1.as_str()));
        assert_eq!(store.inserts.load(Ordering::SeqCst), 1);

        // Due: a second key signs, the first stays published for the overlap.
        let ring = m.refresh(&store, t(1000)).await.unwrap();
        let k2 = ring.signing_kid().unwrap().to_owned();
        assert_ne!(k2, k1);
        assert_eq!(jwks_kids(&ring.jwks_json()), vec![k2.clone(), k1.clone()]);
        assert!(ring.verification_key(&k1).is_some());
        assert_eq!(ring.next_change(), Some(t(1300)));

        let ring = m.refresh(&store, t(1299)).await.unwrap();
        assert_eq!(jwks_kids(&ring.jwks_json()), vec![k2.clone(), k1.clone()]);
        let ring = m.refresh(&store, t(1300)).await.unwrap();
        assert_eq!(jwks_kids(&ring.jwks_json()), vec![k2.clone()]);
        assert!(ring.verification_key(&k1).is_none());
        assert_eq!(m.ring().signing_kid(), Some(k2.as_str()));
        // The retired key is no longer held opened.
        assert!(!m.cache().contains_key(&k1));
    }

    #[tokio::test]
    async fn rotate_adds_the_newest_key_which_signs_after_the_activation_delay() {
        let store = MemoryStore::default();
        let text = kek_text();
        let delayed = policy().with_activation_delay(Duration::seconds(5));
        let a = KeyManager::start(text.parse().unwrap(), delayed, &store, t(0))
            .await
            .unwrap();
        let k1 = a.ring().signing_kid().unwrap().to_owned();
        // Rotating within the first key's second still makes a strictly newer key.
        let (ring, k2) = a.rotate(&store, t(0)).await.unwrap();
        assert_ne!(k2, k1);
        assert_eq!(jwks_kids(&ring.jwks_json()), vec![k2.clone(), k1.clone()]);
        assert_eq!(ring.signing_kid(), Some(k1.as_str()), "not active yet");
        let ring = a.refresh(&store, t(6)).await.unwrap();
        assert_eq!(ring.signing_kid(), Some(k2.as_str()));
        assert_eq!(store.keys.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refresh_if_older_sees_a_peers_key_and_lists_at_most_once_per_interval() {
        let store = MemoryStore::default();
        let text = kek_text();
        let a = KeyManager::start(text.parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let b = KeyManager::start(text.parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let lists = store.lists.load(Ordering::SeqCst);
        // Fresh enough: no listing.
        b.refresh_if_older(&store, Duration::SECOND, t(0))
            .await
            .unwrap();
        assert_eq!(store.lists.load(Ordering::SeqCst), lists);
        let (_, k2) = a.rotate(&store, t(1)).await.unwrap();
        let lists = store.lists.load(Ordering::SeqCst);
        // Many concurrent callers, one listing; the peer's key is now known.
        let call = || b.refresh_if_older(&store, Duration::SECOND, t(2));
        let rings = tokio::join!(call(), call(), call(), call());
        for ring in [rings.0, rings.1, rings.2, rings.3] {
            assert!(ring.unwrap().verification_key(&k2).is_some());
        }
        assert_eq!(store.lists.load(Ordering::SeqCst), lists + 1);
    }

    #[tokio::test]
    async fn opened_keys_are_cached() {
        let store = MemoryStore::default();
        let text = kek_text();
        let a = KeyManager::start(text.parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let b = KeyManager::new(text.parse().unwrap(), policy(), t(0));
        b.refresh(&store, t(1)).await.unwrap();
        let first = Arc::as_ptr(b.ring().signing_key().unwrap());
        b.refresh(&store, t(2)).await.unwrap();
        assert_eq!(Arc::as_ptr(b.ring().signing_key().unwrap()), first);
        assert_eq!(a.ring().signing_kid(), b.ring().signing_kid());
    }

    #[tokio::test]
    async fn two_managers_converge() {
        let store = MemoryStore::default();
        let text = kek_text();
        let a = KeyManager::new(text.parse().unwrap(), policy(), t(0));
        let b = KeyManager::new(text.parse().unwrap(), policy(), t(0));
        // Start together.
        let (ra, rb) = tokio::join!(a.refresh(&store, t(0)), b.refresh(&store, t(0)));
        assert_eq!(ra.unwrap().signing_kid(), rb.unwrap().signing_kid());
        assert_eq!(store.keys.lock().unwrap().len(), 1);
        // Both decided to create a key; the loser listed again.
        assert_eq!(store.lists.load(Ordering::SeqCst), 3);
        // Rotate together, with clocks a second apart: one new key, whoever wins. A ring is a
        // function of the records and the instant (a key created "in the future" by a peer
        // whose clock is ahead activates at its own time), so both agree at any one instant.
        let (ra, rb) = tokio::join!(a.refresh(&store, t(1000)), b.refresh(&store, t(1001)));
        ra.unwrap();
        rb.unwrap();
        assert_eq!(store.keys.lock().unwrap().len(), 2);
        assert_eq!(store.inserts.load(Ordering::SeqCst), 2);
        let (ra, rb) = tokio::join!(a.refresh(&store, t(1002)), b.refresh(&store, t(1002)));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.signing_kid(), rb.signing_kid());
        assert_eq!(ra.jwks_json(), rb.jwks_json());
        assert_eq!(store.keys.lock().unwrap().len(), 2, "no further key");
    }

    #[tokio::test]
    async fn lost_race_adopts_the_winner() {
        // b decides to rotate from a stale listing; a's insert wins; b lists again.
        let store = MemoryStore::default();
        let text = kek_text();
        let a = KeyManager::start(text.parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let stale = store.keys.lock().unwrap().clone();
        let winner = a.refresh(&store, t(1000)).await.unwrap();
        let b = KeyManager::new(text.parse().unwrap(), policy(), t(0));
        let threshold = b.rotation_due(&stale, t(1000)).unwrap();
        let (_, sealed) = b.create_key(t(1000)).await.unwrap();
        assert!(!store.insert_signing_key(&sealed, threshold).await.unwrap());
        let ring = b.refresh(&store, t(1000)).await.unwrap();
        assert_eq!(ring.signing_kid(), winner.signing_kid());
    }

    #[tokio::test]
    async fn wrong_kek_fails_and_keeps_the_previous_ring() {
        let store = MemoryStore::default();
        KeyManager::start(kek_text().parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let other = KeyManager::new(kek_text().parse().unwrap(), policy(), t(0));
        let err = other.refresh(&store, t(1)).await.unwrap_err();
        assert!(matches!(err, SigningError::Open { .. }), "{err:?}");
        assert!(other.ring().signing_key().is_none());
        // It did not paper over the problem by adding a key of its own.
        assert_eq!(store.keys.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn retired_records_are_not_opened() {
        // A record past its publication window is skipped even if it cannot be opened.
        let store = MemoryStore::default();
        let m = KeyManager::start(kek_text().parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        m.refresh(&store, t(1000)).await.unwrap();
        store.keys.lock().unwrap()[0].sealed_jwk = "garbage".into();
        let fresh = KeyManager::new(kek_text().parse().unwrap(), policy(), t(0));
        // Different KEK: the live key cannot be opened either → error.
        assert!(fresh.refresh(&store, t(1400)).await.is_err());
        // Same KEK as m, past the overlap: the garbage record is ignored.
        let ring = m.refresh(&store, t(1400)).await.unwrap();
        assert_eq!(ring.verification_keys().len(), 1);
    }

    #[tokio::test]
    async fn administratively_retired_newest_is_replaced() {
        let store = MemoryStore::default();
        let m = KeyManager::start(kek_text().parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let k1 = m.ring().signing_kid().unwrap().to_owned();
        store.keys.lock().unwrap()[0].retire_at = Some(t(10));
        let ring = m.refresh(&store, t(10)).await.unwrap();
        assert_ne!(ring.signing_kid(), Some(k1.as_str()));
        assert!(ring.verification_key(&k1).is_none());
    }

    #[tokio::test]
    async fn algorithm_follows_the_policy_at_rotation() {
        let store = MemoryStore::default();
        let text = kek_text();
        let m = KeyManager::start(text.parse().unwrap(), policy(), &store, t(0))
            .await
            .unwrap();
        let mut eddsa = policy();
        eddsa.algorithm = SigningAlgorithm::EdDSA;
        let n = KeyManager::start(text.parse().unwrap(), eddsa, &store, t(1))
            .await
            .unwrap();
        assert_eq!(n.ring().signing_algorithm(), Some(SigningAlgorithm::ES256));
        let ring = n.refresh(&store, t(1000)).await.unwrap();
        assert_eq!(ring.signing_algorithm(), Some(SigningAlgorithm::EdDSA));
        assert_eq!(
            ring.algorithms(),
            &[SigningAlgorithm::EdDSA, SigningAlgorithm::ES256]
        );
        let ring = m.refresh(&store, t(1001)).await.unwrap();
        assert_eq!(ring.signing_algorithm(), Some(SigningAlgorithm::EdDSA));
    }
}
