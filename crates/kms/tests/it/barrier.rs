//! Barrier behaviour over an in-memory `BarrierStore`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cryptoutil_jose::Jwk;
use cryptoutil_kms::barrier::{
    Barrier, BarrierError, BarrierSettings, UnsealKeys, UnsealSettings, encode_share,
    generate_shares,
};
use cryptoutil_kms::model::{TenantId, WrappedKey};
use cryptoutil_kms::repository::{BarrierStore, StoreError};
use uuid::Uuid;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct State {
    roots: Vec<WrappedKey>,
    intermediates: HashMap<TenantId, Vec<WrappedKey>>,
    content: HashMap<TenantId, Vec<WrappedKey>>,
    tenants: BTreeSet<TenantId>,
}

/// Holds the first `n` callers until all `n` have arrived, so they all read the same state.
struct Gate {
    barrier: tokio::sync::Barrier,
    n: usize,
    seen: AtomicUsize,
}

impl Gate {
    fn new(n: usize) -> Self {
        Self {
            barrier: tokio::sync::Barrier::new(n),
            n,
            seen: AtomicUsize::new(0),
        }
    }
    async fn pass(gate: &Option<Gate>) {
        if let Some(g) = gate
            && g.seen.fetch_add(1, Ordering::SeqCst) < g.n
        {
            g.barrier.wait().await;
        }
    }
}

/// In-memory store. `with_init_lock` uses a tokio mutex like a single-process SQLite store
/// would; optional gates make concurrent initialisation race deterministically.
#[derive(Default)]
struct MemStore {
    init_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    calls: AtomicUsize,
    root_gate: Option<Gate>,
    intermediate_gate: Option<Gate>,
}

impl MemStore {
    fn snapshot(&self) -> State {
        self.state.lock().unwrap().clone()
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    async fn touch(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    /// What the key service does in its elastic-key transaction.
    fn store_content(&self, tenant: TenantId, key: &WrappedKey) {
        let mut s = self.state.lock().unwrap();
        s.tenants.insert(tenant);
        s.content.entry(tenant).or_default().push(key.clone());
    }
    /// What the purge does.
    fn delete_content(&self, tenant: TenantId, owner: Uuid) {
        let mut s = self.state.lock().unwrap();
        if let Some(v) = s.content.get_mut(&tenant) {
            v.retain(|k| k.owner != Some(owner));
        }
    }
}

impl BarrierStore for MemStore {
    async fn with_init_lock<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let _guard = self.init_lock.lock().await;
        f().await
    }
    async fn root_keys(&self) -> Result<Vec<WrappedKey>, StoreError> {
        self.touch().await;
        Gate::pass(&self.root_gate).await;
        Ok(self.snapshot().roots)
    }
    async fn insert_root_key(&self, key: &WrappedKey) -> Result<(), StoreError> {
        self.touch().await;
        self.state.lock().unwrap().roots.push(key.clone());
        Ok(())
    }
    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.touch().await;
        Ok(self.snapshot().tenants.into_iter().collect())
    }
    async fn intermediate_keys(&self, tenant: TenantId) -> Result<Vec<WrappedKey>, StoreError> {
        self.touch().await;
        Gate::pass(&self.intermediate_gate).await;
        Ok(self
            .snapshot()
            .intermediates
            .get(&tenant)
            .cloned()
            .unwrap_or_default())
    }
    async fn insert_intermediate_key(
        &self,
        tenant: TenantId,
        key: &WrappedKey,
    ) -> Result<(), StoreError> {
        self.touch().await;
        let mut s = self.state.lock().unwrap();
        s.tenants.insert(tenant);
        s.intermediates.entry(tenant).or_default().push(key.clone());
        Ok(())
    }
    async fn content_key(
        &self,
        tenant: TenantId,
        kid: Uuid,
    ) -> Result<Option<WrappedKey>, StoreError> {
        self.touch().await;
        Ok(self
            .snapshot()
            .content
            .get(&tenant)
            .and_then(|v| v.iter().find(|k| k.kid == kid).cloned()))
    }
    async fn content_key_for_owner(
        &self,
        tenant: TenantId,
        owner: Uuid,
    ) -> Result<Option<WrappedKey>, StoreError> {
        self.touch().await;
        Ok(self.snapshot().content.get(&tenant).and_then(|v| {
            v.iter()
                .filter(|k| k.owner == Some(owner))
                .max_by_key(|k| k.kid)
                .cloned()
        }))
    }
}

