//! Criterion benchmarks: access-token issuance and verification per signing algorithm
//! (ES256 is the default), plus `at_hash` and opaque secrets, and the token endpoint's work per
//! issuance without and with a DPoP proof (`token_issuance/bearer` vs `token_issuance/dpop`:
//! proof verification, nonce check, replay key, then a `cnf`-bound token; the replay-cache
//! insert is a database round trip and not included).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cryptoutil_identity::dpop::nonce::NonceIssuer;
use cryptoutil_identity::dpop::replay::proof_key;
use cryptoutil_identity::dpop::{self, DpopSettings, ProofRequest};
use cryptoutil_identity::signing::{KeyRing, RotationPolicy, SigningAlgorithm, SigningKey};
use cryptoutil_identity::tokens::{
    AccessTokenClaims, Audience, Confirmation, at_hash, opaque_secret, secret_hash,
};
use cryptoutil_jose::{EcCurve, Jwk, JwsAlgorithm, jws};
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
        acr: None,
        amr: None,
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

/// A DPoP proof (ES256) for `POST htu` at `now` carrying `nonce`.
fn dpop_proof(key: &Jwk, htu: &str, nonce: &str, now: OffsetDateTime) -> String {
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("jwk".into(), key.to_value(false));
    let claims = serde_json::json!({
        "jti": "3c2b0f4e-6d1a-4b7e-9a55-0f1e2d3c4b5a", "htm": "POST", "htu": htu,
        "iat": now.unix_timestamp(), "nonce": nonce,
    });
    jws::sign(
        key,
        JwsAlgorithm::ES256,
        claims.to_string().as_bytes(),
        Some(&header),
    )
    .unwrap()
}

/// What the token endpoint computes per issued access token, without and with DPoP.
fn issuance(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let policy = RotationPolicy::new(
        SigningAlgorithm::ES256,
        Duration::days(30),
        Duration::hours(2),
    );
    let key = Arc::new(SigningKey::generate(SigningAlgorithm::ES256, now).unwrap());
    let ring = KeyRing::new(&[key], now, &policy).unwrap();
    let htu = "https://identity.example.com:8082/oauth2/v1/token";
    let uri = url::Url::parse(htu).unwrap();
    let nonces = NonceIssuer::new(&[7u8; 32], Duration::minutes(5));
    let nonce = nonces.current(now);
    let holder = Jwk::generate_ec(EcCurve::P256).unwrap();
    let proof = dpop_proof(&holder, htu, &nonce, now);
    let settings = DpopSettings::default();
    let base = claims(now);

    let mut g = c.benchmark_group("token_issuance");
    g.bench_function("bearer", |b| {
        b.iter(|| {
            let mut c = base.clone();
            c.jti = AccessTokenClaims::new_jti();
            black_box(ring.sign_access_token(&c).unwrap())
        });
    });
    g.bench_function("dpop", |b| {
        b.iter(|| {
            let request = ProofRequest {
                method: "POST",
                uri: &uri,
                now,
                nonce: None,
                access_token: None,
            };
            let verified = dpop::verify(black_box(&proof), &request, &settings).unwrap();
            assert!(nonces.accepts(black_box(&nonce), now));
            black_box(proof_key(&verified.jkt, &verified.jti));
            let mut c = base.clone();
            c.jti = AccessTokenClaims::new_jti();
            c.cnf = Some(Confirmation { jkt: verified.jkt });
            black_box(ring.sign_access_token(&c).unwrap())
        });
    });
    g.finish();
}

criterion_group!(benches, tokens, issuance);
criterion_main!(benches);
