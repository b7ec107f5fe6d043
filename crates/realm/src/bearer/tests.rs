#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoutil_jose::{EcCurve, Jwk, OkpCurve};
use http::HeaderValue;
use serde_json::{Map, Value, json};

use super::*;

const ISSUER: &str = "https://identity.example.test";
const AUDIENCE: &str = "cryptoutil-rs";
const NOW: u64 = 1_800_000_000;

/// A JWKS endpoint under test control: serves `keys`, or fails while `down`.
#[derive(Debug, Default)]
struct FakeIssuer {
    keys: Mutex<Vec<Value>>,
    down: Mutex<bool>,
    fetches: AtomicUsize,
}

impl FakeIssuer {
    fn serving(keys: &[&Jwk]) -> Arc<Self> {
        let issuer = Arc::new(Self::default());
        issuer.publish(keys);
        issuer
    }

    fn publish(&self, keys: &[&Jwk]) {
        *self.keys.lock().unwrap() = keys
            .iter()
            .map(|k| k.to_public().unwrap().to_value(false))
            .collect();
    }

    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksFetcher for FakeIssuer {
    fn fetch(&self) -> crate::BoxFuture<'_, Result<String, BearerError>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if *self.down.lock().unwrap() {
                return Err(BearerError::JwksUnavailable("connection refused".into()));
            }
            Ok(json!({ "keys": *self.keys.lock().unwrap() }).to_string())
        })
    }
}

fn ec_key(kid: &str) -> Jwk {
    let mut key = Jwk::generate_ec(EcCurve::P256).unwrap();
    key.set_kid(Some(kid.to_owned()));
    key
}

