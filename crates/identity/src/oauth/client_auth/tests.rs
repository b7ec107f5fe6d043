#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lc_rs::pbkdf2;
use cryptoutil_jose::jwk::JwkSet;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, OkpCurve, b64, jws};
use cryptoutil_realm::basic;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::*;
use crate::model::{ClientMetadata, ClientSecret, GrantType};
use crate::oauth::error::ErrorCode;

const ISSUER: &str = "https://identity.example";
const TOKEN_URL: &str = "https://identity.example/oauth2/v1/token";
const AUD: &[&str] = &[ISSUER, TOKEN_URL];

#[derive(Default)]
struct MemDirectory {
    clients: Mutex<HashMap<String, Arc<Client>>>,
    jtis: Mutex<HashSet<(String, String)>>,
    down: AtomicBool,
}

impl MemDirectory {
    fn put(&self, client: Client) {
        self.clients
            .lock()
            .unwrap()
            .insert(client.client_id.clone(), Arc::new(client));
    }
}

impl ClientDirectory for MemDirectory {
    fn client<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<Client>>, DirectoryError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(DirectoryError("test outage".into()));
            }
            Ok(self.clients.lock().unwrap().get(client_id).cloned())
        })
    }

    fn remember_assertion<'a>(
        &'a self,
        client_id: &'a str,
        jti: &'a str,
        expires_at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        assert!(expires_at > OffsetDateTime::now_utc());
        Box::pin(async move {
            Ok(self
                .jtis
                .lock()
                .unwrap()
                .insert((client_id.to_owned(), jti.to_owned())))
        })
    }
}

/// A canonical hash at the smallest accepted iteration count (cheaper than the default).
fn hash(secret: &str) -> String {
    let salt = uuid::Uuid::now_v7().as_bytes().repeat(2);
    let iterations = cryptoutil_realm::password::MIN_ITERATIONS;
    let mut key = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        &salt,
        secret.as_bytes(),
        &mut key,
    );
    format!(
        "pbkdf2-sha256${iterations}${}${}",
        b64::encode(&salt),
        b64::encode(&key)
    )
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

fn client(id: &str, method: ClientAuthMethod) -> Client {
    Client {
        client_id: id.to_owned(),
        metadata: ClientMetadata {
            client_name: id.to_owned(),
            token_endpoint_auth_method: method,
            jwks: None,
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            scope: vec!["kms:read".to_owned()],
            audiences: Vec::new(),
            tenant_id: None,
            introspect_any: false,
            dpop_bound_access_tokens: false,
            may_act: Vec::new(),
            impersonation: false,
            mfa: None,
        },
        enabled: true,
        secrets: Vec::new(),
        created_at: OffsetDateTime::now_utc(),
    }
}

fn secret_client(id: &str, method: ClientAuthMethod, secrets: &[(&str, Option<i64>)]) -> Client {
    let now = OffsetDateTime::now_utc();
    Client {
        secrets: secrets
            .iter()
            .map(|(s, expires_in)| ClientSecret {
                hash: hash(s),
                expires_at: expires_in.map(|secs| now + time::Duration::seconds(secs)),
            })
            .collect(),
        ..client(id, method)
    }
}

fn setup() -> (Arc<MemDirectory>, ClientAuthenticator) {
    let dir = Arc::new(MemDirectory::default());
    let auth = ClientAuthenticator::new(dir.clone(), ClientAuthConfig::default()).unwrap();
    (dir, auth)
}

/// An `Authorization: Basic` header value.
fn basic_header(id: &str, secret: &str) -> String {
    basic::encode(id, secret)
}

fn form(pairs: &[(&str, &str)]) -> FormParams {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    FormParams::parse_default(body.as_bytes()).unwrap()
}

async fn basic_auth(
    auth: &ClientAuthenticator,
    id: &str,
    secret: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    auth.authenticate(&[basic_header(id, secret).as_bytes()], &form(&[]), AUD)
        .await
}

