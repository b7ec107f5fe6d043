//! `cryptoutil demo all` (SPEC §6): both servers, the KMS federated to Identity → a token for
//! `demo-kms-client` → list, encrypt, decrypt, sign, verify at the KMS with it → the refusals
//! (no token 401, tampered token 401, a `kms:read`-only token on encrypt 403, a revoked token
//! 401) → a DPoP-bound token used with its key, then refused without it (`bound`) → the
//! delegation chain user → resource server → KMS through token exchange (`delegated`) → the
//! KMS's audit events for those requests.

use cryptoutil_jose::b64;
use serde::Deserialize;
use serde_json::Value;

use crate::context::RunContext;
use crate::credentials::Secret;
use crate::http::Reply;
use crate::identity_demo::{self, discovered, post_as};
use crate::kms_demo::{self, Caller, Kms, jose, octets};
use crate::runner::{Step, StepFuture};
use crate::step_error::StepError;

mod bound;
mod delegated;
pub(crate) mod state;

pub use state::FederationState;

/// What the demo encrypts and signs.
const PLAINTEXT: &[u8] = b"Hello World!";
/// Seeded keys the machine client uses (SPEC §3.7).
const ENCRYPTION_KEY: &str = "demo-encryption-aes256";
const SIGNING_KEY: &str = "demo-signing-ec256";
/// The audience the KMS accepts.
const KMS_AUDIENCE: &str = "cryptoutil-kms";

/// The steps of `demo all`, in order.
pub const STEPS: &[Step] = &[
    kms_demo::STEPS[0],
    identity_demo::STEPS[0],
    Step {
        name: "federation-token",
        description: "Get an access token for demo-kms-client (client_credentials)",
        phase: "federation",
        needs: &["identity-discovery"],
        run: token,
    },
    Step {
        name: "federation-list",
        description: "List the tenant's elastic keys at the KMS with the token",
        phase: "federation",
        needs: &["kms-health", "federation-token"],
        run: list,
    },
    Step {
        name: "federation-encrypt",
        description: "Encrypt \"Hello World!\" with the token",
        phase: "federation",
        needs: &["federation-list"],
        run: encrypt,
    },
    Step {
        name: "federation-decrypt",
        description: "Decrypt with the token and compare",
        phase: "federation",
        needs: &["federation-encrypt"],
        run: decrypt,
    },
    Step {
        name: "federation-sign",
        description: "Sign with the token",
        phase: "federation",
        needs: &["federation-list"],
        run: sign,
    },
    Step {
        name: "federation-verify",
        description: "Verify the signature with the token",
        phase: "federation",
        needs: &["federation-sign"],
        run: verify,
    },
    Step {
        name: "federation-dpop-token",
        description: "Get a DPoP-bound token for demo-kms-client (RFC 9449, server nonce)",
        phase: "federation",
        needs: &["identity-discovery"],
        run: bound::token,
    },
    Step {
        name: "federation-dpop-encrypt",
        description: "Encrypt and decrypt at the KMS with the DPoP-bound token and its key",
        phase: "federation",
        needs: &["federation-list", "federation-dpop-token"],
        run: bound::encrypt,
    },
    Step {
        name: "federation-user-token",
        description: "demo-user signs in to the single-page client (token for the resource server)",
        phase: "delegation",
        needs: &["identity-discovery"],
        run: delegated::user_token,
    },
    Step {
        name: "federation-user-token-refused",
        description: "The user's own token refused at the KMS (401 invalid_audience)",
        phase: "delegation",
        needs: &["federation-list", "federation-user-token"],
        run: delegated::user_token_refused,
    },
    Step {
        name: "federation-exchange",
        description: "The resource server exchanges it for a KMS token acting for the user (RFC 8693)",
        phase: "delegation",
        needs: &["federation-user-token"],
        run: delegated::exchange,
    },
    Step {
        name: "federation-exchange-encrypt",
        description: "Encrypt at the KMS with the exchanged token",
        phase: "delegation",
        needs: &["federation-list", "federation-exchange"],
        run: delegated::encrypt,
    },
    Step {
        name: "federation-no-token",
        description: "Refused without a token (401 missing_token)",
        phase: "negative",
        needs: &["federation-list"],
        run: no_token,
    },
    Step {
        name: "federation-tampered-token",
        description: "Refused with a tampered token (401 invalid_signature)",
        phase: "negative",
        needs: &["federation-list"],
        run: tampered_token,
    },
    Step {
        name: "federation-read-only",
        description: "demo-kms-readonly-client's token refused on encrypt (403 insufficient_scope)",
        phase: "negative",
        needs: &["federation-list"],
        run: read_only,
    },
    Step {
        name: "federation-revoked-token",
        description: "A revoked token refused (401 token_revoked)",
        phase: "negative",
        needs: &["federation-list"],
        run: revoked_token,
    },
    Step {
        name: "federation-dpop-stolen",
        description: "The DPoP-bound token refused without its key (as Bearer, other key: 401)",
        phase: "negative",
        needs: &["federation-dpop-encrypt"],
        run: bound::stolen,
    },
    Step {
        name: "federation-audit",
        description: "The KMS audited every decision above",
        phase: "audit",
        needs: &["federation-revoked-token", "federation-exchange-encrypt"],
        run: audit,
    },
];

