//! The device authorization grant (RFC 8628) over real HTTPS: the device authorization
//! endpoint and its client rules, every error of §3.5 at the token endpoint (`slow_down`
//! growing by 5 s), single use, expiry, the verification pages posted as a browser would
//! (entry, wrong code, brute-force refusal, login then consent, approve, deny), DPoP-bound
//! device tokens, and two instances on one PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::Duration;

use common::*;
use cryptoutil_identity::config::{DpopNonceMode, IdentitySettings};
use cryptoutil_identity::server::{Identity, Seeding};
use cryptoutil_identity::storage::DatabaseSettings;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, jws};
use cryptoutil_server::DevPki;
use cryptoutil_server::config::{HumanDuration, Secret};
use cryptoutil_testkit::postgres::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLI: &str = "demo-cli";
const DEVICE_AUTHORIZATION: &str = "/oauth2/v1/device_authorization";
const DEVICE: &str = "/oidc/v1/device";
const TOKEN: &str = "/oauth2/v1/token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A server whose polling interval is 1 s (so tests wait little between polls).
async fn idp_with(change: impl FnOnce(&mut IdentitySettings)) -> Idp {
    Idp::demo_with(|s| {
        s.device.interval = HumanDuration::from_secs(1);
        change(s);
    })
    .await
}

/// POSTs a form to `url` (Basic credentials and `DPoP` proof optional): status and JSON.
async fn post(
    http: &reqwest::Client,
    url: &str,
    basic: Option<(&str, &str)>,
    proof: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = http.post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The demo CLI's device authorization at `base`.
async fn start_cli(http: &reqwest::Client, base: &str, scope: &str) -> Value {
    let (status, body) = post(
        http,
        &format!("{base}{DEVICE_AUTHORIZATION}"),
        None,
        None,
        &[("client_id", CLI), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// One poll by the demo CLI at `base`.
async fn poll(http: &reqwest::Client, base: &str, device_code: &str) -> (StatusCode, Value) {
    post(
        http,
        &format!("{base}{TOKEN}"),
        None,
        None,
        &[
            ("grant_type", GRANT),
            ("client_id", CLI),
            ("device_code", device_code),
        ],
    )
    .await
}

fn error(answer: &(StatusCode, Value)) -> (u16, &str) {
    (answer.0.as_u16(), answer.1["error"].as_str().unwrap_or(""))
}

/// Posts the entry form with `typed` from a page of `browser` at `base`; returns the answer.
async fn enter(browser: &reqwest::Client, base: &str, typed: &str) -> reqwest::Response {
    let html = browser
        .get(format!("{base}{DEVICE}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .post(format!("{base}{DEVICE}"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("user_code", typed)])
        .send()
        .await
        .unwrap()
}

/// The whole browser side at `base`: open `verification_uri_complete`, post the prefilled
/// code, sign in as `user` if asked, and answer the consent step with `decision`. Returns the
/// consent page's HTML and the last page's status and HTML.
async fn browser_decides(
    browser: &reqwest::Client,
    base: &str,
    user_code: &str,
    user: &str,
    decision: &str,
) -> (String, StatusCode, String) {
    let entry = browser
        .get(format!("{base}{DEVICE}?user_code={user_code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(entry.status(), 200);
    let html = entry.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{user_code}\"")), "{html}");
    let response = browser
        .post(format!("{base}{DEVICE}"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("user_code", user_code),
        ])
        .send()
        .await
        .unwrap();
    let mut next = location(&response);
    if next == "/oidc/v1/login" {
        let html = browser
            .get(format!("{base}{next}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let password = format!("{user}-password");
        let response = browser
            .post(format!("{base}/oidc/v1/login"))
            .form(&[
                ("csrf_token", csrf(&html).as_str()),
                ("username", user),
                ("password", &password),
            ])
            .send()
            .await
            .unwrap();
        next = location(&response);
    }
    assert_eq!(next, DEVICE);
    let consent = browser.get(format!("{base}{DEVICE}")).send().await.unwrap();
    assert_eq!(consent.status(), 200);
    let consent = consent.text().await.unwrap();
    let done = browser
        .post(format!("{base}{DEVICE}"))
        .form(&[
            ("csrf_token", csrf(&consent).as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    let status = done.status();
    (consent, status, done.text().await.unwrap())
}

#[tokio::test]
async fn discovery_lists_the_device_endpoint_and_grant() {
    let idp = Idp::demo().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: Value = idp
            .http
            .get(idp.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            doc["device_authorization_endpoint"],
            idp.url(DEVICE_AUTHORIZATION)
        );
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&json!(GRANT)), "{grants:?}");
    }
    idp.stop().await;
}

#[tokio::test]
async fn a_public_cli_gets_tokens_after_login_and_consent_once() {
    let idp = idp_with(|_| {}).await;
    let started = start_cli(
        &idp.http,
        &idp.issuer,
        "openid profile offline_access kms:read",
    )
    .await;
    let user_code = started["user_code"].as_str().unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    // RFC 8628 §3.2, with the code shown as XXXX-XXXX of the base-20 alphabet.
    assert_eq!(started["verification_uri"], idp.url(DEVICE));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{}?user_code={user_code}", idp.url(DEVICE))
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 1);
    assert_eq!(device_code.len(), 43, "32 random bytes, base64url");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
        "{user_code}"
    );

    // Waiting: authorization_pending, and slow_down when polled again at once.
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, device_code).await),
        (400, "authorization_pending")
    );
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, device_code).await),
        (400, "slow_down")
    );

    // The user: entry (prefilled) → login → consent → allow.
    let browser = idp.browser();
    let (consent, status, done) =
        browser_decides(&browser, &idp.issuer, user_code, "demo-user", "allow").await;
    assert!(consent.contains("cryptoutil command line"), "{consent}");
    assert!(consent.contains("<code>demo-cli</code>"), "{consent}");
    assert!(consent.contains(user_code), "{consent}");
    assert!(consent.contains("name=\"decision\" value=\"allow\""));
    assert!(consent.contains("name=\"decision\" value=\"deny\""));
    assert!(
        consent.contains("stay signed in when you are away"),
        "{consent}"
    );
    assert_eq!(status, 200);
    assert!(done.contains("You may return to your device."), "{done}");

    // The device: tokens exactly as the code flow issues them, once.
    let (status, tokens) = poll(&idp.http, &idp.issuer, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile offline_access kms:read");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = jwt_part(access, 1);
    assert_eq!(claims["client_id"], CLI);
    assert_eq!(claims["aud"], "cryptoutil-kms");
    assert_eq!(claims["tenant_id"], "demo-tenant");
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["aud"], CLI);
    assert_eq!(id_token["preferred_username"], "demo-user");
    assert_eq!(id_token["sub"], claims["sub"]);
    assert!(idp.introspect(access).await["active"].as_bool().unwrap());
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, device_code).await),
        (400, "invalid_grant"),
        "single use"
    );
    // The refresh token works for the public client.
    let (status, refreshed) = idp
        .post_form(
            TOKEN,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLI),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    // The used code is refused at the entry page.
    let response = enter(&browser, &idp.issuer, user_code).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("already used"));
    idp.stop().await;
}

