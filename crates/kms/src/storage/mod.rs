//! SQLite and PostgreSQL storage: [`Store`] implements [`BarrierStore`], [`KeyStore`] and
//! [`DirectoryStore`](crate::repository::DirectoryStore).
//!
//! # Layout
//!
//! Tenants are isolated at the database level: every tenant-scoped query goes to the tenant's own
//! PostgreSQL schema or SQLite database, named from [`TenantId::hex`] only.
//!
//! | | PostgreSQL | SQLite file `dir/kms.db` | SQLite `sqlite::memory:` |
//! |---|---|---|---|
//! | system | schema `kms_system` | `dir/kms.db` | `file:cryptoutil-kms-<store>-main` |
//! | tenant | schema `tenant_<hex>` | `dir/kms.tenant_<hex>.db` | `file:cryptoutil-kms-<store>-tenant_<hex>` |
//!
//! In-memory databases are named shared-cache databases unique to each [`Store`] (two stores in one
//! process never share data) and live until [`Store::close`] or drop.
//!
//! Tables. System: `root_keys`, `tenants` (the registry of provisioned tenants, with an optional
//! unique `name` for the directory), `kms_realm_users` (the database realm: `roles` and `tenants`
//! as JSON text arrays, `certificate_subject` unique when present, `version` for compare-and-set),
//! `schema_migrations`. Tenant: `intermediate_keys`, `content_keys` (both shaped like `root_keys`:
//! `kid, parent_kid, owner, jwe, created_at`), `elastic_keys` (name unique; `last_used_at`, written by the last-use flush), `material_keys`
//! (foreign key to `elastic_keys`), `schema_migrations`.
//!
//! Encoding, identical on both backends: UUIDs as canonical lowercase hyphenated text (whose
//! order is the UUID order, so "newest UUIDv7" is `MAX(id)`; PostgreSQL text columns use
//! `COLLATE "C"` so sorting matches SQLite), timestamps as `BIGINT` nanoseconds since the epoch
//! (exact round trip for 1678..2262; other instants are refused with [`StoreError::Corrupt`]),
//! booleans as `BOOLEAN`.
//!
//! # Directory
//!
//! Named tenants are rows of the `tenants` registry with a name; tenants provisioned by
//! [`KeyStore::ensure_tenant`] alone stay nameless and are invisible to the directory
//! (`tenant_by_id` and `named_tenants` skip them). `ensure_named_tenant` claims the name with
//! `INSERT … ON CONFLICT (name) DO NOTHING`, re-reads it (so racing instances all get the winner)
//! and then provisions that tenant like [`KeyStore::ensure_tenant`]; a registered tenant whose
//! provisioning was interrupted is provisioned by its next use. [`Store::drop_tenant`] frees the
//! name. Names, usernames and subjects are stored as given: the KMS validates them first.
//!
//! # Migrations
//!
//! The shared runner of `cryptoutil-database`, with the KMS's plans ([`migrations`]): a list of
//! `(version, sqlite_sql, postgres_sql)` per scope and a `schema_migrations` table in each
//! schema/database. System migrations run in [`Store::connect`]; tenant migrations run the first
//! time a tenant is used by this process ([`KeyStore::ensure_tenant`], or any tenant-scoped call).
//! On PostgreSQL each run is one transaction under a transaction-scoped advisory lock, so
//! instances starting together are safe. A schema newer than this build is refused with
//! [`StoreError::Corrupt`] naming both versions.
//!
//! # Tenants that were never provisioned
//!
//! Reads of an unregistered tenant return nothing (empty lists, `None`) without creating
//! anything; writes provision the tenant first, as [`KeyStore::ensure_tenant`] does.
//!
//! # The initialisation lock
//!
//! PostgreSQL: `pg_advisory_lock` held on a dedicated connection while the closure runs, released
//! afterwards even when it fails; if the call is cancelled the connection is closed, which releases
//! the lock. The closure's own queries use other pooled connections (hence `max_connections >= 2`).
//! SQLite: an in-process mutex per database file; a SQLite file is owned by one process. The lock
//! is not reentrant: the closure must not call `with_init_lock` again.
//!
//! # Errors
//!
//! Unreachable database, pool timeout (`acquire_timeout`), I/O, busy/locked →
//! [`StoreError::Unavailable`]; the pool reconnects by itself when the database returns. Unique and
//! foreign-key violations → [`StoreError::Conflict`]. Undecodable rows and unexpected database
//! errors → [`StoreError::Corrupt`].

