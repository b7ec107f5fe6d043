//! `cargo xtask load <scenario>`: a closed-loop load generator for the servers.
//!
//! N connections (each its own keep-alive connection, one request in flight at a time) send
//! the scenario's request over and over for a warm-up and then a measured period; every
//! response is checked. Reported: requests/s, errors, latency p50/p99/max, and the CPU time the
//! generator and (when started here) the server used, for HTTP/1.1 and HTTP/2.
//!
//! A scenario is data: how to build one request ([`RequestSpec`]) and how to check one
//! response ([`Check`]), prepared once by [`prepare`] (which may fetch discovery or a token
//! first). The KMS scenarios are in [`kms`]; [`scenarios`] lists every one.
//!
//! Traffic goes only to loopback addresses: the server is started here on 127.0.0.1, or given
//! with `--url` (refused unless it is loopback).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::proc_stats::cpu_seconds;
use crate::server::{Protocol, Ready, ServerProcess, build_release, https_client};

pub mod kms;
mod wire;

const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_WARMUP: Duration = Duration::from_secs(60);
const MAX_CONNECTIONS: usize = 1024;
/// Distinct error messages kept per run (the count covers all of them).
const KEPT_ERRORS: usize = 5;

/// Demo credentials (SPEC §4; demo only).
const KMS_CLIENT: (&str, &str) = ("demo-kms-client", "demo-kms-client-secret");
const INTROSPECTION_CLIENT: (&str, &str) = (
    "kms-introspection-client",
    "kms-introspection-client-secret",
);

/// Which server a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `cryptoutil identity server start`.
    Identity,
    /// `cryptoutil kms server start`.
    Kms,
}

impl Product {
    /// The CLI's name for it (`kms`, `identity`).
    pub fn command(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Kms => "kms",
        }
    }
}

/// The Identity and harness scenarios: name, the server they need (`None`: any, chosen by
/// `--server`), and what one request does. The KMS's are in [`kms`]; [`scenarios`] lists all.
const OTHER_SCENARIOS: &[(&str, Option<Product>, &str)] = &[
    (
        "identity-client-credentials",
        Some(Product::Identity),
        "POST token endpoint grant_type=client_credentials (demo-kms-client, Basic); 200 with access_token",
    ),
    (
        "identity-introspect",
        Some(Product::Identity),
        "POST introspection endpoint with one client_credentials token (kms-introspection-client, Basic); 200 with active=true",
    ),
    (
        "identity-jwks",
        Some(Product::Identity),
        "GET jwks_uri (from discovery); 200 with a non-empty key set",
    ),
    (
        "baseline-livez",
        None,
        "GET admin /admin/v1/livez; 200 (the harness's own ceiling: TLS + HTTP, no application work)",
    ),
];

/// Every scenario: name, the server it needs (`None`: any), and what one request does.
pub fn scenarios() -> Vec<(&'static str, Option<Product>, String)> {
    kms::scenarios()
        .map(|(name, what)| (name, Some(Product::Kms), what))
        .chain(
            OTHER_SCENARIOS
                .iter()
                .map(|(name, product, what)| (*name, *product, (*what).to_owned())),
        )
        .collect()
}

/// The server scenario `name` needs (`None`: unknown, or any).
pub fn product_of(name: &str) -> Option<Product> {
    scenarios()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .and_then(|(_, p, _)| p)
}

/// One request, built anew for every send.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers (authorization, content type, ...).
    pub headers: HeaderMap,
    /// Body, if any.
    pub body: Option<Vec<u8>>,
}

