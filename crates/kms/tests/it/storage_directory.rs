//! The directory suite (named tenants, database realm users): every scenario runs on SQLite in
//! memory, on a SQLite file, and on PostgreSQL when `CRYPTOUTIL_TEST_POSTGRES_URL` is set.
//!
//! The PostgreSQL system schema is shared by every test: names are unique (UUIDv7) and each test
//! removes what it created; no test assumes a table is empty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use cryptoutil_kms::model::{
    ElasticKey, KeyStatus, MaterialKey, PageRequest, RealmUserRecord, TenantId, WrappedKey,
};
use cryptoutil_kms::repository::{BarrierStore, DirectoryStore, KeyStore, StoreError};
use cryptoutil_kms::storage::{DatabaseSettings, Store};
use time::OffsetDateTime;
use uuid::Uuid;

const PG_ENV: &str = "CRYPTOUTIL_TEST_POSTGRES_URL";

fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED (set CRYPTOUTIL_TEST_POSTGRES_URL): PostgreSQL leg of the directory suite"
            );
            None
        }
    }
}

/// One backend under test.
struct Leg {
    label: &'static str,
    store: Store,
    settings: DatabaseSettings,
    /// Keeps a SQLite file store's directory alive.
    _dir: Option<tempfile::TempDir>,
}

