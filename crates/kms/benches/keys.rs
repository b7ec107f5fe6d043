//! In-process key service (business layer, no HTTP): encrypt/decrypt/sign/verify on warm keys,
//! SQLite in memory, dev barrier. Figures go to docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cryptoutil_kms::barrier::{Barrier, UnsealKeys};
use cryptoutil_kms::keys::{KeyService, KeyServiceOptions, NewElasticKey, scopes};
use cryptoutil_kms::model::{Principal, TenantId};
use cryptoutil_kms::storage::{DatabaseSettings, Store};

struct Fixture {
    rt: tokio::runtime::Runtime,
    keys: KeyService<Store>,
    who: Principal,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = rt.block_on(async {
        let store = Arc::new(
            Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
                .await
                .unwrap(),
        );
        let barrier = Barrier::open(store.clone(), UnsealKeys::dev().unwrap(), 1000)
            .await
            .unwrap();
        KeyService::new(
            store,
            Arc::new(barrier),
            KeyServiceOptions {
                purge_delay: time::Duration::days(7),
                material_cache_capacity: NonZeroUsize::new(1000).unwrap(),
            },
        )
    });
    let tenant = TenantId(uuid::Uuid::new_v4());
    let who = Principal {
        tenant,
        tenants: vec![tenant],
        subject: "bench".to_owned(),
        scopes: scopes::ALL.iter().map(|s| (*s).to_owned()).collect(),
    };
    Fixture { rt, keys, who }
}

fn create(f: &Fixture, algorithm: &str) -> uuid::Uuid {
    f.rt.block_on(f.keys.create(
        &f.who,
        NewElasticKey {
            name: format!("bench-{}", uuid::Uuid::now_v7()),
            description: String::new(),
            algorithm: Some(algorithm.to_owned()),
            versioning_allowed: true,
            import_allowed: false,
            export_allowed: false,
        },
    ))
    .unwrap()
    .id
}

fn encryption(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("kms_service");
    for algorithm in ["A256GCM/A256KW", "A256GCM/dir"] {
        let id = create(&f, algorithm);
        for size in [64usize, 16 * 1024] {
            let plaintext = vec![7u8; size];
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(format!("encrypt {algorithm} {size}B"), |b| {
                b.iter(|| {
                    f.rt.block_on(f.keys.encrypt(&f.who, id, black_box(&plaintext), None))
                        .unwrap()
                });
            });
            let token =
                f.rt.block_on(f.keys.encrypt(&f.who, id, &plaintext, None))
                    .unwrap();
            group.bench_function(format!("decrypt {algorithm} {size}B"), |b| {
                b.iter(|| {
                    f.rt.block_on(f.keys.decrypt(&f.who, id, black_box(&token), None))
                        .unwrap()
                });
            });
        }
    }
    for algorithm in ["ES256", "EdDSA"] {
        let id = create(&f, algorithm);
        let payload = vec![7u8; 64];
        group.throughput(Throughput::Bytes(64));
        group.bench_function(format!("sign {algorithm} 64B"), |b| {
            b.iter(|| {
                f.rt.block_on(f.keys.sign(&f.who, id, black_box(&payload)))
                    .unwrap()
            });
        });
        let token = f.rt.block_on(f.keys.sign(&f.who, id, &payload)).unwrap();
        group.bench_function(format!("verify {algorithm} 64B"), |b| {
            b.iter(|| {
                f.rt.block_on(f.keys.verify(&f.who, id, black_box(&token)))
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, encryption);
criterion_main!(benches);
