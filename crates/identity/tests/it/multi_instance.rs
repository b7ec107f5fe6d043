//! Two Identity instances on one PostgreSQL database (issue 13): they start together on an empty
//! database and agree on one signing key; tokens, codes and refresh tokens issued by one are
//! honoured (once) by the other; a signing key rotated on one is served and accepted by the
//! other, and a resource server that fetches the JWKS from the other accepts tokens signed
//! with it. Both sit behind a TCP "load balancer" at the shared issuer URL, which the test points
//! at one instance or the other. Needs `CRYPTOUTIL_TEST_POSTGRES_URL` (skips loudly without).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CONFIDENTIAL, CONFIDENTIAL_REDIRECT, CONFIDENTIAL_SECRET, Idp};
use common::{INTROSPECTOR, INTROSPECTOR_SECRET, KMS_CLIENT, KMS_CLIENT_SECRET};
use common::{authorize_url, jwt_part, pkce, query, sign_in};
use cryptoutil_identity::resource_server;
use cryptoutil_identity::server::{Identity, Seeding};
use cryptoutil_identity::storage::DatabaseSettings;
use cryptoutil_server::DevPki;
use cryptoutil_server::config::{HumanDuration, Secret};
use cryptoutil_testkit::postgres::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A TCP front that forwards each new connection to the instance it currently points at.
struct Balancer {
    address: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
}

impl Balancer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let shared = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *shared.lock().unwrap() else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { address, target }
    }

    fn point_to(&self, identity: &Identity) {
        *self.target.lock().unwrap() = Some(identity.server.public_addr);
    }
}

/// An instance's own URL (bypassing the balancer).
fn own(identity: &Identity, path: &str) -> String {
    format!(
        "https://127.0.0.1:{}{path}",
        identity.server.public_addr.port()
    )
}

