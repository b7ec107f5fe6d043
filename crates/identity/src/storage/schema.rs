//! Versioned migrations, run at start-up. On PostgreSQL each run is one transaction under a
//! transaction-scoped advisory lock, so instances starting together are safe.

use super::{Backend, Store, StoreError, map};

/// The advisory lock key of Identity's migrations ("cuidmigr").
const MIGRATION_LOCK: i64 = 0x6375_6964_6d69_6772;

/// Version 1: every table (portable DDL: booleans are `BIGINT` 0/1, see [`super`]).
const V1: &[&str] = &[
    "CREATE TABLE clients (
        client_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
        auth_method TEXT NOT NULL,
        secrets TEXT NOT NULL,
        jwks TEXT,
        grant_types TEXT NOT NULL,
        redirect_uris TEXT NOT NULL,
        post_logout_redirect_uris TEXT NOT NULL,
        scopes TEXT NOT NULL,
        audiences TEXT NOT NULL,
        tenant_id TEXT,
        introspect_any BIGINT NOT NULL CHECK (introspect_any IN (0, 1)),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
        roles TEXT NOT NULL,
        tenant_id TEXT,
        name TEXT,
        given_name TEXT,
        family_name TEXT,
        email TEXT,
        email_verified BIGINT NOT NULL CHECK (email_verified IN (0, 1)),
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        auth_time BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT)",
    "CREATE TABLE authorization_codes (
        code_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        nonce TEXT,
        scopes TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT)",
    "CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT)",
    "CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id)",
    "CREATE TABLE grant_access_tokens (
        jti TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX grant_access_tokens_grant ON grant_access_tokens (grant_id)",
    "CREATE TABLE access_token_revocations (
        jti TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT NOT NULL)",
    "CREATE INDEX access_token_revocations_revoked ON access_token_revocations (revoked_at)",
    "CREATE TABLE used_assertions (
        client_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, jti))",
    "CREATE TABLE pushed_requests (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        parameters TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id TEXT,
        auth_time BIGINT,
        pending_request TEXT,
        csrf_token TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE TABLE consents (
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, client_id))",
    "CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        sealed_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retire_at BIGINT)",
];

/// Version 2: the authentication methods of a session's sign-in (`amr`, a JSON list; NULL in
/// sessions stored before: they signed in with the password).
const V2: &[&str] = &["ALTER TABLE sessions ADD COLUMN amr TEXT"];

/// Every migration, in order.
const MIGRATIONS: &[(i64, &[&str])] = &[(1, V1), (2, V2)];

/// Applies the migrations not applied yet.
pub(super) async fn migrate(store: &Store) -> Result<(), StoreError> {
    let mut tx = store.pool.begin().await.map_err(map)?;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
    let applied = applied.unwrap_or(0);
    for (version, statements) in MIGRATIONS {
        if *version <= applied {
            continue;
        }
        for statement in *statements {
            sqlx::query(*statement)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(*version)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    tx.commit().await.map_err(map)
}
