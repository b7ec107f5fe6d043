//! The storage suite: every scenario runs on SQLite in memory, on a SQLite file and on PostgreSQL
//! (a fresh database per test) when `CRYPTOUTIL_TEST_POSTGRES_URL` is set. Concurrency scenarios
//! race several pooled connections (several stores for the first start, on the SQLite file and
//! PostgreSQL only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;

use cryptoutil_identity::model::{
    AuthorizationCode, Client, ClientAuthMethod, ClientMetadata, ClientSecret, Grant, GrantType,
    PushedRequest, RefreshToken, SealedSigningKey, Session, User,
};
use cryptoutil_identity::storage::{
    Backend, CodeRedemption, DatabaseSettings, RefreshRotation, Store, StoreError,
};
use cryptoutil_testkit::postgres::TestDatabase;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Where a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    File,
    Postgres,
}

/// One database under test. Keep it alive for the whole scenario.
struct Db {
    kind: Kind,
    settings: DatabaseSettings,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<TestDatabase>,
}

impl Db {
    /// A fresh database, or `None` (with a loud line) for PostgreSQL when the variable is unset.
    async fn new(kind: Kind) -> Option<Db> {
        match kind {
            Kind::Memory => Some(Db {
                kind,
                settings: DatabaseSettings::with_url("sqlite::memory:"),
                _dir: None,
                _pg: None,
            }),
            Kind::File => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("identity.db").display());
                Some(Db {
                    kind,
                    settings: DatabaseSettings::with_url(url),
                    _dir: Some(dir),
                    _pg: None,
                })
            }
            Kind::Postgres => {
                // Dropped (connections terminated) when the test ends, even when it fails.
                let pg = TestDatabase::create("identity_test").await?;
                Some(Db {
                    kind,
                    settings: DatabaseSettings::with_url(pg.url.clone()),
                    _dir: None,
                    _pg: Some(pg),
                })
            }
        }
    }

    /// A store on this database (each call opens a new pool and runs the migrations).
    async fn store(&self) -> Store {
        let store = Store::connect(&self.settings).await.unwrap();
        let expected = if self.kind == Kind::Postgres {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        assert_eq!(store.backend(), expected);
        store
    }
}

async fn run<F, Fut>(kind: Kind, scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = Db::new(kind).await {
        scenario(db).await;
    }
}

/// Generates one test per scenario and backend: `scenario::sqlite_memory` …
macro_rules! suite {
    (@one $name:ident, $test:ident, $kind:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $test() {
            run($kind, super::$name).await;
        }
    };
    (all: $($name:ident),* $(,)?) => {
        $(mod $name {
            use super::*;
            suite!(@one $name, sqlite_memory, Kind::Memory);
            suite!(@one $name, sqlite_file, Kind::File);
            suite!(@one $name, postgres, Kind::Postgres);
        })*
    };
    (persistent: $($name:ident),* $(,)?) => {
        $(mod $name {
            use super::*;
            suite!(@one $name, sqlite_file, Kind::File);
            suite!(@one $name, postgres, Kind::Postgres);
        })*
    };
}

suite!(all:
    migrations_are_idempotent,
    clients_round_trip_and_conflict,
    minimal_clients_round_trip,
    client_upsert_secrets_and_delete,
    users_upsert_keeps_id_and_bumps_version,
    codes_are_redeemed_once,
    refresh_tokens_rotate_once,
    revoking_a_grant_spends_everything_under_it,
    assertions_are_remembered_once,
    dpop_proofs_are_remembered_once,
    pushed_requests_are_taken_once,
    sessions_save_get_expire_delete,
    user_sessions_are_listed_and_ended,
    a_password_hash_is_replaced_once_per_version,
    consent_is_saved_and_replaced,
    signing_keys_race_and_order,
    purge_removes_only_expired_rows,
    concurrent_code_redemption_has_one_winner,
    concurrent_refresh_rotation_has_one_winner,
    concurrent_signing_key_rotation_has_one_winner,
);

// Several stores on one database: a second `sqlite::memory:` store is a separate database.
suite!(persistent: concurrent_first_start_migrates_once);

// ---------------------------------------------------------------------------------------------
// Test data

