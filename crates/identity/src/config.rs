//! Identity server settings (`identity.yml`) and sample resource server settings (`rs.yml`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{
    HumanDuration, LoggingSettings, RateLimitSettings, Secret, ServerSettings, Settings,
    TelemetrySettings, Validator, is_plain_https_origin,
};

use crate::mfa::MfaSettings;
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
    /// OpenTelemetry export (off unless `telemetry.endpoint` is set).
    pub telemetry: TelemetrySettings,
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
    /// Backoff after failed sign-ins and failed client-secret checks.
    pub brute_force: BruteForceSettings,
    /// Per-client-IP request rates.
    pub rate_limits: RateLimitsSettings,
    /// Cross-origin access to the protocol endpoints (single-page apps).
    pub cors: CorsSettings,
    /// DPoP (RFC 9449) at the token and PAR endpoints.
    pub dpop: DpopConfig,
    /// Dynamic client registration (RFC 7591, RFC 7592).
    pub registration: RegistrationSettings,
    /// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): `https://`
    /// client ids fetched as the client's metadata (off by default; on with `--demo`).
    pub client_id_metadata_documents: MetadataDocumentSettings,
    /// The device authorization grant (RFC 8628).
    #[serde(default)]
    pub device: DeviceSettings,
    /// Multi-factor and passwordless sign-in: policy, TOTP, recovery codes, passkeys.
    #[serde(default)]
    pub mfa: MfaSettings,
}

/// The device authorization grant (`device:`, RFC 8628): code lifetime, polling interval and
/// the brute-force limits of the user-code entry page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSettings {
    /// How long a device code and its user code live (default 10m; 1s to 1h).
    pub code_lifetime: HumanDuration,
    /// The least time between two polls of the token endpoint (default 5s; 1s to 1m); each
    /// `slow_down` adds 5s for that device code.
    pub interval: HumanDuration,
    /// Wrong user codes per browser session before the entry page backs off (default 5).
    pub user_code_failures_per_session: u32,
    /// Wrong user codes per client address, over all sessions, before the entry page backs
    /// off (default 20). The waits are those of `brute_force:`.
    pub user_code_failures_per_address: u32,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            code_lifetime: HumanDuration::from_secs(600),
            interval: HumanDuration::from_secs(5),
            user_code_failures_per_session: 5,
            user_code_failures_per_address: 20,
        }
    }
}

impl DeviceSettings {
    fn validate(&self, v: &mut Validator) {
        let lifetime = self.code_lifetime.get();
        v.check(
            "device.code_lifetime",
            lifetime.as_secs() >= 1 && lifetime.as_secs() <= 3600 && lifetime.subsec_nanos() == 0,
            "must be whole seconds between 1s and 1h",
        );
        let interval = self.interval.get();
        v.check(
            "device.interval",
            (1..=60).contains(&interval.as_secs()) && interval.subsec_nanos() == 0,
            "must be whole seconds between 1s and 1m",
        );
        v.check(
            "device.user_code_failures_per_session",
            (1..=1000).contains(&self.user_code_failures_per_session),
            "must be between 1 and 1000",
        );
        v.check(
            "device.user_code_failures_per_address",
            (1..=100_000).contains(&self.user_code_failures_per_address),
            "must be between 1 and 100000",
        );
    }
}

/// Whether the token and PAR endpoints require a server nonce in DPoP proofs (RFC 9449 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DpopNonceMode {
    /// A proof without the current (or previous) nonce gets `use_dpop_nonce` and a fresh
    /// `DPoP-Nonce`.
    Required,
    /// No nonce is asked for (one in a proof is ignored).
    Off,
}

/// An algorithm a DPoP proof may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DpopAlgorithm {
    /// ECDSA P-256 / SHA-256.
    ES256,
    /// ECDSA P-384 / SHA-384.
    ES384,
    /// RSASSA-PSS / SHA-256.
    PS256,
    /// Ed25519.
    EdDSA,
}

impl DpopAlgorithm {
    /// All four, the default.
    pub const ALL: [Self; 4] = [Self::ES256, Self::ES384, Self::PS256, Self::EdDSA];

