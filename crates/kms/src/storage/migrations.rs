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
use crate::repository::StoreError;

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
pub(crate) const SYSTEM: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        name: "tenant names and database realm users",
        // Tenants provisioned before (or by `ensure_tenant` alone) keep a NULL name: unique
        // indexes allow several NULLs on both backends.
        sqlite: "
        ALTER TABLE tenants ADD COLUMN name TEXT;
        CREATE UNIQUE INDEX tenants_name ON tenants (name);
        CREATE TABLE kms_realm_users (
            username TEXT PRIMARY KEY NOT NULL,
            password_hash TEXT NOT NULL,
            roles TEXT NOT NULL,
            tenants TEXT NOT NULL,
            enabled BOOLEAN NOT NULL,
            metadata TEXT NOT NULL,
            certificate_subject TEXT UNIQUE,
            version BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );",
        postgres: r#"
        ALTER TABLE tenants ADD COLUMN name TEXT COLLATE "C";
        CREATE UNIQUE INDEX tenants_name ON tenants (name);
        CREATE TABLE kms_realm_users (
            username TEXT COLLATE "C" PRIMARY KEY,
            password_hash TEXT NOT NULL,
            roles TEXT NOT NULL,
            tenants TEXT NOT NULL,
            enabled BOOLEAN NOT NULL,
            metadata TEXT NOT NULL,
            certificate_subject TEXT COLLATE "C" UNIQUE,
            version BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );"#,
    },
];

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

    /// Version 1 tenants survive the upgrade nameless; a second run changes nothing.
    async fn check_upgrade_sqlite(pool: &SqlitePool) {
        migrate_sqlite(pool, &SYSTEM[..1]).await.unwrap();
        let old = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES ($1, 1)")
            .bind(&old)
            .execute(pool)
            .await
            .unwrap();
        migrate_sqlite(pool, SYSTEM).await.unwrap();
        migrate_sqlite(pool, SYSTEM).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(versions, vec![1, 2]);
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
            .bind(&old)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(name, None);
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kms_realm_users")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(users, 0);
    }

    #[tokio::test]
    async fn sqlite_system_schema_upgrades_from_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("v1.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        check_upgrade_sqlite(&pool).await;
        pool.close().await;
    }

    #[tokio::test]
    async fn postgres_system_schema_upgrades_from_version_1() {
        let Ok(url) = std::env::var("CRYPTOUTIL_TEST_POSTGRES_URL") else {
            eprintln!("SKIPPED (set CRYPTOUTIL_TEST_POSTGRES_URL): PostgreSQL upgrade test");
            return;
        };
        let pool = PgPool::connect(&url).await.unwrap();
        // A scratch schema stands in for `kms_system` (which the shared database already has).
        let schema = format!("kms_upgrade_{}", uuid::Uuid::now_v7().simple());
        migrate_postgres(&pool, &schema, &SYSTEM[..1], None)
            .await
            .unwrap();
        let old = uuid::Uuid::new_v4().to_string();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}.tenants (id, created_at) VALUES ($1, 1)"
        )))
        .bind(&old)
        .execute(&pool)
        .await
        .unwrap();
        let first = migrate_postgres(&pool, &schema, SYSTEM, None).await;
        let second = migrate_postgres(&pool, &schema, SYSTEM, None).await;
        let versions: Result<Vec<i64>, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {schema}.schema_migrations ORDER BY version"
        )))
        .fetch_all(&pool)
        .await;
        let name: Result<Option<String>, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM {schema}.tenants WHERE id = $1"
        )))
        .bind(&old)
        .fetch_one(&pool)
        .await;
        let users: Result<i64, _> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.kms_realm_users"
        )))
        .fetch_one(&pool)
        .await;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        first.unwrap();
        second.unwrap();
        assert_eq!(versions.unwrap(), vec![1, 2]);
        assert_eq!(name.unwrap(), None);
        assert_eq!(users.unwrap(), 0);
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
