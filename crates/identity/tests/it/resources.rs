//! Resource indicators (RFC 8707) over real HTTPS: `resource` on the authorization request,
//! PAR and the token requests sets the access token's `aud`; a resource the client may not
//! get is `invalid_target`; a refresh may narrow the resources of its grant, never widen them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use serde_json::{Value, json};

/// A confidential client registered through the admin API with `audiences`; returns its id
/// and secret.
async fn register(idp: &Idp, grant_types: &[&str], audiences: &[&str]) -> (String, String) {
    let client_id = format!("resources-{}", uuid::Uuid::now_v7());
    let mut body = json!({
        "client_id": client_id,
        "name": "Resource indicator test client",
        "auth_method": "client_secret_basic",
        "grant_types": grant_types,
        "scopes": ["openid", "offline_access", "read:resource"],
        "audiences": audiences,
    });
    if grant_types.contains(&"authorization_code") {
        body["redirect_uris"] = json!([CONFIDENTIAL_REDIRECT]);
    }
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    (
        client_id,
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Unique absolute-URI resources for one test.
fn resources() -> [String; 3] {
    let id = uuid::Uuid::now_v7().simple().to_string();
    [
        format!("https://a-{id}.example/api"),
        format!("https://b-{id}.example/api"),
        format!("urn:example:c-{id}"),
    ]
}

fn error(status: reqwest::StatusCode, body: &Value) -> (u16, String) {
    (
        status.as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn resource_on_authorize_and_token_sets_aud_and_refresh_only_narrows() {
    let idp = Idp::demo().await;
    let [a, b, c] = resources();
    let (client, secret) = register(
        &idp,
        &["authorization_code", "refresh_token"],
        &[&a, &b, &c],
    )
    .await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&authorize_url(
        &idp,
        &client,
        CONFIDENTIAL_REDIRECT,
        "openid offline_access read:resource",
        &challenge,
    ))
    .unwrap();
    url.query_pairs_mut()
        .append_pair("resource", &a)
        .append_pair("resource", &b);
    let callback = sign_in(&idp, &browser, url.as_str(), "demo-user").await;
    let code = query(&callback)["code"].clone();
    // The token request narrows to one of the authorized resources.
    let (status, tokens) = idp
        .token(
            &client,
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", &verifier),
                ("resource", &a),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 1)["aud"],
        json!(a)
    );
    let introspected = idp
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["aud"], json!([a]));
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A refresh may pick another resource of the grant...
    let (status, body) = idp
        .token(
            &client,
            &secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("resource", &b),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        json!(b)
    );
    refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // ...but never one outside it, even one the client is registered for; the refresh token
    // stays usable after the refusal.
    let (status, body) = idp
        .token(
            &client,
            &secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("resource", &c),
            ],
        )
        .await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_target".to_owned()),
        "{body}"
    );

    // Without resource, the refresh gets the whole grant's resources.
    let (status, body) = idp
        .token(
            &client,
            &secret,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        json!([a, b])
    );
    idp.stop().await;
}

#[tokio::test]
async fn disallowed_or_malformed_resources_are_invalid_target() {
    let idp = Idp::demo().await;
    let [a, b, _] = resources();
    let (client, secret) = register(&idp, &["authorization_code", "refresh_token"], &[&a]).await;
    let browser = idp.browser();
    let (_, challenge) = pkce();

    // At the authorization endpoint: back to the (validated) redirect URI with the error.
    for resource in [
        b.as_str(),
        "not-an-absolute-uri",
        "https://a.example/#fragment",
    ] {
        let mut url = url::Url::parse(&authorize_url(
            &idp,
            &client,
            CONFIDENTIAL_REDIRECT,
            "openid",
            &challenge,
        ))
        .unwrap();
        url.query_pairs_mut().append_pair("resource", resource);
        let response = browser.get(url.as_str()).send().await.unwrap();
        let back = location(&response);
        assert!(back.starts_with(CONFIDENTIAL_REDIRECT), "{back}");
        let params = query(&back);
        assert_eq!(params["error"], "invalid_target", "{resource}");
        assert_eq!(params["state"], "state-123");
    }

    // At PAR: refused at once; an allowed one is stored and carried to the code.
    let (verifier, challenge) = pkce();
    let par = |resource: String| {
        let challenge = challenge.clone();
        let client = client.clone();
        let secret = secret.clone();
        let idp = &idp;
        async move {
            idp.post_form(
                "/oauth2/v1/par",
                Some((&client, &secret)),
                &[
                    ("response_type", "code"),
                    ("client_id", &client),
                    ("redirect_uri", CONFIDENTIAL_REDIRECT),
                    ("scope", "openid"),
                    ("state", "state-123"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("resource", &resource),
                ],
            )
            .await
        }
    };
    let (status, body) = par(b.clone()).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_target".to_owned()),
        "{body}"
    );
    let (status, pushed) = par(a.clone()).await;
    assert_eq!(status, 201, "{pushed}");
    let mut url = url::Url::parse(&idp.url("/oauth2/v1/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let code = query(&sign_in(&idp, &browser, url.as_str(), "demo-user").await)["code"].clone();
    let (status, tokens) = idp
        .token(
            &client,
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 1)["aud"],
        json!(a)
    );
    idp.stop().await;
}

#[tokio::test]
async fn client_credentials_with_resource() {
    let idp = Idp::demo().await;
    let [a, b, c] = resources();
    let (client, secret) = register(&idp, &["client_credentials"], &[&a, &b]).await;
    let token = |form: Vec<(&'static str, String)>| {
        let (client, secret, idp) = (client.clone(), secret.clone(), &idp);
        async move {
            let mut pairs: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
            pairs.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            idp.token(&client, &secret, &pairs).await
        }
    };
    let (status, body) = token(vec![("resource", b.clone())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        json!(b)
    );
    let (status, body) = token(vec![("resource", a.clone()), ("resource", b.clone())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        json!([a, b])
    );
    // No resource: every registered audience, as before.
    let (status, body) = token(Vec::new()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["aud"],
        json!([a, b])
    );
    for bad in [c.clone(), "relative/path".to_owned()] {
        let (status, body) = token(vec![("resource", bad)]).await;
        assert_eq!(
            error(status, &body),
            (400, "invalid_target".to_owned()),
            "{body}"
        );
    }
    // Bounded: more than ten values are refused.
    let many: Vec<(&'static str, String)> = (0..11).map(|_| ("resource", a.clone())).collect();
    let (status, body) = token(many).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_target".to_owned()),
        "{body}"
    );
    // Other parameters still may not repeat.
    let (status, body) = token(vec![
        ("scope", "read:resource".to_owned()),
        ("scope", "openid".to_owned()),
    ])
    .await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    idp.stop().await;
}
