//! The KMS's migration plans and their adapters to the shared runner
//! ([`cryptoutil_database::migrate`]).
//!
//! Each schema (PostgreSQL) or database (SQLite) has its own `schema_migrations` table listing the
//! versions applied; the system plan runs in [`super::Store::connect`], the tenant plan when a
//! tenant is first used. A database with a version this build does not know is refused as
//! [`StoreError::Corrupt`], with both versions in the message.
//!
//! Append new migrations; never edit released ones. PostgreSQL text columns use `COLLATE "C"` so
//! that sorting matches SQLite's byte order.

use cryptoutil_database::migrate::{self, Migration, MigrationError, PgScope};
use sqlx::{PgPool, SqlitePool};

use super::error::{map, ts_to_db};
use crate::model::TenantId;
use crate::repository::StoreError;

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
pub(crate) const TENANT: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        name: "elastic key last use",
        // Written by the last-use flush task (`inventory::last_use`), to the minute; NULL = never
        // used since this column exists.
        sqlite: "ALTER TABLE elastic_keys ADD COLUMN last_used_at BIGINT;",
        postgres: "ALTER TABLE elastic_keys ADD COLUMN last_used_at BIGINT;",
    },
];

/// Advisory lock key serialising PostgreSQL migrations and tenant provisioning ("cuKMSmig").
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x6375_4b4d_536d_6967;

fn from_migration(e: MigrationError) -> StoreError {
    match e {
        MigrationError::Database(e) => map(e),
        newer @ MigrationError::NewerSchema { .. } => StoreError::NewerSchema(newer.to_string()),
        refused => StoreError::Corrupt(refused.to_string()),
    }
}

/// Brings one SQLite database up to date (one `BEGIN IMMEDIATE` transaction).
pub(crate) async fn migrate_sqlite(
    pool: &SqlitePool,
    plan: &[Migration],
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(map)?;
    migrate::migrate_sqlite(&mut conn, plan)
        .await
        .map(drop)
        .map_err(from_migration)
}

/// Brings one PostgreSQL schema up to date, creating it if needed, and registers `tenant` (when
/// given) in `kms_system.tenants` in the same transaction. `schema` is `kms_system` or
/// `tenant_<hex>`, never request text.
pub(crate) async fn migrate_postgres(
    pool: &PgPool,
    schema: &str,
    plan: &[Migration],
    tenant: Option<TenantId>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    let scope = PgScope {
        schema: Some(schema),
        lock: PG_MIGRATION_LOCK,
    };
    migrate::apply_postgres(&mut tx, scope, plan)
        .await
        .map_err(from_migration)?;
    if let Some(tenant) = tenant {
        let now = ts_to_db(time::OffsetDateTime::now_utc())?;
        sqlx::query(
            "INSERT INTO kms_system.tenants (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(super::error::uuid_to_db(tenant.0))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    }
    tx.commit().await.map_err(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        for list in [SYSTEM, TENANT] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "{}", m.name);
            }
            migrate::check_plan(list).unwrap();
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

    /// A version 1 tenant database gains `last_used_at` (NULL) and keeps its keys.
    #[tokio::test]
    async fn sqlite_tenant_schema_upgrades_to_last_use() {
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("tenant.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        migrate_sqlite(&pool, &TENANT[..1]).await.unwrap();
        sqlx::query(
            "INSERT INTO elastic_keys (id, name, description, algorithm, versioning_allowed, \
             import_allowed, export_allowed, status, created_at, updated_at) \
             VALUES ('k', 'n', '', 'ES256', TRUE, FALSE, FALSE, 'active', 1, 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        migrate_sqlite(&pool, TENANT).await.unwrap();
        migrate_sqlite(&pool, TENANT).await.unwrap();
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_used_at FROM elastic_keys WHERE id = 'k'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(last, None);
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(versions, vec![1, 2]);
        pool.close().await;
    }

    #[tokio::test]
    async fn newer_schema_is_refused_naming_both_versions() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        migrate_sqlite(&pool, SYSTEM).await.unwrap();
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'x', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        match migrate_sqlite(&pool, SYSTEM).await {
            Err(StoreError::NewerSchema(message)) => {
                assert!(
                    message.contains("99") && message.contains("up to 2"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        pool.close().await;
    }
}
