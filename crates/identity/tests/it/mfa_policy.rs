//! The MFA policy over real HTTPS: `amr` and `acr` in ID tokens, access tokens, refreshed
//! tokens and introspection; discovery's classes; `acr_values` stepping a password session up
//! to the user's TOTP (and `interaction_required` under `prompt=none`); a client requiring MFA
//! sending a user without a factor to the account page, and `POST /oidc/v1/login/continue`
//! resuming the request once a factor exists; pushed requests' `acr_values`; the device approval
//! under the deployment policy, and a device grant's `amr`/`acr`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use cryptoutil_identity::model::TotpFactor;
use reqwest::cookie::CookieStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

const SFA: &str = "urn:cryptoutil:acr:sfa";
const MFA: &str = "urn:cryptoutil:acr:mfa";

/// Redeems a code of the confidential client.
async fn redeem(idp: &Idp, code: &str, verifier: &str) -> Value {
    let (status, tokens) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The demo user's id.
async fn demo_user_id(idp: &Idp) -> String {
    idp.identity
        .store()
        .user_by_username("demo-user")
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Gives a user a confirmed TOTP authenticator straight in storage (the sealed secret is never
/// opened by these tests: they check where the flow goes, not the code itself).
async fn enrol_totp(idp: &Idp, user_id: &str) {
    let now = OffsetDateTime::now_utc();
    idp.identity
        .store()
        .put_totp_factor(&TotpFactor {
            user_id: user_id.to_owned(),
            sealed_secret: format!("sealed-{}", uuid::Uuid::now_v7()),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period_secs: 30,
            confirmed_at: Some(now),
            last_used_step: None,
            created_at: now,
            last_used_at: None,
        })
        .await
        .unwrap();
}

fn amr(value: &Value) -> Vec<&str> {
    value["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr in {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_password_sign_in_says_pwd_and_single_factor_everywhere() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid offline_access",
        &challenge,
    );
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let tokens = redeem(&idp, &code, &verifier).await;

    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(amr(&id_token), ["pwd"]);
    assert_eq!(id_token["acr"], SFA);

    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(amr(&access), ["pwd"]);
    assert_eq!(access["acr"], SFA);
    assert_eq!(access["auth_time"], id_token["auth_time"]);

    let introspected = idp
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], true);
    assert_eq!(amr(&introspected), ["pwd"]);
    assert_eq!(introspected["acr"], SFA);
    assert_eq!(introspected["auth_time"], id_token["auth_time"]);

    // Refreshing keeps the sign-in's claims (the refresh token's introspection too).
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh_view = idp.introspect(refresh).await;
    assert_eq!(refresh_view["acr"], SFA);
    assert_eq!(amr(&refresh_view), ["pwd"]);
    let (status, refreshed) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let access = jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
    assert_eq!(access["acr"], SFA);
    assert_eq!(amr(&access), ["pwd"]);
    if let Some(id_token) = refreshed["id_token"].as_str() {
        assert_eq!(jwt_part(id_token, 1)["acr"], SFA);
    }
    idp.stop().await;
}

#[tokio::test]
async fn discovery_lists_the_classes_and_the_claims() {
    let idp = Idp::demo().await;
    let doc: Value = idp
        .http
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["acr_values_supported"], json!([SFA, MFA, "phr"]));
    let claims = doc["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&json!("acr")) && claims.contains(&json!("amr")));
    assert_eq!(doc["claims_parameter_supported"], false);
    idp.stop().await;
}

#[tokio::test]
async fn acr_values_step_a_password_session_up_to_the_users_totp() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (_, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    // Signed in with the password alone (no factor yet), consent remembered.
    let callback = sign_in(&idp, &browser, &url, "demo-user").await;
    assert!(query(&callback).contains_key("code"));
    enrol_totp(&idp, &demo_user_id(&idp).await).await;

    // The same session without acr_values: a code at once (the policy is `optional`).
    let response = browser.get(&url).send().await.unwrap();
    assert!(query(&location(&response)).contains_key("code"));

    // prompt=none and acr_values the session does not reach: interaction_required.
    let response = browser
        .get(format!("{url}&acr_values={MFA}&prompt=none"))
        .send()
        .await
        .unwrap();
    let params = query(&location(&response));
    assert_eq!(params["error"], "interaction_required");
    assert_eq!(params["iss"], idp.issuer);

    // Asking for two factors (an unknown value beside it is ignored): the second-factor page.
    let response = browser
        .get(format!("{url}&acr_values=urn%3Aother+{MFA}"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");
    // The session now owes the factor: even a request asking for nothing signs in again.
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");

    // Too many values, or too long: invalid_request back to the client.
    let many = [MFA; 9].join("+");
    let response = browser
        .get(format!("{url}&acr_values={many}"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "invalid_request");
    let long = "x".repeat(513);
    let response = browser
        .get(format!("{url}&acr_values={long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "invalid_request");
    idp.stop().await;
}

/// The CSRF token of the session a cookie jar holds (the account page that shows it belongs to
/// another module; the session record has it).
async fn session_csrf(idp: &Idp, jar: &reqwest::cookie::Jar) -> String {
    let cookies = jar.cookies(&url::Url::parse(&idp.issuer).unwrap()).unwrap();
    let cookies = cookies.to_str().unwrap();
    let value = cookies
        .split("; ")
        .find_map(|c| c.strip_prefix("__Host-cryptoutil-identity="))
        .unwrap();
    idp.identity
        .store()
        .session(
            &cryptoutil_identity::tokens::secret_hash(value),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .unwrap()
        .csrf_token
}

#[tokio::test]
async fn a_client_requiring_mfa_sends_a_user_without_a_factor_to_set_one_up() {
    let idp = Idp::demo().await;
    let client_id = format!("mfa-required-{}", uuid::Uuid::now_v7());
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&json!({
            "client_id": client_id,
            "name": "MFA required",
            "auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": [SPA_REDIRECT],
            "scopes": ["openid"],
            "mfa": "required",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let stored = idp
        .identity
        .store()
        .client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.metadata.mfa,
        Some(cryptoutil_identity::mfa::MfaPolicy::Required)
    );

    let (browser, jar) = idp.browser_with_jar();
    let (_, challenge) = pkce();
    let url = authorize_url(&idp, &client_id, SPA_REDIRECT, "openid", &challenge);
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(&browser, "/oidc/v1/login").await;
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account");

    // Continuing without a factor still lands on the account page; a forged form is refused.
    let csrf = session_csrf(&idp, &jar).await;
    let response = browser
        .post(idp.url("/oidc/v1/login/continue"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = browser
        .post(idp.url("/oidc/v1/login/continue"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account");

    // With a factor set up, continuing steps up to it.
    enrol_totp(&idp, &demo_user_id(&idp).await).await;
    let response = browser
        .post(idp.url("/oidc/v1/login/continue"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");

    // A client with the deployment's policy is not affected by the other's.
    let response = idp
        .browser()
        .get(format!(
            "{}&prompt=none",
            authorize_url(
                &idp,
                CONFIDENTIAL,
                CONFIDENTIAL_REDIRECT,
                "openid",
                &challenge
            )
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "login_required");
    idp.stop().await;
}

#[tokio::test]
async fn prompt_none_with_a_required_factor_missing_is_interaction_required() {
    let idp = Idp::demo_with(|settings| {
        settings.mfa.policy = cryptoutil_identity::mfa::MfaPolicy::Required;
    })
    .await;
    let browser = idp.browser();
    let (_, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    // The deployment requires two factors: the password sends the user to set one up.
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(&browser, "/oidc/v1/login").await;
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account");
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "interaction_required");
    idp.stop().await;
}

/// Signs `user` in on the login page the browser was just sent to; returns the next location.
async fn password(idp: &Idp, browser: &reqwest::Client, user: &str) -> String {
    let html = idp.page(browser, "/oidc/v1/login").await;
    let password = format!("{user}-password");
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", user),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap();
    location(&response)
}

/// The demo CLI's device authorization (RFC 8628) and the user code entered in `browser`;
/// returns the device code and where the entry sent the browser.
async fn device_entered(idp: &Idp, browser: &reqwest::Client) -> (String, String) {
    let (status, started) = idp
        .post_form(
            "/oauth2/v1/device_authorization",
            None,
            &[("client_id", "demo-cli"), ("scope", "kms:read")],
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let user_code = started["user_code"].as_str().unwrap();
    let html = idp
        .page(browser, &format!("/oidc/v1/device?user_code={user_code}"))
        .await;
    let response = browser
        .post(idp.url("/oidc/v1/device"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap();
    (
        started["device_code"].as_str().unwrap().to_owned(),
        location(&response),
    )
}

#[tokio::test]
async fn the_device_approval_applies_the_deployment_policy_before_consent() {
    let idp = Idp::demo_with(|settings| {
        settings.mfa.policy = cryptoutil_identity::mfa::MfaPolicy::Required;
    })
    .await;
    let (browser, jar) = idp.browser_with_jar();
    let (_, next) = device_entered(&idp, &browser).await;
    assert_eq!(next, "/oidc/v1/login");
    assert_eq!(
        password(&idp, &browser, "demo-user").await,
        "/oidc/v1/device"
    );
    // No factor: the approval page sends the user to set one up, and so does an Allow posted
    // around it.
    let response = browser
        .get(idp.url("/oidc/v1/device"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account");
    let csrf = session_csrf(&idp, &jar).await;
    let response = browser
        .post(idp.url("/oidc/v1/device"))
        .form(&[("csrf_token", csrf.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account");
    // With a factor: the approval steps up to it first.
    enrol_totp(&idp, &demo_user_id(&idp).await).await;
    let response = browser
        .post(idp.url("/oidc/v1/login/continue"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/device");
    let response = browser
        .get(idp.url("/oidc/v1/device"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");
    idp.stop().await;
}

#[tokio::test]
async fn a_device_grant_records_the_sign_in() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (device_code, next) = device_entered(&idp, &browser).await;
    assert_eq!(next, "/oidc/v1/login");
    assert_eq!(
        password(&idp, &browser, "demo-user").await,
        "/oidc/v1/device"
    );
    let html = idp.page(&browser, "/oidc/v1/device").await;
    let response = browser
        .post(idp.url("/oidc/v1/device"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, tokens) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "demo-cli"),
                ("device_code", &device_code),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(amr(&access), ["pwd"]);
    assert_eq!(access["acr"], SFA);
    assert!(access["auth_time"].is_i64());
    idp.stop().await;
}

#[tokio::test]
async fn a_pushed_request_keeps_its_acr_values_and_bounds_them() {
    let idp = Idp::demo().await;
    let (_, challenge) = pkce();
    let base = [
        ("response_type", "code"),
        ("client_id", CONFIDENTIAL),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let many = [MFA; 9].join(" ");
    let mut too_many = base.to_vec();
    too_many.push(("acr_values", &many));
    let (status, body) = idp
        .post_form(
            "/oauth2/v1/par",
            Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
            &too_many,
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A pushed request asking for two factors steps the TOTP user's password session up.
    let browser = idp.browser();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    sign_in(&idp, &browser, &url, "demo-user").await;
    enrol_totp(&idp, &demo_user_id(&idp).await).await;
    let mut asking = base.to_vec();
    asking.push(("acr_values", MFA));
    let (status, pushed) = idp
        .post_form(
            "/oauth2/v1/par",
            Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
            &asking,
        )
        .await;
    assert_eq!(status, 201, "{pushed}");
    let mut authorize = url::Url::parse(&idp.url("/oauth2/v1/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", CONFIDENTIAL)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let response = browser.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");
    idp.stop().await;
}
