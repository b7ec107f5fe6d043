//! Identity server settings (`identity.yml`) and sample resource server settings (`rs.yml`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{
    HumanDuration, LoggingSettings, Secret, ServerSettings, Settings, Validator,
};

use crate::signing::SigningAlgorithm;
use crate::storage::DatabaseSettings;

/// The Identity server configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// Listeners, TLS and limits (default ports 8082 and 9082).
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
    /// The issuer identifier (`iss`): the HTTPS URL clients reach this server at, without a
    /// trailing slash. Default `https://127.0.0.1:<bound public port>` (what `--ready-file`
    /// reports); set it in every real deployment.
    pub issuer: Option<String>,
    /// Where clients, users, grants and keys are stored.
    pub database: DatabaseSettings,
    /// Token signing keys.
    pub keys: KeySettings,
    /// Token lifetimes.
    pub tokens: TokenSettings,
    /// Client authentication.
    pub clients: ClientSettings,
    /// Browser sessions at the login and consent pages.
    pub sessions: SessionSettings,
}

/// Token signing keys (`keys:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// The JWS algorithm of new signing keys: `ES256` (default), `RS256`, `PS256` or `EdDSA`.
    pub algorithm: SigningAlgorithm,
    /// A new signing key takes over after this long; the previous one stays in the JWKS until
    /// every token it signed has expired.
    pub rotation_period: HumanDuration,
    /// The 32-byte key (base64url) that seals signing keys at rest, preferably
    /// `file:///run/secrets/<name>`. Required unless the database is in memory (`--dev`
    /// generates one per process).
    pub encryption_key: Option<Secret>,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::default(),
            rotation_period: HumanDuration::from_secs(30 * 24 * 3600),
            encryption_key: None,
        }
    }
}

/// Token lifetimes (`tokens:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// Access tokens (default 15m, at most 24h).
    pub access_token_lifetime: HumanDuration,
    /// ID tokens (default 15m, at most 24h).
    pub id_token_lifetime: HumanDuration,
    /// Refresh tokens (default 30d); each use rotates the token, the family keeps its start.
    pub refresh_token_lifetime: HumanDuration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_lifetime: HumanDuration::from_secs(15 * 60),
            id_token_lifetime: HumanDuration::from_secs(15 * 60),
            refresh_token_lifetime: HumanDuration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Client authentication (`clients:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// After a secret rotation the previous secret keeps working this long (default 24h).
    pub secret_rotation_grace: HumanDuration,
    /// How long a verified client secret or user password is remembered, so only the first
    /// request pays PBKDF2 (default 5m).
    pub credential_cache_ttl: HumanDuration,
    /// Most remembered credentials (default 10000).
    pub credential_cache_capacity: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            secret_rotation_grace: HumanDuration::from_secs(24 * 3600),
            credential_cache_ttl: HumanDuration::from_secs(300),
            credential_cache_capacity: 10_000,
        }
    }
}

/// Browser sessions (`sessions:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// How long a signed-in session lasts (default 8h).
    pub lifetime: HumanDuration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            lifetime: HumanDuration::from_secs(8 * 3600),
        }
    }
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(8082, 9082),
            logging: LoggingSettings::default(),
            issuer: None,
            database: DatabaseSettings::default(),
            keys: KeySettings::default(),
            tokens: TokenSettings::default(),
            clients: ClientSettings::default(),
            sessions: SessionSettings::default(),
        }
    }
}

impl IdentitySettings {
    /// What `--dev` means for Identity (SPEC §8): an in-memory database and a key-encryption
    /// key generated for this process. Never for production.
    pub fn apply_dev(&mut self) {
        self.database = DatabaseSettings::with_url("sqlite::memory:");
    }
}

const DAY: u64 = 24 * 3600;