    /// The JOSE algorithm.
    pub fn jws(self) -> cryptoutil_jose::JwsAlgorithm {
        match self {
            Self::ES256 => cryptoutil_jose::JwsAlgorithm::ES256,
            Self::ES384 => cryptoutil_jose::JwsAlgorithm::ES384,
            Self::PS256 => cryptoutil_jose::JwsAlgorithm::PS256,
            Self::EdDSA => cryptoutil_jose::JwsAlgorithm::EdDSA,
        }
    }
}

/// DPoP proofs at the token and PAR endpoints (`dpop:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// `required` (default) or `off`: whether proofs must carry a server nonce.
    pub nonce: DpopNonceMode,
    /// How often the nonce changes (default 5m); the current and the previous nonce are
    /// accepted, so a nonce lives between one and two periods. 30s to 1h.
    pub nonce_rotation: HumanDuration,
    /// Oldest accepted proof `iat` (default 60s, at most 10m).
    pub proof_max_age: HumanDuration,
    /// Clock skew allowed either way on `iat` (default 5s, at most 1m).
    pub leeway: HumanDuration,
    /// Accepted proof algorithms (default all four: ES256, ES384, PS256, EdDSA); also listed as
    /// `dpop_signing_alg_values_supported` in discovery.
    pub signing_alg_values: Vec<DpopAlgorithm>,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            nonce: DpopNonceMode::Required,
            nonce_rotation: HumanDuration::from_secs(300),
            proof_max_age: HumanDuration::from_secs(60),
            leeway: HumanDuration::from_secs(5),
            signing_alg_values: DpopAlgorithm::ALL.to_vec(),
        }
    }
}

impl DpopConfig {
    fn validate(&self, v: &mut Validator) {
        v.check(
            "dpop.nonce_rotation",
            (30..=3600).contains(&self.nonce_rotation.get().as_secs()),
            "must be between 30s and 1h",
        );
        v.check(
            "dpop.proof_max_age",
            (1..=600).contains(&self.proof_max_age.get().as_secs()),
            "must be between 1s and 10m",
        );
        v.check(
            "dpop.leeway",
            self.leeway.get().as_secs() <= 60,
            "must be at most 1m",
        );
        v.check(
            "dpop.signing_alg_values",
            !self.signing_alg_values.is_empty(),
            "must list at least one algorithm",
        );
    }
}

/// Brute-force protection (`brute_force:`): backoff per account (username or `client_id`) and
/// per client address (IPv6 per /64), for the login form and for client secrets. After the free
/// failures each further failure doubles the wait, from `base_delay` up to `max_delay`; while
/// waiting, attempts are refused without checking the credential. Never a permanent lockout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceSettings {
    /// Failures per account before the backoff starts (default 5).
    pub account_free_failures: u32,
    /// Failures per client address, over all accounts, before the backoff starts (default 20;
    /// raise it when many people share one address behind a NAT).
    pub address_free_failures: u32,
    /// The first wait (default 1s); it doubles with each further failure.
    pub base_delay: HumanDuration,
    /// The longest wait (default 15m).
    pub max_delay: HumanDuration,
    /// An account or address without failures for this long after its wait ended starts afresh
    /// (default 15m).
    pub forget_after: HumanDuration,
    /// Most accounts and addresses tracked per table (default 100000); beyond, new ones share
    /// one counter.
    pub max_tracked: usize,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 20,
            base_delay: HumanDuration::from_secs(1),
            max_delay: HumanDuration::from_secs(15 * 60),
            forget_after: HumanDuration::from_secs(15 * 60),
            max_tracked: 100_000,
        }
    }
}

impl BruteForceSettings {
    /// The throttle policy.
    pub fn policy(&self) -> crate::throttle::ThrottlePolicy {
        crate::throttle::ThrottlePolicy {
            account_free_failures: self.account_free_failures,
            address_free_failures: self.address_free_failures,
            base_delay: self.base_delay.get(),
            max_delay: self.max_delay.get(),
            forget_after: self.forget_after.get(),
            max_tracked: self.max_tracked,
        }
    }

