//! The `database:` section of a product's configuration file.
//!
//! One type for every product: [`DatabaseSettings<P>`] has the same keys everywhere (`url`,
//! `max_connections`, `acquire_timeout`); what differs between products (the default URL, the
//! documented meaning, the accepted pool bounds) comes from a [`DatabaseProfile`] the product
//! implements on a marker type.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{HumanDuration, Secret, Validator};

/// What a product says about its database: defaults, documentation shown in the generated JSON
/// schema, and the bounds [`DatabaseSettings::validate`] enforces.
pub trait DatabaseProfile:
    Debug + Clone + Copy + Default + PartialEq + Eq + Send + Sync + 'static
{
    /// The URL used when the configuration names none, such as `sqlite://kms.db`.
    const DEFAULT_URL: &'static str;
    /// The schema description of the whole section.
    const SECTION_DOC: &'static str;
    /// The schema description of `url`.
    const URL_DOC: &'static str;
    /// The schema description of `max_connections`.
    const MAX_CONNECTIONS_DOC: &'static str;
    /// The smallest `max_connections` accepted (the largest is 1000).
    const MIN_CONNECTIONS: u32;
    /// The shortest `acquire_timeout` accepted.
    const MIN_ACQUIRE_TIMEOUT: Duration;
    /// The longest `acquire_timeout` accepted.
    const MAX_ACQUIRE_TIMEOUT: Duration;
    /// The problem reported when `acquire_timeout` is out of bounds, such as
    /// `must be between 100ms and 10m`.
    const ACQUIRE_TIMEOUT_RULE: &'static str;
}

/// The largest `max_connections` accepted.
pub const MAX_CONNECTIONS_LIMIT: u32 = 1000;

/// Database settings: the `database:` section of a product's configuration file, with the
/// product's defaults and bounds from `P`.
///
/// The schema's descriptions come from `P` (see [`DatabaseProfile`]); the field comments below
/// are for readers of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(
    rename = "DatabaseSettings",
    bound = "P: DatabaseProfile",
    transform = Self::describe
)]
pub struct DatabaseSettings<P: DatabaseProfile> {
    /// Where the data lives: a SQLite file, `sqlite::memory:` or a PostgreSQL URL. A secret
    /// because it may carry a password.
    #[serde(serialize_with = "cryptoutil_server::config::serialize_database_url")]
    pub url: Secret,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing with 503 (default 5s).
    pub acquire_timeout: HumanDuration,
    /// Which product's defaults and bounds apply (no data; public so that settings can be
    /// written with `..DatabaseSettings::with_url(…)`).
    #[serde(skip)]
    #[schemars(skip)]
    pub profile: PhantomData<P>,
}

impl<P: DatabaseProfile> Default for DatabaseSettings<P> {
    fn default() -> Self {
        Self {
            url: Secret::new(P::DEFAULT_URL),
            max_connections: 10,
            acquire_timeout: HumanDuration::from_secs(5),
            profile: PhantomData,
        }
    }
}

/// What a database URL designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `sqlite::memory:`: gone when the process ends.
    SqliteMemory,
    /// A SQLite file (created if missing).
    SqliteFile(PathBuf),
    /// A PostgreSQL URL (kept in the settings' secret).
    Postgres,
}