#[tokio::test]
async fn a_denial_is_access_denied_and_a_signed_in_user_goes_straight_to_consent() {
    let idp = idp_with(|_| {}).await;
    let browser = idp.browser();
    // Signed in first (through the code flow of another client).
    let (_, challenge) = pkce();
    let url = authorize_url(&idp, SPA, SPA_REDIRECT, "openid", &challenge);
    sign_in(&idp, &browser, &url, "demo-user").await;

    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    let user_code = started["user_code"].as_str().unwrap();
    let device_code = started["device_code"].as_str().unwrap();
    // Typed in lower case, without the dash, with spaces: accepted; no login page.
    let typed = format!(" {} ", user_code.replace('-', "").to_lowercase());
    let response = enter(&browser, &idp.issuer, &typed).await;
    assert_eq!(location(&response), DEVICE);
    let consent = idp.page(&browser, DEVICE).await;
    assert!(consent.contains("know who you are"), "{consent}");
    let done = browser
        .post(idp.url(DEVICE))
        .form(&[
            ("csrf_token", csrf(&consent).as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Access denied. You may close this page.")
    );
    for _ in 0..2 {
        assert_eq!(
            error(&poll(&idp.http, &idp.issuer, device_code).await),
            (400, "access_denied")
        );
    }
    // A decision needs the session's CSRF token.
    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    let response = enter(
        &browser,
        &idp.issuer,
        started["user_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(location(&response), DEVICE);
    let forged = browser
        .post(idp.url(DEVICE))
        .form(&[("csrf_token", "forged"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        error(
            &poll(
                &idp.http,
                &idp.issuer,
                started["device_code"].as_str().unwrap()
            )
            .await
        ),
        (400, "authorization_pending")
    );
    idp.stop().await;
}

#[tokio::test]
async fn slow_down_adds_five_seconds_each_time() {
    let idp = idp_with(|_| {}).await;
    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, device_code).await),
        (400, "authorization_pending")
    );
    for interval in [6, 11, 16] {
        let answer = poll(&idp.http, &idp.issuer, device_code).await;
        assert_eq!(error(&answer), (400, "slow_down"));
        let description = answer.1["error_description"].as_str().unwrap();
        assert!(
            description.contains(&format!("wait {interval} seconds")),
            "{description}"
        );
    }
    idp.stop().await;
}

#[tokio::test]
async fn an_expired_code_is_expired_token_and_refused_at_the_entry_page() {
    let idp = idp_with(|s| s.device.code_lifetime = HumanDuration::from_secs(1)).await;
    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    assert_eq!(started["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        error(
            &poll(
                &idp.http,
                &idp.issuer,
                started["device_code"].as_str().unwrap()
            )
            .await
        ),
        (400, "expired_token")
    );
    let browser = idp.browser();
    let response = enter(
        &browser,
        &idp.issuer,
        started["user_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("has expired"));
    idp.stop().await;
}

#[tokio::test]
async fn unknown_codes_other_clients_and_bad_polls_are_refused() {
    let idp = idp_with(|_| {}).await;
    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let token_url = idp.url(TOKEN);
    // Another (public) client presenting the CLI's code: invalid_grant; the code still waits.
    let (status, body) = post(
        &idp.http,
        &token_url,
        None,
        None,
        &[
            ("grant_type", GRANT),
            ("client_id", SPA),
            ("device_code", device_code),
        ],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (client_id, secret) = register_device_client(&idp).await;
    let (status, body) = post(
        &idp.http,
        &token_url,
        Some((&client_id, &secret)),
        None,
        &[("grant_type", GRANT), ("device_code", device_code)],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, device_code).await),
        (400, "authorization_pending")
    );
    // Unknown, oversized and missing codes.
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, "not-a-device-code").await),
        (400, "invalid_grant")
    );
    // Oversized: refused by the form's bounds before any lookup.
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, &"x".repeat(5000)).await),
        (400, "invalid_request")
    );
    assert_eq!(
        error(&poll(&idp.http, &idp.issuer, &"x".repeat(300)).await),
        (400, "invalid_grant")
    );
    let (status, body) = post(
        &idp.http,
        &token_url,
        None,
        None,
        &[("grant_type", GRANT), ("client_id", CLI)],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    idp.stop().await;
}

