//! Criterion benchmarks: JWS sign/verify and JWE encrypt/decrypt per algorithm family with 64-byte
//! and 16-KiB payloads, next to the raw aws-lc-rs AES-256-GCM seal/open on the same payload; and
//! the post-quantum algorithms (ML-DSA-44/65/87, ML-KEM-768/1024 JWE).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cryptoutil_jose::{
    ContentEncryption, EcCurve, JweAlgorithm, Jwk, JwsAlgorithm, OkpCurve, jwe, jws,
};

const SIZES: [usize; 2] = [64, 16 * 1024];

fn raw_gcm(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_aes256gcm");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    for size in SIZES {
        let payload = vec![0x42u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, p| {
            b.iter(|| {
                let mut buf = Vec::with_capacity(p.len() + 16);
                buf.extend_from_slice(p);
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key([1u8; 12]),
                        Aad::from(b"hdr"),
                        &mut buf,
                    )
                    .unwrap();
                drop(black_box((buf, tag)));
            });
        });
        let mut sealed = payload.clone();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([1u8; 12]),
            Aad::from(b"hdr"),
            &mut sealed,
        )
        .unwrap();
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| {
                let mut buf = s.clone();
                let n = key
                    .open_in_place(
                        Nonce::assume_unique_for_key([1u8; 12]),
                        Aad::from(b"hdr"),
                        &mut buf,
                    )
                    .unwrap()
                    .len();
                black_box(n);
            });
        });
    }
    g.finish();

    // The raw primitives behind A256KW/A256GCM: wrap a CEK with AES-KW, set up AES-GCM with it,
    // seal; and the reverse.
    use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap as _};
    let mut g = c.benchmark_group("raw_a256kw_aes256gcm");
    for size in SIZES {
        let payload = vec![0x42u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, p| {
            b.iter(|| {
                let cek = [3u8; 32];
                let mut wrapped = [0u8; 40];
                KeyEncryptionKey::new(&AES_256, &[7u8; 32])
                    .unwrap()
                    .wrap(&cek, &mut wrapped)
                    .unwrap();
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
                let mut buf = Vec::with_capacity(p.len() + 16);
                buf.extend_from_slice(p);
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key([1u8; 12]),
                        Aad::from(b"hdr"),
                        &mut buf,
                    )
                    .unwrap();
                drop(black_box((wrapped, buf, tag)));
            });
        });
        let mut wrapped = [0u8; 40];
        KeyEncryptionKey::new(&AES_256, &[7u8; 32])
            .unwrap()
            .wrap(&[3u8; 32], &mut wrapped)
            .unwrap();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3u8; 32]).unwrap());
        let mut sealed = payload.clone();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([1u8; 12]),
            Aad::from(b"hdr"),
            &mut sealed,
        )
        .unwrap();
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| {
                let mut cek = [0u8; 40];
                let cek = KeyEncryptionKey::new(&AES_256, &[7u8; 32])
                    .unwrap()
                    .unwrap(&wrapped, &mut cek)
                    .unwrap();
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).unwrap());
                let mut buf = s.clone();
                let n = key
                    .open_in_place(
                        Nonce::assume_unique_for_key([1u8; 12]),
                        Aad::from(b"hdr"),
                        &mut buf,
                    )
                    .unwrap()
                    .len();
                black_box(n);
            });
        });
    }
    g.finish();
}

fn jwe_bench(c: &mut Criterion, name: &str, key: &Jwk, alg: JweAlgorithm, enc: ContentEncryption) {
    let mut g = c.benchmark_group(name);
    for size in SIZES {
        let payload = vec![0x42u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encrypt", size), &payload, |b, p| {
            b.iter(|| black_box(jwe::encrypt(key, alg, enc, p, None).unwrap()));
        });
        let token = jwe::encrypt(key, alg, enc, &payload, None).unwrap();
        g.bench_with_input(BenchmarkId::new("decrypt", size), &token, |b, t| {
            b.iter(|| black_box(jwe::decrypt(key, alg, enc, t).unwrap()));
        });
    }
    g.finish();
}

fn jwe_all(c: &mut Criterion) {
    let dir = Jwk::generate_oct(32).unwrap();
    jwe_bench(
        c,
        "jwe_dir_A256GCM",
        &dir,
        JweAlgorithm::Dir,
        ContentEncryption::A256GCM,
    );
    let kw = Jwk::generate_oct(32).unwrap();
    jwe_bench(
        c,
        "jwe_A256KW_A256GCM",
        &kw,
        JweAlgorithm::A256KW,
        ContentEncryption::A256GCM,
    );
    jwe_bench(
        c,
        "jwe_A256GCMKW_A256GCM",
        &kw,
        JweAlgorithm::A256GCMKW,
        ContentEncryption::A256GCM,
    );
    let cbc = Jwk::generate_oct(64).unwrap();
    jwe_bench(
        c,
        "jwe_dir_A256CBC-HS512",
        &cbc,
        JweAlgorithm::Dir,
        ContentEncryption::A256CbcHs512,
    );
    let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
    jwe_bench(
        c,
        "jwe_ECDH-ES+A256KW_P-256_A256GCM",
        &ec,
        JweAlgorithm::EcdhEsA256KW,
        ContentEncryption::A256GCM,
    );
    let x = Jwk::generate_okp(OkpCurve::X25519).unwrap();
    jwe_bench(
        c,
        "jwe_ECDH-ES_X25519_A256GCM",
        &x,
        JweAlgorithm::EcdhEs,
        ContentEncryption::A256GCM,
    );
    let rsa = Jwk::generate_rsa(2048).unwrap();
    jwe_bench(
        c,
        "jwe_RSA-OAEP-256_A256GCM",
        &rsa,
        JweAlgorithm::RsaOaep256,
        ContentEncryption::A256GCM,
    );
}