mod directory;
mod error;
pub mod migrations;
mod ops;
mod postgres;
mod settings;
mod sqlite;

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    ElasticKey, ElasticKeyFilter, ElasticKeySortField, KeyInventoryRecord, MaterialKey, Page,
    PageRequest, Sort, TenantId, WrappedKey,
};
use crate::repository::{BarrierStore, InventoryStore, KeyStore, StoreError};

pub use settings::{DEFAULT_DATABASE_URL, DatabaseSettings, KmsDatabase};

use cryptoutil_database::Target;
use postgres::PgBackend;
use sqlite::SqliteBackend;

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (file or in-memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The PostgreSQL channel on which instances announce realm user changes.
pub const USER_CHANGES_CHANNEL: &str = "cryptoutil_kms_realm_users";

/// The PostgreSQL channel on which instances announce elastic key changes (payload
/// `<tenant id>/<elastic key id>`).
pub const KEY_CHANGES_CHANNEL: &str = "cryptoutil_kms_elastic_keys";

/// The KMS storage on SQLite or PostgreSQL. Cheap to clone: clones share the pools.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

// One value per store, behind an `Arc`: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database named by the settings and runs the system migrations. An unreachable
    /// database gives [`StoreError::Unavailable`] within about `acquire_timeout`.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let target = settings.target().map_err(StoreError::Unavailable)?;
        let max = settings.max_connections.max(2);
        let timeout = settings.acquire_timeout.get();
        let inner = match target {
            Target::SqliteMemory => {
                Inner::Sqlite(SqliteBackend::connect(None, max, timeout).await?)
            }
            Target::SqliteFile(path) => {
                Inner::Sqlite(SqliteBackend::connect(Some(&path), max, timeout).await?)
            }
            Target::Postgres => {
                Inner::Postgres(PgBackend::connect(settings.url.expose(), max, timeout).await?)
            }
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every pool (in-memory databases are discarded). Later calls fail with
    /// [`StoreError::Unavailable`].
    pub async fn close(&self) {
        match &*self.inner {
            Inner::Sqlite(b) => b.close().await,
            Inner::Postgres(b) => b.pool.close().await,
        }
    }

    /// Tells every instance sharing this database that a realm user changed (PostgreSQL
    /// `NOTIFY` on [`USER_CHANGES_CHANNEL`]); a no-op on SQLite, which one process owns.
    pub async fn announce_user_change(&self, username: &str) -> Result<(), StoreError> {
        self.announce(USER_CHANGES_CHANNEL, username).await
    }

    /// Calls `changed(Some(username))` for every user change announced by any instance, and
    /// `changed(None)` when announcements may have been missed (the listening connection was
    /// lost and re-established), until the store is closed. PostgreSQL only; on SQLite it
    /// returns at once.
    pub async fn follow_user_changes(&self, changed: impl Fn(Option<&str>) + Send) {
        self.follow(USER_CHANGES_CHANNEL, "realm user", changed)
            .await;
    }

    /// Like [`Self::follow_user_changes`], for elastic key changes (announced by
    /// [`KeyStore::announce_key_change`]); `changed(None)` also for a malformed announcement.
    pub async fn follow_key_changes(&self, changed: impl Fn(Option<(TenantId, Uuid)>) + Send) {
        // A malformed announcement says that something changed: drop everything.
        self.follow(KEY_CHANGES_CHANNEL, "elastic key", move |payload| {
            changed(payload.and_then(parse_key_change));
        })
        .await;
    }

    async fn announce(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        match &*self.inner {
            Inner::Sqlite(_) => Ok(()),
            Inner::Postgres(b) => sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&b.pool)
                .await
                .map(drop)
                .map_err(error::map),
        }
    }

    async fn follow(&self, channel: &str, what: &str, changed: impl Fn(Option<&str>) + Send) {
        let Inner::Postgres(b) = &*self.inner else {
            return;
        };
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&b.pool).await {
                Ok(l) => l,
                Err(_) if b.pool.is_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %error::map(e), "cannot listen for {what} changes; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(channel).await {
                tracing::warn!(error = %error::map(e), "cannot listen for {what} changes; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            // Anything announced before this point may have been missed.
            changed(None);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => changed(Some(notification.payload())),
                    // The connection dropped; try_recv reconnects on the next call.
                    Ok(None) => changed(None),
                    Err(_) if b.pool.is_closed() => return,
                    Err(_) => break,
                }
            }
        }
    }

    /// Deletes a tenant's schema or database with everything in it (intermediate, content,
    /// elastic and material keys) and its registry entry; `true` when it was registered. For
    /// `--reset-demo` and tests. Other instances sharing the PostgreSQL database must not use the
    /// tenant meanwhile.
    pub async fn drop_tenant(&self, tenant: TenantId) -> Result<bool, StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => b.drop_tenant(tenant).await,
            Inner::Postgres(b) => b.drop_tenant(tenant).await,
        }
    }
}

