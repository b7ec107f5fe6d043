//! The issuer's keys: fetched over HTTPS, cached, refreshed with bounds.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cryptoutil_jose::{Jwk, JwsAlgorithm};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{BearerError, IssuerTrust, JwksSource};
use crate::BoxFuture;

/// Largest JWKS or discovery document read (bytes).
pub const MAX_DOCUMENT_LEN: usize = 256 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;
/// Time limit of one HTTP request to the issuer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches an issuer's JWKS document (JSON text).
pub trait JwksFetcher: Send + Sync + fmt::Debug {
    /// Fetches the current JWKS.
    fn fetch(&self) -> BoxFuture<'_, Result<String, BearerError>>;
}

/// Fetches the JWKS over HTTPS (TLS 1.3 with the given trust), through discovery or a URL.
#[derive(Debug)]
pub struct HttpJwksFetcher {
    client: reqwest::Client,
    issuer: String,
    source: JwksSource,
}

impl HttpJwksFetcher {
    /// A fetcher for `trust`'s JWKS.
    ///
    /// # Errors
    /// [`BearerError::Config`] when the HTTP client cannot be built.
    pub fn new(trust: &IssuerTrust, tls: Arc<rustls::ClientConfig>) -> Result<Self, BearerError> {
        Ok(Self {
            client: issuer_client(tls)?,
            issuer: trust.issuer.clone(),
            source: trust.jwks.clone(),
        })
    }

    async fn get(&self, url: &str) -> Result<String, BearerError> {
        get_document(&self.client, url)
            .await
            .map_err(BearerError::JwksUnavailable)
    }

    async fn jwks_uri(&self) -> Result<String, BearerError> {
        discover(&self.client, &self.issuer, "jwks_uri")
            .await
            .map_err(BearerError::JwksUnavailable)
    }
}

/// An HTTPS client for calls to an issuer: `tls` decides whom to trust; no redirects; a time limit.
pub(super) fn issuer_client(
    tls: Arc<rustls::ClientConfig>,
) -> Result<reqwest::Client, BearerError> {
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| BearerError::Config(format!("HTTP client: {e}")))
}

/// GETs a JSON document of at most [`MAX_DOCUMENT_LEN`] bytes; the error names the URL.
pub(super) async fn get_document(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .headers(trace_context())
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    read_body(url, response).await
}

/// The current span's W3C trace context as headers (none when telemetry is off), so the
/// issuer's spans join the trace of the request that made this call.
pub(super) fn trace_context() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    cryptoutil_telemetry::inject(&mut headers);
    headers
}

/// The body of a 200 answer, at most [`MAX_DOCUMENT_LEN`] bytes of UTF-8.
pub(super) async fn read_body(
    url: &str,
    mut response: reqwest::Response,
) -> Result<String, String> {
    let unavailable = |why: String| format!("{url}: {why}");
    if response.status() != reqwest::StatusCode::OK {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_LEN {
            return Err(unavailable(format!("larger than {MAX_DOCUMENT_LEN} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| unavailable("not UTF-8".to_owned()))
}

/// The https URL `member` (`jwks_uri`, `introspection_endpoint`) of `issuer`'s discovery
/// document, whose `issuer` must be exactly `issuer`.
pub(super) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    member: &str,
) -> Result<String, String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let text = get_document(client, &url).await?;
    let bad = |why: &str| format!("{url}: {why}");
    let doc: Value = serde_json::from_str(&text).map_err(|_| bad("not JSON"))?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(bad("its issuer differs from the configured issuer"));
    }
    match doc.get(member).and_then(Value::as_str) {
        Some(uri) if uri.starts_with("https://") => Ok(uri.to_owned()),
        _ => Err(bad(&format!("no https {member}"))),
    }
}

impl JwksFetcher for HttpJwksFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<String, BearerError>> {
        Box::pin(async move {
            let url = match &self.source {
                JwksSource::Url(url) => url.clone(),
                JwksSource::Discovery => self.jwks_uri().await?,
            };
            self.get(&url).await
        })
    }
}

/// `e` with its sources, for diagnostics (reqwest's own text omits the TLS cause).
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

/// Keys of one fetch.
#[derive(Debug)]
struct Snapshot {
    keys: Vec<Arc<Jwk>>,
    fetched: Instant,
}

/// The cache of one issuer's keys.
#[derive(Debug)]
pub(super) struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    ttl: Duration,
    refetch_interval: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held while fetching (one fetch at a time); holds when the last fetch was attempted.
    fetching: Mutex<Option<Instant>>,
}