    fn validate(&self, v: &mut Validator) {
        v.check(
            "brute_force.account_free_failures",
            (1..=1000).contains(&self.account_free_failures),
            "must be between 1 and 1000",
        );
        v.check(
            "brute_force.address_free_failures",
            (1..=100_000).contains(&self.address_free_failures),
            "must be between 1 and 100000",
        );
        let (base, max) = (self.base_delay.get(), self.max_delay.get());
        v.check(
            "brute_force.base_delay",
            base.as_secs() >= 1 && base.as_secs() <= 3600,
            "must be between 1s and 1h",
        );
        v.check(
            "brute_force.max_delay",
            max >= base && max.as_secs() <= DAY,
            "must be at least base_delay and at most 24h",
        );
        v.check(
            "brute_force.forget_after",
            (1..=7 * DAY).contains(&self.forget_after.get().as_secs()),
            "must be between 1s and 7d",
        );
        v.check(
            "brute_force.max_tracked",
            (1..=10_000_000).contains(&self.max_tracked),
            "must be between 1 and 10000000",
        );
    }
}

/// Per-client-IP rate limits (`rate_limits:`), IPv6 per /64, keyed by the TCP peer (forwarding
/// headers are not trusted). A refused request gets 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsSettings {
    /// The pages people use: authorize, login, consent, logout (default 20/s, burst 100).
    pub pages: RateLimitSettings,
    /// The protocol endpoints services call: token, introspection, revocation, PAR, userinfo,
    /// discovery and JWKS (default 50000/s, burst 50000: above what one address reaches on the
    /// benchmark machine, so a busy service client is not throttled; lower it to cap any one
    /// address's share).
    pub protocol: RateLimitSettings,
    /// Dynamic client registration and its management URIs (`/oauth2/v1/register…`; default
    /// 1/s, burst 20: registering is rare, each registration writes to the database and hashes
    /// a secret).
    pub registration: RateLimitSettings,
}

impl Default for RateLimitsSettings {
    fn default() -> Self {
        Self {
            pages: RateLimitSettings {
                per_second: 20,
                burst: 100,
            },
            protocol: RateLimitSettings {
                per_second: 50_000,
                burst: 50_000,
            },
            registration: RateLimitSettings {
                per_second: 1,
                burst: 20,
            },
        }
    }
}

/// Cross-origin access (`cors:`) for single-page apps calling token, revocation, userinfo,
/// discovery and JWKS with `fetch`. Never the pages (authorize, login, consent, logout), never
/// credentials (cookies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact `https://host[:port]` origins allowed. With `--demo` the origins of the demo
    /// clients' redirect URIs are added (e.g. `https://localhost:8084`).
    pub allowed_origins: Vec<url::Url>,
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
    /// How long a new key (scheduled or administrative rotation) is published before it signs
    /// (default 2m, at least 2s): long enough for every instance to serve it in its JWKS (they
    /// re-read keys for a JWKS request at most a second old) and for relying parties to refresh
    /// their cached JWKS (`Cache-Control: max-age=60`). The first key signs at once.
    pub activation_delay: HumanDuration,
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
            activation_delay: HumanDuration::from_secs(120),
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
            telemetry: TelemetrySettings::default(),
            issuer: None,
            database: DatabaseSettings::default(),
            keys: KeySettings::default(),
            tokens: TokenSettings::default(),
            clients: ClientSettings::default(),
            sessions: SessionSettings::default(),
            brute_force: BruteForceSettings::default(),
            rate_limits: RateLimitsSettings::default(),
            cors: CorsSettings::default(),
            dpop: DpopConfig::default(),
            registration: RegistrationSettings::default(),
            client_id_metadata_documents: MetadataDocumentSettings::default(),
            device: DeviceSettings::default(),
            mfa: MfaSettings::default(),
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
        self.telemetry.validate(v);
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
        v.check(
            "keys.activation_delay",
            (2..=DAY).contains(&self.keys.activation_delay.get().as_secs()),
            "must be between 2s and 1d",
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
        self.brute_force.validate(v);
        self.rate_limits.pages.validate("rate_limits.pages", v);
        self.rate_limits
            .protocol
            .validate("rate_limits.protocol", v);
        for (i, origin) in self.cors.allowed_origins.iter().enumerate() {
            v.check(
                &format!("cors.allowed_origins[{i}]"),
                is_plain_https_origin(origin),
                "must be an https origin such as https://app.example.com (no path, query, fragment or user)",
            );
        }
        self.dpop.validate(v);
        self.rate_limits
            .registration
            .validate("rate_limits.registration", v);
        self.registration.validate(v);
        self.client_id_metadata_documents.validate(v);
        self.device.validate(v);
        self.mfa.validate(v);
    }
}

