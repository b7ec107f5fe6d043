//! The protocol endpoints over real HTTPS: discovery, code + PKCE with the login and consent
//! pages, refresh rotation and reuse detection, client credentials, introspection, revocation,
//! userinfo, PAR, private_key_jwt, secret rotation, and the RFC 9700 negative cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm};
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_documents_and_jwks_advertise_what_is_implemented() {
    let idp = Idp::demo().await;
    let openid: Value = idp
        .http
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oauth: Value = idp
        .http
        .get(idp.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openid, oauth);
    assert_eq!(openid["issuer"], idp.issuer);
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        assert!(
            openid[key].as_str().unwrap().starts_with(&idp.issuer),
            "{key}"
        );
    }
    assert_eq!(openid["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(openid["response_types_supported"], json!(["code"]));
    assert_eq!(
        openid["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        openid["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );

    for path in ["/oauth2/v1/jwks", "/.well-known/jwks.json"] {
        let jwks: Value = idp
            .http
            .get(idp.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kty"], "EC");
        assert!(keys[0].get("d").is_none(), "no private key material");
        assert!(keys[0]["kid"].is_string());
    }
    idp.stop().await;
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let idp = Idp::demo().await;
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap().to_owned();
    let header = jwt_part(&token, 0);
    let claims = jwt_part(&token, 1);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["iss"], idp.issuer);
    assert_eq!(claims["sub"], KMS_CLIENT);
    assert_eq!(claims["client_id"], KMS_CLIENT);
    assert_eq!(claims["aud"], json!("cryptoutil-kms"));
    assert_eq!(claims["tenant_id"], "demo-tenant");
    assert_eq!(claims["scope"], "kms:read kms:write");

    // Narrowing works; widening does not.
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "client_credentials"), ("scope", "kms:read")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "kms:read");
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "client_credentials"), ("scope", "kms:admin")],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    // The KMS's introspection client sees every client's tokens; others see only their own.
    let active = idp.introspect(&token).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], KMS_CLIENT);
    assert_eq!(active["tenant_id"], "demo-tenant");
    let (_, foreign) = idp
        .post_form(
            "/oauth2/v1/introspect",
            Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(foreign, json!({"active": false}));
    assert_eq!(
        idp.introspect("not-a-token").await,
        json!({"active": false})
    );

    // Another client cannot revoke it; its owner can.
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/revoke",
            Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(idp.introspect(&token).await["active"], true);
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/revoke",
            Some((KMS_CLIENT, KMS_CLIENT_SECRET)),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(idp.introspect(&token).await, json!({"active": false}));

    // Introspection requires client authentication.
    let (status, body) = idp
        .post_form("/oauth2/v1/introspect", None, &[("token", &token)])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    idp.stop().await;
}

