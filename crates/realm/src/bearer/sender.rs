//! Sender-constrained access tokens at a resource server (RFC 9449 §7).
//!
//! [`presented`] reads the credentials of a request: `Authorization: Bearer <token>`, or
//! `Authorization: DPoP <token>` with exactly one `DPoP` header. After the token itself is
//! validated, [`DpopBinding::check`] decides whether the way it was presented fits its binding:
//!
//! - a token with `cnf.jkt` presented as `Bearer` is refused (a stolen DPoP token is useless
//!   without its key), and a token without `cnf` presented as `DPoP` is refused;
//! - with `DPoP`, the proof is verified ([`crate::dpop::verify`]) against the request's method,
//!   its URL as the server is configured to see it ([`request_url`]) and the token (`ath`); the
//!   proof's key thumbprint must be the token's `cnf.jkt`; finally the proof must be new to the
//!   [`ReplayCache`] (a cache that cannot answer refuses: fail closed);
//! - when DPoP is required, a plain bearer token is refused altogether.
//!
//! [`Challenge`] writes the `WWW-Authenticate` header of RFC 6750 §3 / RFC 9449 §7.1 with the
//! RFC 9728 `resource_metadata` parameter.

use std::sync::Arc;

use aws_lc_rs::digest;
use cryptoutil_jose::{JwsAlgorithm, b64};
use http::HeaderMap;
use time::OffsetDateTime;
use url::Url;

use super::{BearerError, MAX_TOKEN_LEN, ProtectedResourceMetadata};
use crate::dpop::{self, DpopError, DpopSettings, ProofRequest, ReplayCache, ReplayError};

/// The `DPoP` request header (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "dpop";

/// The authorization scheme a token was presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` (RFC 9449 §7.1).
    DPoP,
}

/// The credentials of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// How the token was presented.
    pub scheme: Scheme,
    /// The access token.
    pub token: &'a str,
    /// The single `DPoP` header's value, when there is one.
    pub proof: Option<&'a str>,
}

/// Whether an `Authorization` value names a token scheme (`Bearer` or `DPoP`, case-insensitive).
#[must_use]
pub fn is_token_scheme(value: &[u8]) -> bool {
    let named = |scheme: &[u8]| {
        value.len() >= scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    named(b"bearer") || named(b"dpop")
}

/// The token and proof of a request: `Authorization: Bearer|DPoP <token68>` (one header; the
/// scheme case-insensitive) and at most one `DPoP` header.
///
/// # Errors
/// [`BearerError::Missing`] without a token scheme, [`BearerError::Malformed`] for a bad
/// `Authorization`, [`BearerError::DpopProof`] for several `DPoP` headers or a non-ASCII one.
pub fn presented(headers: &HeaderMap) -> Result<Presented<'_>, BearerError> {
    let (scheme, token) = authorization(headers)?;
    let mut proofs = headers.get_all(DPOP_HEADER).iter();
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(BearerError::DpopProof(DpopError::Malformed(
                "more than one DPoP header".to_owned(),
            )));
        }
        (Some(p), None) => Some(p.to_str().map_err(|_| {
            BearerError::DpopProof(DpopError::Malformed("DPoP header is not ASCII".to_owned()))
        })?),
    };
    Ok(Presented {
        scheme,
        token,
        proof,
    })
}

/// The scheme and token of a strict `Authorization: Bearer|DPoP <token68>` header (one header;
/// the scheme case-insensitive; RFC 6750 §2.1, RFC 9449 §7.1).
///
/// # Errors
/// [`BearerError::Missing`] without a token scheme, [`BearerError::Malformed`] otherwise.
pub fn authorization(headers: &HeaderMap) -> Result<(Scheme, &str), BearerError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing);
    };
    if values.next().is_some() {
        return Err(BearerError::Malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| BearerError::Malformed("Authorization is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Err(BearerError::Missing);
    };
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(BearerError::Malformed("access token empty or too long"));
    }
    let token68 = |c: u8| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
    if !token.trim_end_matches('=').bytes().all(token68) {
        return Err(BearerError::Malformed(
            "access token has invalid characters",
        ));
    }
    Ok((scheme, token))
}

