//! Test harness: a real KMS on free ports over TLS with a fresh demo CA, and an HTTP client that
//! trusts that CA (never an "accept invalid certificates" switch).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoutil_kms::barrier::{UnsealSettings, encode_share, generate_shares};
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_kms::model::{RealmUserRecord, TenantId};
use cryptoutil_kms::repository::DirectoryStore;
use cryptoutil_kms::storage::DatabaseSettings;
use cryptoutil_kms::storage::Store;
use cryptoutil_server::DevPki;
use cryptoutil_testkit::kms::KmsServer;
use cryptoutil_tls::{TrustConfig, client_config};
use reqwest::Method;
use serde_json::Value;

thread_local! {
    static SEEDING: std::cell::Cell<Option<cryptoutil_kms::server::Seeding>> = const { std::cell::Cell::new(None) };
}

/// Which API surface a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `/service/api/v1`
    Service,
    /// `/browser/api/v1` (sends the CSRF token on unsafe methods)
    Browser,
}

/// A running KMS and what a client needs to reach it.
pub struct Kms {
    kms: cryptoutil_kms::server::Kms,
    pki: Arc<DevPki>,
    http: reqwest::Client,
    /// The default test user: `kms:admin` in its own fresh tenant.
    pub user: TestUser,
}

/// A database-realm user made for one test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub tenants: Vec<String>,
}

/// The test password and its PBKDF2 hash, computed once per test process (600,000 iterations).
pub fn test_password() -> &'static (String, String) {
    static HASH: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let password = format!("pw-{}", uuid::Uuid::new_v4());
        let hash = cryptoutil_realm::password::hash_password(&password).unwrap();
        (password, hash)
    })
}

fn http_client(pki: &DevPki) -> reqwest::Client {
    cryptoutil_testkit::tls::client_builder(pki)
        .cookie_store(true)
        .build()
        .unwrap()
}

impl Kms {
    /// `--dev`: in-memory SQLite and a random unseal key.
    pub async fn dev() -> Self {
        Self::dev_seeded(None).await
    }

    /// `--dev` with a last change to the settings.
    pub async fn dev_with(change: impl FnOnce(&mut KmsSettings)) -> Self {
        Self::dev_seeded_with(None, change).await
    }

    /// `--dev` with seeding and a last change to the settings.
    pub async fn dev_seeded_with(
        seeding: Option<cryptoutil_kms::server::Seeding>,
        change: impl FnOnce(&mut KmsSettings),
    ) -> Self {
        let (kms, pki) = KmsServer::start(true, seeding, change)
            .await
            .unwrap()
            .into_parts();
        Self::ready(kms, pki).await
    }

    /// The HTTP client that trusts this server's CA.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `--dev`, with `--demo` or `--reset-demo` seeding.
    pub async fn dev_seeded(seeding: Option<cryptoutil_kms::server::Seeding>) -> Self {
        Self::dev_seeded_with(seeding, |_| {}).await
    }

    /// A persistent database unsealed by `threshold`-of-N share files.
    pub async fn with_shares(
        url: &str,
        threshold: usize,
        files: &[PathBuf],
    ) -> Result<Self, String> {
        Self::with_shares_and(url, threshold, files, |_| {}).await
    }

    /// [`Self::with_shares`] with a last change to the settings.
    pub async fn with_shares_and(
        url: &str,
        threshold: usize,
        files: &[PathBuf],
        change: impl FnOnce(&mut KmsSettings),
    ) -> Result<Self, String> {
        let seeding = SEEDING.with(|s| s.take());
        let (kms, pki) = KmsServer::start(false, seeding, |settings| {
            settings.database = DatabaseSettings::with_url(url);
            settings.barrier.unseal = UnsealSettings::Shares {
                threshold,
                files: files.to_vec(),
            };
            change(settings);
        })
        .await
        .map_err(|e| e.to_string())?
        .into_parts();
        Ok(Self::ready(kms, pki).await)
    }

    /// [`Self::with_shares`] with `--demo` or `--reset-demo`.
    pub async fn with_shares_seeded(
        url: &str,
        threshold: usize,
        files: &[PathBuf],
        seeding: cryptoutil_kms::server::Seeding,
    ) -> Result<Self, String> {
        SEEDING.with(|s| s.set(Some(seeding)));
        Self::with_shares_and(url, threshold, files, |_| {}).await
    }

