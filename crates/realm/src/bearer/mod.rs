//! Bearer access tokens from a trusted OAuth issuer, validated locally (SPEC §5).
//!
//! A [`BearerValidator`] trusts one issuer: it fetches the issuer's JWKS (through discovery or a
//! configured URL) into a cache and checks each JWT access token (RFC 9068) against it:
//!
//! - the header `alg` must be on the allowlist, and the key (found by `kid`) must fit it;
//! - `typ` must be `at+jwt` (RFC 9068 §2.1), so an ID token is never taken for an access token;
//! - `iss` exactly the issuer, `aud` one of the accepted audiences, `exp` in the future and `nbf`
//!   (if present) in the past, both with a bounded clock skew; `sub` present.
//!
//! The cache is refreshed when it is half its TTL old (a failed refresh keeps the old keys until
//! the TTL is over, then validation fails closed with [`BearerError::JwksUnavailable`]) and when a
//! token names a `kid` the cache lacks, at most once per `refetch_interval`, so a flood of tokens
//! with random `kid`s costs the issuer one request per interval. Concurrent refreshes share one
//! fetch. A warm validation takes a read lock, parses and verifies: no I/O, no allocation beyond
//! the decoded token.
//!
//! [`TrustedIssuers`] holds several validators and routes by the token's (unverified) `iss`.

mod claims;
pub mod introspection;
mod jwks;
pub mod metadata;
pub mod sender;
pub mod step_up;
pub mod verified;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cryptoutil_jose::JwsAlgorithm;
use http::HeaderMap;

pub use claims::AccessToken;
pub use introspection::{
    HttpIntrospector, Introspection, IntrospectionEndpoint, Introspector, RevocationCache,
    TokenDigest,
};
pub use jwks::{HttpJwksFetcher, JwksFetcher};
pub use metadata::ProtectedResourceMetadata;
pub use sender::{
    Challenge, DpopBinding, Presented, ProtectedResource, ProtectedResourceConfig, Scheme,
    presented,
};
pub use step_up::{StepUpPolicy, StepUpShortfall};
pub use verified::VerifiedTokens;

use jwks::JwksCache;

/// Largest bearer token accepted (bytes); access tokens are a few hundred bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Where an issuer publishes its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_uri` from `<issuer>/.well-known/openid-configuration`, whose `issuer` must match.
    Discovery,
    /// This HTTPS URL.
    Url(String),
}

/// What a validator trusts about one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTrust {
    /// The exact `iss` value (an HTTPS URL without a trailing slash).
    pub issuer: String,
    /// Where the JWKS comes from.
    pub jwks: JwksSource,
    /// Accepted `aud` values: the token's audience must contain at least one.
    pub audiences: Vec<String>,
    /// Accepted header `alg` values.
    pub algorithms: Vec<JwsAlgorithm>,
    /// How long fetched keys are used (default 5 min); refreshed from half of it on.
    pub cache_ttl: Duration,
    /// Least time between fetches caused by unknown `kid`s (default 30 s).
    pub refetch_interval: Duration,
    /// Tolerance for `exp` and `nbf` (default 60 s, at most 5 min).
    pub clock_skew: Duration,
}

impl IssuerTrust {
    /// Default algorithms: the asymmetric FIPS algorithms Identity can sign with.
    pub const DEFAULT_ALGORITHMS: [JwsAlgorithm; 4] = [
        JwsAlgorithm::ES256,
        JwsAlgorithm::RS256,
        JwsAlgorithm::PS256,
        JwsAlgorithm::EdDSA,
    ];
    /// Largest accepted clock skew.
    pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

    /// Trust `issuer` (discovery) for `audiences` with the default algorithms and timings.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks: JwksSource::Discovery,
            audiences,
            algorithms: Self::DEFAULT_ALGORITHMS.to_vec(),
            cache_ttl: Duration::from_secs(300),
            refetch_interval: Duration::from_secs(30),
            clock_skew: Duration::from_secs(60),
        }
    }

    fn check(&self) -> Result<(), BearerError> {
        let bad = |why: &str| Err(BearerError::Config(format!("{}: {why}", self.issuer)));
        if !self.issuer.starts_with("https://") || self.issuer.ends_with('/') {
            return bad("the issuer must be an https:// URL without a trailing slash");
        }
        if let JwksSource::Url(url) = &self.jwks
            && !url.starts_with("https://")
        {
            return bad("the JWKS URL must be https://");
        }
        if self.audiences.is_empty() {
            return bad("at least one audience is required");
        }
        if self.algorithms.is_empty() {
            return bad("at least one algorithm is required");
        }
        if let Some(alg) = self.algorithms.iter().find(|a| a.name().starts_with("HS")) {
            return bad(&format!(
                "{alg} is symmetric: a JWKS publishes public keys only"
            ));
        }
        if self.cache_ttl < Duration::from_secs(1) || self.refetch_interval.is_zero() {
            return bad("cache_ttl must be at least 1s and refetch_interval more than 0");
        }
        if self.clock_skew > Self::MAX_CLOCK_SKEW {
            return bad("clock_skew must be at most 5m");
        }
        Ok(())
    }
}