/// Dynamic client registration (`registration:`, RFC 7591 and RFC 7592 at
/// `/oauth2/v1/register`). Off unless `open` is true or an initial access token exists: with
/// `open` unset, registration needs an initial access token (created on the admin listener),
/// and `--demo` turns open registration on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Anyone may register a client without an initial access token. Unset: off, but on with
    /// `--demo`; `false` keeps it off even with `--demo`.
    pub open: Option<bool>,
    /// Whether the endpoint exists at all (default true). When false, `/oauth2/v1/register`
    /// answers 404 and discovery omits `registration_endpoint`, whatever `open` says.
    pub enabled: bool,
    /// The grant types a registered client may ask for (default `authorization_code`,
    /// `refresh_token` and the device grant `urn:ietf:params:oauth:grant-type:device_code`).
    /// Names this server does not know are ignored with a warning at start-up.
    pub allowed_grant_types: Vec<String>,
    /// The scopes a registered client may ask for (default `openid profile email
    /// offline_access`); a client that asks for none gets all of them.
    pub allowed_scopes: Vec<String>,
    /// Public keys (a JWK Set, inline) whose signatures make a `software_statement` trusted.
    /// Empty (default): software statements are refused as `unapproved_software_statement`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub software_statement_jwks: Option<serde_json::Value>,
    /// The longest lifetime the admin API gives an initial access token (default 30d).
    pub max_initial_access_token_lifetime: HumanDuration,
    /// The resources (RFC 8707 `resource`, absolute URIs) a registered client may request
    /// tokens for: its access tokens' audiences (default none: the issuer). An MCP server's
    /// URL goes here, so that MCP clients that register themselves can call it.
    pub audiences: Vec<String>,
}

/// The default allowed grant types of dynamic registration.
pub const DEFAULT_REGISTRATION_GRANTS: [&str; 3] = [
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
];

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            open: None,
            enabled: true,
            allowed_grant_types: DEFAULT_REGISTRATION_GRANTS.map(str::to_owned).to_vec(),
            allowed_scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            software_statement_jwks: None,
            max_initial_access_token_lifetime: HumanDuration::from_secs(30 * DAY),
            audiences: Vec::new(),
        }
    }
}

/// Client ID metadata documents (`client_id_metadata_documents:`): a `client_id` that is an
/// `https://` URL names a JSON document of the client's metadata, fetched by this server
/// (draft-ietf-oauth-client-id-metadata-document, as the MCP authorization spec uses it). Such
/// clients are public (or `private_key_jwt`), may use only the authorization code and refresh
/// token grants, and only the scopes listed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataDocumentSettings {
    /// Fetch metadata documents for `https://` client ids (default `false`; `--demo` turns it
    /// on). Off, such ids are looked up among the registered clients like any other.
    pub enabled: bool,
    /// Trust the public web PKI (the Mozilla root program, bundled) when fetching documents
    /// (default `true`: documents live on the clients' own web sites).
    pub public_roots: bool,
    /// A PEM bundle of further CAs to trust when fetching (e.g. the demo CA).
    pub ca_file: Option<PathBuf>,
    /// Fetch from hosts whose addresses are loopback, private (RFC 1918, `fc00::/7`),
    /// link-local, shared (CGNAT), unspecified, multicast or documentation ranges (default
    /// `false`: such fetches are refused, so a client id cannot make this server reach its own
    /// network). Only for tests and local demos.
    pub allow_private_addresses: bool,
    /// Longest time for one fetch, connection included (default 5s, at most 30s).
    pub timeout: HumanDuration,
    /// Largest document accepted, in bytes (default 5120, the draft's suggestion; at most 64 KiB).
    pub max_document_size: usize,
    /// A document is kept at least this long, whatever its caching headers say (default 60s).
    pub min_cache_lifetime: HumanDuration,
    /// A document is kept at most this long (default 24h).
    pub max_cache_lifetime: HumanDuration,
    /// A failed fetch or unusable document is remembered this long, so a client id cannot make
    /// this server fetch in a loop (default 30s).
    pub failure_cache_lifetime: HumanDuration,
    /// Most documents (and failures) cached (default 1000; least recently used go first).
    pub cache_capacity: usize,
    /// The scopes such a client may have: the document's `scope` is narrowed to this list
    /// (default `openid`, `profile`, `email`, `offline_access`).
    pub allowed_scopes: Vec<String>,
    /// The resources (RFC 8707 `resource`, absolute URIs) such a client may request tokens for;
    /// their access tokens' audiences (default none: the issuer).
    pub audiences: Vec<String>,
}