/// Whether `id` can be a resource identifier: an absolute https URL with a host, without user
/// information, query, fragment or trailing slash (RFC 8707 §2, RFC 9728 §1.2).
#[must_use]
pub fn is_resource_identifier(id: &str) -> bool {
    Url::parse(id).is_ok_and(|u| {
        u.scheme() == "https"
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    }) && !id.ends_with('/')
}

/// The URL of a request as the server is configured to see it: the scheme, authority and path
/// prefix of `base` (its public URL), followed by the request's `path` (`htu` drops any query).
#[must_use]
pub fn request_url(base: &Url, path: &str) -> Option<Url> {
    if !path.starts_with('/') {
        return None;
    }
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("{prefix}{path}"));
    Some(url)
}

/// The URL of a resource's RFC 9728 metadata document: `/.well-known/oauth-protected-resource`
/// inserted between the host and the path of the resource identifier (RFC 9728 §3.1).
#[must_use]
pub fn resource_metadata_url(resource: &Url) -> String {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    url.into()
}

/// The DPoP policy of a resource server (see the module documentation). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DpopBinding {
    settings: DpopSettings,
    replay: Arc<dyn ReplayCache>,
    required: bool,
}

impl DpopBinding {
    /// Verifies proofs with `settings`, remembers them in `replay`; `required` refuses plain
    /// bearer tokens (RFC 9728 `dpop_bound_access_tokens_required`).
    #[must_use]
    pub fn new(settings: DpopSettings, replay: Arc<dyn ReplayCache>, required: bool) -> Self {
        Self {
            settings,
            replay,
            required,
        }
    }

    /// Whether plain bearer tokens are refused.
    #[must_use]
    pub fn required(&self) -> bool {
        self.required
    }

    /// The proof algorithms accepted.
    #[must_use]
    pub fn algorithms(&self) -> Vec<JwsAlgorithm> {
        dpop::SUPPORTED_ALGORITHMS
            .iter()
            .filter(|a| self.settings.algorithms.contains(a))
            .copied()
            .collect()
    }

    /// Checks that `presented` fits the binding `jkt` of its (already validated) token, for the
    /// request `method` at `url`, now.
    ///
    /// # Errors
    /// The refusal (see the module documentation).
    pub async fn check(
        &self,
        presented: &Presented<'_>,
        jkt: Option<&str>,
        method: &str,
        url: Option<&Url>,
    ) -> Result<(), BearerError> {
        self.check_at(presented, jkt, method, url, OffsetDateTime::now_utc())
            .await
    }

    /// [`Self::check`] as of `now`.
    ///
    /// # Errors
    /// As [`Self::check`].
    pub async fn check_at(
        &self,
        presented: &Presented<'_>,
        jkt: Option<&str>,
        method: &str,
        url: Option<&Url>,
        now: OffsetDateTime,
    ) -> Result<(), BearerError> {
        let jkt = match (presented.scheme, jkt) {
            (Scheme::Bearer, Some(_)) => return Err(BearerError::BoundTokenAsBearer),
            (Scheme::Bearer, None) if self.required => return Err(BearerError::DpopRequired),
            (Scheme::Bearer, None) => return Ok(()),
            (Scheme::DPoP, None) => return Err(BearerError::UnboundTokenAsDpop),
            (Scheme::DPoP, Some(jkt)) => jkt,
        };
        let proof = presented
            .proof
            .ok_or(BearerError::DpopProof(DpopError::Malformed(
                "the DPoP header is missing".to_owned(),
            )))?;
        let url = url.ok_or(BearerError::DpopNotOffered)?;
        let request = ProofRequest {
            method,
            uri: url,
            now,
            nonce: None,
            access_token: Some(presented.token),
        };
        let verified =
            dpop::verify(proof, &request, &self.settings).map_err(BearerError::DpopProof)?;
        if verified.jkt != jkt {
            return Err(BearerError::DpopKeyMismatch);
        }
        let until = verified.iat + self.settings.max_age + self.settings.leeway;
        match self
            .replay
            .first_use(&replay_key(jkt, &verified.jti), until)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(BearerError::DpopReplayed),
            Err(ReplayError::Full) => Err(BearerError::DpopReplayUnavailable(
                "the replay cache is full".to_owned(),
            )),
            Err(e) => Err(BearerError::DpopReplayUnavailable(e.to_string())),
        }
    }
}

