//! The barrier: every key the KMS stores is encrypted, layer by layer, under a key that is
//! itself stored only encrypted (SPEC §3.4).
//!
//! # Hierarchy
//!
//! ```text
//! unseal keys (files / dev)            never stored
//!   └─ root key                        JWE JSON general serialization, one recipient per unseal key
//!        └─ intermediate key (tenant)  compact JWE, kid = root kid
//!             └─ content key (elastic key)     compact JWE, kid = intermediate kid
//!                  └─ material keys (sealed for the key service)  compact JWE, kid = content kid
//! ```
//!
//! Every barrier key is a random 256-bit AES key with a UUIDv7 `kid`. It is wrapped with
//! `A256KW` + `A256GCM`; the wrapping JWE's protected header carries the parent's `kid` and a
//! `barrier` object binding the wrapped key to its record (`layer`, its own `kid`, and for lower
//! layers the `tenant` and the `owner` elastic key). Unwrapping checks that binding, so a record
//! copied into another tenant or under another kid does not open.
//!
//! The root key is wrapped once per unseal key (recipient header `kid` = unseal key kid). Unseal
//! keys come from [`UnsealKeys`]: `dev` (random, in-memory databases only), `M-of-N` share files
//! (one HKDF-derived key per M-combination of shares; any M shares unseal; not Shamir), or JWK
//! files. Initialising and rotating the root key need every unseal key so that every combination
//! stays a recipient; unsealing needs any one.
//!
//! # Rotation and shredding
//!
//! The newest root key and a tenant's newest intermediate key are current: new intermediate and
//! content keys are wrapped under them. Older ones are kept for unwrapping; rotation never
//! re-encrypts lower layers. Deleting an elastic key's content keys (the key service's purge)
//! makes its material keys unrecoverable (crypto-shredding); [`Barrier::forget_owner`] drops
//! them from the cache.
//!
//! # Cache
//!
//! Unwrapped intermediate and content keys are kept in a bounded CLOCK cache keyed by `kid`
//! (root keys, a handful, are kept apart). A warm [`Barrier::seal`] or [`Barrier::unseal`] does
//! no unwrapping and no storage call. Keys are `Arc<Jwk>`, zeroized when the last reference
//! drops (eviction, removal, or the end of an operation still using it).

pub mod settings;
pub mod unseal;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use cryptoutil_jose::jwe::{self, Recipient};
use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{BarrierLayer, TenantId, WrappedKey};
use crate::repository::{BarrierStore, StoreError};

use crate::cache::Clock;
pub use settings::{BarrierSettings, DEFAULT_CACHE_CAPACITY, UnsealSettings};
pub use unseal::{UnsealKeys, encode_share, generate_shares};

/// Key management algorithm of every barrier layer.
const ALG: JweAlgorithm = JweAlgorithm::A256KW;
/// Content encryption of every barrier layer.
const ENC: ContentEncryption = ContentEncryption::A256GCM;
/// Barrier keys are AES-256.
const KEY_LEN: usize = 32;

/// Why a barrier operation failed. Messages name kids and counts, never key material.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The unseal keys do not open the root key: wrong, reordered or mismatched share/JWK files.
    /// Nothing was written. The server must exit non-zero with this message.
    #[error("wrong unseal keys: {0}")]
    WrongUnsealKeys(String),
    /// The unseal key configuration is unusable (bad shares, too few, duplicate, not all present
    /// for initialisation or root rotation).
    #[error("invalid unseal keys: {0}")]
    InvalidUnsealKeys(String),
    /// No such content key in this tenant (also for a kid of another tenant: nothing about other
    /// tenants is revealed).
    #[error("key not found")]
    NotFound,
    /// Stored barrier data or sealed data does not decode or decrypt.
    #[error("barrier data is invalid: {0}")]
    Corrupt(String),
    /// A cryptographic primitive failed (RNG, encryption).
    #[error("cryptographic failure: {0}")]
    Crypto(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh content key, not yet stored: the caller stores [`NewContentKey::record`] (the key
/// service does it in the same transaction as the elastic key) and may seal with it meanwhile.
pub struct NewContentKey {
    tenant: TenantId,
    record: WrappedKey,
    key: Arc<Jwk>,
}

impl NewContentKey {
    /// The wrapped content key to store.
    pub fn record(&self) -> &WrappedKey {
        &self.record
    }

    /// The content key's kid.
    pub fn kid(&self) -> Uuid {
        self.record.kid
    }

    /// The tenant it belongs to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }
}

impl fmt::Debug for NewContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewContentKey")
            .field("tenant", &self.tenant)
            .field("kid", &self.record.kid)
            .field("owner", &self.record.owner)
            .finish_non_exhaustive()
    }
}