/// Why a bearer token was refused (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not a well-formed bearer token or JWT; the text says what.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not a trusted issuer.
    #[error("the token's issuer is not trusted")]
    InvalidIssuer,
    /// `aud` names none of the accepted audiences.
    #[error("the token is not meant for this service")]
    InvalidAudience,
    /// The header `alg` is not allowed.
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// `typ` is not `at+jwt`.
    #[error("the token is not an access token (typ at+jwt)")]
    WrongType,
    /// No key with the token's `kid`, or the signature does not verify.
    #[error("the token's signature does not verify")]
    InvalidSignature,
    /// The issuer's keys could not be fetched and none are cached: fail closed (503).
    #[error("the issuer's keys are unavailable: {0}")]
    JwksUnavailable(String),
    /// The issuer's introspection says the token is no longer active (revoked).
    #[error("the token has been revoked")]
    Revoked,
    /// The revocation check could not reach the issuer's introspection endpoint: fail closed (503).
    #[error("the issuer's introspection endpoint is unavailable: {0}")]
    IntrospectionUnavailable(String),
    /// The trust configuration is invalid.
    #[error("invalid issuer trust configuration: {0}")]
    Config(String),
    /// The DPoP proof is missing or invalid (RFC 9449 §7.1 `invalid_dpop_proof`, or
    /// `use_dpop_nonce`).
    #[error("{0}")]
    DpopProof(crate::dpop::DpopError),
    /// The proof is signed by another key than the one the token is bound to.
    #[error("the DPoP proof is not signed by the key the token is bound to")]
    DpopKeyMismatch,
    /// The proof was used before.
    #[error("the DPoP proof has been used before")]
    DpopReplayed,
    /// The replay cache cannot answer: fail closed (503).
    #[error("the DPoP replay check is unavailable: {0}")]
    DpopReplayUnavailable(String),
    /// A DPoP-bound token (`cnf.jkt`) presented with the `Bearer` scheme.
    #[error("the token is bound to a DPoP key: present it with the DPoP scheme and a proof")]
    BoundTokenAsBearer,
    /// A DPoP-bound token at a resource that has no public URL configured, so cannot check a
    /// proof's `htu`: it does not take DPoP-bound tokens (a refusal, not an outage).
    #[error("this server does not accept DPoP-bound tokens (its public URL is not configured)")]
    DpopNotOffered,
    /// A token without `cnf` presented with the `DPoP` scheme.
    #[error("the token is not DPoP-bound: present it with the Bearer scheme")]
    UnboundTokenAsDpop,
    /// A plain bearer token where only DPoP-bound tokens are accepted.
    #[error("this resource accepts only DPoP-bound access tokens")]
    DpopRequired,
    /// The issuer's introspection binds the token to another key than its `cnf.jkt` says.
    #[error("the issuer binds the token to another DPoP key")]
    BindingMismatch,
}

impl BearerError {
    /// The `error` code of SPEC §5 for problem bodies (`invalid_token` for the rest).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_token",
            Self::Expired => "token_expired",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::InvalidSignature => "invalid_signature",
            Self::Revoked => "token_revoked",
            Self::JwksUnavailable(_)
            | Self::IntrospectionUnavailable(_)
            | Self::DpopReplayUnavailable(_) => "temporarily_unavailable",
            Self::Config(_) => "server_error",
            Self::DpopProof(e) => e.error_code(),
            Self::DpopKeyMismatch | Self::DpopReplayed => "invalid_dpop_proof",
            Self::BoundTokenAsBearer
            | Self::UnboundTokenAsDpop
            | Self::DpopRequired
            | Self::DpopNotOffered
            | Self::BindingMismatch => "invalid_token",
            Self::Malformed(_)
            | Self::NotYetValid
            | Self::AlgorithmNotAllowed
            | Self::WrongType => "invalid_token",
        }
    }

    /// The token could not be judged (answer 503, not 401).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::JwksUnavailable(_)
                | Self::IntrospectionUnavailable(_)
                | Self::DpopReplayUnavailable(_)
                | Self::Config(_)
        )
    }

    /// The `error` of the `WWW-Authenticate` challenge (RFC 6750 §3.1, RFC 9449 §7.1):
    /// `invalid_dpop_proof` or `use_dpop_nonce` for proof failures, else `invalid_token`.
    #[must_use]
    pub fn challenge_error(&self) -> &'static str {
        match self {
            Self::DpopProof(e) => e.error_code(),
            Self::DpopKeyMismatch | Self::DpopReplayed => "invalid_dpop_proof",
            _ => "invalid_token",
        }
    }

    /// Whether the refusal is about DPoP (its challenge goes to the `DPoP` scheme).
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            Self::DpopProof(_)
                | Self::DpopKeyMismatch
                | Self::DpopReplayed
                | Self::BoundTokenAsBearer
                | Self::UnboundTokenAsDpop
                | Self::DpopRequired
        )
    }
}

