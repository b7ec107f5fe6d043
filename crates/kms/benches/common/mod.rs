//! What the KMS benchmarks share: an in-memory KMS (SQLite, dev barrier), database-realm users
//! (`kms:read kms:write`, a tenant each) with their Basic headers, keys to work with, and
//! service-surface settings without the production rate limit. Each bench uses part of it.

#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, HeaderValue, header};
use cryptoutil_kms::api::Keys;
use cryptoutil_kms::barrier::{Barrier, UnsealKeys};
use cryptoutil_kms::keys::{KeyService, KeyServiceOptions, NewElasticKey};
use cryptoutil_kms::model::{Principal, RealmUserRecord};
use cryptoutil_kms::repository::DirectoryStore;
use cryptoutil_kms::storage::{DatabaseSettings, Store};
use cryptoutil_realm::BoxFuture;
use cryptoutil_realm::bearer::{BearerError, Introspector, JwksFetcher};
use cryptoutil_server::config::{RateLimitSettings, SurfaceSettings};

/// The KMS under benchmark.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
}

/// A database-realm user.
pub struct RealmUser {
    pub username: String,
    pub password: String,
    /// The user's tenant.
    pub tenant_name: String,
}

/// A fresh in-memory KMS.
pub fn world() -> World {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (store, keys) = rt.block_on(async {
        let store = Arc::new(
            Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
                .await
                .unwrap(),
        );
        let barrier = Barrier::open(store.clone(), UnsealKeys::dev().unwrap(), 1000)
            .await
            .unwrap();
        let keys = KeyService::new(
            store.clone(),
            Arc::new(barrier),
            KeyServiceOptions {
                purge_delay: time::Duration::days(7),
                material_cache_capacity: NonZeroUsize::new(1000).unwrap(),
                // Long enough that no entry expires while a (callgrind-slowed) loop runs: the
                // measured path is the warm one; the re-read every 2 s in production is noise.
                metadata_cache_ttl: std::time::Duration::from_secs(3600),
            },
        );
        (store, Arc::new(keys))
    });
    World { rt, store, keys }
}

impl World {
    /// A new realm user (UUIDv7 names) with `kms:read kms:write` in a tenant of its own.
    pub fn add_realm_user(&self) -> RealmUser {
        let unique = uuid::Uuid::now_v7();
        let user = RealmUser {
            username: format!("bench-{unique}"),
            password: format!("pw-{}", uuid::Uuid::now_v7()),
            tenant_name: format!("bench-tenant-{unique}"),
        };
        self.rt.block_on(async {
            self.store
                .ensure_named_tenant(&user.tenant_name)
                .await
                .unwrap();
            let now = time::OffsetDateTime::now_utc();
            self.store
                .insert_realm_user(&RealmUserRecord {
                    username: user.username.clone(),
                    password_hash: cryptoutil_realm::password::hash_password(&user.password)
                        .unwrap(),
                    roles: vec!["kms:read".to_owned(), "kms:write".to_owned()],
                    tenants: vec![user.tenant_name.clone()],
                    enabled: true,
                    metadata: "{}".to_owned(),
                    certificate_subject: None,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                })
                .await
                .unwrap();
        });
        user
    }

    /// A new elastic key of `algorithm`, created by `who`.
    pub fn create_key(&self, who: &Principal, algorithm: &str) -> uuid::Uuid {
        self.rt
            .block_on(self.keys.create(
                who,
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
}

impl RealmUser {
    /// `Authorization: Basic …` of this user.
    pub fn basic_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&cryptoutil_realm::basic::encode(
                &self.username,
                &self.password,
            ))
            .unwrap(),
        );
        headers
    }
}

/// The service surface without a practical rate limit (production's 1000/s per client would
/// answer 429 within a bench run).
pub fn unthrottled_surface() -> SurfaceSettings {
    SurfaceSettings {
        rate_limit: RateLimitSettings {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        allowed_ips: Vec::new(),
    }
}

/// A simulated issuer's JWKS, served from memory (counts fetches).
#[derive(Debug)]
pub struct Jwks {
    pub text: String,
    pub fetches: AtomicUsize,
}

impl JwksFetcher for Jwks {
    fn fetch(&self) -> BoxFuture<'_, Result<String, BearerError>> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(self.text.clone()) })
    }
}

/// A simulated issuer's introspection endpoint: every token active (counts calls).
#[derive(Debug, Default)]
pub struct Introspection {
    pub calls: AtomicUsize,
}

impl Introspector for Introspection {
    fn introspect<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Result<bool, BearerError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(true) })
    }
}
