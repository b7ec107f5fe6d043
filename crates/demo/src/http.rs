//! The demo's HTTPS client: rustls, TLS 1.3, trusting only the given CA files (the demo CA);
//! transient failures retried with backoff; bounded response bodies; errors that name the
//! request and its cause (never a credential or a token).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cryptoutil_tls::ClientIdentity;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::step_error::StepError;

/// Largest response body the demo reads.
const MAX_BODY: usize = 1024 * 1024;
/// Per-request limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a server that is not yet healthy is asked again.
const HEALTH_POLL: Duration = Duration::from_millis(100);

/// HTTPS clients for the demo.
#[derive(Clone)]
pub struct Http {
    tls: rustls::ClientConfig,
    api: Client,
    /// For admin listeners: presents the client certificate, when one was given.
    admin: Client,
    retry: RetryPolicy,
    /// The CA files trusted, for messages.
    trusted: Vec<PathBuf>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("trusted", &self.trusted)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// Clients that trust exactly the CA certificates in `ca_files`; the admin client also
    /// presents `admin_identity` (admin listeners require a client certificate outside `--dev`).
    /// The API clients never present one, so a certificate cannot authenticate an API request
    /// the demo means to send without credentials.
    pub fn new(
        ca_files: &[PathBuf],
        admin_identity: Option<ClientIdentity>,
        retry: RetryPolicy,
    ) -> Result<Self, String> {
        let trust = || {
            cryptoutil_tls::TrustConfig::from_ca_files(ca_files)
                .map_err(|e| format!("cannot read the CA certificate: {e}"))
        };
        let tls = cryptoutil_tls::client_config(trust()?, None)
            .map_err(|e| format!("cannot build the TLS client: {e}"))?;
        let api = build(&tls, false)?;
        let admin = match admin_identity {
            Some(identity) => build(
                &cryptoutil_tls::client_config(trust()?, Some(identity))
                    .map_err(|e| format!("cannot use the client certificate: {e}"))?,
                false,
            )?,
            None => api.clone(),
        };
        Ok(Self {
            tls,
            api,
            admin,
            retry,
            trusted: ca_files.to_vec(),
        })
    }

    /// A new browser-like client: its own cookie jar, redirects not followed.
    pub fn browser(&self) -> Result<Client, StepError> {
        build(&self.tls, true).map_err(|e| StepError::with_cause("cannot build a client", e))
    }

    /// The API client (no cookies, redirects not followed).
    pub fn api(&self) -> &Client {
        &self.api
    }

    /// The client for admin listeners (with the client certificate, when one was given).
    pub fn admin(&self) -> &Client {
        &self.admin
    }