/// A snapshot for readiness and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarrierStatus {
    /// Root keys this process can open.
    pub root_keys: usize,
    /// The current (newest) root key.
    pub current_root_kid: Uuid,
    /// Configured unseal keys.
    pub unseal_keys: usize,
    /// Every unseal share or JWK file was available (root rotation possible).
    pub unseal_complete: bool,
    /// Unwrapped intermediate and content keys in the cache.
    pub cached_keys: usize,
    /// Cache bound.
    pub cache_capacity: usize,
}

/// Unwrapped root keys: all that this process could open, and the newest of them.
struct Roots {
    keys: HashMap<Uuid, Arc<Jwk>>,
    current: (OffsetDateTime, Uuid),
}

#[derive(Clone)]
struct Cached {
    tenant: TenantId,
    layer: BarrierLayer,
    owner: Option<Uuid>,
    key: Arc<Jwk>,
}

struct Cache {
    keys: Clock<Uuid, Cached>,
    /// (tenant, elastic key) → kid of its newest content key; only for cached content keys.
    owners: HashMap<(TenantId, Uuid), Uuid>,
}

impl Cache {
    /// The unwrapped key, counted in `cryptoutil.barrier.cache.lookups`.
    fn get(&mut self, tenant: TenantId, layer: BarrierLayer, kid: Uuid) -> Option<Arc<Jwk>> {
        let found = self
            .keys
            .get(&kid)
            .filter(|c| c.tenant == tenant && c.layer == layer)
            .map(|c| Arc::clone(&c.key));
        let label = match layer {
            BarrierLayer::Root => "root",
            BarrierLayer::Intermediate => "intermediate",
            BarrierLayer::Content => "content",
        };
        cryptoutil_telemetry::barrier_cache_lookup(label, found.is_some());
        found
    }

    fn put(&mut self, kid: Uuid, entry: Cached) {
        if let Some((old_kid, old)) = self.keys.insert(kid, entry)
            && let Some(owner) = old.owner
            && self.owners.get(&(old.tenant, owner)) == Some(&old_kid)
        {
            self.owners.remove(&(old.tenant, owner));
        }
    }
}

/// The newest key of a layer: latest `created_at`, ties broken by the (UUIDv7) kid.
fn newest(records: &[WrappedKey]) -> Option<&WrappedKey> {
    records.iter().max_by_key(|r| (r.created_at, r.kid))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn crypto(what: &str) -> impl FnOnce(cryptoutil_jose::JoseError) -> BarrierError + '_ {
    move |e| BarrierError::Crypto(format!("{what}: {e}"))
}

/// A random AES-256 key: its bytes (to wrap) and its JWK (to use).
fn fresh_key(kid: Uuid) -> Result<(Zeroizing<[u8; KEY_LEN]>, Arc<Jwk>), BarrierError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| BarrierError::Crypto("rng".into()))?;
    let key = key_from_bytes(&bytes[..], kid)?;
    Ok((bytes, key))
}

