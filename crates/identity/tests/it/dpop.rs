//! DPoP (RFC 9449) at Identity over real HTTPS: bound tokens from the code, refresh and client
//! credentials grants, the nonce dance, every refusal of a proof, refresh-token binding for
//! public clients, `dpop_jkt` on the authorization request and PAR, clients registered with
//! `dpop_bound_access_tokens`, and two instances on one PostgreSQL database sharing the replay
//! cache and accepting each other's nonces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use cryptoutil_identity::config::DpopNonceMode;
use cryptoutil_identity::server::{Identity, Seeding};
use cryptoutil_identity::storage::DatabaseSettings;
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, OkpCurve, b64, jws};
use cryptoutil_server::DevPki;
use cryptoutil_server::config::Secret;
use cryptoutil_testkit::postgres::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const TOKEN: &str = "/oauth2/v1/token";
const PAR: &str = "/oauth2/v1/par";

/// A DPoP key pair held by a client.
struct Holder {
    key: Jwk,
    alg: JwsAlgorithm,
}

impl Holder {
    fn es256() -> Self {
        Self {
            key: Jwk::generate_ec(EcCurve::P256).unwrap(),
            alg: JwsAlgorithm::ES256,
        }
    }

    fn ed25519() -> Self {
        Self {
            key: Jwk::generate_okp(OkpCurve::Ed25519).unwrap(),
            alg: JwsAlgorithm::EdDSA,
        }
    }

    fn jkt(&self) -> String {
        self.key.thumbprint()
    }

    /// A fresh proof for `POST htu` with `nonce`, its header and claims changed by `edit`.
    fn proof_with(
        &self,
        htu: &str,
        nonce: Option<&str>,
        edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>),
    ) -> String {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("jwk".into(), self.key.to_value(false));
        let Value::Object(mut claims) = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": "POST",
            "htu": htu,
            "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        }) else {
            unreachable!()
        };
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        edit(&mut header, &mut claims);
        jws::sign(
            &self.key,
            self.alg,
            &serde_json::to_vec(&claims).unwrap(),
            Some(&header),
        )
        .unwrap()
    }

    fn proof(&self, htu: &str, nonce: Option<&str>) -> String {
        self.proof_with(htu, nonce, |_, _| {})
    }
}

/// An answer: status, `DPoP-Nonce` header, JSON body.
struct Answer {
    status: StatusCode,
    nonce: Option<String>,
    body: Value,
}

impl Answer {
    fn error(&self) -> (u16, &str) {
        (
            self.status.as_u16(),
            self.body["error"].as_str().unwrap_or(""),
        )
    }
}

