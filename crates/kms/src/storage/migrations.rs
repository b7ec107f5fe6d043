//! Versioned schema migrations for both backends.
//!
//! Each schema (PostgreSQL) or database (SQLite) has its own `schema_migrations` table listing the
//! versions applied. A run applies the missing versions in order, each with its bookkeeping row, in
//! one transaction; on PostgreSQL that transaction first takes a transaction-scoped advisory lock,
//! so instances starting together migrate one after the other and the later ones find nothing to
//! do. A database with a version this build does not know is refused as [`StoreError::Corrupt`].
//!
//! Append new migrations; never edit released ones. PostgreSQL text columns use `COLLATE "C"` so
//! that sorting matches SQLite's byte order.

use sqlx::{AssertSqlSafe, PgPool, SqlitePool};

use super::error::{map, ts_to_db};
use crate::model::TenantId;
use crate::store::StoreError;

/// One migration: the same change written for each backend.
pub(crate) struct Migration {
    /// Strictly increasing from 1.
    pub version: i64,
    /// Short description, recorded in `schema_migrations`.
    pub name: &'static str,
    /// SQLite statements.
    pub sqlite: &'static str,
    /// PostgreSQL statements (run with `search_path` set to the target schema).
    pub postgres: &'static str,
}

/// Migrations of the system database / `kms_system` schema.
pub(crate) const SYSTEM: &[Migration] = &[Migration {
    version: 1,
    name: "root keys and tenant registry",
    sqlite: "
        CREATE TABLE root_keys (
            kid TEXT PRIMARY KEY NOT NULL,
            parent_kid TEXT,
            owner TEXT,
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY NOT NULL,
            created_at BIGINT NOT NULL
        );",
    postgres: r#"
        CREATE TABLE root_keys (
            kid TEXT COLLATE "C" PRIMARY KEY,
            parent_kid TEXT COLLATE "C",
            owner TEXT COLLATE "C",
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE tenants (
            id TEXT COLLATE "C" PRIMARY KEY,
            created_at BIGINT NOT NULL
        );"#,
}];

/// Migrations of each tenant database / `tenant_<hex>` schema.
pub(crate) const TENANT: &[Migration] = &[Migration {
    version: 1,
    name: "barrier keys, elastic keys, material keys",
    sqlite: "
        CREATE TABLE intermediate_keys (
            kid TEXT PRIMARY KEY NOT NULL,
            parent_kid TEXT,
            owner TEXT,
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE content_keys (
            kid TEXT PRIMARY KEY NOT NULL,
            parent_kid TEXT,
            owner TEXT,
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX content_keys_owner ON content_keys (owner, created_at);
        CREATE TABLE elastic_keys (
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            versioning_allowed BOOLEAN NOT NULL,
            import_allowed BOOLEAN NOT NULL,
            export_allowed BOOLEAN NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('active', 'disabled', 'pending_delete', 'deleted')),
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            purge_after BIGINT
        );
        CREATE INDEX elastic_keys_status ON elastic_keys (status, purge_after);
        CREATE TABLE material_keys (
            id TEXT PRIMARY KEY NOT NULL,
            elastic_key_id TEXT NOT NULL REFERENCES elastic_keys (id),
            generate_date BIGINT NOT NULL,
            import_date BIGINT,
            revocation_date BIGINT,
            public_jwk TEXT,
            sealed_jwk TEXT NOT NULL
        );
        CREATE INDEX material_keys_elastic ON material_keys (elastic_key_id, id);",
    postgres: r#"
        CREATE TABLE intermediate_keys (
            kid TEXT COLLATE "C" PRIMARY KEY,
            parent_kid TEXT COLLATE "C",
            owner TEXT COLLATE "C",
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE content_keys (
            kid TEXT COLLATE "C" PRIMARY KEY,
            parent_kid TEXT COLLATE "C",
            owner TEXT COLLATE "C",
            jwe TEXT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX content_keys_owner ON content_keys (owner, created_at);
        CREATE TABLE elastic_keys (
            id TEXT COLLATE "C" PRIMARY KEY,
            name TEXT COLLATE "C" NOT NULL UNIQUE,
            description TEXT NOT NULL,
            algorithm TEXT COLLATE "C" NOT NULL,
            versioning_allowed BOOLEAN NOT NULL,
            import_allowed BOOLEAN NOT NULL,
            export_allowed BOOLEAN NOT NULL,
            status TEXT COLLATE "C" NOT NULL
                CHECK (status IN ('active', 'disabled', 'pending_delete', 'deleted')),
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            purge_after BIGINT
        );
        CREATE INDEX elastic_keys_status ON elastic_keys (status, purge_after);
        CREATE TABLE material_keys (
            id TEXT COLLATE "C" PRIMARY KEY,
            elastic_key_id TEXT COLLATE "C" NOT NULL REFERENCES elastic_keys (id),
            generate_date BIGINT NOT NULL,
            import_date BIGINT,
            revocation_date BIGINT,
            public_jwk TEXT,
            sealed_jwk TEXT NOT NULL
        );
        CREATE INDEX material_keys_elastic ON material_keys (elastic_key_id, id);"#,
}];

/// Advisory lock key serialising PostgreSQL migrations and tenant provisioning ("cuKMSmig").
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x6375_4b4d_536d_6967;

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

fn now() -> Result<i64, StoreError> {
    ts_to_db(time::OffsetDateTime::now_utc())
}

fn check_known(applied: &[i64], migrations: &[Migration]) -> Result<(), StoreError> {
    let newest = migrations.last().map_or(0, |m| m.version);
    if applied.iter().any(|v| *v > newest) {
        return Err(StoreError::Corrupt(format!(
            "the database schema is newer than this build (knows versions up to {newest})"
        )));
    }
    Ok(())
}

/// Brings one SQLite database up to date (one `BEGIN IMMEDIATE` transaction).
pub(crate) async fn migrate_sqlite(
    pool: &SqlitePool,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map)?;
    sqlx::raw_sql(BOOKKEEPING)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
    check_known(&applied, migrations)?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(m.sqlite)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now()?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    }
    tx.commit().await.map_err(map)
}

/// Brings one PostgreSQL schema up to date, creating it if needed, and registers `tenant` (when
/// given) in `kms_system.tenants` in the same transaction. `schema` is `kms_system` or
/// `tenant_<hex>`, never request text.
pub(crate) async fn migrate_postgres(
    pool: &PgPool,
    schema: &str,
    migrations: &[Migration],
    tenant: Option<TenantId>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let setup = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}; {BOOKKEEPING}"
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    // Statements with parameters name the schema explicitly: prepared statements are cached per
    // connection, and must not depend on `search_path`.
    let applied: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM {schema}.schema_migrations"
    )))
    .fetch_all(&mut *tx)
    .await
    .map_err(map)?;
    check_known(&applied, migrations)?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(m.postgres)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)"
        )))
        .bind(m.version)
        .bind(m.name)
        .bind(now()?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    }
    if let Some(tenant) = tenant {
        sqlx::query(
            "INSERT INTO kms_system.tenants (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(super::error::uuid_to_db(tenant.0))
        .bind(now()?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    }
    tx.commit().await.map_err(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        for list in [SYSTEM, TENANT] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "{}", m.name);
            }
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        assert!(check_known(&[1], SYSTEM).is_ok());
        assert!(matches!(
            check_known(&[1, 99], SYSTEM),
            Err(StoreError::Corrupt(_))
        ));
    }
}