impl RequestSpec {
    /// A form POST with HTTP Basic client authentication (RFC 6749 §2.3.1).
    pub fn post_form(url: &str, client: (&str, &str), form: &[(&str, &str)]) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Ok(value) = HeaderValue::from_str(&basic(client.0, client.1)) {
            headers.insert(AUTHORIZATION, value);
        }
        Self {
            method: Method::POST,
            url: url.to_owned(),
            headers,
            body: Some(form_encode(form).into_bytes()),
        }
    }

    /// A plain GET.
    pub fn get(url: &str) -> Self {
        Self {
            method: Method::GET,
            url: url.to_owned(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    fn build(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let request = client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone());
        match &self.body {
            Some(body) => request.body(body.clone()),
            None => request,
        }
    }
}

/// Checks one response (status and body); `Err` carries why it is wrong.
pub type Check = Box<dyn Fn(StatusCode, &[u8]) -> Result<(), String> + Send + Sync>;

/// A prepared scenario.
pub struct Scenario {
    /// Its name (from [`scenarios`]).
    pub name: &'static str,
    /// The request sent over and over.
    pub request: RequestSpec,
    /// The check every response must pass.
    pub check: Check,
}

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    /// Public listener.
    pub public_url: String,
    /// Admin listener, when known.
    pub admin_url: Option<String>,
    /// CA certificate to trust.
    pub ca_cert: PathBuf,
}

/// Prepares scenario `name` against `target` (discovery, a token, ...).
pub async fn prepare(name: &str, target: &Target) -> Result<Scenario, String> {
    let client = https_client(&target.ca_cert, Protocol::Auto)?;
    if kms::is_kms(name) {
        return kms::prepare(name, target, &client).await;
    }
    match name {
        "identity-client-credentials" => {
            let meta = discovery(&client, &target.public_url).await?;
            let token_endpoint = endpoint(&meta, "token_endpoint")?;
            Ok(Scenario {
                name: "identity-client-credentials",
                request: client_credentials_request(&token_endpoint),
                check: Box::new(|status, body| {
                    let json = expect_json(status, body)?;
                    match json.get("access_token").and_then(serde_json::Value::as_str) {
                        Some(t) if !t.is_empty() => Ok(()),
                        _ => Err("no access_token in the response".to_owned()),
                    }
                }),
            })
        }
        "identity-introspect" => {
            let meta = discovery(&client, &target.public_url).await?;
            let token_endpoint = endpoint(&meta, "token_endpoint")?;
            let introspection_endpoint = endpoint(&meta, "introspection_endpoint")?;
            let response = send(&client, &client_credentials_request(&token_endpoint)).await?;
            let json = expect_json(response.0, &response.1)
                .map_err(|e| format!("obtaining a token to introspect: {e}"))?;
            let token = json
                .get("access_token")
                .and_then(serde_json::Value::as_str)
                .ok_or("obtaining a token to introspect: no access_token")?
                .to_owned();
            Ok(Scenario {
                name: "identity-introspect",
                request: RequestSpec::post_form(
                    &introspection_endpoint,
                    INTROSPECTION_CLIENT,
                    &[("token", &token)],
                ),
                check: Box::new(|status, body| {
                    let json = expect_json(status, body)?;
                    if json.get("active") == Some(&serde_json::Value::Bool(true)) {
                        Ok(())
                    } else {
                        Err(format!("not active: {}", truncate(body)))
                    }
                }),
            })
        }
        "identity-jwks" => {
            let meta = discovery(&client, &target.public_url).await?;
            Ok(Scenario {
                name: "identity-jwks",
                request: RequestSpec::get(&endpoint(&meta, "jwks_uri")?),
                check: Box::new(|status, body| {
                    let json = expect_json(status, body)?;
                    match json.get("keys").and_then(serde_json::Value::as_array) {
                        Some(keys) if !keys.is_empty() => Ok(()),
                        _ => Err(format!("no keys: {}", truncate(body))),
                    }
                }),
            })
        }
        "baseline-livez" => {
            let admin = target
                .admin_url
                .as_deref()
                .ok_or("baseline-livez needs the admin URL (--admin-url with --url)")?;
            Ok(Scenario {
                name: "baseline-livez",
                request: RequestSpec::get(&format!("{admin}/admin/v1/livez")),
                check: Box::new(|status, body| {
                    if status == StatusCode::OK {
                        Ok(())
                    } else {
                        Err(format!("status {status}: {}", truncate(body)))
                    }
                }),
            })
        }
        other => Err(format!("unknown scenario {other:?}")),
    }
}

fn client_credentials_request(token_endpoint: &str) -> RequestSpec {
    RequestSpec::post_form(
        token_endpoint,
        KMS_CLIENT,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "kms:read kms:write"),
        ],
    )
}