impl Settings for IdentitySettings {
    const ENV_PREFIX: &'static str = "IDENTITY";
    const FILE_NAME: &'static str = "identity.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
        if let Some(issuer) = &self.issuer {
            let ok = url::Url::parse(issuer).is_ok_and(|u| {
                u.scheme() == "https"
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && !issuer.ends_with('/')
            });
            v.check(
                "issuer",
                ok,
                "must be an https URL without query, fragment or trailing slash",
            );
        }
        self.database.validate(v);
        let lifetime = |v: &mut Validator, key: &str, d: &HumanDuration, max: u64| {
            let secs = d.get().as_secs();
            v.check(key, secs >= 1 && secs <= max, "out of range");
        };
        lifetime(
            v,
            "keys.rotation_period",
            &self.keys.rotation_period,
            3650 * DAY,
        );
        v.check(
            "keys.rotation_period",
            self.keys.rotation_period.get().as_secs() >= 3600,
            "must be at least 1h",
        );
        lifetime(
            v,
            "tokens.access_token_lifetime",
            &self.tokens.access_token_lifetime,
            DAY,
        );
        lifetime(
            v,
            "tokens.id_token_lifetime",
            &self.tokens.id_token_lifetime,
            DAY,
        );
        lifetime(
            v,
            "tokens.refresh_token_lifetime",
            &self.tokens.refresh_token_lifetime,
            365 * DAY,
        );
        lifetime(
            v,
            "clients.secret_rotation_grace",
            &self.clients.secret_rotation_grace,
            90 * DAY,
        );
        lifetime(
            v,
            "clients.credential_cache_ttl",
            &self.clients.credential_cache_ttl,
            DAY,
        );
        v.check(
            "clients.credential_cache_capacity",
            (1..=10_000_000).contains(&self.clients.credential_cache_capacity),
            "must be between 1 and 10000000",
        );
        lifetime(v, "sessions.lifetime", &self.sessions.lifetime, 30 * DAY);
    }
}

/// The sample resource server configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceServerSettings {
    /// Listeners, TLS and limits (default ports 8084 and 9084).
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
    /// The Identity server whose access tokens are accepted.
    pub identity: TrustedIssuerSettings,
    /// The single-page sample client served at `/`.
    pub spa: SpaSettings,
}

/// The issuer the resource server trusts (`identity:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedIssuerSettings {
    /// The issuer identifier (`iss`), an https URL without trailing slash; required
    /// (`--trust-issuer URL` sets it).
    pub issuer: Option<String>,
    /// PEM bundle of the CA that signs Identity's certificate (`--trust-issuer-ca FILE`).
    /// Default: `server.tls.ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Where the issuer's JWKS is; default: `jwks_uri` from the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// The `aud` access tokens must carry (default `cryptoutil-rs`).
    pub audience: String,
    /// Signature algorithms accepted (the token header's `alg`); default all four.
    pub algorithms: Vec<SigningAlgorithm>,
    /// How long fetched keys are trusted before they are fetched again (default 5m).
    pub jwks_cache_ttl: HumanDuration,
    /// Tolerance for clock differences when checking `exp`/`nbf`/`iat` (default 30s, at most 5m).
    pub clock_skew: HumanDuration,
}

impl Default for TrustedIssuerSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            ca_file: None,
            jwks_url: None,
            audience: "cryptoutil-rs".to_owned(),
            algorithms: SigningAlgorithm::ALL.to_vec(),
            jwks_cache_ttl: HumanDuration::from_secs(300),
            clock_skew: HumanDuration::from_secs(30),
        }
    }
}

/// The single-page sample client (`spa:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SpaSettings {
    /// The public client it signs in as (default `demo-spa-client`); its registered redirect
    /// URI must be `<this server's origin>/callback`.
    pub client_id: String,
    /// The scopes it asks for.
    pub scopes: Vec<String>,
}

impl Default for SpaSettings {
    fn default() -> Self {
        Self {
            client_id: "demo-spa-client".to_owned(),
            scopes: [
                "openid",
                "profile",
                "email",
                "read:resource",
                "write:resource",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Default for ResourceServerSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(8084, 9084),
            logging: LoggingSettings::default(),
            identity: TrustedIssuerSettings::default(),
            spa: SpaSettings::default(),
        }
    }
}

/// An https URL without query, fragment or (when `issuer`) trailing slash.
fn is_https_url(raw: &str, issuer: bool) -> bool {
    url::Url::parse(raw).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
            && !(issuer && raw.ends_with('/'))
    })
}