fn tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

fn shares(n: usize) -> Vec<Vec<u8>> {
    generate_shares(n, 32)
        .unwrap()
        .into_iter()
        .map(|s| s.to_vec())
        .collect()
}

fn all(shares: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
    shares.iter().cloned().map(Some).collect()
}

/// Only the shares at `indexes`.
fn some(shares: &[Vec<u8>], indexes: &[usize]) -> Vec<Option<Vec<u8>>> {
    shares
        .iter()
        .enumerate()
        .map(|(i, s)| indexes.contains(&i).then(|| s.clone()))
        .collect()
}

async fn open(store: &Arc<MemStore>, keys: UnsealKeys) -> Result<Barrier<MemStore>, BarrierError> {
    Barrier::open(Arc::clone(store), keys, 100).await
}

/// Makes a content key for a fresh elastic key, stores it and seals `data` under it.
async fn sealed(
    b: &Barrier<MemStore>,
    store: &MemStore,
    t: TenantId,
    data: &[u8],
) -> (Uuid, String) {
    let owner = Uuid::now_v7();
    let ck = b.new_content_key(t, owner).await.unwrap();
    store.store_content(t, ck.record());
    (owner, b.seal_with(&ck, data).unwrap())
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn any_two_of_three_unseal_and_one_is_refused() {
    let s = shares(3);
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    assert_eq!(b.status().unseal_keys, 3);
    let t = tenant();
    let data = format!("material {}", Uuid::now_v7());
    let (_, jwe) = sealed(&b, &store, t, data.as_bytes()).await;
    drop(b);

    for pair in [[0, 1], [0, 2], [1, 2]] {
        let keys = UnsealKeys::from_shares(2, &some(&s, &pair)).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys.is_complete());
        let b = open(&store, keys).await.unwrap();
        assert_eq!(&b.unseal(t, &jwe).await.unwrap()[..], data.as_bytes());
    }
    for single in [0, 1, 2] {
        let err = UnsealKeys::from_shares(2, &some(&s, &[single])).unwrap_err();
        assert!(matches!(err, BarrierError::InvalidUnsealKeys(_)), "{err}");
    }
    assert_eq!(store.snapshot().roots.len(), 1);
}

#[tokio::test]
async fn share_validation() {
    let s = shares(3);
    let mut short = all(&s);
    short[1] = Some(vec![7; 31]);
    let mut long = all(&s);
    long[1] = Some(vec![7; 65]);
    let mut dup = all(&s);
    dup[2] = dup[0].clone();
    for (threshold, input) in [(2, short), (2, long), (2, dup), (0, all(&s)), (4, all(&s))] {
        assert!(matches!(
            UnsealKeys::from_shares(threshold, &input),
            Err(BarrierError::InvalidUnsealKeys(_))
        ));
    }
    let s64 = generate_shares(2, 64).unwrap();
    assert_eq!(s64[0].len(), 64);
    assert!(generate_shares(2, 31).is_err());
    assert!(generate_shares(2, 65).is_err());
    // 3-of-5 gives 10 unseal keys; 4-of-8 (70 combinations) is too many recipients.
    assert_eq!(
        UnsealKeys::from_shares(3, &all(&shares(5))).unwrap().len(),
        10
    );
    assert!(UnsealKeys::from_shares(4, &all(&shares(8))).is_err());
}

/// The derived keys (from the independently computed vector) are recipients of the root key.
#[tokio::test]
async fn vector_keys_open_the_root_key() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../data/barrier/hkdf_2_of_3.json")).unwrap();
    let s: Vec<Vec<u8>> = v["shares_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| hex(x.as_str().unwrap()))
        .collect();
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    let t = tenant();
    let (_, jwe) = sealed(&b, &store, t, b"vector").await;
    for c in v["combinations"].as_array().unwrap() {
        let mut jwk = Jwk::from_oct_bytes(&hex(c["key_hex"].as_str().unwrap())).unwrap();
        jwk.set_kid(Some(c["kid"].as_str().unwrap().to_owned()));
        let b = open(&store, UnsealKeys::from_jwks(vec![jwk]).unwrap())
            .await
            .unwrap();
        assert_eq!(&b.unseal(t, &jwe).await.unwrap()[..], b"vector");
    }
}

