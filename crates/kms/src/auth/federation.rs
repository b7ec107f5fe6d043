//! Federation (SPEC §5): `Authorization: Bearer` access tokens of trusted issuers.
//!
//! A token is validated locally ([`cryptoutil_realm::bearer`]: JWKS cache, header `alg` on the
//! allowlist, `typ` `at+jwt`, `iss`, `aud`, `exp`/`nbf` with skew), then mapped onto the KMS: its
//! `kms:*` scopes are expanded exactly as a realm user's roles are, and its tenant comes from the
//! issuer's tenant mapping (a claim, default `tenant_id`, or a fixed tenant). The result is kept
//! in a verified-token cache keyed by the token's SHA-256, so a warm request does no signature
//! check and no I/O. Then the request's scope is checked (403 `insufficient_scope` before any
//! revocation check), and the revocation mode decides whether the issuer's introspection
//! endpoint is asked ([`RevocationCache`]: cached, single-flight, fail closed).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cryptoutil_jose::JwsAlgorithm;
use cryptoutil_realm::bearer::{
    BearerError, BearerValidator, Challenge, HttpIntrospector, IntrospectionEndpoint, Introspector,
    IssuerTrust, JwksSource, Presented, ProtectedResource, ProtectedResourceConfig,
    ProtectedResourceMetadata, RevocationCache, StepUpPolicy, StepUpShortfall, TokenDigest,
    TrustedIssuers, VerifiedTokens, step_up,
};
use cryptoutil_server::ReadinessCheck;
use cryptoutil_tls::{TrustConfig, client_config};

use super::settings::TenantMapping;
use super::settings::{
    FederationSettings, IssuerSettings, RevocationMode, RevocationSettings, StepUpSettings,
};
use crate::model::TenantId;
use crate::scopes;

/// One trusted issuer at run time.
#[derive(Debug)]
struct Issuer {
    tenant: TenantMapping,
    /// `None` when revocation checks are disabled.
    revocations: Option<RevocationCache>,
    /// The operations whose user tokens need a stronger sign-in, and what they need.
    step_up: Option<(StepUpSettings, StepUpPolicy)>,
}

/// A user token that falls short of its issuer's step-up policy (RFC 9470).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpRequired {
    /// What falls short.
    pub shortfall: StepUpShortfall,
    /// The policy it falls short of.
    pub policy: StepUpPolicy,
}

/// A validated token mapped onto the KMS: all a warm request needs.
#[derive(Debug)]
pub(super) struct Verified {
    /// Index of the issuer in [`Federation`].
    issuer: usize,
    /// For the audit log and [`crate::model::Principal::subject`]: `bearer:<sub>`.
    pub(super) subject: String,
    /// The token's `client_id`, for the audit log.
    pub(super) client_id: Option<String>,
    /// Expanded KMS scopes.
    pub(super) scopes: Vec<String>,
    /// The tenant the token acts in.
    pub(super) tenant: TenantId,
    /// `exp`.
    expires_at: u64,
    /// `cnf.jkt`: the DPoP key the token is bound to.
    pub(super) jkt: Option<String>,
    /// The `act` chain as the audit shows it (`rs-client via gateway`), when delegated.
    pub(super) actor: Option<String>,
    /// Whether the token carries a user's sign-in (not client credentials).
    user: bool,
    /// The user's `acr`.
    acr: Option<String>,
    /// The user's `auth_time`.
    auth_time: Option<u64>,
}

impl Verified {
    /// Whether the token's scopes grant `scope` (`kms:admin` grants everything).
    pub(super) fn grants(&self, scope: &str) -> bool {
        scopes::grants(&self.scopes, scope)
    }
}

/// The trusted issuers, the caches and the revocation policy.
#[derive(Debug)]
pub struct Federation {
    trusted: TrustedIssuers,
    issuers: Vec<Issuer>,
    revocation: RevocationSettings,
    verified: VerifiedTokens<Verified>,
    /// The KMS as a protected resource (DPoP, challenges, RFC 9728 metadata).
    protected: ProtectedResource,
}