fn missing(what: &str) -> StepError {
    StepError::new(format!(
        "{what} is missing (an earlier step did not record it)"
    ))
}

fn token_of(ctx: &RunContext) -> Result<Secret, StepError> {
    ctx.federation
        .token
        .clone()
        .ok_or_else(|| missing("the access token"))
}

fn as_token_holder(ctx: &RunContext) -> Result<Kms<'_>, StepError> {
    Kms::new(ctx, Caller::Bearer(token_of(ctx)?))
}

fn encryption_path(ctx: &RunContext, operation: &str) -> Result<String, StepError> {
    let id = ctx
        .federation
        .encryption_key_id
        .as_deref()
        .ok_or_else(|| missing("the encryption key"))?;
    Ok(format!("/elastickey/{id}/{operation}"))
}

fn signing_path(ctx: &RunContext, operation: &str) -> Result<String, StepError> {
    let id = ctx
        .federation
        .signing_key_id
        .as_deref()
        .ok_or_else(|| missing("the signing key"))?;
    Ok(format!("/elastickey/{id}/{operation}"))
}

/// A client_credentials access token for `client_id`.
async fn client_token(
    ctx: &RunContext,
    client_id: &str,
    secret: &Secret,
) -> Result<Secret, StepError> {
    let discovery = discovered(ctx)?;
    #[derive(Deserialize)]
    struct TokenResponse {
        access_token: String,
    }
    let reply = post_as(
        &ctx.env.http,
        client_id,
        secret,
        &discovery.token_endpoint,
        &[("grant_type", "client_credentials")],
    )
    .await?
    .expect(200)
    .map_err(|e| e.context(format!("{client_id} cannot get a token")))?;
    Ok(Secret::new(reply.json::<TokenResponse>()?.access_token))
}

/// The claims of a JWT, unverified (shown to the user; the KMS verifies).
fn claims(token: &str) -> Result<Value, StepError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| StepError::new("the access token is not a JWT"))?;
    let bytes = b64::decode(payload.as_bytes(), "payload")
        .map_err(|e| StepError::with_cause("the access token's payload", e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StepError::with_cause("the access token's claims", e.to_string()))
}

fn token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = &ctx.env.credentials;
        let token = client_token(
            ctx,
            &credentials.kms_client_id,
            &credentials.kms_client_secret,
        )
        .await?;
        let claims = claims(token.expose())?;
        let audience_ok = match &claims["aud"] {
            Value::String(a) => a == KMS_AUDIENCE,
            Value::Array(list) => list.iter().any(|a| a == KMS_AUDIENCE),
            _ => false,
        };
        if !audience_ok {
            return Err(StepError::new(format!(
                "the token's audience is {}, not {KMS_AUDIENCE}",
                claims["aud"]
            )));
        }
        let details = vec![format!(
            "access token for {}: aud {KMS_AUDIENCE}, scope \"{}\", tenant_id {}",
            credentials.kms_client_id,
            claims["scope"].as_str().unwrap_or(""),
            claims["tenant_id"].as_str().unwrap_or("(none)")
        )];
        ctx.federation.token = Some(token);
        Ok(details)
    })
}