fn key_from_bytes(bytes: &[u8], kid: Uuid) -> Result<Arc<Jwk>, BarrierError> {
    if bytes.len() != KEY_LEN {
        return Err(BarrierError::Corrupt(format!(
            "barrier key {kid} has the wrong length"
        )));
    }
    let mut jwk = Jwk::from_oct_bytes(bytes).map_err(crypto("barrier key"))?;
    jwk.set_kid(Some(kid.to_string()));
    Ok(Arc::new(jwk))
}

fn root_binding(kid: Uuid) -> Value {
    json!({ "layer": "root", "kid": kid.to_string() })
}

fn intermediate_binding(kid: Uuid, tenant: TenantId) -> Value {
    json!({ "layer": "intermediate", "kid": kid.to_string(), "tenant": tenant.to_string() })
}

fn content_binding(kid: Uuid, tenant: TenantId, owner: Uuid) -> Value {
    json!({
        "layer": "content",
        "kid": kid.to_string(),
        "tenant": tenant.to_string(),
        "owner": owner.to_string(),
    })
}

/// Wraps a child key under `parent` (compact JWE, `kid` = parent kid, `barrier` = binding).
fn wrap_compact(
    parent: &Jwk,
    parent_kid: Uuid,
    binding: Value,
    child: &[u8],
) -> Result<String, BarrierError> {
    let mut header = Map::new();
    header.insert("kid".into(), parent_kid.to_string().into());
    header.insert("barrier".into(), binding);
    let _span = barrier_span("wrap").entered();
    jwe::encrypt(parent, ALG, ENC, child, Some(&header)).map_err(crypto("wrapping a barrier key"))
}

/// The span (and count) of one barrier wrap or unwrap; nothing when telemetry is off.
fn barrier_span(operation: &'static str) -> tracing::Span {
    cryptoutil_telemetry::crypto_span("barrier", operation, ALG.name())
}

/// Opens a child key wrapped by [`wrap_compact`] and checks its binding.
fn unwrap_compact(
    parent: &Jwk,
    parent_kid: Uuid,
    binding: &Value,
    record: &WrappedKey,
) -> Result<Arc<Jwk>, BarrierError> {
    let kid = record.kid;
    let decrypted = {
        let _span = barrier_span("unwrap").entered();
        jwe::decrypt(parent, ALG, ENC, &record.jwe)
    }
    .map_err(|_| {
        BarrierError::Corrupt(format!(
            "barrier key {kid} does not decrypt under its parent {parent_kid}"
        ))
    })?;
    let plaintext = Zeroizing::new(decrypted.plaintext);
    let parent_text = parent_kid.to_string();
    if decrypted.header.kid() != Some(parent_text.as_str())
        || decrypted.header.get("barrier") != Some(binding)
    {
        return Err(BarrierError::Corrupt(format!(
            "barrier key {kid} is not bound to its record"
        )));
    }
    key_from_bytes(&plaintext, kid)
}

/// Wraps a root key for every unseal key.
fn wrap_root(unseal: &UnsealKeys, kid: Uuid, key: &[u8]) -> Result<String, BarrierError> {
    let recipients: Vec<Recipient<'_>> = unseal
        .jwks()
        .map(|k| Recipient {
            key: k,
            alg: ALG,
            header: None,
        })
        .collect();
    let mut header = Map::new();
    header.insert("barrier".into(), root_binding(kid));
    let _span = barrier_span("wrap").entered();
    jwe::encrypt_json(&recipients, ENC, key, Some(&header), None)
        .map_err(crypto("wrapping the root key"))
}

/// Opens a root key with any of the unseal keys.
fn unwrap_root(unseal: &UnsealKeys, record: &WrappedKey) -> Option<Arc<Jwk>> {
    let binding = root_binding(record.kid);
    let _span = barrier_span("unwrap").entered();
    unseal.jwks().find_map(|k| {
        let d = jwe::decrypt_json(k, ALG, ENC, &record.jwe).ok()?;
        let plaintext = Zeroizing::new(d.plaintext);
        if d.header.get("barrier") != Some(&binding) {
            return None;
        }
        key_from_bytes(&plaintext, record.kid).ok()
    })
}