/// Why a token's tenant cannot be used (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TenantProblem {
    /// The token names no tenant and the issuer has no fixed tenant.
    None(String),
    /// The tenant named is not this one (fixed mapping) or not known.
    Refused(String),
}

impl Federation {
    /// The federation the settings describe (`None` without issuers), fetching over HTTPS.
    /// Each issuer's TLS trust is its `ca_file`, else `default_ca` (`server.tls.ca_file`), plus
    /// the system store when its `system_roots` is set.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn from_settings(
        settings: &FederationSettings,
        default_ca: Option<&Path>,
    ) -> Result<Option<Self>, String> {
        if settings.issuers.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(settings.issuers.len());
        for (i, issuer) in settings.issuers.iter().enumerate() {
            let key = format!("auth.federation.issuers[{i}]");
            let tls = Arc::new(issuer_tls(issuer, default_ca).map_err(|e| format!("{key}: {e}"))?);
            let validator = BearerValidator::over_https(
                trust_of(issuer, settings.resource.as_deref())?,
                tls.clone(),
            )
            .map_err(|e| format!("{key}: {e}"))?;
            let introspector: Option<Arc<dyn Introspector>> = match (
                &issuer.introspection.client_secret,
                settings.revocation.mode,
            ) {
                (_, RevocationMode::Disabled) => None,
                (None, _) => {
                    return Err(format!("{key}.introspection.client_secret is required"));
                }
                (Some(secret), _) => Some(Arc::new(
                    HttpIntrospector::new(
                        &issuer.issuer,
                        issuer
                            .introspection
                            .endpoint
                            .clone()
                            .map_or(IntrospectionEndpoint::Discovery, IntrospectionEndpoint::Url),
                        &issuer.introspection.client_id,
                        secret.expose(),
                        tls,
                    )
                    .map_err(|e| format!("{key}: {e}"))?,
                )),
            };
            parts.push((validator, introspector));
        }
        Self::with_parts(settings, parts).map(Some)
    }

    /// A federation over prepared validators and introspectors (one per issuer of `settings`, in
    /// order), for tests and benchmarks that serve keys and answers without a network.
    ///
    /// # Errors
    /// When the parts do not match the settings.
    pub fn with_parts(
        settings: &FederationSettings,
        parts: Vec<(BearerValidator, Option<Arc<dyn Introspector>>)>,
    ) -> Result<Self, String> {
        if parts.len() != settings.issuers.len() {
            return Err("one validator per configured issuer is needed".to_owned());
        }
        let mut validators = Vec::with_capacity(parts.len());
        let mut issuers = Vec::with_capacity(parts.len());
        for ((validator, introspector), config) in parts.into_iter().zip(&settings.issuers) {
            if validator.issuer() != config.issuer {
                return Err(format!(
                    "the validator of {} is for another issuer",
                    config.issuer
                ));
            }
            let revocations = match settings.revocation.mode {
                RevocationMode::Disabled => None,
                _ => Some(RevocationCache::new(
                    introspector.ok_or_else(|| {
                        format!("{}: revocation checks need an introspector", config.issuer)
                    })?,
                    settings.revocation.cache_capacity,
                )),
            };
            validators.push(validator);
            issuers.push(Issuer {
                tenant: config.tenant_mapping(),
                revocations,
                step_up: config
                    .step_up
                    .as_ref()
                    .map(|settings| (settings.clone(), settings.policy())),
            });
        }
        let protected = ProtectedResource::new(ProtectedResourceConfig {
            realm: super::REALM.to_owned(),
            resource: settings.resource.clone(),
            issuers: settings.issuers.iter().map(|i| i.issuer.clone()).collect(),
            scopes: scopes::ALL.iter().map(|s| (*s).to_owned()).collect(),
            replay_capacity: settings.dpop.replay_cache_capacity,
            proof_max_age: settings.dpop.proof_max_age.get(),
            dpop_required: settings.dpop.dpop_bound_access_tokens_required,
        })
        .map_err(|e| format!("auth.federation: {e}"))?;
        Ok(Self {
            trusted: TrustedIssuers::new(validators).map_err(|e| e.to_string())?,
            issuers,
            revocation: settings.revocation.clone(),
            verified: VerifiedTokens::new(
                settings.token_cache.capacity,
                settings.token_cache.ttl.get(),
            ),
            protected,
        })
    }

    /// The `WWW-Authenticate` challenges of this KMS's tokens (Bearer and/or DPoP, with the
    /// RFC 9728 `resource_metadata` when `auth.federation.resource` is set).
    pub fn challenge(&self) -> &Challenge {
        self.protected.challenge()
    }

    /// The RFC 9728 document, when `auth.federation.resource` is set.
    pub fn metadata(&self) -> Option<&ProtectedResourceMetadata> {
        self.protected.metadata()
    }

    /// Checks that the token was presented as its binding demands (RFC 9449 §7): a DPoP-bound
    /// token only with the `DPoP` scheme and a fresh proof of its key for this `method` and
    /// `path` (under `auth.federation.resource`).
    pub(super) async fn check_binding(
        &self,
        presented: &Presented<'_>,
        verified: &Verified,
        method: &str,
        path: Option<&str>,
    ) -> Result<(), BearerError> {
        self.protected
            .check(presented, verified.jkt.as_deref(), method, path)
            .await
    }

    /// The validated, mapped token from the cache, if it is there and still usable.
    pub(super) fn cached(&self, digest: &TokenDigest, now: u64) -> Option<Arc<Verified>> {
        self.verified.get(digest, now)
    }

    /// Validates `token` (no cache) and returns it with its issuer's tenant mapping.
    pub(super) async fn validate(
        &self,
        token: &str,
    ) -> Result<(cryptoutil_realm::bearer::AccessToken, usize), BearerError> {
        let token = self.trusted.validate(token).await?;
        let index = self
            .trusted
            .validators()
            .iter()
            .position(|v| v.issuer() == token.issuer)
            .ok_or(BearerError::InvalidIssuer)?;
        Ok((token, index))
    }

    /// The tenant name a validated token acts in, per its issuer's mapping.
    pub(super) fn tenant_name<'t>(
        &'t self,
        token: &'t cryptoutil_realm::bearer::AccessToken,
        issuer: usize,
    ) -> Result<&'t str, TenantProblem> {
        let claim = |name: &str| token.claims.get(name).and_then(|v| v.as_str());
        match self.issuers.get(issuer).map(|i| &i.tenant) {
            Some(TenantMapping::Claim(name)) => claim(name)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| TenantProblem::None(format!("the token has no {name} claim"))),
            Some(TenantMapping::Fixed {
                tenant,
                claim: name,
            }) => match claim(name) {
                Some(t) if t != tenant => Err(TenantProblem::Refused(format!(
                    "the token's {name} is not the tenant its issuer is mapped to"
                ))),
                _ => Ok(tenant),
            },
            None => Err(TenantProblem::None("unknown issuer".to_owned())),
        }
    }

    /// Remembers a validated, mapped token.
    pub(super) fn remember(
        &self,
        digest: TokenDigest,
        token: &cryptoutil_realm::bearer::AccessToken,
        issuer: usize,
        tenant: TenantId,
    ) -> Arc<Verified> {
        let verified = Arc::new(Verified {
            issuer,
            subject: format!("bearer:{}", token.subject),
            client_id: token.client_id.clone(),
            scopes: scopes::expand(&token.scopes).into_iter().collect(),
            tenant,
            expires_at: token.expires_at,
            jkt: token.jkt.clone(),
            actor: (!token.actors.is_empty()).then(|| token.actors.join(" via ")),
            user: step_up::is_user_token(token),
            acr: token.acr.clone(),
            auth_time: token.auth_time,
        });
        self.verified
            .insert(digest, verified.clone(), token.expires_at);
        verified
    }

    /// The issuer's step-up policy (RFC 9470) for a request that needs `required` (`None`:
    /// unknown): a user token used for a listed scope must carry an accepted `acr` and a recent
    /// enough `auth_time`. Tokens without a user (client credentials) are not concerned.
    pub(super) fn check_step_up(
        &self,
        verified: &Verified,
        required: Option<&str>,
        now: u64,
    ) -> Result<(), StepUpRequired> {
        let Some((settings, policy)) = self
            .issuers
            .get(verified.issuer)
            .and_then(|i| i.step_up.as_ref())
        else {
            return Ok(());
        };
        if !verified.user || !settings.concerns(required) {
            return Ok(());
        }
        policy
            .check(verified.acr.as_deref(), verified.auth_time, now)
            .map_err(|shortfall| StepUpRequired {
                shortfall,
                policy: policy.clone(),
            })
    }

    /// The revocation check the mode asks for a request that needs `required` (`None`: unknown).
    pub(super) async fn check_revocation(
        &self,
        verified: &Verified,
        token: &str,
        digest: &TokenDigest,
        required: Option<&str>,
    ) -> Result<(), BearerError> {
        let Some(cache) = self
            .issuers
            .get(verified.issuer)
            .and_then(|i| i.revocations.as_ref())
        else {
            return Ok(());
        };
        let max_age = match self.revocation.mode {
            RevocationMode::Disabled => return Ok(()),
            RevocationMode::EveryRequest => Duration::ZERO,
            RevocationMode::Interval => self.revocation.interval.get(),
            RevocationMode::SensitiveOnly if self.revocation.is_sensitive(required) => {
                self.revocation.sensitive_cache_ttl.get()
            }
            RevocationMode::SensitiveOnly => {
                return if cache.known_revoked(digest) {
                    Err(BearerError::Revoked)
                } else {
                    Ok(())
                };
            }
        };
        cache
            .check(
                token,
                digest,
                verified.expires_at,
                max_age,
                verified.jkt.as_deref(),
            )
            .await
    }

    /// One required readiness check per issuer: its JWKS can be had (SPEC §2).
    pub fn readiness_checks(&self) -> Vec<ReadinessCheck> {
        self.trusted
            .validators()
            .iter()
            .map(|validator| {
                let validator = validator.clone();
                ReadinessCheck::required(format!("jwks {}", validator.issuer()), move || {
                    let validator = validator.clone();
                    async move {
                        validator
                            .check_jwks()
                            .await
                            .map(|n| format!("{n} signing key(s) cached"))
                            .map_err(|e| e.to_string())
                    }
                })
            })
            .collect()
    }

    /// Drops remembered revocation answers of expired tokens.
    pub fn purge_expired(&self) {
        let now = unix_now();
        for issuer in &self.issuers {
            if let Some(cache) = &issuer.revocations {
                cache.purge_expired(now);
            }
        }
    }
}

