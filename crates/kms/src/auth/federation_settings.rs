//! `auth.federation:` settings of `kms.yml`: trusted issuers and revocation checks (SPEC §5).

use std::path::PathBuf;

use cryptoutil_jose::JwsAlgorithm;
use cryptoutil_server::config::{HumanDuration, Secret, Validator};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scopes;

/// The audience KMS tokens carry.
pub const DEFAULT_AUDIENCE: &str = "cryptoutil-kms";
/// Scopes whose requests are checked for revocation in `sensitive-only` mode.
pub const DEFAULT_SENSITIVE_SCOPES: [&str; 4] = [
    scopes::ADMIN,
    scopes::WRITE,
    scopes::MATERIAL_KEY_DELETE,
    scopes::ELASTIC_KEY_DELETE,
];
/// The introspection client Identity's demo seeding creates for the KMS.
pub const DEMO_INTROSPECTION_CLIENT: &str = "kms-introspection-client";
/// Its secret (**demo only**; public).
pub const DEMO_INTROSPECTION_SECRET: &str = "kms-introspection-client-secret";
/// Where the introspection secret is read from outside `--demo`/`--dev` (a Docker secret).
pub const SECRET_FILE_INTROSPECTION: &str = "file:///run/secrets/kms-introspection-client-secret";

/// Bearer access tokens from trusted issuers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FederationSettings {
    /// The trusted issuers; a token from any other issuer is refused (`invalid_issuer`).
    pub issuers: Vec<IssuerSettings>,
    /// How revoked tokens are noticed before they expire.
    pub revocation: RevocationSettings,
    /// Validated tokens remembered so a repeated token skips the signature check (default
    /// 10000 tokens for at most 1m each and never past `exp`; 0 disables).
    pub token_cache: TokenCacheSettings,
    /// The KMS's resource identifier (RFC 8707, RFC 9728): its public https base URL as clients
    /// reach it, e.g. `https://kms.cryptoutil.demo.local:8081`. Tokens whose `aud` is this value
    /// are accepted (besides each issuer's `audiences`); DPoP proofs must name URLs under it
    /// (`htu`); the protected resource metadata document describes it. Unset: `DPoP`-scheme
    /// requests are refused and no metadata document is served.
    pub resource: Option<String>,
    /// DPoP-bound access tokens (RFC 9449).
    pub dpop: DpopSettings,
}

/// `auth.federation.dpop`: sender-constrained tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DpopSettings {
    /// Most proofs remembered against replay (default 100000); when full of unexpired proofs,
    /// DPoP requests are refused with 503 until some expire (never evicted early).
    pub replay_cache_capacity: usize,
    /// Oldest accepted proof `iat` (default 60s, at most 5m); 5s of clock skew is allowed too.
    pub proof_max_age: HumanDuration,
    /// Refuse plain bearer tokens: only DPoP-bound tokens with a proof are accepted (default
    /// false; RFC 9728 `dpop_bound_access_tokens_required`).
    pub dpop_bound_access_tokens_required: bool,
}

impl Default for DpopSettings {
    fn default() -> Self {
        Self {
            replay_cache_capacity: 100_000,
            proof_max_age: HumanDuration::from_secs(60),
            dpop_bound_access_tokens_required: false,
        }
    }
}

/// The verified-token cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TokenCacheSettings {
    /// Longest time a validated token is remembered (default 1m, at most 1h; 0 disables).
    pub ttl: HumanDuration,
    /// Most remembered tokens (default 10000).
    pub capacity: usize,
}

impl Default for TokenCacheSettings {
    fn default() -> Self {
        Self {
            ttl: HumanDuration::from_secs(60),
            capacity: 10_000,
        }
    }
}

/// How a token's tenant is found (from `tenant_claim` and `fixed_tenant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantMapping {
    /// The tenant is named by this claim; a token without it is refused.
    Claim(String),
    /// Every token of the issuer acts in this tenant (by name); a token whose tenant claim
    /// names another tenant is refused.
    Fixed {
        /// The tenant's name.
        tenant: String,
        /// The claim that, when present, must name the same tenant.
        claim: String,
    },
}