/// The replay cache key of a proof: its `jti` scoped by its key, hashed (bounded, no raw input).
fn replay_key(jkt: &str, jti: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(b".");
    ctx.update(jti.as_bytes());
    b64::encode(ctx.finish().as_ref())
}

/// The `WWW-Authenticate` challenges of a resource server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The `realm` parameter.
    pub realm: String,
    /// The RFC 9728 metadata URL (`resource_metadata`), when the resource has one.
    pub resource_metadata: Option<String>,
    /// Whether `Bearer` is offered (not when DPoP is required).
    pub bearer: bool,
    /// Whether `DPoP` is offered, with these `algs`.
    pub dpop: Option<Vec<JwsAlgorithm>>,
}

impl Challenge {
    /// The header value for a request refused with `error` (`None`: no credentials were
    /// presented; RFC 6750 §3.1 then names no error), with `description` (quotes and
    /// backslashes are replaced) and the `scope` needed (for `insufficient_scope`). The error
    /// goes to the `DPoP` challenge when the refusal is about DPoP (or Bearer is not offered),
    /// else to the `Bearer` one; both schemes are challenged when both are offered.
    #[must_use]
    pub fn header(
        &self,
        error: Option<(&str, &str)>,
        dpop_error: bool,
        scope: Option<&str>,
    ) -> String {
        let clean = |s: &str| s.replace(['"', '\\'], "'");
        let mut params = format!("realm=\"{}\"", clean(&self.realm));
        if let Some(url) = &self.resource_metadata {
            params.push_str(&format!(", resource_metadata=\"{}\"", clean(url)));
        }
        let mut detail = String::new();
        if let Some((code, description)) = error {
            detail.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                clean(code),
                clean(description)
            ));
            if let Some(scope) = scope {
                detail.push_str(&format!(", scope=\"{}\"", clean(scope)));
            }
        }
        let on_dpop = self.dpop.is_some() && (dpop_error || !self.bearer);
        let mut out = Vec::with_capacity(2);
        if self.bearer {
            let d = if on_dpop { "" } else { detail.as_str() };
            out.push(format!("Bearer {params}{d}"));
        }
        if let Some(algs) = &self.dpop {
            let algs: Vec<&str> = algs.iter().map(|a| a.name()).collect();
            let d = if on_dpop { detail.as_str() } else { "" };
            out.push(format!("DPoP {params}, algs=\"{}\"{d}", algs.join(" ")));
        }
        out.join(", ")
    }

    /// The challenge for a refused token: the RFC error code of `e` and its text.
    #[must_use]
    pub fn refusal(&self, e: &BearerError) -> String {
        if matches!(e, BearerError::Missing) {
            return self.header(None, false, None);
        }
        self.header(
            Some((e.challenge_error(), &e.to_string())),
            e.is_dpop(),
            None,
        )
    }
}

/// Everything a resource server needs to enforce sender-constrained tokens: its public URL
/// (the RFC 9728 resource identifier), the [`DpopBinding`], its [`Challenge`] and its
/// [`ProtectedResourceMetadata`] document.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    resource: Option<Url>,
    binding: DpopBinding,
    challenge: Challenge,
    metadata: Option<ProtectedResourceMetadata>,
}

