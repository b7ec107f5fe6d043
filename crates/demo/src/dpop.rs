//! The demo's DPoP client side (RFC 9449 §4): one P-256 key per run and a fresh proof per
//! request (`jti` a UUIDv4, `iat` now, `ath` when a token goes with it).

use cryptoutil_identity::dpop::access_token_hash;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, jws};
use serde_json::{Map, Value, json};
use url::Url;

use crate::step_error::StepError;

/// A DPoP key pair: the private key signs proofs, its public half travels in each proof.
#[derive(Debug)]
pub(crate) struct DpopKey {
    key: Jwk,
    header: Map<String, Value>,
    thumbprint: String,
}

impl DpopKey {
    /// A fresh ES256 key.
    pub(crate) fn generate() -> Result<Self, StepError> {
        let key = Jwk::generate_ec(EcCurve::P256)
            .map_err(|e| StepError::with_cause("generating a DPoP key", e.to_string()))?;
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("jwk".into(), key.to_value(false));
        let thumbprint = key.thumbprint();
        Ok(Self {
            key,
            header,
            thumbprint,
        })
    }

    /// The RFC 7638 thumbprint of the public key: what `cnf.jkt` of a bound token says.
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for one request: `method` and `url` (its query and fragment are not part of
    /// `htu`), the server's `nonce` when it asked for one, and the `access_token` it goes with.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, StepError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu.as_str(),
            "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        jws::sign(
            &self.key,
            JwsAlgorithm::ES256,
            claims.to_string().as_bytes(),
            Some(&self.header),
        )
        .map_err(|e| StepError::with_cause("signing a DPoP proof", e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use cryptoutil_identity::dpop::{DpopSettings, ProofRequest, verify};
    use time::OffsetDateTime;

    use super::*;

    #[test]
    fn proofs_verify_and_bind_the_token_and_nonce() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://127.0.0.1:8443/service/api/v1/elastickeys?size=1").unwrap();
        let proof = key
            .proof("GET", &url, Some("n-1"), Some("the-token"))
            .unwrap();
        let verified = verify(
            &proof,
            &ProofRequest {
                method: "GET",
                uri: &url,
                now: OffsetDateTime::now_utc(),
                nonce: Some("n-1"),
                access_token: Some("the-token"),
            },
            &DpopSettings::default(),
        )
        .unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
        // Each proof is new.
        let again = key.proof("GET", &url, None, None).unwrap();
        assert_ne!(again, proof);
        let other = verify(
            &proof,
            &ProofRequest {
                method: "GET",
                uri: &url,
                now: OffsetDateTime::now_utc(),
                nonce: Some("n-1"),
                access_token: Some("another-token"),
            },
            &DpopSettings::default(),
        );
        assert!(other.is_err());
    }
}