/// One trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss` (https URL, no trailing slash), e.g. `https://identity.cryptoutil.demo.local:8082`.
    pub issuer: String,
    /// The JWKS URL; unset: `jwks_uri` from the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// Accepted `aud` values (default `[cryptoutil-kms]`).
    pub audiences: Vec<String>,
    /// Accepted header `alg` values (default ES256, RS256, PS256, EdDSA; HS* never).
    pub algorithms: Vec<String>,
    /// The claim that names a token's tenant (default `tenant_id`); a token without it is
    /// refused unless `fixed_tenant` is set.
    pub tenant_claim: String,
    /// A tenant (by name) every token of this issuer acts in; a token whose `tenant_claim`
    /// names another tenant is refused.
    pub fixed_tenant: Option<String>,
    /// PEM bundle of CAs trusted for this issuer's TLS certificate; default `server.tls.ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Also trust the system's CA store for this issuer (default false).
    pub system_roots: bool,
    /// How long fetched keys are used (default 5m); refreshed from half of it on.
    pub jwks_cache_ttl: HumanDuration,
    /// Least time between JWKS fetches caused by unknown `kid`s (default 30s).
    pub jwks_refetch_interval: HumanDuration,
    /// Tolerance for `exp` and `nbf` (default 60s, at most 5m).
    pub clock_skew: HumanDuration,
    /// How the KMS introspects this issuer's tokens (RFC 7662) for revocation checks.
    pub introspection: IntrospectionSettings,
    /// Operations whose user tokens need a stronger or more recent sign-in (RFC 9470 step-up);
    /// unset: none.
    pub step_up: Option<StepUpSettings>,
}

/// `auth.federation.issuers[].step_up`: a user token (one with a user sign-in: `auth_time`, or
/// a subject other than its client) used for a listed scope must carry one of `acr_values`,
/// and an `auth_time` within `max_age` when set; otherwise 403
/// `insufficient_user_authentication` with a challenge naming them. Client-credentials tokens
/// have no user and are not affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpSettings {
    /// The scopes concerned: a request is when the scope it needs, or the coarse scope whose
    /// group holds it (`kms:write`, `kms:read`, `kms:admin`), is listed, e.g. `[kms:admin]`.
    pub scopes: Vec<String>,
    /// Accepted `acr` values, e.g. `[urn:cryptoutil:acr:mfa, phr]` (Identity's classes).
    pub acr_values: Vec<String>,
    /// Oldest accepted sign-in (`auth_time`), e.g. `15m`; unset: any age.
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
}

impl StepUpSettings {
    /// Whether a request that needs `required` (`None`: unknown, concerned so it fails safe)
    /// is concerned.
    pub fn concerns(&self, required: Option<&str>) -> bool {
        let Some(required) = required else {
            return true;
        };
        let group = scopes::coarse_scope_of(required);
        self.scopes.iter().any(|s| s == required || s == group)
    }

    /// The realm's policy of these settings.
    pub fn policy(&self) -> cryptoutil_realm::bearer::StepUpPolicy {
        cryptoutil_realm::bearer::StepUpPolicy {
            acr_values: self.acr_values.clone(),
            max_age: self.max_age.map(|age| age.get().as_secs()),
        }
    }

    fn validate(&self, key: &str, v: &mut Validator) {
        v.check(
            &format!("{key}.scopes"),
            !self.scopes.is_empty() && self.scopes.iter().all(|s| scopes::is_known(s)),
            "name at least one KMS scope (kms:admin, kms:write, kms:read or a fine scope)",
        );
        v.check(
            &format!("{key}.acr_values"),
            !self.acr_values.is_empty()
                && self.acr_values.len() <= 8
                && self
                    .acr_values
                    .iter()
                    .all(|a| !a.is_empty() && a.len() <= 256 && !a.contains(char::is_whitespace)),
            "name 1 to 8 acr values, none empty or with whitespace",
        );
        if let Some(age) = self.max_age {
            v.check(
                &format!("{key}.max_age"),
                (1..=30 * 86_400).contains(&age.get().as_secs()),
                "must be between 1s and 30 days",
            );
        }
    }
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            jwks_url: None,
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            algorithms: ["ES256", "RS256", "PS256", "EdDSA"]
                .map(str::to_owned)
                .to_vec(),
            tenant_claim: "tenant_id".to_owned(),
            fixed_tenant: None,
            ca_file: None,
            system_roots: false,
            jwks_cache_ttl: HumanDuration::from_secs(300),
            jwks_refetch_interval: HumanDuration::from_secs(30),
            clock_skew: HumanDuration::from_secs(60),
            introspection: IntrospectionSettings::default(),
            step_up: None,
        }
    }
}

