//! Client secret verification through the verified-credential cache.
//!
//! The cache (keyed by client id + presented secret, see [`cryptoutil_realm::cache`]) stores the
//! *stored hash* the secret matched. A hit counts only while that hash is still one of the
//! client's current, unexpired secrets, so a rotation's expiry or a removed secret takes effect
//! even before [`SecretVerifier::invalidate_client`] runs. On a miss PBKDF2 runs on Tokio's
//! blocking pool against each unexpired secret (one verification of a secret at a time:
//! concurrent requests with it wait, then find the result cached); only successes are cached.

use std::sync::Arc;

use cryptoutil_realm::password::{PasswordHash, dummy_verify};
use cryptoutil_realm::{CacheConfig, CredentialCache, cache::Ticket};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::model::Client;
use crate::oauth::error::OAuthError;

/// The cache's realm name for client secrets.
const CACHE_REALM: &str = "oauth-client";

/// Verifies client secrets, caching successes.
#[derive(Debug)]
pub(super) struct SecretVerifier {
    cache: CredentialCache<String>,
}

impl SecretVerifier {
    pub(super) fn new(config: CacheConfig) -> Result<Self, OAuthError> {
        let cache = CredentialCache::new(config).map_err(|_| OAuthError::server_error())?;
        Ok(Self { cache })
    }

    /// Take before looking the client up (see [`CredentialCache::ticket`]).
    pub(super) fn ticket(&self) -> Ticket {
        self.cache.ticket()
    }

    /// Whether `secret` is one of `client`'s unexpired secrets at `now`; `Some(true)` when the
    /// cache answered. `None` (after a dummy PBKDF2 when nothing could be verified) on failure.
    pub(super) async fn verify(
        &self,
        ticket: Ticket,
        client: &Client,
        secret: &Zeroizing<String>,
        now: OffsetDateTime,
    ) -> Result<Option<bool>, OAuthError> {
        let live: Vec<String> = client
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| now < at))
            .map(|s| s.hash.clone())
            .collect();
        let id = client.client_id.as_str();
        let cached = || {
            self.cache
                .get(CACHE_REALM, id, secret)
                .is_some_and(|hash| live.contains(&hash))
        };
        if cached() {
            return Ok(Some(true));
        }
        // One PBKDF2 per secret at a time: a client's concurrent first requests wait for the
        // first verification and then find it in the cache.
        let _verification = self.cache.verification(id, secret).await;
        if cached() {
            return Ok(Some(true));
        }
        let live = live.clone();
        let attempt = secret.clone();
        let matched = run_blocking(move || {
            let mut tried = false;
            for hash in &live {
                let Ok(parsed) = PasswordHash::parse(hash) else {
                    tracing::warn!("a stored client secret hash is malformed; skipped");
                    continue;
                };
                tried = true;
                if parsed.verify(&attempt) {
                    return Some(hash.clone());
                }
            }
            if !tried {
                dummy_verify(&attempt);
            }
            None
        })
        .await?;
        Ok(matched.map(|hash| {
            self.cache
                .insert(ticket, CACHE_REALM, id, secret, Arc::new(hash));
            false
        }))
    }

    /// Spends one PBKDF2 so an unusable client costs what a wrong secret does.
    pub(super) async fn dummy(&self, secret: &Zeroizing<String>) -> Result<(), OAuthError> {
        let attempt = secret.clone();
        run_blocking(move || dummy_verify(&attempt)).await
    }

    /// Drops every cached secret of `client_id`.
    pub(super) fn invalidate_client(&self, client_id: &str) {
        self.cache.invalidate_user(CACHE_REALM, client_id);
    }

    /// Drops every cached secret.
    pub(super) fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// Runs CPU-heavy work on the blocking pool (inline without a runtime).
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, OAuthError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.map_err(|_| {
            tracing::error!("client secret verification task failed");
            OAuthError::server_error()
        }),
        Err(_) => Ok(f()),
    }
}
