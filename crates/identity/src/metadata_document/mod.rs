//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
//! authorization spec uses them): a `client_id` that is an `https://` URL names a JSON document
//! of the client's metadata. [`MetadataDocuments`] fetches it ([`fetch`]: pinned, checked
//! addresses, no redirects, bounded), checks it ([`document`]) and caches the client or the
//! failure ([`caching`] reads the HTTP caching headers). The client registry calls it, so the
//! authorization, PAR, token and consent endpoints all see the same client.
//!
//! No HTTP framework types here: the fetch is a client (reqwest), the result a [`Client`].

pub mod address;
pub mod caching;
pub mod client_id;
pub mod document;
pub mod fetch;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::config::MetadataDocumentSettings;
use crate::model::Client;
use document::DocumentPolicy;
use fetch::Fetcher;

pub use client_id::is_url;

/// Most fetches running at once (documents and `jwks_uri`s): a burst of unknown client ids
/// waits instead of opening connections without bound.
const MAX_CONCURRENT_FETCHES: usize = 8;

/// Why a metadata document client cannot be used (logged; the request fails as for an unknown
/// client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The `client_id` is not a URL a document may be fetched from.
    #[error("client_id {0}")]
    InvalidClientId(String),
    /// The host resolves to an address fetches are not allowed to.
    #[error("the host resolves to {0}, a non-public address (allow_private_addresses is off)")]
    PrivateAddress(IpAddr),
    /// The fetch failed (connection, TLS, status, redirect, content type, time).
    #[error("fetch failed: {0}")]
    Fetch(String),
    /// The body is larger than the limit.
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    /// The document's `client_id` is not exactly the URL it was fetched from.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// The document is not valid client metadata, or asks for what is not allowed.
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// Too many fetches are running.
    #[error("too many documents are being fetched; try again")]
    Busy,
}

/// A cached outcome and until when it is used.
#[derive(Debug, Clone)]
struct Entry {
    until: Instant,
    client: Option<Arc<Client>>,
}

/// Metadata document clients: fetched, checked and cached.
#[derive(Debug)]
pub struct MetadataDocuments {
    fetcher: Fetcher,
    allowed_scopes: Vec<String>,
    audiences: Vec<String>,
    min_lifetime: Duration,
    max_lifetime: Duration,
    failure_lifetime: Duration,
    timeout: Duration,
    cache: Mutex<LruCache<String, Entry>>,
    fetches: Semaphore,
}

impl MetadataDocuments {
    /// Documents per `settings` (whether they are enabled is the caller's business). Fails when
    /// the trust anchors cannot be loaded.
    pub fn new(settings: &MetadataDocumentSettings) -> Result<Self, String> {
        let mut roots = cryptoutil_tls::rustls::RootCertStore::empty();
        if settings.public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(ca_file) = &settings.ca_file {
            let anchors = cryptoutil_tls::TrustConfig::from_ca_files(&[ca_file])
                .map_err(|e| format!("client_id_metadata_documents.ca_file: {e}"))?;
            roots.roots.extend(anchors.anchors().roots.iter().cloned());
        }
        let tls =
            cryptoutil_tls::client_config(cryptoutil_tls::TrustConfig::from_roots(roots), None)
                .map_err(|e| format!("client_id_metadata_documents: {e}"))?;
        Ok(Self {
            fetcher: Fetcher::new(
                Arc::new(tls),
                settings.timeout.get(),
                settings.max_document_size,
                settings.allow_private_addresses,
            ),
            allowed_scopes: settings.allowed_scopes.clone(),
            audiences: settings.audiences.clone(),
            min_lifetime: settings.min_cache_lifetime.get(),
            max_lifetime: settings.max_cache_lifetime.get(),
            failure_lifetime: settings.failure_cache_lifetime.get(),
            timeout: settings.timeout.get(),
            cache: Mutex::new(LruCache::new(settings.cache_capacity.max(1))),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// The client described by the document at `client_id` (cached), or `None` when it cannot
    /// be used: then the request fails as for an unknown client, and why is logged.
    pub async fn client(&self, client_id: &str) -> Option<Arc<Client>> {
        let url = match client_id::parse(client_id) {
            Ok(url) => url,
            Err(e) => {
                tracing::info!(reason = %e, "metadata document client refused");
                return None;
            }
        };
        if let Some(entry) = self.cached(client_id) {
            return entry;
        }
        // Wait for a fetch slot no longer than one fetch may take; then look again (another
        // request may have fetched the same document meanwhile).
        let Ok(Ok(_permit)) = tokio::time::timeout(self.timeout, self.fetches.acquire()).await
        else {
            tracing::warn!(client_id, reason = %DocumentError::Busy, "metadata document not fetched");
            return None;
        };
        if let Some(entry) = self.cached(client_id) {
            return entry;
        }
        let (client, lifetime) = match self.resolve(&url).await {
            Ok((client, lifetime)) => {
                tracing::info!(
                    client_id,
                    cache_seconds = lifetime.as_secs(),
                    "metadata document fetched"
                );
                (Some(Arc::new(client)), lifetime)
            }
            Err(e) => {
                tracing::warn!(client_id, reason = %e, "metadata document client refused");
                (None, self.failure_lifetime)
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                client_id.to_owned(),
                Entry {
                    until: Instant::now() + lifetime,
                    client: client.clone(),
                },
            );
        }
        client
    }

    /// A fresh cache entry: `Some(None)` for a remembered failure.
    fn cached(&self, client_id: &str) -> Option<Option<Arc<Client>>> {
        let mut cache = self.cache.lock().ok()?;
        let entry = cache.get(client_id)?;
        if entry.until > Instant::now() {
            return Some(entry.client.clone());
        }
        cache.remove(client_id);
        None
    }

    /// Fetches and checks the document (and its `jwks_uri`); returns the client and how long
    /// to keep it (the shorter of the two documents' lifetimes).
    async fn resolve(&self, url: &url::Url) -> Result<(Client, Duration), DocumentError> {
        let fetched = self.fetcher.fetch(url).await?;
        let mut lifetime =
            caching::lifetime(fetched.freshness, self.min_lifetime, self.max_lifetime);
        let parsed = document::parse(
            &fetched.body,
            url.as_str(),
            DocumentPolicy {
                allowed_scopes: &self.allowed_scopes,
                audiences: &self.audiences,
            },
            OffsetDateTime::now_utc(),
        )?;
        let mut client = parsed.client;
        if let Some(jwks_uri) = parsed.jwks_uri {
            let keys = self.fetcher.fetch(&jwks_uri).await?;
            lifetime = lifetime.min(caching::lifetime(
                keys.freshness,
                self.min_lifetime,
                self.max_lifetime,
            ));
            let value: serde_json::Value = serde_json::from_slice(&keys.body)
                .map_err(|e| DocumentError::InvalidDocument(format!("jwks_uri: not JSON: {e}")))?;
            client.metadata.jwks = Some(
                crate::rules::public_jwks(value)
                    .map_err(|e| DocumentError::InvalidDocument(format!("jwks_uri: {e}")))?,
            );
        }
        Ok((client, lifetime))
    }
}
