//! In-process key service (business layer, no HTTP): encrypt/decrypt/sign/verify on warm keys,
//! SQLite in memory, dev barrier. Figures go to docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cryptoutil_kms::model::{Principal, TenantId};
use cryptoutil_kms::scopes;

mod common;

struct Fixture {
    world: common::World,
    who: Principal,
}

fn fixture() -> Fixture {
    let tenant = TenantId(uuid::Uuid::new_v4());
    let who = Principal {
        tenant,
        tenants: vec![tenant],
        subject: "bench".to_owned(),
        scopes: scopes::OPERATION_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        request_id: None,
        actor: None,
    };
    Fixture {
        world: common::world(),
        who,
    }
}

fn create(f: &Fixture, algorithm: &str) -> uuid::Uuid {
    f.world.create_key(&f.who, algorithm)
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
                    f.world
                        .rt
                        .block_on(
                            f.world
                                .keys
                                .encrypt(&f.who, id, black_box(&plaintext), None),
                        )
                        .unwrap()
                });
            });
            let token = f
                .world
                .rt
                .block_on(f.world.keys.encrypt(&f.who, id, &plaintext, None))
                .unwrap();
            group.bench_function(format!("decrypt {algorithm} {size}B"), |b| {
                b.iter(|| {
                    f.world
                        .rt
                        .block_on(f.world.keys.decrypt(&f.who, id, black_box(&token), None))
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
                f.world
                    .rt
                    .block_on(f.world.keys.sign(&f.who, id, black_box(&payload)))
                    .unwrap()
            });
        });
        let token = f
            .world
            .rt
            .block_on(f.world.keys.sign(&f.who, id, &payload))
            .unwrap();
        group.bench_function(format!("verify {algorithm} 64B"), |b| {
            b.iter(|| {
                f.world
                    .rt
                    .block_on(f.world.keys.verify(&f.who, id, black_box(&token)))
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, encryption);
criterion_main!(benches);