/// The unseal key kids a root key JWE names as recipients.
fn root_recipients(record: &WrappedKey) -> Result<Vec<String>, BarrierError> {
    let corrupt = || BarrierError::Corrupt(format!("root key {} is not JWE JSON", record.kid));
    let value: Value = serde_json::from_str(&record.jwe).map_err(|_| corrupt())?;
    let recipients = value
        .get("recipients")
        .and_then(Value::as_array)
        .ok_or_else(corrupt)?;
    Ok(recipients
        .iter()
        .filter_map(|r| r.get("header")?.get("kid")?.as_str().map(str::to_owned))
        .collect())
}

impl Roots {
    /// Opens the root keys; the newest must open, older ones that do not are skipped.
    fn open(unseal: &UnsealKeys, records: &[WrappedKey]) -> Result<Self, BarrierError> {
        let Some(current) = newest(records) else {
            return Err(BarrierError::Corrupt("no root key".into()));
        };
        let Some(current_key) = unwrap_root(unseal, current) else {
            let wrapped_for = root_recipients(current).unwrap_or_default();
            return Err(BarrierError::WrongUnsealKeys(format!(
                "the configured unseal keys do not open the newest root key {}: it is wrapped for \
                 unseal key ids {wrapped_for:?}, the configured ones are {:?}. Check the share or \
                 JWK files and their order; nothing was written",
                current.kid,
                unseal.kids()
            )));
        };
        let mut keys = HashMap::from([(current.kid, current_key)]);
        for r in records.iter().filter(|r| r.kid != current.kid) {
            match unwrap_root(unseal, r) {
                Some(k) => {
                    keys.insert(r.kid, k);
                }
                None => tracing::warn!(
                    kid = %r.kid,
                    "an older root key cannot be opened with the configured unseal keys; data under it is unavailable"
                ),
            }
        }
        Ok(Self {
            keys,
            current: (current.created_at, current.kid),
        })
    }
}

/// The barrier over a [`BarrierStore`]; share it with `Arc`.
pub struct Barrier<S> {
    store: Arc<S>,
    unseal: UnsealKeys,
    roots: RwLock<Roots>,
    cache: Mutex<Cache>,
}

impl<S> fmt::Debug for Barrier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("unseal", &self.unseal)
            .finish_non_exhaustive()
    }
}

