//! The sample resource server against a real Identity server, both in-process over HTTPS on
//! free ports: token validation (signature, issuer, audience, expiry), scopes, the bounded
//! write route, RFC 6750 challenges, readiness, the single-page client's routes and CSP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Idp, KMS_CLIENT, KMS_CLIENT_SECRET, SPA, SPA_REDIRECT};
use cryptoutil_identity::config::ResourceServerSettings;
use cryptoutil_identity::resource_server::{self, ResourceServer, StartError};
use reqwest::StatusCode;
use serde_json::{Value, json};

const RESOURCE: &str = "/api/v1/protected/resource";

/// A resource server trusting `idp`, with its certificate from `idp`'s demo PKI.
struct Rs {
    rs: ResourceServer,
    url: String,
    admin: String,
}

fn rs_settings(idp: &Idp) -> ResourceServerSettings {
    cryptoutil_testkit::identity::resource_server_settings(idp.pki(), &idp.issuer)
}

impl Rs {
    async fn start(idp: &Idp) -> Self {
        Self::start_with(idp, |_| {}).await
    }

    async fn start_with(idp: &Idp, change: impl FnOnce(&mut ResourceServerSettings)) -> Self {
        let mut settings = rs_settings(idp);
        change(&mut settings);
        let rs = resource_server::start(settings, true, None).await.unwrap();
        let url = format!("https://127.0.0.1:{}", rs.server.public_addr.port());
        let admin = format!("https://127.0.0.1:{}", rs.server.admin_addr.port());
        Self { rs, url, admin }
    }
}

