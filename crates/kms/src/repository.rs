//! The repository traits: what the barrier and the key service need from a database.
//!
//! `storage::Store` implements both traits on SQLite and PostgreSQL; tests may implement them in
//! memory. Every tenant-scoped call takes the tenant explicitly: there is no ambient tenant.

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    ElasticKey, ElasticKeyFilter, ElasticKeySortField, KeyInventoryRecord, MaterialKey, Page,
    PageRequest, RealmUserRecord, Sort, Tenant, TenantId, WrappedKey,
};

/// Why a storage call failed. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: the API answers 503 and readyz `degraded`.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated (for example an elastic key name already used in the tenant).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data cannot be decoded (corruption or a newer schema): never the caller's fault.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database (or a tenant's schema) was written by a newer release: a deployment error,
    /// refused before anything is changed.
    #[error("{0}")]
    NewerSchema(String),
}

/// Storage for barrier keys (SPEC §3.4).
pub trait BarrierStore: Send + Sync + 'static {
    /// Runs `f` while holding the process-wide initialisation lock (PostgreSQL advisory lock;
    /// SQLite: the database's own write lock or an in-process mutex). Several instances starting
    /// together on one database initialise the root key exactly once.
    fn with_init_lock<T, F, Fut>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, StoreError>> + Send;

    /// All root keys, oldest first.
    fn root_keys(&self) -> impl Future<Output = Result<Vec<WrappedKey>, StoreError>> + Send;
    /// Stores a new root key.
    fn insert_root_key(
        &self,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Tenants that have been provisioned (have a schema or database).
    fn tenants(&self) -> impl Future<Output = Result<Vec<TenantId>, StoreError>> + Send;
    /// The tenant's intermediate keys, oldest first.
    fn intermediate_keys(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<WrappedKey>, StoreError>> + Send;
    /// Stores a new intermediate key for the tenant.
    fn insert_intermediate_key(
        &self,
        tenant: TenantId,
        key: &WrappedKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A content key by `kid`.
    fn content_key(
        &self,
        tenant: TenantId,
        kid: Uuid,
    ) -> impl Future<Output = Result<Option<WrappedKey>, StoreError>> + Send;
    /// The newest content key protecting an elastic key.
    fn content_key_for_owner(
        &self,
        tenant: TenantId,
        owner: Uuid,
    ) -> impl Future<Output = Result<Option<WrappedKey>, StoreError>> + Send;
}

/// Storage for elastic and material keys (SPEC §3.2, §3.5).
pub trait KeyStore: Send + Sync + 'static {
    /// Creates the tenant's schema or database and runs its migrations; idempotent and cheap when
    /// already done (remembered in memory).
    fn ensure_tenant(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts an elastic key with its content key and first material key in one transaction.
    /// A name already used in the tenant gives [`StoreError::Conflict`].
    fn insert_elastic_key(
        &self,
        tenant: TenantId,
        key: &ElasticKey,
        content_key: &WrappedKey,
        first_material: &MaterialKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// One elastic key.
    fn elastic_key(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<ElasticKey>, StoreError>> + Send;
    /// Elastic keys matching the filter, sorted (ties broken by id), one page.
    fn list_elastic_keys(
        &self,
        tenant: TenantId,
        filter: &ElasticKeyFilter,
        sort: Sort<ElasticKeySortField>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<ElasticKey>, StoreError>> + Send;
    /// Writes description, status, purge_after and updated_at; `false` when the key does not exist.
    fn update_elastic_key(
        &self,
        tenant: TenantId,
        key: &ElasticKey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds a material key version.
    fn insert_material_key(
        &self,
        tenant: TenantId,
        key: &MaterialKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// One material key of an elastic key.
    fn material_key(
        &self,
        tenant: TenantId,
        elastic_key_id: Uuid,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<MaterialKey>, StoreError>> + Send;
    /// The newest non-revoked material key of an elastic key (largest UUIDv7).
    fn latest_material_key(
        &self,
        tenant: TenantId,
        elastic_key_id: Uuid,
    ) -> impl Future<Output = Result<Option<MaterialKey>, StoreError>> + Send;
    /// Material keys, newest first; of one elastic key, or of the whole tenant when `None`.
    fn list_material_keys(
        &self,
        tenant: TenantId,
        elastic_key_id: Option<Uuid>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<MaterialKey>, StoreError>> + Send;

    /// Purges every `pending_delete` elastic key whose `purge_after` is at or before `now`: in one
    /// transaction per key, deletes its material and content keys and marks it `deleted`.
    /// Returns the purged ids.
    fn purge_due(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Uuid>, StoreError>> + Send;

    /// A cheap round trip for readiness.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Tells the other instances sharing this database that an elastic key or its material
    /// changed, so they drop their cached copy. Default: nothing to tell (one process owns the
    /// database).
    fn announce_key_change(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (tenant, id);
        async { Ok(()) }
    }
}

/// What the cryptographic inventory needs: every elastic key of a tenant with its version count
/// and last use, and the flush of last-use times (see `inventory::last_use`).
pub trait InventoryStore: Send + Sync + 'static {
    /// Every elastic key of the tenant (tombstones of purged keys included), oldest first, with
    /// its number of material keys and its stored last use. An unprovisioned tenant has none.
    fn inventory_keys(
        &self,
        tenant: TenantId,
    ) -> impl Future<Output = Result<Vec<KeyInventoryRecord>, StoreError>> + Send;

    /// Moves each key's `last_used_at` forward to the given time (never back), in one
    /// transaction; keys that no longer exist are skipped. Returns how many rows changed.
    fn record_last_use(
        &self,
        tenant: TenantId,
        uses: &[(Uuid, OffsetDateTime)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// System-wide directory: named tenants and the database realm's users (SPEC §3.6).
pub trait DirectoryStore: Send + Sync + 'static {
    /// A tenant by name.
    fn tenant_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    /// A tenant by id.
    fn tenant_by_id(
        &self,
        id: TenantId,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;
    /// The tenant of that name, created (UUIDv4, schema or database provisioned) if it does not
    /// exist yet. Safe when several instances call it at once: they all get the same tenant.
    fn ensure_named_tenant(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Tenant, StoreError>> + Send;
    /// Every named tenant, by name.
    fn named_tenants(&self) -> impl Future<Output = Result<Vec<Tenant>, StoreError>> + Send;

    /// A realm user by username.
    fn realm_user(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<RealmUserRecord>, StoreError>> + Send;
    /// A realm user by TLS client certificate subject.
    fn realm_user_by_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<RealmUserRecord>, StoreError>> + Send;
    /// Realm users sorted by username, one page.
    fn list_realm_users(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<RealmUserRecord>, StoreError>> + Send;
    /// Adds a user; an existing username (or certificate subject) gives [`StoreError::Conflict`].
    fn insert_realm_user(
        &self,
        user: &RealmUserRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces a user's fields when its stored `version` equals `expected_version` (the record
    /// carries the new version); `false` when the user does not exist or changed meanwhile.
    fn update_realm_user(
        &self,
        user: &RealmUserRecord,
        expected_version: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes a user; `false` when there was none.
    fn delete_realm_user(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Tells the other instances sharing this database that a user changed, so they drop its
    /// cached credentials. Default: nothing to tell (one process owns the database).
    fn announce_user_change(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = username;
        async { Ok(()) }
    }
}