#[tokio::test]
async fn client_authentication_failures_use_rfc_6749_errors() {
    let idp = Idp::demo().await;
    let response = idp
        .http
        .post(idp.url("/oauth2/v1/token"))
        .basic_auth(KMS_CLIENT, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let (status, body) = idp
        .token(
            "no-such-client",
            "x",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = idp
        .token(KMS_CLIENT, KMS_CLIENT_SECRET, &[("grant_type", "password")])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );

    // Malformed requests: duplicate parameters, wrong content type, oversized values.
    let response = idp
        .http
        .post(idp.url("/oauth2/v1/token"))
        .basic_auth(KMS_CLIENT, Some(KMS_CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let response = idp
        .http
        .post(idp.url("/oauth2/v1/token"))
        .basic_auth(KMS_CLIENT, Some(KMS_CLIENT_SECRET))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let huge = "a".repeat(70_000);
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "client_credentials"), ("scope", &huge)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    idp.stop().await;
}

/// Code + PKCE through the login and consent pages, ID token, userinfo, refresh rotation and
/// family revocation on reuse, and remembered consent.
#[tokio::test]
async fn authorization_code_flow_with_refresh_rotation() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid profile email offline_access",
        &challenge,
    );
    let callback = sign_in(&idp, &browser, &url, "demo-user").await;
    assert!(callback.starts_with(CONFIDENTIAL_REDIRECT), "{callback}");
    let params = query(&callback);
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], idp.issuer);
    let code = params["code"].clone();

    let (status, tokens) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap();

    // The ID token verifies against the JWKS and carries nonce, azp, auth_time and at_hash.
    let jwks: Value = idp
        .http
        .get(idp.url("/oauth2/v1/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwt_part(id_token, 0)["kid"].as_str().unwrap().to_owned();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let key = Jwk::from_value(key.clone()).unwrap();
    let verified = cryptoutil_jose::jws::verify(&key, JwsAlgorithm::ES256, id_token).unwrap();
    let claims: Value = serde_json::from_slice(&verified.payload).unwrap();
    assert_eq!(claims["iss"], idp.issuer);
    assert_eq!(claims["aud"], CONFIDENTIAL);
    assert_eq!(claims["azp"], CONFIDENTIAL);
    assert_eq!(claims["nonce"], "nonce-456");
    assert!(claims["auth_time"].is_i64());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(
        claims["at_hash"],
        cryptoutil_jose::b64::encode(&digest.as_ref()[..16])
    );
    assert_eq!(claims["email"], "demo-user@cryptoutil.demo.local");

    // Userinfo by scope, GET and POST.
    let info: Value = idp
        .http
        .get(idp.url("/oidc/v1/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["preferred_username"], "demo-user");
    assert_eq!(info["email_verified"], true);
    let response = idp
        .http
        .post(idp.url("/oidc/v1/userinfo"))
        .form(&[("access_token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = idp
        .http
        .get(idp.url("/oidc/v1/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // Refresh: rotation, narrowing only, the spent token revokes the family.
    let (status, rotated) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["scope"], "openid email");
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, refresh);
    let (status, body) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &second),
                ("scope", "openid kms:admin"),
            ],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // A refused narrowing did not spend it; a second client cannot use it.
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &second)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, body) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &second)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant")),
        "family revoked"
    );
    assert_eq!(
        idp.introspect(&access).await["active"],
        false,
        "the family's access tokens too"
    );

    // The session and the remembered consent skip both pages next time.
    let (_, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid profile",
        &challenge,
    );
    let response = browser.get(&url).send().await.unwrap();
    assert!(location(&response).starts_with(CONFIDENTIAL_REDIRECT));
    // prompt=consent asks again; prompt=none without a session fails with login_required.
    let response = browser
        .get(format!("{url}&prompt=consent"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/consent");
    let response = idp
        .browser()
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    let params = query(&location(&response));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "state-123");
    idp.stop().await;
}

#[tokio::test]
async fn code_reuse_revokes_what_the_first_use_issued_and_pkce_is_enforced() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let exchange = |code: String, verifier: String, client: &'static str, secret: &'static str| {
        let idp = &idp;
        async move {
            idp.token(
                client,
                secret,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CONFIDENTIAL_REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (status, first) = exchange(
        code.clone(),
        verifier.clone(),
        CONFIDENTIAL,
        CONFIDENTIAL_SECRET,
    )
    .await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(idp.introspect(&access).await["active"], true);
    let (status, again) = exchange(code, verifier, CONFIDENTIAL, CONFIDENTIAL_SECRET).await;
    assert_eq!(
        (status.as_u16(), again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(idp.introspect(&access).await["active"], false);

    // Wrong verifier, missing verifier, wrong redirect URI: each spends the code for nothing.
    for (verifier, redirect) in [
        ("x".repeat(43), CONFIDENTIAL_REDIRECT),
        (String::new(), CONFIDENTIAL_REDIRECT),
        (pkce().0, "https://localhost:8084/other"),
    ] {
        let (v, challenge) = pkce();
        let url = authorize_url(
            &idp,
            CONFIDENTIAL,
            CONFIDENTIAL_REDIRECT,
            "openid",
            &challenge,
        );
        let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
        let verifier = if redirect == CONFIDENTIAL_REDIRECT {
            verifier
        } else {
            v
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
        ];
        if !verifier.is_empty() {
            form.push(("code_verifier", &verifier));
        }
        let (status, body) = idp.token(CONFIDENTIAL, CONFIDENTIAL_SECRET, &form).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            ["invalid_grant", "invalid_request"].contains(&body["error"].as_str().unwrap()),
            "{body}"
        );
    }
    idp.stop().await;
}

#[tokio::test]
async fn authorization_errors_are_pages_or_redirects_to_the_validated_uri() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (_, challenge) = pkce();

    // Unknown client and unregistered redirect URI: a page, never a redirect.
    for url in [
        authorize_url(
            &idp,
            "no-such-client",
            CONFIDENTIAL_REDIRECT,
            "openid",
            &challenge,
        ),
        authorize_url(
            &idp,
            CONFIDENTIAL,
            "https://evil.example/cb",
            "openid",
            &challenge,
        ),
    ] {
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    // After the redirect URI is validated, errors go back with state and iss.
    let base = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let cases = [
        (
            base.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            base.replace(&format!("&code_challenge={challenge}"), ""),
            "invalid_request",
        ),
        (
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            base.replace("scope=openid", "scope=openid+kms%3Aadmin"),
            "invalid_scope",
        ),
        (format!("{base}&prompt=none"), "login_required"),
    ];
    for (url, error) in cases {
        let response = browser.get(&url).send().await.unwrap();
        let target = location(&response);
        assert!(target.starts_with(CONFIDENTIAL_REDIRECT), "{target}");
        let params = query(&target);
        assert_eq!(params["error"], error, "{url}");
        assert_eq!(params["state"], "state-123");
        assert_eq!(params["iss"], idp.issuer);
    }

    // Consent denied → access_denied.
    let response = browser.get(&base).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(&browser, "/oidc/v1/login").await;
    // A wrong password shows the form again with the error; a bad CSRF token is refused.
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", "demo-user"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("incorrect"));
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", "forged"),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
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
    assert_eq!(location(&response), "/oidc/v1/consent");
    let html = idp.page(&browser, "/oidc/v1/consent").await;
    assert!(html.contains("Demo") || html.contains("demo"), "{html}");
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let params = query(&location(&response));
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "state-123");

    // Pages without a sign-in in progress explain themselves.
    let response = idp
        .browser()
        .get(idp.url("/oidc/v1/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    idp.stop().await;
}

#[tokio::test]
async fn pushed_authorization_requests_and_the_public_client() {
    let idp = Idp::demo().await;
    let (verifier, challenge) = pkce();
    let (status, pushed) = idp
        .post_form(
            "/oauth2/v1/par",
            Some((CONFIDENTIAL, CONFIDENTIAL_SECRET)),
            &[
                ("response_type", "code"),
                ("client_id", CONFIDENTIAL),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("scope", "openid"),
                ("state", "state-123"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let mut url = url::Url::parse(&idp.url("/oauth2/v1/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CONFIDENTIAL)
        .append_pair("request_uri", request_uri);
    let browser = idp.browser();
    let callback = sign_in(&idp, &browser, url.as_str(), "demo-user").await;
    let code = query(&callback)["code"].clone();
    let (status, _) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200);
    // A request_uri works once.
    let response = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // The public SPA client: PKCE, no secret, and it cannot introspect.
    let (verifier, challenge) = pkce();
    let url = authorize_url(&idp, SPA, SPA_REDIRECT, "openid profile", &challenge);
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let (status, tokens) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = idp
        .post_form(
            "/oauth2/v1/introspect",
            None,
            &[("client_id", SPA), ("token", access)],
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    idp.stop().await;
}

#[tokio::test]
async fn private_key_jwt_clients_and_secret_rotation_through_the_admin_api() {
    let idp = Idp::demo().await;
    let mut key = Jwk::generate_ec(EcCurve::P256).unwrap();
    key.set_kid(Some("k1".to_owned()));
    let client_id = format!("jwt-client-{}", uuid::Uuid::now_v7());
    let admin = idp.http.clone();
    let response = admin
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&json!({
            "client_id": client_id,
            "name": "JWT test client",
            "auth_method": "private_key_jwt",
            "jwks": {"keys": [key.to_public().unwrap().to_value(false)]},
            "grant_types": ["client_credentials"],
            "scopes": ["kms:read"],
            "audiences": ["cryptoutil-kms"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = admin
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(
            &json!({"client_id": client_id, "name": "x", "auth_method": "none", "grant_types": []}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);

    let assertion = |jti: &str| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": idp.url("/oauth2/v1/token"),
            "jti": jti, "iat": now, "exp": now + 60,
        });
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), "k1".into());
        cryptoutil_jose::jws::sign(
            &key,
            JwsAlgorithm::ES256,
            claims.to_string().as_bytes(),
            Some(&header),
        )
        .unwrap()
    };
    let jwt = assertion(&uuid::Uuid::now_v7().to_string());
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", jwt.as_str()),
    ];
    let (status, body) = idp.post_form("/oauth2/v1/token", None, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "kms:read");
    let (status, body) = idp.post_form("/oauth2/v1/token", None, &form).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_client")),
        "replayed"
    );

    // Secret rotation: the new secret works at once, the old one during the grace period.
    let rotated: Value = admin
        .post(format!(
            "{}/admin/v1/clients/{KMS_CLIENT}/secret",
            idp.admin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    for secret in [new_secret, KMS_CLIENT_SECRET] {
        let (status, _) = idp
            .token(KMS_CLIENT, secret, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(status, 200);
    }
    let response = admin
        .delete(format!("{}/admin/v1/clients/{client_id}", idp.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion("another")),
            ],
        )
        .await;
    assert_eq!(status, 400, "a deleted client is gone");
    idp.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_redirects_only_to_registered_uris() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&idp, SPA, SPA_REDIRECT, "openid", &challenge);
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let (_, tokens) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // An unregistered post-logout URI is refused with a page and the session survives.
    let mut bad = url::Url::parse(&idp.url("/oidc/v1/logout")).unwrap();
    bad.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let response = browser.get(bad.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let (_, challenge) = pkce();
    let again = authorize_url(&idp, SPA, SPA_REDIRECT, "openid", &challenge);
    let response = browser.get(&again).send().await.unwrap();
    assert!(
        location(&response).starts_with(SPA_REDIRECT),
        "still signed in"
    );

    let mut good = url::Url::parse(&idp.url("/oidc/v1/logout")).unwrap();
    good.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://localhost:8084/")
        .append_pair("state", "bye");
    let response = browser.get(good.as_str()).send().await.unwrap();
    assert_eq!(location(&response), "https://localhost:8084/?state=bye");
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let response = browser.get(&again).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login", "signed out");
    idp.stop().await;
}
