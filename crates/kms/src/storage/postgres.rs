//! The PostgreSQL backend: schema `kms_system` and one schema `tenant_<hex>` per tenant.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres};

use super::error::map;
use super::migrations::{self, PG_MIGRATION_LOCK, migrate_postgres};
use super::ops::postgres as ops;
use crate::model::TenantId;
use crate::repository::StoreError;

/// The system schema.
pub(crate) const SYSTEM_SCHEMA: &str = "kms_system";
/// Table prefix of the system schema.
pub(crate) const SYSTEM: &str = "kms_system.";
/// Advisory lock key of [`crate::repository::BarrierStore::with_init_lock`] ("cuKMSini").
const INIT_LOCK: i64 = 0x6375_4b4d_5369_6e69;

pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
    /// Tenants whose schema this process has migrated.
    known: StdMutex<HashSet<TenantId>>,
}

fn lock_poisoned() -> StoreError {
    StoreError::Unavailable("internal lock poisoned".to_owned())
}

/// `tenant_<hex>`: derived from the UUID only.
pub(crate) fn tenant_schema(tenant: TenantId) -> String {
    format!("tenant_{}", tenant.hex())
}

impl PgBackend {
    pub(crate) async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Unavailable("invalid PostgreSQL URL".to_owned()))?;
        if options.get_application_name().is_none() {
            options = options.application_name("cryptoutil-kms");
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .test_before_acquire(true)
            .connect_lazy_with(options);
        migrate_postgres(&pool, SYSTEM_SCHEMA, migrations::SYSTEM, None).await?;
        Ok(Self {
            pool,
            known: StdMutex::new(HashSet::new()),
        })
    }

    /// The tenant's table prefix `tenant_<hex>.`, after migrating its schema once per process.
    /// With `create` false an unregistered tenant gives `None` instead of being provisioned.
    pub(crate) async fn tenant_prefix(
        &self,
        tenant: TenantId,
        create: bool,
    ) -> Result<Option<String>, StoreError> {
        let schema = tenant_schema(tenant);
        if self
            .known
            .lock()
            .map_err(|_| lock_poisoned())?
            .contains(&tenant)
        {
            return Ok(Some(format!("{schema}.")));
        }
        if !create && !ops::tenant_registered(&self.pool, SYSTEM, tenant).await? {
            return Ok(None);
        }
        migrate_postgres(&self.pool, &schema, migrations::TENANT, Some(tenant)).await?;
        self.known
            .lock()
            .map_err(|_| lock_poisoned())?
            .insert(tenant);
        Ok(Some(format!("{schema}.")))
    }

    /// Drops the tenant's schema and registry entry.
    pub(crate) async fn drop_tenant(&self, tenant: TenantId) -> Result<bool, StoreError> {
        self.known
            .lock()
            .map_err(|_| lock_poisoned())?
            .remove(&tenant);
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            tenant_schema(tenant)
        )))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        let done = sqlx::query("DELETE FROM kms_system.tenants WHERE id = $1")
            .bind(super::error::uuid_to_db(tenant.0))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    /// Runs `f` holding the session advisory lock on a dedicated connection.
    pub(crate) async fn with_init_lock<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut guard = LockConnection(Some(self.pool.acquire().await.map_err(map)?));
        let conn = guard.conn()?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(INIT_LOCK)
            .execute(&mut **conn)
            .await
            .map_err(map)?;
        let result = f().await;
        let conn = guard.conn()?;
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
            .bind(INIT_LOCK)
            .fetch_one(&mut **conn)
            .await;
        if matches!(unlocked, Ok(true)) {
            // Released: the connection may go back to the pool.
            guard.0 = None;
        }
        // Otherwise the guard closes the connection, which ends the session and its locks.
        result
    }
}

/// A connection that may hold the advisory lock. Unless disarmed (set to `None`), dropping it —
/// also when the future is cancelled — closes the connection instead of returning it to the pool,
/// so a pooled connection never keeps the lock.
struct LockConnection(Option<PoolConnection<Postgres>>);

impl LockConnection {
    fn conn(&mut self) -> Result<&mut PoolConnection<Postgres>, StoreError> {
        self.0
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("lock connection lost".to_owned()))
    }
}

impl Drop for LockConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}
