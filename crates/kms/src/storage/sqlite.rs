//! The SQLite backend: a main database and one database per tenant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex as StdMutex};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::error::map;
use super::migrations::{self, migrate_sqlite};
use super::ops::sqlite as ops;
use crate::model::TenantId;
use crate::repository::StoreError;

/// Where the databases live.
enum Location {
    /// `<dir>/<stem>.db` and `<dir>/<stem>.tenant_<hex>.db`.
    File {
        main: PathBuf,
        dir: PathBuf,
        stem: String,
    },
    /// Named shared-cache in-memory databases `file:<prefix>-main`, `file:<prefix>-tenant_<hex>`.
    Memory { prefix: String },
}

/// Init locks by main database path: one per file across every `Store` of the process.
static INIT_LOCKS: LazyLock<StdMutex<HashMap<PathBuf, Arc<Mutex<()>>>>> =
    LazyLock::new(|| StdMutex::new(HashMap::new()));

pub(crate) struct SqliteBackend {
    pub(crate) main: SqlitePool,
    location: Location,
    max_connections: u32,
    acquire_timeout: Duration,
    /// Open tenant databases.
    tenants: StdMutex<HashMap<TenantId, SqlitePool>>,
    /// Serialises opening tenant databases.
    provision: Mutex<()>,
    /// In-memory databases only live while a connection is open: one idle connection each.
    keepers: Mutex<HashMap<Option<TenantId>, SqliteConnection>>,
    pub(crate) init_lock: Arc<Mutex<()>>,
}

fn lock_poisoned() -> StoreError {
    StoreError::Unavailable("internal lock poisoned".to_owned())
}

impl SqliteBackend {
    pub(crate) async fn connect(
        file: Option<&Path>,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let (location, lock_key) = match file {
            Some(main) => {
                let stem = main
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        StoreError::Unavailable(
                            "the SQLite file name is not valid UTF-8".to_owned(),
                        )
                    })?
                    .to_owned();
                let dir = main.parent().map(Path::to_path_buf).unwrap_or_default();
                let key = std::path::absolute(main).unwrap_or_else(|_| main.to_path_buf());
                (
                    Location::File {
                        main: main.to_path_buf(),
                        dir,
                        stem,
                    },
                    key,
                )
            }
            None => {
                let prefix = format!("cryptoutil-kms-{}", Uuid::new_v4().simple());
                let key = PathBuf::from(&prefix);
                (Location::Memory { prefix }, key)
            }
        };
        let init_lock = INIT_LOCKS
            .lock()
            .map_err(|_| lock_poisoned())?
            .entry(lock_key)
            .or_default()
            .clone();
        let mut keepers = HashMap::new();
        let main = open(
            &location,
            None,
            max_connections,
            acquire_timeout,
            &mut keepers,
        )
        .await?;
        migrate_sqlite(&main, migrations::SYSTEM).await?;
        Ok(Self {
            main,
            location,
            max_connections,
            acquire_timeout,
            tenants: StdMutex::new(HashMap::new()),
            provision: Mutex::new(()),
            keepers: Mutex::new(keepers),
            init_lock,
        })
    }

    /// The tenant's database: opened (and migrated) on first use. With `create` false an
    /// unregistered tenant gives `None` instead of being provisioned.
    pub(crate) async fn tenant_pool(
        &self,
        tenant: TenantId,
        create: bool,
    ) -> Result<Option<SqlitePool>, StoreError> {
        if let Some(pool) = self.cached(tenant)? {
            return Ok(Some(pool));
        }
        let _guard = self.provision.lock().await;
        if let Some(pool) = self.cached(tenant)? {
            return Ok(Some(pool));
        }
        if !create && !ops::tenant_registered(&self.main, "", tenant).await? {
            return Ok(None);
        }
        let mut keepers = self.keepers.lock().await;
        let pool = open(
            &self.location,
            Some(tenant),
            self.max_connections,
            self.acquire_timeout,
            &mut keepers,
        )
        .await?;
        drop(keepers);
        migrate_sqlite(&pool, migrations::TENANT).await?;
        ops::register_tenant(&self.main, "", tenant).await?;
        self.tenants
            .lock()
            .map_err(|_| lock_poisoned())?
            .insert(tenant, pool.clone());
        Ok(Some(pool))
    }

    fn cached(&self, tenant: TenantId) -> Result<Option<SqlitePool>, StoreError> {
        Ok(self
            .tenants
            .lock()
            .map_err(|_| lock_poisoned())?
            .get(&tenant)
            .cloned())
    }

    /// Unregisters the tenant, closes and deletes its database.
    pub(crate) async fn drop_tenant(&self, tenant: TenantId) -> Result<bool, StoreError> {
        let _guard = self.provision.lock().await;
        let registered = ops::unregister_tenant(&self.main, "", tenant).await?;
        let pool = self
            .tenants
            .lock()
            .map_err(|_| lock_poisoned())?
            .remove(&tenant);
        if let Some(pool) = pool {
            pool.close().await;
        }
        if let Some(keeper) = self.keepers.lock().await.remove(&Some(tenant)) {
            let _ = keeper.close().await;
        }
        if let Location::File { dir, stem, .. } = &self.location {
            let file = tenant_file(dir, stem, tenant);
            for suffix in ["", "-wal", "-shm"] {
                let mut name = file.clone().into_os_string();
                name.push(suffix);
                match std::fs::remove_file(&name) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::Unavailable(format!(
                            "cannot delete the tenant database: {e}"
                        )));
                    }
                }
            }
        }
        Ok(registered)
    }

    pub(crate) async fn close(&self) {
        let pools: Vec<SqlitePool> = match self.tenants.lock() {
            Ok(mut map) => map.drain().map(|(_, p)| p).collect(),
            Err(_) => Vec::new(),
        };
        for pool in pools {
            pool.close().await;
        }
        self.main.close().await;
        for (_, keeper) in self.keepers.lock().await.drain() {
            let _ = keeper.close().await;
        }
    }
}

