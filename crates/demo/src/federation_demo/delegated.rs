//! `demo all`'s delegation chain (RFC 8707, RFC 8693): the demo user signs in to the sample
//! single-page application (its token's audience is the resource server, so the KMS refuses
//! it), the resource server's back end (client `demo-rs`, played here by the demo) exchanges it
//! for a KMS token acting for the user, encrypts with it, and the KMS audit names both.

use serde::Deserialize;
use serde_json::Value;

use super::{KMS_AUDIENCE, PLAINTEXT, claims, encryption_path, expect_refusal, missing};
use crate::context::RunContext;
use crate::credentials::Secret;
use crate::identity_demo::{SignIn, discovered, post_as, sign_in};
use crate::kms_demo::{Caller, Kms, octets};
use crate::runner::StepFuture;
use crate::step_error::StepError;

/// What the user's sign-in asks for: `kms:encrypt`, which the resource server may only use at
/// the KMS through an exchanged token.
const USER_SCOPE: &str = "openid kms:encrypt";
/// RFC 8693 names.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    issued_token_type: Option<String>,
}

/// `federation-user-token`: the demo user signs in to the public single-page client (code
/// flow with PKCE) and gets a token whose audience is the resource server.
pub(super) fn user_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = ctx.env.credentials.clone();
        let signed_in = sign_in(
            ctx,
            &SignIn {
                client_id: &credentials.spa_client_id,
                redirect_uri: &credentials.spa_redirect_uri,
                scope: USER_SCOPE,
                extra: &[],
                user: None,
                totp_secret: None,
            },
        )
        .await?;
        let discovery = discovered(ctx)?;
        let endpoint = &discovery.token_endpoint;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", signed_in.code.expose()),
            ("redirect_uri", credentials.spa_redirect_uri.as_str()),
            ("code_verifier", signed_in.verifier.expose()),
            ("client_id", credentials.spa_client_id.as_str()),
        ];
        let what = format!("POST {}", endpoint.path());
        let tokens: TokenResponse = ctx
            .env
            .http
            .send(&what, |client| client.post(endpoint.clone()).form(&form))
            .await?
            .expect(200)
            .map_err(|e| e.context("the single-page client's code was not redeemed"))?
            .json()?;
        let claims = claims(&tokens.access_token)?;
        let mut details = signed_in.details;
        details.push(format!(
            "{}'s token for {}: sub {}, aud {}, scope \"{}\"",
            credentials.username,
            credentials.spa_client_id,
            claims["sub"].as_str().unwrap_or_default(),
            claims["aud"],
            claims["scope"].as_str().unwrap_or_default()
        ));
        ctx.federation.user_token = Some(Secret::new(tokens.access_token));
        Ok(details)
    })
}

/// `federation-user-token-refused`: the user's own token is not for the KMS (wrong audience).
pub(super) fn user_token_refused(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let token = ctx
            .federation
            .user_token
            .clone()
            .ok_or_else(|| missing("the user's token"))?;
        let reply = Kms::new(ctx, Caller::Bearer(token))?
            .post(&encryption_path(ctx, "encrypt")?, octets(PLAINTEXT))
            .await?;
        let mut details = expect_refusal(reply, 401, "invalid_audience")?;
        details.insert(
            0,
            "the user's token (aud: the resource server) used directly at the KMS".to_owned(),
        );
        Ok(details)
    })
}

/// `federation-exchange`: the resource server exchanges the user's token for one with the
/// KMS's audience; the new token names the resource server as the actor (`act`).
pub(super) fn exchange(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let subject = ctx
            .federation
            .user_token
            .clone()
            .ok_or_else(|| missing("the user's token"))?;
        let discovery = discovered(ctx)?;
        let credentials = &ctx.env.credentials;
        let reply = post_as(
            &ctx.env.http,
            &credentials.rs_client_id,
            &credentials.rs_client_secret,
            &discovery.token_endpoint,
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.expose()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("audience", KMS_AUDIENCE),
                ("scope", "kms:encrypt"),
            ],
        )
        .await?
        .expect(200)
        .map_err(|e| {
            e.context(format!(
                "{} cannot exchange the token",
                credentials.rs_client_id
            ))
        })?;
        let exchanged: TokenResponse = reply.json()?;
        let user = claims(subject.expose())?;
        let claims = claims(&exchanged.access_token)?;
        let actor = claims["act"]["sub"].as_str().unwrap_or_default();
        if claims["sub"] != user["sub"] || actor != credentials.rs_client_id {
            return Err(StepError::new(format!(
                "the exchanged token's sub is {} and act {}: expected the user acting through {}",
                claims["sub"], claims["act"], credentials.rs_client_id
            )));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(a) => a == KMS_AUDIENCE,
            Value::Array(list) => list.iter().any(|a| a == KMS_AUDIENCE),
            _ => false,
        };
        if !audience_ok {
            return Err(StepError::new(format!(
                "the exchanged token's audience is {}, not {KMS_AUDIENCE}",
                claims["aud"]
            )));
        }
        let details = vec![format!(
            "{} exchanged it ({}): sub {} (the user), aud {KMS_AUDIENCE}, act {{sub: {actor}}}, \
             scope \"{}\", expires in {} s",
            credentials.rs_client_id,
            exchanged.issued_token_type.as_deref().unwrap_or("?"),
            claims["sub"].as_str().unwrap_or_default(),
            claims["scope"].as_str().unwrap_or_default(),
            claims["exp"].as_i64().unwrap_or_default()
                - time::OffsetDateTime::now_utc().unix_timestamp()
        )];
        ctx.federation.exchanged_token = Some(Secret::new(exchanged.access_token));
        Ok(details)
    })
}

/// `federation-exchange-encrypt`: the exchanged token encrypts at the KMS for the user.
pub(super) fn encrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let token = ctx
            .federation
            .exchanged_token
            .clone()
            .ok_or_else(|| missing("the exchanged token"))?;
        let jwe = Kms::new(ctx, Caller::Bearer(token))?
            .post(&encryption_path(ctx, "encrypt")?, octets(PLAINTEXT))
            .await?
            .expect(200)
            .map_err(|e| e.context("the KMS refused the exchanged token"))?
            .text()?;
        Ok(vec![format!(
            "encrypted to a {}-byte JWE for the user, by {} (the audit names both)",
            jwe.len(),
            ctx.env.credentials.rs_client_id
        )])
    })
}