/// Registers a confidential client_credentials client with `scopes` and audience
/// `cryptoutil-rs` through the admin API; returns (client_id, secret).
async fn register_client(idp: &Idp, scopes: &[&str]) -> (String, String) {
    let client_id = format!("rs-test-{}", uuid::Uuid::now_v7());
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&json!({
            "client_id": client_id,
            "name": "Resource server test client",
            "auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "scopes": scopes,
            "audiences": ["cryptoutil-rs"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        client_id,
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn token_for(idp: &Idp, client: &(String, String), scope: &str) -> String {
    let (status, body) = idp
        .token(
            &client.0,
            &client.1,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// (status, WWW-Authenticate, content type, JSON body) of a call to the resource.
async fn call(
    idp: &Idp,
    rs: &Rs,
    method: reqwest::Method,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, String, Value) {
    let mut request = idp.http.request(method, format!("{}{RESOURCE}", rs.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> (StatusCode, Option<String>, String, Value) {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, challenge, content_type, json)
}

fn assert_invalid_token(answer: &(StatusCode, Option<String>, String, Value), code: &str) {
    let (status, challenge, content_type, body) = answer;
    assert_eq!(*status, 401, "{body}");
    let challenge = challenge.as_deref().unwrap();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["status"], 401);
}

/// Calls until `done` holds for the answer or 30 s pass (waiting for a cache or a token to
/// expire; the assertion is on the answer, not on the time taken).
async fn until<F>(mut attempt: impl AsyncFnMut() -> F, done: impl Fn(&F) -> bool) -> F {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = attempt().await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn health_is_public_and_the_sample_client_is_served_under_a_strict_csp() {
    let idp = Idp::demo().await;
    let rs = Rs::start(&idp).await;

    let response = idp
        .http
        .get(format!("{}/api/v1/public/health", rs.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");

    let origin = idp.issuer.clone();
    for path in ["/", "/callback"] {
        let response = idp
            .http
            .get(format!("{}{path}?code=x&state=y", rs.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            csp.contains(&format!("connect-src 'self' {origin};")),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("form-action 'self' {origin};")),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<script type=\"module\" src=\"/spa/app.js\">"));
        assert!(html.contains("id=\"sign-in\""));
    }
    for (path, content_type) in [
        ("/spa/app.js", "text/javascript; charset=utf-8"),
        ("/spa/app.css", "text/css; charset=utf-8"),
    ] {
        let response = idp
            .http
            .get(format!("{}{path}", rs.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let config: Value = idp
        .http
        .get(format!("{}/spa/config.json", rs.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], idp.issuer);
    assert_eq!(config["client_id"], SPA);
    assert_eq!(
        config["scope"],
        "openid profile email read:resource write:resource"
    );
    assert_eq!(config["resource"], RESOURCE);

    let ready = idp
        .http
        .get(format!("{}/admin/v1/readyz", rs.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ok", "{ready}");

    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn tokens_are_refused_with_rfc6750_challenges_and_spec_error_codes() {
    let idp = Idp::demo().await;
    let rs = Rs::start(&idp).await;

    // No token: a challenge without an error code (RFC 6750 §3.1), a problem that says why.
    let (status, challenge, content_type, body) =
        call(&idp, &rs, reqwest::Method::GET, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"cryptoutil-rs\""));
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["error"], "missing_token");
    let response = idp
        .http
        .get(format!("{}{RESOURCE}", rs.url))
        .basic_auth("demo-user", Some("demo-user-password"))
        .send()
        .await
        .unwrap();
    let (status, challenge, _, body) = answer(response).await;
    assert_eq!(status, 401);
    assert!(!challenge.unwrap().contains("error="));
    assert_eq!(body["error"], "missing_token");

    // Malformed.
    assert_invalid_token(
        &call(&idp, &rs, reqwest::Method::GET, Some("not-a-jwt"), None).await,
        "invalid_token",
    );

    let client = register_client(&idp, &["read:resource", "write:resource"]).await;
    let token = token_for(&idp, &client, "read:resource").await;

    // Tampered signature.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = signature.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{signed}.{}", String::from_utf8(bytes).unwrap());
    assert_invalid_token(
        &call(&idp, &rs, reqwest::Method::GET, Some(&tampered), None).await,
        "invalid_signature",
    );

    // Another audience: demo-kms-client's tokens are for cryptoutil-kms.
    let (status, body) = idp
        .token(
            KMS_CLIENT,
            KMS_CLIENT_SECRET,
            &[("grant_type", "client_credentials"), ("scope", "kms:read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let kms_token = body["access_token"].as_str().unwrap();
    assert_invalid_token(
        &call(&idp, &rs, reqwest::Method::GET, Some(kms_token), None).await,
        "invalid_audience",
    );

    // Another issuer: a second Identity with its own keys.
    let other = Idp::demo().await;
    let stranger = register_client(&other, &["read:resource"]).await;
    let foreign = token_for(&other, &stranger, "read:resource").await;
    assert_invalid_token(
        &call(&idp, &rs, reqwest::Method::GET, Some(&foreign), None).await,
        "invalid_issuer",
    );

    // The untouched token works.
    let (status, _, _, _) = call(&idp, &rs, reqwest::Method::GET, Some(&token), None).await;
    assert_eq!(status, 200);

    other.stop().await;
    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn expired_tokens_are_refused_as_token_expired() {
    let idp = Idp::demo_with(|s| {
        s.tokens.access_token_lifetime = cryptoutil_server::config::HumanDuration::from_secs(1);
    })
    .await;
    let rs = Rs::start_with(&idp, |s| {
        s.identity.clock_skew = cryptoutil_server::config::HumanDuration::from_secs(0);
    })
    .await;
    let client = register_client(&idp, &["read:resource"]).await;
    let token = token_for(&idp, &client, "read:resource").await;
    let answer = until(
        async || call(&idp, &rs, reqwest::Method::GET, Some(&token), None).await,
        |(status, ..)| *status == 401,
    )
    .await;
    assert_invalid_token(&answer, "token_expired");
    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn scopes_decide_reading_and_writing_and_writes_are_bounded() {
    let idp = Idp::demo().await;
    let rs = Rs::start(&idp).await;
    let reader = register_client(&idp, &["read:resource"]).await;
    let read_only = token_for(&idp, &reader, "read:resource").await;

    let (status, _, _, body) = call(&idp, &rs, reqwest::Method::GET, Some(&read_only), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], reader.0);
    assert_eq!(body["client_id"], reader.0);
    assert_eq!(body["scopes"], json!(["read:resource"]));

    let (status, challenge, content_type, body) = call(
        &idp,
        &rs,
        reqwest::Method::POST,
        Some(&read_only),
        Some(json!({"message": "not allowed"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer realm=\"cryptoutil-rs\", error=\"insufficient_scope\", \
             error_description=\"this request needs the scope write:resource\", \
             scope=\"write:resource\""
        )
    );
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "write:resource");

    let writer = register_client(&idp, &["read:resource", "write:resource"]).await;
    let write_only = token_for(&idp, &writer, "write:resource").await;
    let (status, challenge, _, _) =
        call(&idp, &rs, reqwest::Method::GET, Some(&write_only), None).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().contains("scope=\"read:resource\""));

    let both = token_for(&idp, &writer, "read:resource write:resource").await;
    let text = format!("hello {}", uuid::Uuid::now_v7());
    let (status, _, _, created) = call(
        &idp,
        &rs,
        reqwest::Method::POST,
        Some(&both),
        Some(json!({"message": text})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["message"], text);
    assert_eq!(created["author"], writer.0);
    let id = uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let (status, _, _, body) = call(&idp, &rs, reqwest::Method::GET, Some(&both), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"][0]["message"], text);
    assert_eq!(body["messages"][0]["id"], created["id"]);

    // Bad bodies are problems: too long a message, too large a body, not JSON, other fields.
    for (body, expected) in [
        (json!({"message": "x".repeat(1025)}), 400),
        (json!({"message": ""}), 400),
        (json!({"message": "hi", "extra": 1}), 400),
        (json!({"text": "hi"}), 400),
        (json!({"message": "x".repeat(20_000)}), 413),
    ] {
        let (status, _, content_type, problem) =
            call(&idp, &rs, reqwest::Method::POST, Some(&both), Some(body)).await;
        assert_eq!(status, expected, "{problem}");
        assert_eq!(content_type, "application/problem+json");
    }
    let response = idp
        .http
        .post(format!("{}{RESOURCE}", rs.url))
        .bearer_auth(&both)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _, content_type, _) = answer(response).await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/problem+json");
    let response = idp
        .http
        .post(format!("{}{RESOURCE}", rs.url))
        .bearer_auth(&both)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Authorization comes before the body: no token and a broken body is still 401.
    let response = idp
        .http
        .post(format!("{}{RESOURCE}", rs.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn the_sample_clients_own_tokens_work_at_the_resource_server() {
    let idp = Idp::demo().await;
    let rs = Rs::start(&idp).await;
    let browser = idp.browser();
    let (verifier, challenge) = common::pkce();
    let url = common::authorize_url(
        &idp,
        SPA,
        SPA_REDIRECT,
        "openid profile email read:resource write:resource",
        &challenge,
    );
    let redirect = common::sign_in(&idp, &browser, &url, "demo-user").await;
    let code = common::query(&redirect)["code"].clone();
    let (status, tokens) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("client_id", SPA),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = common::jwt_part(id_token, 1);

    let (status, _, _, body) = call(&idp, &rs, reqwest::Method::GET, Some(access), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], claims["sub"]);
    assert_eq!(body["client_id"], SPA);
    let (status, _, _, _) = call(
        &idp,
        &rs,
        reqwest::Method::POST,
        Some(access),
        Some(json!({"message": "from the sample client"})),
    )
    .await;
    assert_eq!(status, 201);

    // The ID token is not an access token (typ), and is refused.
    let (status, ..) = call(&idp, &rs, reqwest::Method::GET, Some(id_token), None).await;
    assert_eq!(status, 401);

    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn without_identity_the_resource_server_is_unready_and_answers_503() {
    // Identity goes away: once the cached keys are past their TTL, validation fails closed.
    let idp = Idp::demo().await;
    let rs = Rs::start_with(&idp, |s| {
        s.identity.jwks_cache_ttl = cryptoutil_server::config::HumanDuration::from_secs(1);
    })
    .await;
    let client = register_client(&idp, &["read:resource"]).await;
    let token = token_for(&idp, &client, "read:resource").await;
    let (status, ..) = call(&idp, &rs, reqwest::Method::GET, Some(&token), None).await;
    assert_eq!(status, 200);
    let http = idp.http.clone();
    let issuer = idp.issuer.clone();
    idp.stop().await;
    let answer = until(
        async || {
            let response = http
                .get(format!("{}{RESOURCE}", rs.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            answer(response).await
        },
        |(status, ..)| *status != 200,
    )
    .await;
    assert_eq!(answer.0, 503, "{}", answer.3);
    assert_eq!(answer.2, "application/problem+json");
    let ready = http
        .get(format!("{}/admin/v1/readyz", rs.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    rs.rs.stop().await;

    // An issuer that is not there at start: the server starts, but is not ready.
    let pki = cryptoutil_server::DevPki::generate().unwrap();
    let mut settings = ResourceServerSettings::default();
    settings.server.public.port = 0;
    settings.server.admin.port = 0;
    settings.server.tls.watch = Some(false);
    pki.apply(&mut settings.server, "rs");
    settings.identity.issuer = Some(issuer);
    settings.identity.ca_file = Some(pki.root());
    let rs = resource_server::start(settings, true, None).await.unwrap();
    let admin = format!("https://127.0.0.1:{}", rs.server.admin_addr.port());
    let client = cryptoutil_tls::client_config(
        cryptoutil_tls::TrustConfig::from_ca_files(&[pki.root()]).unwrap(),
        None,
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(client)
        .build()
        .unwrap();
    let ready = http
        .get(format!("{admin}/admin/v1/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let report: Value = ready.json().await.unwrap();
    assert_eq!(
        report["checks"]["identity_jwks"]["status"], "fail",
        "{report}"
    );
    rs.stop().await;
}

#[tokio::test]
async fn the_resource_server_refuses_to_start_without_an_issuer() {
    let pki = cryptoutil_server::DevPki::generate().unwrap();
    let mut settings = ResourceServerSettings::default();
    settings.server.public.port = 0;
    settings.server.admin.port = 0;
    pki.apply(&mut settings.server, "rs");
    let Err(StartError::Config(message)) = resource_server::start(settings, true, None).await
    else {
        panic!("started without an issuer");
    };
    assert!(message.contains("--trust-issuer"), "{message}");
}

/// The resource server's configured public URL (proofs name it, whatever address is dialled).
const RS_ID: &str = "https://rs.dpop.test";

/// `token` with its claims changed by `edit`, signed again by Identity (as Identity signs).
fn resign(idp: &Idp, token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = common::jwt_part(token, 1);
    edit(&mut claims);
    let claims: cryptoutil_identity::tokens::AccessTokenClaims =
        serde_json::from_value(claims).unwrap();
    idp.identity
        .keys()
        .ring()
        .sign_access_token(&claims)
        .unwrap()
}

/// `token` with `cnf.jkt` of `key` (as Identity binds tokens).
fn bind(idp: &Idp, token: &str, key: &cryptoutil_jose::Jwk) -> String {
    resign(idp, token, |c| c["cnf"] = json!({"jkt": key.thumbprint()}))
}

/// A DPoP proof by `key` for `method` at `url`, bound to `token`, then `edit`ed.
fn proof(
    key: &cryptoutil_jose::Jwk,
    method: &str,
    url: &str,
    token: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), json!("dpop+jwt"));
    header.insert("jwk".into(), key.to_value(false));
    let Value::Object(mut claims) = json!({
        "jti": uuid::Uuid::now_v7().to_string(), "htm": method, "htu": url,
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "ath": cryptoutil_realm::dpop::access_token_hash(token),
    }) else {
        unreachable!()
    };
    edit(&mut claims);
    cryptoutil_jose::jws::sign(
        key,
        cryptoutil_jose::JwsAlgorithm::ES256,
        &serde_json::to_vec(&claims).unwrap(),
        Some(&header),
    )
    .unwrap()
}

/// A 401 whose DPoP challenge carries `error` and the metadata URL.
fn assert_dpop_refusal(answer: &(StatusCode, Option<String>, String, Value), error: &str) {
    let (status, challenge, _, body) = answer;
    assert_eq!(*status, 401, "{body}");
    assert_eq!(body["error"], error, "{body}");
    let challenge = challenge.as_deref().unwrap_or_default();
    let dpop = &challenge[challenge
        .find("DPoP ")
        .unwrap_or_else(|| panic!("{challenge}"))..];
    assert!(
        dpop.contains(&format!("error=\"{error}\""))
            && dpop.contains(&format!(
                "resource_metadata=\"{RS_ID}/.well-known/oauth-protected-resource\""
            )),
        "{challenge}"
    );
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_of_their_key() {
    let idp = Idp::demo().await;
    let rs = Rs::start_with(&idp, |s| s.resource.identifier = Some(RS_ID.to_owned())).await;
    let client = register_client(&idp, &["read:resource", "write:resource"]).await;
    let plain = token_for(&idp, &client, "read:resource write:resource").await;
    let key = cryptoutil_jose::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
    let token = bind(&idp, &plain, &key);
    let url = format!("{RS_ID}{RESOURCE}");
    let send = async |method: reqwest::Method, scheme: &str, token: &str, dpop: Option<&str>| {
        let mut request = idp
            .http
            .request(method.clone(), format!("{}{RESOURCE}", rs.url))
            .header("authorization", format!("{scheme} {token}"));
        if let Some(dpop) = dpop {
            request = request.header("dpop", dpop);
        }
        if method == reqwest::Method::POST {
            request = request.json(&json!({"message": "bound"}));
        }
        answer(request.send().await.unwrap()).await
    };

    let good = proof(&key, "GET", &url, &token, |_| {});
    let (status, _, _, body) = send(reqwest::Method::GET, "DPoP", &token, Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    let write = proof(&key, "POST", &url, &token, |_| {});
    let (status, _, _, body) = send(reqwest::Method::POST, "DPoP", &token, Some(&write)).await;
    assert_eq!(status, 201, "{body}");

    // Replayed, stolen as Bearer, another key, another method or URL, no ath, no proof.
    assert_dpop_refusal(
        &send(reqwest::Method::GET, "DPoP", &token, Some(&good)).await,
        "invalid_dpop_proof",
    );
    assert_dpop_refusal(
        &send(reqwest::Method::GET, "Bearer", &token, None).await,
        "invalid_token",
    );
    let thief = cryptoutil_jose::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
    for bad in [
        proof(&thief, "GET", &url, &token, |_| {}),
        proof(&key, "POST", &url, &token, |_| {}),
        proof(
            &key,
            "GET",
            &format!("{RS_ID}/api/v1/public/health"),
            &token,
            |_| {},
        ),
        proof(
            &key,
            "GET",
            &format!("{}{RESOURCE}", rs.url),
            &token,
            |_| {},
        ),
        proof(&key, "GET", &url, &token, |c| {
            c.remove("ath");
        }),
    ] {
        assert_dpop_refusal(
            &send(reqwest::Method::GET, "DPoP", &token, Some(&bad)).await,
            "invalid_dpop_proof",
        );
    }
    assert_dpop_refusal(
        &send(reqwest::Method::GET, "DPoP", &token, None).await,
        "invalid_dpop_proof",
    );
    // An unbound token with the DPoP scheme; the same token as Bearer still works.
    let unbound = proof(&key, "GET", &url, &plain, |_| {});
    assert_dpop_refusal(
        &send(reqwest::Method::GET, "DPoP", &plain, Some(&unbound)).await,
        "invalid_token",
    );
    let (status, _, _, body) = send(reqwest::Method::GET, "Bearer", &plain, None).await;
    assert_eq!(status, 200, "{body}");
    // RFC 8707: a token whose `aud` is the resource identifier is accepted, another is not.
    for (aud, expected) in [(RS_ID, 200), ("https://elsewhere.dpop.test", 401)] {
        let token = resign(&idp, &plain, |c| c["aud"] = json!(aud));
        let (status, _, _, body) = send(reqwest::Method::GET, "Bearer", &token, None).await;
        assert_eq!(status, expected, "{aud}: {body}");
    }

    // The notes route is protected the same way: the bound token needs a proof for its own
    // URL; with one it gets past authorization (to 503: this server has no KMS configured).
    let notes_url = format!(
        "{RS_ID}{}",
        cryptoutil_identity::resource_server::notes::NOTES
    );
    let notes = async |scheme: &str, dpop: Option<&str>| {
        let mut request = idp
            .http
            .post(format!(
                "{}{}",
                rs.url,
                cryptoutil_identity::resource_server::notes::NOTES
            ))
            .header("authorization", format!("{scheme} {token}"))
            .json(&json!({"note": "bound"}));
        if let Some(dpop) = dpop {
            request = request.header("dpop", dpop);
        }
        answer(request.send().await.unwrap()).await
    };
    assert_dpop_refusal(&notes("Bearer", None).await, "invalid_token");
    let elsewhere = proof(&key, "POST", &url, &token, |_| {});
    assert_dpop_refusal(&notes("DPoP", Some(&elsewhere)).await, "invalid_dpop_proof");
    let for_notes = proof(&key, "POST", &notes_url, &token, |_| {});
    let (status, _, _, body) = notes("DPoP", Some(&for_notes)).await;
    assert_eq!(status, 503, "{body}");

    // No token: both schemes are challenged, with the metadata URL.
    let (status, challenge, _, _) = call(&idp, &rs, reqwest::Method::GET, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some(
            "Bearer realm=\"cryptoutil-rs\", \
             resource_metadata=\"https://rs.dpop.test/.well-known/oauth-protected-resource\", \
             DPoP realm=\"cryptoutil-rs\", \
             resource_metadata=\"https://rs.dpop.test/.well-known/oauth-protected-resource\", \
             algs=\"ES256 ES384 PS256 EdDSA\""
        )
    );
    rs.rs.stop().await;
    idp.stop().await;
}

#[tokio::test]
async fn protected_resource_metadata_describes_the_resource_server() {
    let idp = Idp::demo().await;
    let rs = Rs::start_with(&idp, |s| {
        s.resource.identifier = Some(RS_ID.to_owned());
        s.resource.dpop_bound_access_tokens_required = true;
    })
    .await;
    let response = idp
        .http
        .get(format!("{}/.well-known/oauth-protected-resource", rs.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=3600"
    );
    let doc: Value = response.json().await.unwrap();
    assert_eq!(
        doc,
        json!({
            "resource": RS_ID,
            "authorization_servers": [idp.issuer],
            "scopes_supported": ["read:resource", "write:resource"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["ES256", "ES384", "PS256", "EdDSA"],
            "dpop_bound_access_tokens_required": true,
        })
    );
    // DPoP required: a plain bearer token is refused, only DPoP is challenged.
    let client = register_client(&idp, &["read:resource"]).await;
    let plain = token_for(&idp, &client, "read:resource").await;
    let refused = call(&idp, &rs, reqwest::Method::GET, Some(&plain), None).await;
    assert_dpop_refusal(&refused, "invalid_token");
    assert!(refused.1.as_deref().is_some_and(|c| c.starts_with("DPoP ")));
    rs.rs.stop().await;

    // Without an identifier: no document.
    let rs = Rs::start(&idp).await;
    let response = idp
        .http
        .get(format!("{}/.well-known/oauth-protected-resource", rs.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    rs.rs.stop().await;
    idp.stop().await;
}
