//! The storage suite: every scenario runs on SQLite in memory, on a SQLite file, and on PostgreSQL
//! when `CRYPTOUTIL_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cryptoutil_kms::model::{
    ElasticKey, ElasticKeyFilter, ElasticKeySortField, KeyStatus, MaterialKey, PageRequest, Sort,
    TenantId, WrappedKey,
};
use cryptoutil_kms::repository::{BarrierStore, KeyStore, StoreError};
use cryptoutil_kms::storage::{Backend, DatabaseSettings, Store};
use cryptoutil_server::config::HumanDuration;
use time::OffsetDateTime;
use uuid::Uuid;

const PG_ENV: &str = "CRYPTOUTIL_TEST_POSTGRES_URL";

fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED (set CRYPTOUTIL_TEST_POSTGRES_URL): PostgreSQL leg of the storage suite"
            );
            None
        }
    }
}

/// One backend under test.
struct Leg {
    label: &'static str,
    store: Store,
    /// The directory of a SQLite file store.
    dir: Option<tempfile::TempDir>,
}

async fn legs() -> Vec<Leg> {
    let mut legs = vec![Leg {
        label: "sqlite-memory",
        store: Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap(),
        dir: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kms.db").display());
    legs.push(Leg {
        label: "sqlite-file",
        store: Store::connect(&DatabaseSettings::with_url(url))
            .await
            .unwrap(),
        dir: Some(dir),
    });
    if let Some(url) = pg_url() {
        legs.push(Leg {
            label: "postgres",
            store: Store::connect(&DatabaseSettings::with_url(url))
                .await
                .unwrap(),
            dir: None,
        });
    }
    legs
}

fn tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000 + secs).unwrap()
}

fn elastic(name: &str) -> ElasticKey {
    let now = OffsetDateTime::now_utc();
    ElasticKey {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        description: "test key".to_owned(),
        algorithm: "A256GCM/A256KW".to_owned(),
        versioning_allowed: true,
        import_allowed: false,
        export_allowed: false,
        status: KeyStatus::Active,
        created_at: now,
        updated_at: now,
        purge_after: None,
    }
}

fn wrapped(parent: Option<Uuid>, owner: Option<Uuid>) -> WrappedKey {
    WrappedKey {
        kid: Uuid::now_v7(),
        parent_kid: parent,
        owner,
        jwe: format!("eyJ.sealed.{}", Uuid::now_v7()),
        created_at: OffsetDateTime::now_utc(),
    }
}

fn material(elastic_key_id: Uuid) -> MaterialKey {
    MaterialKey {
        id: Uuid::now_v7(),
        elastic_key_id,
        generate_date: OffsetDateTime::now_utc(),
        import_date: None,
        revocation_date: None,
        public_jwk: Some(r#"{"kty":"EC"}"#.to_owned()),
        sealed_jwk: format!("eyJ.material.{}", Uuid::now_v7()),
    }
}

/// Inserts an elastic key with its content key and first material key.
async fn create(store: &Store, t: TenantId, key: &ElasticKey) -> (WrappedKey, MaterialKey) {
    let content = wrapped(None, Some(key.id));
    let first = material(key.id);
    store
        .insert_elastic_key(t, key, &content, &first)
        .await
        .unwrap();
    (content, first)
}

async fn drop_tenants(store: &Store, tenants: &[TenantId]) {
    for t in tenants {
        assert!(store.drop_tenant(*t).await.unwrap());
        assert!(!store.tenants().await.unwrap().contains(t));
    }
}

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest::new(page, size).unwrap()
}

