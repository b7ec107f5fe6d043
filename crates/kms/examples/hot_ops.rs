//! One hot operation run N times, for instruction counts under callgrind
//! (`cargo xtask bench-compare`): `hot_ops <operation> <iterations>`.
//!
//! Each operation is set up and warmed first; then [`hot_ops_measured`] runs it `iterations`
//! times and [`hot_ops_done`] marks the end. xtask runs this under `valgrind --tool=callgrind
//! --dump-before=*hot_ops_measured* --dump-before=*hot_ops_done*`, so one dump holds exactly the
//! measured loop (every thread), and divides its instruction count by the iterations. (Callgrind's
//! `--dump-after` does not fire reliably when the function's callees switch threads, hence the
//! second marker.) The same dump's function list proves
//! what a warm request does not do (PBKDF2, barrier unsealing, JWKS fetches); the simulated
//! issuer's counters are checked here as well.
//!
//! Operations: `jose-dir-a256gcm-64` (JWE `dir`/A256GCM encrypt + decrypt of 64 B),
//! `jose-es256-sign-64`, `kms-encrypt-dir-64` (`KeyService::encrypt`, material key cached, SQLite
//! in memory), `kms-auth-basic-cached` (`Authenticator::authenticate_for` with HTTP Basic, a
//! credential-cache hit) and `kms-auth-bearer-cached` (the same with an access token: a
//! verified-token cache hit, revocation answer cached).

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

use axum::http::{HeaderMap, HeaderValue, header};
use cryptoutil_jose::{ContentEncryption, EcCurve, JweAlgorithm, Jwk, JwsAlgorithm, jwe, jws};
use cryptoutil_kms::auth::settings::IssuerSettings;
use cryptoutil_kms::auth::{AuthSettings, Authenticator, DB_REALM, Federation, realm_user};
use cryptoutil_kms::model::RealmUserRecord;
use cryptoutil_kms::repository::DirectoryStore;
use cryptoutil_realm::bearer::{BearerValidator, Introspector, IssuerTrust};
use cryptoutil_server::config::Secret;
use serde_json::json;

#[path = "../benches/common/mod.rs"]
mod common;

const ISSUER: &str = "https://identity.hot-ops.example";
const ENCRYPT_SCOPE: &str = "kms:encrypt";
const WARM_UP: u64 = 50;

/// The measured loop: callgrind dumps its counters (the set-up) on entry.
#[inline(never)]
fn hot_ops_measured(iterations: u64, op: &mut dyn FnMut()) {
    for _ in 0..iterations {
        op();
    }
    hot_ops_done(iterations);
}

/// The end of the measured loop: callgrind dumps its counters (the loop) on entry.
#[inline(never)]
fn hot_ops_done(iterations: u64) {
    black_box(iterations);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, iterations) = match args.as_slice() {
        [name, n] => (name.as_str(), n.parse::<u64>().expect("iterations")),
        _ => {
            eprintln!("usage: hot_ops <operation> <iterations>");
            std::process::exit(2);
        }
    };
    match name {
        "jose-dir-a256gcm-64" => {
            let key = Jwk::generate_oct(32).unwrap();
            let payload = [7u8; 64];
            run(iterations, &mut || {
                let token = jwe::encrypt(
                    &key,
                    JweAlgorithm::Dir,
                    ContentEncryption::A256GCM,
                    black_box(&payload),
                    None,
                )
                .unwrap();
                let clear =
                    jwe::decrypt(&key, JweAlgorithm::Dir, ContentEncryption::A256GCM, &token)
                        .unwrap();
                assert_eq!(clear.plaintext.len(), 64);
            });
        }
        "jose-es256-sign-64" => {
            let key = Jwk::generate_ec(EcCurve::P256).unwrap();
            let payload = [7u8; 64];
            run(iterations, &mut || {
                black_box(jws::sign(&key, JwsAlgorithm::ES256, black_box(&payload), None).unwrap());
            });
        }
        "kms-encrypt-dir-64" => {
            let f = Fixture::new();
            let who = f
                .world
                .rt
                .block_on(f.auth.authenticate(&f.basic, None))
                .unwrap();
            let key = f.world.create_key(&who, "A256GCM/dir");
            let payload = [7u8; 64];
            run(iterations, &mut || {
                let token = f
                    .world
                    .rt
                    .block_on(f.world.keys.encrypt(&who, key, black_box(&payload), None))
                    .unwrap();
                black_box(token);
            });
        }
        "kms-auth-basic-cached" => {
            let f = Fixture::new();
            run(iterations, &mut || {
                let who = f
                    .world
                    .rt
                    .block_on(f.auth.authenticate_for(
                        black_box(&f.basic),
                        None,
                        Some(ENCRYPT_SCOPE),
                    ))
                    .unwrap();
                black_box(who);
            });
        }
        "kms-auth-bearer-cached" => {
            let f = Fixture::new();
            run(iterations, &mut || {
                let who = f
                    .world
                    .rt
                    .block_on(f.auth.authenticate_for(
                        black_box(&f.bearer),
                        None,
                        Some(ENCRYPT_SCOPE),
                    ))
                    .unwrap();
                black_box(who);
            });
            // One JWKS fetch and one introspection for the first request; none after.
            let (fetches, introspections) = (
                f.jwks.fetches.load(Ordering::Relaxed),
                f.introspection.calls.load(Ordering::Relaxed),
            );
            println!("jwks_fetches={fetches} introspections={introspections}");
            assert_eq!(
                (fetches, introspections),
                (1, 1),
                "a warm request called the issuer"
            );
        }
        other => {
            eprintln!("unknown operation {other:?}");
            std::process::exit(2);
        }
    }
    println!("{name}: {iterations} iterations");
}

