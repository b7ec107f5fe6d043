//! DPoP at Identity's own endpoints (token, PAR): one `DPoP` header field, verified against the
//! endpoint's configured URL (RFC 9449 §4.3), the server nonce (§8) and the shared replay cache
//! (§11.1). Free of HTTP types: the handler hands over the raw header field values.

use std::sync::Arc;

use cryptoutil_jose::b64;
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::nonce::NonceIssuer;
use super::replay::proof_key;
use super::{DpopSettings, ProofRequest, ReplayCache, ReplayError, VerifiedProof, verify};
use crate::config::{DpopConfig, DpopNonceMode};
use crate::oauth::{ErrorCode, OAuthError};
use crate::services::IssuerCell;

/// `invalid_dpop_proof` with a description.
pub(crate) fn invalid_proof(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

/// Checks DPoP proofs sent to this server's endpoints and issues its nonces.
#[derive(Debug)]
pub struct DpopGuard {
    settings: DpopSettings,
    nonces: Option<NonceIssuer>,
    replay: Arc<dyn ReplayCache>,
    issuer: IssuerCell,
}

impl DpopGuard {
    /// The guard for `config`; `nonce_key` (32 bytes, the same at every instance) keys the
    /// nonces, `replay` remembers accepted proofs.
    pub fn new(
        config: &DpopConfig,
        nonce_key: &[u8],
        replay: Arc<dyn ReplayCache>,
        issuer: IssuerCell,
    ) -> Self {
        let duration = |d: std::time::Duration| {
            time::Duration::try_from(d).unwrap_or(time::Duration::seconds(60))
        };
        Self {
            settings: DpopSettings {
                algorithms: config.signing_alg_values.iter().map(|a| a.jws()).collect(),
                max_age: duration(config.proof_max_age.get()),
                leeway: duration(config.leeway.get()),
            },
            nonces: (config.nonce == DpopNonceMode::Required)
                .then(|| NonceIssuer::new(nonce_key, duration(config.nonce_rotation.get()))),
            replay,
            issuer,
        }
    }

    /// The accepted proof algorithms (`dpop_signing_alg_values_supported`).
    pub fn algorithm_names(&self) -> Vec<&'static str> {
        self.settings.algorithms.iter().map(|a| a.name()).collect()
    }

    /// The nonce to send as `DPoP-Nonce` now, when nonces are required.
    pub fn nonce(&self, now: OffsetDateTime) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now))
    }

    /// Checks the `DPoP` header fields of a `POST` to `path` on this issuer: none gives
    /// `Ok(None)`; exactly one valid, fresh, first-seen proof gives its key; anything else
    /// `invalid_dpop_proof`, or `use_dpop_nonce` when only the nonce is missing or stale. A
    /// proof is remembered only once it passed every other check (so a client retrying with
    /// the nonce is not refused as a replay).
    pub async fn check(
        &self,
        fields: &[&[u8]],
        path: &str,
        now: OffsetDateTime,
    ) -> Result<Option<VerifiedProof>, OAuthError> {
        if fields.is_empty() {
            return Ok(None);
        }
        self.checked(fields, "POST", path, None, self.nonces.as_ref(), now)
            .await
            .map(Some)
    }

    /// Checks the proof that accompanies `access_token` presented with the `DPoP` scheme at this
    /// server's own protected resource (userinfo): exactly one proof, `htm`/`htu` of the
    /// request, `ath` of the token, first use (RFC 9449 §7.1). No server nonce is asked for
    /// there: the `iat` window and the shared replay cache bound a captured proof.
    pub async fn check_resource(
        &self,
        fields: &[&[u8]],
        method: &str,
        path: &str,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedProof, OAuthError> {
        if fields.is_empty() {
            return Err(invalid_proof(
                "a DPoP proof must accompany a DPoP access token",
            ));
        }
        self.checked(fields, method, path, Some(access_token), None, now)
            .await
    }

    async fn checked(
        &self,
        fields: &[&[u8]],
        method: &str,
        path: &str,
        access_token: Option<&str>,
        nonces: Option<&NonceIssuer>,
        now: OffsetDateTime,
    ) -> Result<VerifiedProof, OAuthError> {
        let proof = match fields {
            [one] => std::str::from_utf8(one)
                .map_err(|_| invalid_proof("the DPoP header is not a JWS"))?,
            _ => return Err(invalid_proof("send exactly one DPoP header")),
        };
        let issuer = self.issuer.get()?;
        let uri = Url::parse(&issuer.endpoint(path)).map_err(|_| OAuthError::server_error())?;
        let request = ProofRequest {
            method,
            uri: &uri,
            now,
            nonce: None,
            access_token,
        };
        let verified = verify(proof, &request, &self.settings).map_err(|e| {
            tracing::debug!(error = %e, "DPoP proof refused");
            let description = match e {
                super::DpopError::Htu => "the DPoP proof's htu is not this endpoint",
                super::DpopError::Htm => "the DPoP proof's htm is not the request's method",
                super::DpopError::Expired | super::DpopError::NotYetValid => {
                    "the DPoP proof's iat is outside the accepted window"
                }
                super::DpopError::Algorithm => "the DPoP proof's alg is not accepted",
                super::DpopError::Jwk(_) => "the DPoP proof's jwk is not an acceptable public key",
                super::DpopError::Signature => "the DPoP proof's signature does not verify",
                super::DpopError::Typ => "the DPoP proof's typ is not dpop+jwt",
                super::DpopError::Ath => "the DPoP proof's ath is not the access token's hash",
                _ => "the DPoP proof is invalid",
            };
            invalid_proof(description)
        })?;
        if let Some(nonces) = nonces {
            let fresh = proof_nonce(proof).is_some_and(|n| nonces.accepts(&n, now));
            if !fresh {
                return Err(OAuthError::new(
                    ErrorCode::UseDpopNonce,
                    "the DPoP proof must carry the server's nonce from the DPoP-Nonce header",
                ));
            }
        }
        let until = verified.iat + self.settings.max_age + self.settings.leeway;
        match self
            .replay
            .first_use(&proof_key(&verified.jkt, &verified.jti), until)
            .await
        {
            Ok(true) => Ok(verified),
            Ok(false) => Err(invalid_proof("the DPoP proof was already used")),
            Err(ReplayError::Full) => Err(OAuthError::temporarily_unavailable()),
            Err(e) => {
                tracing::warn!(error = %e, "DPoP replay cache unavailable");
                Err(OAuthError::temporarily_unavailable())
            }
        }
    }
}

