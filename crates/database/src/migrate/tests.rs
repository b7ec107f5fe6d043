//! The runner on SQLite and, when `CRYPTOUTIL_TEST_POSTGRES_URL` names a server, on PostgreSQL
//! (throwaway databases and schemas with UUIDv7 names, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};

use super::*;

/// Two tables and a log row per migration: a migration applied twice shows as two log rows.
const PLAN: &[Migration] = &[
    Migration::portable(
        1,
        "log and first table",
        "CREATE TABLE migration_log (version BIGINT NOT NULL);
         INSERT INTO migration_log (version) VALUES (1);
         CREATE TABLE first (id TEXT PRIMARY KEY NOT NULL);",
    ),
    Migration {
        version: 2,
        name: "second table",
        sqlite: "CREATE TABLE second (flag BOOLEAN NOT NULL);
                 INSERT INTO migration_log (version) VALUES (2);",
        postgres: r#"CREATE TABLE second (flag BOOLEAN NOT NULL, label TEXT COLLATE "C");
                   INSERT INTO migration_log (version) VALUES (2);"#,
    },
    Migration::portable(
        3,
        "index",
        "CREATE INDEX first_id ON first (id); INSERT INTO migration_log (version) VALUES (3);",
    ),
];

/// The lock key of these tests ("cuDBtest").
const LOCK: i64 = 0x6375_4442_7465_7374;

#[test]
fn plans_must_be_numbered_from_one() {
    assert!(check_plan(PLAN).is_ok());
    assert!(check_plan(&[]).is_ok());
    assert!(matches!(
        check_plan(&PLAN[1..]),
        Err(MigrationError::InvalidPlan(_))
    ));
    assert_eq!(newest_version(PLAN), 3);
}

#[test]
fn the_newer_schema_message_names_both_versions() {
    let err = check_not_newer(&[1, 2, 999], PLAN).unwrap_err();
    assert!(matches!(
        err,
        MigrationError::NewerSchema {
            found: 999,
            known: 3
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("999") && message.contains(" 3"),
        "{message}"
    );
    assert!(message.contains("newer than this binary"), "{message}");
    assert!(check_not_newer(&[1, 2], PLAN).is_ok());
}

// ---- SQLite ----

async fn sqlite(dir: &tempfile::TempDir) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(dir.path().join("test.db"))
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

async fn sqlite_log(conn: &mut SqliteConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM migration_log ORDER BY version")
        .fetch_all(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_applies_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = sqlite(&dir).await;
    assert_eq!(
        migrate_sqlite(&mut conn, &PLAN[..1]).await.unwrap(),
        vec![1]
    );
    assert_eq!(migrate_sqlite(&mut conn, PLAN).await.unwrap(), vec![2, 3]);
    assert!(migrate_sqlite(&mut conn, PLAN).await.unwrap().is_empty());
    assert_eq!(sqlite_log(&mut conn).await, vec![1, 2, 3]);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(names, ["log and first table", "second table", "index"]);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = sqlite(&dir).await;
    migrate_sqlite(&mut conn, &PLAN[..1]).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'x', 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = migrate_sqlite(&mut conn, PLAN).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            MigrationError::NewerSchema {
                found: 999,
                known: 3
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("999") && message.contains("up to 3"),
        "{message}"
    );
    assert_eq!(sqlite_log(&mut conn).await, vec![1]);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_upgrades_a_version_only_bookkeeping_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = sqlite(&dir).await;
    // What Identity 0.1 wrote: version 1 applied, bookkeeping with `version` only.
    sqlx::raw_sql(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY);
         INSERT INTO schema_migrations (version) VALUES (1);
         CREATE TABLE migration_log (version BIGINT NOT NULL);
         INSERT INTO migration_log (version) VALUES (1);
         CREATE TABLE first (id TEXT PRIMARY KEY NOT NULL);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(migrate_sqlite(&mut conn, PLAN).await.unwrap(), vec![2, 3]);
    assert_eq!(sqlite_log(&mut conn).await, vec![1, 2, 3]);
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, name FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows[0], (1, String::new()));
    assert_eq!(rows[2], (3, "index".to_owned()));
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_runs_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let runs = (0..4).map(|_| {
        let path = path.clone();
        tokio::spawn(async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(30))
                .connect()
                .await
                .unwrap();
            let done = migrate_sqlite(&mut conn, PLAN).await.unwrap();
            conn.close().await.unwrap();
            done
        })
    });
    let mut applied: Vec<i64> = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        applied.extend(run.await.unwrap());
    }
    applied.sort_unstable();
    assert_eq!(applied, vec![1, 2, 3]);
    let mut conn = sqlite(&dir).await;
    assert_eq!(sqlite_log(&mut conn).await, vec![1, 2, 3]);
    conn.close().await.unwrap();
}

// ---- PostgreSQL ----

/// The server's URL, or `None` after a loud note (the test then passes without running).
fn postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("CRYPTOUTIL_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        eprintln!(
            "\n*** SKIPPED {test}: set CRYPTOUTIL_TEST_POSTGRES_URL \
             (e.g. postgres://postgres@127.0.0.1:5432/test) to run it on PostgreSQL ***\n"
        );
    }
    url
}

