//! Dynamic client registration (RFC 7591) and management (RFC 7592), issue 27 item 3: open
//! and initial-access-token policies, every RFC 7591 §3.2.2 error code, the bad inputs of the
//! issue (huge metadata, userinfo, `javascript:`/`data:`, fragments, wildcards, unknown
//! fields), the management URI with right and wrong tokens, registered clients running the
//! code flow, the rate limit, and the same on PostgreSQL.

use crate::common;

use common::{Idp, authorize_url, jwt_part, pkce, query, sign_in};
use cryptoutil_identity::registration::RegistrationError;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm};
use cryptoutil_server::config::RateLimitSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REGISTER: &str = "/oauth2/v1/register";
const WEB_REDIRECT: &str = "https://app.example/cb";

/// POSTs `body` (JSON text) to the registration endpoint, with an initial access token if
/// given. Returns the status, the `WWW-Authenticate` header and the body.
async fn register_raw(
    idp: &Idp,
    token: Option<&str>,
    body: String,
) -> (StatusCode, Option<String>, Value) {
    let mut request = idp
        .http
        .post(idp.url(REGISTER))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.unwrap()).await
}

async fn register(idp: &Idp, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let (status, _, body) = register_raw(idp, token, body.to_string()).await;
    (status, body)
}

async fn read(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, challenge, body)
}

/// GET/PUT/DELETE on a registration_client_uri.
async fn manage(
    idp: &Idp,
    method: reqwest::Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = idp.http.request(method, uri);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    read(request.send().await.unwrap()).await
}

/// A `--dev --demo` server (open registration) whose registration rate limit leaves room for
/// a test's many requests, after `change`.
async fn demo(change: impl FnOnce(&mut cryptoutil_identity::config::IdentitySettings)) -> Idp {
    Idp::demo_with(|s| {
        s.rate_limits.registration = RateLimitSettings {
            per_second: 1000,
            burst: 1000,
        };
        change(s);
    })
    .await
}

fn web_client() -> Value {
    json!({
        "client_name": "Registered web app",
        "redirect_uris": [WEB_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile offline_access",
    })
}

fn expect_error(status: StatusCode, body: &Value, code: &str) {
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some(code)),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}

