//! The key service: elastic and material keys and the crypto operations on them (SPEC §3.2).
//!
//! Business rules live here, free of HTTP and SQL: status rules, flags, context binding, key
//! selection by `kid`, scope checks. Every call takes the [`Principal`]; the tenant always comes
//! from it. Unsealed material keys are cached (bounded, keyed by tenant and material key id), so a
//! warm encrypt does no unwrapping at all; the barrier caches the layers above.

pub mod algorithm;
mod audited;
mod crypto;
mod error;
mod materials;
mod metadata;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use cryptoutil_jose::Jwk;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{AuditSink, KeyOperation};
use crate::barrier::Barrier;
use crate::inventory::last_use::LastUse;
use crate::model::{
    ElasticKey, ElasticKeyFilter, ElasticKeySortField, KeyStatus, MaterialKey, Page, PageRequest,
    Principal, Sort, TenantId,
};
use crate::repository::{BarrierStore, KeyStore};
use crate::scopes;
pub use error::KeyError;

/// Longest elastic key name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Longest encryption context, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 1024;
/// The protected header member that carries the encryption context.
pub const CONTEXT_HEADER: &str = "context";

/// A request to create an elastic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewElasticKey {
    /// Unique in the tenant, 1–128 characters, no control characters.
    pub name: String,
    /// Up to 1024 characters.
    pub description: String,
    /// `None` = `A256GCM/A256KW`.
    pub algorithm: Option<String>,
    /// See [`ElasticKey`].
    pub versioning_allowed: bool,
    /// See [`ElasticKey`].
    pub import_allowed: bool,
    /// See [`ElasticKey`].
    pub export_allowed: bool,
}

/// A change to an elastic key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElasticKeyUpdate {
    /// New description.
    pub description: Option<String>,
    /// `active` or `disabled` (also restores a `pending_delete` key).
    pub status: Option<KeyStatus>,
}

/// A generated data key.
pub struct GeneratedDataKey {
    /// The data key's JWK (private form) encrypted under the elastic key: compact JWE.
    pub encrypted_jwk: String,
    /// The clear JWK, only when asked for.
    pub jwk: Option<Zeroizing<String>>,
}

/// Settings the service needs.
#[derive(Debug, Clone, Copy)]
pub struct KeyServiceOptions {
    /// How long a deleted elastic key stays restorable before it is purged.
    pub purge_delay: time::Duration,
    /// Unsealed material keys kept in memory (also the bound of the elastic key metadata cache).
    pub material_cache_capacity: NonZeroUsize,
    /// How long crypto operations may use cached elastic key metadata before reading it again
    /// (zero: always read the database). See [`metadata`] for the consistency rules.
    pub metadata_cache_ttl: std::time::Duration,
}

/// Unsealed material keys by (tenant, elastic key, material key): a hit proves the material key
/// belongs to the elastic key the caller named.
type MaterialCache = crate::cache::Clock<(TenantId, Uuid, Uuid), Arc<Jwk>>;

/// The KMS's business layer.
pub struct KeyService<S> {
    store: Arc<S>,
    barrier: Arc<Barrier<S>>,
    materials: Mutex<MaterialCache>,
    metadata: metadata::MetadataCache,
    options: KeyServiceOptions,
    audit: Arc<dyn AuditSink>,
    last_use: Arc<LastUse>,
}

impl<S> std::fmt::Debug for KeyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore + BarrierStore> KeyService<S> {
    /// A service over an opened barrier and its store.
    pub fn new(store: Arc<S>, barrier: Arc<Barrier<S>>, options: KeyServiceOptions) -> Self {
        Self {
            store,
            barrier,
            materials: Mutex::new(MaterialCache::new(options.material_cache_capacity.get())),
            metadata: metadata::MetadataCache::new(
                options.material_cache_capacity.get(),
                options.metadata_cache_ttl,
            ),
            options,
            audit: crate::audit::default_sink(),
            last_use: Arc::new(LastUse::new()),
        }
    }

    /// Writes this service's audit events to `sink` instead of the default tracing sink.
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// Where this service's audit events go (the admin API writes its barrier events there too).
    pub fn audit_sink(&self) -> &Arc<dyn AuditSink> {
        &self.audit
    }

    /// The barrier (for the admin API's rotations).
    pub fn barrier(&self) -> &Arc<Barrier<S>> {
        &self.barrier
    }

    /// When each elastic key was last used, not yet written to the store (the inventory reads
    /// it; a background task flushes it).
    pub fn last_use(&self) -> &Arc<LastUse> {
        &self.last_use
    }

