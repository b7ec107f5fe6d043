//! `database:` settings of `kms.yml`.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{HumanDuration, Secret, Validator};

/// The default database: an embedded SQLite file `kms.db` in the working directory (tenant databases
/// are created beside it as `kms.tenant_<hex>.db`).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://kms.db";

/// Database settings (the `database:` section of `kms.yml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Where the data lives (default `sqlite://kms.db`):
    /// `sqlite:///absolute/path.db` or `sqlite://relative/path.db` (a file, created if missing;
    /// tenant databases go beside it), `sqlite::memory:` (in-memory, gone when the process ends;
    /// for `--dev` and tests), or `postgres://user:password@host:5432/db?sslmode=verify-full`
    /// (shared by several instances; TLS as the URL's `sslmode` says). A secret because it may
    /// carry a password: prefer `file:///run/secrets/<name>`.
    #[schemars(extend("default" = DEFAULT_DATABASE_URL))]
    #[serde(serialize_with = "cryptoutil_server::config::serialize_database_url")]
    pub url: Secret,
    /// Largest number of pooled connections (PostgreSQL: per instance; SQLite: per database file).
    /// At least 2: the start-up lock holds one connection while initialisation uses another.
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

/// What a database URL designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `sqlite::memory:`.
    SqliteMemory,
    /// A SQLite file.
    SqliteFile(PathBuf),
    /// A PostgreSQL URL (kept in the settings' secret).
    Postgres,
}

impl DatabaseSettings {
    /// Settings for a URL with the default pool settings (handy for tests and tools).
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            ..Self::default()
        }
    }

    /// Load-time checks; problems are reported under `database.*`.
    pub fn validate(&self, v: &mut Validator) {
        if let Err(message) = self.target() {
            v.problem("database.url", &message);
        }
        v.check(
            "database.max_connections",
            (2..=1000).contains(&self.max_connections),
            "must be between 2 and 1000",
        );
        let t = self.acquire_timeout.get();
        v.check(
            "database.acquire_timeout",
            t >= Duration::from_millis(100) && t <= Duration::from_secs(600),
            "must be between 100ms and 10m",
        );
    }

    /// True for `sqlite::memory:` (nothing survives the process).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.target(), Ok(Target::SqliteMemory))
    }

    /// Parses the URL. Error messages never repeat the URL (it may hold a password).
    pub(crate) fn target(&self) -> Result<Target, String> {
        let url = self.url.expose();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres);
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(
                "must start with sqlite:// (a file), be sqlite::memory:, or start with postgres://"
                    .to_owned(),
            );
        };
        if rest == ":memory:" {
            return Ok(Target::SqliteMemory);
        }
        if rest.is_empty() || rest.ends_with('/') {
            return Err("a SQLite URL must name a file, such as sqlite://kms.db".to_owned());
        }
        if rest.contains(['?', '#']) {
            return Err(
                "SQLite URLs take no parameters; write sqlite:///path/to/kms.db".to_owned(),
            );
        }
        Ok(Target::SqliteFile(PathBuf::from(rest)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn problems(s: &DatabaseSettings) -> usize {
        let mut v = Validator::default();
        s.validate(&mut v);
        v.finish().map_or_else(|e| e.problems.len(), |()| 0)
    }

    #[test]
    fn url_forms() {
        let t = |u: &str| DatabaseSettings::with_url(u).target();
        assert_eq!(t("sqlite::memory:"), Ok(Target::SqliteMemory));
        assert_eq!(
            t("sqlite:///var/lib/kms.db"),
            Ok(Target::SqliteFile("/var/lib/kms.db".into()))
        );
        assert_eq!(
            t("sqlite://kms.db"),
            Ok(Target::SqliteFile("kms.db".into()))
        );
        assert_eq!(t("postgres://u:p@h/db"), Ok(Target::Postgres));
        assert_eq!(t("postgresql://h/db"), Ok(Target::Postgres));
        for bad in [
            "mysql://h/db",
            "sqlite://",
            "sqlite://dir/",
            "sqlite://a.db?mode=ro",
            "kms.db",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let err = t("mysql://user:hunter2@h/db").unwrap_err();
        assert!(!err.contains("hunter2"));
        assert!(DatabaseSettings::with_url("sqlite::memory:").is_in_memory());
        assert!(!DatabaseSettings::default().is_in_memory());
    }

    #[test]
    fn validation() {
        assert_eq!(problems(&DatabaseSettings::default()), 0);
        let bad = DatabaseSettings {
            url: Secret::new("nope"),
            max_connections: 1,
            acquire_timeout: HumanDuration(Duration::from_millis(1)),
        };
        assert_eq!(problems(&bad), 3);
    }

    #[test]
    fn deserializes_strictly_and_never_serializes_the_url() {
        let s: DatabaseSettings = serde_json::from_str(
            r#"{"url":"postgres://u:hunter2@h/db","max_connections":4,"acquire_timeout":"2s"}"#,
        )
        .unwrap();
        assert_eq!(s.max_connections, 4);
        assert_eq!(s.acquire_timeout.get(), Duration::from_secs(2));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        assert!(serde_json::from_str::<DatabaseSettings>(r#"{"uri":"x"}"#).is_err());
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
        let yaml = serde_json::to_string(&DatabaseSettings::with_url("sqlite::memory:")).unwrap();
        assert!(yaml.contains("sqlite::memory:"), "{yaml}");
    }
}