/// Root keys live in the shared system schema: remove the test's rows from PostgreSQL.
async fn delete_root_keys(store: &Store, kids: &[Uuid]) {
    if store.backend() != Backend::Postgres {
        return;
    }
    let pool = sqlx::PgPool::connect(&pg_url().unwrap()).await.unwrap();
    for kid in kids {
        sqlx::query("DELETE FROM kms_system.root_keys WHERE kid = $1")
            .bind(kid.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

#[tokio::test]
async fn barrier_keys_round_trip() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        // Root keys: oldest first, duplicate kid refused.
        let r1 = wrapped(None, None);
        let mut r2 = wrapped(None, None);
        r2.created_at = r1.created_at + Duration::from_micros(1);
        s.insert_root_key(&r1).await.unwrap();
        s.insert_root_key(&r2).await.unwrap();
        let dup = s.insert_root_key(&r1).await;
        let roots = s.root_keys().await.unwrap();
        delete_root_keys(s, &[r1.kid, r2.kid]).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{l}: {dup:?}");
        let mine: Vec<_> = roots
            .into_iter()
            .filter(|k| k.kid == r1.kid || k.kid == r2.kid)
            .collect();
        assert_eq!(mine, vec![r1.clone(), r2.clone()], "{l}");

        // Tenants: reads never provision, ensure_tenant is idempotent.
        let t = tenant();
        assert!(s.intermediate_keys(t).await.unwrap().is_empty(), "{l}");
        assert!(!s.tenants().await.unwrap().contains(&t), "{l}");
        s.ensure_tenant(t).await.unwrap();
        s.ensure_tenant(t).await.unwrap();
        assert!(s.tenants().await.unwrap().contains(&t), "{l}");

        let i1 = wrapped(Some(r1.kid), None);
        let mut i2 = wrapped(Some(r2.kid), None);
        i2.created_at = i1.created_at + Duration::from_nanos(1);
        s.insert_intermediate_key(t, &i2).await.unwrap();
        s.insert_intermediate_key(t, &i1).await.unwrap();
        assert_eq!(
            s.intermediate_keys(t).await.unwrap(),
            vec![i1.clone(), i2.clone()],
            "{l}"
        );

        // Content keys by kid and newest by owner.
        let key = elastic(&unique("barrier"));
        let (c1, _) = create(s, t, &key).await;
        assert_eq!(
            s.content_key(t, c1.kid).await.unwrap(),
            Some(c1.clone()),
            "{l}"
        );
        assert_eq!(
            s.content_key_for_owner(t, key.id).await.unwrap(),
            Some(c1.clone()),
            "{l}"
        );
        assert_eq!(s.content_key(t, Uuid::now_v7()).await.unwrap(), None, "{l}");
        assert_eq!(
            s.content_key_for_owner(t, Uuid::now_v7()).await.unwrap(),
            None,
            "{l}"
        );
        s.ping().await.unwrap();
        drop_tenants(s, &[t]).await;
        assert!(s.intermediate_keys(t).await.unwrap().is_empty(), "{l}");
        s.close().await;
    }
}

#[tokio::test]
async fn elastic_and_material_keys_round_trip() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let t = tenant();
        let key = elastic(&unique("ek"));
        let (content, first) = create(s, t, &key).await;
        assert_eq!(
            s.elastic_key(t, key.id).await.unwrap(),
            Some(key.clone()),
            "{l}"
        );
        assert_eq!(s.elastic_key(t, Uuid::now_v7()).await.unwrap(), None, "{l}");

        // Same name (or same id) again: conflict, and nothing of the failed insert remains.
        let mut same_name = elastic(&key.name);
        same_name.description = "other".to_owned();
        let c2 = wrapped(None, Some(same_name.id));
        let m2 = material(same_name.id);
        let err = s.insert_elastic_key(t, &same_name, &c2, &m2).await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{l}: {err:?}");
        assert_eq!(s.content_key(t, c2.kid).await.unwrap(), None, "{l}");
        assert_eq!(s.elastic_key(t, same_name.id).await.unwrap(), None, "{l}");
        let mut same_id = elastic(&unique("other"));
        same_id.id = key.id;
        let err = s
            .insert_elastic_key(t, &same_id, &wrapped(None, Some(key.id)), &material(key.id))
            .await;
        assert!(matches!(err, Err(StoreError::Conflict(_))), "{l}: {err:?}");

        // Update writes description, status, purge_after, updated_at only.
        let mut changed = key.clone();
        changed.description = "changed".to_owned();
        changed.status = KeyStatus::PendingDelete;
        changed.purge_after = Some(OffsetDateTime::now_utc() + Duration::from_secs(86_400));
        changed.updated_at = OffsetDateTime::now_utc();
        let mut with_other_name = changed.clone();
        with_other_name.name = unique("renamed");
        assert!(
            s.update_elastic_key(t, &with_other_name).await.unwrap(),
            "{l}"
        );
        assert_eq!(
            s.elastic_key(t, key.id).await.unwrap(),
            Some(changed.clone()),
            "{l}"
        );
        assert!(
            !s.update_elastic_key(t, &elastic("missing")).await.unwrap(),
            "{l}"
        );

        // Material keys: latest ignores revoked, lists newest first.
        let second = material(key.id);
        s.insert_material_key(t, &second).await.unwrap();
        let mut third = material(key.id);
        third.revocation_date = Some(OffsetDateTime::now_utc());
        third.import_date = Some(OffsetDateTime::now_utc());
        third.public_jwk = None;
        s.insert_material_key(t, &third).await.unwrap();
        assert_eq!(
            s.latest_material_key(t, key.id).await.unwrap(),
            Some(second.clone()),
            "{l}"
        );
        assert_eq!(
            s.material_key(t, key.id, third.id).await.unwrap(),
            Some(third.clone()),
            "{l}"
        );
        assert_eq!(
            s.material_key(t, key.id, first.id).await.unwrap(),
            Some(first.clone()),
            "{l}"
        );
        assert_eq!(
            s.material_key(t, Uuid::now_v7(), first.id).await.unwrap(),
            None,
            "{l}"
        );
        let dup = s.insert_material_key(t, &second).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{l}: {dup:?}");
        let orphan = s.insert_material_key(t, &material(Uuid::now_v7())).await;
        assert!(
            matches!(orphan, Err(StoreError::Conflict(_))),
            "{l}: {orphan:?}"
        );

        let p0 = s
            .list_material_keys(t, Some(key.id), page(0, 2))
            .await
            .unwrap();
        assert_eq!((p0.total, p0.page, p0.size), (3, 0, 2), "{l}");
        assert_eq!(p0.items, vec![third.clone(), second.clone()], "{l}");
        let p1 = s
            .list_material_keys(t, Some(key.id), page(1, 2))
            .await
            .unwrap();
        assert_eq!(p1.items, vec![first.clone()], "{l}");
        let other = elastic(&unique("ek2"));
        let (_, other_first) = create(s, t, &other).await;
        let all = s.list_material_keys(t, None, page(0, 10)).await.unwrap();
        assert_eq!(all.total, 4, "{l}");
        assert_eq!(all.items, vec![other_first, third, second, first], "{l}");
        assert_eq!(
            s.content_key_for_owner(t, key.id).await.unwrap(),
            Some(content),
            "{l}"
        );
        drop_tenants(s, &[t]).await;
    }
}

