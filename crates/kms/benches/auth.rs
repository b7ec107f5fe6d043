//! Cost of authentication (issue 6 item 8): Basic-authenticated encrypt with the credential
//! cached against the same call with authentication disabled; target ≤ 10 % overhead.
//!
//! - in process: `Authenticator::authenticate` + `KeyService::encrypt` vs `KeyService::encrypt`;
//! - through the real axum stack (service surface + operations, no TLS, no socket) called as a
//!   tower `Service`, with the real authentication layer vs a layer that only inserts a fixed
//!   principal (what the handlers would see with authentication disabled);
//! - `authenticate` alone (cached), without and with a JSON audit-log subscriber (to a sink).
//!
//! Before criterion runs, a paired summary (the two variants interleaved call by call, so that
//! load from other processes hits both alike) and the first, uncached authentication (PBKDF2) are
//! printed. SQLite in memory, dev barrier, database realm. Figures go to docs/benchmarks.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use cryptoutil_kms::api::{self, ApiState, Keys, SERVICE_PREFIX};
use cryptoutil_kms::auth::{AuthSettings, Authenticator, require_authentication};
use cryptoutil_kms::model::Principal;
use cryptoutil_kms::storage::Store;
use tower::ServiceExt;

mod common;

const PAYLOAD: usize = 64;
const ALGORITHM: &str = "A256GCM/dir";

struct Fixture {
    rt: tokio::runtime::Runtime,
    keys: Arc<Keys>,
    auth: Arc<Authenticator<Store>>,
    /// `Authorization: Basic …` of the realm user.
    headers: HeaderMap,
    /// What `authenticate` resolves those headers to.
    who: Principal,
    key: uuid::Uuid,
    plaintext: Vec<u8>,
    /// Service surface with the real authentication layer.
    with_auth: Router,
    /// Service surface with a layer that only inserts `who`.
    without_auth: Router,
    /// The first (uncached) authentication, PBKDF2 included.
    first_auth: Duration,
}

fn fixture() -> Fixture {
    let world = common::world();
    let user = world.add_realm_user();
    // Authenticated as in production (default settings: file → db, no realms file, 5 min cache).
    let auth = Arc::new(Authenticator::new(&AuthSettings::default(), world.store.clone()).unwrap());
    let headers = user.basic_headers();

    // Warm the credential cache (and the tenant-name cache); time the first, uncached call.
    let start = Instant::now();
    let who = world
        .rt
        .block_on(auth.authenticate(&headers, None))
        .unwrap();
    let first_auth = start.elapsed();

    let key = world.create_key(&who, ALGORITHM);

    let common::World { rt, keys, .. } = world;
    let (operations, _) =
        api::operations_and_document(ApiState { keys: keys.clone() }, &[SERVICE_PREFIX]);
    let surface = common::unthrottled_surface();
    let with_auth = cryptoutil_server::surface::service_surface(
        operations.clone().layer(from_fn_with_state(
            auth.clone(),
            require_authentication::<Store>,
        )),
        &surface,
    );
    let without_auth = cryptoutil_server::surface::service_surface(
        operations.layer(from_fn_with_state(who.clone(), fixed_principal)),
        &surface,
    );

    let f = Fixture {
        rt,
        keys,
        auth,
        headers,
        who,
        key,
        plaintext: vec![7u8; PAYLOAD],
        with_auth,
        without_auth,
        first_auth,
    };
    // Warm both paths (material key cache, statement caches).
    for _ in 0..100 {
        in_process(&f, false);
        in_process(&f, true);
        http(&f, false);
        http(&f, true);
    }
    f
}

/// "Authentication disabled": the handlers still need a principal; this layer supplies one.
async fn fixed_principal(
    State(who): State<Principal>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(who);
    next.run(request).await
}

fn in_process(f: &Fixture, authenticated: bool) -> String {
    f.rt.block_on(async {
        let owned;
        let who = if authenticated {
            owned = f
                .auth
                .authenticate(black_box(&f.headers), None)
                .await
                .unwrap();
            &owned
        } else {
            &f.who
        };
        f.keys
            .encrypt(who, f.key, black_box(&f.plaintext), None)
            .await
            .unwrap()
    })
}