/// The payload announcing a change to one elastic key.
fn key_change_payload(tenant: TenantId, id: Uuid) -> String {
    format!("{}/{id}", tenant.0)
}

fn parse_key_change(payload: &str) -> Option<(TenantId, Uuid)> {
    let (tenant, id) = payload.split_once('/')?;
    Some((TenantId(tenant.parse().ok()?), id.parse().ok()?))
}

/// Runs `$body` with `$pool` and `$p` (table prefix) bound for the tenant and `$ops` naming the
/// backend's operations; an unprovisioned tenant yields `Ok($absent)` unless `$create`.
macro_rules! on_tenant {
    ($store:expr, $tenant:expr, $create:expr, $absent:expr, |$ops:ident, $pool:ident, $p:ident| $body:expr) => {
        match &*$store.inner {
            Inner::Sqlite(b) => match b.tenant_pool($tenant, $create).await? {
                Some(pool) => {
                    use ops::sqlite as $ops;
                    let $pool = &pool;
                    let $p = "";
                    $body
                }
                None => Ok($absent),
            },
            Inner::Postgres(b) => match b.tenant_prefix($tenant, $create).await? {
                Some(prefix) => {
                    use ops::postgres as $ops;
                    let $pool = &b.pool;
                    let $p = prefix.as_str();
                    $body
                }
                None => Ok($absent),
            },
        }
    };
}

impl BarrierStore for Store {
    async fn with_init_lock<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        match &*self.inner {
            Inner::Sqlite(b) => {
                let _guard = b.init_lock.lock().await;
                f().await
            }
            Inner::Postgres(b) => b.with_init_lock(f).await,
        }
    }

    async fn root_keys(&self) -> Result<Vec<WrappedKey>, StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => ops::sqlite::wrapped_all(&b.main, "root_keys").await,
            Inner::Postgres(b) => ops::postgres::wrapped_all(&b.pool, "kms_system.root_keys").await,
        }
    }

    async fn insert_root_key(&self, key: &WrappedKey) -> Result<(), StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => ops::sqlite::wrapped_insert(&b.main, "root_keys", key).await,
            Inner::Postgres(b) => {
                ops::postgres::wrapped_insert(&b.pool, "kms_system.root_keys", key).await
            }
        }
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => ops::sqlite::tenants(&b.main, "").await,
            Inner::Postgres(b) => ops::postgres::tenants(&b.pool, postgres::SYSTEM).await,
        }
    }

    async fn intermediate_keys(&self, tenant: TenantId) -> Result<Vec<WrappedKey>, StoreError> {
        on_tenant!(self, tenant, false, Vec::new(), |o, pool, p| {
            o::wrapped_all(pool, &format!("{p}intermediate_keys")).await
        })
    }

    async fn insert_intermediate_key(
        &self,
        tenant: TenantId,
        key: &WrappedKey,
    ) -> Result<(), StoreError> {
        on_tenant!(self, tenant, true, (), |o, pool, p| {
            o::wrapped_insert(pool, &format!("{p}intermediate_keys"), key).await
        })
    }

    async fn content_key(
        &self,
        tenant: TenantId,
        kid: Uuid,
    ) -> Result<Option<WrappedKey>, StoreError> {
        on_tenant!(self, tenant, false, None, |o, pool, p| {
            o::wrapped_by_kid(pool, &format!("{p}content_keys"), kid).await
        })
    }

    async fn content_key_for_owner(
        &self,
        tenant: TenantId,
        owner: Uuid,
    ) -> Result<Option<WrappedKey>, StoreError> {
        on_tenant!(self, tenant, false, None, |o, pool, p| {
            o::wrapped_newest_for_owner(pool, &format!("{p}content_keys"), owner).await
        })
    }
}