impl Default for MetadataDocumentSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            public_roots: true,
            ca_file: None,
            allow_private_addresses: false,
            timeout: HumanDuration::from_secs(5),
            max_document_size: 5120,
            min_cache_lifetime: HumanDuration::from_secs(60),
            max_cache_lifetime: HumanDuration::from_secs(DAY),
            failure_cache_lifetime: HumanDuration::from_secs(30),
            cache_capacity: 1000,
            allowed_scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            audiences: Vec::new(),
        }
    }
}

impl RegistrationSettings {
    fn validate(&self, v: &mut Validator) {
        v.check(
            "registration.allowed_scopes",
            self.allowed_scopes.len() <= 256
                && self
                    .allowed_scopes
                    .iter()
                    .all(|s| crate::oauth::scope::is_scope_token(s)),
            "must list at most 256 scope tokens",
        );
        v.check(
            "registration.allowed_grant_types",
            self.allowed_grant_types.len() <= 16,
            "must list at most 16 grant types",
        );
        if let Some(jwks) = &self.software_statement_jwks {
            v.check(
                "registration.software_statement_jwks",
                crate::rules::public_jwks(jwks.clone()).is_ok(),
                "must be a JWK Set of public keys",
            );
        }
        let lifetime = self.max_initial_access_token_lifetime.get().as_secs();
        v.check(
            "registration.max_initial_access_token_lifetime",
            (60..=365 * DAY).contains(&lifetime),
            "must be between 1m and 365d",
        );
        for (i, audience) in self.audiences.iter().enumerate() {
            v.check(
                &format!("registration.audiences[{i}]"),
                url::Url::parse(audience).is_ok_and(|u| u.fragment().is_none()),
                "must be an absolute URI without fragment",
            );
        }
    }
}