/// How a [`ProtectedResource`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResourceConfig {
    /// The `realm` of the challenges.
    pub realm: String,
    /// The resource identifier (the public https base URL); `None`: no DPoP, no metadata.
    pub resource: Option<String>,
    /// The trusted issuers (`authorization_servers`).
    pub issuers: Vec<String>,
    /// The scopes the resource understands (`scopes_supported`).
    pub scopes: Vec<String>,
    /// Most proofs remembered against replay.
    pub replay_capacity: usize,
    /// Oldest accepted proof `iat`.
    pub proof_max_age: std::time::Duration,
    /// Refuse plain bearer tokens.
    pub dpop_required: bool,
}

impl ProtectedResource {
    /// The resource `config` describes, with an in-memory replay cache.
    ///
    /// # Errors
    /// [`BearerError::Config`] for a resource that is not a URL, a proof age out of range, or
    /// DPoP required without a resource.
    pub fn new(config: ProtectedResourceConfig) -> Result<Self, BearerError> {
        if config
            .resource
            .as_deref()
            .is_some_and(|r| !is_resource_identifier(r))
        {
            return Err(BearerError::Config(
                "the resource identifier must be an https URL without query, fragment or \
                 trailing slash"
                    .to_owned(),
            ));
        }
        let resource = config
            .resource
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| BearerError::Config(format!("resource: {e}")))?;
        if config.dpop_required && resource.is_none() {
            return Err(BearerError::Config(
                "requiring DPoP needs a resource identifier".to_owned(),
            ));
        }
        let settings = DpopSettings {
            max_age: time::Duration::try_from(config.proof_max_age)
                .map_err(|e| BearerError::Config(format!("proof max age: {e}")))?,
            ..DpopSettings::default()
        };
        let replay = Arc::new(crate::dpop::MemoryReplayCache::new(config.replay_capacity));
        let binding = DpopBinding::new(settings, replay, config.dpop_required);
        let algorithms = binding.algorithms();
        let challenge = Challenge {
            realm: config.realm,
            resource_metadata: resource.as_ref().map(resource_metadata_url),
            bearer: !config.dpop_required,
            dpop: resource.is_some().then(|| algorithms.clone()),
        };
        let metadata = config.resource.map(|r| {
            ProtectedResourceMetadata::new(
                r,
                config.issuers,
                config.scopes,
                &algorithms,
                config.dpop_required,
            )
        });
        Ok(Self {
            resource,
            binding,
            challenge,
            metadata,
        })
    }

    /// A resource without identifier: bearer tokens only (a DPoP-bound token is refused, its
    /// proof cannot be checked), no metadata document.
    #[must_use]
    pub fn bearer_only(realm: impl Into<String>) -> Self {
        let binding = DpopBinding::new(
            DpopSettings::default(),
            Arc::new(crate::dpop::MemoryReplayCache::new(1)),
            false,
        );
        Self {
            resource: None,
            binding,
            challenge: Challenge {
                realm: realm.into(),
                resource_metadata: None,
                bearer: true,
                dpop: None,
            },
            metadata: None,
        }
    }

    /// The challenges of this resource.
    #[must_use]
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The RFC 9728 document, when the resource has an identifier.
    #[must_use]
    pub fn metadata(&self) -> Option<&ProtectedResourceMetadata> {
        self.metadata.as_ref()
    }

    /// The DPoP policy.
    #[must_use]
    pub fn binding(&self) -> &DpopBinding {
        &self.binding
    }

    /// [`DpopBinding::check`] for a request `method` at `path` (under the resource's URL;
    /// `None`: unknown, and a DPoP-bound token is refused).
    ///
    /// # Errors
    /// As [`DpopBinding::check`].
    pub async fn check(
        &self,
        presented: &Presented<'_>,
        jkt: Option<&str>,
        method: &str,
        path: Option<&str>,
    ) -> Result<(), BearerError> {
        let url = self
            .resource
            .as_ref()
            .zip(path)
            .and_then(|(base, path)| request_url(base, path));
        self.binding
            .check(presented, jkt, method, url.as_ref())
            .await
    }
}