fn uid() -> String {
    Uuid::now_v7().to_string()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

/// A fixed instant plus `secs` (nanosecond part included, to check precision).
fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(1_750_000_000_123_456_789).unwrap()
        + Duration::seconds(secs)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn full_client() -> Client {
    Client {
        client_id: unique("client"),
        metadata: ClientMetadata {
            client_name: "Full client ✓".to_owned(),
            token_endpoint_auth_method: ClientAuthMethod::PrivateKeyJwt,
            jwks: Some(r#"{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y"}]}"#.to_owned()),
            grant_types: GrantType::ALL.to_vec(),
            redirect_uris: strings(&["https://a.example/cb", "https://b.example/cb?x=1"]),
            post_logout_redirect_uris: strings(&["https://a.example/"]),
            scope: strings(&["openid", "profile", "kms:read"]),
            audiences: strings(&["cryptoutil-kms", "other"]),
            tenant_id: Some("demo-tenant".to_owned()),
            introspect_any: true,
            dpop_bound_access_tokens: true,
            may_act: strings(&["demo-rs", "other-actor"]),
            impersonation: true,
            mfa: None,
        },
        enabled: false,
        secrets: vec![
            ClientSecret {
                hash: "pbkdf2-sha256$600000$c2FsdA$a2V5".to_owned(),
                expires_at: Some(at(3600)),
            },
            ClientSecret {
                hash: "pbkdf2-sha256$600000$c2FsdDI$a2V5Mg".to_owned(),
                expires_at: None,
            },
        ],
        created_at: at(0),
    }
}

fn minimal_client() -> Client {
    Client {
        client_id: unique("min"),
        metadata: ClientMetadata {
            client_name: String::new(),
            token_endpoint_auth_method: ClientAuthMethod::None,
            jwks: None,
            grant_types: Vec::new(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            scope: Vec::new(),
            audiences: Vec::new(),
            tenant_id: None,
            introspect_any: false,
            dpop_bound_access_tokens: false,
            may_act: Vec::new(),
            impersonation: false,
            mfa: None,
        },
        enabled: true,
        secrets: Vec::new(),
        created_at: at(1),
    }
}

fn user(username: &str) -> User {
    User {
        id: uid(),
        username: username.to_owned(),
        password_hash: "pbkdf2-sha256$600000$c2FsdA$a2V5".to_owned(),
        enabled: true,
        roles: strings(&["admin"]),
        tenant_id: Some("demo-tenant".to_owned()),
        name: Some("Ada Lovelace".to_owned()),
        given_name: Some("Ada".to_owned()),
        family_name: Some("Lovelace".to_owned()),
        email: Some("ada@example.com".to_owned()),
        email_verified: true,
        version: 1,
        created_at: at(0),
    }
}

fn grant(client_id: &str) -> Grant {
    Grant {
        id: uid(),
        client_id: client_id.to_owned(),
        user_id: uid(),
        scopes: strings(&["openid", "offline_access"]),
        auth_time: at(-5),
        amr: strings(&["pwd", "otp", "mfa"]),
        acr: Some("urn:cryptoutil:acr:mfa".to_owned()),
        created_at: at(0),
        revoked_at: None,
    }
}

fn code(grant: &Grant, expires_at: OffsetDateTime) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: unique("code"),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://a.example/cb".to_owned(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        scopes: grant.scopes.clone(),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
        resources: vec!["https://kms.example/".to_owned()],
        expires_at,
        used_at: None,
    }
}

fn refresh(grant: &Grant, expires_at: OffsetDateTime) -> RefreshToken {
    RefreshToken {
        token_hash: unique("rt"),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        scopes: grant.scopes.clone(),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".to_owned()),
        resources: vec!["https://kms.example/".to_owned()],
        expires_at,
        used_at: None,
    }
}

fn pushed(expires_at: OffsetDateTime) -> PushedRequest {
    PushedRequest {
        id: unique("par"),
        client_id: unique("client"),
        parameters: r#"{"response_type":"code","state":"xyz"}"#.to_owned(),
        expires_at,
    }
}

fn session(expires_at: OffsetDateTime) -> Session {
    Session {
        id_hash: unique("sid"),
        user_id: None,
        auth_time: None,
        amr: Vec::new(),
        pending_request: Some(r#"{"client_id":"c"}"#.to_owned()),
        csrf_token: unique("csrf"),
        expires_at,
        public_id: Some(uuid::Uuid::now_v7().to_string()),
        created_at: Some(at(0)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".to_owned()),
    }
}

fn signing_key(kid: &str, created_at: OffsetDateTime) -> SealedSigningKey {
    SealedSigningKey {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        public_jwk: format!(r#"{{"kty":"EC","kid":"{kid}"}}"#),
        sealed_jwk: "eyJhbGciOiJkaXIifQ..iv.ct.tag".to_owned(),
        created_at,
        retire_at: None,
    }
}

/// Runs `n` copies of `task` at once and returns their results.
async fn race<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut handles = Vec::new();
    for i in 0..n {
        let barrier = barrier.clone();
        let work = task(i);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            work.await
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn migrations_are_idempotent(db: Db) {
    let first = db.store().await;
    first.ping().await.unwrap();
    let client = full_client();
    first.insert_client(&client).await.unwrap();
    // Connecting again (a restart, or a second instance) finds the schema migrated.
    let second = db.store().await;
    second.ping().await.unwrap();
    if db.kind != Kind::Memory {
        assert_eq!(
            second.client(&client.client_id).await.unwrap(),
            Some(client)
        );
    }
    first.close().await;
    second.close().await;
    let third = db.store().await;
    third.ping().await.unwrap();
    third.close().await;
}

async fn concurrent_first_start_migrates_once(db: Db) {
    let settings = Arc::new(db.settings.clone());
    let stores = race(6, |_| {
        let settings = settings.clone();
        async move { Store::connect(&settings).await }
    })
    .await;
    let stores: Vec<Store> = stores.into_iter().map(|s| s.unwrap()).collect();
    let client = minimal_client();
    stores[0].insert_client(&client).await.unwrap();
    for store in &stores {
        assert_eq!(
            store.client(&client.client_id).await.unwrap(),
            Some(client.clone())
        );
    }
    for store in &stores {
        store.close().await;
    }
}

async fn clients_round_trip_and_conflict(db: Db) {
    let store = db.store().await;
    let client = full_client();
    assert_eq!(store.client(&client.client_id).await.unwrap(), None);
    store.insert_client(&client).await.unwrap();
    assert_eq!(
        store.client(&client.client_id).await.unwrap(),
        Some(client.clone())
    );
    let mut again = minimal_client();
    again.client_id = client.client_id.clone();
    assert!(matches!(
        store.insert_client(&again).await,
        Err(StoreError::Conflict(_))
    ));
    // The refused insert changed nothing.
    assert_eq!(
        store.client(&client.client_id).await.unwrap(),
        Some(client.clone())
    );
}

async fn minimal_clients_round_trip(db: Db) {
    let store = db.store().await;
    let client = minimal_client();
    store.insert_client(&client).await.unwrap();
    let stored = store.client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(stored, client);
    assert!(stored.is_public());
    assert!(!stored.allows_grant(GrantType::AuthorizationCode));
}

async fn client_upsert_secrets_and_delete(db: Db) {
    let store = db.store().await;
    let mut a = full_client();
    a.client_id = format!("a-{}", Uuid::now_v7());
    let mut b = minimal_client();
    b.client_id = format!("b-{}", Uuid::now_v7());
    store.insert_client(&b).await.unwrap();
    // Upsert of a new id inserts; of an existing id replaces everything but the creation time.
    store.upsert_client(&a).await.unwrap();
    let mut changed = minimal_client();
    changed.client_id = a.client_id.clone();
    changed.metadata.client_name = "Renamed".to_owned();
    changed.created_at = at(999);
    store.upsert_client(&changed).await.unwrap();
    let stored = store.client(&a.client_id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Client {
            created_at: a.created_at,
            ..changed.clone()
        }
    );
    a = stored;

    let listed = store.clients().await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    // Secrets are replaced as a whole.
    let rotated = vec![
        ClientSecret {
            hash: "pbkdf2-sha256$600000$bmV3$bmV3a2V5".to_owned(),
            expires_at: None,
        },
        ClientSecret {
            hash: "pbkdf2-sha256$600000$b2xk$b2xka2V5".to_owned(),
            expires_at: Some(at(60)),
        },
    ];
    assert!(
        store
            .set_client_secrets(&b.client_id, &rotated)
            .await
            .unwrap()
    );
    let stored = store.client(&b.client_id).await.unwrap().unwrap();
    assert_eq!(stored.secrets, rotated);
    assert_eq!(
        stored,
        Client {
            secrets: rotated.clone(),
            ..b.clone()
        }
    );
    assert!(store.set_client_secrets(&b.client_id, &[]).await.unwrap());
    assert!(
        store
            .client(&b.client_id)
            .await
            .unwrap()
            .unwrap()
            .secrets
            .is_empty()
    );
    assert!(
        !store
            .set_client_secrets(&unique("nobody"), &rotated)
            .await
            .unwrap()
    );

    assert!(store.delete_client(&a.client_id).await.unwrap());
    assert!(!store.delete_client(&a.client_id).await.unwrap());
    assert_eq!(store.client(&a.client_id).await.unwrap(), None);
    assert_eq!(store.clients().await.unwrap().len(), 1);
}

async fn users_upsert_keeps_id_and_bumps_version(db: Db) {
    let store = db.store().await;
    let username = unique("user");
    let original = user(&username);
    let stored = store.upsert_user(&original).await.unwrap();
    assert_eq!(stored, original);
    assert_eq!(
        store.user(&original.id).await.unwrap(),
        Some(original.clone())
    );
    assert_eq!(
        store.user_by_username(&username).await.unwrap(),
        Some(original.clone())
    );

    // Replacing by username keeps the subject and the creation time, bumps the version.
    let replacement = User {
        id: uid(),
        password_hash: "pbkdf2-sha256$600000$bmV3$bmV3a2V5".to_owned(),
        enabled: false,
        roles: Vec::new(),
        tenant_id: None,
        name: None,
        given_name: None,
        family_name: None,
        email: None,
        email_verified: false,
        version: 1,
        created_at: at(500),
        ..original.clone()
    };
    let stored = store.upsert_user(&replacement).await.unwrap();
    let expected = User {
        id: original.id.clone(),
        version: 2,
        created_at: original.created_at,
        ..replacement.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(
        store.user(&original.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.user(&replacement.id).await.unwrap(), None);
    let stored = store.upsert_user(&replacement).await.unwrap();
    assert_eq!(stored.version, 3);

    let other = store.upsert_user(&user(&unique("other"))).await.unwrap();
    assert_eq!(other.version, 1);

    assert!(store.delete_user(&username).await.unwrap());
    assert!(!store.delete_user(&username).await.unwrap());
    assert_eq!(store.user_by_username(&username).await.unwrap(), None);
    assert_eq!(store.user(&original.id).await.unwrap(), None);
    assert!(store.user(&other.id).await.unwrap().is_some());
}

async fn codes_are_redeemed_once(db: Db) {
    let store = db.store().await;
    let g = grant(&unique("client"));
    store.insert_grant(&g).await.unwrap();
    assert_eq!(store.grant(&g.id).await.unwrap(), Some(g.clone()));

    let live = code(&g, at(600));
    store.insert_code(&live).await.unwrap();
    let now = at(10);
    let spent = AuthorizationCode {
        used_at: Some(now),
        ..live.clone()
    };
    assert_eq!(
        store.redeem_code(&live.code_hash, now).await.unwrap(),
        CodeRedemption::Fresh(spent.clone())
    );
    assert_eq!(
        store.redeem_code(&live.code_hash, at(11)).await.unwrap(),
        CodeRedemption::Reused(spent)
    );
    // A duplicate code hash is refused.
    assert!(matches!(
        store.insert_code(&live).await,
        Err(StoreError::Conflict(_))
    ));

    // Without nonce; valid up to and including its expiry instant.
    let edge = AuthorizationCode {
        nonce: None,
        scopes: Vec::new(),
        ..code(&g, at(20))
    };
    store.insert_code(&edge).await.unwrap();
    assert_eq!(
        store.redeem_code(&edge.code_hash, at(20)).await.unwrap(),
        CodeRedemption::Fresh(AuthorizationCode {
            used_at: Some(at(20)),
            ..edge
        })
    );

    let expired = code(&g, at(5));
    store.insert_code(&expired).await.unwrap();
    assert_eq!(
        store.redeem_code(&expired.code_hash, now).await.unwrap(),
        CodeRedemption::Invalid
    );
    // Still invalid (not "reused") afterwards: the failed attempt did not spend it.
    assert_eq!(
        store.redeem_code(&expired.code_hash, now).await.unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store.redeem_code(&unique("unknown"), now).await.unwrap(),
        CodeRedemption::Invalid
    );
}

async fn concurrent_code_redemption_has_one_winner(db: Db) {
    let store = db.store().await;
    let g = grant(&unique("client"));
    store.insert_grant(&g).await.unwrap();
    for round in 0..3 {
        let c = code(&g, at(600));
        store.insert_code(&c).await.unwrap();
        let results = race(8, |i| {
            let store = store.clone();
            let hash = c.code_hash.clone();
            async move {
                store
                    .redeem_code(&hash, at(10 + i64::try_from(i).unwrap()))
                    .await
            }
        })
        .await;
        let results: Vec<CodeRedemption> = results.into_iter().map(|r| r.unwrap()).collect();
        let fresh = results
            .iter()
            .filter(|r| matches!(r, CodeRedemption::Fresh(_)))
            .count();
        let reused = results
            .iter()
            .filter(|r| matches!(r, CodeRedemption::Reused(_)))
            .count();
        assert_eq!((fresh, reused), (1, 7), "round {round}: {results:?}");
    }
}

async fn refresh_tokens_rotate_once(db: Db) {
    let store = db.store().await;
    let g = grant(&unique("client"));
    store.insert_grant(&g).await.unwrap();
    let first = refresh(&g, at(3600));
    store.insert_refresh_token(&first).await.unwrap();
    assert_eq!(
        store.refresh_token(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );

    // The successor joins the presented token's family and client whatever the caller put there.
    let successor = RefreshToken {
        grant_id: uid(),
        client_id: unique("other-client"),
        scopes: strings(&["openid"]),
        ..refresh(&g, at(7200))
    };
    let now = at(100);
    let spent = RefreshToken {
        used_at: Some(now),
        ..first.clone()
    };
    assert_eq!(
        store
            .rotate_refresh_token(&first.token_hash, &successor, now)
            .await
            .unwrap(),
        RefreshRotation::Rotated(spent.clone())
    );
    assert_eq!(
        store.refresh_token(&successor.token_hash).await.unwrap(),
        Some(RefreshToken {
            grant_id: g.id.clone(),
            client_id: g.client_id.clone(),
            ..successor.clone()
        })
    );
    assert_eq!(
        store.refresh_token(&first.token_hash).await.unwrap(),
        Some(spent.clone())
    );

    // Presenting the spent token again: reuse, and no successor is stored.
    let another = refresh(&g, at(7200));
    assert_eq!(
        store
            .rotate_refresh_token(&first.token_hash, &another, at(101))
            .await
            .unwrap(),
        RefreshRotation::Reused(spent)
    );
    assert_eq!(
        store.refresh_token(&another.token_hash).await.unwrap(),
        None
    );

    // The successor rotates in turn.
    assert!(matches!(
        store
            .rotate_refresh_token(&successor.token_hash, &another, at(102))
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));

    let expired = refresh(&g, at(50));
    store.insert_refresh_token(&expired).await.unwrap();
    let next = refresh(&g, at(7200));
    assert_eq!(
        store
            .rotate_refresh_token(&expired.token_hash, &next, now)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh_token(&unique("unknown"), &next, now)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    assert_eq!(store.refresh_token(&next.token_hash).await.unwrap(), None);
    assert_eq!(store.refresh_token(&unique("unknown")).await.unwrap(), None);
}

async fn concurrent_refresh_rotation_has_one_winner(db: Db) {
    let store = db.store().await;
    let g = grant(&unique("client"));
    store.insert_grant(&g).await.unwrap();
    for round in 0..3 {
        let token = refresh(&g, at(3600));
        store.insert_refresh_token(&token).await.unwrap();
        let successors: Vec<RefreshToken> = (0..8).map(|_| refresh(&g, at(7200))).collect();
        let successors = Arc::new(successors);
        let results = race(8, |i| {
            let store = store.clone();
            let hash = token.token_hash.clone();
            let successors = successors.clone();
            async move {
                store
                    .rotate_refresh_token(&hash, &successors[i], at(100))
                    .await
            }
        })
        .await;
        let results: Vec<RefreshRotation> = results.into_iter().map(|r| r.unwrap()).collect();
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, RefreshRotation::Rotated(_)))
            .map(|(i, _)| i)
            .collect();
        let reused = results
            .iter()
            .filter(|r| matches!(r, RefreshRotation::Reused(_)))
            .count();
        assert_eq!(
            (winners.len(), reused),
            (1, 7),
            "round {round}: {results:?}"
        );
        for (i, successor) in successors.iter().enumerate() {
            let stored = store.refresh_token(&successor.token_hash).await.unwrap();
            assert_eq!(stored.is_some(), winners.contains(&i), "round {round}");
        }
    }
}

async fn revoking_a_grant_spends_everything_under_it(db: Db) {
    let store = db.store().await;
    let client_id = unique("client");
    let g = grant(&client_id);
    let other = grant(&client_id);
    store.insert_grant(&g).await.unwrap();
    store.insert_grant(&other).await.unwrap();

    let unused_code = code(&g, at(600));
    let used_code = code(&g, at(600));
    let other_code = code(&other, at(600));
    for c in [&unused_code, &used_code, &other_code] {
        store.insert_code(c).await.unwrap();
    }
    assert!(matches!(
        store
            .redeem_code(&used_code.code_hash, at(1))
            .await
            .unwrap(),
        CodeRedemption::Fresh(_)
    ));
    let rt1 = refresh(&g, at(3600));
    let rt2 = refresh(&g, at(3600));
    let other_rt = refresh(&other, at(3600));
    for t in [&rt1, &rt2, &other_rt] {
        store.insert_refresh_token(t).await.unwrap();
    }
    let (jti1, jti2, other_jti) = (uid(), uid(), uid());
    store
        .record_access_token(&jti1, &g.id, at(300))
        .await
        .unwrap();
    store
        .record_access_token(&jti2, &g.id, at(900))
        .await
        .unwrap();
    store
        .record_access_token(&other_jti, &other.id, at(300))
        .await
        .unwrap();
    assert!(matches!(
        store.record_access_token(&jti1, &g.id, at(300)).await,
        Err(StoreError::Conflict(_))
    ));

    let now = at(60);
    let mut revoked = store.revoke_grant(&g.id, now).await.unwrap();
    revoked.sort();
    let mut expected = vec![(jti1.clone(), at(300)), (jti2.clone(), at(900))];
    expected.sort();
    assert_eq!(revoked, expected);

    assert_eq!(
        store.grant(&g.id).await.unwrap().unwrap().revoked_at,
        Some(now)
    );
    assert_eq!(
        store.grant(&other.id).await.unwrap().unwrap().revoked_at,
        None
    );
    for t in [&rt1, &rt2] {
        assert_eq!(
            store
                .refresh_token(&t.token_hash)
                .await
                .unwrap()
                .unwrap()
                .used_at,
            Some(now)
        );
    }
    assert_eq!(
        store
            .refresh_token(&other_rt.token_hash)
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
    let successor = refresh(&g, at(7200));
    assert!(matches!(
        store
            .rotate_refresh_token(&rt1.token_hash, &successor, at(61))
            .await
            .unwrap(),
        RefreshRotation::Reused(_)
    ));
    match store
        .redeem_code(&unused_code.code_hash, at(61))
        .await
        .unwrap()
    {
        CodeRedemption::Reused(c) => assert_eq!(c.used_at, Some(now)),
        other => panic!("expected Reused, got {other:?}"),
    }
    match store
        .redeem_code(&used_code.code_hash, at(61))
        .await
        .unwrap()
    {
        // The earlier redemption time is kept.
        CodeRedemption::Reused(c) => assert_eq!(c.used_at, Some(at(1))),
        other => panic!("expected Reused, got {other:?}"),
    }
    assert!(matches!(
        store
            .redeem_code(&other_code.code_hash, at(61))
            .await
            .unwrap(),
        CodeRedemption::Fresh(_)
    ));

    let mut listed = store.revocations_since(now).await.unwrap();
    listed.sort();
    let mut expected_listed = vec![(jti1.clone(), at(300), now), (jti2.clone(), at(900), now)];
    expected_listed.sort();
    assert_eq!(listed, expected_listed);
    assert!(store.revocations_since(at(61)).await.unwrap().is_empty());

    // Idempotent: the first revocation instant stays.
    let mut again = store.revoke_grant(&g.id, at(120)).await.unwrap();
    again.sort();
    assert_eq!(again, expected);
    assert_eq!(
        store.grant(&g.id).await.unwrap().unwrap().revoked_at,
        Some(now)
    );
    assert!(store.revocations_since(at(61)).await.unwrap().is_empty());

    // A single access token.
    let single = uid();
    store
        .revoke_access_token(&single, at(400), at(130))
        .await
        .unwrap();
    store
        .revoke_access_token(&single, at(400), at(140))
        .await
        .unwrap();
    assert_eq!(
        store.revocations_since(at(125)).await.unwrap(),
        vec![(single, at(400), at(130))]
    );
    // An unknown grant: nothing to revoke, no error.
    assert!(store.revoke_grant(&uid(), now).await.unwrap().is_empty());
}

async fn assertions_are_remembered_once(db: Db) {
    let store = db.store().await;
    let client = unique("client");
    let jti = uid();
    assert!(
        store
            .remember_assertion(&client, &jti, at(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_assertion(&client, &jti, at(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_assertion(&client, &jti, at(90))
            .await
            .unwrap()
    );
    // Assertion ids are per client.
    assert!(
        store
            .remember_assertion(&unique("client"), &jti, at(60))
            .await
            .unwrap()
    );
}

async fn dpop_proofs_are_remembered_once(db: Db) {
    let store = db.store().await;
    let key = unique("proof");
    assert!(store.remember_dpop_proof(&key, at(65)).await.unwrap());
    assert!(!store.remember_dpop_proof(&key, at(65)).await.unwrap());
    assert!(
        store
            .remember_dpop_proof(&unique("proof"), at(65))
            .await
            .unwrap()
    );
    // Purged once expired: the key is free again (its proof is out of its window by then).
    store.purge_expired(at(66)).await.unwrap();
    assert!(store.remember_dpop_proof(&key, at(130)).await.unwrap());
}

async fn pushed_requests_are_taken_once(db: Db) {
    let store = db.store().await;
    let live = pushed(at(60));
    store.insert_pushed_request(&live).await.unwrap();
    assert!(matches!(
        store.insert_pushed_request(&live).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.take_pushed_request(&live.id, at(60)).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(
        store.take_pushed_request(&live.id, at(0)).await.unwrap(),
        None
    );

    let expired = pushed(at(10));
    store.insert_pushed_request(&expired).await.unwrap();
    assert_eq!(
        store
            .take_pushed_request(&expired.id, at(11))
            .await
            .unwrap(),
        None
    );
    // Taking consumed it even though it had expired.
    assert_eq!(
        store.take_pushed_request(&expired.id, at(0)).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .take_pushed_request(&unique("par"), at(0))
            .await
            .unwrap(),
        None
    );
}

async fn sessions_save_get_expire_delete(db: Db) {
    let store = db.store().await;
    let anonymous = session(at(3600));
    store.save_session(&anonymous).await.unwrap();
    assert_eq!(
        store.session(&anonymous.id_hash, at(0)).await.unwrap(),
        Some(anonymous.clone())
    );

    // Saving again replaces every field.
    let signed_in = Session {
        user_id: Some(uid()),
        auth_time: Some(at(5)),
        pending_request: None,
        csrf_token: unique("csrf"),
        expires_at: at(7200),
        ..anonymous.clone()
    };
    store.save_session(&signed_in).await.unwrap();
    assert_eq!(
        store.session(&anonymous.id_hash, at(10)).await.unwrap(),
        Some(signed_in.clone())
    );
    assert_eq!(
        store.session(&anonymous.id_hash, at(7200)).await.unwrap(),
        Some(signed_in.clone())
    );
    assert_eq!(
        store.session(&anonymous.id_hash, at(7201)).await.unwrap(),
        None
    );

    let other = session(at(3600));
    store.save_session(&other).await.unwrap();
    store.delete_session(&anonymous.id_hash).await.unwrap();
    assert_eq!(
        store.session(&anonymous.id_hash, at(0)).await.unwrap(),
        None
    );
    // Deleting twice is fine; other sessions stay.
    store.delete_session(&anonymous.id_hash).await.unwrap();
    assert_eq!(
        store.session(&other.id_hash, at(0)).await.unwrap(),
        Some(other)
    );
}

async fn user_sessions_are_listed_and_ended(db: Db) {
    let store = db.store().await;
    let (user, stranger) = (uid(), uid());
    let signed_in = |user: &str, auth_time: i64| Session {
        user_id: Some(user.to_owned()),
        auth_time: Some(at(auth_time)),
        amr: strings(&["pwd", "otp"]),
        pending_request: None,
        ..session(at(3600))
    };
    let older = signed_in(&user, 10);
    let newer = signed_in(&user, 20);
    let expired = Session {
        expires_at: at(50),
        ..signed_in(&user, 30)
    };
    let waiting = Session {
        auth_time: None,
        ..signed_in(&user, 0)
    };
    let theirs = signed_in(&stranger, 40);
    let legacy = Session {
        public_id: None,
        created_at: None,
        user_agent: None,
        ..signed_in(&user, 5)
    };
    for s in [&older, &newer, &expired, &waiting, &theirs, &legacy] {
        store.save_session(s).await.unwrap();
    }

    // Live and signed in only, the latest sign-in first; every column read back.
    let listed = store.user_sessions(&user, at(100)).await.unwrap();
    assert_eq!(listed, vec![newer.clone(), older.clone(), legacy.clone()]);

    // A public id and start time, once stored, stay; a legacy session gets them on its next
    // save.
    store
        .save_session(&Session {
            public_id: Some(unique("pid")),
            created_at: Some(at(99)),
            user_agent: Some("changed".to_owned()),
            ..older.clone()
        })
        .await
        .unwrap();
    let reread = store.session(&older.id_hash, at(0)).await.unwrap().unwrap();
    assert_eq!(reread.public_id, older.public_id);
    assert_eq!(reread.created_at, older.created_at);
    assert_eq!(reread.user_agent.as_deref(), Some("changed"));
    let upgraded = Session {
        public_id: Some(unique("pid")),
        created_at: Some(at(7)),
        ..legacy.clone()
    };
    store.save_session(&upgraded).await.unwrap();
    assert_eq!(
        store.session(&legacy.id_hash, at(0)).await.unwrap(),
        Some(upgraded)
    );

    // One session by public id, only the owner's.
    let newer_id = newer.public_id.clone().unwrap();
    assert!(
        !store
            .delete_user_session(&stranger, &newer_id)
            .await
            .unwrap()
    );
    assert!(store.delete_user_session(&user, &newer_id).await.unwrap());
    assert!(!store.delete_user_session(&user, &newer_id).await.unwrap());
    assert_eq!(store.session(&newer.id_hash, at(0)).await.unwrap(), None);

    // All but one (the part-way and expired ones too); the stranger's stay.
    let ended = store
        .delete_user_sessions(&user, Some(&older.id_hash))
        .await
        .unwrap();
    assert_eq!(ended, 3);
    assert_eq!(
        store.user_sessions(&user, at(100)).await.unwrap(),
        vec![store.session(&older.id_hash, at(0)).await.unwrap().unwrap()]
    );
    assert_eq!(store.delete_user_sessions(&user, None).await.unwrap(), 1);
    assert!(
        store
            .user_sessions(&user, at(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.user_sessions(&stranger, at(100)).await.unwrap(),
        vec![theirs]
    );
}

async fn a_password_hash_is_replaced_once_per_version(db: Db) {
    let store = db.store().await;
    let stored = store.upsert_user(&user(&unique("user"))).await.unwrap();
    assert!(
        store
            .set_password_hash(&stored.id, stored.version, "pbkdf2-sha256$600000$bmV3$bmV3")
            .await
            .unwrap()
    );
    let changed = store.user(&stored.id).await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "pbkdf2-sha256$600000$bmV3$bmV3");
    assert_eq!(changed.version, stored.version + 1);
    // A change made from the old version loses; an unknown user changes nothing.
    assert!(
        !store
            .set_password_hash(&stored.id, stored.version, "pbkdf2-sha256$600000$b2xk$b2xk")
            .await
            .unwrap()
    );
    assert!(!store.set_password_hash(&uid(), 1, "x").await.unwrap());
    assert_eq!(store.user(&stored.id).await.unwrap().unwrap(), changed);
}

async fn consent_is_saved_and_replaced(db: Db) {
    let store = db.store().await;
    let (user_id, client, other_client) = (uid(), unique("client"), unique("client"));
    assert_eq!(store.consent(&user_id, &client).await.unwrap(), None);
    store
        .save_consent(&user_id, &client, &strings(&["openid", "profile"]))
        .await
        .unwrap();
    store
        .save_consent(&user_id, &other_client, &strings(&["email"]))
        .await
        .unwrap();
    assert_eq!(
        store.consent(&user_id, &client).await.unwrap(),
        Some(strings(&["openid", "profile"]))
    );
    store
        .save_consent(&user_id, &client, &strings(&["openid"]))
        .await
        .unwrap();
    assert_eq!(
        store.consent(&user_id, &client).await.unwrap(),
        Some(strings(&["openid"]))
    );
    store.save_consent(&user_id, &client, &[]).await.unwrap();
    assert_eq!(
        store.consent(&user_id, &client).await.unwrap(),
        Some(Vec::new())
    );
    assert_eq!(
        store.consent(&user_id, &other_client).await.unwrap(),
        Some(strings(&["email"]))
    );
    assert_eq!(store.consent(&uid(), &client).await.unwrap(), None);
}

async fn signing_keys_race_and_order(db: Db) {
    let store = db.store().await;
    assert!(store.signing_keys().await.unwrap().is_empty());
    let id = Uuid::now_v7().simple().to_string();
    let mut first = signing_key(&format!("k1-{id}"), at(100));
    first.retire_at = Some(at(10_000));
    assert!(store.insert_signing_key(&first, at(100)).await.unwrap());

    // Two instances both find the newest key (created at 100) older than the rotation threshold
    // (150): the first insert wins, the second is refused.
    let second = signing_key(&format!("k2-{id}"), at(200));
    let loser = signing_key(&format!("k3-{id}"), at(201));
    assert!(store.insert_signing_key(&second, at(150)).await.unwrap());
    assert!(!store.insert_signing_key(&loser, at(150)).await.unwrap());
    // A threshold equal to the newest key's creation is refused too ("at or after").
    assert!(!store.insert_signing_key(&loser, at(200)).await.unwrap());

    // Later rotations go through; equal creation times order by kid.
    let late_b = signing_key(&format!("b-{id}"), at(400));
    let late_a = signing_key(&format!("a-{id}"), at(400));
    assert!(store.insert_signing_key(&late_b, at(300)).await.unwrap());
    assert!(store.insert_signing_key(&late_a, at(401)).await.unwrap());
    // The same kid twice is a conflict.
    assert!(matches!(
        store.insert_signing_key(&late_a, at(1000)).await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![first, second, late_a, late_b]
    );
}

async fn concurrent_signing_key_rotation_has_one_winner(db: Db) {
    let store = db.store().await;
    let id = Uuid::now_v7().simple().to_string();
    assert!(
        store
            .insert_signing_key(&signing_key(&format!("k0-{id}"), at(0)), at(0))
            .await
            .unwrap()
    );
    for round in 1..=3_i64 {
        let results = race(8, |i| {
            let store = store.clone();
            let key = signing_key(&format!("k{round}-{i}-{id}"), at(round * 100));
            async move { store.insert_signing_key(&key, at(round * 100 - 50)).await }
        })
        .await;
        let won = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(won, 1, "round {round}");
    }
    assert_eq!(store.signing_keys().await.unwrap().len(), 4);
}

async fn purge_removes_only_expired_rows(db: Db) {
    let store = db.store().await;
    let now = at(1000);
    let client = full_client();
    store.insert_client(&client).await.unwrap();
    let person = store.upsert_user(&user(&unique("user"))).await.unwrap();
    let g = grant(&client.client_id);
    store.insert_grant(&g).await.unwrap();
    store
        .save_consent(&person.id, &client.client_id, &strings(&["openid"]))
        .await
        .unwrap();
    let key = signing_key(&unique("kid"), at(0));
    assert!(store.insert_signing_key(&key, at(0)).await.unwrap());

    // One expired and one live row per table (plus rows expiring exactly now, which stay).
    let old_code = code(&g, at(999));
    let live_code = code(&g, now);
    let old_rt = refresh(&g, at(10));
    let live_rt = refresh(&g, at(5000));
    let old_par = pushed(at(999));
    let live_par = pushed(at(1060));
    let old_session = session(at(500));
    let live_session = session(at(2000));
    let client_id = client.client_id.clone();
    let (old_jti, live_jti) = (uid(), uid());
    let (old_rev, live_rev) = (uid(), uid());
    let (old_at, live_at) = (uid(), uid());
    for c in [&old_code, &live_code] {
        store.insert_code(c).await.unwrap();
    }
    for t in [&old_rt, &live_rt] {
        store.insert_refresh_token(t).await.unwrap();
    }
    for p in [&old_par, &live_par] {
        store.insert_pushed_request(p).await.unwrap();
    }
    for s in [&old_session, &live_session] {
        store.save_session(s).await.unwrap();
    }
    assert!(
        store
            .remember_assertion(&client_id, &old_jti, at(900))
            .await
            .unwrap()
    );
    assert!(
        store
            .remember_assertion(&client_id, &live_jti, at(1100))
            .await
            .unwrap()
    );
    store
        .revoke_access_token(&old_rev, at(900), at(0))
        .await
        .unwrap();
    store
        .revoke_access_token(&live_rev, at(1100), at(0))
        .await
        .unwrap();
    store
        .record_access_token(&old_at, &g.id, at(900))
        .await
        .unwrap();
    store
        .record_access_token(&live_at, &g.id, at(1100))
        .await
        .unwrap();

    assert_eq!(store.purge_expired(now).await.unwrap(), 7);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);

    // What was live is still there.
    assert!(matches!(
        store.redeem_code(&live_code.code_hash, now).await.unwrap(),
        CodeRedemption::Fresh(_)
    ));
    assert_eq!(
        store.redeem_code(&old_code.code_hash, at(0)).await.unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(store.refresh_token(&old_rt.token_hash).await.unwrap(), None);
    assert_eq!(
        store.refresh_token(&live_rt.token_hash).await.unwrap(),
        Some(live_rt.clone())
    );
    assert_eq!(
        store.take_pushed_request(&old_par.id, at(0)).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_pushed_request(&live_par.id, now).await.unwrap(),
        Some(live_par.clone())
    );
    assert_eq!(
        store.session(&old_session.id_hash, at(0)).await.unwrap(),
        None
    );
    assert_eq!(
        store.session(&live_session.id_hash, now).await.unwrap(),
        Some(live_session.clone())
    );
    // The purged assertion id is forgotten (it could no longer validate anyway); the live one is not.
    assert!(
        store
            .remember_assertion(&client_id, &old_jti, at(900))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_assertion(&client_id, &live_jti, at(1100))
            .await
            .unwrap()
    );
    assert_eq!(
        store.revocations_since(at(0)).await.unwrap(),
        vec![(live_rev.clone(), at(1100), at(0))]
    );
    // Only the live recorded access token is revoked with the grant.
    assert_eq!(
        store.revoke_grant(&g.id, now).await.unwrap(),
        vec![(live_at.clone(), at(1100))]
    );

    // Long-lived records are never purged.
    assert!(store.purge_expired(at(1_000_000_000)).await.unwrap() > 0);
    assert_eq!(
        store.client(&client.client_id).await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(store.user(&person.id).await.unwrap(), Some(person.clone()));
    assert!(store.grant(&g.id).await.unwrap().is_some());
    assert_eq!(
        store.consent(&person.id, &client.client_id).await.unwrap(),
        Some(strings(&["openid"]))
    );
    assert_eq!(store.signing_keys().await.unwrap(), vec![key]);
}