    /// The store (for readiness checks).
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Creates an elastic key and its first material key.
    pub async fn create(
        &self,
        who: &Principal,
        new: NewElasticKey,
    ) -> Result<ElasticKey, KeyError> {
        let result = self.create_unaudited(who, new).await;
        let (elastic, material) = match &result {
            Ok((key, material)) => (Some(key.id), Some(*material)),
            Err(_) => (None, None),
        };
        self.record(
            who,
            KeyOperation::Create,
            elastic,
            material,
            result.as_ref().err(),
        );
        result.map(|(key, _)| key)
    }

    async fn create_unaudited(
        &self,
        who: &Principal,
        new: NewElasticKey,
    ) -> Result<(ElasticKey, Uuid), KeyError> {
        need(who, scopes::ELASTIC_KEY_CREATE)?;
        let name = check_name(&new.name)?;
        let description = check_description(&new.description)?;
        let algorithm_text = new.algorithm.as_deref().unwrap_or("A256GCM/A256KW");
        let (algorithm, _) = algorithm::parse(algorithm_text)?;
        let tenant = who.tenant;
        self.store.ensure_tenant(tenant).await?;
        let now = now();
        let key = ElasticKey {
            id: Uuid::now_v7(),
            name,
            description,
            algorithm: algorithm.to_string(),
            versioning_allowed: new.versioning_allowed,
            import_allowed: new.import_allowed,
            export_allowed: new.export_allowed,
            status: KeyStatus::Active,
            created_at: now,
            updated_at: now,
            purge_after: None,
        };
        let content_key = self
            .barrier
            .new_content_key(tenant, key.id)
            .await
            .map_err(barrier_error)?;
        let jwk = generate_for(algorithm).await?;
        let (material, jwk) = self.material_from(&content_key, key.id, jwk, None)?;
        self.store
            .insert_elastic_key(tenant, &key, content_key.record(), &material)
            .await?;
        self.cache_material(tenant, key.id, material.id, jwk);
        Ok((key, material.id))
    }

    /// Reads one elastic key.
    pub async fn get(&self, who: &Principal, id: Uuid) -> Result<ElasticKey, KeyError> {
        need(who, scopes::ELASTIC_KEY_READ)?;
        self.elastic_key(who.tenant, id).await
    }

    /// Lists elastic keys.
    pub async fn list(
        &self,
        who: &Principal,
        filter: &ElasticKeyFilter,
        sort: Sort<ElasticKeySortField>,
        page: PageRequest,
    ) -> Result<Page<ElasticKey>, KeyError> {
        need(who, scopes::ELASTIC_KEY_READ)?;
        self.store.ensure_tenant(who.tenant).await?;
        Ok(self
            .store
            .list_elastic_keys(who.tenant, filter, sort, page)
            .await?)
    }

    /// Changes the description and/or status (`active` ⇄ `disabled`; either restores a key
    /// pending deletion).
    pub async fn update(
        &self,
        who: &Principal,
        id: Uuid,
        change: ElasticKeyUpdate,
    ) -> Result<ElasticKey, KeyError> {
        let result = self.update_unaudited(who, id, change).await;
        self.record(
            who,
            KeyOperation::Update,
            Some(id),
            None,
            result.as_ref().err(),
        );
        result
    }