impl<S: BarrierStore> Barrier<S> {
    /// Opens the barrier. When root keys exist, proves the unseal keys open the newest one
    /// ([`BarrierError::WrongUnsealKeys`] otherwise, with nothing written). When none exist,
    /// creates the root key under the store's initialisation lock (re-checking under it, so
    /// instances starting together create exactly one); that needs every unseal key.
    ///
    /// # Errors
    /// Wrong or incomplete unseal keys, storage failures, corrupt root keys.
    pub async fn open(
        store: Arc<S>,
        unseal: UnsealKeys,
        cache_capacity: usize,
    ) -> Result<Self, BarrierError> {
        let mut records = store.root_keys().await?;
        if records.is_empty() {
            if !unseal.is_complete() {
                return Err(BarrierError::InvalidUnsealKeys(
                    "the barrier has no root key yet; initialising it needs every share or JWK \
                     file, and some are missing"
                        .into(),
                ));
            }
            let kid = Uuid::now_v7();
            let (bytes, _) = fresh_key(kid)?;
            let record = WrappedKey {
                kid,
                parent_kid: None,
                owner: None,
                jwe: wrap_root(&unseal, kid, &bytes[..])?,
                created_at: now(),
            };
            drop(bytes);
            let s = Arc::clone(&store);
            records = store
                .with_init_lock(move || async move {
                    let existing = s.root_keys().await?;
                    if !existing.is_empty() {
                        return Ok(existing);
                    }
                    s.insert_root_key(&record).await?;
                    tracing::info!(kid = %record.kid, "barrier initialised: root key created");
                    Ok(vec![record])
                })
                .await?;
        }
        let roots = Roots::open(&unseal, &records)?;
        Ok(Self {
            store,
            unseal,
            roots: RwLock::new(roots),
            cache: Mutex::new(Cache {
                keys: Clock::new(cache_capacity),
                owners: HashMap::new(),
            }),
        })
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Loads root keys created by other instances (rotation) that this one has not opened yet.
    async fn refresh_roots(&self) -> Result<Vec<WrappedKey>, BarrierError> {
        let records = self.store.root_keys().await?;
        let known: HashSet<Uuid> = {
            let roots = self.roots.read().unwrap_or_else(PoisonError::into_inner);
            roots.keys.keys().copied().collect()
        };
        let opened: Vec<(&WrappedKey, Arc<Jwk>)> = records
            .iter()
            .filter(|r| !known.contains(&r.kid))
            .filter_map(|r| unwrap_root(&self.unseal, r).map(|k| (r, k)))
            .collect();
        if !opened.is_empty() {
            let mut roots = self.roots.write().unwrap_or_else(PoisonError::into_inner);
            for (r, k) in opened {
                roots.keys.insert(r.kid, k);
                if (r.created_at, r.kid) > roots.current {
                    roots.current = (r.created_at, r.kid);
                }
            }
        }
        Ok(records)
    }

    async fn root_key(&self, kid: Uuid) -> Result<Arc<Jwk>, BarrierError> {
        let get = || {
            let roots = self.roots.read().unwrap_or_else(PoisonError::into_inner);
            roots.keys.get(&kid).cloned()
        };
        if let Some(k) = get() {
            return Ok(k);
        }
        self.refresh_roots().await?;
        get().ok_or_else(|| {
            BarrierError::Corrupt(format!(
                "root key {kid} is missing or cannot be opened with the configured unseal keys"
            ))
        })
    }

    fn current_root(&self) -> Result<(Uuid, Arc<Jwk>), BarrierError> {
        let roots = self.roots.read().unwrap_or_else(PoisonError::into_inner);
        let kid = roots.current.1;
        roots
            .keys
            .get(&kid)
            .map(|k| (kid, Arc::clone(k)))
            .ok_or_else(|| BarrierError::Corrupt("the current root key is not loaded".into()))
    }

    /// A new intermediate key for `tenant` under the current root key (call
    /// [`Self::refresh_roots`] first).
    fn make_intermediate(&self, tenant: TenantId) -> Result<(WrappedKey, Arc<Jwk>), BarrierError> {
        let (root_kid, root) = self.current_root()?;
        let kid = Uuid::now_v7();
        let (bytes, key) = fresh_key(kid)?;
        let jwe = wrap_compact(
            &root,
            root_kid,
            intermediate_binding(kid, tenant),
            &bytes[..],
        )?;
        let record = WrappedKey {
            kid,
            parent_kid: Some(root_kid),
            owner: None,
            jwe,
            created_at: now(),
        };
        Ok((record, key))
    }

    async fn load_intermediate(
        &self,
        tenant: TenantId,
        record: &WrappedKey,
    ) -> Result<Arc<Jwk>, BarrierError> {
        if let Some(k) = self
            .cache()
            .get(tenant, BarrierLayer::Intermediate, record.kid)
        {
            return Ok(k);
        }
        let parent = record.parent_kid.ok_or_else(|| {
            BarrierError::Corrupt(format!("intermediate key {} has no parent", record.kid))
        })?;
        let root = self.root_key(parent).await?;
        let key = unwrap_compact(
            &root,
            parent,
            &intermediate_binding(record.kid, tenant),
            record,
        )?;
        self.cache().put(
            record.kid,
            Cached {
                tenant,
                layer: BarrierLayer::Intermediate,
                owner: None,
                key: Arc::clone(&key),
            },
        );
        Ok(key)
    }

    async fn intermediate_by_kid(
        &self,
        tenant: TenantId,
        kid: Uuid,
    ) -> Result<Arc<Jwk>, BarrierError> {
        if let Some(k) = self.cache().get(tenant, BarrierLayer::Intermediate, kid) {
            return Ok(k);
        }
        let records = self.store.intermediate_keys(tenant).await?;
        let record = records
            .iter()
            .find(|r| r.kid == kid)
            .ok_or_else(|| BarrierError::Corrupt(format!("intermediate key {kid} is missing")))?;
        self.load_intermediate(tenant, record).await
    }

    /// The tenant's current intermediate key, creating the first one on demand.
    async fn current_intermediate(
        &self,
        tenant: TenantId,
    ) -> Result<(Uuid, Arc<Jwk>), BarrierError> {
        let records = self.store.intermediate_keys(tenant).await?;
        let record = match newest(&records) {
            Some(r) => r.clone(),
            None => {
                self.refresh_roots().await?;
                let (record, _) = self.make_intermediate(tenant)?;
                let s = Arc::clone(&self.store);
                let list = self
                    .store
                    .with_init_lock(move || async move {
                        let existing = s.intermediate_keys(tenant).await?;
                        if !existing.is_empty() {
                            return Ok(existing);
                        }
                        s.insert_intermediate_key(tenant, &record).await?;
                        Ok(vec![record])
                    })
                    .await?;
                newest(&list).cloned().ok_or_else(|| {
                    BarrierError::Corrupt("intermediate key vanished after creation".into())
                })?
            }
        };
        let key = self.load_intermediate(tenant, &record).await?;
        Ok((record.kid, key))
    }

    async fn load_content(
        &self,
        tenant: TenantId,
        record: &WrappedKey,
    ) -> Result<Arc<Jwk>, BarrierError> {
        if let Some(k) = self.cache().get(tenant, BarrierLayer::Content, record.kid) {
            return Ok(k);
        }
        let corrupt =
            |what: &str| BarrierError::Corrupt(format!("content key {} has no {what}", record.kid));
        let owner = record.owner.ok_or_else(|| corrupt("owner"))?;
        let parent = record.parent_kid.ok_or_else(|| corrupt("parent"))?;
        let ik = self.intermediate_by_kid(tenant, parent).await?;
        let key = unwrap_compact(
            &ik,
            parent,
            &content_binding(record.kid, tenant, owner),
            record,
        )?;
        self.cache().put(
            record.kid,
            Cached {
                tenant,
                layer: BarrierLayer::Content,
                owner: Some(owner),
                key: Arc::clone(&key),
            },
        );
        Ok(key)
    }

    async fn content_by_kid(&self, tenant: TenantId, kid: Uuid) -> Result<Arc<Jwk>, BarrierError> {
        if let Some(k) = self.cache().get(tenant, BarrierLayer::Content, kid) {
            return Ok(k);
        }
        let record = self
            .store
            .content_key(tenant, kid)
            .await?
            .ok_or(BarrierError::NotFound)?;
        if record.kid != kid {
            return Err(BarrierError::Corrupt(format!(
                "content key lookup for {kid} returned another key"
            )));
        }
        self.load_content(tenant, &record).await
    }

    /// Makes a content key for elastic key `owner`, wrapped under the tenant's current
    /// intermediate key (creating the tenant's first intermediate key on demand), and caches it.
    /// The caller stores [`NewContentKey::record`].
    ///
    /// # Errors
    /// Storage failures, corrupt upper layers, RNG failure.
    pub async fn new_content_key(
        &self,
        tenant: TenantId,
        owner: Uuid,
    ) -> Result<NewContentKey, BarrierError> {
        let (ikid, ik) = self.current_intermediate(tenant).await?;
        let kid = Uuid::now_v7();
        let (bytes, key) = fresh_key(kid)?;
        let jwe = wrap_compact(&ik, ikid, content_binding(kid, tenant, owner), &bytes[..])?;
        let record = WrappedKey {
            kid,
            parent_kid: Some(ikid),
            owner: Some(owner),
            jwe,
            created_at: now(),
        };
        // Only kid → key: the owner mapping is added once the store returns the record, so a
        // failed insert by the caller never makes `seal` use an unstored key.
        self.cache().put(
            kid,
            Cached {
                tenant,
                layer: BarrierLayer::Content,
                owner: Some(owner),
                key: Arc::clone(&key),
            },
        );
        Ok(NewContentKey {
            tenant,
            record,
            key,
        })
    }

    /// Seals `plaintext` (a material key) under a content key just made: compact JWE
    /// `A256KW`/`A256GCM` with `kid` = the content key's kid.
    ///
    /// # Errors
    /// Encryption failure.
    pub fn seal_with(&self, key: &NewContentKey, plaintext: &[u8]) -> Result<String, BarrierError> {
        seal_jwe(&key.key, key.record.kid, plaintext)
    }

    /// Seals `plaintext` under the newest content key of elastic key `owner`.
    ///
    /// # Errors
    /// [`BarrierError::NotFound`] when `owner` has no content key in `tenant`; storage failures;
    /// corrupt layers.
    pub async fn seal(
        &self,
        tenant: TenantId,
        owner: Uuid,
        plaintext: &[u8],
    ) -> Result<String, BarrierError> {
        let warm = {
            let mut cache = self.cache();
            cache
                .owners
                .get(&(tenant, owner))
                .copied()
                .and_then(|kid| Some((kid, cache.get(tenant, BarrierLayer::Content, kid)?)))
        };
        let (kid, key) = match warm {
            Some(found) => found,
            None => {
                let record = self
                    .store
                    .content_key_for_owner(tenant, owner)
                    .await?
                    .ok_or(BarrierError::NotFound)?;
                if record.owner != Some(owner) {
                    return Err(BarrierError::Corrupt(format!(
                        "content key {} does not belong to the elastic key it was found for",
                        record.kid
                    )));
                }
                let key = self.load_content(tenant, &record).await?;
                let mut cache = self.cache();
                if cache.keys.get(&record.kid).is_some() {
                    cache.owners.insert((tenant, owner), record.kid);
                }
                (record.kid, key)
            }
        };
        seal_jwe(&key, kid, plaintext)
    }

    /// Opens data sealed by [`Self::seal`] or [`Self::seal_with`], choosing the content key by the
    /// JWE's `kid`. A JWE of another tenant gives [`BarrierError::NotFound`].
    ///
    /// # Errors
    /// [`BarrierError::NotFound`]; [`BarrierError::Corrupt`] for malformed or tampered input;
    /// storage failures.
    pub async fn unseal(
        &self,
        tenant: TenantId,
        jwe: &str,
    ) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let header = jwe::peek_header(jwe)
            .map_err(|_| BarrierError::Corrupt("sealed data is not a compact JWE".into()))?;
        let kid = header
            .kid()
            .and_then(|k| Uuid::parse_str(k).ok())
            .ok_or_else(|| BarrierError::Corrupt("sealed data names no content key".into()))?;
        let key = self.content_by_kid(tenant, kid).await?;
        let decrypted = {
            let _span = barrier_span("unwrap").entered();
            jwe::decrypt(&key, ALG, ENC, jwe)
        }
        .map_err(|_| {
            BarrierError::Corrupt("sealed data does not decrypt (tampered or damaged)".into())
        })?;
        Ok(Zeroizing::new(decrypted.plaintext))
    }

