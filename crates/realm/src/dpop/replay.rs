//! The replay cache contract: a proof (`jti`) is accepted once per server, for as long as its
//! `iat` window lasts (RFC 9449 §11.1).

use std::fmt;

use time::OffsetDateTime;

use crate::BoxFuture;

/// Why the replay cache could not answer. The caller refuses the proof (fails closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The cache holds its capacity of unexpired entries; nothing is evicted early, since an
    /// evicted entry could be replayed.
    #[error("the DPoP replay cache is full")]
    Full,
    /// The shared store failed.
    #[error("the DPoP replay store is unavailable: {0}")]
    Unavailable(String),
}

/// Remembers the proofs a server has accepted.
///
/// `key` is the caller's scoping of the proof's `jti` (e.g. the key thumbprint and the `jti`,
/// hashed); `until` is when the entry may be forgotten (the end of the proof's `iat` window).
pub trait ReplayCache: Send + Sync + fmt::Debug {
    /// Records `key`: `Ok(true)` when it was not seen before, `Ok(false)` for a replay.
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        until: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, ReplayError>>;
}