fn jws_all(c: &mut Criterion) {
    let rsa = Jwk::generate_rsa(2048).unwrap();
    let keys = [
        (JwsAlgorithm::HS256, Jwk::generate_oct(32).unwrap()),
        (
            JwsAlgorithm::ES256,
            Jwk::generate_ec(EcCurve::P256).unwrap(),
        ),
        (
            JwsAlgorithm::EdDSA,
            Jwk::generate_okp(OkpCurve::Ed25519).unwrap(),
        ),
        (JwsAlgorithm::RS256, rsa.clone()),
        (JwsAlgorithm::PS256, rsa),
    ];
    for (alg, key) in &keys {
        let mut g = c.benchmark_group(format!("jws_{alg}"));
        for size in SIZES {
            let payload = vec![0x42u8; size];
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new("sign", size), &payload, |b, p| {
                b.iter(|| black_box(jws::sign(key, *alg, p, None).unwrap()));
            });
            let token = jws::sign(key, *alg, &payload, None).unwrap();
            g.bench_with_input(BenchmarkId::new("verify", size), &token, |b, t| {
                b.iter(|| black_box(jws::verify(key, *alg, t).unwrap()));
            });
        }
        g.finish();
    }
}

/// Building blocks of the A256KW path, to see where per-message overhead goes.
fn micro(c: &mut Criterion) {
    let mut g = c.benchmark_group("micro");
    g.bench_function("rand_fill_32", |b| {
        b.iter(|| {
            let mut v = [0u8; 32];
            aws_lc_rs::rand::fill(&mut v).unwrap();
            black_box(v)
        });
    });
    g.bench_function("aes256gcm_key_setup", |b| {
        b.iter(|| {
            black_box(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, black_box(&[7u8; 32])).unwrap(),
            ))
        });
    });
    g.bench_function("aes256kw_wrap_32", |b| {
        b.iter(|| black_box(jwe::alg::aes_kw_wrap(black_box(&[7u8; 32]), &[9u8; 32]).unwrap()));
    });
    let payload = vec![0x42u8; 16 * 1024];
    g.bench_function("b64_encode_16k", |b| {
        b.iter(|| black_box(cryptoutil_jose::b64::encode(&payload)))
    });
    let enc = cryptoutil_jose::b64::encode(&payload);
    g.bench_function("b64_decode_16k", |b| {
        b.iter(|| black_box(cryptoutil_jose::b64::decode(enc.as_bytes(), "x").unwrap()))
    });
    g.finish();
}

/// Post-quantum: ML-DSA sign/verify (64-byte payload) and ML-KEM JWE encrypt/decrypt
/// (encapsulation/decapsulation + KMAC256 + A256GCM, 64-byte payload), through this crate, with
/// the raw aws-lc-rs encapsulate/decapsulate beside them.
fn pq(c: &mut Criterion) {
    let payload = vec![0x42u8; 64];
    for alg in [
        JwsAlgorithm::MlDsa44,
        JwsAlgorithm::MlDsa65,
        JwsAlgorithm::MlDsa87,
    ] {
        let key = Jwk::generate_akp(alg.name()).unwrap();
        let public = key.to_public().unwrap();
        let mut g = c.benchmark_group(format!("jws_{alg}"));
        g.bench_function("sign/64", |b| {
            b.iter(|| black_box(jws::sign(&key, alg, &payload, None).unwrap()));
        });
        let token = jws::sign(&key, alg, &payload, None).unwrap();
        g.bench_function("verify/64", |b| {
            b.iter(|| black_box(jws::verify(&public, alg, &token).unwrap()));
        });
        g.finish();
    }
    for alg in [
        JweAlgorithm::MlKem768,
        JweAlgorithm::MlKem1024,
        JweAlgorithm::MlKem768A192KW,
        JweAlgorithm::MlKem1024A256KW,
    ] {
        let key = Jwk::generate_akp(alg.name()).unwrap();
        let public = key.to_public().unwrap();
        let enc = ContentEncryption::A256GCM;
        let mut g = c.benchmark_group(format!("jwe_{alg}_A256GCM"));
        g.bench_function("encrypt/64", |b| {
            b.iter(|| black_box(jwe::encrypt(&public, alg, enc, &payload, None).unwrap()));
        });
        let token = jwe::encrypt(&public, alg, enc, &payload, None).unwrap();
        g.bench_function("decrypt/64", |b| {
            b.iter(|| black_box(jwe::decrypt(&key, alg, enc, &token).unwrap()));
        });
        g.finish();
    }
    for (name, kalg) in [
        ("raw_ml_kem_768", &aws_lc_rs::kem::ML_KEM_768),
        ("raw_ml_kem_1024", &aws_lc_rs::kem::ML_KEM_1024),
    ] {
        let dk = aws_lc_rs::kem::DecapsulationKey::generate(kalg).unwrap();
        let ek = dk.encapsulation_key().unwrap();
        let mut g = c.benchmark_group(name);
        g.bench_function("encapsulate", |b| {
            b.iter(|| black_box(ek.encapsulate().unwrap()))
        });
        let (ct, _) = ek.encapsulate().unwrap();
        let ct = ct.as_ref().to_vec();
        g.bench_function("decapsulate", |b| {
            b.iter(|| {
                black_box(
                    dk.decapsulate(aws_lc_rs::kem::Ciphertext::from(&ct[..]))
                        .unwrap(),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, raw_gcm, micro, jwe_all, jws_all, pq);
criterion_main!(benches);
