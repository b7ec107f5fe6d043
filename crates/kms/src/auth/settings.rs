//! `auth:` settings of `kms.yml`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{HumanDuration, Validator};

pub use super::federation_settings::{
    DEFAULT_AUDIENCE, DEFAULT_SENSITIVE_SCOPES, DEMO_INTROSPECTION_CLIENT,
    DEMO_INTROSPECTION_SECRET, DpopSettings, FederationSettings, IntrospectionSettings,
    IssuerSettings, RevocationMode, RevocationSettings, SECRET_FILE_INTROSPECTION, StepUpSettings,
    TenantMapping, TokenCacheSettings,
};

/// An authentication source, tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthSource {
    /// The `realms.yml` file realm.
    File,
    /// The database realm (`kms_realm_users`).
    Db,
    /// Bearer tokens from trusted Identity issuers (`auth.federation`).
    Federation,
}

/// How callers authenticate (SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Order of the realms for HTTP Basic (default file → db → federation).
    pub order: Vec<AuthSource>,
    /// The file realm (`realms.yml`); unset means no file realm.
    pub realms_file: Option<PathBuf>,
    /// How long a verified credential is remembered (default 5 minutes; 0 disables the cache).
    pub cache_ttl: HumanDuration,
    /// Most remembered credentials (default 10000).
    pub cache_capacity: usize,
    /// Bearer access tokens from trusted issuers (SPEC §5); off while `issuers` is empty.
    pub federation: FederationSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            order: vec![AuthSource::File, AuthSource::Db, AuthSource::Federation],
            realms_file: None,
            cache_ttl: HumanDuration::from_secs(300),
            cache_capacity: 10_000,
            federation: FederationSettings::default(),
        }
    }
}

impl AuthSettings {
    /// Load-time checks (`auth.*`).
    pub fn validate(&self, v: &mut Validator) {
        let mut seen = std::collections::HashSet::new();
        v.check(
            "auth.order",
            self.order.iter().all(|s| seen.insert(*s)),
            "each source may appear once",
        );
        v.check(
            "auth.order",
            !self.order.is_empty(),
            "name at least one source",
        );
        let federated = !self.federation.issuers.is_empty();
        v.check(
            "auth.order",
            !federated || self.order.contains(&AuthSource::Federation),
            "auth.federation.issuers is set: add federation to auth.order (or remove the issuers)",
        );
        v.check(
            "auth.order",
            federated || self.order.iter().any(|s| *s != AuthSource::Federation),
            "federation alone needs at least one issuer in auth.federation.issuers",
        );
        self.federation.validate(v);
        v.check(
            "auth.cache_ttl",
            self.cache_ttl.get().as_secs() <= 3600,
            "must be at most 1h",
        );
        v.check(
            "auth.cache_capacity",
            self.cache_capacity <= 1_000_000,
            "must be at most 1000000",
        );
    }
}