/// The realm's trust description of an issuer's settings (validated at load already).
fn trust_of(issuer: &IssuerSettings, resource: Option<&str>) -> Result<IssuerTrust, String> {
    let algorithms = issuer
        .algorithms
        .iter()
        .map(|a| a.parse::<JwsAlgorithm>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: algorithms: {e}", issuer.issuer))?;
    Ok(IssuerTrust {
        issuer: issuer.issuer.clone(),
        jwks: issuer
            .jwks_url
            .clone()
            .map_or(JwksSource::Discovery, JwksSource::Url),
        audiences: issuer
            .audiences
            .iter()
            .map(String::as_str)
            .chain(resource)
            .map(str::to_owned)
            .collect(),
        algorithms,
        cache_ttl: issuer.jwks_cache_ttl.get(),
        refetch_interval: issuer.jwks_refetch_interval.get(),
        clock_skew: issuer.clock_skew.get(),
    })
}

/// TLS 1.3 client configuration trusting the issuer's CA bundle (never unverified).
fn issuer_tls(
    issuer: &IssuerSettings,
    default_ca: Option<&Path>,
) -> Result<cryptoutil_tls::rustls::ClientConfig, String> {
    let ca = issuer.ca_file.as_deref().or(default_ca);
    if ca.is_none() && !issuer.system_roots {
        return Err(
            "no CA to trust for the issuer's TLS: set ca_file (or server.tls.ca_file, \
                    or system_roots: true)"
                .to_owned(),
        );
    }
    let files: Vec<&Path> = ca.into_iter().collect();
    let trust = TrustConfig::from_ca_files(&files)
        .map_err(|e| format!("ca_file: {e}"))?
        .with_system_roots(issuer.system_roots);
    client_config(trust, None).map_err(|e| e.to_string())
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