#[tokio::test]
async fn wrong_or_reordered_shares_are_refused_and_nothing_is_written() {
    let s = shares(3);
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    sealed(&b, &store, tenant(), b"x").await;
    let before = store.snapshot();

    let reordered = vec![s[1].clone(), s[0].clone(), s[2].clone()];
    let other = shares(3);
    for keys in [
        UnsealKeys::from_shares(2, &all(&other)).unwrap(),
        UnsealKeys::from_shares(2, &some(&other, &[0, 2])).unwrap(),
        UnsealKeys::from_shares(2, &some(&reordered, &[0, 1])).unwrap(),
        UnsealKeys::dev().unwrap(),
    ] {
        let err = open(&store, keys).await.unwrap_err();
        let BarrierError::WrongUnsealKeys(message) = &err else {
            panic!("expected WrongUnsealKeys, got {err}");
        };
        assert!(message.contains("nothing was written"), "{message}");
        assert_eq!(store.snapshot(), before);
    }
}

#[tokio::test]
async fn initialisation_needs_every_share() {
    let s = shares(3);
    let store = Arc::new(MemStore::default());
    let err = open(
        &store,
        UnsealKeys::from_shares(2, &some(&s, &[0, 1])).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BarrierError::InvalidUnsealKeys(_)), "{err}");
    assert_eq!(store.snapshot(), State::default());
}

fn unseal_jwk() -> Jwk {
    let mut k = Jwk::generate_oct(32).unwrap();
    k.set_kid(Some(format!("unseal-{}", Uuid::now_v7())));
    k
}

#[tokio::test]
async fn jwk_mode_any_key_unseals_rotation_needs_all() {
    let (a, b_key) = (unseal_jwk(), unseal_jwk());
    let store = Arc::new(MemStore::default());
    let b = open(
        &store,
        UnsealKeys::from_jwks(vec![a.clone(), b_key.clone()]).unwrap(),
    )
    .await
    .unwrap();
    let t = tenant();
    let (_, jwe) = sealed(&b, &store, t, b"jwk").await;
    drop(b);

    let only_b = open(&store, UnsealKeys::from_jwks(vec![b_key.clone()]).unwrap())
        .await
        .unwrap();
    assert_eq!(&only_b.unseal(t, &jwe).await.unwrap()[..], b"jwk");
    assert!(matches!(
        only_b.rotate_root().await,
        Err(BarrierError::InvalidUnsealKeys(_))
    ));
    assert_eq!(store.snapshot().roots.len(), 1);

    // Bad unseal JWKs.
    let mut no_kid = unseal_jwk();
    no_kid.set_kid(None);
    let mut short = Jwk::generate_oct(16).unwrap();
    short.set_kid(Some("short".into()));
    let mut ec = Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
    ec.set_kid(Some("ec".into()));
    for bad in [
        vec![],
        vec![no_kid],
        vec![short],
        vec![ec],
        vec![a.clone(), a],
    ] {
        assert!(matches!(
            UnsealKeys::from_jwks(bad),
            Err(BarrierError::InvalidUnsealKeys(_))
        ));
    }
}

