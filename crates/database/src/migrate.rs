//! The migration runner: ordered, versioned migrations embedded in the binary.
//!
//! Each database (SQLite) or schema (PostgreSQL) has a `schema_migrations` table with one row per
//! applied version (`version`, `name`, `applied_at` in nanoseconds since the epoch). A run applies
//! the missing versions in order, each with its row, in one transaction, so a failed run leaves
//! nothing half done:
//!
//! - SQLite: a `BEGIN IMMEDIATE` transaction (the database's write lock).
//! - PostgreSQL: a transaction that first takes the transaction-scoped advisory lock
//!   [`PgScope::lock`], so instances starting together migrate one after the other and the later
//!   ones find nothing to do. [`apply_postgres`] runs inside the caller's transaction, so that the
//!   caller can add its own statements (registering a tenant) before committing.
//!
//! A database that records a version newer than the newest migration of the plan was written by a
//! newer binary: the run refuses it with [`MigrationError::NewerSchema`], naming both versions, and
//! changes nothing.
//!
//! A `schema_migrations` table with only a `version` column (as Identity wrote it up to release
//! 0.1) gains the `name` and `applied_at` columns, empty for the rows already there.
//!
//! Append new migrations to a plan; never edit released ones.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};

/// One migration: the same change written for each backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Strictly increasing from 1 within a plan.
    pub version: i64,
    /// Short description, recorded in `schema_migrations`.
    pub name: &'static str,
    /// SQLite statements (several allowed, separated by `;`).
    pub sqlite: &'static str,
    /// PostgreSQL statements (several allowed; scoped plans run with `search_path` set to the
    /// schema).
    pub postgres: &'static str,
}

impl Migration {
    /// A migration whose SQL is the same on both backends.
    pub const fn portable(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self {
            version,
            name,
            sqlite: sql,
            postgres: sql,
        }
    }
}

/// Where a PostgreSQL plan applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgScope<'a> {
    /// The schema holding the tables and their `schema_migrations` (created if missing), or
    /// `None` for the connection's current schema. Never request text: it is written into SQL.
    pub schema: Option<&'a str>,
    /// The advisory lock key serialising every run that shares it.
    pub lock: i64,
}

/// Why a migration run failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database was written by a newer binary.
    #[error(
        "the database schema is at version {found}, newer than this binary, which knows versions \
         up to {known}: run a release that knows version {found}"
    )]
    NewerSchema {
        /// The newest version recorded in the database.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// The plan is not numbered 1, 2, 3… (a programming error caught before touching anything).
    #[error("invalid migration plan: {0}")]
    InvalidPlan(String),
    /// The database failed (unreachable, busy, or a statement failed).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// The columns added to a `schema_migrations` table that only has `version`.
const UPGRADE_BOOKKEEPING: &[(&str, &str)] = &[
    (
        "name",
        "ALTER TABLE schema_migrations ADD COLUMN name TEXT NOT NULL DEFAULT ''",
    ),
    (
        "applied_at",
        "ALTER TABLE schema_migrations ADD COLUMN applied_at BIGINT NOT NULL DEFAULT 0",
    ),
];

/// The newest version of a plan (0 for an empty one).
pub fn newest_version(plan: &[Migration]) -> i64 {
    plan.last().map_or(0, |m| m.version)
}

/// Checks that the plan is numbered 1, 2, 3….
pub fn check_plan(plan: &[Migration]) -> Result<(), MigrationError> {
    for (expected, m) in (1..).zip(plan) {
        if m.version != expected {
            return Err(MigrationError::InvalidPlan(format!(
                "migration {:?} has version {}, expected {expected}",
                m.name, m.version
            )));
        }
    }
    Ok(())
}

/// Refuses a database that records a version newer than the plan knows.
fn check_not_newer(applied: &[i64], plan: &[Migration]) -> Result<(), MigrationError> {
    let known = newest_version(plan);
    match applied.iter().copied().max() {
        Some(found) if found > known => Err(MigrationError::NewerSchema { found, known }),
        _ => Ok(()),
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// Brings one SQLite database up to date in one `BEGIN IMMEDIATE` transaction. Returns the
/// versions applied by this run (empty when the database was up to date).
pub async fn migrate_sqlite(
    conn: &mut SqliteConnection,
    plan: &[Migration],
) -> Result<Vec<i64>, MigrationError> {
    check_plan(plan)?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(BOOKKEEPING).execute(&mut *tx).await?;
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('schema_migrations')")
            .fetch_all(&mut *tx)
            .await?;
    for (column, alter) in UPGRADE_BOOKKEEPING {
        if !columns.iter().any(|c| c == column) {
            sqlx::raw_sql(*alter).execute(&mut *tx).await?;
        }
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    check_not_newer(&applied, plan)?;
    let mut done = Vec::new();
    for m in plan.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(m.sqlite).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_nanos())
        .execute(&mut *tx)
        .await?;
        done.push(m.version);
    }
    tx.commit().await?;
    Ok(done)
}

/// Brings one PostgreSQL schema up to date in one transaction under the scope's advisory lock.
/// Returns the versions applied by this run.
pub async fn migrate_postgres(
    conn: &mut PgConnection,
    scope: PgScope<'_>,
    plan: &[Migration],
) -> Result<Vec<i64>, MigrationError> {
    let mut tx = conn.begin().await?;
    let done = apply_postgres(&mut tx, scope, plan).await?;
    tx.commit().await?;
    Ok(done)
}

/// Like [`migrate_postgres`], inside a transaction the caller opened on `tx` and commits
/// afterwards (the advisory lock is held until then). With a schema, `search_path` is set to it
/// for the rest of the transaction.
pub async fn apply_postgres(
    tx: &mut PgConnection,
    scope: PgScope<'_>,
    plan: &[Migration],
) -> Result<Vec<i64>, MigrationError> {
    check_plan(plan)?;
    sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
        .bind(scope.lock)
        .execute(&mut *tx)
        .await?;
    let setup = match scope.schema {
        Some(schema) => format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}; {BOOKKEEPING}"
        ),
        None => BOOKKEEPING.to_owned(),
    };
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut *tx)
        .await?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (column, alter) in UPGRADE_BOOKKEEPING {
        if !columns.iter().any(|c| c == column) {
            sqlx::raw_sql(*alter).execute(&mut *tx).await?;
        }
    }
    // Statements with parameters name the schema explicitly: prepared statements are cached per
    // connection, and must not depend on `search_path`.
    let table = match scope.schema {
        Some(schema) => format!("{schema}.schema_migrations"),
        None => "schema_migrations".to_owned(),
    };
    let applied: Vec<i64> =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {table}")))
            .fetch_all(&mut *tx)
            .await?;
    check_not_newer(&applied, plan)?;
    let mut done = Vec::new();
    for m in plan.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(m.postgres).execute(&mut *tx).await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (version, name, applied_at) VALUES ($1, $2, $3)"
        )))
        .bind(m.version)
        .bind(m.name)
        .bind(now_nanos())
        .execute(&mut *tx)
        .await?;
        done.push(m.version);
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
