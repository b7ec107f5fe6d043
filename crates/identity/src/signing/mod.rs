//! Token signing keys: sealed at rest, rotated with overlap, published as a JWK Set (SPEC §4).
//!
//! - [`KeyEncryptionKey`]: the AES-256 key that seals private keys at rest (compact JWE
//!   `dir`/`A256GCM`; the `kid`, JWS `alg` and creation time sit in the authenticated protected
//!   header, so a record cannot be re-labelled).
//! - [`SigningKey`]: one opened key; [`SigningKey::seal`] and [`SealedSigningKey::open`].
//! - [`KeyRing`]: an immutable snapshot: the key that signs now, the public keys that verify, the
//!   prebuilt JWKS document.
//! - [`KeyManager`]: holds the current ring and refreshes it from a [`SigningKeyStore`],
//!   creating a key when none exists or the newest is older than the rotation period. Several
//!   instances over one store converge on the same signing key (the store's conditional insert
//!   lets only one of them add the rotated key).
//!
//! Timeline of a key `K` (see [`RotationPolicy`]):
//! `created_at` → published at once → signs from `created_at + activation_delay` (immediately
//! when no other key can sign) → superseded at `S`, the moment a newer key starts signing →
//! still published (tokens it signed keep verifying) until `S + overlap` → gone. A stored
//! `retire_at` ends publication (and signing) earlier, for an administrative retirement.

mod kek;
mod key;
mod manager;
mod ring;

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

pub use kek::KeyEncryptionKey;
pub use key::{SigningAlgorithm, SigningKey};
pub use manager::KeyManager;
pub use ring::{KeyRing, RotationPolicy, VerificationKey};

use crate::model::SealedSigningKey;

/// A boxed, sendable future (keeps [`SigningKeyStore`] object-safe without an extra crate).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A storage failure, as reported by a [`SigningKeyStore`] implementation. The message must not
/// contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key store: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// Wraps any displayable error.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

/// Persistence the [`KeyManager`] needs: list the sealed keys, and add one under a condition
/// that makes concurrent rotations by several instances safe.
pub trait SigningKeyStore: Send + Sync {
    /// Every stored signing key (any order).
    fn list_signing_keys(&self) -> BoxFuture<'_, Result<Vec<SealedSigningKey>, StoreError>>;

    /// Inserts `key` only if no stored key has `created_at >= only_if_newest_before`
    /// (atomically: check and insert in one transaction). Returns `true` when inserted, `false`
    /// when another writer got there first (the caller then lists again).
    fn insert_signing_key<'a>(
        &'a self,
        key: &'a SealedSigningKey,
        only_if_newest_before: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Why a signing key operation failed. Messages never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The key-encryption key is not 32 bytes of strict base64url.
    #[error("the key-encryption key must be 32 bytes (base64url, 43 characters)")]
    InvalidKek,
    /// A sealed record could not be opened: wrong key-encryption key, or the record was altered
    /// (deliberately uninformative).
    #[error("signing key {kid:?} cannot be opened (wrong key-encryption key or altered record)")]
    Open {
        /// The record's `kid` (public).
        kid: String,
    },
    /// The record is not a signing key this server can use (unknown `alg` …).
    #[error("signing key {kid:?} is unusable: {reason}")]
    Unusable {
        /// The record's `kid` (public).
        kid: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Generating, sealing or encoding a key failed in the cryptographic library.
    #[error("signing key {0} failed")]
    Crypto(&'static str),
    /// The key ring has no key that can sign.
    #[error("no signing key is available")]
    NoSigningKey,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod testing {
    //! An in-memory [`SigningKeyStore`] for tests.

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Keeps records in a vector; counts calls.
    #[derive(Default)]
    pub struct MemoryStore {
        pub keys: Mutex<Vec<SealedSigningKey>>,
        pub lists: AtomicUsize,
        pub inserts: AtomicUsize,
    }

    impl SigningKeyStore for MemoryStore {
        fn list_signing_keys(&self) -> BoxFuture<'_, Result<Vec<SealedSigningKey>, StoreError>> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            let keys = self.keys.lock().unwrap().clone();
            Box::pin(async move { Ok(keys) })
        }

        fn insert_signing_key<'a>(
            &'a self,
            key: &'a SealedSigningKey,
            only_if_newest_before: OffsetDateTime,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            Box::pin(async move {
                let mut keys = self.keys.lock().unwrap();
                if keys.iter().any(|k| k.created_at >= only_if_newest_before) {
                    return Ok(false);
                }
                if keys.iter().any(|k| k.kid == key.kid) {
                    return Err(StoreError::new("duplicate kid"));
                }
                keys.push(key.clone());
                self.inserts.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            })
        }
    }
}