impl MetadataDocumentSettings {
    fn validate(&self, v: &mut Validator) {
        let key = |k: &str| format!("client_id_metadata_documents.{k}");
        v.check(
            &key("timeout"),
            (1..=30_000).contains(&self.timeout.get().as_millis()),
            "must be between 1ms and 30s",
        );
        v.check(
            &key("max_document_size"),
            (256..=65_536).contains(&self.max_document_size),
            "must be between 256 and 65536",
        );
        let min = self.min_cache_lifetime.get();
        let max = self.max_cache_lifetime.get();
        v.check(
            &key("max_cache_lifetime"),
            max.as_secs() <= 7 * DAY && min <= max,
            "must be at most 7d and not less than min_cache_lifetime",
        );
        v.check(
            &key("failure_cache_lifetime"),
            (1..=3600).contains(&self.failure_cache_lifetime.get().as_secs()),
            "must be between 1s and 1h",
        );
        v.check(
            &key("cache_capacity"),
            (1..=1_000_000).contains(&self.cache_capacity),
            "must be between 1 and 1000000",
        );
        v.check(
            &key("public_roots"),
            !self.enabled || self.public_roots || self.ca_file.is_some(),
            "with public_roots off, set ca_file",
        );
        for (i, audience) in self.audiences.iter().enumerate() {
            v.check(
                &format!("client_id_metadata_documents.audiences[{i}]"),
                url::Url::parse(audience).is_ok_and(|u| u.fragment().is_none()),
                "must be an absolute URI without fragment",
            );
        }
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
    /// OpenTelemetry export (off unless `telemetry.endpoint` is set).
    pub telemetry: TelemetrySettings,
    /// The Identity server whose access tokens are accepted.
    pub identity: TrustedIssuerSettings,
    /// The single-page sample client served at `/`.
    pub spa: SpaSettings,
    /// The server as a protected resource: its identifier (RFC 9728) and DPoP enforcement.
    pub resource: crate::resource_server::settings::ProtectedResourceSettings,
    /// The KMS the notes route encrypts with, through token exchange (off unless `kms.url`).
    pub kms: NotesKmsSettings,
}

/// The KMS behind `POST /api/v1/protected/notes` (`kms:`): the resource server exchanges the
/// caller's token at Identity's token endpoint (RFC 8693, as `client_id`) for a token with the
/// KMS's audience acting for the caller, and encrypts the note with the elastic key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NotesKmsSettings {
    /// The KMS's service API base URL, e.g. `https://kms.example:8081/service/api/v1`; unset:
    /// the notes route answers 503.
    pub url: Option<String>,
    /// The elastic key (its id) that encrypts notes: `POST {url}/elastickey/{id}/encrypt`.
    pub elastic_key_id: Option<String>,
    /// PEM bundle of the CA that signs the KMS's certificate. Default: `identity.ca_file`, else
    /// `server.tls.ca_file`.
    pub ca_file: Option<PathBuf>,
    /// The audience of the exchanged token (the KMS's; default `cryptoutil-kms`).
    pub audience: String,
    /// The scope asked for (default `kms:encrypt`; the caller's token must carry it).
    pub scope: String,
    /// This resource server's client at Identity (default `demo-rs`).
    pub client_id: String,
    /// File holding its client secret (`client_secret_basic`); required with `url`.
    pub client_secret_file: Option<PathBuf>,
    /// Identity's token endpoint; default `<identity.issuer>/oauth2/v1/token`.
    pub token_endpoint: Option<String>,
    /// Time limit of each call to Identity and the KMS (default 10s).
    pub timeout: HumanDuration,
}