#[tokio::test]
async fn rotation_keeps_old_data_and_new_keys_use_new_layers() {
    let s = shares(3);
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    let (t1, t2) = (tenant(), tenant());
    let (owner1, old) = sealed(&b, &store, t1, b"before").await;
    sealed(&b, &store, t2, b"other tenant").await;
    let root1 = b.status().current_root_kid;
    let ik1 = store.snapshot().intermediates[&t1][0].kid;

    let root2 = b.rotate_root().await.unwrap();
    assert_ne!(root1, root2);
    assert_eq!(b.status().current_root_kid, root2);
    assert_eq!(b.status().root_keys, 2);
    // Existing tenants keep their intermediate until it is rotated.
    let ck = b.new_content_key(t1, Uuid::now_v7()).await.unwrap();
    assert_eq!(ck.record().parent_kid, Some(ik1));

    let new_ik = b.rotate_intermediate(Some(t1)).await.unwrap();
    assert_eq!(new_ik.len(), 1);
    let snap = store.snapshot();
    let ik2 = snap.intermediates[&t1]
        .iter()
        .find(|k| k.kid == new_ik[0])
        .unwrap();
    assert_eq!(ik2.parent_kid, Some(root2));
    let (owner2, new) = sealed(&b, &store, t1, b"after").await;
    let ck2 = store.snapshot().content[&t1]
        .iter()
        .find(|k| k.owner == Some(owner2))
        .unwrap()
        .clone();
    assert_eq!(ck2.parent_kid, Some(ik2.kid));
    // A new tenant's first intermediate uses the new root.
    let t3 = tenant();
    sealed(&b, &store, t3, b"new tenant").await;
    assert_eq!(
        store.snapshot().intermediates[&t3][0].parent_kid,
        Some(root2)
    );

    // Every tenant at once.
    let all_kids = b.rotate_intermediate(None).await.unwrap();
    assert_eq!(all_kids.len(), 3);
    drop(b);

    // A cold instance with only two shares opens everything.
    let b = open(
        &store,
        UnsealKeys::from_shares(2, &some(&s, &[1, 2])).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(b.status().root_keys, 2);
    assert_eq!(b.status().current_root_kid, root2);
    assert_eq!(&b.unseal(t1, &old).await.unwrap()[..], b"before");
    assert_eq!(&b.unseal(t1, &new).await.unwrap()[..], b"after");
    // seal() picks the owner's content key from the store.
    let again = b.seal(t1, owner1, b"again").await.unwrap();
    assert_eq!(&b.unseal(t1, &again).await.unwrap()[..], b"again");
    // Incomplete shares cannot rotate the root (other combinations would lose access).
    assert!(matches!(
        b.rotate_root().await,
        Err(BarrierError::InvalidUnsealKeys(_))
    ));
}

/// Another instance rotated the root: this one picks it up without restarting.
#[tokio::test]
async fn root_rotated_elsewhere_is_loaded_on_demand() {
    let s = shares(2);
    let store = Arc::new(MemStore::default());
    let a = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    let b = open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
        .await
        .unwrap();
    let root2 = a.rotate_root().await.unwrap();
    let t = tenant();
    let (_, jwe) = sealed(&b, &store, t, b"elsewhere").await;
    assert_eq!(
        store.snapshot().intermediates[&t][0].parent_kid,
        Some(root2)
    );
    assert_eq!(&a.unseal(t, &jwe).await.unwrap()[..], b"elsewhere");
    assert_eq!(b.status().root_keys, 2);
}

#[tokio::test]
async fn other_tenants_data_is_not_found() {
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::dev().unwrap()).await.unwrap();
    let (t1, t2) = (tenant(), tenant());
    let (owner, jwe) = sealed(&b, &store, t1, b"mine").await;
    // t2 has no keys at all, then some of its own; the t1 key is cached either way.
    assert!(matches!(
        b.unseal(t2, &jwe).await,
        Err(BarrierError::NotFound)
    ));
    sealed(&b, &store, t2, b"theirs").await;
    assert!(matches!(
        b.unseal(t2, &jwe).await,
        Err(BarrierError::NotFound)
    ));
    assert!(matches!(
        b.seal(t2, owner, b"x").await,
        Err(BarrierError::NotFound)
    ));
    assert_eq!(&b.unseal(t1, &jwe).await.unwrap()[..], b"mine");

    // A content key record copied into another tenant's store does not open there.
    let record = store.snapshot().content[&t1][0].clone();
    store.store_content(t2, &record);
    assert!(matches!(
        b.unseal(t2, &jwe).await,
        Err(BarrierError::Corrupt(_))
    ));
}

