//! RFC 9728 protected resource metadata, served by resource servers at
//! `/.well-known/oauth-protected-resource`.

use serde::Serialize;

/// The metadata document of a protected resource (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier (an https URL; the `aud` of tokens for this resource).
    pub resource: String,
    /// The issuers whose tokens the resource accepts.
    pub authorization_servers: Vec<String>,
    /// The scopes the resource understands.
    pub scopes_supported: Vec<String>,
    /// How tokens are presented: `["header"]` (never the body or the query).
    pub bearer_methods_supported: Vec<String>,
    /// The DPoP proof algorithms accepted.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether only DPoP-bound tokens are accepted.
    pub dpop_bound_access_tokens_required: bool,
}

impl ProtectedResourceMetadata {
    /// The document of `resource`, accepting tokens of `authorization_servers` with `scopes`
    /// in the `Authorization` header, DPoP proofs of `dpop_algs`, bearer tokens unless
    /// `dpop_required`.
    #[must_use]
    pub fn new(
        resource: impl Into<String>,
        authorization_servers: Vec<String>,
        scopes: Vec<String>,
        dpop_algs: &[cryptoutil_jose::JwsAlgorithm],
        dpop_required: bool,
    ) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers,
            scopes_supported: scopes,
            bearer_methods_supported: vec!["header".to_owned()],
            dpop_signing_alg_values_supported: dpop_algs
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
            dpop_bound_access_tokens_required: dpop_required,
        }
    }
}
