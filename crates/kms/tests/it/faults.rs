//! PostgreSQL faults under load (issue 13): while clients create keys and encrypt through a TCP
//! proxy in front of PostgreSQL, the proxy goes down (every connection dropped, new ones
//! refused) and comes back, and then every server-side connection of the test's own database is
//! terminated with `pg_terminate_backend` (never another database; the real service is never
//! restarted). While down, answers are 503 problem+json only, never a 500 and never a hang past
//! the configured timeouts; afterwards requests succeed without a restart; nothing acknowledged
//! is lost. Needs `CRYPTOUTIL_TEST_POSTGRES_URL` (skips loudly without).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Api, Kms, Reply, Surface, TcpProxy, postgres_url, shares};
use serde_json::json;

/// Longest any single request may take: the pool's acquire timeout (500 ms) plus the time of
/// the work itself, with a wide margin for a loaded CI machine. A request past it is a hang.
const REQUEST_BOUND: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Ledger {
    keys: Vec<String>,
    ciphertexts: Vec<(String, String, String)>,
    /// Answers by status.
    statuses: std::collections::BTreeMap<u16, usize>,
}

async fn bounded(request: impl std::future::Future<Output = Reply>) -> Reply {
    tokio::time::timeout(REQUEST_BOUND, request)
        .await
        .expect("a request hung past the configured timeouts")
}

/// Only success or a 503 problem document.
fn check(reply: &Reply, success: u16) -> bool {
    if reply.status == success {
        return true;
    }
    reply.assert_problem(503, "");
    false
}

async fn client(
    api: Arc<Api>,
    ledger: Arc<Mutex<Ledger>>,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut known: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let name = format!("pg-fault-{}", uuid::Uuid::now_v7());
        let created = bounded(api.post_json("/elastickey", &json!({ "name": name }))).await;
        ledger
            .lock()
            .unwrap()
            .statuses
            .entry(created.status)
            .and_modify(|n| *n += 1)
            .or_insert(1);
        if check(&created, 201) {
            let id = created.json()["elastic_key_id"]
                .as_str()
                .unwrap()
                .to_owned();
            ledger.lock().unwrap().keys.push(id.clone());
            acked.fetch_add(1, Ordering::SeqCst);
            known = Some(id);
        }
        let Some(id) = known.clone() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let clear = format!("clear-{}", uuid::Uuid::now_v7());
        let jwe =
            bounded(api.post_bytes(&format!("/elastickey/{id}/encrypt"), clear.as_bytes())).await;
        ledger
            .lock()
            .unwrap()
            .statuses
            .entry(jwe.status)
            .and_modify(|n| *n += 1)
            .or_insert(1);
        if check(&jwe, 200) {
            ledger
                .lock()
                .unwrap()
                .ciphertexts
                .push((id, clear, jwe.text));
            acked.fetch_add(1, Ordering::SeqCst);
        } else {
            // Down: do not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `count` passes `target` (bounded: the load must make progress).
async fn until(what: &str, count: &AtomicUsize, target: usize) {
    for _ in 0..3000 {
        if count.load(Ordering::SeqCst) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{what}: stuck at {} of {target}",
        count.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_and_killed_connections_under_load_give_503_only_and_lose_nothing() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let server = db
        .url
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .unwrap();
    let proxy = TcpProxy::start(&server).await;
    let through_proxy = db.url.replacen(&server, &proxy.address(), 1);
    let dir = tempfile::tempdir().unwrap();
    let files = shares(dir.path(), "pg-faults", 2);
    let kms = Kms::with_shares_and(&through_proxy, 1, &files, |s| {
        s.database.acquire_timeout =
            cryptoutil_server::config::HumanDuration(Duration::from_millis(500));
    })
    .await
    .unwrap();
    let api = Arc::new(kms.api(Surface::Service).await);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(client(
                api.clone(),
                ledger.clone(),
                acked.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let refused = || *ledger.lock().unwrap().statuses.get(&503).unwrap_or(&0);

    until("load before the outage", &acked, 30).await;
    proxy.down();
    // Enough refused requests to have seen every kind (create and encrypt, from each client).
    let target = refused() + 12;
    for _ in 0..3000 {
        if refused() >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused() >= target, "the outage gave 503s");
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);

    proxy.up().await;
    let now = acked.load(Ordering::SeqCst);
    until(
        "recovery after the outage, without a restart",
        &acked,
        now + 20,
    )
    .await;

    let terminated = db.terminate_connections().await;
    assert!(terminated >= 1, "the KMS had connections to terminate");
    let now = acked.load(Ordering::SeqCst);
    until("recovery after pg_terminate_backend", &acked, now + 20).await;

    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "answers by status: {:?}; {} keys and {} ciphertexts acknowledged",
        ledger.statuses,
        ledger.keys.len(),
        ledger.ciphertexts.len()
    );
    assert!(ledger.statuses.keys().all(|s| [200, 201, 503].contains(s)));
    for id in &ledger.keys {
        let got = api.get(&format!("/elastickey/{id}")).await;
        assert_eq!(got.status, 200, "acknowledged key {id} lost: {}", got.text);
    }
    for (id, clear, jwe) in &ledger.ciphertexts {
        let out = api
            .post_bytes(&format!("/elastickey/{id}/decrypt"), jwe.as_bytes())
            .await;
        assert_eq!(out.status, 200, "{}", out.text);
        assert_eq!(out.body, clear.as_bytes());
    }
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    kms.stop().await;
    proxy.down();
    db.drop().await;
}