#[tokio::test]
async fn tenants_are_isolated() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let (a, b) = (tenant(), tenant());
        let name = unique("shared-name");
        let ka = elastic(&name);
        let (ca, ma) = create(s, a, &ka).await;
        let ia = wrapped(None, None);
        s.insert_intermediate_key(a, &ia).await.unwrap();
        // The same name is free in another tenant.
        let kb = elastic(&name);
        create(s, b, &kb).await;

        let listed = s
            .list_elastic_keys(
                b,
                &ElasticKeyFilter::default(),
                Sort::default(),
                page(0, 100),
            )
            .await
            .unwrap();
        assert_eq!(listed.items, vec![kb.clone()], "{l}");
        assert_eq!(s.elastic_key(b, ka.id).await.unwrap(), None, "{l}");
        assert_eq!(s.material_key(b, ka.id, ma.id).await.unwrap(), None, "{l}");
        assert_eq!(s.latest_material_key(b, ka.id).await.unwrap(), None, "{l}");
        assert_eq!(s.content_key(b, ca.kid).await.unwrap(), None, "{l}");
        assert_eq!(
            s.content_key_for_owner(b, ka.id).await.unwrap(),
            None,
            "{l}"
        );
        assert!(s.intermediate_keys(b).await.unwrap().is_empty(), "{l}");
        assert_eq!(
            s.list_material_keys(b, None, page(0, 100))
                .await
                .unwrap()
                .total,
            1,
            "{l}"
        );
        let mut foreign = ka.clone();
        foreign.description = "hijacked".to_owned();
        assert!(!s.update_elastic_key(b, &foreign).await.unwrap(), "{l}");
        assert_eq!(
            s.elastic_key(a, ka.id).await.unwrap(),
            Some(ka.clone()),
            "{l}"
        );

        if let Some(dir) = &leg.dir {
            for t in [a, b] {
                let file: PathBuf = dir.path().join(format!("kms.tenant_{}.db", t.hex()));
                assert!(file.is_file(), "{l}: {}", file.display());
            }
        }
        drop_tenants(s, &[a, b]).await;
        if let Some(dir) = &leg.dir {
            assert!(
                !dir.path()
                    .join(format!("kms.tenant_{}.db", a.hex()))
                    .exists(),
                "{l}"
            );
        }
    }
}

