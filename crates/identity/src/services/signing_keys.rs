//! The published signing keys: the JWKS (kept fresh across instances), the algorithms
//! discovery advertises, administrative rotation and `id_token_hint` checks.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::signing::{KeyManager, KeyRing, SigningError};
use crate::storage::Store;
use crate::tokens::{IdTokenClaims, TokenError};

/// How old a key ring may be when it answers a JWKS request. Keys are shared through the
/// database: a key another instance added is served here within this time, before it signs
/// (the activation delay is longer), so a relying party that fetches the JWKS from any instance
/// finds every key a token can name. Costs at most one key listing per interval.
pub const JWKS_FRESHNESS: time::Duration = time::Duration::SECOND;

/// A key added by an administrative rotation.
#[derive(Debug, Clone)]
pub struct RotatedKey {
    /// The new key's `kid`.
    pub kid: String,
    /// When it starts signing (seconds since the epoch), if the ring knows it.
    pub activates_at: Option<i64>,
    /// The key signing now.
    pub signing_kid: Option<String>,
}

/// The signing keys as the outside world sees them.
#[derive(Debug)]
pub struct SigningKeyService {
    store: Store,
    keys: Arc<KeyManager>,
}

impl SigningKeyService {
    /// The keys of `keys`, shared with other instances through `store`.
    pub fn new(store: Store, keys: Arc<KeyManager>) -> Self {
        Self { store, keys }
    }

    /// The current key ring.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.keys.ring()
    }

    /// A ring at most [`JWKS_FRESHNESS`] old, for the JWKS. When the keys cannot be re-read,
    /// the ring already held (it still verifies what this instance signed).
    pub async fn fresh_ring(&self, now: OffsetDateTime) -> Arc<KeyRing> {
        match self
            .keys
            .refresh_if_older(&self.store, JWKS_FRESHNESS, now)
            .await
        {
            Ok(ring) => ring,
            Err(e) => {
                tracing::warn!(error = %e, "signing key reload for the JWKS failed");
                self.keys.ring()
            }
        }
    }

    /// Adds a new signing key at once (an administrative rotation).
    pub async fn rotate(&self, now: OffsetDateTime) -> Result<RotatedKey, SigningError> {
        let (ring, kid) = self.keys.rotate(&self.store, now).await?;
        let activates_at = ring
            .verification_key(&kid)
            .map(|k| (k.created_at + self.keys.policy().activation_delay).unix_timestamp());
        Ok(RotatedKey {
            activates_at,
            signing_kid: ring.signing_kid().map(str::to_owned),
            kid,
        })
    }

    /// The claims of an `id_token_hint` this server signed (expired ones accepted).
    pub fn verify_id_token_hint(&self, hint: &str) -> Result<IdTokenClaims, TokenError> {
        self.keys.ring().verify_id_token_hint(hint)
    }
}