/// A confidential client registered for the device grant: its id and secret.
async fn register_device_client(idp: &Idp) -> (String, String) {
    let client_id = format!("device-test-{}", uuid::Uuid::now_v7());
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&json!({
            "client_id": client_id,
            "name": "Device test client",
            "auth_method": "client_secret_basic",
            "grant_types": [GRANT, "refresh_token"],
            "scopes": ["openid", "offline_access", "kms:read"],
            "audiences": ["https://kms.example/"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    (
        client_id,
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn client_rules_at_the_device_authorization_endpoint() {
    let idp = idp_with(|_| {}).await;
    let url = idp.url(DEVICE_AUTHORIZATION);
    let ask = |basic: Option<(&'static str, &'static str)>, form: Vec<(&'static str, String)>| {
        let http = idp.http.clone();
        let url = url.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&http, &url, basic, None, &form).await
        }
    };
    // A public client without the device grant; an unknown client; no client at all.
    assert_eq!(
        error(&ask(None, vec![("client_id", SPA.to_owned())]).await),
        (400, "unauthorized_client")
    );
    let unknown = ask(
        None,
        vec![("client_id", format!("nobody-{}", uuid::Uuid::now_v7()))],
    )
    .await;
    // 400: no credentials were sent (401 is for a failed Authorization header, RFC 6749 §5.2).
    assert_eq!(unknown.0.as_u16(), 400, "{}", unknown.1);
    assert_eq!(unknown.1["error"], "invalid_client");
    assert_eq!(ask(None, vec![]).await.1["error"], "invalid_client");
    // A confidential client must authenticate: naming itself is not enough.
    let (client_id, secret) = register_device_client(&idp).await;
    let bare = ask(None, vec![("client_id", client_id.clone())]).await;
    assert_eq!(bare.1["error"], "invalid_client", "{}", bare.1);
    let (status, body) = post(
        &idp.http,
        &url,
        Some((&client_id, "wrong-secret")),
        None,
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A confidential client without the device grant.
    let (status, body) = post(
        &idp.http,
        &url,
        Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
        None,
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    // Scope and resource are checked as at the authorization endpoint.
    let basic = Some((client_id.as_str(), secret.as_str()));
    let (status, body) = post(&idp.http, &url, basic, None, &[("scope", "openid admin")]).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = post(
        &idp.http,
        &url,
        basic,
        None,
        &[
            ("scope", "openid"),
            ("resource", "https://elsewhere.example/"),
        ],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // Authenticated, with a resource: the token's audience is that resource; no scope asks
    // for all the client's scopes.
    let (status, started) = post(
        &idp.http,
        &url,
        basic,
        None,
        &[("resource", "https://kms.example/")],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let browser = idp.browser();
    let (_, status, _) = browser_decides(
        &browser,
        &idp.issuer,
        started["user_code"].as_str().unwrap(),
        "demo-user",
        "allow",
    )
    .await;
    assert_eq!(status, 200);
    let (status, tokens) = post(
        &idp.http,
        &idp.url(TOKEN),
        basic,
        None,
        &[
            ("grant_type", GRANT),
            ("device_code", started["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid offline_access kms:read");
    let claims = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], "https://kms.example/");
    assert!(tokens["refresh_token"].is_string());
    idp.stop().await;
}

#[tokio::test]
async fn wrong_codes_back_off_per_session() {
    let idp = idp_with(|s| {
        s.device.user_code_failures_per_session = 2;
        s.device.user_code_failures_per_address = 1000;
    })
    .await;
    let browser = idp.browser();
    let started = start_cli(&idp.http, &idp.issuer, "openid").await;
    // A missing code is asked for, not counted.
    let response = enter(&browser, &idp.issuer, "  ").await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Enter the code shown")
    );
    let response = enter(&browser, &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("That code is not valid"), "{html}");
    assert!(html.contains("aria-invalid=\"true\""));
    // The second wrong code starts the backoff; then even the right code is refused unchecked.
    let locked = enter(&browser, &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(locked.status(), 429);
    let locked = enter(
        &browser,
        &idp.issuer,
        started["user_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many wrong codes")
    );
    // Another session (from the same address) is not locked.
    let other = idp.browser();
    let response = enter(&other, &idp.issuer, started["user_code"].as_str().unwrap()).await;
    assert_eq!(location(&response), "/oidc/v1/login");
    idp.stop().await;
}

#[tokio::test]
async fn wrong_codes_back_off_per_address() {
    let idp = idp_with(|s| {
        s.device.user_code_failures_per_session = 1000;
        s.device.user_code_failures_per_address = 2;
    })
    .await;
    // Each wrong code from a new session (cookies dropped), one address.
    let response = enter(&idp.browser(), &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(response.status(), 400);
    let response = enter(&idp.browser(), &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(response.status(), 429);
    let response = enter(&idp.browser(), &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(response.status(), 429);
    // Another address is not locked.
    let response = enter(&idp.browser_from("127.0.0.2"), &idp.issuer, "BCDF-GHJK").await;
    assert_eq!(response.status(), 400);
    idp.stop().await;
}

#[tokio::test]
async fn the_pages_without_a_session_or_form_refuse_clearly() {
    let idp = idp_with(|_| {}).await;
    // A decision without an entered code; a post without a session.
    let browser = idp.browser();
    let html = idp.page(&browser, DEVICE).await;
    assert!(html.contains("<label for=\"user_code\">"), "{html}");
    let response = browser
        .post(idp.url(DEVICE))
        .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = idp
        .http
        .post(idp.url(DEVICE))
        .form(&[("csrf_token", "x"), ("user_code", "BCDF-GHJK")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Markup in the prefilled code is escaped.
    let html = idp
        .page(&browser, "/oidc/v1/device?user_code=%22%3E%3Cscript%3E")
        .await;
    assert!(!html.contains("<script>"), "{html}");
    idp.stop().await;
}

/// A DPoP key held by the device.
struct Holder {
    key: Jwk,
}

impl Holder {
    fn new() -> Self {
        Self {
            key: Jwk::generate_ec(EcCurve::P256).unwrap(),
        }
    }

    fn proof(&self, htu: &str) -> String {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("jwk".into(), self.key.to_value(false));
        let claims = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": "POST",
            "htu": htu,
            "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        });
        jws::sign(
            &self.key,
            JwsAlgorithm::ES256,
            &serde_json::to_vec(&claims).unwrap(),
            Some(&header),
        )
        .unwrap()
    }
}

#[tokio::test]
async fn a_dpop_proof_at_the_device_authorization_binds_the_device_code() {
    let idp = idp_with(|s| s.dpop.nonce = DpopNonceMode::Off).await;
    let holder = Holder::new();
    let (status, started) = post(
        &idp.http,
        &idp.url(DEVICE_AUTHORIZATION),
        None,
        Some(&holder.proof(&idp.url(DEVICE_AUTHORIZATION))),
        &[("client_id", CLI), ("scope", "openid offline_access")],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap();
    let browser = idp.browser();
    browser_decides(
        &browser,
        &idp.issuer,
        started["user_code"].as_str().unwrap(),
        "demo-user",
        "allow",
    )
    .await;
    let form = [
        ("grant_type", GRANT),
        ("client_id", CLI),
        ("device_code", device_code),
    ];
    let token_url = idp.url(TOKEN);
    // Without a proof, or with another key's: refused, and the approval is not spent.
    let (status, body) = post(&idp.http, &token_url, None, None, &form).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let thief = Holder::new();
    let (status, body) = post(
        &idp.http,
        &token_url,
        None,
        Some(&thief.proof(&token_url)),
        &form,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, tokens) = post(
        &idp.http,
        &token_url,
        None,
        Some(&holder.proof(&token_url)),
        &form,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let claims = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["cnf"]["jkt"], holder.key.thumbprint());
    // The public client's refresh token is bound to the key too.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", CLI),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let (status, body) = post(&idp.http, &token_url, None, None, &refresh).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = post(
        &idp.http,
        &token_url,
        None,
        Some(&holder.proof(&token_url)),
        &refresh,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    idp.stop().await;
}

async fn start_on(pki: &DevPki, db: &str, issuer: &str, kek: &str) -> Identity {
    let mut settings = common::settings(pki);
    settings.database = DatabaseSettings::with_url(db);
    settings.issuer = Some(issuer.to_owned());
    settings.keys.encryption_key = Some(Secret::new(kek));
    settings.device.interval = HumanDuration::from_secs(1);
    cryptoutil_identity::server::start(settings, false, None, Some(Seeding::Demo))
        .await
        .unwrap()
}

fn own(identity: &Identity) -> String {
    format!("https://127.0.0.1:{}", identity.server.public_addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_share_device_authorizations() {
    let Some(db) = TestDatabase::create("identity_device").await else {
        return;
    };
    let pki = DevPki::generate().unwrap();
    let issuer = "https://identity.test.invalid";
    let kek = cryptoutil_identity::signing::KeyEncryptionKey::generate()
        .unwrap()
        .to_base64url();
    let a = start_on(&pki, &db.url, issuer, &kek).await;
    let b = start_on(&pki, &db.url, issuer, &kek).await;
    let http = cryptoutil_testkit::tls::client_builder(&pki)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = cryptoutil_testkit::tls::client_builder(&pki)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();

    // Asked at A, polled at B, approved at A (browser), redeemed at B, spent at A.
    let started = start_cli(&http, &own(&a), "openid offline_access").await;
    assert_eq!(
        started["verification_uri"],
        format!("{issuer}/oidc/v1/device")
    );
    let device_code = started["device_code"].as_str().unwrap();
    assert_eq!(
        error(&poll(&http, &own(&b), device_code).await),
        (400, "authorization_pending")
    );
    // The interval is shared: polling A at once is too fast.
    assert_eq!(
        error(&poll(&http, &own(&a), device_code).await),
        (400, "slow_down")
    );
    let (_, status, _) = browser_decides(
        &browser,
        &own(&a),
        started["user_code"].as_str().unwrap(),
        "demo-user",
        "allow",
    )
    .await;
    assert_eq!(status, 200);
    let (status, tokens) = poll(&http, &own(&b), device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(
        error(&poll(&http, &own(&a), device_code).await),
        (400, "invalid_grant")
    );

    // Two polls racing at A and B after approval: exactly one gets the tokens.
    let started = start_cli(&http, &own(&b), "openid").await;
    let (_, status, _) = browser_decides(
        &browser,
        &own(&b),
        started["user_code"].as_str().unwrap(),
        "demo-user",
        "allow",
    )
    .await;
    assert_eq!(status, 200);
    let device_code = started["device_code"].as_str().unwrap();
    let (url_a, url_b) = (own(&a), own(&b));
    let (at_a, at_b) = tokio::join!(
        poll(&http, &url_a, device_code),
        poll(&http, &url_b, device_code)
    );
    let wins = [&at_a, &at_b].iter().filter(|r| r.0 == 200).count();
    assert_eq!(wins, 1, "{at_a:?} {at_b:?}");
    for answer in [&at_a, &at_b] {
        if answer.0 != 200 {
            assert_eq!(error(answer), (400, "invalid_grant"));
        }
    }
    a.stop().await;
    b.stop().await;
}
