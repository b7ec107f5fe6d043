//! Criterion benchmarks: access-token issuance and verification per signing algorithm
//! (ES256 is the default), plus `at_hash` and opaque secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cryptoutil_identity::signing::{KeyRing, RotationPolicy, SigningAlgorithm, SigningKey};
use cryptoutil_identity::tokens::{
    AccessTokenClaims, Audience, at_hash, opaque_secret, secret_hash,
};
use time::{Duration, OffsetDateTime};

fn claims(now: OffsetDateTime) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "https://identity.example.com:8082".into(),
        sub: "0190a000-0000-7000-8000-000000000001".into(),
        aud: Audience::from_list(vec!["cryptoutil-kms".into()]),
        client_id: "demo-kms-client".into(),
        scope: "kms:read kms:write".into(),
        jti: AccessTokenClaims::new_jti(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + 300,
        tenant_id: Some("demo-tenant".into()),
        auth_time: None,
        roles: None,
        cnf: None,
        act: None,
    }
}

fn tokens(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let policy = RotationPolicy::new(
        SigningAlgorithm::ES256,
        Duration::days(30),
        Duration::hours(2),
    );
    let mut g = c.benchmark_group("access_token");
    for alg in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
        SigningAlgorithm::PS256,
        SigningAlgorithm::EdDSA,
    ] {
        let key = Arc::new(SigningKey::generate(alg, now).unwrap());
        let ring = KeyRing::new(&[key], now, &policy).unwrap();
        let c = claims(now);
        g.bench_with_input(BenchmarkId::new("sign", alg), &c, |b, c| {
            b.iter(|| black_box(ring.sign_access_token(black_box(c)).unwrap()));
        });
        let token = ring.sign_access_token(&c).unwrap();
        g.bench_with_input(BenchmarkId::new("verify", alg), &token, |b, t| {
            b.iter(|| black_box(ring.verify_access_token(black_box(t), now).unwrap()));
        });
        // Issuance as the token endpoint does it: fresh jti, then sign.
        g.bench_function(BenchmarkId::new("issue_with_jti", alg), |b| {
            b.iter(|| {
                let mut c = c.clone();
                c.jti = AccessTokenClaims::new_jti();
                black_box(ring.sign_access_token(&c).unwrap())
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("secrets");
    let token = "eyJhbGciOiJFUzI1NiJ9.e30.".repeat(12);
    g.bench_function("at_hash_es256", |b| {
        b.iter(|| black_box(at_hash(SigningAlgorithm::ES256, black_box(&token))));
    });
    g.bench_function("opaque_secret", |b| {
        b.iter(|| black_box(opaque_secret().unwrap()))
    });
    let s = opaque_secret().unwrap();
    g.bench_function("secret_hash", |b| {
        b.iter(|| black_box(secret_hash(black_box(&s))))
    });
    g.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