/// POSTs `form` to `url` with the given `DPoP` header fields and optional Basic credentials.
async fn post(
    http: &reqwest::Client,
    url: &str,
    basic: Option<(&str, &str)>,
    proofs: &[&str],
    form: &[(&str, &str)],
) -> Answer {
    let mut request = http.post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    Answer {
        status,
        nonce,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A code for the public SPA client, the authorization request carrying `extra` parameters.
async fn spa_code(idp: &Idp, scope: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut url =
        url::Url::parse(&authorize_url(idp, SPA, SPA_REDIRECT, scope, &challenge)).unwrap();
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    let browser = idp.browser();
    let callback = sign_in(idp, &browser, url.as_str(), "demo-user").await;
    let code = query(&callback)
        .get("code")
        .unwrap_or_else(|| panic!("no code: {callback}"))
        .clone();
    (code, verifier)
}

fn redeem_form<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", SPA),
        ("code", code),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn a_bound_code_flow_with_the_nonce_dance_refresh_binding_and_introspection() {
    let idp = Idp::demo().await;
    let holder = Holder::es256();
    let token_url = idp.url(TOKEN);

    // Discovery lists the proof algorithms.
    let discovery: Value = idp
        .http
        .get(idp.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "PS256", "EdDSA"])
    );

    let (code, verifier) = spa_code(
        &idp,
        "openid offline_access",
        &[("dpop_jkt", &holder.jkt())],
    )
    .await;
    // No nonce yet: use_dpop_nonce with a fresh DPoP-Nonce; the code is not spent.
    let first = post(
        &idp.http,
        &token_url,
        None,
        &[&holder.proof(&token_url, None)],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(first.error(), (400, "use_dpop_nonce"), "{}", first.body);
    let nonce = first.nonce.clone().expect("DPoP-Nonce");
    // A stale (forged) nonce is refused the same way.
    let stale = post(
        &idp.http,
        &token_url,
        None,
        &[&holder.proof(&token_url, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(stale.error(), (400, "use_dpop_nonce"));
    // The retry with the nonce succeeds.
    let proof = holder.proof(&token_url, Some(&nonce));
    let tokens = post(
        &idp.http,
        &token_url,
        None,
        &[&proof],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.body["token_type"], "DPoP");
    assert!(tokens.nonce.is_some(), "a fresh nonce on success too");
    let access = tokens.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"], json!({"jkt": holder.jkt()}));
    let introspection = idp.introspect(access).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["token_type"], "DPoP");
    assert_eq!(introspection["cnf"], json!({"jkt": holder.jkt()}));

    // The same proof again is a replay.
    let (code2, verifier2) = spa_code(&idp, "openid", &[]).await;
    let replay = post(
        &idp.http,
        &token_url,
        None,
        &[&proof],
        &redeem_form(&code2, &verifier2),
    )
    .await;
    assert_eq!(replay.error(), (400, "invalid_dpop_proof"));
    // Without a proof the same (unbound) code gives a Bearer token.
    let bearer = post(
        &idp.http,
        &token_url,
        None,
        &[],
        &redeem_form(&code2, &verifier2),
    )
    .await;
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    assert_eq!(bearer.body["token_type"], "Bearer");
    let plain = bearer.body["access_token"].as_str().unwrap();
    assert!(jwt_part(plain, 1).get("cnf").is_none());
    let introspection = idp.introspect(plain).await;
    assert_eq!(introspection["token_type"], "Bearer");
    assert!(introspection.get("cnf").is_none());

    // The public client's refresh token is bound: no proof, or another key's, is refused and
    // does not spend it; the right key refreshes.
    let refresh = tokens.body["refresh_token"].as_str().unwrap();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", SPA),
        ("refresh_token", refresh),
    ];
    let none = post(&idp.http, &token_url, None, &[], &refresh_form).await;
    assert_eq!(none.error(), (400, "invalid_grant"), "{}", none.body);
    let thief = Holder::ed25519();
    let other = post(
        &idp.http,
        &token_url,
        None,
        &[&thief.proof(&token_url, Some(&nonce))],
        &refresh_form,
    )
    .await;
    assert_eq!(other.error(), (400, "invalid_grant"), "{}", other.body);
    let refreshed = post(
        &idp.http,
        &token_url,
        None,
        &[&holder.proof(&token_url, Some(&nonce))],
        &refresh_form,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["token_type"], "DPoP");
    let access = refreshed.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], holder.jkt());
    // Its successor is bound too.
    let successor = refreshed.body["refresh_token"].as_str().unwrap();
    let again = post(
        &idp.http,
        &token_url,
        None,
        &[&thief.proof(&token_url, Some(&nonce))],
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", successor),
        ],
    )
    .await;
    assert_eq!(again.error(), (400, "invalid_grant"));
    idp.stop().await;
}