async fn discovery(
    client: &reqwest::Client,
    public_url: &str,
) -> Result<serde_json::Value, String> {
    let (status, body) = send(
        client,
        &RequestSpec::get(&format!("{public_url}/.well-known/openid-configuration")),
    )
    .await?;
    expect_json(status, &body).map_err(|e| format!("discovery: {e}"))
}

fn endpoint(meta: &serde_json::Value, key: &str) -> Result<String, String> {
    meta.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("discovery lacks {key}"))
}

async fn send(
    client: &reqwest::Client,
    spec: &RequestSpec,
) -> Result<(StatusCode, Vec<u8>), String> {
    let response = spec
        .build(client)
        .send()
        .await
        .map_err(|e| format!("{} {}: {}", spec.method, spec.url, error_chain(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        format!(
            "{} {}: reading the body: {}",
            spec.method,
            spec.url,
            error_chain(&e)
        )
    })?;
    Ok((status, body.to_vec()))
}

/// An error and its sources, `: `-separated (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn expect_json(status: StatusCode, body: &[u8]) -> Result<serde_json::Value, String> {
    if status != StatusCode::OK {
        return Err(format!("status {status}: {}", truncate(body)));
    }
    serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", truncate(body)))
}

fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    text.replace(['\n', '\r'], " ")
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_escape(id), form_escape(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `application/x-www-form-urlencoded` serialisation.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Latency statistics

/// Sub-buckets per power of two: values are kept within 1/128 (< 0.8 %) of their true value.
const SUB_BITS: u32 = 7;
const SUB_COUNT: u64 = 1 << SUB_BITS;

/// A log-linear histogram of non-negative integers (microseconds here): exact below 128, then
/// 128 buckets per power of two. Memory grows with the largest value, not with the count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Histogram {
    fn index(value: u64) -> usize {
        if value < SUB_COUNT {
            return value as usize;
        }
        let msb = 63 - value.leading_zeros();
        let shift = msb - SUB_BITS;
        let sub = (value >> shift) & (SUB_COUNT - 1);
        ((u64::from(shift) + 1) * SUB_COUNT + sub) as usize
    }

    /// The smallest and largest value of bucket `index`.
    fn bounds(index: usize) -> (u64, u64) {
        let index = index as u64;
        if index < SUB_COUNT {
            return (index, index);
        }
        let shift = index / SUB_COUNT - 1;
        let sub = index % SUB_COUNT;
        let low = (SUB_COUNT + sub) << shift;
        (low, low + ((1u64 << shift) - 1))
    }

    /// Adds one value.
    pub fn record(&mut self, value: u64) {
        let i = Self::index(value);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.total == 0 || value < self.min {
            self.min = value;
        }
        self.max = self.max.max(value);
        self.total += 1;
        self.sum += u128::from(value);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        if self.total == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.total += other.total;
        self.sum += other.sum;
    }

    /// Largest value, if any.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// Mean, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The `p`-th percentile (nearest rank: the smallest value with at least `p` % of the values
    /// at or below it), as the middle of its bucket clamped to the observed min and max.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let p = p.clamp(0.0, 100.0);
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, high) = Self::bounds(i);
                return Some((low + (high - low) / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

/// `cargo xtask load` options.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadArgs {
    /// Scenario name.
    pub scenario: String,
    /// Measured period per protocol.
    pub duration: Duration,
    /// Warm-up before each measured period.
    pub warmup: Duration,
    /// Concurrent connections.
    pub connections: usize,
    /// Protocols measured.
    pub protocols: Vec<Protocol>,
    /// A running server instead of starting one.
    pub url: Option<String>,
    /// Its admin URL.
    pub admin_url: Option<String>,
    /// Its CA certificate.
    pub ca_cert: Option<PathBuf>,
    /// The server to start for scenarios that work with either.
    pub server: Option<Product>,
}

/// The usage text.
pub fn usage() -> String {
    let mut text = String::from(
        "usage: cargo xtask load <scenario> [--duration 10s] [--warmup 2s] [--connections 64]\n\
         \x20                        [--http 1|2|both] [--url URL --ca-cert FILE [--admin-url URL]]\n\
         \x20                        [--server identity|kms]\n\
         Starts the release server (--dev --demo) unless --url names a running one (loopback only).\n\
         scenarios:\n",
    );
    for (name, _, what) in scenarios() {
        text.push_str(&format!("  {name:<29} {what}\n"));
    }
    text
}

/// Parses `10s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (use 10s, 500ms, 2m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("bad duration unit in {text:?} (use ms, s or m)")),
    }
}