/// A token in the RFC 6749 `scope` syntax (printable ASCII except space, `"` and `\`).
fn is_scope_token(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl Settings for ResourceServerSettings {
    const ENV_PREFIX: &'static str = "RS";
    const FILE_NAME: &'static str = "rs.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
        let identity = &self.identity;
        if let Some(issuer) = &identity.issuer {
            v.check(
                "identity.issuer",
                is_https_url(issuer, true),
                "must be an https URL without query, fragment or trailing slash",
            );
        }
        if let Some(url) = &identity.jwks_url {
            v.check(
                "identity.jwks_url",
                is_https_url(url, false),
                "must be an https URL without query or fragment",
            );
        }
        v.check(
            "identity.audience",
            (1..=255).contains(&identity.audience.len())
                && !identity.audience.chars().any(char::is_whitespace),
            "must be 1-255 characters without whitespace",
        );
        v.check(
            "identity.algorithms",
            !identity.algorithms.is_empty(),
            "must list at least one algorithm",
        );
        let ttl = identity.jwks_cache_ttl.get().as_secs();
        v.check(
            "identity.jwks_cache_ttl",
            (1..=DAY).contains(&ttl),
            "must be between 1s and 24h",
        );
        v.check(
            "identity.clock_skew",
            identity.clock_skew.get().as_secs() <= 300,
            "must be at most 5m",
        );
        v.check(
            "spa.client_id",
            (1..=255).contains(&self.spa.client_id.len())
                && !self.spa.client_id.chars().any(char::is_whitespace),
            "must be 1-255 characters without whitespace",
        );
        v.check(
            "spa.scopes",
            (1..=32).contains(&self.spa.scopes.len())
                && self.spa.scopes.iter().all(|s| is_scope_token(s)),
            "must list 1-32 scope tokens",
        );
        v.check(
            "spa.scopes",
            self.spa.scopes.iter().any(|s| s == "openid"),
            "must include openid (the sample client shows the ID token's claims)",
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The schemas shipped under `deployments/` are generated from these types
    /// (`cargo xtask schemas`).
    #[test]
    fn shipped_schemas_are_current() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployments/identity");
        cryptoutil_server::config::check_shipped_schema::<IdentitySettings>(
            &dir.join("config.schema.json"),
        )
        .unwrap();
        cryptoutil_server::config::check_shipped_schema::<ResourceServerSettings>(
            &dir.join("rs-config.schema.json"),
        )
        .unwrap();
    }

    fn problems(settings: &ResourceServerSettings) -> String {
        let mut v = Validator::default();
        settings.validate(&mut v);
        v.finish().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn resource_server_settings_are_checked_at_load() {
        let mut rs = ResourceServerSettings::default();
        assert_eq!(
            problems(&rs),
            "",
            "no issuer is refused at start-up, not at load"
        );
        rs.identity.issuer = Some("https://identity.example:8082".to_owned());
        assert_eq!(problems(&rs), "");
        for bad in [
            "http://identity.example",
            "https://identity.example/",
            "https://identity.example?x=1",
            "https://user@identity.example",
            "identity.example",
        ] {
            rs.identity.issuer = Some(bad.to_owned());
            assert!(problems(&rs).contains("identity.issuer"), "{bad}");
        }
        rs.identity.issuer = Some("https://identity.example".to_owned());
        rs.identity.jwks_url = Some("http://identity.example/jwks".to_owned());
        rs.identity.audience = "two words".to_owned();
        rs.identity.algorithms.clear();
        rs.identity.jwks_cache_ttl = HumanDuration::from_secs(0);
        rs.identity.clock_skew = HumanDuration::from_secs(600);
        rs.spa.scopes = vec!["profile".to_owned(), "bad\"scope".to_owned()];
        let text = problems(&rs);
        for key in [
            "identity.jwks_url",
            "identity.audience",
            "identity.algorithms",
            "identity.jwks_cache_ttl",
            "identity.clock_skew",
            "spa.scopes",
        ] {
            assert!(text.contains(key), "{key}: {text}");
        }
    }
}
