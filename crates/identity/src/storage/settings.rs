//! `database:` settings of `identity.yml`: the shared [`cryptoutil_database::DatabaseSettings`]
//! with Identity's defaults, documentation and bounds.

use std::time::Duration;

use cryptoutil_database::{DatabaseProfile, Target};

use super::Backend;

/// The default database: an embedded SQLite file `identity.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://identity.db";

/// Identity's [`DatabaseProfile`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityDatabase;

impl DatabaseProfile for IdentityDatabase {
    const DEFAULT_URL: &'static str = DEFAULT_DATABASE_URL;
    const SECTION_DOC: &'static str =
        "Database settings (the `database:` section of `identity.yml`).";
    const URL_DOC: &'static str =
        "Where the data lives (default `sqlite://identity.db`): `sqlite://path.db` (a file,
created if missing), `sqlite::memory:` (gone when the process ends; `--dev` and tests) or
`postgres://user:password@host:5432/db?sslmode=verify-full` (shared by several
instances). A secret because it may carry a password: prefer `file:///run/secrets/<name>`.";
    const MAX_CONNECTIONS_DOC: &'static str = "Largest number of pooled connections.";
    const MIN_CONNECTIONS: u32 = 1;
    const MIN_ACQUIRE_TIMEOUT: Duration = Duration::from_nanos(1);
    const MAX_ACQUIRE_TIMEOUT: Duration = Duration::MAX;
    const ACQUIRE_TIMEOUT_RULE: &'static str = "must be positive";
}

/// Database settings (the `database:` section of `identity.yml`).
pub type DatabaseSettings = cryptoutil_database::DatabaseSettings<IdentityDatabase>;

/// The URL handed to sqlx and its backend: SQLite files are opened read-write-create.
///
/// `sqlite::memory:` becomes a uniquely named shared-cache in-memory database: the `Any` driver
/// parses the URL again for every pooled connection, and a plain `sqlite::memory:` would give
/// each connection a separate, empty database.
pub(crate) fn connection_url(settings: &DatabaseSettings) -> Result<(String, Backend), String> {
    match settings
        .target()
        .map_err(|message| format!("database.url: {message}"))?
    {
        Target::SqliteMemory => {
            let name = uuid::Uuid::now_v7().simple();
            Ok((
                format!("sqlite:file:cryptoutil-identity-{name}?mode=memory&cache=shared"),
                Backend::Sqlite,
            ))
        }
        Target::SqliteFile(path) => Ok((
            format!("sqlite://{}?mode=rwc", path.display()),
            Backend::Sqlite,
        )),
        Target::Postgres => Ok((settings.url.expose().to_owned(), Backend::Postgres)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use cryptoutil_server::config::{HumanDuration, Validator};

    use super::*;

    #[test]
    fn urls_and_bounds() {
        let url = |u: &str| connection_url(&DatabaseSettings::with_url(u));
        assert_eq!(
            url("sqlite:///var/lib/identity.db").unwrap(),
            (
                "sqlite:///var/lib/identity.db?mode=rwc".to_owned(),
                Backend::Sqlite
            )
        );
        assert_eq!(
            url("sqlite://identity.db").unwrap().0,
            "sqlite://identity.db?mode=rwc"
        );
        let memory = url("sqlite::memory:").unwrap().0;
        assert!(memory.contains("mode=memory&cache=shared"), "{memory}");
        assert_ne!(memory, url("sqlite::memory:").unwrap().0);
        assert_eq!(url("postgres://h/db").unwrap().1, Backend::Postgres);
        assert!(url("mysql://h/db").is_err());
        // Identity accepts a single connection and any positive timeout.
        let small = DatabaseSettings {
            max_connections: 1,
            acquire_timeout: HumanDuration(Duration::from_millis(1)),
            ..DatabaseSettings::default()
        };
        let mut v = Validator::default();
        small.validate(&mut v);
        assert!(v.finish().is_ok());
        let zero = DatabaseSettings {
            acquire_timeout: HumanDuration(Duration::ZERO),
            ..DatabaseSettings::default()
        };
        let mut v = Validator::default();
        zero.validate(&mut v);
        assert!(v.finish().is_err());
    }
}