fn assert_invalid_client(result: Result<AuthenticatedClient, OAuthError>, basic: bool) {
    let e = result.expect_err("authentication should fail");
    assert_eq!(e.code, ErrorCode::InvalidClient);
    assert_eq!(e.description, "client authentication failed");
    if basic {
        assert_eq!(e.status, 401);
        assert_eq!(
            e.www_authenticate().unwrap(),
            "Basic realm=\"cryptoutil-identity\""
        );
    } else {
        assert_eq!(e.status, 400);
        assert!(e.www_authenticate().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_of_a_secret_verify_it_once() {
    let (dir, auth) = setup();
    let auth = Arc::new(auth);
    let id = unique("burst");
    dir.put(secret_client(
        &id,
        ClientAuthMethod::ClientSecretBasic,
        &[("s3cret", None)],
    ));
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (auth, id) = (auth.clone(), id.clone());
            tokio::spawn(async move { basic_auth(&auth, &id, "s3cret").await.unwrap().cached })
        })
        .collect();
    let mut verified = 0;
    for request in requests {
        if !request.await.unwrap() {
            verified += 1;
        }
    }
    assert_eq!(verified, 1, "one PBKDF2 for eight concurrent requests");
}

#[tokio::test]
async fn basic_secret_verifies_then_hits_the_cache() {
    let (dir, auth) = setup();
    let id = unique("basic");
    dir.put(secret_client(
        &id,
        ClientAuthMethod::ClientSecretBasic,
        &[("s3cret", None)],
    ));
    let ok = basic_auth(&auth, &id, "s3cret").await.unwrap();
    assert_eq!(ok.client.client_id, id);
    assert_eq!(ok.method, ClientAuthMethod::ClientSecretBasic);
    assert!(!ok.cached);
    // The second request is answered by the cache: no PBKDF2.
    assert!(basic_auth(&auth, &id, "s3cret").await.unwrap().cached);
    assert_invalid_client(basic_auth(&auth, &id, "wrong").await, true);
    assert_invalid_client(basic_auth(&auth, &id, "s3cret ").await, true);
}

#[tokio::test]
async fn post_secret_and_method_mismatch() {
    let (dir, auth) = setup();
    let post = unique("post");
    let basic_only = unique("basic");
    dir.put(secret_client(
        &post,
        ClientAuthMethod::ClientSecretPost,
        &[("pw", None)],
    ));
    dir.put(secret_client(
        &basic_only,
        ClientAuthMethod::ClientSecretBasic,
        &[("pw", None)],
    ));
    let ok = auth
        .authenticate(
            &[],
            &form(&[("client_id", &post), ("client_secret", "pw")]),
            AUD,
        )
        .await
        .unwrap();
    assert_eq!(ok.method, ClientAuthMethod::ClientSecretPost);
    // The right secret through the wrong method is refused.
    assert_invalid_client(basic_auth(&auth, &post, "pw").await, true);
    let via_post = auth
        .authenticate(
            &[],
            &form(&[("client_id", &basic_only), ("client_secret", "pw")]),
            AUD,
        )
        .await;
    assert_invalid_client(via_post, false);
}

#[tokio::test]
async fn unknown_and_disabled_clients_are_invalid_client() {
    let (dir, auth) = setup();
    let id = unique("disabled");
    dir.put(Client {
        enabled: false,
        ..secret_client(&id, ClientAuthMethod::ClientSecretBasic, &[("pw", None)])
    });
    assert_invalid_client(basic_auth(&auth, &id, "pw").await, true);
    assert_invalid_client(basic_auth(&auth, &unique("nobody"), "pw").await, true);
    let long = "x".repeat(MAX_CLIENT_ID_LEN + 1);
    assert_invalid_client(
        auth.authenticate(&[], &form(&[("client_id", &long)]), AUD)
            .await,
        false,
    );
}

#[tokio::test]
async fn rotation_accepts_both_until_the_old_secret_expires_even_when_cached() {
    let (dir, auth) = setup();
    let id = unique("rotating");
    let rotating = secret_client(
        &id,
        ClientAuthMethod::ClientSecretBasic,
        &[("old", Some(3600)), ("new", None)],
    );
    dir.put(rotating.clone());
    assert!(!basic_auth(&auth, &id, "old").await.unwrap().cached);
    assert!(!basic_auth(&auth, &id, "new").await.unwrap().cached);
    assert!(basic_auth(&auth, &id, "old").await.unwrap().cached);
    // The grace period ends: the store now reports the old secret as expired. The cached
    // verification must not outlive it, even without an invalidation.
    let mut expired = rotating.clone();
    expired.secrets[0].expires_at = Some(OffsetDateTime::now_utc() - time::Duration::seconds(1));
    dir.put(expired);
    assert_invalid_client(basic_auth(&auth, &id, "old").await, true);
    assert!(basic_auth(&auth, &id, "new").await.unwrap().cached);
}

#[tokio::test]
async fn invalidate_client_drops_cached_secrets() {
    let (dir, auth) = setup();
    let id = unique("changed");
    dir.put(secret_client(
        &id,
        ClientAuthMethod::ClientSecretBasic,
        &[("pw", None)],
    ));
    basic_auth(&auth, &id, "pw").await.unwrap();
    assert!(basic_auth(&auth, &id, "pw").await.unwrap().cached);
    auth.invalidate_client(&id);
    assert!(!basic_auth(&auth, &id, "pw").await.unwrap().cached);
    auth.invalidate_all();
    assert!(!basic_auth(&auth, &id, "pw").await.unwrap().cached);
}

#[tokio::test]
async fn public_clients_present_only_their_id() {
    let (dir, auth) = setup();
    let spa = unique("spa");
    let confidential = unique("conf");
    dir.put(client(&spa, ClientAuthMethod::None));
    dir.put(secret_client(
        &confidential,
        ClientAuthMethod::ClientSecretPost,
        &[("pw", None)],
    ));
    let ok = auth
        .authenticate(&[], &form(&[("client_id", &spa)]), AUD)
        .await
        .unwrap();
    assert_eq!(ok.method, ClientAuthMethod::None);
    assert_invalid_client(
        auth.authenticate(&[], &form(&[("client_id", &confidential)]), AUD)
            .await,
        false,
    );
    // A public client cannot switch to a secret.
    assert_invalid_client(
        auth.authenticate(
            &[],
            &form(&[("client_id", &spa), ("client_secret", "x")]),
            AUD,
        )
        .await,
        false,
    );
}

#[tokio::test]
async fn two_methods_and_directory_outage() {
    let (dir, auth) = setup();
    let id = unique("c");
    dir.put(secret_client(
        &id,
        ClientAuthMethod::ClientSecretBasic,
        &[("pw", None)],
    ));
    let e = auth
        .authenticate(
            &[basic_header(&id, "pw").as_bytes()],
            &form(&[("client_secret", "pw")]),
            AUD,
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    dir.down.store(true, Ordering::SeqCst);
    let e = basic_auth(&auth, &id, "pw").await.err().unwrap();
    assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
    assert_eq!(e.status, 503);
}

// ---------------------------------------------------------------- private_key_jwt

struct JwtClient {
    id: String,
    key: Jwk,
}

fn jwt_client(dir: &MemDirectory) -> JwtClient {
    let id = unique("jwt");
    let mut key = Jwk::generate_ec(EcCurve::P256).unwrap();
    key.set_kid(Some("k1".to_owned()));
    let jwks = JwkSet {
        keys: vec![key.to_public().unwrap()],
    };
    let mut jwt = client(&id, ClientAuthMethod::PrivateKeyJwt);
    jwt.metadata.jwks = Some(jwks.to_json(false).to_string());
    dir.put(jwt);
    JwtClient { id, key }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(id: &str) -> Value {
    json!({
        "iss": id, "sub": id, "aud": TOKEN_URL,
        "exp": now() + 120, "iat": now(), "jti": uuid::Uuid::now_v7().to_string(),
    })
}

fn sign(key: &Jwk, alg: JwsAlgorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = serde_json::Map::new();
    if let Some(kid) = kid {
        header.insert("kid".into(), kid.into());
    }
    jws::sign(key, alg, claims.to_string().as_bytes(), Some(&header)).unwrap()
}

async fn assert_jwt(
    auth: &ClientAuthenticator,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<AuthenticatedClient, OAuthError> {
    let mut pairs = vec![
        ("client_assertion", assertion),
        ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
    ];
    if let Some(id) = client_id {
        pairs.push(("client_id", id));
    }
    auth.authenticate(&[], &form(&pairs), AUD).await
}

#[tokio::test]
async fn private_key_jwt_accepts_once() {
    let (dir, auth) = setup();
    let c = jwt_client(&dir);
    let token = sign(&c.key, JwsAlgorithm::ES256, Some("k1"), &claims(&c.id));
    let ok = assert_jwt(&auth, &token, Some(&c.id)).await.unwrap();
    assert_eq!(ok.method, ClientAuthMethod::PrivateKeyJwt);
    assert_eq!(ok.client.client_id, c.id);
    // Replaying the same jti is refused.
    assert_invalid_client(assert_jwt(&auth, &token, None).await, false);
    // Without kid, the only key is used; the issuer is an accepted audience, also in an array.
    let mut body = claims(&c.id);
    body["aud"] = json!(["https://other.example", ISSUER]);
    let token = sign(&c.key, JwsAlgorithm::ES256, None, &body);
    assert_jwt(&auth, &token, None).await.unwrap();
    // Fractional NumericDates are fine.
    let mut body = claims(&c.id);
    body["exp"] = json!(now() as f64 + 60.5);
    assert_jwt(&auth, &sign(&c.key, JwsAlgorithm::ES256, None, &body), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn private_key_jwt_claim_rules() {
    let (dir, auth) = setup();
    let c = jwt_client(&dir);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = claims(&c.id);
        edit(&mut body);
        sign(&c.key, JwsAlgorithm::ES256, Some("k1"), &body)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            with(&|b| b["aud"] = json!("https://evil.example")),
        ),
        (
            "aud array without us",
            with(&|b| b["aud"] = json!(["a", "b"])),
        ),
        (
            "no aud",
            with(&|b| drop(b.as_object_mut().unwrap().remove("aud"))),
        ),
        ("expired", with(&|b| b["exp"] = json!(now() - 120))),
        ("exp too far", with(&|b| b["exp"] = json!(now() + 3600))),
        (
            "no exp",
            with(&|b| drop(b.as_object_mut().unwrap().remove("exp"))),
        ),
        ("exp not a number", with(&|b| b["exp"] = json!("soon"))),
        ("nbf future", with(&|b| b["nbf"] = json!(now() + 600))),
        ("iat future", with(&|b| b["iat"] = json!(now() + 600))),
        (
            "no jti",
            with(&|b| drop(b.as_object_mut().unwrap().remove("jti"))),
        ),
        ("empty jti", with(&|b| b["jti"] = json!(""))),
        (
            "long jti",
            with(&|b| b["jti"] = json!("j".repeat(MAX_JTI_LEN + 1))),
        ),
        ("iss differs", with(&|b| b["iss"] = json!("someone-else"))),
        ("sub differs", with(&|b| b["sub"] = json!("someone-else"))),
    ];
    for (what, token) in cases {
        let result = assert_jwt(&auth, &token, None).await;
        assert!(result.is_err(), "{what} was accepted");
        assert_invalid_client(result, false);
    }
    // Skew: just expired within the tolerance is still fine.
    let token = with(&|b| b["exp"] = json!(now() - 30));
    assert_jwt(&auth, &token, None).await.unwrap();
}

#[tokio::test]
async fn private_key_jwt_key_and_alg_rules() {
    let (dir, auth) = setup();
    let c = jwt_client(&dir);
    let body = claims(&c.id);
    // HS256 with any secret (even one "derived" from the public key) is refused.
    let oct = Jwk::generate_oct(32).unwrap();
    let hs = sign(&oct, JwsAlgorithm::HS256, Some("k1"), &body);
    assert_invalid_client(assert_jwt(&auth, &hs, None).await, false);
    // alg none.
    let none = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","kid":"k1"}"#),
        b64::encode(body.to_string().as_bytes())
    );
    assert_invalid_client(assert_jwt(&auth, &none, None).await, false);
    // Another key under the registered kid.
    let other = Jwk::generate_ec(EcCurve::P256).unwrap();
    let forged = sign(&other, JwsAlgorithm::ES256, Some("k1"), &body);
    assert_invalid_client(assert_jwt(&auth, &forged, None).await, false);
    // An alg the registered key does not support.
    let ed = Jwk::generate_okp(OkpCurve::Ed25519).unwrap();
    let wrong_alg = sign(&ed, JwsAlgorithm::EdDSA, Some("k1"), &body);
    assert_invalid_client(assert_jwt(&auth, &wrong_alg, None).await, false);
    // Unknown kid.
    let unknown = sign(&c.key, JwsAlgorithm::ES256, Some("k2"), &body);
    assert_invalid_client(assert_jwt(&auth, &unknown, None).await, false);
    // client_id that differs from the assertion.
    let good = sign(&c.key, JwsAlgorithm::ES256, Some("k1"), &body);
    assert_invalid_client(assert_jwt(&auth, &good, Some("someone-else")).await, false);
    // Garbage.
    assert_invalid_client(assert_jwt(&auth, "a.b.c", None).await, false);
    // The good one still works (none of the failures consumed its jti).
    assert_jwt(&auth, &good, None).await.unwrap();
}

#[tokio::test]
async fn private_key_jwt_client_misconfiguration_and_method_mismatch() {
    let (dir, auth) = setup();
    let c = jwt_client(&dir);
    // A secret client cannot authenticate with an assertion.
    let secret_id = unique("secret");
    dir.put(secret_client(
        &secret_id,
        ClientAuthMethod::ClientSecretPost,
        &[("pw", None)],
    ));
    let token = sign(&c.key, JwsAlgorithm::ES256, Some("k1"), &claims(&secret_id));
    assert_invalid_client(assert_jwt(&auth, &token, None).await, false);
    // A JWT client cannot use a secret or present only its id.
    assert_invalid_client(
        auth.authenticate(&[], &form(&[("client_id", &c.id)]), AUD)
            .await,
        false,
    );
    // A client whose JWKS is missing fails closed.
    let bare = unique("bare");
    dir.put(client(&bare, ClientAuthMethod::PrivateKeyJwt));
    let token = sign(&c.key, JwsAlgorithm::ES256, Some("k1"), &claims(&bare));
    assert_invalid_client(assert_jwt(&auth, &token, None).await, false);
    // Two keys and no kid: ambiguous.
    let two = unique("two");
    let mut k2 = Jwk::generate_ec(EcCurve::P256).unwrap();
    k2.set_kid(Some("k2".to_owned()));
    let jwks = JwkSet {
        keys: vec![c.key.to_public().unwrap(), k2.to_public().unwrap()],
    };
    let mut jwt = client(&two, ClientAuthMethod::PrivateKeyJwt);
    jwt.metadata.jwks = Some(jwks.to_json(false).to_string());
    dir.put(jwt);
    let token = sign(&c.key, JwsAlgorithm::ES256, None, &claims(&two));
    assert_invalid_client(assert_jwt(&auth, &token, None).await, false);
    let token = sign(&k2, JwsAlgorithm::ES256, Some("k2"), &claims(&two));
    assert_jwt(&auth, &token, None).await.unwrap();
}