/// The token of a strict `Authorization: Bearer <token68>` header (RFC 6750 §2.1; the scheme is
/// case-insensitive). Several `Authorization` headers are refused.
///
/// # Errors
/// [`BearerError::Missing`] without a Bearer header, [`BearerError::Malformed`] otherwise.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    match sender::authorization(headers)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::DPoP, _) => Err(BearerError::Missing),
    }
}

/// Validates access tokens of one trusted issuer. Cheap to clone (shared cache).
#[derive(Debug, Clone)]
pub struct BearerValidator {
    trust: Arc<IssuerTrust>,
    cache: Arc<JwksCache>,
}

impl BearerValidator {
    /// A validator fetching keys with `fetcher`.
    ///
    /// # Errors
    /// [`BearerError::Config`] when `trust` is inconsistent.
    pub fn new(trust: IssuerTrust, fetcher: Arc<dyn JwksFetcher>) -> Result<Self, BearerError> {
        trust.check()?;
        let cache = JwksCache::new(&trust, fetcher);
        Ok(Self {
            trust: Arc::new(trust),
            cache: Arc::new(cache),
        })
    }

    /// A validator fetching keys over HTTPS with `tls` (which decides whom to trust).
    ///
    /// # Errors
    /// [`BearerError::Config`] when `trust` is inconsistent or the HTTP client cannot be built.
    pub fn over_https(
        trust: IssuerTrust,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, BearerError> {
        let fetcher = HttpJwksFetcher::new(&trust, tls)?;
        Self::new(trust, Arc::new(fetcher))
    }

    /// The trusted issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.trust.issuer
    }

    /// Validates `token` now.
    ///
    /// # Errors
    /// Why the token is refused, or [`BearerError::JwksUnavailable`].
    pub async fn validate(&self, token: &str) -> Result<AccessToken, BearerError> {
        self.validate_at(token, unix_now()).await
    }

    /// Validates `token` as of `now` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// As [`Self::validate`].
    pub async fn validate_at(&self, token: &str, now: u64) -> Result<AccessToken, BearerError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(BearerError::Malformed("token too long"));
        }
        let header = cryptoutil_jose::jws::peek_header(token)
            .map_err(|_| BearerError::Malformed("not a compact JWS"))?;
        let alg = header
            .alg()
            .and_then(|a| a.parse::<JwsAlgorithm>().ok())
            .filter(|a| self.trust.algorithms.contains(a))
            .ok_or(BearerError::AlgorithmNotAllowed)?;
        if !header.typ().is_some_and(claims::is_access_token_type) {
            return Err(BearerError::WrongType);
        }
        let kid = header.kid().unwrap_or_default();
        let key = self.cache.key_for(kid, alg).await?;
        let verified = cryptoutil_jose::jws::verify(&key, alg, token)
            .map_err(|_| BearerError::InvalidSignature)?;
        claims::check(&verified.payload, &self.trust, now)
    }

    /// Readiness: makes sure keys are cached (fetching if needed) and returns how many.
    ///
    /// # Errors
    /// [`BearerError::JwksUnavailable`] when no usable keys can be had.
    pub async fn check_jwks(&self) -> Result<usize, BearerError> {
        self.cache.ready().await
    }
}

/// Validators for several issuers, chosen by the token's `iss` (read before verification, only
/// to pick the validator; the chosen one verifies everything).
#[derive(Debug, Clone, Default)]
pub struct TrustedIssuers {
    validators: Vec<BearerValidator>,
}

impl TrustedIssuers {
    /// Trusts these validators' issuers.
    ///
    /// # Errors
    /// [`BearerError::Config`] when an issuer appears twice.
    pub fn new(validators: Vec<BearerValidator>) -> Result<Self, BearerError> {
        for (i, v) in validators.iter().enumerate() {
            if validators[..i].iter().any(|o| o.issuer() == v.issuer()) {
                return Err(BearerError::Config(format!(
                    "{} is listed twice",
                    v.issuer()
                )));
            }
        }
        Ok(Self { validators })
    }

    /// The validators.
    #[must_use]
    pub fn validators(&self) -> &[BearerValidator] {
        &self.validators
    }

    /// Validates `token` with the validator of its issuer.
    ///
    /// # Errors
    /// [`BearerError::InvalidIssuer`] for an untrusted issuer, else as [`BearerValidator::validate`].
    pub async fn validate(&self, token: &str) -> Result<AccessToken, BearerError> {
        let issuer = claims::unverified_issuer(token)?;
        let validator = self
            .validators
            .iter()
            .find(|v| v.issuer() == issuer)
            .ok_or(BearerError::InvalidIssuer)?;
        validator.validate(token).await
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