fn list(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        #[derive(Deserialize)]
        struct Key {
            elastic_key_id: String,
            name: String,
        }
        #[derive(Deserialize)]
        struct Page {
            items: Vec<Key>,
        }
        let kms = as_token_holder(ctx)?;
        let page: Page = kms
            .get("/elastickeys?size=1000")
            .await?
            .expect(200)?
            .json()?;
        let find = |name: &str| {
            page.items
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.elastic_key_id.clone())
                .ok_or_else(|| {
                    StepError::new(format!(
                        "the token's tenant has no key {name}: is the KMS seeded with --demo?"
                    ))
                })
        };
        let (encryption, signing) = (find(ENCRYPTION_KEY)?, find(SIGNING_KEY)?);
        let details = vec![format!(
            "{} keys visible in the token's tenant, among them {ENCRYPTION_KEY} and {SIGNING_KEY}",
            page.items.len()
        )];
        ctx.federation.encryption_key_id = Some(encryption);
        ctx.federation.signing_key_id = Some(signing);
        Ok(details)
    })
}

fn encrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_token_holder(ctx)?;
        let path = encryption_path(ctx, "encrypt")?;
        let jwe = kms
            .post(&path, octets(PLAINTEXT))
            .await?
            .expect(200)?
            .text()?;
        if jwe.split('.').count() != 5 || jwe.contains("Hello") {
            return Err(StepError::new("the KMS did not answer with a compact JWE"));
        }
        let details = vec![format!("compact JWE, {} characters", jwe.len())];
        ctx.federation.jwe = Some(jwe);
        Ok(details)
    })
}

fn decrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_token_holder(ctx)?;
        let path = encryption_path(ctx, "decrypt")?;
        let jwe = ctx
            .federation
            .jwe
            .clone()
            .ok_or_else(|| missing("the JWE"))?;
        let plaintext = kms.post(&path, jose(&jwe)).await?.expect(200)?;
        if plaintext.body != PLAINTEXT {
            return Err(StepError::new(
                "the decrypted text differs from the plaintext",
            ));
        }
        Ok(vec!["decrypted: \"Hello World!\" (matches)".to_owned()])
    })
}

fn sign(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_token_holder(ctx)?;
        let path = signing_path(ctx, "sign")?;
        let jws = kms
            .post(&path, octets(PLAINTEXT))
            .await?
            .expect(200)?
            .text()?;
        if jws.split('.').count() != 3 {
            return Err(StepError::new("the KMS did not answer with a compact JWS"));
        }
        let details = vec![format!("compact JWS, {} characters", jws.len())];
        ctx.federation.jws = Some(jws);
        Ok(details)
    })
}

fn verify(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_token_holder(ctx)?;
        let path = signing_path(ctx, "verify")?;
        let jws = ctx
            .federation
            .jws
            .clone()
            .ok_or_else(|| missing("the JWS"))?;
        let verified = kms.post(&path, jose(&jws)).await?.expect(200)?;
        if verified.body != PLAINTEXT {
            return Err(StepError::new("the KMS verified a different payload"));
        }
        Ok(vec!["signature valid, payload \"Hello World!\"".to_owned()])
    })
}

/// `reply` is a refusal with `status` and the problem's `error` code `code`; for a 401 or 403
/// the `WWW-Authenticate` challenge offers Bearer.
fn expect_refusal(reply: Reply, status: u16, code: &str) -> Result<Vec<String>, StepError> {
    let reply = reply.expect(status)?;
    let problem: Value = reply.json()?;
    if problem["error"] != code {
        return Err(StepError::with_cause(
            format!("{}: expected error {code}", reply.what),
            reply.describe(),
        ));
    }
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    if !challenge.contains("Bearer") {
        return Err(StepError::new(format!(
            "{}: the challenge does not offer Bearer: {challenge:?}",
            reply.what
        )));
    }
    Ok(vec![format!(
        "HTTP {status}, error {code}, WWW-Authenticate: {challenge}"
    )])
}

fn no_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = Kms::new(ctx, Caller::Anonymous)?;
        let path = encryption_path(ctx, "encrypt")?;
        let reply = kms.post(&path, octets(PLAINTEXT)).await?;
        expect_refusal(reply, 401, "missing_token")
    })
}

fn tampered_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let token = token_of(ctx)?;
        let mut claims = claims(token.expose())?;
        claims["scope"] = Value::from("kms:admin");
        let mut parts = token.expose().split('.');
        let (Some(header), Some(_), Some(signature)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(StepError::new("the access token is not a JWT"));
        };
        let forged = format!(
            "{header}.{}.{signature}",
            b64::encode(claims.to_string().as_bytes())
        );
        let kms = Kms::new(ctx, Caller::Bearer(Secret::new(forged)))?;
        let path = encryption_path(ctx, "encrypt")?;
        let reply = kms.post(&path, octets(PLAINTEXT)).await?;
        let mut details = expect_refusal(reply, 401, "invalid_signature")?;
        details.insert(0, "the token's scope rewritten to kms:admin".to_owned());
        Ok(details)
    })
}