impl IssuerSettings {
    /// The tenant mapping of `tenant_claim` and `fixed_tenant`.
    pub fn tenant_mapping(&self) -> TenantMapping {
        match &self.fixed_tenant {
            Some(tenant) => TenantMapping::Fixed {
                tenant: tenant.clone(),
                claim: self.tenant_claim.clone(),
            },
            None => TenantMapping::Claim(self.tenant_claim.clone()),
        }
    }

    /// Trust `issuer` with the defaults, introspecting as [`DEMO_INTROSPECTION_CLIENT`] with
    /// `client_secret` (the demo secret, or [`SECRET_FILE_INTROSPECTION`] outside demos).
    pub fn new(issuer: impl Into<String>, ca_file: Option<PathBuf>, client_secret: Secret) -> Self {
        Self {
            issuer: issuer.into(),
            ca_file,
            introspection: IntrospectionSettings {
                client_secret: Some(client_secret),
                ..IntrospectionSettings::default()
            },
            ..Self::default()
        }
    }
}

/// Introspection at one issuer: `client_secret_basic` with the KMS's own client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IntrospectionSettings {
    /// The endpoint; unset: `introspection_endpoint` from the issuer's discovery document.
    pub endpoint: Option<String>,
    /// The KMS's client id at the issuer (default `kms-introspection-client`).
    pub client_id: String,
    /// Its secret, e.g. `file:///run/secrets/kms-introspection-client-secret`; required unless
    /// `auth.federation.revocation.mode` is `disabled`.
    pub client_secret: Option<Secret>,
}

impl Default for IntrospectionSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            client_id: DEMO_INTROSPECTION_CLIENT.to_owned(),
            client_secret: None,
        }
    }
}

/// When a token is checked for revocation at its issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationMode {
    /// Every request asks the issuer (concurrent requests with one token share one answer).
    EveryRequest,
    /// Requests that need a sensitive scope ask the issuer (an active answer is reused for
    /// `sensitive_cache_ttl`); other requests only honour answers already known.
    #[default]
    SensitiveOnly,
    /// Every request, but an active answer is reused for `interval`.
    Interval,
    /// Never: a revoked token works until it expires.
    Disabled,
}

/// Revocation checks (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationSettings {
    /// `every-request`, `sensitive-only` (default), `interval` or `disabled`.
    pub mode: RevocationMode,
    /// A request is sensitive when the scope it needs, or the coarse scope whose group holds it
    /// (`kms:write` for write operations, `kms:read` for reads, `kms:admin` for administration),
    /// is listed. Default `kms:admin kms:write kms:key:delete kms:pool:delete`.
    pub sensitive_scopes: Vec<String>,
    /// `sensitive-only`: how long an active answer is reused (default 10s; 0 asks every time).
    pub sensitive_cache_ttl: HumanDuration,
    /// `interval`: how long an active answer is reused (default 5m).
    pub interval: HumanDuration,
    /// Most remembered answers, by token digest (default 10000).
    pub cache_capacity: usize,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        Self {
            mode: RevocationMode::default(),
            sensitive_scopes: DEFAULT_SENSITIVE_SCOPES.map(str::to_owned).to_vec(),
            sensitive_cache_ttl: HumanDuration::from_secs(10),
            interval: HumanDuration::from_secs(300),
            cache_capacity: 10_000,
        }
    }
}

fn https_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
}