async fn discovery(idp: &Idp) -> Value {
    idp.http
        .get(idp.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs authorization code + PKCE for `client_id` as the demo user and redeems the code with
/// `auth` (`Some(secret)`: client_secret_basic; `None`: a public client).
async fn code_flow(idp: &Idp, client_id: &str, redirect: &str, secret: Option<&str>) -> Value {
    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(idp, client_id, redirect, "openid profile", &challenge);
    let callback = sign_in(idp, &browser, &url, "demo-user").await;
    assert!(callback.starts_with(redirect), "{callback}");
    let code = query(&callback)["code"].clone();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, tokens) = match secret {
        Some(secret) => idp.token(client_id, secret, &form).await,
        None => {
            form.push(("client_id", client_id));
            idp.post_form("/oauth2/v1/token", None, &form).await
        }
    };
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn open_registration_then_the_code_flow_with_client_secret_basic() {
    let idp = demo(|_| {}).await;
    assert_eq!(
        discovery(&idp).await["registration_endpoint"],
        idp.url(REGISTER)
    );
    let mut request = web_client();
    request["colour"] = "blue".into();
    request["tos_uri"] = "https://app.example/tos".into();
    let (status, client) = register(&idp, None, &request).await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(client_id).is_ok(), "{client_id}");
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(client["client_secret_expires_at"], 0);
    assert!(client["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(client["redirect_uris"], json!([WEB_REDIRECT]));
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(client["response_types"], json!(["code"]));
    assert_eq!(client["scope"], "openid profile offline_access");
    assert_eq!(client["tos_uri"], "https://app.example/tos");
    assert_eq!(client["application_type"], "web");
    assert!(
        client.get("colour").is_none(),
        "unknown metadata is ignored"
    );
    assert_eq!(
        client["registration_client_uri"],
        format!("{}/{client_id}", idp.url(REGISTER))
    );
    let secret = client["client_secret"].as_str().unwrap();
    assert!(client["registration_access_token"].as_str().unwrap().len() >= 43);
    // Stored hashed, like every client's secret.
    let stored = idp
        .identity
        .store()
        .client(client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secrets[0].hash.starts_with("pbkdf2"));
    assert!(!stored.secrets[0].hash.contains(secret));

    let tokens = code_flow(&idp, client_id, WEB_REDIRECT, Some(secret)).await;
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["aud"],
        client_id
    );
    let (status, _) = idp
        .token(
            client_id,
            "wrong-secret",
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(status, 401);

    // A native public client on a loopback redirect runs the flow with PKCE alone.
    let native_redirect = "http://127.0.0.1:45123/callback";
    let (status, native) = register(
        &idp,
        None,
        &json!({
            "application_type": "native",
            "redirect_uris": [native_redirect],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile",
        }),
    )
    .await;
    assert_eq!(status, 201, "{native}");
    assert!(native.get("client_secret").is_none());
    assert!(native.get("client_secret_expires_at").is_none());
    assert_eq!(native["client_name"], native["client_id"]);
    let native_id = native["client_id"].as_str().unwrap();
    code_flow(&idp, native_id, native_redirect, None).await;
    idp.stop().await;
}

#[tokio::test]
async fn the_management_uri_answers_only_to_its_own_token() {
    let idp = demo(|_| {}).await;
    let (_, a) = register(&idp, None, &web_client()).await;
    let (_, b) = register(&idp, None, &web_client()).await;
    let a_uri = a["registration_client_uri"].as_str().unwrap();
    let a_token = a["registration_access_token"].as_str().unwrap();
    let b_token = b["registration_access_token"].as_str().unwrap();
    let a_id = a["client_id"].as_str().unwrap();
    let a_secret = a["client_secret"].as_str().unwrap();

    let (status, _, read) = manage(&idp, reqwest::Method::GET, a_uri, Some(a_token), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["client_id"], a_id);
    assert_eq!(read["redirect_uris"], a["redirect_uris"]);
    assert!(read.get("client_secret").is_none(), "only the hash is kept");
    assert!(read.get("registration_access_token").is_none());

    let unknown = format!("{}/{}", idp.url(REGISTER), uuid::Uuid::now_v7());
    for (uri, token) in [
        (a_uri, Some(b_token)),
        (a_uri, Some("not-a-token")),
        (a_uri, None),
        (unknown.as_str(), Some(a_token)),
    ] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let body = (method == reqwest::Method::PUT).then(web_client);
            let (status, challenge, body) =
                manage(&idp, method.clone(), uri, token, body.as_ref()).await;
            assert_eq!(status, 401, "{method} {uri} {token:?}: {body}");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer error=\"invalid_token\""),
                "{method}"
            );
            assert_eq!(body["error"], "invalid_token");
        }
    }

    // PUT replaces the metadata, with the same validation.
    let mut update = web_client();
    update["client_id"] = a_id.into();
    update["client_name"] = "Renamed".into();
    update["redirect_uris"] = json!(["https://app.example/cb2"]);
    let put = |body: Value| {
        let idp = &idp;
        async move { manage(idp, reqwest::Method::PUT, a_uri, Some(a_token), Some(&body)).await }
    };
    let mut other_id = update.clone();
    other_id["client_id"] = b["client_id"].clone();
    let (status, _, body) = put(other_id).await;
    expect_error(status, &body, "invalid_client_metadata");
    let mut no_id = update.clone();
    no_id.as_object_mut().unwrap().remove("client_id");
    let (status, _, body) = put(no_id).await;
    expect_error(status, &body, "invalid_client_metadata");
    let mut wrong_secret = update.clone();
    wrong_secret["client_secret"] = "not-the-secret".into();
    let (status, _, body) = put(wrong_secret).await;
    expect_error(status, &body, "invalid_client_metadata");
    let mut fragment = update.clone();
    fragment["redirect_uris"] = json!(["https://app.example/cb#x"]);
    let (status, _, body) = put(fragment).await;
    expect_error(status, &body, "invalid_redirect_uri");
    let mut good = update.clone();
    good["client_secret"] = a_secret.into();
    let (status, _, body) = put(good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_name"], "Renamed");
    assert_eq!(body["redirect_uris"], json!(["https://app.example/cb2"]));
    assert!(body.get("client_secret").is_none(), "the secret is kept");
    // The change is seen at once (the client cache forgets it) and the secret still works.
    code_flow(&idp, a_id, "https://app.example/cb2", Some(a_secret)).await;

    // DELETE: 204, then the token and the client are gone.
    let (status, _, _) = manage(&idp, reqwest::Method::DELETE, a_uri, Some(a_token), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = manage(&idp, reqwest::Method::GET, a_uri, Some(a_token), None).await;
    assert_eq!(status, 401);
    let (status, body) = idp
        .token(a_id, a_secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    idp.stop().await;
}

#[tokio::test]
async fn bad_metadata_gets_the_rfc_7591_error_never_a_500() {
    let idp = demo(|_| {}).await;
    let with = |field: &str, value: Value| {
        let mut body = web_client();
        body[field] = value;
        body
    };
    for uri in [
        "https://app.example/cb#fragment",
        "https://user:password@app.example/cb",
        "https://user@app.example/cb",
        "javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "https://*.app.example/cb",
        "https://app.example/*",
        "http://app.example/cb",
        "http://localhost:8080/cb",
        "com.example.app:/cb",
        "not a uri",
    ] {
        let (status, body) = register(&idp, None, &with("redirect_uris", json!([uri]))).await;
        expect_error(status, &body, "invalid_redirect_uri");
    }
    // Loopback http is for native applications only.
    let (status, body) = register(
        &idp,
        None,
        &with("redirect_uris", json!(["http://127.0.0.1:9999/cb"])),
    )
    .await;
    expect_error(status, &body, "invalid_redirect_uri");
    let key = Jwk::generate_ec(EcCurve::P256).unwrap();
    for (field, value) in [
        ("token_endpoint_auth_method", json!("client_secret_jwt")),
        ("token_endpoint_auth_method", json!(42)),
        ("grant_types", json!(["implicit"])),
        ("grant_types", json!(["client_credentials"])),
        ("response_types", json!(["token"])),
        ("scope", json!("openid kms:admin")),
        ("jwks_uri", json!("https://app.example/jwks")),
        ("jwks", json!({"keys": [key.to_value(true)]})),
        ("client_uri", json!("javascript:alert(1)")),
        ("logo_uri", json!("data:image/png;base64,AAAA")),
        ("policy_uri", json!("https://u:p@app.example/policy")),
        ("application_type", json!("toaster")),
        ("client_name", json!("x".repeat(300))),
        ("redirect_uris", json!("https://app.example/cb")),
        ("client_id", json!("my-own-id")),
    ] {
        let (status, body) = register(&idp, None, &with(field, value.clone())).await;
        expect_error(status, &body, "invalid_client_metadata");
        assert!(!body.to_string().contains(&"x".repeat(100)), "bounded echo");
    }
    // private_key_jwt with a public key is fine.
    let mut pkjwt = with("token_endpoint_auth_method", json!("private_key_jwt"));
    pkjwt["jwks"] = json!({"keys": [key.to_public().unwrap().to_value(false)]});
    let (status, body) = register(&idp, None, &pkjwt).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["jwks"]["keys"][0]["kty"], "EC");
    assert!(body.get("client_secret").is_none());

    // Huge, deep, malformed or non-object bodies.
    let huge = with("client_name", json!("a".repeat(200_000)));
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    for raw in [
        huge.to_string(),
        deep,
        "{\"redirect_uris\":".to_owned(),
        "[]".to_owned(),
        String::new(),
        "\u{0}\u{1}".to_owned(),
    ] {
        let (status, _, body) = register_raw(&idp, None, raw).await;
        expect_error(status, &body, "invalid_client_metadata");
    }
    // Software statements: this server trusts none by default.
    let statement =
        cryptoutil_jose::jws::sign(&key, JwsAlgorithm::ES256, br#"{"software_id":"x"}"#, None)
            .unwrap();
    let (status, body) = register(&idp, None, &with("software_statement", statement.into())).await;
    expect_error(status, &body, "unapproved_software_statement");
    idp.stop().await;
}

#[tokio::test]
async fn software_statements_signed_by_a_trusted_key_win_over_the_request() {
    let mut trusted = Jwk::generate_ec(EcCurve::P256).unwrap();
    trusted.set_kid(Some("vendor-1".to_owned()));
    let public = json!({"keys": [trusted.to_public().unwrap().to_value(false)]});
    let idp = demo(|s| s.registration.software_statement_jwks = Some(public)).await;
    let sign = |key: &Jwk, claims: Value| {
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), "vendor-1".into());
        cryptoutil_jose::jws::sign(
            key,
            JwsAlgorithm::ES256,
            claims.to_string().as_bytes(),
            Some(&header),
        )
        .unwrap()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut request = web_client();
    request["software_statement"] = sign(
        &trusted,
        json!({"iss": "vendor", "iat": now, "exp": now + 300,
               "software_id": "vendor-app", "client_name": "Vendor App"}),
    )
    .into();
    let (status, body) = register(&idp, None, &request).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["client_name"], "Vendor App", "the statement wins");
    assert_eq!(body["software_id"], "vendor-app");
    assert!(body["software_statement"].is_string());

    let mut impostor = Jwk::generate_ec(EcCurve::P256).unwrap();
    impostor.set_kid(Some("vendor-1".to_owned()));
    for bad in [
        sign(&impostor, json!({"software_id": "x"})).into(),
        sign(&trusted, json!({"exp": now - 3600})).into(),
        sign(
            &trusted,
            json!({"redirect_uris": ["https://evil.example/cb#x"], "client_id": "x"}),
        )
        .into(),
        json!("not.a.statement"),
        json!({"an": "object"}),
    ] {
        let mut request = web_client();
        request["software_statement"] = bad;
        let (status, body) = register(&idp, None, &request).await;
        expect_error(status, &body, "invalid_software_statement");
    }
    // The statement's redirect URIs are checked like the request's.
    let mut request = web_client();
    request["software_statement"] = sign(
        &trusted,
        json!({"redirect_uris": ["https://evil.example/cb#x"]}),
    )
    .into();
    let (status, body) = register(&idp, None, &request).await;
    expect_error(status, &body, "invalid_redirect_uri");
    idp.stop().await;
}