fn tenant_file(dir: &Path, stem: &str, tenant: TenantId) -> PathBuf {
    dir.join(format!("{stem}.tenant_{}.db", tenant.hex()))
}

/// Opens the main (`None`) or a tenant database.
/// Whether a pooled connection is still inside a transaction when it is handed out again: it
/// must then be closed, not reused. This happens when a COMMIT fails because the disk is full
/// (or on an I/O error): SQLite rolls the transaction back itself, the rollback sqlx then sends
/// fails, and sqlx keeps counting the connection as inside a transaction, so every later
/// `BEGIN` on it fails ("begin_with at non-zero transaction depth") long after the disk has
/// space again. The pool's ping before this check has gone through the connection's worker
/// after that rollback, so the count is settled. Tested by `crates/cli/tests/it/faults.rs`.
fn left_in_transaction(conn: &mut SqliteConnection) -> bool {
    let stuck = conn.is_in_transaction();
    if stuck {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    stuck
}

async fn open(
    location: &Location,
    tenant: Option<TenantId>,
    max_connections: u32,
    acquire_timeout: Duration,
    keepers: &mut HashMap<Option<TenantId>, SqliteConnection>,
) -> Result<SqlitePool, StoreError> {
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(acquire_timeout)
        .min_connections(0)
        .before_acquire(|conn, _| Box::pin(async move { Ok(!left_in_transaction(conn)) }));
    match location {
        Location::File { main, dir, stem } => {
            let file = match tenant {
                None => main.clone(),
                Some(t) => tenant_file(dir, stem, t),
            };
            let options = SqliteConnectOptions::new()
                .filename(file)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Key material must survive a power cut once the call returned.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(acquire_timeout);
            let pool = pool
                .max_connections(max_connections)
                .idle_timeout(Duration::from_secs(300));
            // One connection first: it creates the file and switches it to WAL alone.
            let pool = pool.connect_with(options).await.map_err(map)?;
            Ok(pool)
        }
        Location::Memory { prefix } => {
            let name = match tenant {
                None => format!("file:{prefix}-main"),
                Some(t) => format!("file:{prefix}-tenant_{}", t.hex()),
            };
            let options = SqliteConnectOptions::new()
                .filename(name)
                .in_memory(true)
                .shared_cache(true)
                .foreign_keys(true)
                .busy_timeout(acquire_timeout);
            if let std::collections::hash_map::Entry::Vacant(slot) = keepers.entry(tenant) {
                slot.insert(
                    SqliteConnection::connect_with(&options)
                        .await
                        .map_err(map)?,
                );
            }
            // One pooled connection: shared-cache table locks never conflict between
            // transactions, and an in-memory database is for development only.
            Ok(pool
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with(options))
        }
    }
}
