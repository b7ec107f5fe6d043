//! DPoP-bound access tokens at the KMS (RFC 9449 §7) and its protected resource metadata
//! (RFC 9728), against a real Identity server and a real KMS over TLS.
//!
//! The bound tokens are Identity's own client_credentials tokens with `cnf.jkt` (and for the
//! delegation case `act`) added and signed again with Identity's signing key, so the KMS
//! validates them exactly as it validates what Identity issues.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::federation::{DEMO_KEY, Idp, KMS_CLIENT, KMS_SECRET, key_id, kms_for};

use common::{Kms, Reply};
use cryptoutil_identity::tokens::AccessTokenClaims;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm};
use cryptoutil_realm::dpop::access_token_hash;
use serde_json::{Map, Value, json};

/// The KMS's configured public URL: proofs name it, whatever address the test connects to.
const RESOURCE: &str = "https://kms.dpop.test";
const METADATA: &str = "https://kms.dpop.test/.well-known/oauth-protected-resource";

/// Identity's token for `KMS_CLIENT` with `extra` claims, signed again by Identity.
async fn bound_token(idp: &Idp, extra: Value) -> String {
    let token = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&cryptoutil_jose::b64::decode(payload.as_bytes(), "p").unwrap())
            .unwrap();
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let claims: AccessTokenClaims = serde_json::from_value(claims).unwrap();
    idp.identity
        .keys()
        .ring()
        .sign_access_token(&claims)
        .unwrap()
}

fn cnf(key: &Jwk) -> Value {
    json!({"cnf": {"jkt": key.thumbprint()}})
}

