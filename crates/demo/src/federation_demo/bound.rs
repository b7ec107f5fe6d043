//! `demo all`'s sender-constrained token steps (RFC 9449): a DPoP-bound token for
//! demo-kms-client, used at the KMS with proofs of its key, and the same token refused when
//! stolen (presented as Bearer, or with a proof of another key).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{PLAINTEXT, claims, encryption_path, missing};
use crate::context::RunContext;
use crate::credentials::Secret;
use crate::dpop::DpopKey;
use crate::http::Reply;
use crate::identity_demo::{client_basic, discovered};
use crate::kms_demo::{Caller, Kms, octets};
use crate::runner::StepFuture;
use crate::step_error::StepError;

/// The bound token and its key, recorded by [`token`].
fn bound(ctx: &RunContext) -> Result<(Secret, Arc<DpopKey>), StepError> {
    match (&ctx.federation.dpop_token, &ctx.federation.dpop_key) {
        (Some(token), Some(key)) => Ok((token.clone(), Arc::clone(key))),
        _ => Err(missing("the DPoP-bound token")),
    }
}

/// One token request with a proof of `key` (and the server's nonce, when given).
async fn token_request(
    ctx: &RunContext,
    key: &DpopKey,
    nonce: Option<&str>,
) -> Result<Reply, StepError> {
    let discovery = discovered(ctx)?;
    let credentials = &ctx.env.credentials;
    let (id, secret) = client_basic(&credentials.kms_client_id, &credentials.kms_client_secret);
    let endpoint = &discovery.token_endpoint;
    let what = format!("POST {} (DPoP)", endpoint.path());
    ctx.env
        .http
        .send(&what, |client| {
            let request = client
                .post(endpoint.clone())
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")]);
            match key.proof("POST", endpoint, nonce, None) {
                Ok(proof) => request.header("DPoP", proof),
                Err(_) => request,
            }
        })
        .await
}

/// `federation-dpop-token`: client_credentials with a DPoP proof; when Identity asks for its
/// nonce (400 `use_dpop_nonce` with `DPoP-Nonce`), the request is repeated with it.
pub(super) fn token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            token_type: String,
        }
        let key = DpopKey::generate()?;
        let mut details = vec![format!(
            "a new P-256 DPoP key, thumbprint {}",
            key.thumbprint()
        )];
        let mut reply = token_request(ctx, &key, None).await?;
        if reply.status.as_u16() == 400
            && let Some(nonce) = reply.header("dpop-nonce").map(str::to_owned)
        {
            let body: Value = reply.json()?;
            if body["error"] != "use_dpop_nonce" {
                return Err(StepError::with_cause(
                    "the DPoP token request was refused",
                    reply.describe(),
                ));
            }
            details.push("Identity asked for its nonce (use_dpop_nonce): retrying".to_owned());
            reply = token_request(ctx, &key, Some(&nonce)).await?;
        }
        let response: TokenResponse = reply
            .expect(200)
            .map_err(|e| e.context("Identity did not issue a DPoP-bound token"))?
            .json()?;
        if response.token_type != "DPoP" {
            return Err(StepError::new(format!(
                "token_type is {:?}, not DPoP",
                response.token_type
            )));
        }
        let claims = claims(&response.access_token)?;
        let jkt = claims["cnf"]["jkt"].as_str().unwrap_or_default();
        if jkt != key.thumbprint() {
            return Err(StepError::new(format!(
                "the token's cnf.jkt is {jkt:?}, not the key's thumbprint"
            )));
        }
        details.push(format!(
            "token_type DPoP, cnf.jkt {jkt} (the key's thumbprint), scope \"{}\"",
            claims["scope"].as_str().unwrap_or_default()
        ));
        ctx.federation.dpop_token = Some(Secret::new(response.access_token));
        ctx.federation.dpop_key = Some(Arc::new(key));
        Ok(details)
    })
}

/// `federation-dpop-encrypt`: the bound token with a proof of its key encrypts and decrypts.
pub(super) fn encrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let (token, key) = bound(ctx)?;
        let kms = Kms::new(ctx, Caller::Dpop(token, key))?;
        let jwe = kms
            .post(&encryption_path(ctx, "encrypt")?, octets(PLAINTEXT))
            .await?
            .expect(200)
            .map_err(|e| e.context("the KMS refused the DPoP-bound token"))?
            .text()?;
        let plaintext = kms
            .post(
                &encryption_path(ctx, "decrypt")?,
                crate::kms_demo::jose(&jwe),
            )
            .await?
            .expect(200)?
            .body;
        if plaintext != PLAINTEXT {
            return Err(StepError::new("the decrypted text differs"));
        }
        Ok(vec![
            "Authorization: DPoP <token> with a fresh DPoP proof (htm, htu, ath) per request"
                .to_owned(),
            format!(
                "encrypted to a {}-byte JWE and decrypted back with the bound token",
                jwe.len()
            ),
        ])
    })
}

/// A refusal: 401 whose challenge offers DPoP; returns a line describing it.
fn refused(reply: Reply, how: &str) -> Result<String, StepError> {
    let reply = reply
        .expect(401)
        .map_err(|e| e.context(format!("{how} was not refused")))?;
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    if !challenge.contains("DPoP") {
        return Err(StepError::new(format!(
            "{how}: the challenge does not name DPoP: {challenge:?}"
        )));
    }
    Ok(format!("{how}: HTTP 401, WWW-Authenticate: {challenge}"))
}

/// `federation-dpop-stolen`: the bound token without its key is worthless: as `Bearer`, and
/// with a proof of the thief's own key, the KMS refuses it.
pub(super) fn stolen(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let (token, _) = bound(ctx)?;
        let path = encryption_path(ctx, "encrypt")?;
        let as_bearer = Kms::new(ctx, Caller::Bearer(token.clone()))?
            .post(&path, octets(PLAINTEXT))
            .await?;
        let thief = Arc::new(DpopKey::generate()?);
        let other_key = Kms::new(ctx, Caller::Dpop(token, thief))?
            .post(&path, octets(PLAINTEXT))
            .await?;
        Ok(vec![
            refused(as_bearer, "the stolen token as Bearer")?,
            refused(other_key, "the stolen token with a proof of another key")?,
        ])
    })
}
