//! `resource:` settings of `rs.yml`: the resource server as a protected resource (RFC 9728)
//! and its DPoP enforcement (RFC 9449).

use cryptoutil_server::config::{HumanDuration, Validator};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The resource server's identity as a protected resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectedResourceSettings {
    /// The resource identifier: the server's public https base URL as clients reach it, e.g.
    /// `https://rs.cryptoutil.demo.local:8084` (no trailing slash). Tokens whose `aud` is this
    /// value are accepted besides `identity.audience`; DPoP proofs must name URLs under it;
    /// `/.well-known/oauth-protected-resource` describes it. Unset: the `DPoP` scheme is refused
    /// and no metadata document is served.
    pub identifier: Option<String>,
    /// Refuse plain bearer tokens: only DPoP-bound tokens with a proof (default false).
    pub dpop_bound_access_tokens_required: bool,
    /// Most DPoP proofs remembered against replay (default 100000); when full of unexpired
    /// proofs, DPoP requests are refused with 503 until some expire.
    pub dpop_replay_cache_capacity: usize,
    /// Oldest accepted proof `iat` (default 60s, at most 5m; 5s of clock skew allowed too).
    pub dpop_proof_max_age: HumanDuration,
}

impl Default for ProtectedResourceSettings {
    fn default() -> Self {
        Self {
            identifier: None,
            dpop_bound_access_tokens_required: false,
            dpop_replay_cache_capacity: 100_000,
            dpop_proof_max_age: HumanDuration::from_secs(60),
        }
    }
}

impl ProtectedResourceSettings {
    /// Load-time checks (`resource.*`).
    pub fn validate(&self, v: &mut Validator) {
        if let Some(id) = &self.identifier {
            v.check(
                "resource.identifier",
                cryptoutil_realm::bearer::sender::is_resource_identifier(id),
                "must be an https URL without query, fragment or trailing slash",
            );
        }
        v.check(
            "resource.dpop_bound_access_tokens_required",
            !self.dpop_bound_access_tokens_required || self.identifier.is_some(),
            "needs resource.identifier (DPoP proofs are checked against it)",
        );
        v.check(
            "resource.dpop_replay_cache_capacity",
            (1..=10_000_000).contains(&self.dpop_replay_cache_capacity),
            "must be between 1 and 10000000",
        );
        v.check(
            "resource.dpop_proof_max_age",
            (1..=300).contains(&self.dpop_proof_max_age.get().as_secs()),
            "must be between 1s and 5m",
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let mut s = ProtectedResourceSettings::default();
        let check = |s: &ProtectedResourceSettings| {
            let mut v = Validator::default();
            s.validate(&mut v);
            v.finish()
                .map_or_else(|e| e.to_string(), |()| String::new())
        };
        assert_eq!(check(&s), "");
        s.dpop_bound_access_tokens_required = true;
        assert!(check(&s).contains("dpop_bound_access_tokens_required"));
        s.identifier = Some("http://rs.example/".into());
        s.dpop_replay_cache_capacity = 0;
        s.dpop_proof_max_age = HumanDuration::from_secs(0);
        let text = check(&s);
        for key in [
            "identifier",
            "dpop_replay_cache_capacity",
            "dpop_proof_max_age",
        ] {
            assert!(text.contains(key), "{key}: {text}");
        }
        s.identifier = Some("https://rs.example:8084".into());
        s.dpop_replay_cache_capacity = 10;
        s.dpop_proof_max_age = HumanDuration::from_secs(60);
        assert_eq!(check(&s), "");
    }
}