/// A proof by `key` for `method` at `path` under [`RESOURCE`], bound to `token`, then `edit`ed.
fn proof(
    key: &Jwk,
    method: &str,
    path: &str,
    token: &str,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> String {
    let mut header = Map::new();
    header.insert("typ".into(), json!("dpop+jwt"));
    header.insert("jwk".into(), key.to_value(false));
    let Value::Object(mut claims) = json!({
        "jti": uuid::Uuid::now_v7().to_string(),
        "htm": method,
        "htu": format!("{RESOURCE}{path}"),
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "ath": access_token_hash(token),
    }) else {
        unreachable!()
    };
    edit(&mut claims);
    cryptoutil_jose::jws::sign(
        key,
        JwsAlgorithm::ES256,
        &serde_json::to_vec(&claims).unwrap(),
        Some(&header),
    )
    .unwrap()
}

/// `method path` with `Authorization: <scheme> <token>` and the `DPoP` header when given.
async fn send(
    kms: &Kms,
    method: &str,
    path: &str,
    authorization: &str,
    dpop: Option<&str>,
) -> Reply {
    let mut request = kms
        .http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            kms.public_url(path),
        )
        .header("authorization", authorization)
        .header("content-type", "application/octet-stream")
        .body(b"secret".to_vec());
    if let Some(dpop) = dpop {
        request = request.header("dpop", dpop);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// A 401 whose `DPoP` challenge carries `error` and the metadata URL, with `error` in the body.
fn assert_dpop_refusal(reply: &Reply, error: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json()["error"], error, "{}", reply.text);
    let challenge = reply.challenge.as_deref().unwrap_or_default();
    let dpop = challenge
        .find("DPoP ")
        .map(|i| &challenge[i..])
        .unwrap_or_else(|| panic!("no DPoP challenge: {challenge}"));
    assert!(
        dpop.contains(&format!("error=\"{error}\""))
            && dpop.contains("algs=\"ES256 ES384 PS256 EdDSA\"")
            && dpop.contains(&format!("resource_metadata=\"{METADATA}\"")),
        "{challenge}"
    );
}

/// Identity, a KMS with [`RESOURCE`], a plain token, the demo AES key, its encrypt path, a
/// client's DPoP key.
struct World {
    idp: Idp,
    kms: Kms,
    plain: String,
    aes: String,
    path: String,
    key: Jwk,
}

impl World {
    async fn start() -> Self {
        let idp = Idp::demo().await;
        let kms = kms_for(&idp, |s| {
            s.auth.federation.resource = Some(RESOURCE.to_owned());
        })
        .await;
        let plain = idp.token(KMS_CLIENT, KMS_SECRET).await;
        let aes = key_id(&kms, &plain, DEMO_KEY).await;
        Self {
            path: format!("/service/api/v1/elastickey/{aes}/encrypt"),
            key: Jwk::generate_ec(EcCurve::P256).unwrap(),
            idp,
            kms,
            plain,
            aes,
        }
    }

    /// An encryption with a token bound to [`Self::key`] carrying `extra` claims, and its proof.
    async fn dpop_encrypt(&self, extra: Value) -> Reply {
        let mut claims = cnf(&self.key);
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let token = bound_token(&self.idp, claims).await;
        let p = proof(&self.key, "POST", &self.path, &token, |_| {});
        send(
            &self.kms,
            "POST",
            &self.path,
            &format!("DPoP {token}"),
            Some(&p),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_bound_tokens_work_only_with_a_fresh_proof_of_their_key() {
    let World {
        idp,
        kms,
        plain,
        aes,
        path,
        key,
    } = World::start().await;
    let token = bound_token(&idp, cnf(&key)).await;
    let auth = format!("DPoP {token}");

    // The token with a proof of its key: the encryption works, and is audited as dpop.
    let good = proof(&key, "POST", &path, &token, |_| {});
    let ok = send(&kms, "POST", &path, &auth, Some(&good)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        !common::audit_events(|e| e["method"] == "dpop" && e["outcome"] == "success").is_empty()
    );

    // The same proof again: a replay.
    let replay = send(&kms, "POST", &path, &auth, Some(&good)).await;
    assert_dpop_refusal(&replay, "invalid_dpop_proof");
    assert!(replay.text.contains("used before"), "{}", replay.text);

    // The stolen token as a bearer token, with or without the proof: refused.
    for dpop in [None, Some(proof(&key, "POST", &path, &token, |_| {}))] {
        let stolen = send(
            &kms,
            "POST",
            &path,
            &format!("Bearer {token}"),
            dpop.as_deref(),
        )
        .await;
        assert_dpop_refusal(&stolen, "invalid_token");
        assert!(
            stolen.text.contains("bound to a DPoP key"),
            "{}",
            stolen.text
        );
    }

    // A proof of another key (the thief's own).
    let thief = Jwk::generate_ec(EcCurve::P256).unwrap();
    let foreign = proof(&thief, "POST", &path, &token, |_| {});
    assert_dpop_refusal(
        &send(&kms, "POST", &path, &auth, Some(&foreign)).await,
        "invalid_dpop_proof",
    );

    // Another method, another URL, another host, no ath, another token's ath, too old, none.
    let elsewhere = format!("/service/api/v1/elastickey/{aes}/decrypt");
    let refused = [
        proof(&key, "PUT", &path, &token, |_| {}),
        proof(&key, "POST", &elsewhere, &token, |_| {}),
        proof(&key, "POST", &path, &token, |c| {
            c.insert("htu".into(), json!(kms.public_url(&path)));
        }),
        proof(&key, "POST", &path, &token, |c| {
            c.remove("ath");
        }),
        proof(&key, "POST", &path, &token, |c| {
            c.insert("ath".into(), json!(access_token_hash(&plain)));
        }),
        proof(&key, "POST", &path, &token, |c| {
            let old = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
            c.insert("iat".into(), json!(old));
        }),
    ];
    for bad in &refused {
        assert_dpop_refusal(
            &send(&kms, "POST", &path, &auth, Some(bad)).await,
            "invalid_dpop_proof",
        );
    }
    assert_dpop_refusal(
        &send(&kms, "POST", &path, &auth, None).await,
        "invalid_dpop_proof",
    );
    let two = kms
        .http()
        .post(kms.public_url(&path))
        .header("authorization", &auth)
        .header("dpop", proof(&key, "POST", &path, &token, |_| {}))
        .header("dpop", proof(&key, "POST", &path, &token, |_| {}))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_dpop_refusal(&Reply::read(two).await, "invalid_dpop_proof");

    // An unbound token presented with the DPoP scheme.
    let unbound = proof(&key, "POST", &path, &plain, |_| {});
    assert_dpop_refusal(
        &send(
            &kms,
            "POST",
            &path,
            &format!("DPoP {plain}"),
            Some(&unbound),
        )
        .await,
        "invalid_token",
    );

    // The browser surface takes the same credentials.
    let list = "/browser/api/v1/elastickeys";
    let listed = send(
        &kms,
        "GET",
        list,
        &auth,
        Some(&proof(&key, "GET", list, &token, |_| {})),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_dpop_refusal(
        &send(&kms, "GET", list, &format!("Bearer {token}"), None).await,
        "invalid_token",
    );

    // Plain bearer tokens keep working, and every 401 names the metadata document.
    let bearer = send(&kms, "POST", &path, &format!("Bearer {plain}"), None).await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    let anonymous = kms
        .http()
        .get(kms.public_url("/service/api/v1/elastickeys"))
        .send()
        .await;
    let anonymous = Reply::read(anonymous.unwrap()).await;
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.challenge.unwrap();
    assert!(
        challenge.starts_with("Basic ")
            && challenge.contains(&format!(
                "Bearer realm=\"cryptoutil-kms\", resource_metadata=\"{METADATA}\""
            ))
            && challenge.contains("DPoP realm=\"cryptoutil-kms\"")
            && !challenge.contains("error="),
        "{challenge}"
    );
    let expired = send(
        &kms,
        "GET",
        "/service/api/v1/elastickeys",
        "Bearer a.b.c",
        None,
    )
    .await;
    assert_eq!(expired.status, 401);
    assert!(
        expired
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("error=\"invalid_token\"") && c.contains(METADATA)),
        "{:?}",
        expired.challenge
    );

    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_shows_the_user_and_the_actor_of_a_delegated_token() {
    let world = World::start().await;
    let actor = format!("rs-{}", uuid::Uuid::now_v7());
    let ok = world
        .dpop_encrypt(json!({"act": {"sub": actor, "act": {"sub": "gateway"}}}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let chain = format!("{actor} via gateway");
    let events = common::audit_events(|e| e["actor"] == chain.as_str());
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "authentication"
                && e["subject"] == format!("bearer:{KMS_CLIENT}")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["operation"] == "encrypt"),
        "the operation itself names the actor: {events:?}"
    );
    world.kms.stop().await;
    world.idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_describes_the_kms() {
    let idp = Idp::demo().await;
    let kms = kms_for(&idp, |s| {
        s.auth.federation.resource = Some(RESOURCE.to_owned());
    })
    .await;
    let doc = kms
        .get_public("/.well-known/oauth-protected-resource")
        .await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    let body = doc.json();
    assert_eq!(body["resource"], RESOURCE);
    assert_eq!(body["authorization_servers"], json!([idp.issuer]));
    let scopes = body["scopes_supported"].as_array().unwrap();
    for s in ["kms:admin", "kms:read", "kms:write", "kms:encrypt"] {
        assert!(scopes.contains(&json!(s)), "{s}: {body}");
    }
    assert_eq!(body["bearer_methods_supported"], json!(["header"]));
    assert_eq!(
        body["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "PS256", "EdDSA"])
    );
    assert_eq!(body["dpop_bound_access_tokens_required"], false);
    let cached = kms
        .http()
        .get(kms.public_url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cached.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=3600"
    );
    let openapi = kms.get_public("/ui/swagger/doc.json").await;
    assert!(
        openapi.json()["paths"]["/.well-known/oauth-protected-resource"]["get"].is_object(),
        "the document is in the OpenAPI description"
    );
    kms.stop().await;

    // Only DPoP: plain bearer tokens are refused, only DPoP is challenged, the document says so.
    let kms = kms_for(&idp, |s| {
        s.auth.federation.resource = Some(RESOURCE.to_owned());
        s.auth.federation.dpop.dpop_bound_access_tokens_required = true;
    })
    .await;
    let doc = kms
        .get_public("/.well-known/oauth-protected-resource")
        .await;
    assert_eq!(doc.json()["dpop_bound_access_tokens_required"], true);
    let plain = idp.token(KMS_CLIENT, KMS_SECRET).await;
    let refused = send(
        &kms,
        "GET",
        "/service/api/v1/elastickeys",
        &format!("Bearer {plain}"),
        None,
    )
    .await;
    assert_dpop_refusal(&refused, "invalid_token");
    assert!(
        !refused
            .challenge
            .as_deref()
            .unwrap_or_default()
            .contains("Bearer "),
        "{:?}",
        refused.challenge
    );
    kms.stop().await;

    // Without a resource identifier there is no document.
    let kms = kms_for(&idp, |_| {}).await;
    assert_eq!(
        kms.get_public("/.well-known/oauth-protected-resource")
            .await
            .status,
        404
    );
    kms.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resource_identifier_is_an_accepted_audience() {
    let world = World::start().await;
    // RFC 8707: a token requested for this resource has it as `aud`, and is accepted.
    let ok = world.dpop_encrypt(json!({"aud": RESOURCE})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // A token for another resource is not.
    let refused = world
        .dpop_encrypt(json!({"aud": "https://elsewhere.dpop.test"}))
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(
        refused.json()["error"],
        "invalid_audience",
        "{}",
        refused.text
    );
    world.kms.stop().await;
    world.idp.stop().await;
}
