//! KMS ⇄ Identity federation end to end (SPEC §5): a real Identity server (`--dev --demo`) and a
//! real KMS (`--dev --demo`, trusting that issuer and its CA), both in-process over TLS on free
//! ports. Tokens come from Identity's token endpoint; revocation goes through its RFC 7009
//! endpoint; the KMS introspects as `kms-introspection-client`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::PathBuf;

use common::{Kms, Reply, Surface};
use cryptoutil_identity::config::IdentitySettings;
use cryptoutil_kms::auth::settings::{DEMO_INTROSPECTION_SECRET, IssuerSettings, RevocationMode};
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_kms::server::Seeding;
use cryptoutil_server::DevPki;
use cryptoutil_server::config::{HumanDuration, Secret};
use cryptoutil_testkit::identity::IdentityServer;
use serde_json::{Value, json};

pub(crate) const KMS_CLIENT: &str = "demo-kms-client";
pub(crate) const KMS_SECRET: &str = "demo-kms-client-secret";
const READONLY: &str = "demo-kms-readonly-client";
const READONLY_SECRET: &str = "demo-kms-readonly-client-secret";
pub(crate) const DEMO_KEY: &str = "demo-encryption-aes256";
const SIGNING_KEY: &str = "demo-signing-ec256";

/// A running Identity server with the demo data.
pub(crate) struct Idp {
    pub(crate) identity: cryptoutil_identity::server::Identity,
    pub(crate) issuer: String,
    admin: String,
    root: PathBuf,
    http: reqwest::Client,
    _pki: DevPki,
}

impl Idp {
    async fn start(change: impl FnOnce(&mut IdentitySettings)) -> Self {
        let server = IdentityServer::demo_with(change).await;
        let http = server.client_builder().build().unwrap();
        let (identity, issuer, admin, pki) = server.into_parts();
        Self {
            issuer,
            admin,
            root: pki.root(),
            identity,
            http,
            _pki: pki,
        }
    }

    pub(crate) async fn demo() -> Self {
        Self::start(|_| {}).await
    }

