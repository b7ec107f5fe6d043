//! SQLite and PostgreSQL persistence of Identity's records through one `sqlx::AnyPool`.
//!
//! Identity has one database (no per-tenant split, unlike the KMS), so one set of portable
//! statements serves both backends: `$N` placeholders (SQLite accepts them too), `BIGINT`
//! timestamps in nanoseconds since the epoch, UUIDs and lists as text (lists as JSON arrays),
//! booleans as `BIGINT` 0/1 (sqlx's `Any` driver cannot map SQLite `BOOLEAN` columns). The DDL is
//! portable too (the `schema` module, applied by the shared runner of `cryptoutil-database`).
//!
//! Secrets are never stored: codes, refresh tokens and session ids are stored as the SHA-256 of
//! their value; passwords and client secrets as PBKDF2 hashes; signing keys sealed under the
//! key-encryption key.
//!
//! Atomic state changes (redeeming a code, rotating a refresh token, claiming an assertion `jti`)
//! are single conditional statements whose affected-row count decides the winner, so two
//! instances on one PostgreSQL agree.

mod clients;
mod device;
mod factors;
mod grants;
mod keys;
mod registrations;
mod schema;
mod sessions;
mod settings;

pub use sessions::MAX_USER_SESSIONS;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::error::ErrorKind;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection};
use time::OffsetDateTime;

pub use grants::{CodeRedemption, RefreshRotation};
pub use settings::{DEFAULT_DATABASE_URL, DatabaseSettings, IdentityDatabase};

/// Why a storage call failed. Messages never carry bound values or the connection URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, busy or timed out: retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded, or the database answered unexpectedly.
    #[error("database error: {0}")]
    Corrupt(String),
    /// The database was written by a newer release (its schema version is newer than this
    /// binary's): a deployment error, refused before anything is changed.
    #[error("{0}")]
    NewerSchema(String),
}

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (file or in-memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Identity's storage. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// For `sqlite::memory:`: a connection outside the pool that keeps the shared in-memory
    /// database alive whatever the pool does with its own connections. Never used otherwise.
    _keeper: Option<Arc<std::sync::Mutex<AnyConnection>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, creating a SQLite file when missing, and runs the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = settings::connection_url(settings).map_err(StoreError::Corrupt)?;
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Corrupt(format!("database.url: {e}")))?
            .disable_statement_logging();
        let in_memory = settings.is_in_memory();
        let keeper = if in_memory {
            let connection = AnyConnection::connect_with(&options).await.map_err(map)?;
            Some(Arc::new(std::sync::Mutex::new(connection)))
        } else {
            None
        };
        let mut pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout.get())
            // A connection still inside a transaction when handed out again (a COMMIT that
            // failed on a full disk leaves sqlx counting one) would fail every later BEGIN:
            // close it instead. The pool's ping before this check has settled the count.
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }));
        pool = if in_memory {
            // The shared in-memory database lives as long as one connection does.
            pool.min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.min_connections(0)
                .idle_timeout(Duration::from_secs(300))
                .max_lifetime(Duration::from_secs(1800))
        };
        let pool = pool.connect_with(options).await.map_err(map)?;
        schema::migrate(&url, backend).await?;
        Ok(Store {
            pool,
            backend,
            _keeper: keeper,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Deletes every expired code, refresh token, pushed request, session, assertion `jti`, DPoP proof,
    /// access-token revocation, device authorization and WebAuthn challenge. Returns the number of rows removed.
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = nanos(now)?;
        let mut removed = 0;
        for table in [
            "authorization_codes",
            "refresh_tokens",
            "pushed_requests",
            "sessions",
            "used_assertions",
            "dpop_proofs",
            "access_token_revocations",
            "grant_access_tokens",
            "device_authorizations",
            "webauthn_challenges",
        ] {
            let sql = format!("DELETE FROM {table} WHERE expires_at < $1");
            // The table names are the constants above.
            removed += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map)?
                .rows_affected();
        }
        Ok(removed)
    }
}

/// Nanoseconds since the epoch, the stored form of an instant.
pub(crate) fn nanos(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Corrupt("instant out of range".to_owned()))
}

/// The instant of a stored nanosecond count.
pub(crate) fn instant(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|_| StoreError::Corrupt("stored instant out of range".to_owned()))
}

/// An optional instant.
pub(crate) fn opt_instant(n: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    n.map(instant).transpose()
}

/// An optional instant in stored form.
pub(crate) fn opt_nanos(t: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    t.map(nanos).transpose()
}

/// A list stored as a JSON array of strings.
pub(crate) fn list_to_text<T: serde::Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A boolean in stored form (`BIGINT` 0 or 1).
pub(crate) fn flag_to_db(value: bool) -> i64 {
    i64::from(value)
}

/// A stored boolean column (`BIGINT` 0 or 1).
pub(crate) fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, StoreError> {
    use sqlx::Row;
    match row.try_get::<i64, _>(column).map_err(map)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(StoreError::Corrupt(format!(
            "stored flag {column} is {other}, expected 0 or 1"
        ))),
    }
}

/// A list read back from its JSON array.
pub(crate) fn list_from_text<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored list: {e}")))
}

/// Maps a database error: unreachable, timed out or busy → [`StoreError::Unavailable`]; unique
/// violations → [`StoreError::Conflict`]; anything else → [`StoreError::Corrupt`].
pub(crate) fn map(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) => {
            if matches!(
                d.kind(),
                ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation
            ) {
                return StoreError::Conflict("already exists".to_owned());
            }
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            // PostgreSQL classes 08 (connection), 53 (resources), 57P (shutdown), 40001/40P01
            // (serialization, deadlock); SQLite BUSY (5) and LOCKED (6).
            let transient = code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
                || code
                    .parse::<i64>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14));
            let message = format!("database error {code}: {}", d.message());
            if transient {
                StoreError::Unavailable(message)
            } else {
                StoreError::Corrupt(message)
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Corrupt(other.to_string()),
    }
}