    /// Creates a new root key wrapped for every configured unseal key; it becomes current. Lower
    /// layers are not re-encrypted. Needs every unseal key the current root key is wrapped for,
    /// so no combination of shares loses access.
    ///
    /// # Errors
    /// [`BarrierError::InvalidUnsealKeys`] when unseal keys are missing; storage failures.
    pub async fn rotate_root(&self) -> Result<Uuid, BarrierError> {
        let records = self.refresh_roots().await?;
        if let Some(current) = newest(&records) {
            let ours: HashSet<&str> = self.unseal.kids().into_iter().collect();
            let needed = root_recipients(current)?;
            let missing = needed.iter().filter(|k| !ours.contains(k.as_str())).count();
            if missing > 0 {
                return Err(BarrierError::InvalidUnsealKeys(format!(
                    "rotating the root key needs every unseal key the current root key is wrapped \
                     for; {missing} of {} are not configured (provide all share or JWK files)",
                    needed.len()
                )));
            }
        }
        let kid = Uuid::now_v7();
        let (bytes, key) = fresh_key(kid)?;
        let record = WrappedKey {
            kid,
            parent_kid: None,
            owner: None,
            jwe: wrap_root(&self.unseal, kid, &bytes[..])?,
            created_at: now(),
        };
        drop(bytes);
        self.store.insert_root_key(&record).await?;
        let mut roots = self.roots.write().unwrap_or_else(PoisonError::into_inner);
        roots.keys.insert(kid, key);
        if (record.created_at, kid) > roots.current {
            roots.current = (record.created_at, kid);
        }
        tracing::info!(kid = %kid, "barrier root key rotated");
        Ok(kid)
    }

