//! Real servers on free ports over TLS 1.3 with the demo CA: admin routes, mTLS, problem
//! responses, limits, request IDs, graceful shutdown and certificate reload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use cryptoutil_server::config::ServerSettings;
use cryptoutil_server::{DevPki, ReadinessCheck, RunningServer, ServerSpec, StartError};
use cryptoutil_tls::{ClientIdentity, TrustConfig, client_config};
use serde_json::Value;

struct Harness {
    server: RunningServer,
    pki: Arc<DevPki>,
    _tls: cryptoutil_server::TlsRuntime,
}

fn settings(pki: &DevPki, require_client_cert: bool) -> ServerSettings {
    let mut settings = ServerSettings::with_ports(0, 0);
    settings.public.address = "127.0.0.1".parse().unwrap();
    settings.admin.require_client_cert = Some(require_client_cert);
    settings.tls.watch = Some(false);
    settings.limits.max_body_bytes = 4096;
    pki.apply(&mut settings, "kms");
    settings
}

/// Signals that a `/slow` request has reached its handler.
static SLOW_ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn public_routes() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                SLOW_ENTERED.notify_one();
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow done"
            }),
        )
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
}

async fn start(require_client_cert: bool, checks: Vec<ReadinessCheck>) -> Harness {
    let pki = DevPki::generate().unwrap();
    let settings = settings(&pki, require_client_cert);
    let tls = cryptoutil_server::tls_setup::build(&settings, false, None).unwrap();
    let server = cryptoutil_server::start(ServerSpec {
        name: "test",
        settings,
        public: public_routes(),
        admin_extra: Router::new(),
        checks,
        tls: tls.setup.clone(),
    })
    .await
    .unwrap();
    Harness {
        server,
        pki: Arc::new(pki),
        _tls: tls,
    }
}

fn client(pki: &DevPki, with_client_cert: bool) -> reqwest::Client {
    let identity = with_client_cert.then(|| {
        ClientIdentity::load(
            &pki.path().join("demo/cert.pem"),
            &pki.path().join("demo/key.pem"),
        )
        .unwrap()
    });
    let config =
        client_config(TrustConfig::from_ca_files(&[pki.root()]).unwrap(), identity).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

impl Harness {
    fn public(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.public_addr.port())
    }
    fn admin(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.admin_addr.port())
    }
}

#[tokio::test]
async fn admin_routes_answer_over_mtls_and_refuse_clients_without_certificates() {
    let h = start(
        true,
        vec![
            ReadinessCheck::required("database", || async { Ok("reachable".to_owned()) }),
            ReadinessCheck::optional("telemetry", || async { Err("no exporter".to_owned()) }),
        ],
    )
    .await;
    assert_ne!(h.server.public_addr.port(), 0, "the real port is reported");

    let with_cert = client(&h.pki, true);
    let live = with_cert
        .get(h.admin("/admin/v1/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.version(), reqwest::Version::HTTP_11);

    let ready = with_cert
        .get(h.admin("/admin/v1/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["telemetry"]["status"], "fail");
    assert!(body["version"].is_string());

    let without_cert = client(&h.pki, false);
    assert!(
        without_cert
            .get(h.admin("/admin/v1/livez"))
            .send()
            .await
            .is_err(),
        "the admin listener must refuse a client without a certificate"
    );
    // The public listener does not ask for client certificates.
    let hello = without_cert.get(h.public("/hello")).send().await.unwrap();
    assert_eq!(hello.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn readyz_is_503_when_a_required_check_fails() {
    let h = start(
        false,
        vec![ReadinessCheck::required("database", || async {
            Err("connection refused".to_owned())
        })],
    )
    .await;
    let response = client(&h.pki, false)
        .get(h.admin("/admin/v1/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["database"]["detail"], "connection refused");
}

#[tokio::test]
async fn errors_are_problem_documents_and_headers_are_set() {
    let h = start(false, vec![]).await;
    let c = client(&h.pki, false);

    let missing = c.get(h.public("/no/such/route")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["status"], 404);

    let wrong_method = c.delete(h.public("/hello")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.headers()["content-type"],
        "application/problem+json"
    );

    let too_big = c
        .post(h.public("/echo"))
        .body(vec![b'x'; 8192])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.headers()["content-type"],
        "application/problem+json"
    );

    let ok = c
        .post(h.public("/echo"))
        .body("small")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let headers = ok.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);

    let echoed = c
        .get(h.public("/hello"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc.123");
    let replaced = c
        .get(h.public("/hello"))
        .header("x-request-id", "has spaces and is not accepted")
        .send()
        .await
        .unwrap();
    assert_ne!(
        replaced.headers()["x-request-id"],
        "has spaces and is not accepted"
    );
}

#[tokio::test]
async fn shutdown_through_the_admin_api_drains_in_flight_requests() {
    let h = start(false, vec![]).await;
    let c = client(&h.pki, false);
    let slow = tokio::spawn({
        let c = c.clone();
        let url = h.public("/slow");
        async move { c.get(url).send().await?.text().await }
    });
    SLOW_ENTERED.notified().await;
    let response = c.post(h.admin("/admin/v1/shutdown")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        slow.await.unwrap().unwrap(),
        "slow done",
        "the in-flight request completes"
    );
    let public = h.public("/hello");
    h.server.wait().await;
    let fresh = client(&h.pki, false);
    assert!(
        fresh.get(public).send().await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_start_error() {
    let pki = DevPki::generate().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = settings(&pki, false);
    settings.public.port = taken.local_addr().unwrap().port();
    let tls = cryptoutil_server::tls_setup::build(&settings, false, None).unwrap();
    let err = cryptoutil_server::start(ServerSpec {
        name: "test",
        settings,
        public: Router::new(),
        admin_extra: Router::new(),
        checks: vec![],
        tls: tls.setup.clone(),
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StartError::Bind { .. }));
    let text = err.to_string();
    assert!(text.contains("public listener"), "{text}");
    assert!(
        text.contains(&taken.local_addr().unwrap().to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn reload_certs_swaps_the_certificate_and_refuses_a_broken_one() {
    let h = start(false, vec![]).await;
    let c = client(&h.pki, false);
    let cert_path = h.pki.path().join("kms/cert.pem");
    let key_path = h.pki.path().join("kms/key.pem");

    // A new leaf from the same CA, written over the served files.
    let fresh = tempfile::tempdir().unwrap();
    cryptoutil_tls::issue_leaf(
        &h.pki.path().join("ca"),
        fresh.path(),
        &cryptoutil_tls::LeafKind::Server {
            names: vec!["kms.cryptoutil.demo.local".into()],
        },
        cryptoutil_tls::Duration::days(30),
    )
    .unwrap();
    std::fs::copy(fresh.path().join("key.pem"), &key_path).unwrap();
    std::fs::copy(fresh.path().join("cert.pem"), &cert_path).unwrap();
    let reloaded = c
        .post(h.admin("/admin/v1/reload-certs"))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let body: Value = reloaded.json().await.unwrap();
    let new_serial = cryptoutil_tls::CertInfo::from_der(
        &cryptoutil_tls::load_cert_chain(&cert_path).unwrap()[0],
    )
    .unwrap()
    .serial;
    assert!(
        body["certificate"].as_str().unwrap().contains(&new_serial),
        "{body}"
    );

    std::fs::write(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let refused = c
        .post(h.admin("/admin/v1/reload-certs"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    // New connections still get the last good certificate.
    let again = client(&h.pki, false)
        .get(h.public("/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}
