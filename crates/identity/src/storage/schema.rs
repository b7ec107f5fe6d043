//! Identity's versioned migrations, applied at start-up by the shared runner
//! ([`cryptoutil_database::migrate`]). On PostgreSQL each run is one transaction under a
//! transaction-scoped advisory lock, so instances starting together are safe; a database whose
//! schema is newer than this binary is refused, naming both versions.
//!
//! The runner works on a typed connection of its own (the store's pool is a `sqlx::AnyPool`),
//! opened from the same URL for the run and closed afterwards.

use std::str::FromStr;

use cryptoutil_database::migrate::{self, Migration, MigrationError, PgScope};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{Backend, StoreError, map};

/// The advisory lock key of Identity's migrations ("cuidmigr").
const MIGRATION_LOCK: i64 = 0x6375_6964_6d69_6772;

/// Every migration, in order (portable DDL: booleans are `BIGINT` 0/1, see [`super`]).
pub(super) const PLAN: &[Migration] = &[
    Migration::portable(
        1,
        "every table",
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
        updated_at BIGINT NOT NULL);
    CREATE TABLE users (
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
        created_at BIGINT NOT NULL);
    CREATE TABLE grants (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        auth_time BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT);
    CREATE TABLE authorization_codes (
        code_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        code_challenge TEXT NOT NULL,
        nonce TEXT,
        scopes TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT);
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT);
    CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
    CREATE TABLE grant_access_tokens (
        jti TEXT PRIMARY KEY,
        grant_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL);
    CREATE INDEX grant_access_tokens_grant ON grant_access_tokens (grant_id);
    CREATE TABLE access_token_revocations (
        jti TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT NOT NULL);
    CREATE INDEX access_token_revocations_revoked ON access_token_revocations (revoked_at);
    CREATE TABLE used_assertions (
        client_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (client_id, jti));
    CREATE TABLE pushed_requests (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        parameters TEXT NOT NULL,
        expires_at BIGINT NOT NULL);
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id TEXT,
        auth_time BIGINT,
        pending_request TEXT,
        csrf_token TEXT NOT NULL,
        expires_at BIGINT NOT NULL);
    CREATE TABLE consents (
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, client_id));
    CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        sealed_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retire_at BIGINT)",
    ),
    // The authentication methods of a session's sign-in (`amr`, a JSON list; NULL in sessions
    // stored before: they signed in with the password).
    Migration::portable(
        2,
        "session sign-in methods",
        "ALTER TABLE sessions ADD COLUMN amr TEXT",
    ),
    // Sender-constrained, audience-bound and delegated tokens (RFC 9449, 8707, 8693): the
    // DPoP key and resources a code or refresh token is bound to (NULL: none), the clients'
    // DPoP and exchange policy, and the DPoP proofs seen (the replay cache every instance
    // shares).
    Migration::portable(
        3,
        "dpop, resources and token exchange",
        "ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
    ALTER TABLE authorization_codes ADD COLUMN resources TEXT;
    ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
    ALTER TABLE refresh_tokens ADD COLUMN resources TEXT;
    ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE clients ADD COLUMN may_act TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE clients ADD COLUMN impersonation BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE dpop_proofs (
        proof_key TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL);
    CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at)",
    ),
    // The device authorization grant (RFC 8628): keyed by the SHA-256 of the device code
    // (never stored), the user code (normal form) unique, the decision and the polling state.
    Migration::portable(
        4,
        "device authorization grant",
        "CREATE TABLE device_authorizations (
        device_code_hash TEXT PRIMARY KEY,
        user_code TEXT NOT NULL,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resources TEXT NOT NULL,
        dpop_jkt TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
        user_id TEXT,
        grant_id TEXT,
        interval_secs BIGINT NOT NULL,
        last_poll_at BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT);
    CREATE UNIQUE INDEX device_authorizations_user_code ON device_authorizations (user_code);
    CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at)",
    ),
    // Dynamic client registration (RFC 7591/7592): initial access tokens (SHA-256 of the
    // value, a cap and a count of clients created), and per registered client the SHA-256 of
    // its registration access token, how it was created and the metadata `clients` has no
    // column for (JSON).
    Migration::portable(
        5,
        "dynamic client registration",
        "CREATE TABLE initial_access_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        max_clients BIGINT NOT NULL,
        clients_created BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT);
    CREATE TABLE client_registrations (
        client_id TEXT PRIMARY KEY,
        registration_token_hash TEXT NOT NULL,
        created_by TEXT NOT NULL,
        initial_access_token_id TEXT,
        metadata TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    ),
    // Multi-factor and passwordless sign-in: TOTP authenticators (secret sealed under the
    // key-encryption key; the last accepted time step makes each code single-use), recovery
    // codes (PBKDF2, found by a public id), WebAuthn credentials and the challenges handed to
    // browser sessions; the `amr`/`acr` of a grant's sign-in, a client's MFA policy, and what
    // the account page shows of a session (a public id, when it started, the browser).
    Migration::portable(
        6,
        "multi-factor sign-in",
        "CREATE TABLE totp_factors (
        user_id TEXT PRIMARY KEY,
        sealed_secret TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        digits BIGINT NOT NULL,
        period_secs BIGINT NOT NULL,
        confirmed_at BIGINT,
        last_used_step BIGINT,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT);
    CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL,
        id TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        used_at BIGINT,
        PRIMARY KEY (user_id, id));
    CREATE TABLE webauthn_credentials (
        credential_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        algorithm BIGINT NOT NULL,
        sign_count BIGINT NOT NULL,
        transports TEXT NOT NULL,
        aaguid TEXT NOT NULL,
        attestation_format TEXT NOT NULL,
        discoverable BIGINT NOT NULL CHECK (discoverable IN (0, 1)),
        backup_eligible BIGINT NOT NULL CHECK (backup_eligible IN (0, 1)),
        backed_up BIGINT NOT NULL CHECK (backed_up IN (0, 1)),
        created_at BIGINT NOT NULL,
        last_used_at BIGINT);
    CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);
    CREATE TABLE webauthn_challenges (
        challenge_hash TEXT PRIMARY KEY,
        session_hash TEXT NOT NULL,
        purpose TEXT NOT NULL CHECK (purpose IN ('registration', 'authentication')),
        user_id TEXT,
        expires_at BIGINT NOT NULL);
    CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
    ALTER TABLE grants ADD COLUMN amr TEXT;
    ALTER TABLE grants ADD COLUMN acr TEXT;
    ALTER TABLE clients ADD COLUMN mfa TEXT;
    ALTER TABLE sessions ADD COLUMN public_id TEXT;
    ALTER TABLE sessions ADD COLUMN created_at BIGINT;
    ALTER TABLE sessions ADD COLUMN user_agent TEXT;
    CREATE INDEX sessions_user ON sessions (user_id)",
    ),
];