    /// Creates a new intermediate key under the current root key for `tenant`, or for every
    /// tenant in the store when `None`; returns the new kids. Content keys are not re-encrypted.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn rotate_intermediate(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<Uuid>, BarrierError> {
        let tenants = match tenant {
            Some(t) => vec![t],
            None => self.store.tenants().await?,
        };
        self.refresh_roots().await?;
        let mut kids = Vec::with_capacity(tenants.len());
        for t in tenants {
            let (record, key) = self.make_intermediate(t)?;
            self.store.insert_intermediate_key(t, &record).await?;
            self.cache().put(
                record.kid,
                Cached {
                    tenant: t,
                    layer: BarrierLayer::Intermediate,
                    owner: None,
                    key,
                },
            );
            tracing::info!(tenant = %t, kid = %record.kid, "barrier intermediate key rotated");
            kids.push(record.kid);
        }
        Ok(kids)
    }

    /// Drops elastic key `owner`'s content keys from the cache (after its purge).
    pub fn forget_owner(&self, tenant: TenantId, owner: Uuid) {
        let mut cache = self.cache();
        cache.owners.remove(&(tenant, owner));
        let kids = cache.keys.keys_where(|_, c| {
            c.tenant == tenant && c.layer == BarrierLayer::Content && c.owner == Some(owner)
        });
        for kid in kids {
            cache.keys.remove(&kid);
        }
    }

    /// Counts for readiness and the admin API.
    pub fn status(&self) -> BarrierStatus {
        let (root_keys, current_root_kid) = {
            let roots = self.roots.read().unwrap_or_else(PoisonError::into_inner);
            (roots.keys.len(), roots.current.1)
        };
        let cache = self.cache();
        BarrierStatus {
            root_keys,
            current_root_kid,
            unseal_keys: self.unseal.len(),
            unseal_complete: self.unseal.is_complete(),
            cached_keys: cache.keys.len(),
            cache_capacity: cache.keys.capacity(),
        }
    }
}

/// Seals material under a content key.
fn seal_jwe(key: &Jwk, kid: Uuid, plaintext: &[u8]) -> Result<String, BarrierError> {
    let mut header = Map::new();
    header.insert("kid".into(), kid.to_string().into());
    let _span = barrier_span("wrap").entered();
    jwe::encrypt(key, ALG, ENC, plaintext, Some(&header)).map_err(crypto("sealing"))
}