fn http(f: &Fixture, authenticated: bool) -> axum::body::Bytes {
    let mut request = Request::builder()
        .method("POST")
        .uri(format!("{SERVICE_PREFIX}/elastickey/{}/encrypt", f.key))
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let router = if authenticated {
        request = request.header(
            header::AUTHORIZATION,
            f.headers[header::AUTHORIZATION].clone(),
        );
        &f.with_auth
    } else {
        &f.without_auth
    };
    let request = request.body(Body::from(f.plaintext.clone())).unwrap();
    f.rt.block_on(async {
        let response = router.clone().oneshot(request).await.unwrap();
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

/// Interleaves the two variants call by call and prints their medians and the overhead.
fn paired(f: &Fixture, label: &str, pairs: usize, run: fn(&Fixture, bool)) {
    let mut plain = Vec::with_capacity(pairs);
    let mut authed = Vec::with_capacity(pairs);
    for i in 0..pairs {
        // Alternate which goes first, so neither always runs right after the other.
        for authenticated in [i % 2 == 0, i % 2 != 0] {
            let start = Instant::now();
            run(f, authenticated);
            let elapsed = start.elapsed();
            if authenticated {
                authed.push(elapsed);
            } else {
                plain.push(elapsed);
            }
        }
    }
    let (plain, authed) = (median(plain), median(authed));
    let overhead = (authed.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0;
    println!(
        "paired {label} ({pairs} pairs): no auth {plain:?}, Basic (cached) {authed:?}, overhead {overhead:+.1} %"
    );
}

fn summary(f: &Fixture) {
    println!(
        "first (uncached) authentication, PBKDF2 included: {:?}",
        f.first_auth
    );
    // Uncached again a few times (cache emptied before each), for a steadier figure.
    let uncached: Vec<Duration> = (0..3)
        .map(|_| {
            f.auth.cache().invalidate_all();
            let start = Instant::now();
            f.rt.block_on(f.auth.authenticate(&f.headers, None))
                .unwrap();
            start.elapsed()
        })
        .collect();
    println!("uncached authentication, 3 more: {uncached:?}");
    paired(f, "in-process encrypt", 3000, |f, a| {
        in_process(f, a);
    });
    paired(f, "HTTP encrypt", 3000, |f, a| {
        http(f, a);
    });
    let _guard = tracing::subscriber::set_default(audit_log());
    paired(f, "in-process encrypt, JSON audit log", 3000, |f, a| {
        in_process(f, a);
    });
    paired(f, "HTTP encrypt, JSON audit log", 3000, |f, a| {
        http(f, a);
    });
}

/// The production log format (JSON lines at info), written to a sink: every authenticated
/// request emits one audit event.
fn audit_log() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::sink)
        .finish()
}

fn authentication(c: &mut Criterion) {
    let f = fixture();
    if std::env::args().any(|a| a == "--bench") {
        summary(&f);
    }
    let mut group = c.benchmark_group("kms_auth");
    group.bench_function("authenticate (cached)", |b| {
        b.iter(|| {
            f.rt.block_on(f.auth.authenticate(black_box(&f.headers), None))
                .unwrap()
        });
    });
    {
        let _guard = tracing::subscriber::set_default(audit_log());
        group.bench_function("authenticate (cached) + JSON audit log", |b| {
            b.iter(|| {
                f.rt.block_on(f.auth.authenticate(black_box(&f.headers), None))
                    .unwrap()
            });
        });
    }
    // Parts of a cached authentication.
    let value = f.headers[header::AUTHORIZATION].as_bytes().to_vec();
    group.bench_function("part: basic::parse", |b| {
        b.iter(|| cryptoutil_realm::basic::parse(black_box(&value)).unwrap());
    });
    let credentials = cryptoutil_realm::basic::parse(&value).unwrap();
    group.bench_function("part: cache lookup (HMAC-SHA256 key + LRU)", |b| {
        b.iter(|| {
            f.auth
                .cache()
                .get(
                    black_box("db"),
                    &credentials.username,
                    &credentials.password,
                )
                .unwrap()
        });
    });
    group.bench_function("part: Principal clone (scopes Vec<String>)", |b| {
        b.iter(|| black_box(&f.who).clone());
    });
    let name = format!("encrypt {ALGORITHM} {PAYLOAD}B");
    group.bench_function(format!("in-process {name}, no auth"), |b| {
        b.iter(|| in_process(&f, false));
    });
    group.bench_function(format!("in-process {name}, Basic (cached)"), |b| {
        b.iter(|| in_process(&f, true));
    });
    group.bench_function(format!("HTTP {name}, no auth"), |b| {
        b.iter(|| http(&f, false));
    });
    group.bench_function(format!("HTTP {name}, Basic (cached)"), |b| {
        b.iter(|| http(&f, true));
    });
    group.finish();
}

criterion_group!(benches, authentication);
criterion_main!(benches);
