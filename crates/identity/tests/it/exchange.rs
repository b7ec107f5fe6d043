//! Token exchange (RFC 8693) over real HTTPS: the demo resource server (`demo-rs`) exchanges a
//! signed-in user's token for a KMS-audience token acting for the user (`act`), delegation and
//! impersonation policy, a chain of two exchanges (nested `act`), introspection and revocation
//! of exchanged tokens, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use serde_json::{Value, json};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const RS: &str = "demo-rs";
const RS_SECRET: &str = "demo-rs-secret";
const KMS_AUDIENCE: &str = "cryptoutil-kms";

/// A confidential client registered through the admin API; returns its id and secret.
async fn register(idp: &Idp, prefix: &str, extra: Value) -> (String, String) {
    let client_id = format!("{prefix}-{}", uuid::Uuid::now_v7());
    let mut body = json!({
        "client_id": client_id,
        "name": "Token exchange test client",
        "auth_method": "client_secret_basic",
        "grant_types": [GRANT],
        "audiences": [KMS_AUDIENCE],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&body)
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

/// demo-user's access token from the SPA (public client, code + PKCE).
async fn user_token(idp: &Idp, scope: &str) -> String {
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(idp, SPA, SPA_REDIRECT, scope, &challenge);
    let code = query(&sign_in(idp, &browser, &url, "demo-user").await)["code"].clone();
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
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A token exchange by `client` with `subject_token` and the extra parameters.
async fn exchange(
    idp: &Idp,
    (client, secret): (&str, &str),
    subject_token: &str,
    extra: &[(&str, &str)],
) -> (reqwest::StatusCode, Value) {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    idp.token(client, secret, &form).await
}

fn error(status: reqwest::StatusCode, body: &Value) -> (u16, String) {
    (
        status.as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_resource_server_exchanges_a_user_token_for_a_kms_token_acting_for_the_user() {
    let idp = Idp::demo().await;
    let subject = user_token(&idp, "openid write:resource kms:encrypt").await;
    let subject_claims = jwt_part(&subject, 1);
    let (status, body) = exchange(
        &idp,
        (RS, RS_SECRET),
        &subject,
        &[("audience", KMS_AUDIENCE), ("scope", "kms:encrypt")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "kms:encrypt");
    assert!(body.get("refresh_token").is_none());
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in <= 300, "{expires_in}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_part(&token, 1);
    assert_eq!(jwt_part(&token, 0)["typ"], "at+jwt");
    assert_eq!(claims["sub"], subject_claims["sub"]);
    assert_eq!(claims["client_id"], RS);
    assert_eq!(claims["aud"], json!(KMS_AUDIENCE));
    assert_eq!(claims["act"], json!({"sub": RS, "client_id": RS}));
    assert_eq!(claims["auth_time"], subject_claims["auth_time"]);
    assert!(claims["exp"].as_i64().unwrap() <= subject_claims["exp"].as_i64().unwrap());

    // Introspection shows the actor; the resource server can revoke its token.
    let introspected = idp.introspect(&token).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["act"], json!({"sub": RS, "client_id": RS}));
    assert_eq!(introspected["client_id"], RS);
    assert_eq!(introspected["sub"], subject_claims["sub"]);
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/revoke",
            Some((RS, RS_SECRET)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(idp.introspect(&token).await, json!({"active": false}));

    // The refusals: wider scope, a target the resource server may not get, a token type we
    // do not take or issue, a missing or bad subject token.
    let refusals: [(&[(&str, &str)], &str); 5] = [
        (&[("scope", "kms:admin")], "invalid_scope"),
        (&[("audience", "cryptoutil-rs")], "invalid_target"),
        (
            &[("resource", "https://elsewhere.example/")],
            "invalid_target",
        ),
        (
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
            "invalid_request",
        ),
        (&[("actor_token_type", ACCESS_TOKEN)], "invalid_request"),
    ];
    for (extra, expected) in refusals {
        let (status, body) = exchange(&idp, (RS, RS_SECRET), &subject, extra).await;
        assert_eq!(
            error(status, &body),
            (400, expected.to_owned()),
            "{extra:?}: {body}"
        );
    }
    let (status, body) = idp
        .token(
            RS,
            RS_SECRET,
            &[
                ("grant_type", GRANT),
                ("subject_token", &subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        )
        .await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    let (status, body) = exchange(&idp, (RS, RS_SECRET), "not-a-token", &[]).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    // A revoked subject token is refused.
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/revoke",
            None,
            &[("client_id", SPA), ("token", &subject)],
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = exchange(&idp, (RS, RS_SECRET), &subject, &[]).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    // A client without the grant is refused before anything else.
    let (status, body) = exchange(&idp, (KMS_CLIENT, KMS_CLIENT_SECRET), &subject, &[]).await;
    assert_eq!(
        error(status, &body),
        (400, "unauthorized_client".to_owned()),
        "{body}"
    );
    idp.stop().await;
}

#[tokio::test]
async fn delegation_needs_may_act_and_impersonation_needs_the_client_setting() {
    let idp = Idp::demo().await;
    let subject = user_token(&idp, "openid write:resource").await;
    // Not in the SPA's may_act, no impersonation: refused.
    let (stranger, stranger_secret) = register(&idp, "stranger", json!({})).await;
    let (status, body) = exchange(&idp, (&stranger, &stranger_secret), &subject, &[]).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    // Allowed to impersonate: a token for the user without act.
    let (gateway, gateway_secret) = register(&idp, "gateway", json!({"impersonation": true})).await;
    let (status, body) = exchange(&idp, (&gateway, &gateway_secret), &subject, &[]).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], jwt_part(&subject, 1)["sub"]);
    assert_eq!(claims["client_id"], gateway.as_str());
    assert!(claims.get("act").is_none(), "{claims}");
    assert_eq!(claims["scope"], "openid write:resource");
    idp.stop().await;
}

#[tokio::test]
async fn a_chain_of_two_exchanges_nests_act() {
    let idp = Idp::demo().await;
    // app (client_credentials, lets hop1 act) → hop1 (lets hop2 act) → hop2.
    let (hop2, hop2_secret) = register(&idp, "hop2", json!({})).await;
    let (hop1, hop1_secret) = register(&idp, "hop1", json!({"may_act": [hop2]})).await;
    let (app, app_secret) = register(
        &idp,
        "app",
        json!({
            "grant_types": ["client_credentials"],
            "scopes": ["kms:encrypt", "kms:decrypt"],
            "may_act": [hop1],
        }),
    )
    .await;
    let (status, body) = idp
        .token(&app, &app_secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    let app_token = body["access_token"].as_str().unwrap().to_owned();

    let (status, body) = exchange(&idp, (&hop1, &hop1_secret), &app_token, &[]).await;
    assert_eq!(status, 200, "{body}");
    let first = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_part(&first, 1)["act"],
        json!({"sub": hop1, "client_id": hop1})
    );
    // hop2 is not in app's may_act, but the first token is hop1's, and hop1 lets hop2 act.
    let (status, body) = exchange(
        &idp,
        (&hop2, &hop2_secret),
        &first,
        &[("scope", "kms:encrypt"), ("audience", KMS_AUDIENCE)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let second = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_part(&second, 1);
    assert_eq!(claims["sub"], app.as_str());
    assert_eq!(claims["client_id"], hop2.as_str());
    assert_eq!(claims["scope"], "kms:encrypt");
    let chain = json!({"sub": hop2, "client_id": hop2, "act": {"sub": hop1, "client_id": hop1}});
    assert_eq!(claims["act"], chain);
    assert_eq!(idp.introspect(&second).await["act"], chain);
    // hop2 cannot skip hop1: app's own token is not hop2's to exchange.
    let (status, body) = exchange(&idp, (&hop2, &hop2_secret), &app_token, &[]).await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    // An actor token must be the requesting client's own.
    let (status, body) = exchange(
        &idp,
        (&hop2, &hop2_secret),
        &first,
        &[
            ("actor_token", &app_token),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(
        error(status, &body),
        (400, "invalid_request".to_owned()),
        "{body}"
    );
    idp.stop().await;
}

#[tokio::test]
async fn discovery_lists_token_exchange() {
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
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&json!(GRANT)), "{path}: {grants:?}");
    }
    idp.stop().await;
}

/// What the stand-in KMS saw: the bearer token of each encrypt call and its body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in for the KMS's encrypt endpoint over TLS (the demo PKI's `kms` certificate): it
/// records the bearer token and answers a fixed compact JWE. The real KMS checks the token; here
/// the test reads the claims the resource server obtained.
async fn stand_in_kms(idp: &Idp) -> (cryptoutil_server::RunningServer, String, Seen) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    let seen = Seen::default();
    let router = axum::Router::new()
        .route(
            "/service/api/v1/elastickey/{id}/encrypt",
            axum::routing::post(
                |State(seen): State<Seen>,
                 Path(id): Path<String>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    assert_eq!(id, "notes-key");
                    let token = headers["authorization"]
                        .to_str()
                        .unwrap()
                        .strip_prefix("Bearer ")
                        .unwrap()
                        .to_owned();
                    seen.lock().unwrap().push((token, body.to_vec()));
                    "eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn"
                },
            ),
        )
        .with_state(seen.clone());
    let mut settings = cryptoutil_server::ServerSettings::with_ports(0, 0);
    cryptoutil_testkit::tls::free_ports(&mut settings, idp.pki(), "kms");
    let tls = cryptoutil_server::tls_setup::build(&settings, true, None).unwrap();
    let server = cryptoutil_server::start(cryptoutil_server::ServerSpec {
        name: "kms",
        settings,
        public: router,
        admin_extra: axum::Router::new(),
        checks: Vec::new(),
        tls: tls.setup.clone(),
    })
    .await
    .unwrap();
    let url = format!(
        "https://localhost:{}/service/api/v1",
        server.public_addr.port()
    );
    (server, url, seen)
}

/// POSTs a note to the resource server with `token`.
async fn post_note(idp: &Idp, rs: &str, token: &str, note: &str) -> (reqwest::StatusCode, Value) {
    let response = idp
        .http
        .post(format!("{rs}/api/v1/protected/notes"))
        .bearer_auth(token)
        .json(&json!({"note": note}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_resource_server_encrypts_a_note_at_the_kms_acting_for_the_user() {
    use cryptoutil_identity::resource_server;
    let idp = Idp::demo().await;
    let (kms, kms_url, seen) = stand_in_kms(&idp).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("demo-rs-secret");
    std::fs::write(&secret_file, format!("{RS_SECRET}\n")).unwrap();
    let mut settings =
        cryptoutil_testkit::identity::resource_server_settings(idp.pki(), &idp.issuer);
    settings.kms.url = Some(kms_url);
    settings.kms.elastic_key_id = Some("notes-key".to_owned());
    settings.kms.client_secret_file = Some(secret_file);
    let rs = resource_server::start(settings, true, None).await.unwrap();
    let rs_url = format!("https://localhost:{}", rs.server.public_addr.port());

    let user = user_token(&idp, "openid write:resource kms:encrypt").await;
    let (status, body) = post_note(&idp, &rs_url, &user, "meet at noon").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ciphertext"], "eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn");
    assert_eq!(body["actor"], RS);
    let user_claims = jwt_part(&user, 1);
    assert_eq!(body["subject"], user_claims["sub"]);
    // The KMS got the note and a token for itself, acting for the user.
    let (token, note) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(note, b"meet at noon");
    assert_ne!(token, user, "the user's own token never reaches the KMS");
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["aud"], json!(KMS_AUDIENCE));
    assert_eq!(claims["sub"], user_claims["sub"]);
    assert_eq!(claims["client_id"], RS);
    assert_eq!(claims["scope"], "kms:encrypt");
    assert_eq!(claims["act"], json!({"sub": RS, "client_id": RS}));

    // A user token without kms:encrypt: Identity refuses the exchange, the KMS is not called.
    let narrow = user_token(&idp, "openid write:resource").await;
    let (status, body) = post_note(&idp, &rs_url, &narrow, "meet at noon").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "invalid_scope");
    assert!(seen.lock().unwrap().is_empty());
    // Bad notes and missing tokens are refused before anything is exchanged.
    let (status, _) = post_note(&idp, &rs_url, &user, " ").await;
    assert_eq!(status, 400);
    let response = idp
        .http
        .post(format!("{rs_url}/api/v1/protected/notes"))
        .json(&json!({"note": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    rs.stop().await;

    // Without a KMS configured the route says so (503).
    let settings = cryptoutil_testkit::identity::resource_server_settings(idp.pki(), &idp.issuer);
    let rs = resource_server::start(settings, true, None).await.unwrap();
    let rs_url = format!("https://localhost:{}", rs.server.public_addr.port());
    let (status, body) = post_note(&idp, &rs_url, &user, "meet at noon").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("kms.url"),
        "{body}"
    );
    rs.stop().await;
    kms.shutdown();
    kms.wait().await;
    idp.stop().await;
}

#[tokio::test]
async fn revoking_the_users_grant_revokes_what_was_exchanged_from_it() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        SPA,
        SPA_REDIRECT,
        "openid offline_access write:resource kms:encrypt",
        &challenge,
    );
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
    let subject = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = exchange(
        &idp,
        (RS, RS_SECRET),
        subject,
        &[("audience", KMS_AUDIENCE), ("scope", "kms:encrypt")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(idp.introspect(&exchanged).await["active"], true);
    // The user's client revokes its refresh token: the whole grant goes, the exchanged token too.
    let (status, _) = idp
        .post_form(
            "/oauth2/v1/revoke",
            None,
            &[("client_id", SPA), ("token", refresh)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(idp.introspect(subject).await, json!({"active": false}));
    assert_eq!(idp.introspect(&exchanged).await, json!({"active": false}));
    idp.stop().await;
}