#[tokio::test]
async fn tampered_input_is_rejected() {
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::dev().unwrap()).await.unwrap();
    let t = tenant();
    let (_, jwe) = sealed(&b, &store, t, b"payload").await;
    let parts: Vec<&str> = jwe.split('.').collect();

    let mut ct = parts[3].to_owned();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    ct.replace_range(0..1, flipped);
    let tampered_ct = [parts[0], parts[1], parts[2], &ct, parts[4]].join(".");
    assert!(matches!(
        b.unseal(t, &tampered_ct).await,
        Err(BarrierError::Corrupt(_))
    ));

    let other_kid = cryptoutil_jose::b64::encode(
        format!(
            r#"{{"alg":"A256KW","enc":"A256GCM","kid":"{}"}}"#,
            Uuid::now_v7()
        )
        .as_bytes(),
    );
    let wrong_kid = [&other_kid, parts[1], parts[2], parts[3], parts[4]].join(".");
    assert!(matches!(
        b.unseal(t, &wrong_kid).await,
        Err(BarrierError::NotFound)
    ));
    for garbage in ["", "a.b", "not a jwe at all", &jwe[..jwe.len() - 2]] {
        assert!(b.unseal(t, garbage).await.is_err(), "{garbage}");
    }

    // A stored content key moved to another owner does not open (binding in the JWE header).
    let mut moved = store.snapshot().content[&t][0].clone();
    moved.owner = Some(Uuid::now_v7());
    moved.kid = Uuid::now_v7();
    store.store_content(t, &moved);
    assert!(matches!(
        b.seal(t, moved.owner.unwrap(), b"x").await,
        Err(BarrierError::Corrupt(_))
    ));
    assert_eq!(&b.unseal(t, &jwe).await.unwrap()[..], b"payload");
}

#[tokio::test]
async fn cache_is_bounded_and_warm_paths_skip_the_store() {
    let store = Arc::new(MemStore::default());
    let b = Barrier::open(Arc::clone(&store), UnsealKeys::dev().unwrap(), 4)
        .await
        .unwrap();
    let t = tenant();
    let mut sealed_items = Vec::new();
    for i in 0..10 {
        let data = format!("item {i}");
        let (owner, jwe) = sealed(&b, &store, t, data.as_bytes()).await;
        sealed_items.push((owner, jwe, data));
        assert!(b.status().cached_keys <= 4);
    }
    assert_eq!(b.status().cache_capacity, 4);
    for (owner, jwe, data) in &sealed_items {
        assert_eq!(&b.unseal(t, jwe).await.unwrap()[..], data.as_bytes());
        let again = b.seal(t, *owner, b"again").await.unwrap();
        assert_eq!(&b.unseal(t, &again).await.unwrap()[..], b"again");
        assert!(b.status().cached_keys <= 4);
    }

    // Warm: no store call at all.
    let (owner, jwe, _) = &sealed_items[9];
    b.seal(t, *owner, b"warm").await.unwrap();
    let calls = store.calls();
    for _ in 0..5 {
        let s = b.seal(t, *owner, b"warm").await.unwrap();
        b.unseal(t, &s).await.unwrap();
        b.unseal(t, jwe).await.unwrap();
    }
    assert_eq!(store.calls(), calls);

    // Cold after forget_owner: the store is asked again.
    b.forget_owner(t, *owner);
    b.unseal(t, jwe).await.unwrap();
    assert!(store.calls() > calls);
}

#[tokio::test]
async fn purged_content_keys_shred_the_material() {
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::dev().unwrap()).await.unwrap();
    let t = tenant();
    let (owner, jwe) = sealed(&b, &store, t, b"secret").await;
    let (_, keep) = sealed(&b, &store, t, b"kept").await;
    store.delete_content(t, owner);
    b.forget_owner(t, owner);
    assert!(matches!(
        b.unseal(t, &jwe).await,
        Err(BarrierError::NotFound)
    ));
    assert!(matches!(
        b.seal(t, owner, b"x").await,
        Err(BarrierError::NotFound)
    ));
    assert_eq!(&b.unseal(t, &keep).await.unwrap()[..], b"kept");
}

#[tokio::test]
async fn unstored_content_key_is_not_used_by_seal() {
    let store = Arc::new(MemStore::default());
    let b = open(&store, UnsealKeys::dev().unwrap()).await.unwrap();
    let t = tenant();
    let owner = Uuid::now_v7();
    let ck = b.new_content_key(t, owner).await.unwrap();
    assert!(format!("{ck:?}").contains(&ck.kid().to_string()));
    assert_eq!(ck.tenant(), t);
    // The caller's transaction failed: nothing stored.
    assert!(matches!(
        b.seal(t, owner, b"x").await,
        Err(BarrierError::NotFound)
    ));
}

fn assert_send<T: Send>(_: &T) {}