impl Default for NotesKmsSettings {
    fn default() -> Self {
        Self {
            url: None,
            elastic_key_id: None,
            ca_file: None,
            audience: "cryptoutil-kms".to_owned(),
            scope: "kms:encrypt".to_owned(),
            client_id: "demo-rs".to_owned(),
            client_secret_file: None,
            token_endpoint: None,
            timeout: HumanDuration::from_secs(10),
        }
    }
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
            telemetry: TelemetrySettings::default(),
            identity: TrustedIssuerSettings::default(),
            spa: SpaSettings::default(),
            resource: Default::default(),
            kms: NotesKmsSettings::default(),
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
        self.telemetry.validate(v);
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
        self.resource.validate(v);
        let kms = &self.kms;
        if let Some(url) = &kms.url {
            v.check(
                "kms.url",
                is_https_url(url, true),
                "must be an https URL without query, fragment or trailing slash",
            );
            v.check(
                "kms.elastic_key_id",
                kms.elastic_key_id.as_deref().is_some_and(|id| {
                    (1..=64).contains(&id.len())
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                }),
                "is required with kms.url: the elastic key's id (letters, digits, - and _)",
            );
            v.check(
                "kms.client_secret_file",
                kms.client_secret_file.is_some(),
                "is required with kms.url: the file holding the resource server's client secret",
            );
        }
        if let Some(url) = &kms.token_endpoint {
            v.check(
                "kms.token_endpoint",
                is_https_url(url, false),
                "must be an https URL without query or fragment",
            );
        }
        v.check(
            "kms.audience",
            (1..=255).contains(&kms.audience.len())
                && !kms.audience.chars().any(char::is_whitespace),
            "must be 1-255 characters without whitespace",
        );
        v.check(
            "kms.scope",
            is_scope_token(&kms.scope),
            "must be one scope token",
        );
        v.check(
            "kms.client_id",
            (1..=255).contains(&kms.client_id.len())
                && !kms.client_id.chars().any(char::is_whitespace),
            "must be 1-255 characters without whitespace",
        );
        let timeout = kms.timeout.get().as_secs();
        v.check(
            "kms.timeout",
            (1..=300).contains(&timeout),
            "must be between 1s and 5m",
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn problems(settings: &IdentitySettings) -> Vec<String> {
        let mut v = Validator::default();
        settings.validate(&mut v);
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.origin).collect(),
        }
    }

    #[test]
    fn protection_settings_are_validated() {
        assert!(problems(&IdentitySettings::default()).is_empty());
        let mut s = IdentitySettings::default();
        s.brute_force.account_free_failures = 0;
        s.brute_force.base_delay = HumanDuration::from_secs(600);
        s.brute_force.max_delay = HumanDuration::from_secs(60);
        s.brute_force.max_tracked = 0;
        s.rate_limits.pages.per_second = 0;
        s.cors.allowed_origins = vec![
            "https://app.example.com".parse().unwrap(),
            "http://app.example.com".parse().unwrap(),
            "https://app.example.com/path".parse().unwrap(),
        ];
        assert_eq!(
            problems(&s),
            [
                "brute_force.account_free_failures",
                "brute_force.max_delay",
                "brute_force.max_tracked",
                "rate_limits.pages.per_second",
                "cors.allowed_origins[1]",
                "cors.allowed_origins[2]",
            ]
        );
    }

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

    fn rs_problems(settings: &ResourceServerSettings) -> String {
        let mut v = Validator::default();
        settings.validate(&mut v);
        v.finish().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn resource_server_settings_are_checked_at_load() {
        let mut rs = ResourceServerSettings::default();
        assert_eq!(
            rs_problems(&rs),
            "",
            "no issuer is refused at start-up, not at load"
        );
        rs.identity.issuer = Some("https://identity.example:8082".to_owned());
        assert_eq!(rs_problems(&rs), "");
        for bad in [
            "http://identity.example",
            "https://identity.example/",
            "https://identity.example?x=1",
            "https://user@identity.example",
            "identity.example",
        ] {
            rs.identity.issuer = Some(bad.to_owned());
            assert!(rs_problems(&rs).contains("identity.issuer"), "{bad}");
        }
        rs.identity.issuer = Some("https://identity.example".to_owned());
        rs.identity.jwks_url = Some("http://identity.example/jwks".to_owned());
        rs.identity.audience = "two words".to_owned();
        rs.identity.algorithms.clear();
        rs.identity.jwks_cache_ttl = HumanDuration::from_secs(0);
        rs.identity.clock_skew = HumanDuration::from_secs(600);
        rs.spa.scopes = vec!["profile".to_owned(), "bad\"scope".to_owned()];
        let text = rs_problems(&rs);
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

    #[test]
    fn the_notes_kms_settings_are_strict() {
        let mut rs = ResourceServerSettings::default();
        rs.identity.issuer = Some("https://identity.example".to_owned());
        rs.kms.url = Some("https://kms.example:8081/service/api/v1".to_owned());
        let text = rs_problems(&rs);
        assert!(text.contains("kms.elastic_key_id"), "{text}");
        assert!(text.contains("kms.client_secret_file"), "{text}");
        rs.kms.elastic_key_id = Some("01a2-key".to_owned());
        rs.kms.client_secret_file = Some("/run/secrets/demo-rs-secret".into());
        assert_eq!(rs_problems(&rs), "");
        rs.kms.url = Some("http://kms.example".to_owned());
        rs.kms.elastic_key_id = Some("../admin".to_owned());
        rs.kms.token_endpoint = Some("http://identity.example/token".to_owned());
        rs.kms.scope = "two scopes".to_owned();
        rs.kms.timeout = HumanDuration::from_secs(0);
        let text = rs_problems(&rs);
        for key in [
            "kms.url",
            "kms.elastic_key_id",
            "kms.token_endpoint",
            "kms.scope",
            "kms.timeout",
        ] {
            assert!(text.contains(key), "{key}: {text}");
        }
    }
}