#[tokio::test]
async fn unprovisioned_tenant_reads_nothing() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let t = tenant();
        let id = Uuid::now_v7();
        assert_eq!(s.elastic_key(t, id).await.unwrap(), None, "{l}");
        let list = s
            .list_elastic_keys(t, &ElasticKeyFilter::default(), Sort::default(), page(2, 7))
            .await
            .unwrap();
        assert_eq!(
            (list.items.len(), list.page, list.size, list.total),
            (0, 2, 7, 0),
            "{l}"
        );
        assert_eq!(
            s.list_material_keys(t, None, page(0, 5))
                .await
                .unwrap()
                .total,
            0,
            "{l}"
        );
        assert!(
            s.purge_due(t, OffsetDateTime::now_utc())
                .await
                .unwrap()
                .is_empty(),
            "{l}"
        );
        assert!(
            !s.update_elastic_key(t, &elastic("x")).await.unwrap(),
            "{l}"
        );
        assert_eq!(s.material_key(t, id, id).await.unwrap(), None, "{l}");
        assert!(!s.tenants().await.unwrap().contains(&t), "{l}");
        assert!(!s.drop_tenant(t).await.unwrap(), "{l}");
    }
}

fn sort_key(k: &ElasticKey, field: ElasticKeySortField) -> String {
    match field {
        ElasticKeySortField::Name => k.name.clone(),
        ElasticKeySortField::Algorithm => k.algorithm.clone(),
        ElasticKeySortField::Status => k.status.as_str().to_owned(),
        ElasticKeySortField::CreatedAt => format!("{:020}", k.created_at.unix_timestamp_nanos()),
        ElasticKeySortField::UpdatedAt => format!("{:020}", k.updated_at.unix_timestamp_nanos()),
    }
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let t = tenant();
        let algs = ["ES256", "A256GCM/dir", "RS256", "ES256", "EdDSA"];
        let statuses = [
            KeyStatus::Active,
            KeyStatus::Disabled,
            KeyStatus::PendingDelete,
            KeyStatus::Deleted,
            KeyStatus::Active,
        ];
        // Names in an order unrelated to ids; created_at has a tie (keys 1 and 2).
        let names = ["delta", "alpha", "Echo", "charlie", "bravo"];
        let mut keys = Vec::new();
        for i in 0..5 {
            let mut k = elastic(&format!("{}-{}", names[i], Uuid::now_v7()));
            k.algorithm = algs[i].to_owned();
            k.status = statuses[i];
            k.versioning_allowed = i % 2 == 0;
            k.import_allowed = i < 2;
            k.export_allowed = i == 4;
            let i64i = i64::try_from(i).unwrap();
            k.created_at = at(if i == 2 { 1 } else { i64i });
            k.updated_at = at(100 - i64i);
            create(s, t, &k).await;
            keys.push(k);
        }
        let all = ElasticKeyFilter::default();

        for field in [
            ElasticKeySortField::Name,
            ElasticKeySortField::Algorithm,
            ElasticKeySortField::Status,
            ElasticKeySortField::CreatedAt,
            ElasticKeySortField::UpdatedAt,
        ] {
            let mut expected = keys.clone();
            expected.sort_by_key(|x| (sort_key(x, field), x.id));
            let asc = Sort {
                field,
                descending: false,
            };
            let got = s
                .list_elastic_keys(t, &all, asc, page(0, 10))
                .await
                .unwrap();
            assert_eq!(got.items, expected, "{l}: {field:?} ascending");
            assert_eq!(got.total, 5, "{l}");
            expected.reverse();
            let desc = Sort {
                field,
                descending: true,
            };
            let got = s
                .list_elastic_keys(t, &all, desc, page(0, 10))
                .await
                .unwrap();
            assert_eq!(got.items, expected, "{l}: {field:?} descending");
        }

        // Paging: offset = page * size, totals across pages.
        let by_created = Sort::default();
        let mut seen = Vec::new();
        for (p, len) in [(0, 2), (1, 2), (2, 1), (3, 0)] {
            let got = s
                .list_elastic_keys(t, &all, by_created, page(p, 2))
                .await
                .unwrap();
            assert_eq!(
                (got.items.len(), got.total, got.page, got.size),
                (len, 5, p, 2),
                "{l}"
            );
            seen.extend(got.items);
        }
        let mut expected = keys.clone();
        expected.sort_by_key(|k| (k.created_at, k.id));
        assert_eq!(seen, expected, "{l}");

        // Each filter, alone and combined.
        let ids = |f: ElasticKeyFilter| {
            let s = s.clone();
            async move {
                s.list_elastic_keys(
                    t,
                    &f,
                    Sort {
                        field: ElasticKeySortField::Name,
                        descending: false,
                    },
                    page(0, 100),
                )
                .await
                .unwrap()
            }
        };
        let names_of = |p: cryptoutil_kms::model::Page<ElasticKey>| {
            let mut v: Vec<Uuid> = p.items.iter().map(|k| k.id).collect();
            v.sort();
            (v, p.total)
        };
        let expect = |idx: &[usize]| {
            let mut v: Vec<Uuid> = idx.iter().map(|i| keys[*i].id).collect();
            v.sort();
            let n = v.len() as u64;
            (v, n)
        };
        let f = ElasticKeyFilter {
            ids: vec![keys[0].id, keys[3].id, Uuid::now_v7()],
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[0, 3]), "{l}: ids");
        let f = ElasticKeyFilter {
            names: vec![keys[1].name.clone(), keys[4].name.clone()],
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[1, 4]), "{l}: names");
        let f = ElasticKeyFilter {
            algorithms: vec!["ES256".to_owned(), "EdDSA".to_owned()],
            ..all.clone()
        };
        assert_eq!(
            names_of(ids(f).await),
            expect(&[0, 3, 4]),
            "{l}: algorithms"
        );
        let f = ElasticKeyFilter {
            statuses: vec![KeyStatus::Active, KeyStatus::Deleted],
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[0, 3, 4]), "{l}: statuses");
        let f = ElasticKeyFilter {
            versioning_allowed: Some(true),
            ..all.clone()
        };
        assert_eq!(
            names_of(ids(f).await),
            expect(&[0, 2, 4]),
            "{l}: versioning"
        );
        let f = ElasticKeyFilter {
            import_allowed: Some(false),
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[2, 3, 4]), "{l}: import");
        let f = ElasticKeyFilter {
            export_allowed: Some(true),
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[4]), "{l}: export");
        let f = ElasticKeyFilter {
            algorithms: vec!["ES256".to_owned()],
            statuses: vec![KeyStatus::Active],
            versioning_allowed: Some(true),
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[0]), "{l}: combined");
        // Request text is data, never SQL.
        let f = ElasticKeyFilter {
            names: vec!["x' OR '1'='1".to_owned()],
            ..all.clone()
        };
        assert_eq!(names_of(ids(f).await), expect(&[]), "{l}: injection");
        drop_tenants(s, &[t]).await;
    }
}