impl FederationSettings {
    /// Load-time checks (`auth.federation.*`).
    pub fn validate(&self, v: &mut Validator) {
        for (i, issuer) in self.issuers.iter().enumerate() {
            let key = format!("auth.federation.issuers[{i}]");
            issuer.validate(&key, self.revocation.mode, v);
            v.check(
                &format!("{key}.issuer"),
                !self.issuers[..i].iter().any(|o| o.issuer == issuer.issuer),
                "listed twice",
            );
        }
        self.revocation.validate(v);
        v.check(
            "auth.federation.token_cache.ttl",
            self.token_cache.ttl.get().as_secs() <= 3600,
            "must be at most 1h",
        );
        v.check(
            "auth.federation.token_cache.capacity",
            self.token_cache.capacity <= 1_000_000,
            "must be at most 1000000",
        );
        if let Some(resource) = &self.resource {
            v.check(
                "auth.federation.resource",
                cryptoutil_realm::bearer::sender::is_resource_identifier(resource),
                "must be an https:// URL without query, fragment or trailing slash",
            );
        }
        v.check(
            "auth.federation.dpop.replay_cache_capacity",
            (1..=10_000_000).contains(&self.dpop.replay_cache_capacity),
            "must be between 1 and 10000000",
        );
        let age = self.dpop.proof_max_age.get().as_secs();
        v.check(
            "auth.federation.dpop.proof_max_age",
            (1..=300).contains(&age),
            "must be between 1s and 5m",
        );
        v.check(
            "auth.federation.dpop.dpop_bound_access_tokens_required",
            !self.dpop.dpop_bound_access_tokens_required || self.resource.is_some(),
            "needs auth.federation.resource (DPoP proofs are checked against it)",
        );
    }
}

impl IssuerSettings {
    fn validate(&self, key: &str, mode: RevocationMode, v: &mut Validator) {
        let at = |field: &str| format!("{key}.{field}");
        v.check(
            &at("issuer"),
            https_url(&self.issuer) && !self.issuer.ends_with('/'),
            "must be an https:// URL without a trailing slash",
        );
        if let Some(url) = &self.jwks_url {
            v.check(&at("jwks_url"), https_url(url), "must be an https:// URL");
        }
        v.check(
            &at("audiences"),
            !self.audiences.is_empty() && self.audiences.iter().all(|a| !a.is_empty()),
            "name at least one audience (default cryptoutil-kms), none empty",
        );
        v.check(
            &at("algorithms"),
            !self.algorithms.is_empty(),
            "name at least one algorithm",
        );
        for (j, name) in self.algorithms.iter().enumerate() {
            let ok = name
                .parse::<JwsAlgorithm>()
                .is_ok_and(|a| !a.name().starts_with("HS"));
            v.check(
                &at(&format!("algorithms[{j}]")),
                ok,
                "must be an asymmetric JWS algorithm (ES256, ES384, ES512, RS256, PS256, EdDSA, …)",
            );
        }
        v.check(
            &at("tenant_claim"),
            !self.tenant_claim.trim().is_empty(),
            "must not be empty",
        );
        if let Some(fixed) = &self.fixed_tenant {
            v.check(
                &at("fixed_tenant"),
                !fixed.trim().is_empty(),
                "must not be empty",
            );
        }
        let ttl = self.jwks_cache_ttl.get().as_secs();
        v.check(
            &at("jwks_cache_ttl"),
            (1..=86_400).contains(&ttl),
            "must be between 1s and 24h",
        );
        let refetch = self.jwks_refetch_interval.get();
        v.check(
            &at("jwks_refetch_interval"),
            !refetch.is_zero() && refetch.as_secs() <= 3600,
            "must be more than 0 and at most 1h",
        );
        v.check(
            &at("clock_skew"),
            self.clock_skew.get().as_secs() <= 300,
            "must be at most 5m",
        );
        let intro = &self.introspection;
        if let Some(url) = &intro.endpoint {
            v.check(
                &at("introspection.endpoint"),
                https_url(url),
                "must be an https:// URL",
            );
        }
        v.check(
            &at("introspection.client_id"),
            !intro.client_id.is_empty(),
            "must not be empty",
        );
        v.check(
            &at("introspection.client_secret"),
            mode == RevocationMode::Disabled || intro.client_secret.is_some(),
            "required for revocation checks (e.g. file:///run/secrets/kms-introspection-client-secret), \
             unless auth.federation.revocation.mode is disabled",
        );
        if let Some(step_up) = &self.step_up {
            step_up.validate(&at("step_up"), v);
        }
    }
}

