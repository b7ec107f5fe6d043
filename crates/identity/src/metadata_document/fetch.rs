//! Fetching a document: HTTPS with our rustls configuration, the host resolved here and checked
//! against [`super::address`], the connection pinned to the checked address (so DNS rebinding
//! cannot swap it), no proxy, no redirects, bounded time and size.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cryptoutil_tls::rustls::ClientConfig;
use reqwest::header;
use url::Url;

use super::DocumentError;
use super::address::is_public;
use super::caching::{Freshness, freshness};

/// Most addresses of one host looked at.
const MAX_ADDRESSES: usize = 16;

/// How documents are fetched.
#[derive(Clone)]
pub struct Fetcher {
    tls: Arc<ClientConfig>,
    timeout: Duration,
    max_size: usize,
    allow_private: bool,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

/// A fetched body and what its headers say about reuse.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body (at most the configured size).
    pub body: Vec<u8>,
    /// From `Cache-Control`, `Expires` and `Date`.
    pub freshness: Freshness,
}

impl Fetcher {
    /// A fetcher over `tls` (a client configuration of [`cryptoutil_tls::client_config`]).
    pub fn new(
        tls: Arc<ClientConfig>,
        timeout: Duration,
        max_size: usize,
        allow_private: bool,
    ) -> Self {
        Self {
            tls,
            timeout,
            max_size,
            allow_private,
        }
    }

    /// GETs `url` (already checked by [`super::client_id::parse`]) as `application/json`,
    /// the whole exchange within the timeout.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, DocumentError> {
        match tokio::time::timeout(self.timeout, self.fetch_unbounded(url)).await {
            Ok(result) => result,
            Err(_) => Err(DocumentError::Fetch(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    async fn fetch_unbounded(&self, url: &Url) -> Result<Fetched, DocumentError> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| DocumentError::Fetch("no port".to_owned()))?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured((*self.tls).clone())
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .http1_only();
        let address = match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip))?,
            Some(url::Host::Domain(domain)) => {
                let address = self.resolve(domain, port).await?;
                builder = builder.resolve(domain, SocketAddr::new(address, port));
                address
            }
            None => return Err(DocumentError::Fetch("no host".to_owned())),
        };
        let client = builder
            .build()
            .map_err(|e| DocumentError::Fetch(format!("HTTP client: {e}")))?;
        let mut response = client
            .get(url.as_str())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| DocumentError::Fetch(format!("{address}: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(DocumentError::Fetch(format!(
                "answered {status}: redirects are not followed"
            )));
        }
        if status != reqwest::StatusCode::OK {
            return Err(DocumentError::Fetch(format!("answered {status}")));
        }
        let headers = response.headers();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(DocumentError::Fetch(format!(
                "content type {:?} is not application/json",
                content_type.chars().take(80).collect::<String>()
            )));
        }
        let cache_control: Vec<&str> = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let freshness = freshness(
            &cache_control,
            text(header::EXPIRES),
            text(header::DATE),
            SystemTime::now(),
        );
        if response
            .content_length()
            .is_some_and(|n| n > self.max_size as u64)
        {
            return Err(DocumentError::TooLarge(self.max_size));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DocumentError::Fetch(format!("reading the body: {}", error_chain(&e))))?
        {
            if body.len() + chunk.len() > self.max_size {
                return Err(DocumentError::TooLarge(self.max_size));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, freshness })
    }

    /// Resolves `domain` and checks every address it has (one private address among public
    /// ones is refused too: which one a connection uses is not ours to choose then). Returns
    /// the address to connect to.
    async fn resolve(&self, domain: &str, port: u16) -> Result<IpAddr, DocumentError> {
        let addresses: Vec<IpAddr> = tokio::net::lookup_host((domain, port))
            .await
            .map_err(|e| DocumentError::Fetch(format!("cannot resolve the host: {e}")))?
            .take(MAX_ADDRESSES)
            .map(|a| a.ip())
            .collect();
        let first = *addresses
            .first()
            .ok_or_else(|| DocumentError::Fetch("the host has no address".to_owned()))?;
        for address in &addresses {
            self.check(*address)?;
        }
        Ok(first)
    }

    /// `address` when fetching from it is allowed.
    fn check(&self, address: IpAddr) -> Result<IpAddr, DocumentError> {
        if self.allow_private || is_public(address) {
            Ok(address)
        } else {
            Err(DocumentError::PrivateAddress(address))
        }
    }
}

/// `application/json` or a `+json` type, parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// An error with its sources (reqwest's own message is only the outermost).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/client-metadata+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "",
            "text/html",
            "text/json",
            "application/jsonp",
            "application/xml",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