#[tokio::test]
async fn every_bad_proof_is_refused_with_invalid_dpop_proof() {
    let idp = Idp::demo_with(|s| s.dpop.nonce = DpopNonceMode::Off).await;
    let holder = Holder::es256();
    let token_url = idp.url(TOKEN);
    let basic = Some((KMS_CLIENT, KMS_CLIENT_SECRET));
    let form = [("grant_type", "client_credentials")];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // A valid proof: client credentials get a bound token; nonces are off, so none is sent.
    let ok = post(
        &idp.http,
        &token_url,
        basic,
        &[&holder.proof(&token_url, None)],
        &form,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "DPoP");
    assert!(ok.nonce.is_none());
    let access = ok.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], holder.jkt());
    // An EdDSA proof too.
    let ed = Holder::ed25519();
    let ok = post(
        &idp.http,
        &token_url,
        basic,
        &[&ed.proof(&token_url, None)],
        &form,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let hmac = Jwk::generate_oct(32).unwrap();
    let hs256 = {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("jwk".into(), holder.key.to_value(false));
        let claims = json!({"jti": "hs", "htm": "POST", "htu": token_url, "iat": now});
        jws::sign(
            &hmac,
            JwsAlgorithm::HS256,
            claims.to_string().as_bytes(),
            Some(&header),
        )
        .unwrap()
    };
    let alg_none = {
        let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": holder.key.to_value(false)});
        let claims = json!({"jti": "none", "htm": "POST", "htu": token_url, "iat": now});
        format!(
            "{}.{}.",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htu",
            holder.proof(&idp.url("/oauth2/v1/introspect"), None),
        ),
        (
            "another host",
            holder.proof("https://attacker.example/oauth2/v1/token", None),
        ),
        (
            "wrong htm",
            holder.proof_with(&token_url, None, |_, c| {
                c.insert("htm".into(), json!("GET"));
            }),
        ),
        (
            "expired iat",
            holder.proof_with(&token_url, None, |_, c| {
                c.insert("iat".into(), json!(now - 300));
            }),
        ),
        (
            "iat in the future",
            holder.proof_with(&token_url, None, |_, c| {
                c.insert("iat".into(), json!(now + 300));
            }),
        ),
        (
            "jwk with its private part",
            holder.proof_with(&token_url, None, |h, _| {
                h.insert("jwk".into(), holder.key.to_value(true));
            }),
        ),
        (
            "wrong typ",
            holder.proof_with(&token_url, None, |h, _| {
                h.insert("typ".into(), json!("JWT"));
            }),
        ),
        ("HS256", hs256),
        ("alg none", alg_none),
        ("not a JWS", "not-a-proof".to_owned()),
        ("oversized", "a".repeat(9000)),
    ];
    for (name, proof) in &cases {
        let answer = post(&idp.http, &token_url, basic, &[proof], &form).await;
        assert_eq!(
            answer.error(),
            (400, "invalid_dpop_proof"),
            "{name}: {}",
            answer.body
        );
    }
    // Two DPoP header fields.
    let (a, b) = (
        holder.proof(&token_url, None),
        holder.proof(&token_url, None),
    );
    let two = post(&idp.http, &token_url, basic, &[&a, &b], &form).await;
    assert_eq!(two.error(), (400, "invalid_dpop_proof"));
    // A replayed jti (the first use succeeds, the second is refused).
    let proof = holder.proof(&token_url, None);
    let first = post(&idp.http, &token_url, basic, &[&proof], &form).await;
    assert_eq!(first.status, 200);
    let replay = post(&idp.http, &token_url, basic, &[&proof], &form).await;
    assert_eq!(replay.error(), (400, "invalid_dpop_proof"));
    // An unauthenticated request is refused before the proof is looked at (and not remembered).
    let fresh = holder.proof(&token_url, None);
    let unauth = post(
        &idp.http,
        &token_url,
        Some((KMS_CLIENT, "wrong")),
        &[&fresh],
        &form,
    )
    .await;
    assert_eq!(unauth.error().1, "invalid_client");
    let after = post(&idp.http, &token_url, basic, &[&fresh], &form).await;
    assert_eq!(after.status, 200, "{}", after.body);
    idp.stop().await;
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_on_the_authorization_request_and_par() {
    let idp = Idp::demo_with(|s| s.dpop.nonce = DpopNonceMode::Off).await;
    let holder = Holder::es256();
    let other = Holder::es256();
    let token_url = idp.url(TOKEN);

    // Authorization request with dpop_jkt: another key's proof, or none, cannot redeem it.
    let (code, verifier) = spa_code(&idp, "openid", &[("dpop_jkt", &holder.jkt())]).await;
    let wrong = post(
        &idp.http,
        &token_url,
        None,
        &[&other.proof(&token_url, None)],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(wrong.error(), (400, "invalid_dpop_proof"), "{}", wrong.body);
    let (code, verifier) = spa_code(&idp, "openid", &[("dpop_jkt", &holder.jkt())]).await;
    let none = post(
        &idp.http,
        &token_url,
        None,
        &[],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(none.error(), (400, "invalid_dpop_proof"), "{}", none.body);
    let (code, verifier) = spa_code(&idp, "openid", &[("dpop_jkt", &holder.jkt())]).await;
    let right = post(
        &idp.http,
        &token_url,
        None,
        &[&holder.proof(&token_url, None)],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(right.body["token_type"], "DPoP");

    // A malformed dpop_jkt goes back to the client as invalid_request.
    let (_, challenge) = pkce();
    let url = format!(
        "{}&dpop_jkt=short",
        authorize_url(&idp, SPA, SPA_REDIRECT, "openid", &challenge)
    );
    let browser = idp.browser();
    let response = browser.get(&url).send().await.unwrap();
    let back = query(&location(&response));
    assert_eq!(back["error"], "invalid_request");

    // PAR: a DPoP header binds the code to its key; dpop_jkt and the header must agree.
    let par_url = idp.url(PAR);
    let basic = Some((CONFIDENTIAL, CONFIDENTIAL_SECRET));
    let (verifier, challenge) = pkce();
    let par_form = [
        ("response_type", "code"),
        ("client_id", CONFIDENTIAL),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("scope", "openid offline_access"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut mismatched = par_form.to_vec();
    let other_jkt = other.jkt();
    mismatched.push(("dpop_jkt", &other_jkt));
    let refused = post(
        &idp.http,
        &par_url,
        basic,
        &[&holder.proof(&par_url, None)],
        &mismatched,
    )
    .await;
    assert_eq!(
        refused.error(),
        (400, "invalid_dpop_proof"),
        "{}",
        refused.body
    );
    let pushed = post(
        &idp.http,
        &par_url,
        basic,
        &[&holder.proof(&par_url, None)],
        &par_form,
    )
    .await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    let mut url = url::Url::parse(&idp.url("/oauth2/v1/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CONFIDENTIAL)
        .append_pair("request_uri", pushed.body["request_uri"].as_str().unwrap());
    let code = query(&sign_in(&idp, &browser, url.as_str(), "demo-user").await)["code"].clone();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let wrong = post(
        &idp.http,
        &token_url,
        basic,
        &[&other.proof(&token_url, None)],
        &redeem,
    )
    .await;
    assert_eq!(wrong.error(), (400, "invalid_dpop_proof"), "{}", wrong.body);

    // A confidential client's refresh token is not bound (RFC 9449 §5), but the new access
    // token is bound to the new proof's key.
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid offline_access",
        &challenge,
    );
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CONFIDENTIAL_REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = post(
        &idp.http,
        &token_url,
        basic,
        &[&holder.proof(&token_url, None)],
        &redeem,
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.body["token_type"], "DPoP");
    let refresh = tokens.body["refresh_token"].as_str().unwrap();
    let refreshed = post(
        &idp.http,
        &token_url,
        basic,
        &[&other.proof(&token_url, None)],
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let access = refreshed.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_part(access, 1)["cnf"]["jkt"], other.jkt());
    idp.stop().await;
}

#[tokio::test]
async fn a_dpop_bound_client_without_a_proof_is_refused() {
    let idp = Idp::demo_with(|s| s.dpop.nonce = DpopNonceMode::Off).await;
    let client_id = format!("dpop-client-{}", uuid::Uuid::now_v7());
    let response = idp
        .http
        .post(format!("{}/admin/v1/clients", idp.admin))
        .json(&json!({
            "client_id": client_id,
            "name": "DPoP-bound test client",
            "auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "scopes": ["kms:read"],
            "audiences": ["cryptoutil-kms"],
            "dpop_bound_access_tokens": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let token_url = idp.url(TOKEN);
    let form = [("grant_type", "client_credentials")];
    let basic = Some((client_id.as_str(), secret.as_str()));
    let refused = post(&idp.http, &token_url, basic, &[], &form).await;
    assert_eq!(
        refused.error(),
        (400, "invalid_dpop_proof"),
        "{}",
        refused.body
    );
    let holder = Holder::es256();
    let ok = post(
        &idp.http,
        &token_url,
        basic,
        &[&holder.proof(&token_url, None)],
        &form,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "DPoP");
    idp.stop().await;
}

async fn start_on(pki: &DevPki, db: &str, issuer: &str, kek: &str) -> Identity {
    let mut settings = common::settings(pki);
    settings.database = DatabaseSettings::with_url(db);
    settings.issuer = Some(issuer.to_owned());
    settings.keys.encryption_key = Some(Secret::new(kek));
    cryptoutil_identity::server::start(settings, false, None, Some(Seeding::Demo))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_replay_cache_and_accept_each_others_nonces() {
    let Some(db) = TestDatabase::create("identity_dpop").await else {
        return;
    };
    let pki = DevPki::generate().unwrap();
    // Both instances are configured with one issuer URL (the proofs' htu); the test talks to
    // each one directly.
    let issuer = "https://identity.test.invalid";
    let kek = cryptoutil_identity::signing::KeyEncryptionKey::generate()
        .unwrap()
        .to_base64url();
    let a = start_on(&pki, &db.url, issuer, &kek).await;
    let b = start_on(&pki, &db.url, issuer, &kek).await;
    let own = |i: &Identity| format!("https://127.0.0.1:{}{TOKEN}", i.server.public_addr.port());
    let http = cryptoutil_testkit::tls::client_builder(&pki)
        .build()
        .unwrap();
    let htu = format!("{issuer}{TOKEN}");
    let holder = Holder::es256();
    let basic = Some((KMS_CLIENT, KMS_CLIENT_SECRET));
    let form = [("grant_type", "client_credentials")];

    let ask = post(&http, &own(&a), basic, &[&holder.proof(&htu, None)], &form).await;
    assert_eq!(ask.error(), (400, "use_dpop_nonce"));
    let nonce = ask.nonce.unwrap();
    // A's nonce works at A, and the proof is then refused at B (replay, shared cache).
    let proof = holder.proof(&htu, Some(&nonce));
    let at_a = post(&http, &own(&a), basic, &[&proof], &form).await;
    assert_eq!(at_a.status, 200, "{}", at_a.body);
    let at_b = post(&http, &own(&b), basic, &[&proof], &form).await;
    assert_eq!(at_b.error(), (400, "invalid_dpop_proof"), "{}", at_b.body);
    // A's nonce in a fresh proof is accepted at B (stateless nonces from the shared key).
    let fresh = post(
        &http,
        &own(&b),
        basic,
        &[&holder.proof(&htu, Some(&nonce))],
        &form,
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.body["token_type"], "DPoP");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn single_page_apps_may_send_dpop_and_read_the_nonce_cross_origin() {
    let idp = Idp::demo().await;
    // The demo seed allows the sample client's origin.
    let origin = "https://localhost:8084";
    let preflight = idp
        .http
        .request(reqwest::Method::OPTIONS, idp.url(TOKEN))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, dpop")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("dpop"), "{allowed}");
    let holder = Holder::es256();
    let response = idp
        .http
        .post(idp.url(TOKEN))
        .header("origin", origin)
        .header("DPoP", holder.proof(&idp.url(TOKEN), None))
        .form(&[("grant_type", "client_credentials")])
        .basic_auth(KMS_CLIENT, Some(KMS_CLIENT_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("dpop-nonce"));
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("dpop-nonce"), "{exposed}");
    idp.stop().await;
}

/// GETs userinfo with `authorization` and optional `DPoP` proof: status, `WWW-Authenticate`.
async fn userinfo(idp: &Idp, authorization: &str, proof: Option<&str>) -> (u16, String) {
    let mut request = idp
        .http
        .get(idp.url("/oidc/v1/userinfo"))
        .header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_the_dpop_scheme_and_a_proof_of_its_key() {
    let idp = Idp::demo_with(|s| s.dpop.nonce = DpopNonceMode::Off).await;
    let holder = Holder::es256();
    let token_url = idp.url(TOKEN);
    let userinfo_url = idp.url("/oidc/v1/userinfo");
    let (code, verifier) = spa_code(&idp, "openid", &[]).await;
    let tokens = post(
        &idp.http,
        &token_url,
        None,
        &[&holder.proof(&token_url, None)],
        &redeem_form(&code, &verifier),
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let access = tokens.body["access_token"].as_str().unwrap().to_owned();
    let ath = cryptoutil_identity::dpop::access_token_hash(&access);
    let get_proof = |h: &Holder, ath: Option<&str>| {
        h.proof_with(&userinfo_url, None, |_, c| {
            c.insert("htm".into(), json!("GET"));
            if let Some(ath) = ath {
                c.insert("ath".into(), json!(ath));
            }
        })
    };

    // A stolen bound token presented as Bearer is refused.
    let (status, challenge) = userinfo(&idp, &format!("Bearer {access}"), None).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // With the DPoP scheme and a proof of the key, bound to the token (ath): accepted.
    let proof = get_proof(&holder, Some(&ath));
    let (status, challenge) = userinfo(&idp, &format!("DPoP {access}"), Some(&proof)).await;
    assert_eq!(status, 200, "{challenge}");
    // The same proof again, a proof of another key, one without ath, none: refused with a
    // DPoP challenge.
    let thief = Holder::es256();
    for (name, proof) in [
        ("replayed", Some(proof)),
        ("another key", Some(get_proof(&thief, Some(&ath)))),
        ("no ath", Some(get_proof(&holder, None))),
        ("no proof", None),
    ] {
        let (status, challenge) = userinfo(&idp, &format!("DPoP {access}"), proof.as_deref()).await;
        assert_eq!(status, 401, "{name}: {challenge}");
        assert!(challenge.starts_with("DPoP "), "{name}: {challenge}");
        assert!(challenge.contains("algs=\"ES256"), "{name}: {challenge}");
    }
    // An unbound token is refused with the DPoP scheme, accepted as Bearer.
    let (code, verifier) = spa_code(&idp, "openid", &[]).await;
    let plain = post(
        &idp.http,
        &token_url,
        None,
        &[],
        &redeem_form(&code, &verifier),
    )
    .await;
    let plain = plain.body["access_token"].as_str().unwrap().to_owned();
    let ath = cryptoutil_identity::dpop::access_token_hash(&plain);
    let (status, _) = userinfo(
        &idp,
        &format!("DPoP {plain}"),
        Some(&get_proof(&holder, Some(&ath))),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = userinfo(&idp, &format!("Bearer {plain}"), None).await;
    assert_eq!(status, 200);
    idp.stop().await;
}