#[tokio::test]
async fn purge_due_shreds_only_due_keys() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let t = tenant();
        let now = OffsetDateTime::now_utc();
        let mut due = elastic(&unique("due"));
        due.status = KeyStatus::PendingDelete;
        due.purge_after = Some(now - Duration::from_secs(1));
        let mut exactly_due = elastic(&unique("exactly-due"));
        exactly_due.status = KeyStatus::PendingDelete;
        exactly_due.purge_after = Some(now);
        let mut later = elastic(&unique("later"));
        later.status = KeyStatus::PendingDelete;
        later.purge_after = Some(now + Duration::from_secs(3600));
        let mut disabled = elastic(&unique("disabled"));
        disabled.status = KeyStatus::Disabled;
        disabled.purge_after = Some(now - Duration::from_secs(1));
        let (_, due_first) = create(s, t, &due).await;
        s.insert_material_key(t, &material(due.id)).await.unwrap();
        create(s, t, &exactly_due).await;
        let (later_content, later_first) = create(s, t, &later).await;
        create(s, t, &disabled).await;

        let mut purged = s.purge_due(t, now).await.unwrap();
        purged.sort();
        let mut expected = vec![due.id, exactly_due.id];
        expected.sort();
        assert_eq!(purged, expected, "{l}");

        let gone = s.elastic_key(t, due.id).await.unwrap().unwrap();
        assert_eq!(gone.status, KeyStatus::Deleted, "{l}");
        assert_eq!(gone.updated_at, now, "{l}");
        assert_eq!(gone.purge_after, None, "{l}");
        assert_eq!(gone.name, due.name, "{l}");
        assert_eq!(
            s.material_key(t, due.id, due_first.id).await.unwrap(),
            None,
            "{l}"
        );
        assert_eq!(s.latest_material_key(t, due.id).await.unwrap(), None, "{l}");
        assert_eq!(
            s.list_material_keys(t, Some(due.id), page(0, 10))
                .await
                .unwrap()
                .total,
            0,
            "{l}"
        );
        assert_eq!(
            s.content_key_for_owner(t, due.id).await.unwrap(),
            None,
            "{l}"
        );

        assert_eq!(
            s.elastic_key(t, later.id).await.unwrap(),
            Some(later.clone()),
            "{l}"
        );
        assert_eq!(
            s.elastic_key(t, disabled.id).await.unwrap(),
            Some(disabled.clone()),
            "{l}"
        );
        assert_eq!(
            s.latest_material_key(t, later.id).await.unwrap(),
            Some(later_first),
            "{l}"
        );
        assert_eq!(
            s.content_key_for_owner(t, later.id).await.unwrap(),
            Some(later_content),
            "{l}"
        );
        assert!(s.purge_due(t, now).await.unwrap().is_empty(), "{l}");
        drop_tenants(s, &[t]).await;
    }
}