impl JwksCache {
    pub(super) fn new(trust: &IssuerTrust, fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            fetcher,
            ttl: trust.cache_ttl,
            refetch_interval: trust.refetch_interval,
            current: RwLock::new(None),
            fetching: Mutex::new(None),
        }
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|s| s.clone())
    }

    /// The key for a token with `kid` (empty: none) signed with `alg`.
    pub(super) async fn key_for(
        &self,
        kid: &str,
        alg: JwsAlgorithm,
    ) -> Result<Arc<Jwk>, BearerError> {
        let snapshot = self.usable_snapshot().await?;
        if let Some(key) = find(&snapshot.keys, kid, alg) {
            return Ok(key);
        }
        // An unknown kid: the issuer may have rotated. Refetch, at most once per interval.
        let snapshot = self.refresh(Some(self.refetch_interval)).await?;
        find(&snapshot.keys, kid, alg).ok_or(BearerError::InvalidSignature)
    }

    /// Cached keys younger than the TTL; refreshed when older than half of it (a failure then
    /// keeps the cached keys until the TTL is over).
    async fn usable_snapshot(&self) -> Result<Arc<Snapshot>, BearerError> {
        match self.snapshot() {
            Some(s) if s.fetched.elapsed() < self.ttl / 2 => Ok(s),
            Some(s) if s.fetched.elapsed() < self.ttl => {
                Ok(self.refresh(Some(self.refetch_interval)).await.unwrap_or(s))
            }
            _ => self.refresh(None).await,
        }
    }

    /// Fetches new keys unless another caller just did (then uses theirs) or, with
    /// `min_interval`, unless the last attempt is more recent than that.
    async fn refresh(&self, min_interval: Option<Duration>) -> Result<Arc<Snapshot>, BearerError> {
        let started = Instant::now();
        let mut last_attempt = self.fetching.lock().await;
        let current = self.snapshot();
        if let Some(s) = &current
            && s.fetched >= started
        {
            return Ok(s.clone());
        }
        if let (Some(interval), Some(at), Some(s)) = (min_interval, *last_attempt, &current)
            && at.elapsed() < interval
        {
            return Ok(s.clone());
        }
        *last_attempt = Some(Instant::now());
        let fetched = async {
            let text = self.fetcher.fetch().await?;
            parse_keys(&text)
        }
        .await;
        match fetched {
            Ok(keys) => {
                let snapshot = Arc::new(Snapshot {
                    keys,
                    fetched: Instant::now(),
                });
                if let Ok(mut slot) = self.current.write() {
                    *slot = Some(snapshot.clone());
                }
                Ok(snapshot)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the issuer's JWKS");
                match current {
                    Some(s) if s.fetched.elapsed() < self.ttl => Ok(s),
                    _ => Err(e),
                }
            }
        }
    }

    /// Readiness: usable keys, fetched if needed.
    pub(super) async fn ready(&self) -> Result<usize, BearerError> {
        Ok(self.usable_snapshot().await?.keys.len())
    }
}

/// The usable signature keys of a JWKS: public, at most [`MAX_KEYS`]; keys this build cannot use
/// (unknown types or curves, encryption keys) are skipped, not fatal, as RFC 7517 §5 asks.
fn parse_keys(text: &str) -> Result<Vec<Arc<Jwk>>, BearerError> {
    let bad = |why: &str| BearerError::JwksUnavailable(format!("JWKS {why}"));
    if text.len() > MAX_DOCUMENT_LEN {
        return Err(bad("too large"));
    }
    let doc = cryptoutil_jose::header::parse_object(text.as_bytes(), "JWK set")
        .map_err(|_| bad("is not a JSON object"))?;
    let Some(Value::Array(list)) = doc.get("keys") else {
        return Err(bad("has no keys array"));
    };
    let keys: Vec<Arc<Jwk>> = list
        .iter()
        .filter_map(|k| k.as_object())
        .filter_map(|k| Jwk::from_map(k).ok())
        .filter(|k| !k.is_private() && k.key_use().is_none_or(|u| u == "sig"))
        .take(MAX_KEYS)
        .map(Arc::new)
        .collect();
    if keys.is_empty() {
        return Err(bad("has no usable signature keys"));
    }
    Ok(keys)
}

/// The key with `kid` (or, for a token without `kid`, the only fitting key) that fits `alg`.
fn find(keys: &[Arc<Jwk>], kid: &str, alg: JwsAlgorithm) -> Option<Arc<Jwk>> {
    let mut fitting = keys.iter().filter(|k| fits(k, alg));
    if kid.is_empty() {
        let first = fitting.next()?;
        return fitting.next().is_none().then(|| first.clone());
    }
    fitting.find(|k| k.kid() == Some(kid)).cloned()
}

/// Whether `key` can verify `alg` (its type and curve, and its `alg` member if any).
fn fits(key: &Jwk, alg: JwsAlgorithm) -> bool {
    if key.alg().is_some_and(|a| a != alg.name()) {
        return false;
    }
    use cryptoutil_jose::jwk::KeyMaterial;
    match key.material() {
        KeyMaterial::Rsa(_) => matches!(
            alg,
            JwsAlgorithm::RS256
                | JwsAlgorithm::RS384
                | JwsAlgorithm::RS512
                | JwsAlgorithm::PS256
                | JwsAlgorithm::PS384
                | JwsAlgorithm::PS512
        ),
        KeyMaterial::Ec(ec) => alg.ec_curve() == Some(ec.curve()),
        KeyMaterial::Okp(okp) => {
            alg == JwsAlgorithm::EdDSA && okp.curve() == cryptoutil_jose::OkpCurve::Ed25519
        }
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::{BearerError, parse_keys};

    /// The `kid`s [`parse_keys`] keeps.
    pub(in crate::bearer) fn parse(text: &str) -> Result<Vec<String>, BearerError> {
        Ok(parse_keys(text)?
            .iter()
            .map(|k| k.kid().unwrap_or_default().to_owned())
            .collect())
    }
}