/// The key service runs these inside axum handlers: the futures must be `Send`.
#[tokio::test]
async fn futures_are_send_and_barrier_is_sync() {
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Barrier<MemStore>>();
    let store = Arc::new(MemStore::default());
    let open_fut = Barrier::open(Arc::clone(&store), UnsealKeys::dev().unwrap(), 10);
    assert_send(&open_fut);
    let b = open_fut.await.unwrap();
    let t = tenant();
    let owner = Uuid::now_v7();
    assert_send(&b.new_content_key(t, owner));
    assert_send(&b.seal(t, owner, b""));
    assert_send(&b.unseal(t, ""));
    assert_send(&b.rotate_root());
    assert_send(&b.rotate_intermediate(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_open_creates_exactly_one_root_key() {
    let s = shares(3);
    // All eight read "no root key" before any of them initialises.
    let store = Arc::new(MemStore {
        root_gate: Some(Gate::new(8)),
        intermediate_gate: Some(Gate::new(8)),
        ..MemStore::default()
    });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let keys = UnsealKeys::from_shares(2, &all(&s)).unwrap();
        tasks.push(tokio::spawn(async move {
            Barrier::open(store, keys, 10)
                .await
                .map(|b| b.status().current_root_kid)
        }));
    }
    let mut kids = BTreeSet::new();
    for task in tasks {
        kids.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(store.snapshot().roots.len(), 1);
    assert_eq!(kids.len(), 1);

    // Same for a tenant's first intermediate key.
    let b = Arc::new(
        open(&store, UnsealKeys::from_shares(2, &all(&s)).unwrap())
            .await
            .unwrap(),
    );
    let t = tenant();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let b = Arc::clone(&b);
        tasks.push(tokio::spawn(async move {
            b.new_content_key(t, Uuid::now_v7())
                .await
                .map(|k| k.record().parent_kid)
        }));
    }
    let mut parents = BTreeSet::new();
    for task in tasks {
        parents.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(parents.len(), 1);
    assert_eq!(store.snapshot().intermediates[&t].len(), 1);
}

fn write_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn load_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate_shares(3, 48).unwrap();
    let files: Vec<PathBuf> = s
        .iter()
        .enumerate()
        .map(|(i, share)| {
            write_file(
                &dir,
                &format!("share-{i}-{}", Uuid::now_v7()),
                &format!("{}\n", encode_share(share).as_str()),
            )
        })
        .collect();
    let settings = |files: Vec<PathBuf>| BarrierSettings {
        unseal: UnsealSettings::Shares {
            threshold: 2,
            files,
        },
        ..BarrierSettings::default()
    };
    let complete = UnsealKeys::load(&settings(files.clone())).unwrap();
    assert_eq!(complete.len(), 3);
    assert!(complete.is_complete());
    let store = Arc::new(MemStore::default());
    let b = open(&store, complete).await.unwrap();
    let t = tenant();
    let (_, jwe) = sealed(&b, &store, t, b"files").await;

    // One file missing, one garbage: only one readable share left of the first set.
    let missing = dir.path().join(format!("missing-{}", Uuid::now_v7()));
    let garbage = write_file(&dir, &format!("garbage-{}", Uuid::now_v7()), "not base64!");
    let partial = UnsealKeys::load(&settings(vec![
        files[0].clone(),
        missing.clone(),
        files[2].clone(),
    ]))
    .unwrap();
    assert_eq!(partial.len(), 1);
    assert!(!partial.is_complete());
    let b = open(&store, partial).await.unwrap();
    assert_eq!(&b.unseal(t, &jwe).await.unwrap()[..], b"files");
    assert!(matches!(
        UnsealKeys::load(&settings(vec![files[0].clone(), missing, garbage])),
        Err(BarrierError::InvalidUnsealKeys(_))
    ));

    // JWK files: a single JWK and a JWK set.
    let (k1, k2, k3) = (unseal_jwk(), unseal_jwk(), unseal_jwk());
    let single = write_file(&dir, &format!("jwk-{}", Uuid::now_v7()), &k1.to_json(true));
    let set = cryptoutil_jose::jwk::JwkSet { keys: vec![k2, k3] };
    let set_file = write_file(
        &dir,
        &format!("jwks-{}", Uuid::now_v7()),
        &set.to_json(true),
    );
    let keys = UnsealKeys::load(&BarrierSettings {
        unseal: UnsealSettings::Jwk {
            files: vec![single, set_file],
        },
        cache_capacity: 10,
    })
    .unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.is_complete());
    assert!(!format!("{keys:?}").contains("\"k\""));

    let dev = UnsealKeys::load(&BarrierSettings::default()).unwrap();
    assert_eq!(dev.len(), 1);
}