/// Parses the arguments after `load`.
pub fn parse_args(args: &[String]) -> Result<LoadArgs, String> {
    let mut it = args.iter();
    let scenario = it.next().ok_or_else(usage)?.clone();
    if !scenarios().iter().any(|(n, _, _)| *n == scenario) {
        return Err(format!("unknown scenario {scenario:?}\n{}", usage()));
    }
    let mut parsed = LoadArgs {
        scenario,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        connections: 64,
        protocols: vec![Protocol::Http1, Protocol::Http2],
        url: None,
        admin_url: None,
        ca_cert: None,
        server: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--duration" => parsed.duration = parse_duration(&value()?)?,
            "--warmup" => parsed.warmup = parse_duration(&value()?)?,
            "--connections" => {
                parsed.connections = value()?
                    .parse()
                    .map_err(|_| "--connections needs a number".to_owned())?;
            }
            "--http" => {
                parsed.protocols = match value()?.as_str() {
                    "1" | "1.1" => vec![Protocol::Http1],
                    "2" => vec![Protocol::Http2],
                    "both" => vec![Protocol::Http1, Protocol::Http2],
                    other => return Err(format!("--http {other}: use 1, 2 or both")),
                };
            }
            "--url" => parsed.url = Some(loopback_url(&value()?)?),
            "--admin-url" => parsed.admin_url = Some(loopback_url(&value()?)?),
            "--ca-cert" => parsed.ca_cert = Some(PathBuf::from(value()?)),
            "--server" => {
                parsed.server = Some(match value()?.as_str() {
                    "identity" => Product::Identity,
                    "kms" => Product::Kms,
                    other => return Err(format!("--server {other}: use identity or kms")),
                });
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    if parsed.duration.is_zero() || parsed.duration > MAX_DURATION {
        return Err(format!("--duration must be within (0, {MAX_DURATION:?}]"));
    }
    if parsed.warmup > MAX_WARMUP {
        return Err(format!("--warmup must be at most {MAX_WARMUP:?}"));
    }
    if parsed.connections == 0 || parsed.connections > MAX_CONNECTIONS {
        return Err(format!(
            "--connections must be within 1..={MAX_CONNECTIONS}"
        ));
    }
    if parsed.url.is_some() != parsed.ca_cert.is_some() {
        return Err("--url and --ca-cert go together".to_owned());
    }
    Ok(parsed)
}

/// The URL without a trailing slash, if its host is a loopback address (load goes nowhere else).
fn loopback_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("bad URL {text:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if url.scheme() != "https" || !loopback {
        return Err(format!(
            "{text}: load is only sent to https:// loopback addresses (127.0.0.0/8, ::1, localhost)"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

// ---------------------------------------------------------------------------------------------
// Running

/// What one connection saw during the measured period.
#[derive(Debug, Default)]
struct ConnectionStats {
    latency_us: Histogram,
    ok: u64,
    errors: u64,
    first_errors: Vec<String>,
    finished: Option<Instant>,
}

/// The result of one measured period.
#[derive(Debug)]
pub struct Report {
    /// HTTP version used.
    pub protocol: Protocol,
    /// Checked-good responses.
    pub ok: u64,
    /// Failed requests (transport errors and failed checks).
    pub errors: u64,
    /// Some of the error messages.
    pub first_errors: Vec<String>,
    /// Latency of good responses, microseconds.
    pub latency_us: Histogram,
    /// Measured wall time.
    pub elapsed: Duration,
    /// CPU seconds used by this process (the generator) while measuring.
    pub generator_cpu: Option<f64>,
    /// CPU seconds used by the server while measuring (when it runs here).
    pub server_cpu: Option<f64>,
}

impl Report {
    /// Good responses per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

async fn connection(
    mut wire: Option<wire::Connection>,
    template: Arc<wire::Template>,
    tls: Arc<rustls::ClientConfig>,
    scenario: Arc<Scenario>,
    warm_until: Instant,
    until: Instant,
) -> ConnectionStats {
    let mut stats = ConnectionStats::default();
    let mut warming = true;
    loop {
        let now = Instant::now();
        if warming && now >= warm_until {
            warming = false;
            stats = ConnectionStats::default();
        }
        if now >= until {
            break;
        }
        let started = Instant::now();
        // A connection the server closed is opened again (and counted as the failed request).
        let open = match wire.take().filter(wire::Connection::is_open) {
            Some(open) => Ok(open),
            None => wire::Connection::open(&template, &tls).await,
        };
        let outcome = match open {
            Ok(mut open) => {
                let sent = open.send(&template).await;
                wire = Some(open);
                match sent {
                    Ok((status, body)) => (scenario.check)(status, &body),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => {
                stats.ok += 1;
                stats.latency_us.record(micros);
            }
            Err(e) => {
                stats.errors += 1;
                if stats.first_errors.len() < KEPT_ERRORS && !stats.first_errors.contains(&e) {
                    stats.first_errors.push(e);
                }
                // Do not spin on a server that is gone.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    stats.finished = Some(Instant::now());
    stats
}

/// Warms up, then measures `scenario` over `connections` connections of `protocol`.
pub async fn measure(
    scenario: Arc<Scenario>,
    ca_cert: &std::path::Path,
    protocol: Protocol,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
) -> Result<Report, String> {
    let template = Arc::new(wire::Template::new(&scenario.request)?);
    let tls = Arc::new(crate::server::client_tls(ca_cert, protocol)?);
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(wire::Connection::open(&template, &tls).await?);
    }
    let start = Instant::now();
    let warm_until = start + warmup;
    let until = warm_until + duration;
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|c| {
            tokio::spawn(connection(
                Some(c),
                Arc::clone(&template),
                Arc::clone(&tls),
                Arc::clone(&scenario),
                warm_until,
                until,
            ))
        })
        .collect();
    tokio::time::sleep_until(warm_until.into()).await;
    let cpu_before = (
        cpu_seconds("self"),
        server_pid.and_then(|p| cpu_seconds(&p.to_string())),
    );
    let mut total = ConnectionStats::default();
    let mut last = warm_until;
    for task in tasks {
        let stats = task
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        total.ok += stats.ok;
        total.errors += stats.errors;
        total.latency_us.merge(&stats.latency_us);
        for e in stats.first_errors {
            if total.first_errors.len() < KEPT_ERRORS && !total.first_errors.contains(&e) {
                total.first_errors.push(e);
            }
        }
        if let Some(f) = stats.finished {
            last = last.max(f);
        }
    }
    let cpu_after = (
        cpu_seconds("self"),
        server_pid.and_then(|p| cpu_seconds(&p.to_string())),
    );
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    Ok(Report {
        protocol,
        ok: total.ok,
        errors: total.errors,
        first_errors: total.first_errors,
        latency_us: total.latency_us,
        elapsed: last.saturating_duration_since(warm_until),
        generator_cpu: delta(cpu_before.0, cpu_after.0),
        server_cpu: delta(cpu_before.1, cpu_after.1),
    })
}

fn ms(micros: Option<u64>) -> String {
    micros.map_or_else(
        || "-".to_owned(),
        |us| format!("{:.2} ms", us as f64 / 1000.0),
    )
}

fn print_report(report: &Report) {
    let cores = |cpu: Option<f64>| {
        cpu.map_or_else(
            || "n/a".to_owned(),
            |s| format!("{:.2} cores", s / report.elapsed.as_secs_f64().max(1e-9)),
        )
    };
    println!(
        "    {:<8} {:>9.0} req/s  ok {:>8}  errors {:>5}  p50 {:>9}  p99 {:>9}  mean {:>9}  max {:>9}  cpu: generator {}, server {}",
        report.protocol.label(),
        report.rate(),
        report.ok,
        report.errors,
        ms(report.latency_us.percentile(50.0)),
        ms(report.latency_us.percentile(99.0)),
        ms(report.latency_us.mean().map(|m| m.round() as u64)),
        ms(report.latency_us.max()),
        cores(report.generator_cpu),
        cores(report.server_cpu),
    );
    for e in &report.first_errors {
        println!("             error: {e}");
    }
}

/// `cargo xtask load <scenario> ...`.
pub fn load(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let product = product_of(&args.scenario)
        .or(args.server)
        .unwrap_or(Product::Identity);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    let server = match (&args.url, &args.ca_cert) {
        (Some(_), Some(_)) => None,
        _ => {
            let binary = build_release()?;
            Some(ServerProcess::start_for_load(&binary, product.command())?)
        }
    };
    let target = match (&server, &args.url, &args.ca_cert) {
        (Some(s), _, _) => target_of(&s.ready),
        (None, Some(url), Some(ca)) => Target {
            public_url: url.clone(),
            admin_url: args.admin_url.clone(),
            ca_cert: ca.clone(),
        },
        _ => return Err("no server".to_owned()),
    };
    let server_pid = server.as_ref().map(ServerProcess::pid);

    let result = runtime.block_on(async {
        let scenario = Arc::new(prepare(&args.scenario, &target).await?);
        println!(
            "==> load {}: {} connections, {:?} warm-up + {:?} measured per protocol, against {}",
            scenario.name, args.connections, args.warmup, args.duration, target.public_url
        );
        let mut reports = Vec::new();
        for &protocol in &args.protocols {
            let report = measure(
                Arc::clone(&scenario),
                &target.ca_cert,
                protocol,
                args.connections,
                args.warmup,
                args.duration,
                server_pid,
            )
            .await?;
            print_report(&report);
            reports.push(report);
        }
        Ok::<_, String>(reports)
    });
    let stopped = match server {
        Some(s) => runtime.block_on(s.shutdown()),
        None => Ok(()),
    };
    let reports = result?;
    if let Some(best) = reports
        .iter()
        .filter(|r| r.ok > 0)
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .filter(|_| reports.len() > 1)
    {
        println!(
            "    better: {} at {:.0} req/s",
            best.protocol.label(),
            best.rate()
        );
    }
    println!(
        "    note: the load generator and the server share this {cores}-core machine; the CPU \
         the generator uses is taken from the server, so these rates are a lower bound of what \
         the server alone would sustain. Closed loop: {} requests in flight at most.",
        args.connections
    );
    stopped?;
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let ok: u64 = reports.iter().map(|r| r.ok).sum();
    if errors > 0 {
        Err(format!(
            "{errors} request(s) failed (transport error or failed check)"
        ))
    } else if ok == 0 {
        Err("no request succeeded".to_owned())
    } else {
        Ok(())
    }
}

fn target_of(ready: &Ready) -> Target {
    Target {
        public_url: ready.public_url.clone(),
        admin_url: Some(ready.admin_url.clone()),
        ca_cert: ready.ca_cert.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        let mut previous = None;
        for value in (0..5000u64).chain([u64::MAX / 2, u64::MAX]) {
            let i = Histogram::index(value);
            let (low, high) = Histogram::bounds(i);
            assert!(low <= value && value <= high, "{value} in [{low}, {high}]");
            // Relative width under 1/128 above the exact range.
            assert!((high - low) as f64 <= (low as f64 / 128.0).max(0.0) + 0.5);
            if let Some(p) = previous.filter(|_| value < 5000) {
                assert!(
                    i == p || i == p + 1,
                    "index jumped from {p} to {i} at {value}"
                );
            }
            if value < 5000 {
                previous = Some(i);
            }
        }
        assert_eq!(Histogram::index(127), 127);
        assert_eq!(Histogram::index(128), 128);
        assert_eq!(Histogram::index(256), 256);
    }

    #[test]
    fn percentiles_are_exact_for_small_values_and_within_one_percent_otherwise() {
        let mut small = Histogram::default();
        for v in 1..=100 {
            small.record(v);
        }
        assert_eq!(small.percentile(50.0), Some(50));
        assert_eq!(small.percentile(99.0), Some(99));
        assert_eq!(small.percentile(100.0), Some(100));
        assert_eq!(small.percentile(0.0), Some(1));
        assert_eq!(small.mean(), Some(50.5));

        let mut large = Histogram::default();
        for v in 1..=100_000u64 {
            large.record(v * 10); // 10 µs .. 1 s
        }
        for (p, exact) in [(50.0, 500_000.0), (99.0, 990_000.0), (99.9, 999_000.0)] {
            let got = large.percentile(p).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.01, "p{p}: {got} vs {exact}");
        }
        assert_eq!(large.max(), Some(1_000_000));
        assert_eq!(large.percentile(100.0), Some(1_000_000));
    }

    #[test]
    fn skewed_distribution_tail() {
        let mut h = Histogram::default();
        for _ in 0..990 {
            h.record(1_000);
        }
        for _ in 0..10 {
            h.record(50_000);
        }
        let p50 = h.percentile(50.0).unwrap();
        assert!((p50 as f64 - 1_000.0).abs() < 10.0, "{p50}");
        let p99 = h.percentile(99.0).unwrap();
        assert!(
            (p99 as f64 - 1_000.0).abs() < 10.0,
            "p99 is still the 990th value: {p99}"
        );
        let p999 = h.percentile(99.9).unwrap();
        assert!((p999 as f64 - 50_000.0).abs() < 500.0, "{p999}");
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        let mut all = Histogram::default();
        for v in 0..10_000u64 {
            let x = (v * 7919) % 200_000;
            if v % 3 == 0 { &mut a } else { &mut b }.record(x);
            all.record(x);
        }
        let mut merged = Histogram::default();
        merged.merge(&a);
        merged.merge(&Histogram::default());
        merged.merge(&b);
        assert_eq!(merged, all);
    }

    #[test]
    fn empty_histogram_has_no_statistics() {
        let h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        assert_eq!(h.max(), None);
        assert_eq!(h.mean(), None);
    }

    #[test]
    fn durations_and_arguments_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10h").is_err());

        let args: Vec<String> = [
            "identity-introspect",
            "--duration",
            "5s",
            "--connections",
            "8",
            "--http",
            "2",
            "--url",
            "https://127.0.0.1:8443/",
            "--ca-cert",
            "/tmp/ca.pem",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse_args(&args).unwrap();
        assert_eq!(parsed.duration, Duration::from_secs(5));
        assert_eq!(parsed.connections, 8);
        assert_eq!(parsed.protocols, vec![Protocol::Http2]);
        assert_eq!(parsed.url.as_deref(), Some("https://127.0.0.1:8443"));

        let defaults = parse_args(&["identity-client-credentials".to_owned()]).unwrap();
        assert_eq!(defaults.connections, 64);
        assert_eq!(defaults.duration, Duration::from_secs(10));
        assert_eq!(defaults.protocols, vec![Protocol::Http1, Protocol::Http2]);

        for bad in [
            &["nope"][..],
            &["identity-introspect", "--connections", "0"],
            &["identity-introspect", "--duration", "11m"],
            &["identity-introspect", "--url", "https://10.0.0.1:8443"],
            &["identity-introspect", "--url", "https://example.com"],
            &["identity-introspect", "--url", "http://127.0.0.1:1"],
            &["identity-introspect", "--url", "https://127.0.0.1:1"],
            &["identity-introspect", "--bogus"],
        ] {
            let args: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
            assert!(parse_args(&args).is_err(), "{bad:?}");
        }
        assert!(loopback_url("https://[::1]:8443").is_ok());
        assert!(loopback_url("https://localhost:8443").is_ok());
        assert!(loopback_url("https://127.1.2.3:8443").is_ok());
    }

    #[test]
    fn basic_credentials_and_forms_are_encoded() {
        // base64("demo-kms-client:demo-kms-client-secret")
        assert_eq!(
            basic("demo-kms-client", "demo-kms-client-secret"),
            "Basic ZGVtby1rbXMtY2xpZW50OmRlbW8ta21zLWNsaWVudC1zZWNyZXQ="
        );
        // RFC 6749 §2.3.1: the id and secret are form-encoded first.
        assert_eq!(
            basic("a:b", "p w"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("a%3Ab:p+w")
            )
        );
        assert_eq!(
            form_encode(&[
                ("grant_type", "client_credentials"),
                ("scope", "kms:read kms:write")
            ]),
            "grant_type=client_credentials&scope=kms%3Aread+kms%3Awrite"
        );
    }
}