/// A database `cryptoutil_database_<uuidv7>` created for one test: runs `body` with its connect
/// options, drops the database (also when `body` panicked), then reports `body`'s outcome.
async fn with_throwaway_database<F, Fut>(url: &str, body: F)
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = PgConnectOptions::from_str(url).unwrap();
    let name = format!("cryptoutil_database_{}", uuid::Uuid::now_v7().simple());
    let mut conn = admin.connect().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let outcome = tokio::spawn(body(admin.clone().database(&name))).await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn pg_log(conn: &mut PgConnection, schema: Option<&str>) -> Vec<i64> {
    let table = schema.map_or("migration_log".to_owned(), |s| format!("{s}.migration_log"));
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM {table} ORDER BY version"
    )))
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_applies_in_order_once_and_refuses_a_newer_schema() {
    let Some(url) = postgres_url("postgres_applies_in_order_once_and_refuses_a_newer_schema")
    else {
        return;
    };
    with_throwaway_database(&url, |options| async move {
        let mut conn = options.connect().await.unwrap();
        let scope = PgScope {
            schema: None,
            lock: LOCK,
        };
        let first = migrate_postgres(&mut conn, scope, &PLAN[..1])
            .await
            .unwrap();
        assert_eq!(first, vec![1]);
        assert_eq!(
            migrate_postgres(&mut conn, scope, PLAN).await.unwrap(),
            vec![2, 3]
        );
        assert!(
            migrate_postgres(&mut conn, scope, PLAN)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(pg_log(&mut conn, None).await, vec![1, 2, 3]);
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'x', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let err = migrate_postgres(&mut conn, scope, PLAN).await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(
                err,
                MigrationError::NewerSchema {
                    found: 999,
                    known: 3
                }
            ),
            "{message}"
        );
        assert!(
            message.contains("999") && message.contains("up to 3"),
            "{message}"
        );
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn postgres_schemas_are_migrated_separately() {
    let Some(url) = postgres_url("postgres_schemas_are_migrated_separately") else {
        return;
    };
    with_throwaway_database(&url, |options| async move {
        let mut conn = options.connect().await.unwrap();
        let a = format!("scope_{}", uuid::Uuid::now_v7().simple());
        let b = format!("scope_{}", uuid::Uuid::now_v7().simple());
        let scope = |schema| PgScope {
            schema: Some(schema),
            lock: LOCK,
        };
        assert_eq!(
            migrate_postgres(&mut conn, scope(&a), PLAN).await.unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            migrate_postgres(&mut conn, scope(&b), &PLAN[..2])
                .await
                .unwrap(),
            vec![1, 2]
        );
        assert!(
            migrate_postgres(&mut conn, scope(&a), PLAN)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(pg_log(&mut conn, Some(&a)).await, vec![1, 2, 3]);
        assert_eq!(pg_log(&mut conn, Some(&b)).await, vec![1, 2]);
        // The caller's transaction: its own statements commit with the migrations, or not at all.
        let mut tx = conn.begin().await.unwrap();
        assert_eq!(
            apply_postgres(&mut tx, scope(&b), PLAN).await.unwrap(),
            vec![3]
        );
        tx.rollback().await.unwrap();
        assert_eq!(pg_log(&mut conn, Some(&b)).await, vec![1, 2]);
        // Nothing leaks into the connection's own schema.
        let public: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(public, 0);
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn postgres_upgrades_a_version_only_bookkeeping_table() {
    let Some(url) = postgres_url("postgres_upgrades_a_version_only_bookkeeping_table") else {
        return;
    };
    with_throwaway_database(&url, |options| async move {
        let mut conn = options.connect().await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY);
             INSERT INTO schema_migrations (version) VALUES (1);
             CREATE TABLE migration_log (version BIGINT NOT NULL);
             INSERT INTO migration_log (version) VALUES (1);
             CREATE TABLE first (id TEXT PRIMARY KEY NOT NULL);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let scope = PgScope {
            schema: None,
            lock: LOCK,
        };
        assert_eq!(
            migrate_postgres(&mut conn, scope, PLAN).await.unwrap(),
            vec![2, 3]
        );
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM schema_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(names, ["", "second table", "index"]);
        conn.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_starts_apply_each_migration_once() {
    let Some(url) = postgres_url("postgres_concurrent_starts_apply_each_migration_once") else {
        return;
    };
    with_throwaway_database(&url, |options| async move {
        // Four "instances", each with its own pool, starting together.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let options = options.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(2)
                        .connect_with(options)
                        .await
                        .unwrap();
                    let mut conn = pool.acquire().await.unwrap();
                    barrier.wait().await;
                    let scope = PgScope {
                        schema: Some("shared"),
                        lock: LOCK,
                    };
                    let done = migrate_postgres(&mut conn, scope, PLAN).await.unwrap();
                    drop(conn);
                    pool.close().await;
                    done
                })
            })
            .collect();
        let mut applied = Vec::new();
        for run in runs {
            applied.extend(run.await.unwrap());
        }
        applied.sort_unstable();
        assert_eq!(applied, vec![1, 2, 3]);
        let mut conn = options.connect().await.unwrap();
        assert_eq!(pg_log(&mut conn, Some("shared")).await, vec![1, 2, 3]);
        conn.close().await.unwrap();
    })
    .await;
}
