//! Throwaway PostgreSQL databases on the server named by [`URL_VARIABLE`]: one per test, named
//! with a UUIDv7 so parallel tests and runs never collide, dropped when the test is done with it.

use std::future::Future;

use sqlx::Connection;

/// The variable naming the PostgreSQL server tests may create databases on (a URL whose user may
/// create and drop databases). CI sets it; without it PostgreSQL tests skip, loudly.
pub const URL_VARIABLE: &str = "CRYPTOUTIL_TEST_POSTGRES_URL";

/// A fresh database. Dropped by [`TestDatabase::drop`] or, when the test ends without calling it
/// (a failed assertion, a synchronous test), when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL of this database (the server's URL with the database's name).
    pub url: String,
    admin_url: String,
    name: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates a database named `<prefix>_<uuid v7>` (`prefix`: lower-case letters, digits and
    /// `_`), or returns `None` after a `SKIPPED` line on stderr when [`URL_VARIABLE`] is unset.
    pub async fn create(prefix: &str) -> Option<Self> {
        let (admin_url, name) = plan(prefix)?;
        admin(&admin_url, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        Some(Self::new(admin_url, name))
    }

    /// [`TestDatabase::create`] for a synchronous test (runs on a runtime of its own).
    pub fn create_blocking(prefix: &str) -> Option<Self> {
        let (admin_url, name) = plan(prefix)?;
        let statement = format!("CREATE DATABASE {name}");
        let url = admin_url.clone();
        on_own_runtime(async move { admin(&url, &statement).await })
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        Some(Self::new(admin_url, name))
    }

    fn new(admin_url: String, name: String) -> Self {
        Self {
            url: database_url(&admin_url, &name),
            admin_url,
            name,
            dropped: false,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Terminates every server-side connection to this database (and only this one), as an
    /// administrator or a PostgreSQL restart would; returns how many were terminated.
    pub async fn terminate_connections(&self) -> i64 {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VARIABLE}: {e}"));
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .fetch_one(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot terminate the connections to {}: {e}", self.name));
        count
    }

    /// Drops the database now, closing any connection still open on it.
    pub async fn drop(mut self) {
        self.dropped = true;
        admin(&self.admin_url, &drop_statement(&self.name))
            .await
            .unwrap_or_else(|e| panic!("cannot drop the test database {}: {e}", self.name));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let url = self.admin_url.clone();
        let statement = drop_statement(&self.name);
        if let Err(e) = on_own_runtime(async move { admin(&url, &statement).await }) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// The server's URL and a new database name, or `None` (with the loud line) without the variable.
fn plan(prefix: &str) -> Option<(String, String)> {
    assert!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "a test database prefix is lower-case letters, digits and `_`: {prefix:?}"
    );
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => {
            Some((url, format!("{prefix}_{}", uuid::Uuid::now_v7().simple())))
        }
        _ => {
            let test = std::thread::current().name().unwrap_or(prefix).to_owned();
            eprintln!("SKIPPED (set {URL_VARIABLE}): PostgreSQL test {test} not run");
            None
        }
    }
}

fn drop_statement(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
}

/// The server URL with its database replaced by `name` (its query, if any, kept).
fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs one administrative statement on its own connection.
async fn admin(admin_url: &str, statement: &str) -> Result<(), sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut connection)
        .await?;
    connection.close().await
}

/// Runs `work` to completion on a thread with a runtime of its own: usable from synchronous
/// tests, from `Drop`, and while the test's runtime is busy or shutting down.
fn on_own_runtime<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a test database statement")
            .block_on(work)
    })
    .join()
    .unwrap_or_else(|_| panic!("the test database statement's thread panicked"))
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_replaces_the_servers_database_and_keeps_the_query() {
        assert_eq!(
            database_url("postgres://u@h:5432/test", "db_1"),
            "postgres://u@h:5432/db_1"
        );
        assert_eq!(
            database_url("postgres://u@h:5432/test?sslmode=disable", "db_1"),
            "postgres://u@h:5432/db_1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://u@h:5432", "db_1"),
            "postgres://u@h:5432/db_1"
        );
    }
}