/// The `nonce` claim of a proof whose signature already verified.
fn proof_nonce(proof: &str) -> Option<String> {
    let payload = proof.split('.').nth(1)?;
    let bytes = b64::decode(payload.as_bytes(), "claims").ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()?.get("nonce")? {
        Value::String(n) => Some(n.clone()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, jws};
    use serde_json::{Map, json};

    use super::*;
    use crate::paths;

    const ISSUER: &str = "https://issuer.example";

    /// An in-memory replay cache that can be made to fail.
    #[derive(Debug, Default)]
    struct Seen {
        keys: Mutex<HashSet<String>>,
        down: bool,
    }

    impl ReplayCache for Seen {
        fn first_use<'a>(
            &'a self,
            key: &'a str,
            _until: OffsetDateTime,
        ) -> cryptoutil_realm::BoxFuture<'a, Result<bool, ReplayError>> {
            Box::pin(async move {
                if self.down {
                    return Err(ReplayError::Unavailable("down".into()));
                }
                Ok(self.keys.lock().unwrap().insert(key.to_owned()))
            })
        }
    }

    fn guard(nonce: DpopNonceMode, down: bool) -> DpopGuard {
        let issuer = IssuerCell::new();
        issuer.set(ISSUER.to_owned());
        let config = DpopConfig {
            nonce,
            ..DpopConfig::default()
        };
        DpopGuard::new(
            &config,
            &[1u8; 32],
            Arc::new(Seen {
                down,
                ..Seen::default()
            }),
            issuer,
        )
    }

    fn proof(key: &Jwk, alg: JwsAlgorithm, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut h = Map::new();
        h.insert("typ".into(), json!("dpop+jwt"));
        h.insert("jwk".into(), key.to_value(false));
        let Value::Object(mut c) = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": "POST",
            "htu": format!("{ISSUER}{}", paths::TOKEN),
            "iat": OffsetDateTime::now_utc().unix_timestamp(),
        }) else {
            unreachable!()
        };
        edit(&mut c);
        jws::sign(key, alg, &serde_json::to_vec(&c).unwrap(), Some(&h)).unwrap()
    }

    async fn code(g: &DpopGuard, fields: &[&[u8]]) -> Result<Option<String>, ErrorCode> {
        g.check(fields, paths::TOKEN, OffsetDateTime::now_utc())
            .await
            .map(|p| p.map(|p| p.jkt))
            .map_err(|e| e.code)
    }

    #[tokio::test]
    async fn each_refusal_maps_to_its_error() {
        let g = guard(DpopNonceMode::Off, false);
        let key = Jwk::generate_ec(EcCurve::P256).unwrap();
        assert_eq!(code(&g, &[]).await, Ok(None));
        let good = proof(&key, JwsAlgorithm::ES256, |_| {});
        assert_eq!(
            code(&g, &[good.as_bytes(), good.as_bytes()]).await,
            Err(ErrorCode::InvalidDpopProof),
            "two DPoP headers"
        );
        assert_eq!(
            code(&g, &[b"\xff\xfe"]).await,
            Err(ErrorCode::InvalidDpopProof)
        );
        assert_eq!(
            code(&g, &[good.as_bytes()]).await,
            Ok(Some(key.thumbprint()))
        );
        assert_eq!(
            code(&g, &[good.as_bytes()]).await,
            Err(ErrorCode::InvalidDpopProof),
            "replay"
        );
        let other_endpoint = proof(&key, JwsAlgorithm::ES256, |c| {
            c.insert("htu".into(), json!(format!("{ISSUER}{}", paths::PAR)));
        });
        let get = proof(&key, JwsAlgorithm::ES256, |c| {
            c.insert("htm".into(), json!("GET"));
        });
        let old = proof(&key, JwsAlgorithm::ES256, |c| {
            c.insert(
                "iat".into(),
                json!(OffsetDateTime::now_utc().unix_timestamp() - 120),
            );
        });
        let hmac = Jwk::generate_oct(32).unwrap();
        let mut h = Map::new();
        h.insert("typ".into(), json!("dpop+jwt"));
        h.insert("jwk".into(), key.to_value(false));
        let hs256 = jws::sign(
            &hmac,
            JwsAlgorithm::HS256,
            br#"{"jti":"x","htm":"POST","htu":"https://issuer.example/oauth2/v1/token","iat":1}"#,
            Some(&h),
        )
        .unwrap();
        for bad in [other_endpoint, get, old, hs256, "a.b.c".to_owned()] {
            assert_eq!(
                code(&g, &[bad.as_bytes()]).await,
                Err(ErrorCode::InvalidDpopProof),
                "{bad}"
            );
        }
        let down = guard(DpopNonceMode::Off, true);
        let fresh = proof(&key, JwsAlgorithm::ES256, |_| {});
        assert_eq!(
            code(&down, &[fresh.as_bytes()]).await,
            Err(ErrorCode::TemporarilyUnavailable),
            "fails closed"
        );
        assert_eq!(g.nonce(OffsetDateTime::now_utc()), None);
        assert_eq!(g.algorithm_names(), ["ES256", "ES384", "PS256", "EdDSA"]);
    }

    #[tokio::test]
    async fn a_required_nonce_is_asked_for_then_accepted() {
        let g = guard(DpopNonceMode::Required, false);
        let key = Jwk::generate_ec(EcCurve::P256).unwrap();
        let without = proof(&key, JwsAlgorithm::ES256, |_| {});
        assert_eq!(
            code(&g, &[without.as_bytes()]).await,
            Err(ErrorCode::UseDpopNonce)
        );
        let stale = proof(&key, JwsAlgorithm::ES256, |c| {
            c.insert("nonce".into(), json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        });
        assert_eq!(
            code(&g, &[stale.as_bytes()]).await,
            Err(ErrorCode::UseDpopNonce)
        );
        let nonce = g.nonce(OffsetDateTime::now_utc()).unwrap();
        let with = proof(&key, JwsAlgorithm::ES256, |c| {
            c.insert("nonce".into(), json!(nonce));
        });
        assert_eq!(
            code(&g, &[with.as_bytes()]).await,
            Ok(Some(key.thumbprint()))
        );
    }
}