fn from_migration(e: MigrationError) -> StoreError {
    match e {
        MigrationError::Database(e) => map(e),
        newer @ MigrationError::NewerSchema { .. } => StoreError::NewerSchema(newer.to_string()),
        refused => StoreError::Corrupt(refused.to_string()),
    }
}

/// Applies the migrations not applied yet to the database at `url` (as given to the pool).
pub(super) async fn migrate(url: &str, backend: Backend) -> Result<(), StoreError> {
    let invalid = |e: sqlx::Error| StoreError::Corrupt(format!("database.url: {e}"));
    match backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnectOptions::from_str(url)
                .map_err(invalid)?
                .disable_statement_logging()
                .connect()
                .await
                .map_err(map)?;
            let outcome = migrate::migrate_sqlite(&mut conn, PLAN).await;
            let _ = conn.close().await;
            outcome.map(drop).map_err(from_migration)
        }
        Backend::Postgres => {
            let mut conn = PgConnectOptions::from_str(url)
                .map_err(invalid)?
                .disable_statement_logging()
                .connect()
                .await
                .map_err(map)?;
            let scope = PgScope {
                schema: None,
                lock: MIGRATION_LOCK,
            };
            let outcome = migrate::migrate_postgres(&mut conn, scope, PLAN).await;
            let _ = conn.close().await;
            outcome.map(drop).map_err(from_migration)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use sqlx::SqliteConnection;

    use super::*;
    use crate::storage::{DatabaseSettings, Store};

    async fn raw(path: &std::path::Path) -> SqliteConnection {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap()
    }

    async fn versions(path: &std::path::Path) -> Vec<(i64, String)> {
        let mut conn = raw(path).await;
        let rows = sqlx::query_as("SELECT version, name FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows
    }

    /// A database written by release 0.1 (bookkeeping with `version` only) opens, and its
    /// bookkeeping gains the runner's columns.
    #[tokio::test]
    async fn a_database_of_release_0_1_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.db");
        let mut conn = raw(&path).await;
        let old = format!(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY);
             INSERT INTO schema_migrations (version) VALUES (1);
             {}",
            PLAN[0].sqlite
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(old))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let settings = DatabaseSettings::with_url(format!("sqlite://{}", path.display()));
        let store = Store::connect(&settings).await.unwrap();
        store.close().await;
        assert_eq!(
            versions(&path).await,
            vec![
                (1, String::new()),
                (2, "session sign-in methods".to_owned()),
                (3, "dpop, resources and token exchange".to_owned()),
                (4, "device authorization grant".to_owned()),
                (5, "dynamic client registration".to_owned()),
                (6, "multi-factor sign-in".to_owned())
            ]
        );
    }

    /// A schema newer than this binary is refused, naming both versions, and left as it was.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.db");
        let settings = DatabaseSettings::with_url(format!("sqlite://{}", path.display()));
        Store::connect(&settings).await.unwrap().close().await;
        assert_eq!(
            versions(&path).await,
            vec![
                (1, "every table".to_owned()),
                (2, "session sign-in methods".to_owned()),
                (3, "dpop, resources and token exchange".to_owned()),
                (4, "device authorization grant".to_owned()),
                (5, "dynamic client registration".to_owned()),
                (6, "multi-factor sign-in".to_owned())
            ]
        );
        let mut conn = raw(&path).await;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        match Store::connect(&settings).await {
            Err(StoreError::NewerSchema(message)) => {
                assert!(
                    message.contains("version 999") && message.contains("up to 6"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(versions(&path).await.len(), 7);
    }
}