impl KeyStore for Store {
    async fn ensure_tenant(&self, tenant: TenantId) -> Result<(), StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => b.tenant_pool(tenant, true).await.map(drop),
            Inner::Postgres(b) => b.tenant_prefix(tenant, true).await.map(drop),
        }
    }

    async fn insert_elastic_key(
        &self,
        tenant: TenantId,
        key: &ElasticKey,
        content_key: &WrappedKey,
        first_material: &MaterialKey,
    ) -> Result<(), StoreError> {
        on_tenant!(self, tenant, true, (), |o, pool, p| {
            o::insert_elastic_key(pool, p, key, content_key, first_material).await
        })
    }

    async fn elastic_key(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<ElasticKey>, StoreError> {
        on_tenant!(self, tenant, false, None, |o, pool, p| {
            o::elastic_key(pool, p, id).await
        })
    }

    async fn list_elastic_keys(
        &self,
        tenant: TenantId,
        filter: &ElasticKeyFilter,
        sort: Sort<ElasticKeySortField>,
        page: PageRequest,
    ) -> Result<Page<ElasticKey>, StoreError> {
        let empty = Page {
            items: Vec::new(),
            page: page.page,
            size: page.size,
            total: 0,
        };
        on_tenant!(self, tenant, false, empty, |o, pool, p| {
            o::list_elastic_keys(pool, p, filter, sort, page).await
        })
    }

    async fn update_elastic_key(
        &self,
        tenant: TenantId,
        key: &ElasticKey,
    ) -> Result<bool, StoreError> {
        on_tenant!(self, tenant, false, false, |o, pool, p| {
            o::update_elastic_key(pool, p, key).await
        })
    }

    async fn insert_material_key(
        &self,
        tenant: TenantId,
        key: &MaterialKey,
    ) -> Result<(), StoreError> {
        on_tenant!(self, tenant, true, (), |o, pool, p| {
            o::insert_material_key(pool, p, key).await
        })
    }

    async fn material_key(
        &self,
        tenant: TenantId,
        elastic_key_id: Uuid,
        id: Uuid,
    ) -> Result<Option<MaterialKey>, StoreError> {
        on_tenant!(self, tenant, false, None, |o, pool, p| {
            o::material_key(pool, p, elastic_key_id, id).await
        })
    }

    async fn latest_material_key(
        &self,
        tenant: TenantId,
        elastic_key_id: Uuid,
    ) -> Result<Option<MaterialKey>, StoreError> {
        on_tenant!(self, tenant, false, None, |o, pool, p| {
            o::latest_material_key(pool, p, elastic_key_id).await
        })
    }

    async fn list_material_keys(
        &self,
        tenant: TenantId,
        elastic_key_id: Option<Uuid>,
        page: PageRequest,
    ) -> Result<Page<MaterialKey>, StoreError> {
        let empty = Page {
            items: Vec::new(),
            page: page.page,
            size: page.size,
            total: 0,
        };
        on_tenant!(self, tenant, false, empty, |o, pool, p| {
            o::list_material_keys(pool, p, elastic_key_id, page).await
        })
    }

    async fn purge_due(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<Uuid>, StoreError> {
        on_tenant!(self, tenant, false, Vec::new(), |o, pool, p| {
            o::purge_due(pool, p, now).await
        })
    }

    async fn announce_key_change(&self, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
        self.announce(KEY_CHANGES_CHANNEL, &key_change_payload(tenant, id))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match &*self.inner {
            Inner::Sqlite(b) => ops::sqlite::ping(&b.main).await,
            Inner::Postgres(b) => ops::postgres::ping(&b.pool).await,
        }
    }
}

impl InventoryStore for Store {
    async fn inventory_keys(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<KeyInventoryRecord>, StoreError> {
        on_tenant!(self, tenant, false, Vec::new(), |o, pool, p| {
            o::inventory_keys(pool, p).await
        })
    }

    async fn record_last_use(
        &self,
        tenant: TenantId,
        uses: &[(Uuid, OffsetDateTime)],
    ) -> Result<u64, StoreError> {
        if uses.is_empty() {
            return Ok(0);
        }
        on_tenant!(self, tenant, false, 0, |o, pool, p| {
            o::record_last_use(pool, p, uses).await
        })
    }
}