    async fn ready(kms: cryptoutil_kms::server::Kms, pki: DevPki) -> Self {
        let http = http_client(&pki);
        let mut this = Self {
            kms,
            pki: Arc::new(pki),
            http,
            user: TestUser {
                username: String::new(),
                password: String::new(),
                tenants: Vec::new(),
            },
        };
        let tenant = format!("tenant-{}", uuid::Uuid::now_v7());
        this.user = this.add_user(&["kms:admin"], &[&tenant], true).await;
        this
    }

    /// A client presenting the demo PKI's client certificate (`demo/cert.pem`), and its subject.
    pub fn client_with_certificate(&self) -> (reqwest::Client, String) {
        let cert = self.pki.path().join("demo/cert.pem");
        let key = self.pki.path().join("demo/key.pem");
        let identity = cryptoutil_tls::ClientIdentity::load(&cert, &key).unwrap();
        let config = client_config(
            TrustConfig::from_ca_files(&[self.pki.root()]).unwrap(),
            Some(identity),
        )
        .unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .build()
            .unwrap();
        let chain = cryptoutil_tls::load_cert_chain(&cert).unwrap();
        let subject = cryptoutil_tls::CertInfo::from_der(&chain[0])
            .unwrap()
            .subject;
        (client, subject)
    }

    /// The public URL of a path.
    pub fn public_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.kms.server.public_addr.port()
        )
    }

    /// The store behind the server.
    pub fn store(&self) -> &Store {
        self.kms.keys.store()
    }

    /// The key service behind the server.
    pub fn keys(&self) -> &cryptoutil_kms::api::Keys {
        &self.kms.keys
    }

    /// Creates (if needed) the named tenants and a new enabled database-realm user with these
    /// roles; its password is [`test_password`].
    pub async fn add_user(&self, roles: &[&str], tenants: &[&str], enabled: bool) -> TestUser {
        for name in tenants {
            self.store().ensure_named_tenant(name).await.unwrap();
        }
        let now = time::OffsetDateTime::now_utc();
        let username = format!("user-{}", uuid::Uuid::now_v7());
        let record = RealmUserRecord {
            username: username.clone(),
            password_hash: test_password().1.clone(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            enabled,
            metadata: "{}".to_owned(),
            certificate_subject: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_realm_user(&record).await.unwrap();
        TestUser {
            username,
            password: test_password().0.clone(),
            tenants: record.tenants,
        }
    }

    /// The id of a named tenant.
    pub async fn tenant_id(&self, name: &str) -> TenantId {
        self.store().tenant_by_name(name).await.unwrap().unwrap().id
    }

    /// A client for one surface as the default test user.
    pub async fn api(&self, surface: Surface) -> Api {
        self.api_as(surface, Some(&self.user)).await
    }

    /// A client for one surface as `user` (or anonymous).
    pub async fn api_as(&self, surface: Surface, user: Option<&TestUser>) -> Api {
        let port = self.kms.server.public_addr.port();
        let (prefix, csrf) = match surface {
            Surface::Service => ("/service/api/v1", None),
            Surface::Browser => {
                let url = format!("https://localhost:{port}/browser/api/v1/csrf-token");
                let response = self.http.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                (
                    "/browser/api/v1",
                    Some(body["csrf_token"].as_str().unwrap().to_owned()),
                )
            }
        };
        Api {
            http: self.http.clone(),
            base: format!("https://localhost:{port}{prefix}"),
            csrf,
            basic: user.map(|u| (u.username.clone(), u.password.clone())),
            tenant: None,
        }
    }

    /// GET on the public listener, outside the API surfaces.
    pub async fn get_public(&self, path: &str) -> Reply {
        let url = format!(
            "https://localhost:{}{path}",
            self.kms.server.public_addr.port()
        );
        Reply::read(self.http.get(url).send().await.unwrap()).await
    }

    /// GET on the admin listener.
    pub async fn get_admin(&self, path: &str) -> Reply {
        let url = format!(
            "https://localhost:{}{path}",
            self.kms.server.admin_addr.port()
        );
        Reply::read(self.http.get(url).send().await.unwrap()).await
    }

    /// POST on the admin listener.
    pub async fn post_admin(&self, path: &str) -> Reply {
        let url = format!(
            "https://localhost:{}{path}",
            self.kms.server.admin_addr.port()
        );
        Reply::read(self.http.post(url).send().await.unwrap()).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.kms.stop().await;
        drop(self.pki);
    }
}

/// A client bound to one surface.
pub struct Api {
    http: reqwest::Client,
    base: String,
    csrf: Option<String>,
    basic: Option<(String, String)>,
    tenant: Option<String>,
}

impl Api {
    /// The same client, sending `X-Tenant-ID`.
    pub fn in_tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    fn with_csrf(
        &self,
        request: reqwest::RequestBuilder,
        method: &Method,
    ) -> reqwest::RequestBuilder {
        let request = match &self.basic {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let request = match &self.tenant {
            Some(tenant) => request.header("X-Tenant-ID", tenant),
            None => request,
        };
        match (&self.csrf, method) {
            (Some(token), m) if m != Method::GET && m != Method::HEAD => {
                request.header("X-CSRF-Token", token)
            }
            _ => request,
        }
    }

    /// Any method, empty body.
    pub async fn request(&self, method: &str, path: &str) -> Reply {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        Reply::read(self.with_csrf(request, &method).send().await.unwrap()).await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path).await
    }

    /// POST with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, "application/json", body.to_string().as_bytes())
            .await
    }

    /// PUT with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        Reply::read(self.with_csrf(request, &Method::PUT).send().await.unwrap()).await
    }

    /// POST with raw bytes.
    pub async fn post_bytes(&self, path: &str, body: &[u8]) -> Reply {
        self.post_raw(path, "application/octet-stream", body).await
    }

    /// POST with a body of some media type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_vec());
        Reply::read(self.with_csrf(request, &Method::POST).send().await.unwrap()).await
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    /// `WWW-Authenticate`.
    pub challenge: Option<String>,
    pub body: Vec<u8>,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let location = header("location");
        let challenge = header("www-authenticate");
        let body = response.bytes().await.unwrap().to_vec();
        let text = String::from_utf8_lossy(&body).into_owned();
        Self {
            status,
            content_type,
            location,
            challenge,
            body,
            text,
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts a problem+json answer with this status whose text mentions `needle`.
    pub fn assert_problem(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{}", self.text);
        assert!(
            self.text.contains(needle),
            "expected {needle:?} in {}",
            self.text
        );
    }
}

