//! Cost of bearer authentication (issue 9 item 6): encrypt with an Identity-style access token
//! (JWKS cached, `sensitive-only` revocation with the introspection answer cached) against the
//! same call with HTTP Basic (verified-credential cache); target within 15 %.
//!
//! The issuer is simulated in memory (a JWKS fetcher and an introspector that count their
//! calls), so the figures show the KMS's own work; the warm path does no I/O either way. Both
//! variants go through the same real axum stack (service surface, real authentication layer,
//! handlers) as a tower `Service` without TLS or sockets, and in process
//! (`Authenticator::authenticate_for` + `KeyService::encrypt`). A paired summary (variants
//! interleaved call by call) is printed before criterion runs. Figures go to docs/benchmarks.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use criterion::{Criterion, criterion_group, criterion_main};
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm};
use cryptoutil_kms::api::{self, ApiState, Keys, SERVICE_PREFIX};
use cryptoutil_kms::auth::settings::IssuerSettings;
use cryptoutil_kms::auth::{AuthSettings, Authenticator, Federation, require_authentication};
use cryptoutil_kms::storage::Store;
use cryptoutil_realm::bearer::{BearerValidator, Introspector, IssuerTrust, TokenDigest};
use cryptoutil_server::config::Secret;
use serde_json::json;
use tower::ServiceExt;

mod common;

const PAYLOAD: usize = 64;
const ALGORITHM: &str = "A256GCM/dir";
const ISSUER: &str = "https://identity.bench.example";
const ENCRYPT_SCOPE: &str = "kms:encrypt";

struct Fixture {
    rt: tokio::runtime::Runtime,
    keys: Arc<Keys>,
    /// Realm chain and federation, as in production.
    auth: Arc<Authenticator<Store>>,
    /// The same without the verified-token cache (every request verifies the signature).
    auth_uncached: Arc<Authenticator<Store>>,
    basic: HeaderMap,
    bearer: HeaderMap,
    token: String,
    key: uuid::Uuid,
    plaintext: Vec<u8>,
    router: Router,
    jwks: Arc<common::Jwks>,
    introspection: Arc<common::Introspection>,
}

fn authenticator(
    store: &Arc<Store>,
    jwks: &Arc<common::Jwks>,
    introspection: &Arc<common::Introspection>,
    token_cache: bool,
) -> Arc<Authenticator<Store>> {
    let mut settings = AuthSettings::default();
    settings.federation.issuers = vec![IssuerSettings::new(ISSUER, None, Secret::new("bench"))];
    if !token_cache {
        settings.federation.token_cache.capacity = 0;
    }
    let validator = BearerValidator::new(
        IssuerTrust::new(ISSUER, vec!["cryptoutil-kms".to_owned()]),
        jwks.clone(),
    )
    .unwrap();
    let introspector: Arc<dyn Introspector> = introspection.clone();
    let federation =
        Federation::with_parts(&settings.federation, vec![(validator, Some(introspector))])
            .unwrap();
    Arc::new(Authenticator::with_federation(&settings, store.clone(), Some(federation)).unwrap())
}

fn fixture() -> Fixture {
    // A realm user and a token with the same scopes in the same tenant.
    let world = common::world();
    let user = world.add_realm_user();
    let mut signing = Jwk::generate_ec(EcCurve::P256).unwrap();
    signing.set_kid(Some("bench-key".to_owned()));
    let jwks = Arc::new(common::Jwks {
        text: json!({"keys": [signing.to_public().unwrap().to_value(false)]}).to_string(),
        fetches: AtomicUsize::new(0),
    });
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": ISSUER, "sub": "demo-kms-client", "aud": "cryptoutil-kms",
        "client_id": "demo-kms-client", "scope": "kms:read kms:write",
        "jti": uuid::Uuid::now_v7().to_string(), "iat": now, "exp": now + 3600,
        "tenant_id": user.tenant_name,
    });
    let mut jws_header = serde_json::Map::new();
    jws_header.insert("kid".into(), "bench-key".into());
    jws_header.insert("typ".into(), "at+jwt".into());
    let token = cryptoutil_jose::jws::sign(
        &signing,
        JwsAlgorithm::ES256,
        claims.to_string().as_bytes(),
        Some(&jws_header),
    )
    .unwrap();
    let introspection = Arc::new(common::Introspection::default());
    let auth = authenticator(&world.store, &jwks, &introspection, true);
    let auth_uncached = authenticator(&world.store, &jwks, &introspection, false);

    let basic = user.basic_headers();
    let mut bearer = HeaderMap::new();
    bearer.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let who = world.rt.block_on(auth.authenticate(&basic, None)).unwrap();
    let key = world.create_key(&who, ALGORITHM);

    let common::World { rt, keys, .. } = world;
    let (operations, _) =
        api::operations_and_document(ApiState { keys: keys.clone() }, &[SERVICE_PREFIX]);
    let surface = common::unthrottled_surface();
    let router = cryptoutil_server::surface::service_surface(
        operations.layer(from_fn_with_state(
            auth.clone(),
            require_authentication::<Store>,
        )),
        &surface,
    );
    let f = Fixture {
        rt,
        keys,
        auth,
        auth_uncached,
        basic,
        bearer,
        token,
        key,
        plaintext: vec![7u8; PAYLOAD],
        router,
        jwks,
        introspection,
    };
    for _ in 0..100 {
        in_process(&f, false);
        in_process(&f, true);
        http(&f, false);
        http(&f, true);
    }
    f
}