fn read_only(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = &ctx.env.credentials;
        let token = client_token(
            ctx,
            &credentials.readonly_client_id,
            &credentials.readonly_client_secret,
        )
        .await?;
        let kms = Kms::new(ctx, Caller::Bearer(token))?;
        // The token itself is good: it lists keys.
        kms.get("/elastickeys?size=1")
            .await?
            .expect(200)
            .map_err(|e| {
                e.context(format!(
                    "{}'s token cannot list keys",
                    credentials.readonly_client_id
                ))
            })?;
        let path = encryption_path(ctx, "encrypt")?;
        let reply = kms.post(&path, octets(PLAINTEXT)).await?;
        let mut details = expect_refusal(reply, 403, "insufficient_scope")?;
        details.insert(
            0,
            format!(
                "{} (kms:read) lists keys: HTTP 200",
                credentials.readonly_client_id
            ),
        );
        Ok(details)
    })
}

fn revoked_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = &ctx.env.credentials;
        // A fresh token, so no earlier check of it is remembered anywhere.
        let token = client_token(
            ctx,
            &credentials.kms_client_id,
            &credentials.kms_client_secret,
        )
        .await?;
        let discovery = discovered(ctx)?;
        post_as(
            &ctx.env.http,
            &credentials.kms_client_id,
            &credentials.kms_client_secret,
            &discovery.revocation_endpoint,
            &[
                ("token", token.expose()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await?
        .expect(200)
        .map_err(|e| e.context("Identity did not revoke the token"))?;
        let kms = Kms::new(ctx, Caller::Bearer(token))?;
        let path = encryption_path(ctx, "encrypt")?;
        let reply = kms.post(&path, octets(PLAINTEXT)).await?;
        let mut details = expect_refusal(reply, 401, "token_revoked")?;
        details.insert(
            0,
            "a fresh demo-kms-client token revoked at Identity".to_owned(),
        );
        Ok(details)
    })
}

fn audit(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = ctx.env.kms()?;
        let Some(admin) = &kms.admin_url else {
            return Err(StepError::new(
                "the KMS's audit events are served on its admin listener: pass --kms-admin-url \
                 (and --client-cert/--client-key when it requires a client certificate)",
            ));
        };
        let after = ctx
            .kms
            .audit_after
            .ok_or_else(|| missing("the audit position at the start"))?;
        let events = crate::audit::since(&ctx.env.http, admin, after).await?;
        let client = ctx.env.credentials.kms_client_id.as_str();
        let bearer = |e: &&crate::audit::AuditEvent| e.field("method") == Some("bearer");
        let successes = events
            .iter()
            .filter(bearer)
            .filter(|e| {
                e.field("outcome") == Some("success") && e.field("client_id") == Some(client)
            })
            .count();
        let mut details = vec![format!(
            "{} audit events since the run started; {successes} successful bearer \
             authentications of {client}",
            events.len()
        )];
        if successes == 0 {
            return Err(StepError::new(format!("no audited success for {client}")));
        }
        let rs = ctx.env.credentials.rs_client_id.as_str();
        let delegated = events
            .iter()
            .filter(|e| e.field("outcome") == Some("success") && e.field("actor") == Some(rs))
            .count();
        if delegated == 0 {
            return Err(StepError::new(format!(
                "no audited success of a token acting through {rs}"
            )));
        }
        details.push(format!(
            "{delegated} audited success(es) for the user with actor {rs} (token exchange)"
        ));
        for reason in ["invalid_signature", "insufficient_scope", "token_revoked"] {
            let n = events
                .iter()
                .filter(bearer)
                .filter(|e| {
                    e.field("outcome") == Some("refused") && e.field("reason") == Some(reason)
                })
                .count();
            if n == 0 {
                return Err(StepError::new(format!("no audited refusal {reason}")));
            }
            details.push(format!("{n} refusal(s) audited as {reason}"));
        }
        Ok(details)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload_only() {
        let payload = b64::encode(br#"{"aud":"cryptoutil-kms","scope":"kms:read"}"#);
        let token = format!("e30.{payload}.c2ln");
        assert_eq!(claims(&token).unwrap()["scope"], "kms:read");
        assert!(claims("not-a-jwt").is_err());
        assert!(claims("e30.!!!.c2ln").is_err());
    }
}