    async fn update_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        change: ElasticKeyUpdate,
    ) -> Result<ElasticKey, KeyError> {
        need(who, scopes::ELASTIC_KEY_UPDATE)?;
        let mut key = self.elastic_key(who.tenant, id).await?;
        if key.status == KeyStatus::Deleted {
            return Err(KeyError::Conflict(
                "the elastic key has been purged".to_owned(),
            ));
        }
        if let Some(description) = &change.description {
            key.description = check_description(description)?;
        }
        match change.status {
            None => {}
            Some(status @ (KeyStatus::Active | KeyStatus::Disabled)) => {
                key.status = status;
                key.purge_after = None;
            }
            Some(_) => {
                return Err(KeyError::Invalid(
                    "status can be set to active or disabled; use DELETE to schedule deletion"
                        .to_owned(),
                ));
            }
        }
        key.updated_at = now();
        self.save(who, &key).await?;
        Ok(key)
    }

    /// Schedules deletion: the key becomes `pending_delete` and is purged after the configured
    /// delay unless restored with [`Self::update`]. Idempotent.
    pub async fn delete(&self, who: &Principal, id: Uuid) -> Result<ElasticKey, KeyError> {
        let result = self.delete_unaudited(who, id).await;
        self.record(
            who,
            KeyOperation::Delete,
            Some(id),
            None,
            result.as_ref().err(),
        );
        result
    }

    async fn delete_unaudited(&self, who: &Principal, id: Uuid) -> Result<ElasticKey, KeyError> {
        need(who, scopes::ELASTIC_KEY_DELETE)?;
        let mut key = self.elastic_key(who.tenant, id).await?;
        if matches!(key.status, KeyStatus::PendingDelete | KeyStatus::Deleted) {
            return Ok(key);
        }
        let now = now();
        key.status = KeyStatus::PendingDelete;
        key.purge_after = Some(now + self.options.purge_delay);
        key.updated_at = now;
        self.save(who, &key).await?;
        Ok(key)
    }

    /// Adds a generated material key version (needs `versioning_allowed` and `active`).
    /// Schedulers rotate as [`crate::system::principal`].
    pub async fn rotate(&self, who: &Principal, id: Uuid) -> Result<MaterialKey, KeyError> {
        let result = self.rotate_unaudited(who, id).await;
        self.audited_material(who, KeyOperation::Rotate, id, result)
    }

    async fn rotate_unaudited(&self, who: &Principal, id: Uuid) -> Result<MaterialKey, KeyError> {
        need(who, scopes::MATERIAL_KEY_ROTATE)?;
        let key = self.elastic_key(who.tenant, id).await?;
        require_active(&key)?;
        if !key.versioning_allowed {
            return Err(KeyError::Conflict(
                "this elastic key does not allow new versions (versioning_allowed is false)"
                    .to_owned(),
            ));
        }
        let (algorithm, _) = algorithm::parse(&key.algorithm)?;
        let jwk = generate_for(algorithm).await?;
        self.add_material(who, &key, jwk, None).await
    }

    /// Imports caller-supplied material (a private JWK) as a new version (needs `import_allowed`
    /// and `active`). The JWK must fit the elastic key's algorithm.
    pub async fn import(
        &self,
        who: &Principal,
        id: Uuid,
        jwk_json: &str,
    ) -> Result<MaterialKey, KeyError> {
        let result = self.import_unaudited(who, id, jwk_json).await;
        self.audited_material(who, KeyOperation::Import, id, result)
    }

    async fn import_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        jwk_json: &str,
    ) -> Result<MaterialKey, KeyError> {
        need(who, scopes::MATERIAL_KEY_CREATE)?;
        let key = self.elastic_key(who.tenant, id).await?;
        require_active(&key)?;
        if !key.import_allowed {
            return Err(KeyError::Conflict(
                "this elastic key does not allow imports (import_allowed is false)".to_owned(),
            ));
        }
        let (algorithm, purpose) = algorithm::parse(&key.algorithm)?;
        let mut jwk = Jwk::from_json(jwk_json)
            .map_err(|e| KeyError::Invalid(format!("the body is not a usable JWK: {e}")))?;
        // The KMS owns the key's identity and usage: a caller's kid, alg, use or key_ops are replaced.
        jwk.set_kid(None);
        jwk.set_key_ops(None);
        set_usage(&mut jwk, algorithm);
        algorithm::check_import(&jwk, purpose)?;
        self.add_material(who, &key, jwk, Some(now())).await
    }

    /// One material key: metadata and public JWK only.
    pub async fn material_key(
        &self,
        who: &Principal,
        id: Uuid,
        material_id: Uuid,
    ) -> Result<MaterialKey, KeyError> {
        need(who, scopes::MATERIAL_KEY_READ)?;
        self.elastic_key(who.tenant, id).await?;
        self.store
            .material_key(who.tenant, id, material_id)
            .await?
            .ok_or_else(|| KeyError::NotFound("no such material key".to_owned()))
    }

    /// Material keys of one elastic key, or of the tenant, newest first.
    pub async fn material_keys(
        &self,
        who: &Principal,
        id: Option<Uuid>,
        page: PageRequest,
    ) -> Result<Page<MaterialKey>, KeyError> {
        need(who, scopes::MATERIAL_KEY_READ)?;
        match id {
            Some(id) => {
                self.elastic_key(who.tenant, id).await?;
            }
            None => self.store.ensure_tenant(who.tenant).await?,
        }
        Ok(self.store.list_material_keys(who.tenant, id, page).await?)
    }

    /// Purges every tenant's elastic keys whose deletion delay has passed, as the system
    /// principal (audited so). Returns how many.
    pub async fn purge_due(&self) -> Result<usize, KeyError> {
        let mut purged = 0;
        for tenant in self.store.tenants().await? {
            let system = crate::system::principal(tenant);
            let due = match self.store.purge_due(tenant, now()).await {
                Ok(due) => due,
                Err(e) => {
                    let e = KeyError::from(e);
                    self.record(&system, KeyOperation::Purge, None, None, Some(&e));
                    return Err(e);
                }
            };
            for id in due {
                self.barrier.forget_owner(tenant, id);
                self.forget_materials_of(tenant, id);
                self.key_changed(tenant, id).await;
                self.record(&system, KeyOperation::Purge, Some(id), None, None);
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// The elastic key as stored now (management operations, which write what they read, never
    /// use the metadata cache).
    async fn elastic_key(&self, tenant: TenantId, id: Uuid) -> Result<ElasticKey, KeyError> {
        self.store.ensure_tenant(tenant).await?;
        self.store
            .elastic_key(tenant, id)
            .await?
            .ok_or_else(|| KeyError::NotFound("no such elastic key".to_owned()))
    }

    /// The elastic key for a crypto operation: from the metadata cache when fresh.
    async fn key_for_use(&self, tenant: TenantId, id: Uuid) -> Result<Arc<ElasticKey>, KeyError> {
        if let Some(key) = self.metadata.key(tenant, id) {
            return Ok(key);
        }
        // Boxed: the database read's future is large, and a warm request should not carry
        // (and copy) it.
        Box::pin(async {
            let before = self.metadata.generation();
            let key = Arc::new(self.elastic_key(tenant, id).await?);
            self.metadata.put_key(before, tenant, key.clone());
            Ok(key)
        })
        .await
    }

    /// The elastic key and its newest material key for a crypto operation that makes something
    /// new (encrypt, sign, generate): from the metadata cache when fresh.
    async fn key_with_latest(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<(Arc<ElasticKey>, Arc<MaterialKey>), KeyError> {
        if let Some(found) = self.metadata.latest(tenant, id) {
            return Ok(found);
        }
        // Boxed like `key_for_use`'s read.
        Box::pin(async {
            let before = self.metadata.generation();
            let key = Arc::new(self.elastic_key(tenant, id).await?);
            let latest = self
                .store
                .latest_material_key(tenant, id)
                .await?
                .ok_or_else(|| {
                    KeyError::Internal(format!("elastic key {id} has no material key"))
                })?;
            let latest = Arc::new(latest);
            self.metadata
                .put_latest(before, tenant, key.clone(), latest.clone());
            Ok((key, latest))
        })
        .await
    }

    /// After a write to an elastic key or its material (whatever the write's outcome): drops it
    /// from this instance's metadata cache and tells the instances sharing the database.
    async fn key_changed(&self, tenant: TenantId, id: Uuid) {
        self.metadata.forget(tenant, id);
        if let Err(e) = self.store.announce_key_change(tenant, id).await {
            // The write stands; other instances see it when their cached copy expires.
            tracing::warn!(tenant = %tenant, elastic_key = %id, error = %e,
                "could not announce an elastic key change to other instances");
        }
    }

    /// A change announced by another instance (`None`: announcements may have been missed).
    pub fn key_changed_elsewhere(&self, change: Option<(TenantId, Uuid)>) {
        match change {
            Some((tenant, id)) => self.metadata.forget(tenant, id),
            None => self.metadata.forget_all(),
        }
    }

    async fn save(&self, who: &Principal, key: &ElasticKey) -> Result<(), KeyError> {
        let saved = self.store.update_elastic_key(who.tenant, key).await;
        self.key_changed(who.tenant, key.id).await;
        if !saved? {
            return Err(KeyError::NotFound("no such elastic key".to_owned()));
        }
        Ok(())
    }

    async fn add_material(
        &self,
        who: &Principal,
        key: &ElasticKey,
        jwk: Jwk,
        import_date: Option<OffsetDateTime>,
    ) -> Result<MaterialKey, KeyError> {
        let tenant = who.tenant;
        let id = Uuid::now_v7();
        let jwk = with_identity(jwk, id);
        let sealed = self
            .barrier
            .seal(tenant, key.id, jwk.to_json(true).as_bytes())
            .await
            .map_err(barrier_error)?;
        let material = materials::material_record(id, key.id, &jwk, import_date, sealed)?;
        let inserted = self.store.insert_material_key(tenant, &material).await;
        self.key_changed(tenant, key.id).await;
        inserted?;
        self.cache_material(tenant, key.id, id, Arc::new(jwk));
        Ok(material)
    }
}

/// A fresh key for an elastic key algorithm, generated off the async workers.
async fn generate_for(algorithm: cryptoutil_jose::KeyAlgorithm) -> Result<Jwk, KeyError> {
    materials::generate_off_thread(move || {
        Jwk::generate_for(algorithm)
            .map_err(|e| KeyError::Internal(format!("key generation failed: {e}")))
    })
    .await
}

fn need(who: &Principal, scope: &'static str) -> Result<(), KeyError> {
    Ok(scopes::require(who, scope)?)
}

fn require_active(key: &ElasticKey) -> Result<(), KeyError> {
    match key.status {
        KeyStatus::Active => Ok(()),
        other => Err(KeyError::Conflict(format!(
            "the elastic key is {}: only active keys encrypt, sign, generate or take new versions",
            other.as_str()
        ))),
    }
}

fn require_usable(key: &ElasticKey) -> Result<(), KeyError> {
    match key.status {
        KeyStatus::Active | KeyStatus::Disabled => Ok(()),
        other => Err(KeyError::Conflict(format!(
            "the elastic key is {}: it can no longer decrypt or verify",
            other.as_str()
        ))),
    }
}

fn wrong_purpose(operation: &str, kind: &str) -> KeyError {
    KeyError::Conflict(format!("cannot {operation} with {kind} elastic key"))
}

fn check_name(name: &str) -> Result<String, KeyError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(KeyError::Invalid(format!(
            "name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(KeyError::Invalid(
            "name must not contain control characters or leading/trailing spaces".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

fn check_description(text: &str) -> Result<String, KeyError> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(KeyError::Invalid(format!(
            "description must have at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(KeyError::Invalid(
            "description must not contain control characters".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

fn check_context(context: Option<&str>) -> Result<(), KeyError> {
    match context {
        Some(c) if c.len() > MAX_CONTEXT_BYTES => Err(KeyError::Invalid(format!(
            "context must have at most {MAX_CONTEXT_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

fn header_for(material_id: Uuid, context: Option<&str>) -> Result<Map<String, Value>, KeyError> {
    check_context(context)?;
    let mut header = Map::new();
    header.insert("kid".to_owned(), Value::String(material_id.to_string()));
    if let Some(context) = context {
        header.insert(CONTEXT_HEADER.to_owned(), Value::String(context.to_owned()));
    }
    Ok(header)
}

fn kid_of(kid: Option<&str>) -> Result<Uuid, KeyError> {
    let kid = kid.ok_or_else(|| KeyError::Invalid("the token has no kid header".to_owned()))?;
    crate::ids::parse_uuid(kid)
        .ok_or_else(|| KeyError::Invalid("the token's kid is not a material key id".to_owned()))
}

/// The key used for encrypting or verifying: the public half for asymmetric keys, the key itself
/// (borrowed: no copy of secret material per request) for symmetric ones.
fn public_for(jwk: &Jwk) -> Result<std::borrow::Cow<'_, Jwk>, KeyError> {
    if algorithm::is_asymmetric(jwk) {
        jwk.to_public()
            .map(std::borrow::Cow::Owned)
            .map_err(|e| KeyError::Internal(format!("no public key: {e}")))
    } else {
        Ok(std::borrow::Cow::Borrowed(jwk))
    }
}

fn public_jwk_text(jwk: &Jwk) -> Result<Option<String>, KeyError> {
    if !algorithm::is_asymmetric(jwk) {
        return Ok(None);
    }
    let public = public_for(jwk)?;
    Ok(Some(public.to_json(false).to_string()))
}

fn with_identity(mut jwk: Jwk, material_id: Uuid) -> Jwk {
    jwk.set_kid(Some(material_id.to_string()));
    jwk
}

fn set_usage(jwk: &mut Jwk, algorithm: cryptoutil_jose::KeyAlgorithm) {
    match algorithm {
        cryptoutil_jose::KeyAlgorithm::Jws(a) => {
            jwk.set_alg(Some(a.name().to_owned()));
            jwk.set_key_use(Some("sig".to_owned()));
        }
        cryptoutil_jose::KeyAlgorithm::Jwe { alg, .. } => {
            jwk.set_alg(Some(alg.name().to_owned()));
            jwk.set_key_use(Some("enc".to_owned()));
        }
    }
}

fn barrier_error(e: crate::barrier::BarrierError) -> KeyError {
    match e {
        crate::barrier::BarrierError::Store(store) => store.into(),
        other => KeyError::Internal(format!("barrier: {other}")),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
