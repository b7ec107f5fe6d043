//! Step-up for user tokens (RFC 9470) end to end: a real Identity server signs user tokens
//! with and without two factors (its own key ring, the claims of a demo token with the user's
//! sign-in added), and a real KMS configured with `step_up` for `kms:write` answers 403
//! `insufficient_user_authentication` with the challenge, or serves the request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{Kms, Reply};
use crate::federation::{DEMO_KEY, Idp, KMS_CLIENT, KMS_SECRET, key_id, kms_for};
use cryptoutil_identity::tokens::AccessTokenClaims;
use cryptoutil_kms::auth::settings::StepUpSettings;
use cryptoutil_server::config::HumanDuration;

const MFA: &str = "urn:cryptoutil:acr:mfa";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A user token signed by `idp`: a demo client token's claims (audience, tenant, scopes) for a
/// user who signed in `age` seconds ago reaching `acr` with `amr`.
async fn user_token(idp: &Idp, acr: &str, amr: &[&str], age: i64) -> String {
    let service = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let payload = service.split('.').nth(1).unwrap();
    let mut claims: AccessTokenClaims = serde_json::from_slice(
        &cryptoutil_jose::b64::decode(payload.as_bytes(), "payload").unwrap(),
    )
    .unwrap();
    claims.sub = format!("user-{}", uuid::Uuid::now_v7());
    claims.jti = AccessTokenClaims::new_jti();
    claims.auth_time = Some(now() - age);
    claims.acr = Some(acr.to_owned());
    claims.amr = Some(amr.iter().map(|m| (*m).to_owned()).collect());
    idp.identity
        .keys()
        .ring()
        .sign_access_token(&claims)
        .unwrap()
}

async fn call(kms: &Kms, method: reqwest::Method, path: &str, token: &str) -> Reply {
    let request = kms
        .http()
        .request(method, kms.public_url(&format!("/service/api/v1{path}")))
        .header("content-type", "application/octet-stream")
        .bearer_auth(token)
        .body(b"payload".to_vec());
    Reply::read(request.send().await.unwrap()).await
}

fn assert_step_up(reply: &Reply, description: &str) {
    reply.assert_problem(403, "insufficient_user_authentication");
    let body = reply.json();
    assert_eq!(body["error"], "insufficient_user_authentication");
    assert_eq!(body["acr_values"], format!("{MFA} phr"));
    assert_eq!(body["max_age"], 900);
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"cryptoutil-kms\", error=\"insufficient_user_authentication\", \
             error_description=\"{description}\", acr_values=\"{MFA} phr\", max_age=\"900\""
        )
    );
}

#[tokio::test]
async fn user_tokens_need_two_factors_for_the_configured_scopes() {
    let idp = Idp::demo().await;
    let kms = kms_for(&idp, |s| {
        s.auth.federation.issuers[0].step_up = Some(StepUpSettings {
            scopes: vec!["kms:write".to_owned()],
            acr_values: vec![MFA.to_owned(), "phr".to_owned()],
            max_age: Some(HumanDuration::from_secs(900)),
        });
    })
    .await;
    let service = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &service, DEMO_KEY).await;
    let encrypt = format!("/elastickey/{aes}/encrypt");

    // A password sign-in: reading is fine, encrypting (kms:write) needs a step-up.
    let password = user_token(&idp, "urn:cryptoutil:acr:sfa", &["pwd"], 10).await;
    let listed = call(&kms, reqwest::Method::GET, "/elastickeys", &password).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let refused = call(&kms, reqwest::Method::POST, &encrypt, &password).await;
    assert_step_up(&refused, "this operation needs a stronger sign-in");

    // Two factors, recently: served.
    let mfa = user_token(&idp, MFA, &["pwd", "otp", "mfa"], 10).await;
    let served = call(&kms, reqwest::Method::POST, &encrypt, &mfa).await;
    assert_eq!(served.status, 200, "{}", served.text);

    // Two factors, but longer ago than max_age: a fresh sign-in is needed.
    let old = user_token(&idp, MFA, &["pwd", "otp", "mfa"], 3600).await;
    let refused = call(&kms, reqwest::Method::POST, &encrypt, &old).await;
    assert_step_up(&refused, "this operation needs a more recent sign-in");

    // A client-credentials token has no user: not affected.
    let served = call(&kms, reqwest::Method::POST, &encrypt, &service).await;
    assert_eq!(served.status, 200, "{}", served.text);

    kms.stop().await;
    idp.stop().await;
}