/// An HTTPS client trusting `pki`, without connection reuse (each request goes through the
/// balancer to the instance it points at now).
fn client(pki: &DevPki) -> reqwest::Client {
    let config = cryptoutil_tls::client_config(
        cryptoutil_tls::TrustConfig::from_ca_files(&[pki.root()]).unwrap(),
        None,
    )
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn form(
    http: &reqwest::Client,
    url: &str,
    basic: (&str, &str),
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http
        .post(url)
        .basic_auth(basic.0, Some(basic.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A client_credentials access token from one instance.
async fn token_from(http: &reqwest::Client, identity: &Identity) -> String {
    let (status, body) = form(
        http,
        &own(identity, "/oauth2/v1/token"),
        (KMS_CLIENT, KMS_CLIENT_SECRET),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Whether one instance's introspection says the token is active.
async fn active_at(http: &reqwest::Client, identity: &Identity, token: &str) -> bool {
    let (status, body) = form(
        http,
        &own(identity, "/oauth2/v1/introspect"),
        (INTROSPECTOR, INTROSPECTOR_SECRET),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["active"] == true
}

/// Verifies `token` with the key its `kid` names in one instance's JWKS (false when absent).
async fn verifies_with_jwks_of(http: &reqwest::Client, identity: &Identity, token: &str) -> bool {
    let jwks: Value = http
        .get(own(identity, "/oauth2/v1/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwt_part(token, 0)["kid"].as_str().unwrap().to_owned();
    let Some(key) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
    else {
        return false;
    };
    let jwk = cryptoutil_jose::Jwk::from_value(key.clone()).unwrap();
    cryptoutil_jose::jws::verify(&jwk, cryptoutil_jose::JwsAlgorithm::ES256, token).is_ok()
}

/// Rotates the signing key through `identity`'s admin API and waits until it signs with the new
/// key (after the activation delay: the wait is bounded, the assertions are on the answers).
/// Returns the new `kid` and a token signed with it.
async fn rotate_on(http: &reqwest::Client, identity: &Identity) -> (String, String) {
    let admin = format!("https://127.0.0.1:{}", identity.server.admin_addr.port());
    let response = http
        .post(format!("{admin}/admin/v1/signing-keys/rotate"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotation: Value = response.json().await.unwrap();
    let kid = rotation["kid"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let token = token_from(http, identity).await;
        if jwt_part(&token, 0)["kid"] == kid.as_str() {
            return (kid, token);
        }
        assert!(Instant::now() < deadline, "never signed with {kid}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start(
    pki: &DevPki,
    db: &str,
    issuer: &str,
    kek: &str,
) -> Result<Identity, cryptoutil_identity::server::StartError> {
    let mut settings = common::settings(pki);
    settings.database = DatabaseSettings::with_url(db);
    settings.issuer = Some(issuer.to_owned());
    settings.keys.encryption_key = Some(Secret::new(kek));
    // Short enough for a test; still longer than the one-second JWKS freshness.
    settings.keys.activation_delay = HumanDuration::from_secs(2);
    cryptoutil_identity::server::start(settings, false, None, Some(Seeding::Demo)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_share_keys_tokens_codes_and_rotations() {
    let Some(db) = TestDatabase::create("identity_multi").await else {
        return;
    };
    let pki = DevPki::generate().unwrap();
    let balancer = Balancer::start().await;
    let issuer = format!("https://127.0.0.1:{}", balancer.address.port());
    let kek = cryptoutil_identity::signing::KeyEncryptionKey::generate()
        .unwrap()
        .to_base64url()
        .to_string();

    // First start on an empty database, both at once (migrations, demo seeding, first key).
    let (a, b) = tokio::join!(
        start(&pki, &db.url, &issuer, &kek),
        start(&pki, &db.url, &issuer, &kek)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let keys = a.store().signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "exactly one signing key after the race");
    let k1 = keys[0].kid.clone();
    assert_eq!(a.keys().ring().signing_kid(), Some(k1.as_str()));
    assert_eq!(b.keys().ring().signing_kid(), Some(k1.as_str()));
    let http = client(&pki);

    // An access token issued by A is valid at B, and B's JWKS verifies it.
    let token = token_from(&http, &a).await;
    assert_eq!(jwt_part(&token, 0)["kid"], k1.as_str());
    assert!(active_at(&http, &b, &token).await);
    assert!(verifies_with_jwks_of(&http, &b, &token).await);

    // A code issued through A redeems at B; the refresh token redeems at A, once.
    balancer.point_to(&a);
    let b_idp = Idp::from_running(b, issuer.clone(), pki);
    let browser = b_idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &b_idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid offline_access",
        &challenge,
    );
    let callback = sign_in(&b_idp, &browser, &url, "demo-user").await;
    let code = query(&callback)["code"].clone();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let b = &b_idp.identity;
    let (status, tokens) = form(
        &http,
        &own(b, "/oauth2/v1/token"),
        (CONFIDENTIAL, CONFIDENTIAL_SECRET),
        &redeem,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let use_refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, rotated) = form(
        &http,
        &own(&a, "/oauth2/v1/token"),
        (CONFIDENTIAL, CONFIDENTIAL_SECRET),
        &use_refresh,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, reused) = form(
        &http,
        &own(b, "/oauth2/v1/token"),
        (CONFIDENTIAL, CONFIDENTIAL_SECRET),
        &use_refresh,
    )
    .await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Replaying the code at A is refused (and, as OAuth 2.1 asks, revokes what it gave).
    let (status, again) = form(
        &http,
        &own(&a, "/oauth2/v1/token"),
        (CONFIDENTIAL, CONFIDENTIAL_SECRET),
        &redeem,
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Rotate the signing key on A through its admin API: once A signs with the new key, B
    // accepts tokens signed with it.
    let (k2, second) = rotate_on(&http, &a).await;
    assert_ne!(k2, k1);
    assert_eq!(a.store().signing_keys().await.unwrap().len(), 2);
    assert!(active_at(&http, b, &second).await, "B honours A's rotation");
    assert!(verifies_with_jwks_of(&http, b, &second).await);
    // B may have seen that key by chance (a refresh for its own first key's activation).
    // Rotated again, with nothing pending at B: introspection first, so B must reload its keys
    // for the unknown kid …
    let (k3, third) = rotate_on(&http, &a).await;
    assert!(
        active_at(&http, b, &third).await,
        "B reloads keys on an unknown kid"
    );
    assert!(verifies_with_jwks_of(&http, b, &third).await);
    // … and once more, B's JWKS first, so B must re-read the keys for a JWKS request. Every
    // older token still verifies (overlap).
    let (k4, fourth) = rotate_on(&http, &a).await;
    assert!(
        verifies_with_jwks_of(&http, b, &fourth).await,
        "B's JWKS serves A's new key"
    );
    assert!(active_at(&http, b, &fourth).await);
    for older in [&token, &second, &third] {
        assert!(verifies_with_jwks_of(&http, b, older).await);
        assert!(active_at(&http, b, older).await);
    }
    assert_eq!(
        [&k1, &k2, &k3, &k4]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        4
    );
    let k2 = k4;
    // B itself signs with the new key too once active.
    let deadline = Instant::now() + Duration::from_secs(30);
    while jwt_part(&token_from(&http, b).await, 0)["kid"] != k2.as_str() {
        assert!(Instant::now() < deadline, "B never signed with {k2}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A resource server trusting the issuer, whose discovery and JWKS come from B, accepts
    // tokens A signs with the newest key.
    balancer.point_to(b);
    let register = http
        .post(format!(
            "https://127.0.0.1:{}/admin/v1/clients",
            a.server.admin_addr.port()
        ))
        .json(&json!({
            "client_id": format!("multi-{}", uuid::Uuid::now_v7()),
            "name": "multi-instance test client",
            "auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "scopes": ["read:resource"],
            "audiences": ["cryptoutil-rs"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let registered: Value = register.json().await.unwrap();
    let rs_client = (
        registered["client_id"].as_str().unwrap().to_owned(),
        registered["client_secret"].as_str().unwrap().to_owned(),
    );
    let (status, body) = form(
        &http,
        &own(&a, "/oauth2/v1/token"),
        (&rs_client.0, &rs_client.1),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:resource"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rs_token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_part(&rs_token, 0)["kid"], k2.as_str());
    let settings = cryptoutil_testkit::identity::resource_server_settings(b_idp.pki(), &issuer);
    let rs = resource_server::start(settings, true, None).await.unwrap();
    let resource = format!(
        "https://127.0.0.1:{}/api/v1/protected/resource",
        rs.server.public_addr.port()
    );
    let response = http
        .get(&resource)
        .bearer_auth(&rs_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    rs.stop().await;
    a.stop().await;
    b_idp.stop().await;
    db.drop().await;
}