impl<P: DatabaseProfile> DatabaseSettings<P> {
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
            (P::MIN_CONNECTIONS..=MAX_CONNECTIONS_LIMIT).contains(&self.max_connections),
            &format!(
                "must be between {} and {MAX_CONNECTIONS_LIMIT}",
                P::MIN_CONNECTIONS
            ),
        );
        let t = self.acquire_timeout.get();
        v.check(
            "database.acquire_timeout",
            t >= P::MIN_ACQUIRE_TIMEOUT && t <= P::MAX_ACQUIRE_TIMEOUT,
            P::ACQUIRE_TIMEOUT_RULE,
        );
    }

    /// True for `sqlite::memory:` (nothing survives the process).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.target(), Ok(Target::SqliteMemory))
    }

    /// Parses the URL. Error messages never repeat the URL (it may hold a password).
    pub fn target(&self) -> Result<Target, String> {
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
            return Err(format!(
                "a SQLite URL must name a file, such as {}",
                P::DEFAULT_URL
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(
                "SQLite URLs take no parameters; write sqlite:///path/to/file.db".to_owned(),
            );
        }
        Ok(Target::SqliteFile(PathBuf::from(rest)))
    }

    /// Puts the profile's descriptions and default URL into the derived schema.
    fn describe(schema: &mut schemars::Schema) {
        schema.insert("description".to_owned(), P::SECTION_DOC.into());
        let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
            return;
        };
        let mut set = |property: &str, key: &str, value: &str| {
            if let Some(p) = properties.get_mut(property).and_then(|p| p.as_object_mut()) {
                p.insert(key.to_owned(), value.into());
            }
        };
        set("url", "description", P::URL_DOC);
        // The default URL is shown even though `url` serializes as a secret.
        set("url", "default", P::DEFAULT_URL);
        set("max_connections", "description", P::MAX_CONNECTIONS_DOC);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    struct Test;

    impl DatabaseProfile for Test {
        const DEFAULT_URL: &'static str = "sqlite://test.db";
        const SECTION_DOC: &'static str =
            "Database settings (the `database:` section of test.yml).";
        const URL_DOC: &'static str = "Where the test data lives.";
        const MAX_CONNECTIONS_DOC: &'static str = "Largest number of pooled test connections.";
        const MIN_CONNECTIONS: u32 = 2;
        const MIN_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(100);
        const MAX_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(600);
        const ACQUIRE_TIMEOUT_RULE: &'static str = "must be between 100ms and 10m";
    }

    type Settings = DatabaseSettings<Test>;

    fn problems(s: &Settings) -> Vec<String> {
        let mut v = Validator::default();
        s.validate(&mut v);
        v.finish().map_or_else(
            |e| e.problems.iter().map(|p| format!("{p:?}")).collect(),
            |()| Vec::new(),
        )
    }

    #[test]
    fn url_forms() {
        let t = |u: &str| Settings::with_url(u).target();
        assert_eq!(t("sqlite::memory:"), Ok(Target::SqliteMemory));
        assert_eq!(
            t("sqlite:///var/lib/kms.db"),
            Ok(Target::SqliteFile("/var/lib/kms.db".into()))
        );
        assert_eq!(
            t("sqlite://kms.db"),
            Ok(Target::SqliteFile("kms.db".into()))
        );
        assert_eq!(t("sqlite:kms.db"), Ok(Target::SqliteFile("kms.db".into())));
        assert_eq!(t("postgres://u:p@h/db"), Ok(Target::Postgres));
        assert_eq!(t("postgresql://h/db"), Ok(Target::Postgres));
        for bad in [
            "mysql://h/db",
            "sqlite://",
            "sqlite://dir/",
            "sqlite://a.db?mode=ro",
            "sqlite://a.db#x",
            "kms.db",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let err = t("mysql://user:hunter2@h/db").unwrap_err();
        assert!(!err.contains("hunter2"));
        assert!(Settings::with_url("sqlite::memory:").is_in_memory());
        assert!(!Settings::default().is_in_memory());
    }

    #[test]
    fn validation_uses_the_profile_bounds() {
        assert!(problems(&Settings::default()).is_empty());
        let bad = Settings {
            max_connections: 1,
            acquire_timeout: HumanDuration(Duration::from_millis(1)),
            ..Settings::with_url("nope")
        };
        let found = problems(&bad);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found.iter().any(|p| p.contains("between 2 and 1000")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.contains("between 100ms and 10m")),
            "{found:?}"
        );
    }

    #[test]
    fn deserializes_strictly_and_never_serializes_a_password() {
        let s: Settings = serde_json::from_str(
            r#"{"url":"postgres://u:hunter2@h/db","max_connections":4,"acquire_timeout":"2s"}"#,
        )
        .unwrap();
        assert_eq!(s.max_connections, 4);
        assert_eq!(s.acquire_timeout.get(), Duration::from_secs(2));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        assert!(serde_json::from_str::<Settings>(r#"{"uri":"x"}"#).is_err());
        let partial: Settings = serde_json::from_str(r#"{"max_connections":3}"#).unwrap();
        assert_eq!(partial.url.expose(), Test::DEFAULT_URL);
        let json = serde_json::to_string(&Settings::with_url("sqlite::memory:")).unwrap();
        assert!(json.contains("sqlite::memory:"), "{json}");
    }

    #[test]
    fn the_schema_speaks_for_the_profile() {
        #[derive(Default, Serialize, Deserialize, JsonSchema)]
        #[serde(default)]
        struct Outer {
            database: Settings,
        }
        let schema = serde_json::to_value(schemars::schema_for!(Outer)).unwrap();
        let def = &schema["$defs"]["DatabaseSettings"];
        assert_eq!(def["description"], Test::SECTION_DOC);
        assert_eq!(def["additionalProperties"], false);
        let props = &def["properties"];
        assert_eq!(props["url"]["description"], Test::URL_DOC);
        assert_eq!(props["url"]["default"], Test::DEFAULT_URL);
        assert_eq!(
            props["max_connections"]["description"],
            Test::MAX_CONNECTIONS_DOC
        );
        assert_eq!(props["max_connections"]["default"], 10);
        assert_eq!(props["acquire_timeout"]["default"], "5s");
        assert!(props.get("profile").is_none(), "{props}");
        // Embedded with defaults, the default URL is shown, never "<redacted>".
        assert_eq!(
            schema["properties"]["database"]["default"]["url"],
            Test::DEFAULT_URL
        );
        assert!(!schema.to_string().contains("redacted"), "{schema}");
    }
}