#[tokio::test]
async fn init_lock_returns_results_and_releases_after_errors() {
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let inner = s.clone();
        let n = s
            .with_init_lock(|| async move { Ok(inner.root_keys().await?.len()) })
            .await
            .unwrap();
        let _ = n;
        let failed: Result<(), _> = s
            .with_init_lock(|| async { Err(StoreError::Conflict("boom".to_owned())) })
            .await;
        assert!(
            matches!(failed, Err(StoreError::Conflict(m)) if m == "boom"),
            "{l}"
        );
        let again = s.with_init_lock(|| async { Ok(7) }).await.unwrap();
        assert_eq!(again, 7, "{l}");
    }
}

/// Runs `rounds` locked sections from each store at once; returns the largest number of closures
/// that were ever inside at the same time and how many ran.
async fn lock_contention(stores: Vec<Store>, rounds: usize) -> (usize, usize) {
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for store in stores {
        let (inside, most, ran) = (inside.clone(), most.clone(), ran.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                let (inside, most, ran) = (inside.clone(), most.clone(), ran.clone());
                let s2 = store.clone();
                store
                    .with_init_lock(|| async move {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Give the other store every chance to enter: a round trip and a pause.
                        s2.ping().await?;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (most.load(Ordering::SeqCst), ran.load(Ordering::SeqCst))
}

#[tokio::test]
async fn sqlite_file_persists_and_lock_is_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        DatabaseSettings::with_url(format!("sqlite://{}", dir.path().join("p.db").display()));
    let t = tenant();
    let key = elastic(&unique("persisted"));
    {
        let s = Store::connect(&settings).await.unwrap();
        assert_eq!(s.backend(), Backend::Sqlite);
        create(&s, t, &key).await;
        s.close().await;
        assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
    }
    // Migrations run again (no-op) and the tenant database is found through the registry.
    let s1 = Store::connect(&settings).await.unwrap();
    let s2 = Store::connect(&settings).await.unwrap();
    assert_eq!(s1.elastic_key(t, key.id).await.unwrap(), Some(key.clone()));
    assert_eq!(s2.tenants().await.unwrap(), vec![t]);
    assert!(
        dir.path()
            .join(format!("p.tenant_{}.db", t.hex()))
            .is_file()
    );
    assert_eq!(
        lock_contention(vec![s1.clone(), s2.clone()], 5).await,
        (1, 10)
    );
    s1.close().await;
    s2.close().await;
}

#[tokio::test]
async fn in_memory_stores_never_share() {
    let a = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
        .await
        .unwrap();
    let b = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
        .await
        .unwrap();
    let t = tenant();
    a.ensure_tenant(t).await.unwrap();
    let r = wrapped(None, None);
    a.insert_root_key(&r).await.unwrap();
    assert_eq!(a.root_keys().await.unwrap(), vec![r]);
    assert!(b.root_keys().await.unwrap().is_empty());
    assert!(b.tenants().await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let settings = DatabaseSettings {
        acquire_timeout: HumanDuration(Duration::from_secs(1)),
        ..DatabaseSettings::with_url("postgres://postgres@127.0.0.1:1/test")
    };
    // The outer timeout only guards against a hang; the store must give up on its own.
    let result = tokio::time::timeout(Duration::from_secs(60), Store::connect(&settings))
        .await
        .expect("connect hung");
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );

    let missing = format!("sqlite:///nonexistent-{}/kms.db", Uuid::now_v7());
    let result = Store::connect(&DatabaseSettings::with_url(missing)).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn postgres_instances_share_data_and_serialise_initialisation() {
    let Some(url) = pg_url() else { return };
    let settings = DatabaseSettings::with_url(url);
    // Several instances starting together: migrations are serialised and idempotent.
    let (a, b) = tokio::join!(Store::connect(&settings), Store::connect(&settings));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.backend(), Backend::Postgres);
    let t = tenant();
    let (ra, rb) = tokio::join!(a.ensure_tenant(t), b.ensure_tenant(t));
    ra.unwrap();
    rb.unwrap();

    // Writes of one instance are visible to the other, including a tenant it never provisioned.
    let key = elastic(&unique("shared"));
    create(&a, t, &key).await;
    assert_eq!(b.elastic_key(t, key.id).await.unwrap(), Some(key.clone()));
    let fresh = Store::connect(&settings).await.unwrap();
    assert_eq!(
        fresh.elastic_key(t, key.id).await.unwrap(),
        Some(key.clone())
    );
    let mut changed = key.clone();
    changed.status = KeyStatus::Disabled;
    assert!(b.update_elastic_key(t, &changed).await.unwrap());
    assert_eq!(a.elastic_key(t, key.id).await.unwrap(), Some(changed));
    let dup = b
        .insert_elastic_key(
            t,
            &elastic(&key.name),
            &wrapped(None, None),
            &material(key.id),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // The init lock excludes across instances: never two closures inside at once.
    assert_eq!(
        lock_contention(vec![a.clone(), b.clone(), fresh.clone()], 4).await,
        (1, 12)
    );

    drop_tenants(&a, &[t]).await;
    for s in [a, b, fresh] {
        s.close().await;
    }
}

#[tokio::test]
async fn postgres_pool_recovers_after_losing_its_connections() {
    let Some(url) = pg_url() else { return };
    let app = format!("kms-test-{}", Uuid::now_v7().simple());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = Store::connect(&DatabaseSettings::with_url(format!(
        "{url}{sep}application_name={app}"
    )))
    .await
    .unwrap();
    store.ping().await.unwrap();
    // The database drops every session of this store (as on a restart).
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&app)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!killed.is_empty() && killed.iter().all(|k| *k));
    admin.close().await;
    // The pool notices the dead connection and opens a new one by itself.
    store.ping().await.unwrap();
    assert!(store.tenants().await.is_ok());
    store.close().await;
}

/// The inventory's read (versions, last use) and the last-use flush, which only moves forward.
#[tokio::test]
async fn inventory_counts_versions_and_last_use_only_moves_forward() {
    use cryptoutil_kms::repository::InventoryStore;
    for leg in legs().await {
        let s = &leg.store;
        let l = leg.label;
        let t = tenant();
        assert!(s.inventory_keys(t).await.unwrap().is_empty(), "{l}");
        assert_eq!(
            s.record_last_use(t, &[(Uuid::now_v7(), at(0))])
                .await
                .unwrap(),
            0,
            "{l}: an unprovisioned tenant changes nothing"
        );
        let one = elastic(&unique("inv-one"));
        let two = elastic(&unique("inv-two"));
        create(s, t, &one).await;
        create(s, t, &two).await;
        s.insert_material_key(t, &material(two.id)).await.unwrap();
        s.insert_material_key(t, &material(two.id)).await.unwrap();
        let rows = s.inventory_keys(t).await.unwrap();
        let found: Vec<(Uuid, u64, Option<OffsetDateTime>)> = rows
            .iter()
            .map(|r| (r.key.id, r.versions, r.last_used_at))
            .collect();
        assert_eq!(found, vec![(one.id, 1, None), (two.id, 3, None)], "{l}");
        assert_eq!(rows[0].key, one, "{l}");

        // Forward only; unknown keys are skipped.
        let changed = s
            .record_last_use(t, &[(one.id, at(120)), (Uuid::now_v7(), at(60))])
            .await
            .unwrap();
        assert_eq!(changed, 1, "{l}");
        assert_eq!(
            s.record_last_use(t, &[(one.id, at(60))]).await.unwrap(),
            0,
            "{l}: an older time is ignored"
        );
        s.record_last_use(t, &[(two.id, at(180))]).await.unwrap();
        let rows = s.inventory_keys(t).await.unwrap();
        assert_eq!(rows[0].last_used_at, Some(at(120)), "{l}");
        assert_eq!(rows[1].last_used_at, Some(at(180)), "{l}");
        // Another tenant sees none of it.
        assert!(s.inventory_keys(tenant()).await.unwrap().is_empty(), "{l}");
        drop_tenants(s, &[t]).await;
    }
}