/// Warms `op` up, then runs the measured loop.
fn run(iterations: u64, op: &mut dyn FnMut()) {
    for _ in 0..WARM_UP {
        op();
    }
    hot_ops_measured(iterations, op);
}

/// An in-memory KMS with a database-realm user whose credential is already in the cache (so no
/// PBKDF2 runs at all, even in set-up) and an access token of a simulated issuer for the same
/// tenant and scopes.
struct Fixture {
    world: common::World,
    auth: Arc<Authenticator<cryptoutil_kms::storage::Store>>,
    basic: HeaderMap,
    bearer: HeaderMap,
    jwks: Arc<common::Jwks>,
    introspection: Arc<common::Introspection>,
}

impl Fixture {
    fn new() -> Self {
        let world = common::world();
        let unique = uuid::Uuid::now_v7();
        let (username, password, tenant) = (
            format!("hot-{unique}"),
            format!("pw-{unique}"),
            format!("hot-tenant-{unique}"),
        );
        world
            .rt
            .block_on(world.store.ensure_named_tenant(&tenant))
            .unwrap();

        let mut signing = Jwk::generate_ec(EcCurve::P256).unwrap();
        signing.set_kid(Some("hot-key".to_owned()));
        let jwks = Arc::new(common::Jwks {
            text: json!({"keys": [signing.to_public().unwrap().to_value(false)]}).to_string(),
            fetches: AtomicUsize::new(0),
        });
        let introspection = Arc::new(common::Introspection::default());
        let mut settings = AuthSettings::default();
        settings.federation.issuers = vec![IssuerSettings::new(ISSUER, None, Secret::new("hot"))];
        let validator = BearerValidator::new(
            IssuerTrust::new(ISSUER, vec!["cryptoutil-kms".to_owned()]),
            jwks.clone(),
        )
        .unwrap();
        let introspector: Arc<dyn Introspector> = introspection.clone();
        let federation =
            Federation::with_parts(&settings.federation, vec![(validator, Some(introspector))])
                .unwrap();
        let auth = Arc::new(
            Authenticator::with_federation(&settings, world.store.clone(), Some(federation))
                .unwrap(),
        );

        // The credential cache holds the user as a verified login would have left it.
        let now = time::OffsetDateTime::now_utc();
        let user = realm_user(&RealmUserRecord {
            username: username.clone(),
            password_hash: "not used: the cache answers".to_owned(),
            roles: vec!["kms:read".to_owned(), "kms:write".to_owned()],
            tenants: vec![tenant.clone()],
            enabled: true,
            metadata: "{}".to_owned(),
            certificate_subject: None,
            version: 1,
            created_at: now,
            updated_at: now,
        });
        let cache = auth.cache();
        assert!(cache.insert(
            cache.ticket(),
            DB_REALM,
            &username,
            &password,
            Arc::new(user)
        ));
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&cryptoutil_realm::basic::encode(&username, &password)).unwrap(),
        );

        let iat = now.unix_timestamp();
        let claims = json!({
            "iss": ISSUER, "sub": "demo-kms-client", "aud": "cryptoutil-kms",
            "client_id": "demo-kms-client", "scope": "kms:read kms:write",
            "jti": uuid::Uuid::now_v7().to_string(), "iat": iat, "exp": iat + 3600,
            "tenant_id": tenant,
        });
        let mut jws_header = serde_json::Map::new();
        jws_header.insert("kid".into(), "hot-key".into());
        jws_header.insert("typ".into(), "at+jwt".into());
        let token = jws::sign(
            &signing,
            JwsAlgorithm::ES256,
            claims.to_string().as_bytes(),
            Some(&jws_header),
        )
        .unwrap();
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        Self {
            world,
            auth,
            basic,
            bearer,
            jwks,
            introspection,
        }
    }
}