    /// A client_credentials access token.
    pub(crate) async fn token(&self, client: &str, secret: &str) -> String {
        let response = self
            .http
            .post(format!("{}/oauth2/v1/token", self.issuer))
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Revokes `token` (RFC 7009) as its client.
    async fn revoke(&self, client: &str, secret: &str, token: &str) {
        let response = self
            .http
            .post(format!("{}/oauth2/v1/revoke", self.issuer))
            .basic_auth(client, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Registers a client_credentials client (admin API) and returns its id and secret.
    async fn register(&self, extra: Value) -> (String, String) {
        let client_id = format!("test-client-{}", uuid::Uuid::now_v7());
        let mut body = json!({
            "client_id": client_id, "name": "federation test client",
            "auth_method": "client_secret_basic", "grant_types": ["client_credentials"],
            "scopes": ["kms:read", "kms:write"], "audiences": ["cryptoutil-kms"],
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = self
            .http
            .post(format!("{}/admin/v1/clients", self.admin))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{answer}");
        (
            client_id,
            answer["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn stop(self) {
        self.identity.stop().await;
    }
}

/// Settings that trust `idp` the way `--trust-issuer URL --trust-issuer-ca FILE --demo` does.
fn trusting(idp: &Idp, settings: &mut KmsSettings) {
    settings.auth.federation.issuers = vec![IssuerSettings::new(
        idp.issuer.clone(),
        Some(idp.root.clone()),
        Secret::new(DEMO_INTROSPECTION_SECRET),
    )];
}

/// A `--dev --demo` KMS federated to `idp`, with a last change to the settings.
pub(crate) async fn kms_for(idp: &Idp, change: impl FnOnce(&mut KmsSettings)) -> Kms {
    Kms::dev_seeded_with(Some(Seeding::Demo), |s| {
        trusting(idp, s);
        change(s);
    })
    .await
}

/// A request to the service surface with an optional bearer token.
async fn call(kms: &Kms, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = kms
        .http()
        .request(method, kms.public_url(&format!("/service/api/v1{path}")))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// The id of a demo-tenant key, looked up with `token`.
pub(crate) async fn key_id(kms: &Kms, token: &str, name: &str) -> String {
    let list = call(
        kms,
        "GET",
        &format!("/elastickeys?names={name}"),
        Some(token),
        b"",
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.json()["items"][0]["elastic_key_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} not visible: {}", list.text))
        .to_owned()
}

/// A 401 with the Bearer `invalid_token` challenge and `code` in the problem body.
fn assert_invalid_token(reply: &Reply, code: &str) {
    reply.assert_problem(401, code);
    assert_eq!(reply.json()["error"], code, "{}", reply.text);
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains("error_description=\""),
        "{challenge}"
    );
}

/// 403 `insufficient_scope` naming `scope`, in the body and the challenge.
fn assert_insufficient_scope(reply: &Reply, scope: &str) {
    reply.assert_problem(403, "insufficient_scope");
    let body = reply.json();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], scope);
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains(&format!("scope=\"{scope}\"")),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_tokens_work_at_the_kms_within_their_scopes_and_tenant() {
    let idp = Idp::demo().await;
    let kms = kms_for(&idp, |_| {}).await;

    // Readiness reports the issuer's JWKS.
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let check = &ready.json()["checks"][format!("jwks {}", idp.issuer)];
    assert!(check.to_string().contains("signing key"), "{}", ready.text);

    // demo-kms-client (kms:read kms:write, tenant demo-tenant): encrypt and decrypt.
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    let jwe = call(
        &kms,
        "POST",
        &format!("/elastickey/{aes}/encrypt"),
        Some(&token),
        b"Hello World!",
    )
    .await;
    assert_eq!(jwe.status, 200, "{}", jwe.text);
    let plain = call(
        &kms,
        "POST",
        &format!("/elastickey/{aes}/decrypt"),
        Some(&token),
        jwe.text.as_bytes(),
    )
    .await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(plain.body, b"Hello World!");
    // The case of the scheme does not matter (RFC 7235).
    let lower = kms
        .http()
        .get(kms.public_url("/service/api/v1/elastickeys"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);

    // demo-kms-readonly-client (kms:read): 403 on encrypt, verify works.
    let ec = key_id(&kms, &token, SIGNING_KEY).await;
    let jws = call(
        &kms,
        "POST",
        &format!("/elastickey/{ec}/sign"),
        Some(&token),
        b"payload",
    )
    .await;
    assert_eq!(jws.status, 200, "{}", jws.text);
    let readonly = idp.token(READONLY, READONLY_SECRET).await;
    let refused = call(
        &kms,
        "POST",
        &format!("/elastickey/{aes}/encrypt"),
        Some(&readonly),
        b"x",
    )
    .await;
    assert_insufficient_scope(&refused, "kms:encrypt");
    let refused = call(
        &kms,
        "POST",
        &format!("/elastickey/{ec}/sign"),
        Some(&readonly),
        b"x",
    )
    .await;
    assert_insufficient_scope(&refused, "kms:sign");
    let verified = call(
        &kms,
        "POST",
        &format!("/elastickey/{ec}/verify"),
        Some(&readonly),
        jws.text.as_bytes(),
    )
    .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    // kms:admin is not in the token: user administration is refused with its scope.
    let users = call(&kms, "GET", "/admin/realm-users", Some(&token), b"").await;
    assert_insufficient_scope(&users, "kms:admin");

    // The tenant comes from the token: another tenant's key is invisible and unusable.
    let other = kms.api(Surface::Service).await;
    let name = format!("other-{}", uuid::Uuid::now_v7());
    let created = other
        .post_json(
            "/elastickey",
            &json!({"name": name, "algorithm": "A256GCM/dir"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let foreign = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = call(
        &kms,
        "GET",
        &format!("/elastickeys?names={name}"),
        Some(&token),
        b"",
    )
    .await;
    assert_eq!(listed.json()["total"], 0, "{}", listed.text);
    let names = call(&kms, "GET", "/elastickeys?size=100", Some(&token), b"")
        .await
        .json();
    assert!(
        names["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != name.as_str())
    );
    assert!(
        names["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == DEMO_KEY)
    );
    let used = call(
        &kms,
        "POST",
        &format!("/elastickey/{foreign}/encrypt"),
        Some(&token),
        b"x",
    )
    .await;
    assert_eq!(used.status, 404, "{}", used.text);
    // X-Tenant-ID cannot move a token to another tenant.
    let other_tenant = kms.tenant_id(&kms.user.tenants[0]).await;
    let moved = kms
        .http()
        .get(kms.public_url("/service/api/v1/elastickeys"))
        .bearer_auth(&token)
        .header("X-Tenant-ID", other_tenant.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 403);

    // Audit: bearer successes and failures are recorded, never with the token.
    let events = common::audit_events(|e| e["method"] == "bearer");
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "success" && e["client_id"] == KMS_CLIENT)
    );
    assert!(events.iter().any(|e| e["reason"] == "insufficient_scope"));
    assert!(events.iter().all(|e| !e.to_string().contains(&token)));

    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_get_the_spec_error_codes() {
    let idp = Idp::demo().await;
    let kms = kms_for(&idp, |_| {}).await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    let encrypt = format!("/elastickey/{aes}/encrypt");

    // No credentials: 401 missing_token, offering Basic and Bearer.
    let none = call(&kms, "POST", &encrypt, None, b"x").await;
    none.assert_problem(401, "missing_token");
    assert_eq!(none.json()["error"], "missing_token");
    let challenge = none.challenge.clone().unwrap_or_default();
    assert!(
        challenge.starts_with("Basic ") && challenge.contains("Bearer realm="),
        "{challenge}"
    );

    // Malformed: not a JWS, or an empty token.
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some("not-a-jwt"), b"x").await,
        "invalid_token",
    );
    let empty = kms
        .http()
        .post(kms.public_url(&format!("/service/api/v1{encrypt}")))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_invalid_token(&Reply::read(empty).await, "invalid_token");

    // Tampered: one character of the payload changed (the signature no longer fits), and a
    // signature from another token.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = parts[1].to_owned().into_bytes();
    payload[5] = if payload[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        String::from_utf8(payload).unwrap(),
        parts[2]
    );
    let reply = call(&kms, "POST", &encrypt, Some(&tampered), b"x").await;
    assert!(reply.status == 401, "{}", reply.text);
    assert!(
        matches!(
            reply.json()["error"].as_str(),
            Some("invalid_signature" | "invalid_token")
        ),
        "{}",
        reply.text
    );
    let other = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        other.split('.').nth(2).unwrap()
    );
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some(&spliced), b"x").await,
        "invalid_signature",
    );

    // Wrong audience: a token of a client whose audience is another service.
    let (rs_client, rs_secret) = idp
        .register(json!({"audiences": ["cryptoutil-rs"], "tenant_id": "demo-tenant"}))
        .await;
    let for_rs = idp.token(&rs_client, &rs_secret).await;
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some(&for_rs), b"x").await,
        "invalid_audience",
    );

    // Unknown issuer: a real token of another Identity server.
    let stranger = Idp::demo().await;
    let foreign = stranger.token(KMS_CLIENT, KMS_SECRET).await;
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some(&foreign), b"x").await,
        "invalid_issuer",
    );
    stranger.stop().await;

    // A valid token without a tenant: 403 invalid_tenant (authenticated, but nowhere to act).
    let (lonely, lonely_secret) = idp.register(json!({})).await;
    let tenantless = idp.token(&lonely, &lonely_secret).await;
    let reply = call(&kms, "GET", "/elastickeys", Some(&tenantless), b"").await;
    reply.assert_problem(403, "invalid_tenant");
    assert_eq!(reply.json()["error"], "invalid_tenant");
    // … and one naming a tenant this KMS does not have.
    let (ghost, ghost_secret) = idp
        .register(json!({"tenant_id": format!("ghost-{}", uuid::Uuid::now_v7())}))
        .await;
    let ghostly = idp.token(&ghost, &ghost_secret).await;
    call(&kms, "GET", "/elastickeys", Some(&ghostly), b"")
        .await
        .assert_problem(403, "invalid_tenant");

    // Bearer tokens on the browser surface are handled the same way.
    let browser = kms
        .http()
        .get(kms.public_url("/browser/api/v1/elastickeys"))
        .bearer_auth(&for_rs)
        .send()
        .await
        .unwrap();
    assert_invalid_token(&Reply::read(browser).await, "invalid_audience");

    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_tenant_mapping_places_tokens_without_a_tenant() {
    let idp = Idp::demo().await;
    let kms = kms_for(&idp, |s| {
        s.auth.federation.issuers[0].fixed_tenant = Some("demo-tenant".to_owned());
    })
    .await;
    let (lonely, secret) = idp.register(json!({})).await;
    let token = idp.token(&lonely, &secret).await;
    key_id(&kms, &token, DEMO_KEY).await;
    // A token that names another tenant is refused under a fixed mapping.
    let (other, other_secret) = idp.register(json!({"tenant_id": "demo-tenant-2"})).await;
    let token = idp.token(&other, &other_secret).await;
    call(&kms, "GET", "/elastickeys", Some(&token), b"")
        .await
        .assert_problem(403, "invalid_tenant");
    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused_as_the_revocation_mode_says() {
    let idp = Idp::demo().await;

    // sensitive-only (default): the revoked token still lists keys (a read, not sensitive, and
    // nothing known about it yet), is refused on encrypt (kms:write is sensitive), and from
    // then on everywhere (the inactive answer is remembered).
    let kms = kms_for(&idp, |_| {}).await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    idp.revoke(KMS_CLIENT, KMS_SECRET, &token).await;
    key_id(&kms, &token, DEMO_KEY).await;
    let encrypt = format!("/elastickey/{aes}/encrypt");
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some(&token), b"x").await,
        "token_revoked",
    );
    let list = call(&kms, "GET", "/elastickeys", Some(&token), b"").await;
    assert_invalid_token(&list, "token_revoked");
    // An active answer is reused for sensitive_cache_ttl (default 10 s): a token used for a
    // sensitive request and revoked right after is still accepted within that window.
    let fresh = idp.token(KMS_CLIENT, KMS_SECRET).await;
    assert_eq!(
        call(&kms, "POST", &encrypt, Some(&fresh), b"x")
            .await
            .status,
        200
    );
    idp.revoke(KMS_CLIENT, KMS_SECRET, &fresh).await;
    assert_eq!(
        call(&kms, "POST", &encrypt, Some(&fresh), b"x")
            .await
            .status,
        200
    );
    kms.stop().await;

    // sensitive-only with sensitive_cache_ttl 0: every sensitive request asks.
    let kms = kms_for(&idp, |s| {
        s.auth.federation.revocation.sensitive_cache_ttl = HumanDuration::from_secs(0);
    })
    .await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    let encrypt = format!("/elastickey/{aes}/encrypt");
    assert_eq!(
        call(&kms, "POST", &encrypt, Some(&token), b"x")
            .await
            .status,
        200
    );
    idp.revoke(KMS_CLIENT, KMS_SECRET, &token).await;
    assert_invalid_token(
        &call(&kms, "POST", &encrypt, Some(&token), b"x").await,
        "token_revoked",
    );
    kms.stop().await;

    // every-request: refused at once, even for reads.
    let kms = kms_for(&idp, |s| {
        s.auth.federation.revocation.mode = RevocationMode::EveryRequest;
    })
    .await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    key_id(&kms, &token, DEMO_KEY).await;
    idp.revoke(KMS_CLIENT, KMS_SECRET, &token).await;
    let list = call(&kms, "GET", "/elastickeys", Some(&token), b"").await;
    assert_invalid_token(&list, "token_revoked");
    kms.stop().await;

    // interval (1 h here): an active answer holds for the interval, so a revocation after the
    // first check is noticed only when it is over; a token first seen after revocation is refused.
    let kms = kms_for(&idp, |s| {
        s.auth.federation.revocation.mode = RevocationMode::Interval;
        s.auth.federation.revocation.interval = HumanDuration::from_secs(3600);
    })
    .await;
    let seen = idp.token(KMS_CLIENT, KMS_SECRET).await;
    key_id(&kms, &seen, DEMO_KEY).await;
    idp.revoke(KMS_CLIENT, KMS_SECRET, &seen).await;
    key_id(&kms, &seen, DEMO_KEY).await;
    let unseen = idp.token(KMS_CLIENT, KMS_SECRET).await;
    idp.revoke(KMS_CLIENT, KMS_SECRET, &unseen).await;
    assert_invalid_token(
        &call(&kms, "GET", "/elastickeys", Some(&unseen), b"").await,
        "token_revoked",
    );
    kms.stop().await;

    // disabled: no introspection at all (no secret needed); a revoked token works until it
    // expires. Documented: choose this only when tokens are short-lived.
    let kms = kms_for(&idp, |s| {
        s.auth.federation.revocation.mode = RevocationMode::Disabled;
        s.auth.federation.issuers[0].introspection.client_secret = None;
    })
    .await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    idp.revoke(KMS_CLIENT, KMS_SECRET, &token).await;
    let jwe = call(
        &kms,
        "POST",
        &format!("/elastickey/{aes}/encrypt"),
        Some(&token),
        b"x",
    )
    .await;
    assert_eq!(jwe.status, 200, "{}", jwe.text);
    kms.stop().await;

    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let idp = Idp::start(|s| {
        s.tokens.access_token_lifetime = HumanDuration::from_secs(1);
    })
    .await;
    let kms = kms_for(&idp, |s| {
        s.auth.federation.issuers[0].clock_skew = HumanDuration::from_secs(0);
    })
    .await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let exp = {
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&cryptoutil_jose::b64::decode(payload.as_bytes(), "p").unwrap())
                .unwrap();
        claims["exp"].as_u64().unwrap()
    };
    // Wait until the token's exp has passed (the KMS allows no skew here).
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let list = call(&kms, "GET", "/elastickeys", Some(&token), b"").await;
    assert_invalid_token(&list, "token_expired");
    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_outages_fail_closed_with_503_and_show_in_readyz() {
    let idp = Idp::demo().await;
    // One KMS with the default JWKS cache (5 min), one whose cache expires after 1 s; neither
    // remembers validated tokens, so every request validates against the JWKS cache.
    let no_token_cache = |s: &mut KmsSettings| {
        s.auth.federation.token_cache.ttl = HumanDuration::from_secs(0);
    };
    let kms = kms_for(&idp, no_token_cache).await;
    let short = kms_for(&idp, |s| {
        no_token_cache(s);
        s.auth.federation.issuers[0].jwks_cache_ttl = HumanDuration::from_secs(1);
    })
    .await;
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let aes = key_id(&kms, &token, DEMO_KEY).await;
    key_id(&short, &token, DEMO_KEY).await;
    let issuer = idp.issuer.clone();
    idp.stop().await;

    // Keys cached: local validation still works for reads, but a sensitive request needs
    // introspection, which is unreachable: 503, never a pass.
    key_id(&kms, &token, DEMO_KEY).await;
    let encrypt = call(
        &kms,
        "POST",
        &format!("/elastickey/{aes}/encrypt"),
        Some(&token),
        b"x",
    )
    .await;
    encrypt.assert_problem(503, "temporarily_unavailable");

    // Keys past their cache TTL and the issuer down: 503 for every bearer request, and readyz
    // reports the issuer's JWKS check as failing.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let list = call(&short, "GET", "/elastickeys", Some(&token), b"").await;
    list.assert_problem(503, "temporarily_unavailable");
    let ready = short.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(
        ready.text.contains(&format!("jwks {issuer}")),
        "{}",
        ready.text
    );
    // Basic authentication is unaffected.
    assert_eq!(
        short
            .api(Surface::Service)
            .await
            .get("/elastickeys")
            .await
            .status,
        200
    );

    kms.stop().await;
    short.stop().await;
}