async fn create_iat(idp: &Idp, body: Value) -> (StatusCode, Value) {
    let response = idp
        .http
        .post(format!("{}/admin/v1/initial-access-tokens", idp.admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn initial_access_tokens_gate_registration_with_a_cap_and_an_expiry() {
    let idp = demo(|s| s.registration.open = Some(false)).await;
    assert_eq!(
        discovery(&idp).await["registration_endpoint"],
        idp.url(REGISTER)
    );
    let (status, challenge, body) = register_raw(&idp, None, web_client().to_string()).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));

    for bad in [
        json!({"max_clients": 0}),
        json!({"expires_in": 10}),
        json!({"expires_in": 400 * 24 * 3600}),
        json!({"colour": "blue"}),
    ] {
        assert_eq!(create_iat(&idp, bad.clone()).await.0, 400, "{bad}");
    }
    let (status, created) = create_iat(&idp, json!({"max_clients": 2, "expires_in": 3600})).await;
    assert_eq!(status, 201, "{created}");
    let iat = created["initial_access_token"].as_str().unwrap().to_owned();
    let iat_id = created["id"].as_str().unwrap().to_owned();
    assert!(created.get("token_hash").is_none());

    for _ in 0..2 {
        let (status, body) = register(&idp, Some(&iat), &web_client()).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = register(&idp, Some(&iat), &web_client()).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_token")),
        "cap"
    );
    // Refused metadata does not spend a slot.
    let (_, second) = create_iat(&idp, json!({"max_clients": 1})).await;
    let second_token = second["initial_access_token"].as_str().unwrap().to_owned();
    let (status, body) = register(
        &idp,
        Some(&second_token),
        &json!({"redirect_uris": ["javascript:x"]}),
    )
    .await;
    expect_error(status, &body, "invalid_redirect_uri");

    let list: Value = idp
        .http
        .get(format!("{}/admin/v1/initial-access-tokens", idp.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tokens = list["initial_access_tokens"].as_array().unwrap();
    let first = tokens.iter().find(|t| t["id"] == iat_id.as_str()).unwrap();
    assert_eq!(first["clients_created"], 2);
    assert!(!list.to_string().contains(&iat), "values are never listed");
    let unused = tokens.iter().find(|t| t["id"] == second["id"]).unwrap();
    assert_eq!(unused["clients_created"], 0);

    // Expiry: one second past it the token is refused (checked at the service with a clock).
    let services = &idp.identity.services;
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    let expired = services
        .registration
        .register(
            Some(&second_token),
            web_client().to_string().as_bytes(),
            later,
        )
        .await;
    assert!(
        matches!(expired, Err(RegistrationError::InvalidToken(_))),
        "{expired:?}"
    );

    // Revocation.
    let response = idp
        .http
        .delete(format!(
            "{}/admin/v1/initial-access-tokens/{}",
            idp.admin,
            second["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = register(&idp, Some(&second_token), &web_client()).await;
    assert_eq!(status, 401, "revoked");
    let response = idp
        .http
        .delete(format!(
            "{}/admin/v1/initial-access-tokens/no-such",
            idp.admin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    idp.stop().await;
}

#[tokio::test]
async fn registration_can_be_switched_off() {
    let idp = demo(|s| s.registration.enabled = false).await;
    assert!(discovery(&idp).await.get("registration_endpoint").is_none());
    let (status, body) = register(&idp, None, &web_client()).await;
    assert_eq!(status, 404, "{body}");
    idp.stop().await;
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let idp = Idp::demo_with(|s| {
        s.rate_limits.registration = RateLimitSettings {
            per_second: 1,
            burst: 2,
        };
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            register(&idp, None, &json!({"redirect_uris": ["bad"]}))
                .await
                .0,
        );
    }
    assert_eq!(statuses[0], 400);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    // The other endpoints have their own limit.
    assert_eq!(discovery(&idp).await["issuer"], idp.issuer.as_str());
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_on_postgres() {
    use cryptoutil_identity::server::Seeding;
    use cryptoutil_identity::storage::DatabaseSettings;
    use cryptoutil_server::config::Secret;
    let Some(db) = cryptoutil_testkit::postgres::TestDatabase::create("identity_register").await
    else {
        return;
    };
    let pki = cryptoutil_server::DevPki::generate().unwrap();
    let mut settings = common::settings(&pki);
    settings.database = DatabaseSettings::with_url(&db.url);
    settings.keys.encryption_key = Some(Secret::new(
        cryptoutil_identity::signing::KeyEncryptionKey::generate()
            .unwrap()
            .to_base64url()
            .to_string(),
    ));
    settings.registration.open = Some(false);
    let identity = cryptoutil_identity::server::start(settings, false, None, Some(Seeding::Demo))
        .await
        .unwrap();
    let issuer = identity.issuer();
    let idp = Idp::from_running(identity, issuer, pki);
    let (_, created) = create_iat(&idp, json!({"max_clients": 3})).await;
    let iat = created["initial_access_token"].as_str().unwrap().to_owned();
    // Concurrent registrations never pass the cap.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let request = idp
            .http
            .post(idp.url(REGISTER))
            .bearer_auth(&iat)
            .json(&web_client());
        racing.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let results = racing.join_all().await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, _)| s.as_u16() == 201 || s.as_u16() == 401)
    );
    let client = created[0];
    let secret = client["client_secret"].as_str().unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    code_flow(&idp, client_id, WEB_REDIRECT, Some(secret)).await;
    let uri = client["registration_client_uri"].as_str().unwrap();
    let token = client["registration_access_token"].as_str().unwrap();
    let (status, _, body) = manage(&idp, reqwest::Method::GET, uri, Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = manage(&idp, reqwest::Method::DELETE, uri, Some(token), None).await;
    assert_eq!(status, 204);
    idp.stop().await;
    db.drop().await;
}