impl RevocationSettings {
    fn validate(&self, v: &mut Validator) {
        for (i, scope) in self.sensitive_scopes.iter().enumerate() {
            v.check(
                &format!("auth.federation.revocation.sensitive_scopes[{i}]"),
                scopes::is_known(scope),
                "must be a KMS scope (kms:admin, kms:write, kms:read or a fine scope)",
            );
        }
        v.check(
            "auth.federation.revocation.sensitive_cache_ttl",
            self.sensitive_cache_ttl.get().as_secs() <= 3600,
            "must be at most 1h",
        );
        let interval = self.interval.get().as_secs();
        v.check(
            "auth.federation.revocation.interval",
            (1..=86_400).contains(&interval),
            "must be between 1s and 24h",
        );
        v.check(
            "auth.federation.revocation.cache_capacity",
            (1..=1_000_000).contains(&self.cache_capacity),
            "must be between 1 and 1000000",
        );
    }

    /// Whether a request that needs `required` (`None`: unknown) is sensitive; unknown requests
    /// are, so a route missing from the table fails safe.
    pub fn is_sensitive(&self, required: Option<&str>) -> bool {
        let Some(required) = required else {
            return true;
        };
        let group = scopes::coarse_scope_of(required);
        self.sensitive_scopes
            .iter()
            .any(|s| s == required || s == group)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn problems(f: &FederationSettings) -> String {
        let mut v = Validator::default();
        f.validate(&mut v);
        v.finish()
            .map_or_else(|e| e.to_string(), |()| String::new())
    }

    fn issuer(url: &str) -> IssuerSettings {
        IssuerSettings::new(url, None, Secret::new("s"))
    }

    #[test]
    fn defaults_and_a_plain_issuer_are_valid() {
        let mut f = FederationSettings::default();
        assert_eq!(problems(&f), "");
        f.issuers.push(issuer("https://identity.example:8082"));
        assert_eq!(problems(&f), "");
        assert_eq!(f.issuers[0].audiences, [DEFAULT_AUDIENCE]);
        assert_eq!(f.revocation.mode, RevocationMode::SensitiveOnly);
    }

    #[test]
    fn bad_issuers_are_refused_with_their_keys() {
        let mut bad = issuer("http://identity.example/");
        bad.jwks_url = Some("http://x".into());
        bad.audiences.clear();
        bad.algorithms = vec!["HS256".into(), "none".into()];
        bad.fixed_tenant = Some(" ".into());
        bad.clock_skew = HumanDuration::from_secs(600);
        bad.introspection.client_secret = None;
        bad.introspection.endpoint = Some("ftp://x".into());
        let f = FederationSettings {
            issuers: vec![
                bad,
                issuer("https://a.example"),
                issuer("https://a.example"),
            ],
            ..FederationSettings::default()
        };
        let text = problems(&f);
        for key in [
            "issuers[0].issuer",
            "issuers[0].jwks_url",
            "issuers[0].audiences",
            "issuers[0].algorithms[0]",
            "issuers[0].algorithms[1]",
            "issuers[0].fixed_tenant",
            "issuers[0].clock_skew",
            "issuers[0].introspection.endpoint",
            "issuers[0].introspection.client_secret",
            "issuers[2].issuer: listed twice",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert!(!text.contains("issuers[1]"), "{text}");
    }

    #[test]
    fn without_revocation_checks_no_secret_is_needed() {
        let mut i = issuer("https://identity.example");
        i.introspection.client_secret = None;
        let mut f = FederationSettings {
            issuers: vec![i],
            ..FederationSettings::default()
        };
        assert!(problems(&f).contains("client_secret"));
        f.revocation.mode = RevocationMode::Disabled;
        assert_eq!(problems(&f), "");
        f.revocation.sensitive_scopes.push("kms:nonsense".into());
        assert!(problems(&f).contains("sensitive_scopes[4]"));
    }

    #[test]
    fn resource_and_dpop_settings_are_checked() {
        let mut f = FederationSettings {
            resource: Some("https://kms.example:8081".into()),
            ..FederationSettings::default()
        };
        assert_eq!(problems(&f), "");
        f.resource = Some("http://kms.example/".into());
        f.dpop.replay_cache_capacity = 0;
        f.dpop.proof_max_age = HumanDuration::from_secs(600);
        let text = problems(&f);
        for key in [
            "auth.federation.resource",
            "dpop.replay_cache_capacity",
            "dpop.proof_max_age",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        let f = FederationSettings {
            dpop: DpopSettings {
                dpop_bound_access_tokens_required: true,
                ..DpopSettings::default()
            },
            ..FederationSettings::default()
        };
        assert!(problems(&f).contains("dpop_bound_access_tokens_required"));
    }

    #[test]
    fn sensitivity_follows_the_scope_groups() {
        let r = RevocationSettings::default();
        for s in ["kms:encrypt", "kms:decrypt", "kms:pool:delete", "kms:admin"] {
            assert!(r.is_sensitive(Some(s)), "{s}");
        }
        for s in ["kms:verify", "kms:pool:read", "kms:key:read"] {
            assert!(!r.is_sensitive(Some(s)), "{s}");
        }
        assert!(r.is_sensitive(None));
        let only_deletes = RevocationSettings {
            sensitive_scopes: vec!["kms:key:delete".into(), "kms:pool:delete".into()],
            ..RevocationSettings::default()
        };
        assert!(only_deletes.is_sensitive(Some("kms:pool:delete")));
        assert!(!only_deletes.is_sensitive(Some("kms:encrypt")));
        assert!(!only_deletes.is_sensitive(Some("kms:admin")));
    }

    #[test]
    fn yaml_names_are_as_documented() {
        let f: FederationSettings = serde_yaml_ng::from_str(
            "issuers:\n  - issuer: https://id.example\n    fixed_tenant: demo-tenant\n    \
             introspection: {client_secret: s}\nrevocation: {mode: every-request}\n",
        )
        .unwrap();
        assert_eq!(
            f.issuers[0].tenant_mapping(),
            TenantMapping::Fixed {
                tenant: "demo-tenant".into(),
                claim: "tenant_id".into()
            }
        );
        assert_eq!(f.revocation.mode, RevocationMode::EveryRequest);
        assert!(
            serde_yaml_ng::from_str::<FederationSettings>("revocation: {mode: sometimes}").is_err()
        );
    }

    #[test]
    fn step_up_settings_are_read_and_checked() {
        let f: FederationSettings = serde_yaml_ng::from_str(
            "issuers:\n  - issuer: https://id.example\n    introspection: {client_secret: s}\n    \
             step_up:\n      scopes: [kms:admin]\n      acr_values: [urn:cryptoutil:acr:mfa, phr]\n      \
             max_age: 15m\n",
        )
        .unwrap();
        assert_eq!(problems(&f), "");
        let step_up = f.issuers[0].step_up.clone().unwrap();
        assert!(step_up.concerns(Some("kms:admin")));
        assert!(step_up.concerns(None), "unknown routes fail safe");
        assert!(!step_up.concerns(Some("kms:encrypt")));
        assert_eq!(step_up.policy().max_age, Some(900));
        for (bad, field) in [
            (
                StepUpSettings {
                    scopes: vec!["kms:everything".into()],
                    ..step_up.clone()
                },
                "step_up.scopes",
            ),
            (
                StepUpSettings {
                    acr_values: Vec::new(),
                    ..step_up.clone()
                },
                "step_up.acr_values",
            ),
            (
                StepUpSettings {
                    acr_values: vec!["a b".into()],
                    ..step_up.clone()
                },
                "step_up.acr_values",
            ),
            (
                StepUpSettings {
                    max_age: Some(HumanDuration::from_secs(0)),
                    ..step_up.clone()
                },
                "step_up.max_age",
            ),
        ] {
            let mut f = f.clone();
            f.issuers[0].step_up = Some(bad);
            assert!(problems(&f).contains(field), "{field}: {}", problems(&f));
        }
        assert!(
            serde_yaml_ng::from_str::<StepUpSettings>("scopes: [kms:admin]\nacr: [phr]\n").is_err()
        );
    }
}