fn claims(overrides: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "sub": "demo-user", "aud": AUDIENCE, "client_id": "demo-spa-client",
        "scope": "openid read:resource", "jti": "j1", "iat": NOW - 10, "exp": NOW + 900,
        "tenant_id": "demo-tenant",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign_with(key: &Jwk, alg: JwsAlgorithm, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Map::new();
    if let Some(kid) = key.kid() {
        header.insert("kid".into(), kid.into());
    }
    if let Some(typ) = typ {
        header.insert("typ".into(), typ.into());
    }
    cryptoutil_jose::jws::sign(key, alg, claims.to_string().as_bytes(), Some(&header)).unwrap()
}

fn token(key: &Jwk, overrides: Value) -> String {
    sign_with(key, JwsAlgorithm::ES256, Some("at+jwt"), &claims(overrides))
}

fn validator(fake: &Arc<FakeIssuer>) -> BearerValidator {
    BearerValidator::new(
        IssuerTrust::new(ISSUER, vec![AUDIENCE.into()]),
        fake.clone(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_valid_token_yields_its_claims() {
    let key = ec_key("k1");
    let v = validator(&FakeIssuer::serving(&[&key]));
    let t = v.validate_at(&token(&key, json!({})), NOW).await.unwrap();
    assert_eq!(t.subject, "demo-user");
    assert_eq!(t.issuer, ISSUER);
    assert_eq!(t.client_id.as_deref(), Some("demo-spa-client"));
    assert_eq!(t.tenant_id.as_deref(), Some("demo-tenant"));
    assert_eq!(t.audiences, vec![AUDIENCE.to_owned()]);
    assert!(t.has_scope("read:resource"));
    assert!(!t.has_scope("read"));
    assert_eq!(t.expires_at, NOW + 900);
    assert_eq!((t.auth_time, t.acr.as_deref()), (None, None));
    assert!(t.amr.is_empty());
    // An audience array and the media-type form of typ are accepted too.
    let list = json!({ "aud": ["other", AUDIENCE] });
    let t2 = sign_with(
        &key,
        JwsAlgorithm::ES256,
        Some("application/AT+JWT"),
        &claims(list),
    );
    assert!(v.validate_at(&t2, NOW).await.is_ok());
}

#[tokio::test]
async fn every_supported_algorithm_verifies() {
    let mut rsa = Jwk::generate_rsa(2048).unwrap();
    rsa.set_kid(Some("rsa".into()));
    let mut ed = Jwk::generate_okp(OkpCurve::Ed25519).unwrap();
    ed.set_kid(Some("ed".into()));
    let ec = ec_key("ec");
    let v = validator(&FakeIssuer::serving(&[&rsa, &ed, &ec]));
    for (key, alg) in [
        (&rsa, JwsAlgorithm::RS256),
        (&rsa, JwsAlgorithm::PS256),
        (&ed, JwsAlgorithm::EdDSA),
        (&ec, JwsAlgorithm::ES256),
    ] {
        let t = sign_with(key, alg, Some("at+jwt"), &claims(json!({})));
        assert!(v.validate_at(&t, NOW).await.is_ok(), "{alg}");
    }
}

#[tokio::test]
async fn claim_checks_refuse_with_the_spec_codes() {
    let key = ec_key("k1");
    let v = validator(&FakeIssuer::serving(&[&key]));
    let cases = [
        (json!({ "exp": NOW - 61 }), "token_expired"),
        (
            json!({ "iss": "https://evil.example.test" }),
            "invalid_issuer",
        ),
        (json!({ "iss": null }), "invalid_issuer"),
        (json!({ "aud": "cryptoutil-kms" }), "invalid_audience"),
        (json!({ "aud": null }), "invalid_audience"),
        (json!({ "aud": 7 }), "invalid_token"),
        (json!({ "nbf": NOW + 61 }), "invalid_token"),
        (json!({ "exp": null }), "invalid_token"),
        (json!({ "exp": "soon" }), "invalid_token"),
        (json!({ "sub": null }), "invalid_token"),
        (json!({ "scope": ["a"] }), "invalid_token"),
    ];
    for (overrides, code) in cases {
        let err = v
            .validate_at(&token(&key, overrides.clone()), NOW)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{overrides} → {err}");
        assert!(!err.is_unavailable());
    }
    // Within the skew both bounds still pass.
    let edge = json!({ "exp": NOW - 59, "nbf": NOW + 59 });
    assert!(v.validate_at(&token(&key, edge), NOW).await.is_ok());
}

#[tokio::test]
async fn header_checks_come_before_any_key_lookup() {
    let key = ec_key("k1");
    let fake = FakeIssuer::serving(&[&key]);
    let v = BearerValidator::new(
        IssuerTrust {
            algorithms: vec![JwsAlgorithm::RS256],
            ..IssuerTrust::new(ISSUER, vec![AUDIENCE.into()])
        },
        fake.clone(),
    )
    .unwrap();
    let err = v
        .validate_at(&token(&key, json!({})), NOW)
        .await
        .unwrap_err();
    assert_eq!(err, BearerError::AlgorithmNotAllowed);
    let hmac = Jwk::generate_oct(32).unwrap();
    let hs = sign_with(
        &hmac,
        JwsAlgorithm::HS256,
        Some("at+jwt"),
        &claims(json!({})),
    );
    assert_eq!(
        v.validate_at(&hs, NOW).await.unwrap_err(),
        BearerError::AlgorithmNotAllowed
    );
    assert_eq!(fake.fetches(), 0, "refused before fetching keys");

    let v = validator(&fake);
    for typ in [None, Some("JWT"), Some("id_token+jwt")] {
        let t = sign_with(&key, JwsAlgorithm::ES256, typ, &claims(json!({})));
        assert_eq!(
            v.validate_at(&t, NOW).await.unwrap_err(),
            BearerError::WrongType
        );
    }
    for garbage in [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        &"x".repeat(MAX_TOKEN_LEN + 1),
    ] {
        let err = v.validate_at(garbage, NOW).await.unwrap_err();
        assert!(
            matches!(err, BearerError::Malformed(_)),
            "{garbage:.20}: {err}"
        );
    }
}

#[tokio::test]
async fn a_tampered_or_foreign_token_fails_the_signature() {
    let key = ec_key("k1");
    let v = validator(&FakeIssuer::serving(&[&key]));
    let good = token(&key, json!({}));
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_payload =
        cryptoutil_jose::b64::encode(claims(json!({"sub": "demo-admin"})).to_string().as_bytes());
    let tampered = format!("{head}.{forged_payload}.{sig}");
    assert_eq!(
        v.validate_at(&tampered, NOW).await.unwrap_err(),
        BearerError::InvalidSignature
    );
    // Same kid, another key (an attacker's).
    let impostor = ec_key("k1");
    let forged = token(&impostor, json!({}));
    assert_eq!(
        v.validate_at(&forged, NOW).await.unwrap_err().code(),
        "invalid_signature"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let old = ec_key("old");
    let fake = FakeIssuer::serving(&[&old]);
    let v = validator(&fake);
    assert!(v.validate_at(&token(&old, json!({})), NOW).await.is_ok());
    assert_eq!(fake.fetches(), 1);
    // The issuer rotates: a token with the new kid triggers one refetch (the interval since
    // the first fetch has passed).
    tokio::time::advance(Duration::from_secs(31)).await;
    let new = ec_key("new");
    fake.publish(&[&old, &new]);
    assert!(v.validate_at(&token(&new, json!({})), NOW).await.is_ok());
    assert_eq!(fake.fetches(), 2);
    // A flood of random kids costs nothing more within the interval.
    for i in 0..50 {
        let stranger = ec_key(&format!("random-{i}"));
        let err = v
            .validate_at(&token(&stranger, json!({})), NOW)
            .await
            .unwrap_err();
        assert_eq!(err, BearerError::InvalidSignature);
    }
    assert_eq!(fake.fetches(), 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    let stranger = ec_key("random-late");
    assert!(
        v.validate_at(&token(&stranger, json!({})), NOW)
            .await
            .is_err()
    );
    assert_eq!(fake.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_outage_is_bridged_by_the_cache_until_its_ttl_then_fails_closed() {
    let key = ec_key("k1");
    let fake = FakeIssuer::serving(&[&key]);
    let v = validator(&fake);
    let t = token(&key, json!({}));
    assert_eq!(v.check_jwks().await.unwrap(), 1);
    fake.set_down(true);
    // Past half the TTL: a refresh is tried, fails, and the cached keys still serve.
    tokio::time::advance(Duration::from_secs(200)).await;
    assert!(v.validate_at(&t, NOW).await.is_ok());
    assert_eq!(fake.fetches(), 2);
    // Past the TTL: fail closed (503), and readiness says so.
    tokio::time::advance(Duration::from_secs(101)).await;
    let err = v.validate_at(&t, NOW).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(v.check_jwks().await.unwrap_err().is_unavailable());
    // The issuer comes back: the next request fetches again.
    fake.set_down(false);
    assert!(v.validate_at(&t, NOW).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_cold_cache_fetches_once_for_concurrent_requests() {
    let key = ec_key("k1");
    let fake = FakeIssuer::serving(&[&key]);
    let v = validator(&fake);
    let t = token(&key, json!({}));
    let results = futures_join(&v, &t, 16).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(fake.fetches(), 1);
}

async fn futures_join(
    v: &BearerValidator,
    t: &str,
    n: usize,
) -> Vec<Result<AccessToken, BearerError>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (v, t) = (v.clone(), t.to_owned());
        set.spawn(async move { v.validate_at(&t, NOW).await });
    }
    set.join_all().await
}

#[test]
fn jwks_parsing_skips_what_it_cannot_use() {
    let sig = ec_key("sig");
    let mut enc = ec_key("enc");
    enc.set_key_use(Some("enc".into()));
    let private = ec_key("private");
    let doc = json!({ "keys": [
        sig.to_public().unwrap().to_value(false),
        enc.to_public().unwrap().to_value(false),
        private.to_value(true),
        { "kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k" },
        { "kty": "unknown" },
        "not an object",
    ]});
    let keys = jwks::tests_support::parse(&doc.to_string()).unwrap();
    assert_eq!(keys, vec!["sig".to_owned()]);
    for bad in [
        "{}",
        "[]",
        "{\"keys\":[]}",
        "not json",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
    ] {
        assert!(jwks::tests_support::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn bearer_headers_are_parsed_strictly() {
    let header = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    };
    assert_eq!(
        bearer_token(&header("Bearer abc.def-_~+/=")).unwrap(),
        "abc.def-_~+/="
    );
    assert_eq!(bearer_token(&header("bearer x")).unwrap(), "x");
    assert_eq!(bearer_token(&HeaderMap::new()), Err(BearerError::Missing));
    assert_eq!(
        bearer_token(&header("Basic dXNlcjpwdw==")),
        Err(BearerError::Missing)
    );
    for bad in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a=b",
        "Bearer  x",
        "Bearer \"x\"",
    ] {
        assert!(
            matches!(bearer_token(&header(bad)), Err(BearerError::Malformed(_))),
            "{bad}"
        );
    }
    let mut two = header("Bearer a");
    two.append(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Bearer b"),
    );
    assert!(matches!(bearer_token(&two), Err(BearerError::Malformed(_))));
}

#[tokio::test]
async fn several_issuers_are_routed_by_iss() {
    let key_a = ec_key("a");
    let key_b = ec_key("b");
    let a = validator(&FakeIssuer::serving(&[&key_a]));
    let b = BearerValidator::new(
        IssuerTrust::new("https://b.example.test", vec![AUDIENCE.into()]),
        FakeIssuer::serving(&[&key_b]),
    )
    .unwrap();
    let issuers = TrustedIssuers::new(vec![a.clone(), b]).unwrap();
    let from_b = token(
        &key_b,
        json!({ "iss": "https://b.example.test", "exp": u64::MAX / 2 }),
    );
    assert_eq!(
        issuers.validate(&from_b).await.unwrap().issuer,
        "https://b.example.test"
    );
    // b's key does not verify a token claiming issuer a.
    let lying = token(&key_b, json!({ "exp": u64::MAX / 2 }));
    assert_eq!(
        issuers.validate(&lying).await.unwrap_err(),
        BearerError::InvalidSignature
    );
    let stranger = token(&key_a, json!({ "iss": "https://c.example.test" }));
    assert_eq!(
        issuers.validate(&stranger).await.unwrap_err(),
        BearerError::InvalidIssuer
    );
    assert!(TrustedIssuers::new(vec![a.clone(), a]).is_err());
}

#[test]
fn inconsistent_trust_is_refused() {
    let fake: Arc<dyn JwksFetcher> = FakeIssuer::serving(&[]);
    let base = IssuerTrust::new(ISSUER, vec![AUDIENCE.into()]);
    let cases = [
        IssuerTrust {
            issuer: "http://identity.example.test".into(),
            ..base.clone()
        },
        IssuerTrust {
            issuer: format!("{ISSUER}/"),
            ..base.clone()
        },
        IssuerTrust {
            jwks: JwksSource::Url("http://x/jwks".into()),
            ..base.clone()
        },
        IssuerTrust {
            audiences: vec![],
            ..base.clone()
        },
        IssuerTrust {
            algorithms: vec![],
            ..base.clone()
        },
        IssuerTrust {
            algorithms: vec![JwsAlgorithm::HS256],
            ..base.clone()
        },
        IssuerTrust {
            cache_ttl: Duration::ZERO,
            ..base.clone()
        },
        IssuerTrust {
            clock_skew: Duration::from_secs(600),
            ..base.clone()
        },
    ];
    for trust in cases {
        let err = BearerValidator::new(trust.clone(), fake.clone()).unwrap_err();
        assert!(matches!(err, BearerError::Config(_)), "{trust:?}");
    }
    assert!(BearerValidator::new(base, fake).is_ok());
}

#[tokio::test]
async fn cnf_and_act_are_carried_and_checked() {
    let key = ec_key("k1");
    let v = validator(&FakeIssuer::serving(&[&key]));
    let plain = v.validate_at(&token(&key, json!({})), NOW).await.unwrap();
    assert_eq!(plain.jkt, None);
    assert!(plain.actors.is_empty());
    let bound = json!({
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        "act": {"sub": "rs-client", "act": {"sub": "gateway"}},
    });
    let t = v.validate_at(&token(&key, bound), NOW).await.unwrap();
    assert_eq!(
        t.jkt.as_deref(),
        Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    );
    assert_eq!(t.actors, ["rs-client", "gateway"]);
    let mut deep = json!({"sub": "a0"});
    for i in 1..=claims::MAX_ACTOR_DEPTH {
        deep = json!({"sub": format!("a{i}"), "act": deep});
    }
    for bad in [
        json!({"cnf": "x"}),
        json!({"cnf": {"x5t#S256": "abc"}}),
        json!({"cnf": {"jkt": 5}}),
        json!({"cnf": {"jkt": ""}}),
        json!({"act": "x"}),
        json!({"act": {"client_id": "no-sub"}}),
        json!({"act": deep}),
    ] {
        let r = v.validate_at(&token(&key, bad.clone()), NOW).await;
        assert!(matches!(r, Err(BearerError::Malformed(_))), "{bad}: {r:?}");
    }
}

#[tokio::test]
async fn the_users_sign_in_is_carried_and_bounded() {
    let key = ec_key("k1");
    let v = validator(&FakeIssuer::serving(&[&key]));
    let signed_in = json!({
        "auth_time": NOW - 60,
        "acr": "urn:cryptoutil:acr:mfa",
        "amr": ["pwd", "otp", "mfa"],
    });
    let t = v.validate_at(&token(&key, signed_in), NOW).await.unwrap();
    assert_eq!(t.auth_time, Some(NOW - 60));
    assert_eq!(t.acr.as_deref(), Some("urn:cryptoutil:acr:mfa"));
    assert_eq!(t.amr, ["pwd", "otp", "mfa"]);
    assert!(step_up::is_user_token(&t));
    let too_many: Vec<String> = (0..=claims::MAX_AMR_VALUES)
        .map(|i| format!("m{i}"))
        .collect();
    for bad in [
        json!({"amr": "pwd"}),
        json!({"amr": [1]}),
        json!({"amr": too_many}),
        json!({"acr": 5}),
        json!({"auth_time": "yesterday"}),
    ] {
        let r = v.validate_at(&token(&key, bad.clone()), NOW).await;
        assert!(matches!(r, Err(BearerError::Malformed(_))), "{bad}: {r:?}");
    }
    // A client-credentials token (sub = client_id, no auth_time) is no user token.
    let service = json!({"sub": "demo-spa-client"});
    let t = v.validate_at(&token(&key, service), NOW).await.unwrap();
    assert!(!step_up::is_user_token(&t));
}

mod dpop_binding {
    use std::sync::Arc;

    use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm};
    use http::{HeaderMap, HeaderValue};
    use serde_json::{Map, Value, json};
    use time::OffsetDateTime;
    use url::Url;

    use super::super::sender::{Challenge, DpopBinding, Scheme, presented, request_url};
    use super::super::*;
    use crate::dpop::{self, DpopError, DpopSettings, MemoryReplayCache};

    const URL: &str = "https://kms.example.test:8081/service/api/v1/encrypt";
    const TOKEN: &str = "eyJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJ4In0.c2ln";
    const T: i64 = 1_800_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T).unwrap()
    }

    fn proof_with(key: &Jwk, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut h = Map::new();
        h.insert("typ".into(), json!("dpop+jwt"));
        h.insert("jwk".into(), key.to_value(false));
        let Value::Object(mut c) = json!({
            "jti": uuid::Uuid::now_v7().to_string(), "htm": "POST", "htu": URL, "iat": T,
            "ath": dpop::access_token_hash(TOKEN),
        }) else {
            unreachable!()
        };
        edit(&mut c);
        cryptoutil_jose::jws::sign(
            key,
            JwsAlgorithm::ES256,
            &serde_json::to_vec(&c).unwrap(),
            Some(&h),
        )
        .unwrap()
    }

    fn headers(auth: &str, proofs: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(auth).unwrap(),
        );
        for p in proofs {
            h.append("dpop", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    fn binding(required: bool) -> DpopBinding {
        DpopBinding::new(
            DpopSettings::default(),
            Arc::new(MemoryReplayCache::new(1000)),
            required,
        )
    }

    async fn check(
        b: &DpopBinding,
        h: &HeaderMap,
        jkt: Option<&str>,
        method: &str,
        url: &str,
    ) -> Result<(), BearerError> {
        let p = presented(h)?;
        let url = Url::parse(url).unwrap();
        b.check_at(&p, jkt, method, Some(&url), now()).await
    }

    #[test]
    fn credentials_are_parsed_strictly() {
        let h = headers(&format!("DPoP {TOKEN}"), &["a.b.c"]);
        let p = presented(&h).unwrap();
        assert_eq!(
            (p.scheme, p.token, p.proof),
            (Scheme::DPoP, TOKEN, Some("a.b.c"))
        );
        let h = headers(&format!("bearer {TOKEN}"), &[]);
        let p = presented(&h).unwrap();
        assert_eq!((p.scheme, p.proof), (Scheme::Bearer, None));
        assert_eq!(
            presented(&headers("Basic dXNlcjpwdw==", &[])),
            Err(BearerError::Missing)
        );
        assert!(matches!(
            presented(&headers("DPoP", &[])),
            Err(BearerError::Malformed(_))
        ));
        assert!(matches!(
            presented(&headers("DPoP a b", &[])),
            Err(BearerError::Malformed(_))
        ));
        assert!(matches!(
            presented(&headers(&format!("DPoP {TOKEN}"), &["a.b.c", "d.e.f"])),
            Err(BearerError::DpopProof(DpopError::Malformed(_)))
        ));
    }

    #[tokio::test]
    async fn a_valid_proof_is_accepted_once() {
        let key = Jwk::generate_ec(EcCurve::P256).unwrap();
        let jkt = key.thumbprint();
        let b = binding(false);
        let proof = proof_with(&key, |_| {});
        let h = headers(&format!("DPoP {TOKEN}"), &[&proof]);
        check(&b, &h, Some(&jkt), "POST", URL).await.unwrap();
        assert_eq!(
            check(&b, &h, Some(&jkt), "POST", URL).await,
            Err(BearerError::DpopReplayed)
        );
        // A plain bearer token is fine unless DPoP is required.
        let bearer = headers(&format!("Bearer {TOKEN}"), &[]);
        check(&b, &bearer, None, "POST", URL).await.unwrap();
        assert_eq!(
            check(&binding(true), &bearer, None, "POST", URL).await,
            Err(BearerError::DpopRequired)
        );
    }

    #[tokio::test]
    async fn every_mismatch_is_refused() {
        let key = Jwk::generate_ec(EcCurve::P256).unwrap();
        let other = Jwk::generate_ec(EcCurve::P256).unwrap();
        let jkt = key.thumbprint();
        let b = binding(false);
        let dpop = |proof: &str| headers(&format!("DPoP {TOKEN}"), &[proof]);
        // The stolen token as Bearer, with or without a proof.
        let stolen = headers(&format!("Bearer {TOKEN}"), &[&proof_with(&key, |_| {})]);
        assert_eq!(
            check(&b, &stolen, Some(&jkt), "POST", URL).await,
            Err(BearerError::BoundTokenAsBearer)
        );
        // An unbound token as DPoP.
        let h = dpop(&proof_with(&key, |_| {}));
        assert_eq!(
            check(&b, &h, None, "POST", URL).await,
            Err(BearerError::UnboundTokenAsDpop)
        );
        // No proof.
        assert!(matches!(
            check(
                &b,
                &headers(&format!("DPoP {TOKEN}"), &[]),
                Some(&jkt),
                "POST",
                URL
            )
            .await,
            Err(BearerError::DpopProof(DpopError::Malformed(_)))
        ));
        // A proof of another key.
        let h = dpop(&proof_with(&other, |_| {}));
        assert_eq!(
            check(&b, &h, Some(&jkt), "POST", URL).await,
            Err(BearerError::DpopKeyMismatch)
        );
        // Another method or URL.
        let h = dpop(&proof_with(&key, |_| {}));
        assert_eq!(
            check(&b, &h, Some(&jkt), "GET", URL).await,
            Err(BearerError::DpopProof(DpopError::Htm))
        );
        let h = dpop(&proof_with(&key, |_| {}));
        let elsewhere = "https://kms.example.test:8081/service/api/v1/decrypt";
        assert_eq!(
            check(&b, &h, Some(&jkt), "POST", elsewhere).await,
            Err(BearerError::DpopProof(DpopError::Htu))
        );
        // No ath, or the ath of another token.
        for edit in [
            Box::new(|c: &mut Map<String, Value>| {
                c.remove("ath");
            }) as Box<dyn FnOnce(&mut Map<String, Value>)>,
            Box::new(|c: &mut Map<String, Value>| {
                c.insert("ath".into(), json!(dpop::access_token_hash("other")));
            }),
        ] {
            let h = dpop(&proof_with(&key, edit));
            assert_eq!(
                check(&b, &h, Some(&jkt), "POST", URL).await,
                Err(BearerError::DpopProof(DpopError::Ath))
            );
        }
        // Too old.
        let h = dpop(&proof_with(&key, |c| {
            c.insert("iat".into(), json!(T - 3600));
        }));
        assert_eq!(
            check(&b, &h, Some(&jkt), "POST", URL).await,
            Err(BearerError::DpopProof(DpopError::Expired))
        );
        // Every refusal above carries the RFC code of its challenge.
        assert_eq!(
            BearerError::DpopKeyMismatch.challenge_error(),
            "invalid_dpop_proof"
        );
        assert_eq!(
            BearerError::BoundTokenAsBearer.challenge_error(),
            "invalid_token"
        );
        assert_eq!(
            BearerError::DpopProof(DpopError::UseNonce).challenge_error(),
            "use_dpop_nonce"
        );
    }

    #[tokio::test]
    async fn a_full_replay_cache_fails_closed() {
        let key = Jwk::generate_ec(EcCurve::P256).unwrap();
        let jkt = key.thumbprint();
        let b = DpopBinding::new(
            DpopSettings::default(),
            Arc::new(MemoryReplayCache::new(0)),
            false,
        );
        let mut refused = false;
        for _ in 0..64 {
            let h = headers(&format!("DPoP {TOKEN}"), &[&proof_with(&key, |_| {})]);
            if let Err(e) = check(&b, &h, Some(&jkt), "POST", URL).await {
                assert!(matches!(e, BearerError::DpopReplayUnavailable(_)));
                assert!(e.is_unavailable());
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    #[test]
    fn urls_and_challenges() {
        let base = Url::parse("https://kms.example.test:8081").unwrap();
        assert_eq!(
            request_url(&base, "/service/api/v1/encrypt")
                .unwrap()
                .as_str(),
            URL
        );
        let prefixed = Url::parse("https://gw.example.test/kms/").unwrap();
        assert_eq!(
            request_url(&prefixed, "/a").unwrap().as_str(),
            "https://gw.example.test/kms/a"
        );
        assert!(request_url(&base, "a").is_none());
        assert_eq!(
            sender::resource_metadata_url(&base),
            "https://kms.example.test:8081/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            sender::resource_metadata_url(&prefixed),
            "https://gw.example.test/.well-known/oauth-protected-resource/kms"
        );
        let c = Challenge {
            realm: "r".into(),
            resource_metadata: Some("https://x/.well-known/oauth-protected-resource".into()),
            bearer: true,
            dpop: Some(dpop::SUPPORTED_ALGORITHMS.to_vec()),
        };
        assert_eq!(
            c.header(None, false, None),
            "Bearer realm=\"r\", resource_metadata=\"https://x/.well-known/oauth-protected-resource\", \
             DPoP realm=\"r\", resource_metadata=\"https://x/.well-known/oauth-protected-resource\", \
             algs=\"ES256 ES384 PS256 EdDSA\""
        );
        let h = c.refusal(&BearerError::DpopReplayed);
        assert!(
            h.starts_with("Bearer realm=\"r\", resource_metadata"),
            "{h}"
        );
        assert!(
            h.ends_with(
                "algs=\"ES256 ES384 PS256 EdDSA\", error=\"invalid_dpop_proof\", \
                         error_description=\"the DPoP proof has been used before\""
            ),
            "{h}"
        );
        let h = c.refusal(&BearerError::Expired);
        assert!(h.contains("Bearer realm=\"r\", resource_metadata=\"https://x/.well-known/oauth-protected-resource\", error=\"invalid_token\""), "{h}");
        let dpop_only = Challenge { bearer: false, ..c };
        let h = dpop_only.refusal(&BearerError::Expired);
        assert!(
            h.starts_with("DPoP realm") && h.contains("error=\"invalid_token\""),
            "{h}"
        );
    }
}
