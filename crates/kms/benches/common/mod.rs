//! What the KMS benchmarks share: an in-memory KMS (SQLite, dev barrier) with one database-realm
//! user (`kms:read kms:write`) in its own tenant, Basic headers, a key to encrypt with, and
//! service-surface settings without the production rate limit.

use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use cryptoutil_kms::api::Keys;
use cryptoutil_kms::barrier::{Barrier, UnsealKeys};
use cryptoutil_kms::keys::{KeyService, KeyServiceOptions, NewElasticKey};
use cryptoutil_kms::model::{Principal, RealmUserRecord};
use cryptoutil_kms::storage::{DatabaseSettings, Store};
use cryptoutil_kms::store::DirectoryStore;
use cryptoutil_server::config::{RateLimitSettings, SurfaceSettings};

/// The KMS under benchmark and its realm user.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub store: Arc<Store>,
    pub keys: Arc<Keys>,
    pub username: String,
    pub password: String,
    /// The user's tenant (the federation bench puts it in its token).
    #[allow(dead_code)]
    pub tenant_name: String,
}

/// A fresh in-memory KMS with a realm user (UUIDv7 names) in a tenant of its own.
pub fn world() -> World {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let unique = uuid::Uuid::now_v7();
    let username = format!("bench-{unique}");
    let password = format!("pw-{}", uuid::Uuid::now_v7());
    let tenant_name = format!("bench-tenant-{unique}");
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
            },
        );
        store.ensure_named_tenant(&tenant_name).await.unwrap();
        let now = time::OffsetDateTime::now_utc();
        store
            .insert_realm_user(&RealmUserRecord {
                username: username.clone(),
                password_hash: cryptoutil_realm::password::hash_password(&password).unwrap(),
                roles: vec!["kms:read".to_owned(), "kms:write".to_owned()],
                tenants: vec![tenant_name.clone()],
                enabled: true,
                metadata: "{}".to_owned(),
                certificate_subject: None,
                version: 1,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        (store, Arc::new(keys))
    });
    World {
        rt,
        store,
        keys,
        username,
        password,
        tenant_name,
    }
}

impl World {
    /// `Authorization: Basic …` of the realm user.
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