/// `n` fresh share files named `<label>-<i>` in `dir`.
pub fn shares(dir: &Path, label: &str, n: usize) -> Vec<PathBuf> {
    generate_shares(n, 32)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let path = dir.join(format!("{label}-{i}"));
            std::fs::write(&path, encode_share(share).as_bytes()).unwrap();
            path
        })
        .collect()
}

/// A fresh PostgreSQL database for one test, dropped by [`PgDatabase::drop`] (or when dropped).
pub use cryptoutil_testkit::postgres::TestDatabase as PgDatabase;

/// A fresh database on the server named by `CRYPTOUTIL_TEST_POSTGRES_URL`, or `None` (with a
/// loud message) when the variable is unset. CI sets it.
pub async fn postgres_url() -> Option<PgDatabase> {
    PgDatabase::create("kms_test").await
}

/// A TCP proxy to a real server that a test can take down (closing every connection) and bring
/// back on the same port, to simulate a database outage.
pub struct TcpProxy {
    address: std::net::SocketAddr,
    target: String,
    stop: std::sync::Mutex<Option<tokio_util::sync::CancellationToken>>,
}

impl TcpProxy {
    /// Starts forwarding a free local port to `target`.
    pub async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = Self {
            address,
            target: target.to_owned(),
            stop: std::sync::Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    /// `host:port` of the proxy.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let token = tokio_util::sync::CancellationToken::new();
        *self.stop.lock().unwrap() = Some(token.clone());
        let target = self.target.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let target = target.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
    }

    /// Closes the listener and every forwarded connection.
    pub fn down(&self) {
        if let Some(token) = self.stop.lock().unwrap().take() {
            token.cancel();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let listener = loop {
            match tokio::net::TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

/// Audit events (`target: "audit"`) still in this test process's audit trail, as JSON objects
/// of their fields, matching `pred`.
pub fn audit_events(pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = cryptoutil_server::audit::read(after, cryptoutil_server::audit::MAX_PAGE);
        if page.events.is_empty() {
            return found;
        }
        after = page.next_after;
        found.extend(
            page.events
                .iter()
                .map(|e| serde_json::to_value(&e.fields).unwrap())
                .filter(|e| pred(e)),
        );
    }
}
