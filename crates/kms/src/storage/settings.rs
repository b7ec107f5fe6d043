//! `database:` settings of `kms.yml`: the shared [`cryptoutil_database::DatabaseSettings`] with
//! the KMS's defaults, documentation and bounds.

use std::time::Duration;

use cryptoutil_database::DatabaseProfile;

/// The default database: an embedded SQLite file `kms.db` in the working directory (tenant databases
/// are created beside it as `kms.tenant_<hex>.db`).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kms.db";

/// The KMS's [`DatabaseProfile`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KmsDatabase;

impl DatabaseProfile for KmsDatabase {
    const DEFAULT_URL: &'static str = DEFAULT_DATABASE_URL;
    const SECTION_DOC: &'static str = "Database settings (the `database:` section of `kms.yml`).";
    const URL_DOC: &'static str = "Where the data lives (default `sqlite://kms.db`):
`sqlite:///absolute/path.db` or `sqlite://relative/path.db` (a file, created if missing;
tenant databases go beside it), `sqlite::memory:` (in-memory, gone when the process ends;
for `--dev` and tests), or `postgres://user:password@host:5432/db?sslmode=verify-full`
(shared by several instances; TLS as the URL's `sslmode` says). A secret because it may
carry a password: prefer `file:///run/secrets/<name>`.";
    const MAX_CONNECTIONS_DOC: &'static str = "Largest number of pooled connections (PostgreSQL: per instance; SQLite: per database file).
At least 2: the start-up lock holds one connection while initialisation uses another.";
    const MIN_CONNECTIONS: u32 = 2;
    const MIN_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(100);
    const MAX_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(600);
    const ACQUIRE_TIMEOUT_RULE: &'static str = "must be between 100ms and 10m";
}

/// Database settings (the `database:` section of `kms.yml`).
pub type DatabaseSettings = cryptoutil_database::DatabaseSettings<KmsDatabase>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use cryptoutil_server::config::{HumanDuration, Secret, Validator};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::*;

    fn problems(s: &DatabaseSettings) -> usize {
        let mut v = Validator::default();
        s.validate(&mut v);
        v.finish().map_or_else(|e| e.problems.len(), |()| 0)
    }

    #[test]
    fn validation() {
        assert_eq!(problems(&DatabaseSettings::default()), 0);
        let bad = DatabaseSettings {
            url: Secret::new("nope"),
            max_connections: 1,
            acquire_timeout: HumanDuration(Duration::from_millis(1)),
            ..DatabaseSettings::default()
        };
        assert_eq!(problems(&bad), 3);
        assert!(DatabaseSettings::with_url("sqlite::memory:").is_in_memory());
        assert!(!DatabaseSettings::default().is_in_memory());
    }

    #[test]
    fn the_schema_shows_the_default_url() {
        let schema = serde_json::to_string(&schemars::schema_for!(DatabaseSettings)).unwrap();
        assert!(schema.contains(DEFAULT_DATABASE_URL), "{schema}");
        // Embedded with defaults (as in kms.yml), the default URL is shown, never "<redacted>".
        #[derive(Default, Serialize, Deserialize, JsonSchema)]
        #[serde(default)]
        struct Outer {
            database: DatabaseSettings,
        }
        let schema = serde_json::to_string(&schemars::schema_for!(Outer)).unwrap();
        assert!(schema.contains(DEFAULT_DATABASE_URL), "{schema}");
        assert!(!schema.contains("redacted"), "{schema}");
    }
}