    /// Sends the request `build` makes with the API client, retrying transient failures.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Reply, StepError> {
        self.send_with(&self.api, what, build).await
    }

    /// [`Self::send`] with a given client (a browser).
    pub async fn send_with(
        &self,
        client: &Client,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Reply, StepError> {
        let mut retry = 0;
        loop {
            let outcome = attempt(traced(build(client)).timeout(REQUEST_TIMEOUT), what).await;
            let failure = match &outcome {
                Ok(reply) if is_transient(Failure::Status(reply.status.as_u16())) => {
                    Some(Failure::Status(reply.status.as_u16()))
                }
                Ok(_) => None,
                Err((failure, _)) => Some(*failure),
            };
            match failure {
                Some(f) if is_transient(f) && retry < self.retry.retries => {
                    tokio::time::sleep(self.retry.delay(retry)).await;
                    retry += 1;
                }
                _ => {
                    let retried = |mut e: StepError| {
                        if retry > 0 {
                            e.message = format!("{} (after {retry} retries)", e.message);
                        }
                        e
                    };
                    return outcome.map_err(|(_, e)| retried(e));
                }
            }
        }
    }

    /// Asks `url` (GET, with `client`) until it answers 200 or `timeout` passes; then the last
    /// failure is the cause.
    pub async fn wait_healthy(
        &self,
        client: &Client,
        label: &str,
        url: &Url,
        timeout: Duration,
    ) -> Result<Reply, StepError> {
        let deadline = Instant::now() + timeout;
        let what = format!("GET {url}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let cause = match attempt(
                traced(client.get(url.clone())).timeout(left.min(REQUEST_TIMEOUT)),
                &what,
            )
            .await
            {
                Ok(reply) if reply.status == StatusCode::OK => return Ok(reply),
                Ok(reply) => reply.describe(),
                Err((Failure::Tls, e)) => {
                    // Neither a certificate the demo CA did not issue nor a missing client
                    // certificate will change by waiting.
                    let why = if e.to_string().contains("CertificateRequired") {
                        format!(
                            "the {label} requires a client certificate (--client-cert, --client-key)"
                        )
                    } else {
                        format!("the {label} is not trusted")
                    };
                    return Err(e.context(why));
                }
                Err((_, e)) => e.to_string(),
            };
            if Instant::now() + HEALTH_POLL >= deadline {
                return Err(StepError::with_cause(
                    format!("the {label} was not healthy within {}", humanize(timeout)),
                    cause,
                ));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }
}

/// Adds the current step's W3C trace context (`traceparent`), so the servers' spans join the
/// demo's trace; nothing when telemetry is off.
fn traced(request: RequestBuilder) -> RequestBuilder {
    if !cryptoutil_telemetry::enabled() {
        return request;
    }
    let mut headers = reqwest::header::HeaderMap::new();
    cryptoutil_telemetry::inject(&mut headers);
    request.headers(headers)
}

fn build(tls: &rustls::ClientConfig, cookies: bool) -> Result<Client, String> {
    Client::builder()
        .use_preconfigured_tls(tls.clone())
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("cryptoutil-demo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// One attempt: the reply with its body read (bounded), or the failure's kind and error.
async fn attempt(request: RequestBuilder, what: &str) -> Result<Reply, (Failure, StepError)> {
    let mut response = request.send().await.map_err(|e| classify(&e, what))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err((
                        Failure::Interrupted,
                        StepError::new(format!(
                            "{what}: the response is larger than {} KiB",
                            MAX_BODY / 1024
                        )),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(classify(&e, what)),
        }
    }
    Ok(Reply {
        what: what.to_owned(),
        status,
        headers,
        body,
    })
}

/// The failure kind of a transport error, and an error naming the request and the cause chain.
fn classify(error: &reqwest::Error, what: &str) -> (Failure, StepError) {
    let mut causes: Vec<String> = Vec::new();
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        let text = e.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        // `io::Error::source` skips the error it wraps (rustls's, in a TLS failure): look inside.
        source = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    let kind = if tls {
        Failure::Tls
    } else if error.is_connect() {
        Failure::Connect
    } else {
        Failure::Interrupted
    };
    let message = match kind {
        Failure::Tls => format!("{what}: TLS failed (the demo trusts only the demo CA)"),
        Failure::Connect => format!("{what}: cannot connect"),
        _ if error.is_timeout() => format!("{what}: timed out"),
        _ => format!("{what}: the request failed"),
    };
    // The first entry repeats reqwest's own summary ("error sending request for url (…)").
    let cause = causes
        .split_first()
        .map_or_else(String::new, |(first, rest)| {
            if rest.is_empty() {
                first.clone()
            } else {
                rest.join(": ")
            }
        });
    (kind, StepError::with_cause(message, cause))
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `POST https://…/path`, for messages.
    pub what: String,
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most 1 MiB).
    pub body: Vec<u8>,
}

impl Reply {
    /// This reply if its status is `expected`; otherwise an error naming the request, the
    /// status and what the server said (problem `detail`/`title`, OAuth `error_description`).
    pub fn expect(self, expected: u16) -> Result<Self, StepError> {
        if self.status.as_u16() == expected {
            Ok(self)
        } else {
            Err(StepError::with_cause(
                format!(
                    "{}: expected HTTP {expected}, got {}",
                    self.what,
                    self.status.as_u16()
                ),
                self.describe(),
            ))
        }
    }

    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            StepError::with_cause(
                format!("{}: unexpected response body", self.what),
                e.to_string(),
            )
        })
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, StepError> {
        String::from_utf8(self.body.clone())
            .map_err(|_| StepError::new(format!("{}: the response is not UTF-8 text", self.what)))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The status and what the server said about it, for error causes.
    pub fn describe(&self) -> String {
        let status = format!(
            "HTTP {} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned();
        let said = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                let field = |name: &str| v.get(name).and_then(|x| x.as_str()).map(str::to_owned);
                let error = field("error");
                let text = field("detail")
                    .or_else(|| field("error_description"))
                    .or_else(|| field("title"));
                match (error, text) {
                    (Some(e), Some(t)) => Some(format!("{e}: {t}")),
                    (e, t) => e.or(t),
                }
            });
        match said {
            Some(said) => format!("{status}: {}", truncate(&said, 300)),
            None => status,
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// `30 s`, `1.5 s`, `200 ms`.
pub fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Whether a file exists and can be read, for clear errors before anything starts.
pub fn check_readable(path: &Path, what: &str) -> Result<(), String> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Retries of transient failures (`--retry N`): exponential backoff from `base`, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry; doubled each time.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// `retries` retries, 200 ms doubling up to 5 s.
    pub fn new(retries: u32) -> Self {
        Self {
            retries,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }

    /// The delay before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// What a failed attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (refused, unreachable, DNS, TLS handshake not reached).
    Connect,
    /// The TLS handshake failed (an untrusted certificate does not fix itself).
    Tls,
    /// The request was sent and timed out or broke: it may have been processed.
    Interrupted,
    /// An HTTP status.
    Status(u16),
}

/// Transient failures are retried: connection failures (nothing was sent) and 502/503/504
/// (gateway or server unavailable; the KMS promises nothing changed on 503). Never a 4xx, never
/// a 500, never a request that may have been processed.
pub fn is_transient(failure: Failure) -> bool {
    match failure {
        Failure::Connect => true,
        Failure::Tls | Failure::Interrupted => false,
        Failure::Status(status) => matches!(status, 502..=504),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            what: "POST https://127.0.0.1/x".to_owned(),
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_name_the_request_status_and_what_the_server_said() {
        let e = reply(
            401,
            r#"{"type":"about:blank","title":"Unauthorized","detail":"bad credentials"}"#,
        )
        .expect(200)
        .unwrap_err();
        assert_eq!(
            e.message,
            "POST https://127.0.0.1/x: expected HTTP 200, got 401"
        );
        assert_eq!(
            e.cause.as_deref(),
            Some("HTTP 401 Unauthorized: bad credentials")
        );
        let e = reply(
            400,
            r#"{"error":"invalid_grant","error_description":"spent"}"#,
        )
        .expect(200)
        .unwrap_err();
        assert_eq!(
            e.cause.as_deref(),
            Some("HTTP 400 Bad Request: invalid_grant: spent")
        );
        assert_eq!(
            reply(503, "not json").describe(),
            "HTTP 503 Service Unavailable"
        );
        assert!(reply(201, "").expect(201).is_ok());
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure_and_is_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        let mut policy = RetryPolicy::new(2);
        policy.base = Duration::from_millis(1);
        let http = Http::new(&[pki.root()], None, policy).unwrap();
        let url = format!("https://127.0.0.1:{port}/");
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let e = http
            .send("GET /", |c| {
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                c.get(&url)
            })
            .await
            .unwrap_err();
        assert_eq!(
            attempts.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "1 + 2 retries"
        );
        assert!(e.message.contains("cannot connect"), "{e}");
        assert!(e.message.contains("after 2 retries"), "{e}");
        assert!(e.cause.unwrap().to_lowercase().contains("refused"));
    }

    /// A real HTTPS server (the shared server plumbing) whose `/flaky` answers 503 `failures`
    /// times, then 200; `/missing` is 404.
    async fn flaky_server(
        pki: &cryptoutil_server::DevPki,
        failures: u32,
    ) -> (
        cryptoutil_server::RunningServer,
        cryptoutil_server::TlsRuntime,
        Url,
    ) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let mut settings = cryptoutil_server::config::ServerSettings::default();
        settings.public.port = 0;
        settings.admin.port = 0;
        settings.tls.watch = Some(false);
        pki.apply(&mut settings, "kms");
        let tls = cryptoutil_server::tls_setup::build(&settings, true, None).unwrap();
        let left = Arc::new(AtomicU32::new(failures));
        let router = axum::Router::new().route(
            "/flaky",
            axum::routing::get(move || {
                let left = left.clone();
                async move {
                    let fail = left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if fail {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let server = cryptoutil_server::start(cryptoutil_server::ServerSpec {
            name: "test",
            settings,
            public: router,
            admin_extra: axum::Router::new(),
            checks: Vec::new(),
            tls: tls.setup.clone(),
        })
        .await
        .unwrap();
        let url = Url::parse(&format!("https://127.0.0.1:{}", server.public_addr.port())).unwrap();
        (server, tls, url)
    }

    fn fast(retries: u32) -> RetryPolicy {
        let mut policy = RetryPolicy::new(retries);
        policy.base = Duration::from_millis(1);
        policy
    }

    #[tokio::test]
    async fn unavailable_is_retried_and_client_errors_are_not() {
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        let (server, _tls, base) = flaky_server(&pki, 2).await;
        let http = Http::new(&[pki.root()], None, fast(3)).unwrap();
        let flaky = base.join("/flaky").unwrap();
        let reply = http
            .send("GET /flaky", |c| c.get(flaky.clone()))
            .await
            .unwrap();
        assert_eq!(
            reply.status, 200,
            "two 503s, then success on the third attempt"
        );

        let (server2, _tls2, base2) = flaky_server(&pki, 5).await;
        let flaky = base2.join("/flaky").unwrap();
        let reply = http
            .send("GET /flaky", |c| c.get(flaky.clone()))
            .await
            .unwrap();
        assert_eq!(
            reply.status, 503,
            "retries exhausted: the last answer is reported"
        );

        let attempts = std::sync::atomic::AtomicU32::new(0);
        let missing = base.join("/missing").unwrap();
        let reply = http
            .send("GET /missing", |c| {
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                c.get(missing.clone())
            })
            .await
            .unwrap();
        assert_eq!(reply.status, 404);
        assert_eq!(
            attempts.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a 4xx is never retried"
        );
        server.shutdown();
        server2.shutdown();
        server.wait().await;
        server2.wait().await;
    }

    #[tokio::test]
    async fn a_server_of_another_ca_is_a_tls_failure_that_is_not_retried() {
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        let other = cryptoutil_server::DevPki::generate().unwrap();
        let (server, _tls, base) = flaky_server(&pki, 0).await;
        let http = Http::new(&[other.root()], None, fast(3)).unwrap();
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let url = base.join("/flaky").unwrap();
        let e = http
            .send("GET /flaky", |c| {
                attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                c.get(url.clone())
            })
            .await
            .unwrap_err();
        assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 1, "{e}");
        assert!(e.message.contains("TLS failed"), "{e}");
        assert!(e.cause.unwrap().contains("certificate"));
        let started = Instant::now();
        let e = http
            .wait_healthy(http.api(), "test server", &url, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no waiting for a certificate to change"
        );
        assert!(e.message.contains("not trusted"), "{e}");
        server.shutdown();
        server.wait().await;
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_millis(250)), "250 ms");
        assert_eq!(humanize(Duration::from_secs(30)), "30 s");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn only_connection_failures_and_gateway_statuses_are_transient() {
        assert!(is_transient(Failure::Connect));
        for status in [502, 503, 504] {
            assert!(is_transient(Failure::Status(status)), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 429, 500, 501, 505] {
            assert!(!is_transient(Failure::Status(status)), "{status}");
        }
        assert!(
            !is_transient(Failure::Tls),
            "an untrusted certificate stays untrusted"
        );
        assert!(
            !is_transient(Failure::Interrupted),
            "a request that may have been processed is not repeated"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(3);
        assert_eq!(policy.delay(0), Duration::from_millis(200));
        assert_eq!(policy.delay(1), Duration::from_millis(400));
        assert_eq!(policy.delay(2), Duration::from_millis(800));
        assert_eq!(policy.delay(10), Duration::from_secs(5));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(5));
    }
}
