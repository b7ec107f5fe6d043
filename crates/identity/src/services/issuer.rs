//! The issuer: its URL and endpoint URLs, known once the public listener is bound, shared by
//! every service that names it.

use std::sync::{Arc, OnceLock};

use crate::oauth::OAuthError;

/// The issuer and its endpoint URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// `iss`, e.g. `https://identity.example.com`.
    pub url: String,
}

impl Issuer {
    /// The absolute URL of a path on this issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The token endpoint URL (an accepted `aud` of client assertions).
    pub fn token_endpoint(&self) -> String {
        self.endpoint(crate::paths::TOKEN)
    }
}

/// The issuer, set once when the listener is bound; cloned into every service that needs it.
#[derive(Debug, Clone, Default)]
pub struct IssuerCell(Arc<OnceLock<Issuer>>);

impl IssuerCell {
    /// An issuer not known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fixes the issuer (first call wins).
    pub fn set(&self, url: String) {
        let _ = self.0.set(Issuer { url });
    }

    /// The issuer; `temporarily_unavailable` before the listener is bound.
    pub fn get(&self) -> Result<&Issuer, OAuthError> {
        self.0.get().ok_or_else(OAuthError::temporarily_unavailable)
    }

    /// The issuer URL, if known.
    pub fn url(&self) -> Option<&str> {
        self.0.get().map(|i| i.url.as_str())
    }
}