async fn legs() -> Vec<Leg> {
    let memory = DatabaseSettings::with_url("sqlite::memory:");
    let mut legs = vec![Leg {
        label: "sqlite-memory",
        store: Store::connect(&memory).await.unwrap(),
        settings: memory,
        _dir: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let file =
        DatabaseSettings::with_url(format!("sqlite://{}", dir.path().join("kms.db").display()));
    legs.push(Leg {
        label: "sqlite-file",
        store: Store::connect(&file).await.unwrap(),
        settings: file,
        _dir: Some(dir),
    });
    if let Some(url) = pg_url() {
        let pg = DatabaseSettings::with_url(url);
        legs.push(Leg {
            label: "postgres",
            store: Store::connect(&pg).await.unwrap(),
            settings: pg,
            _dir: None,
        });
    }
    legs
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest::new(page, size).unwrap()
}

fn user(username: &str, subject: Option<String>) -> RealmUserRecord {
    let now = OffsetDateTime::now_utc();
    RealmUserRecord {
        username: username.to_owned(),
        password_hash: format!("pbkdf2-sha256$600000${}$hash", Uuid::now_v7().simple()),
        roles: vec!["kms:read".to_owned(), "kms:write".to_owned()],
        tenants: vec!["tenant-a".to_owned(), "tenant-b".to_owned()],
        enabled: true,
        metadata: r#"{"team":"crypto","n":1}"#.to_owned(),
        certificate_subject: subject,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Proves the tenant is provisioned: a tenant-scoped write and read work.
async fn use_tenant(store: &Store, tenant: TenantId, label: &str) {
    let now = OffsetDateTime::now_utc();
    let key = ElasticKey {
        id: Uuid::now_v7(),
        name: unique("directory-key"),
        description: "directory test".to_owned(),
        algorithm: "A256GCM/A256KW".to_owned(),
        versioning_allowed: true,
        import_allowed: false,
        export_allowed: false,
        status: KeyStatus::Active,
        created_at: now,
        updated_at: now,
        purge_after: None,
    };
    let content = WrappedKey {
        kid: Uuid::now_v7(),
        parent_kid: None,
        owner: Some(key.id),
        jwe: "eyJ.content".to_owned(),
        created_at: now,
    };
    let material = MaterialKey {
        id: Uuid::now_v7(),
        elastic_key_id: key.id,
        generate_date: now,
        import_date: None,
        revocation_date: None,
        public_jwk: None,
        sealed_jwk: "eyJ.material".to_owned(),
    };
    store
        .insert_elastic_key(tenant, &key, &content, &material)
        .await
        .unwrap();
    assert_eq!(
        store.elastic_key(tenant, key.id).await.unwrap(),
        Some(key),
        "{label}"
    );
}

#[tokio::test]
async fn named_tenants_are_created_once_and_found_by_name_and_id() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let name = unique("dir-tenant");
        assert_eq!(s.tenant_by_name(&name).await.unwrap(), None, "{l}");

        let before = OffsetDateTime::now_utc();
        let t = s.ensure_named_tenant(&name).await.unwrap();
        assert_eq!(t.name, name, "{l}");
        assert_eq!(t.id.0.get_version_num(), 4, "{l}: tenant ids are UUIDv4");
        assert!(t.created_at >= before - time::Duration::seconds(1), "{l}");
        // Idempotent: the same tenant, also through a fresh connection.
        assert_eq!(s.ensure_named_tenant(&name).await.unwrap(), t, "{l}");
        let again = Store::connect(&leg.settings).await.unwrap();
        if l != "sqlite-memory" {
            assert_eq!(again.ensure_named_tenant(&name).await.unwrap(), t, "{l}");
            assert_eq!(again.tenant_by_id(t.id).await.unwrap(), Some(t.clone()));
        }
        again.close().await;

        assert_eq!(
            s.tenant_by_name(&name).await.unwrap(),
            Some(t.clone()),
            "{l}"
        );
        assert_eq!(s.tenant_by_id(t.id).await.unwrap(), Some(t.clone()), "{l}");
        assert!(s.named_tenants().await.unwrap().contains(&t), "{l}");
        // Provisioned: registered for the barrier and usable by the key store.
        assert!(s.tenants().await.unwrap().contains(&t.id), "{l}");
        use_tenant(s, t.id, l).await;

        // Names are unique per tenant; named_tenants is sorted by name.
        let other = s.ensure_named_tenant(&format!("{name}-2")).await.unwrap();
        assert_ne!(other.id, t.id, "{l}");
        let named = s.named_tenants().await.unwrap();
        let names: Vec<&str> = named.iter().map(|t| t.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "{l}");
        assert!(named.contains(&other), "{l}");

        // A tenant provisioned without a name is not in the directory.
        let nameless = TenantId(Uuid::new_v4());
        s.ensure_tenant(nameless).await.unwrap();
        assert_eq!(s.tenant_by_id(nameless).await.unwrap(), None, "{l}");
        assert!(
            !s.named_tenants()
                .await
                .unwrap()
                .iter()
                .any(|t| t.id == nameless),
            "{l}"
        );
        assert!(s.tenants().await.unwrap().contains(&nameless), "{l}");

        // Dropping a tenant frees its name; the name then makes a new tenant.
        for id in [t.id, other.id, nameless] {
            assert!(s.drop_tenant(id).await.unwrap(), "{l}");
        }
        assert_eq!(s.tenant_by_name(&name).await.unwrap(), None, "{l}");
        assert_eq!(s.tenant_by_id(t.id).await.unwrap(), None, "{l}");
        assert!(!s.named_tenants().await.unwrap().contains(&t), "{l}");
        let reborn = s.ensure_named_tenant(&name).await.unwrap();
        assert_ne!(reborn.id, t.id, "{l}");
        assert!(s.drop_tenant(reborn.id).await.unwrap(), "{l}");
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ensure_named_tenant_in_one_store_gives_one_tenant() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let name = unique("dir-race");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, name) = (s.clone(), name.clone());
                tokio::spawn(async move { s.ensure_named_tenant(&name).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().unwrap().id);
        }
        assert_eq!(ids.len(), 1, "{l}: {ids:?}");
        let id = *ids.iter().next().unwrap();
        assert!(s.drop_tenant(id).await.unwrap(), "{l}");
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_racing_on_one_name_get_one_tenant() {
    let Some(url) = pg_url() else { return };
    let settings = DatabaseSettings::with_url(url);
    let stores = [
        Store::connect(&settings).await.unwrap(),
        Store::connect(&settings).await.unwrap(),
    ];
    for round in 0..5 {
        let name = unique("dir-pg-race");
        let (a, b) = tokio::join!(
            tokio::spawn({
                let s = stores[0].clone();
                let n = name.clone();
                async move { s.ensure_named_tenant(&n).await }
            }),
            tokio::spawn({
                let s = stores[1].clone();
                let n = name.clone();
                async move { s.ensure_named_tenant(&n).await }
            }),
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert_eq!(a, b, "round {round}");
        // Both instances see one tenant under that name, provisioned, usable from either.
        for s in &stores {
            assert_eq!(s.tenant_by_name(&name).await.unwrap(), Some(a.clone()));
            assert!(s.tenants().await.unwrap().contains(&a.id));
        }
        use_tenant(&stores[1], a.id, "postgres").await;
        assert!(stores[0].drop_tenant(a.id).await.unwrap());
    }
    for s in stores {
        s.close().await;
    }
}

#[tokio::test]
async fn realm_users_round_trip() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let alice_name = unique("dir-alice");
        let subject = format!("CN={},O=cryptoutil", unique("dir-client"));
        let alice = user(&alice_name, Some(subject.clone()));
        assert_eq!(s.realm_user(&alice_name).await.unwrap(), None, "{l}");
        assert_eq!(s.realm_user_by_subject(&subject).await.unwrap(), None);

        s.insert_realm_user(&alice).await.unwrap();
        assert_eq!(
            s.realm_user(&alice_name).await.unwrap(),
            Some(alice.clone()),
            "{l}"
        );
        assert_eq!(
            s.realm_user_by_subject(&subject).await.unwrap(),
            Some(alice.clone()),
            "{l}"
        );

        // Duplicate username, duplicate subject: conflicts, nothing changed.
        let dup = s.insert_realm_user(&user(&alice_name, None)).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{l}: {dup:?}");
        let bob_name = unique("dir-bob");
        let dup = s
            .insert_realm_user(&user(&bob_name, Some(subject.clone())))
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{l}: {dup:?}");
        assert_eq!(s.realm_user(&bob_name).await.unwrap(), None, "{l}");
        // Several users without a subject are fine.
        let bob = user(&bob_name, None);
        s.insert_realm_user(&bob).await.unwrap();
        let carol = RealmUserRecord {
            roles: Vec::new(),
            tenants: Vec::new(),
            enabled: false,
            metadata: "{}".to_owned(),
            ..user(&unique("dir-carol"), None)
        };
        s.insert_realm_user(&carol).await.unwrap();
        assert_eq!(
            s.realm_user(&carol.username).await.unwrap(),
            Some(carol.clone()),
            "{l}"
        );

        // Compare-and-set update.
        let mut changed = alice.clone();
        changed.password_hash = "pbkdf2-sha256$600000$new$hash".to_owned();
        changed.roles = vec!["kms:admin".to_owned()];
        changed.tenants = vec!["tenant-c".to_owned()];
        changed.enabled = false;
        changed.metadata = r#"{"team":"ops"}"#.to_owned();
        changed.certificate_subject = None;
        changed.version = 2;
        changed.updated_at = alice.updated_at + time::Duration::seconds(5);
        assert!(s.update_realm_user(&changed, 1).await.unwrap(), "{l}");
        assert_eq!(
            s.realm_user(&alice_name).await.unwrap(),
            Some(changed.clone()),
            "{l}"
        );
        assert_eq!(s.realm_user_by_subject(&subject).await.unwrap(), None);
        // A stale version is refused and changes nothing.
        let mut stale = alice.clone();
        stale.version = 2;
        stale.enabled = true;
        assert!(!s.update_realm_user(&stale, 1).await.unwrap(), "{l}");
        assert_eq!(
            s.realm_user(&alice_name).await.unwrap(),
            Some(changed.clone()),
            "{l}"
        );
        // Unknown user: false.
        assert!(
            !s.update_realm_user(&user(&unique("dir-nobody"), None), 1)
                .await
                .unwrap(),
            "{l}"
        );
        // Taking another user's subject is a conflict.
        let mut bob_with_subject = bob.clone();
        bob_with_subject.version = 2;
        bob_with_subject.certificate_subject = Some(subject.clone());
        assert!(s.update_realm_user(&bob_with_subject, 1).await.unwrap());
        let mut alice_takes = changed.clone();
        alice_takes.version = 3;
        alice_takes.certificate_subject = Some(subject.clone());
        let taken = s.update_realm_user(&alice_takes, 2).await;
        assert!(
            matches!(taken, Err(StoreError::Conflict(_))),
            "{l}: {taken:?}"
        );
        assert_eq!(
            s.realm_user_by_subject(&subject).await.unwrap(),
            Some(bob_with_subject.clone()),
            "{l}"
        );

        // Delete.
        for u in [&alice_name, &bob_name, &carol.username] {
            assert!(s.delete_realm_user(u).await.unwrap(), "{l}");
            assert!(!s.delete_realm_user(u).await.unwrap(), "{l}");
            assert_eq!(s.realm_user(u).await.unwrap(), None, "{l}");
        }
        s.close().await;
    }
}

#[tokio::test]
async fn realm_users_list_sorted_by_username_in_pages() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        // Inserted out of order; the shared prefix keeps them adjacent in username order.
        let prefix = unique("dir-list");
        let mut names: Vec<String> = ["c", "a", "e", "b", "d"]
            .iter()
            .map(|x| format!("{prefix}-{x}"))
            .collect();
        for n in &names {
            s.insert_realm_user(&user(n, None)).await.unwrap();
        }
        names.sort();

        let all = s.list_realm_users(page(0, 1000)).await.unwrap();
        assert!(all.total >= 5, "{l}");
        assert_eq!((all.page, all.size), (0, 1000), "{l}");
        let usernames: Vec<&str> = all.items.iter().map(|u| u.username.as_str()).collect();
        let mut sorted = usernames.clone();
        sorted.sort_unstable();
        assert_eq!(usernames, sorted, "{l}: sorted by username (byte order)");
        let mine: Vec<&str> = usernames
            .iter()
            .copied()
            .filter(|u| u.starts_with(&prefix))
            .collect();
        assert_eq!(mine, names, "{l}");
        if l != "postgres" {
            // A private database: exact paging.
            assert_eq!(all.total, 5, "{l}");
            let p1 = s.list_realm_users(page(1, 2)).await.unwrap();
            assert_eq!((p1.page, p1.size, p1.total), (1, 2, 5), "{l}");
            let got: Vec<&str> = p1.items.iter().map(|u| u.username.as_str()).collect();
            assert_eq!(got, vec![names[2].as_str(), names[3].as_str()], "{l}");
            let last = s.list_realm_users(page(2, 2)).await.unwrap();
            assert_eq!(last.items.len(), 1, "{l}");
            let beyond = s.list_realm_users(page(9, 2)).await.unwrap();
            assert!(beyond.items.is_empty(), "{l}");
            assert_eq!(beyond.total, 5, "{l}");
        } else {
            // Shared with concurrent tests: exact paging is checked on SQLite (same SQL).
            let p = s.list_realm_users(page(0, 2)).await.unwrap();
            assert_eq!(p.items.len(), 2, "{l}");
            let beyond = s.list_realm_users(page(u32::MAX, 2)).await.unwrap();
            assert!(beyond.items.is_empty() && beyond.total >= 5, "{l}");
        }
        for n in &names {
            assert!(s.delete_realm_user(n).await.unwrap(), "{l}");
        }
        s.close().await;
    }
}

#[tokio::test]
async fn directory_survives_reconnecting() {
    for leg in legs().await {
        if leg.label == "sqlite-memory" {
            continue;
        }
        let l = leg.label;
        let name = unique("dir-persist");
        let t = leg.store.ensure_named_tenant(&name).await.unwrap();
        let u = user(&unique("dir-persist-user"), None);
        leg.store.insert_realm_user(&u).await.unwrap();
        leg.store.close().await;
        // Migrations run again on the existing database (no-op) and the data is there.
        let s = Store::connect(&leg.settings).await.unwrap();
        assert_eq!(
            s.tenant_by_name(&name).await.unwrap(),
            Some(t.clone()),
            "{l}"
        );
        assert_eq!(
            s.realm_user(&u.username).await.unwrap(),
            Some(u.clone()),
            "{l}"
        );
        use_tenant(&s, t.id, l).await;
        assert!(s.delete_realm_user(&u.username).await.unwrap(), "{l}");
        assert!(s.drop_tenant(t.id).await.unwrap(), "{l}");
        s.close().await;
    }
}
