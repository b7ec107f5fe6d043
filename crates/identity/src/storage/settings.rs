//! `database:` settings of `identity.yml`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{HumanDuration, Secret, Validator};

use super::Backend;

/// The default database: an embedded SQLite file `identity.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://identity.db";

/// Database settings (the `database:` section of `identity.yml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Where the data lives (default `sqlite://identity.db`): `sqlite://path.db` (a file,
    /// created if missing), `sqlite::memory:` (gone when the process ends; `--dev` and tests) or
    /// `postgres://user:password@host:5432/db?sslmode=verify-full` (shared by several
    /// instances). A secret because it may carry a password: prefer `file:///run/secrets/<name>`.
    #[schemars(extend("default" = DEFAULT_DATABASE_URL))]
    #[serde(serialize_with = "cryptoutil_server::config::serialize_database_url")]
    pub url: Secret,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing with 503 (default 5s).
    pub acquire_timeout: HumanDuration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new(DEFAULT_DATABASE_URL),
            max_connections: 10,
            acquire_timeout: HumanDuration::from_secs(5),
        }
    }
}

impl DatabaseSettings {
    /// Settings for a URL with the default pool settings.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            ..Self::default()
        }
    }

    /// True for `sqlite::memory:`.
    pub fn is_in_memory(&self) -> bool {
        self.url.expose() == "sqlite::memory:"
    }

    /// The URL handed to sqlx and its backend: SQLite files are opened read-write-create.
    ///
    /// `sqlite::memory:` becomes a uniquely named shared-cache in-memory database: the `Any`
    /// driver parses the URL again for every pooled connection, and a plain `sqlite::memory:`
    /// would give each connection a separate, empty database.
    pub(crate) fn connection_url(&self) -> Result<(String, Backend), String> {
        let url = self.url.expose();
        if url == "sqlite::memory:" {
            let name = uuid::Uuid::now_v7().simple();
            return Ok((
                format!("sqlite:file:cryptoutil-identity-{name}?mode=memory&cache=shared"),
                Backend::Sqlite,
            ));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            if path.is_empty() || path.contains('?') {
                return Err(
                    "database.url: expected sqlite://path.db (no query parameters) or \
                     sqlite::memory:"
                        .to_owned(),
                );
            }
            return Ok((format!("sqlite://{path}?mode=rwc"), Backend::Sqlite));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok((url.to_owned(), Backend::Postgres));
        }
        Err("database.url: expected sqlite://…, sqlite::memory: or postgres://…".to_owned())
    }

    /// Load-time checks, reported under `database.*`.
    pub fn validate(&self, v: &mut Validator) {
        if let Err(message) = self.connection_url() {
            v.problem("database.url", &message);
        }
        v.check(
            "database.max_connections",
            (1..=1000).contains(&self.max_connections),
            "must be between 1 and 1000",
        );
        v.check(
            "database.acquire_timeout",
            !self.acquire_timeout.get().is_zero(),
            "must be positive",
        );
    }
}