fn in_process(f: &Fixture, bearer: bool) -> String {
    let headers = if bearer { &f.bearer } else { &f.basic };
    f.rt.block_on(async {
        let who = f
            .auth
            .authenticate_for(black_box(headers), None, Some(ENCRYPT_SCOPE))
            .await
            .unwrap();
        f.keys
            .encrypt(&who, f.key, black_box(&f.plaintext), None)
            .await
            .unwrap()
    })
}

fn http(f: &Fixture, bearer: bool) -> axum::body::Bytes {
    let headers = if bearer { &f.bearer } else { &f.basic };
    let request = Request::builder()
        .method("POST")
        .uri(format!("{SERVICE_PREFIX}/elastickey/{}/encrypt", f.key))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::AUTHORIZATION,
            headers[header::AUTHORIZATION].clone(),
        )
        .body(Body::from(f.plaintext.clone()))
        .unwrap();
    f.rt.block_on(async {
        let response = f.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Interleaves Basic and Bearer call by call and prints their medians and the difference.
fn paired(f: &Fixture, label: &str, pairs: usize, run: fn(&Fixture, bool)) {
    let mut basic = Vec::with_capacity(pairs);
    let mut bearer = Vec::with_capacity(pairs);
    for i in 0..pairs {
        for is_bearer in [i % 2 == 0, i % 2 != 0] {
            let start = Instant::now();
            run(f, is_bearer);
            let elapsed = start.elapsed();
            if is_bearer {
                bearer.push(elapsed);
            } else {
                basic.push(elapsed);
            }
        }
    }
    let (basic, bearer) = (median(basic), median(bearer));
    let overhead = (bearer.as_secs_f64() / basic.as_secs_f64() - 1.0) * 100.0;
    println!(
        "paired {label} ({pairs} pairs): Basic (cached) {basic:?}, Bearer (cached) {bearer:?}, \
         bearer vs basic {overhead:+.1} %"
    );
}

fn summary(f: &Fixture) {
    paired(f, "in-process encrypt", 3000, |f, b| {
        in_process(f, b);
    });
    paired(f, "HTTP encrypt", 3000, |f, b| {
        http(f, b);
    });
    println!(
        "issuer calls during the run: {} JWKS fetch(es), {} introspection(s)",
        f.jwks.fetches.load(Ordering::Relaxed),
        f.introspection.calls.load(Ordering::Relaxed)
    );
}

fn federation(c: &mut Criterion) {
    let f = fixture();
    if std::env::args().any(|a| a == "--bench") {
        summary(&f);
    }
    let mut group = c.benchmark_group("kms_federation");
    let name = format!("encrypt {ALGORITHM} {PAYLOAD}B");
    group.bench_function(format!("HTTP {name}, Basic (cached)"), |b| {
        b.iter(|| http(&f, false));
    });
    group.bench_function(format!("HTTP {name}, Bearer (cached)"), |b| {
        b.iter(|| http(&f, true));
    });
    group.bench_function(format!("in-process {name}, Basic (cached)"), |b| {
        b.iter(|| in_process(&f, false));
    });
    group.bench_function(format!("in-process {name}, Bearer (cached)"), |b| {
        b.iter(|| in_process(&f, true));
    });
    group.bench_function("authenticate Bearer (verified-token cache)", |b| {
        b.iter(|| {
            f.rt.block_on(
                f.auth
                    .authenticate_for(black_box(&f.bearer), None, Some(ENCRYPT_SCOPE)),
            )
            .unwrap()
        });
    });
    group.bench_function("authenticate Bearer (no token cache: ES256 verify)", |b| {
        b.iter(|| {
            f.rt.block_on(f.auth_uncached.authenticate_for(
                black_box(&f.bearer),
                None,
                Some(ENCRYPT_SCOPE),
            ))
            .unwrap()
        });
    });
    group.bench_function("authenticate Basic (credential cache)", |b| {
        b.iter(|| {
            f.rt.block_on(
                f.auth
                    .authenticate_for(black_box(&f.basic), None, Some(ENCRYPT_SCOPE)),
            )
            .unwrap()
        });
    });
    group.bench_function("part: TokenDigest::of (SHA-256 of the token)", |b| {
        b.iter(|| TokenDigest::of(black_box(&f.token)));
    });
    group.finish();
}

criterion_group!(benches, federation);
criterion_main!(benches);
