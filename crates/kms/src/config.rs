//! KMS settings (`kms.yml`), loaded with [`cryptoutil_server::config::load`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{
    HumanDuration, LoggingSettings, ServerSettings, Settings, SurfacesSettings, TelemetrySettings,
    Validator,
};

use crate::barrier::BarrierSettings;
use crate::storage::DatabaseSettings;

/// Default public port (SPEC §2).
pub const PUBLIC_PORT: u16 = 8081;
/// Default admin port (SPEC §2).
pub const ADMIN_PORT: u16 = 9081;

/// The KMS configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KmsSettings {
    /// Listeners, TLS and limits.
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
    /// OpenTelemetry export (off unless `telemetry.endpoint` is set).
    pub telemetry: TelemetrySettings,
    /// Where keys are stored.
    pub database: DatabaseSettings,
    /// How the barrier is unsealed.
    pub barrier: BarrierSettings,
    /// Key lifecycle and caching.
    pub keys: KeySettings,
    /// How callers authenticate.
    pub auth: crate::auth::AuthSettings,
    /// The two API surfaces: rate limits (defaults: service 1000/s, browser 100/s per client
    /// IP), IP allowlists, and the browser surface's CORS origins.
    pub api: SurfacesSettings,
    /// Load-test aids (all off by default).
    pub benchmark: BenchmarkSettings,
}

/// Load-test aids (`benchmark:`), for `cargo xtask bench-load`; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BenchmarkSettings {
    /// Mount `POST /service/api/v1/echo`: authenticated and rate-limited like every operation
    /// (scope `kms:encrypt`), it returns the request body without touching a key. The ceiling
    /// the crypto operations are measured against; leave it off in production.
    pub echo: bool,
}

/// Key lifecycle and caching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// How long a deleted elastic key stays restorable before its material is destroyed.
    pub purge_delay: HumanDuration,
    /// How often due deletions are purged.
    pub purge_interval: HumanDuration,
    /// Unsealed material keys kept in memory (least recently used are evicted and zeroized);
    /// also the number of elastic keys whose metadata is cached.
    pub material_cache_capacity: usize,
    /// How long encrypt, decrypt, sign, verify and generate may use an elastic key's cached
    /// metadata (status, algorithm, newest version) before reading it again; `0s` reads the
    /// database on every operation. Changes made on this instance apply at once; changes made
    /// on another instance sharing PostgreSQL arrive by `NOTIFY` at once, and within this bound
    /// should a notification be lost.
    pub metadata_cache_ttl: HumanDuration,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            purge_delay: HumanDuration::from_secs(7 * 24 * 3600),
            purge_interval: HumanDuration::from_secs(60),
            material_cache_capacity: 10_000,
            metadata_cache_ttl: HumanDuration::from_secs(2),
        }
    }
}

impl KeySettings {
    fn validate(&self, v: &mut Validator) {
        v.check(
            "keys.purge_interval",
            !self.purge_interval.get().is_zero(),
            "must be positive",
        );
        v.check(
            "keys.purge_delay",
            self.purge_delay.get().as_secs() <= 10 * 365 * 24 * 3600,
            "must be at most 10 years",
        );
        v.check(
            "keys.material_cache_capacity",
            (1..=10_000_000).contains(&self.material_cache_capacity),
            "must be between 1 and 10000000",
        );
        v.check(
            "keys.metadata_cache_ttl",
            self.metadata_cache_ttl.get().as_secs() <= 3600,
            "must be at most 1 hour",
        );
    }
}

impl Default for KmsSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(PUBLIC_PORT, ADMIN_PORT),
            logging: LoggingSettings::default(),
            telemetry: TelemetrySettings::default(),
            database: DatabaseSettings::default(),
            barrier: BarrierSettings::default(),
            keys: KeySettings::default(),
            auth: crate::auth::AuthSettings::default(),
            api: SurfacesSettings::default(),
            benchmark: BenchmarkSettings::default(),
        }
    }
}

impl KmsSettings {
    /// What `--dev` means for the KMS (SPEC §8): an in-memory SQLite database and a random dev
    /// unseal key, whatever the files say. Never for production.
    pub fn apply_dev(&mut self) {
        self.database = DatabaseSettings::with_url("sqlite::memory:");
        self.barrier.unseal = crate::barrier::UnsealSettings::Dev {};
    }

    /// What `--trust-issuer URL [--trust-issuer-ca FILE]` means (SPEC §8): trust `issuer`'s
    /// access tokens (discovery, audience `cryptoutil-kms`, tenant from `tenant_id`), introspecting
    /// as `kms-introspection-client` with `introspection_secret`, and put federation into
    /// `auth.order`. An issuer already configured keeps its settings (`ca_file` is replaced
    /// when given).
    pub fn trust_issuer(
        &mut self,
        issuer: &str,
        ca_file: Option<std::path::PathBuf>,
        introspection_secret: cryptoutil_server::config::Secret,
    ) {
        let issuers = &mut self.auth.federation.issuers;
        match issuers.iter_mut().find(|i| i.issuer == issuer) {
            Some(existing) => {
                if ca_file.is_some() {
                    existing.ca_file = ca_file;
                }
            }
            None => issuers.push(crate::auth::settings::IssuerSettings::new(
                issuer,
                ca_file,
                introspection_secret,
            )),
        }
        if !self
            .auth
            .order
            .contains(&crate::auth::AuthSource::Federation)
        {
            self.auth.order.push(crate::auth::AuthSource::Federation);
        }
    }

    /// Checks that the unseal mode fits the database: `dev` (a random key per process) would make
    /// a persistent database unreadable after a restart, so it needs an in-memory one.
    pub fn check_unseal_fits_database(&self) -> Result<(), String> {
        if matches!(self.barrier.unseal, crate::barrier::UnsealSettings::Dev {})
            && !self.database.is_in_memory()
        {
            return Err(
                "barrier.unseal.mode: dev (a random unseal key per process) needs an \
                        in-memory database (database.url: sqlite::memory:); configure `shares` or \
                        `jwk` unseal files to keep keys across restarts, or start with --dev"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl Settings for KmsSettings {
    const ENV_PREFIX: &'static str = "KMS";
    const FILE_NAME: &'static str = "kms.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
        self.telemetry.validate(v);
        self.database.validate(v);
        self.barrier.validate(v);
        self.keys.validate(v);
        self.auth.validate(v);
        self.api.validate("api", v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The schema shipped under `deployments/` is generated from these types (`cargo xtask schemas`).
    #[test]
    fn shipped_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deployments/kms/config.schema.json");
        cryptoutil_server::config::check_shipped_schema::<KmsSettings>(&path).unwrap();
    }

    /// `realms.yml` has its own schema, generated from the file realm's types.
    #[test]
    fn shipped_schema_of_realms_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deployments/kms/realms.schema.json");
        let generated = cryptoutil_realm::file_realm::json_schema(&crate::scopes::VOCABULARY);
        if std::env::var_os("CRYPTOUTIL_UPDATE_SCHEMAS").is_some() {
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let shipped: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(shipped, generated, "run `cargo xtask schemas`");
    }
}
