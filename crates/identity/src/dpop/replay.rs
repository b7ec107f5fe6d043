//! The DPoP replay cache of Identity: the `dpop_proofs` table, shared by every instance on one
//! database (RFC 9449 §11.1), so a proof accepted at one instance is refused at all others.

use aws_lc_rs::digest;
use cryptoutil_jose::b64;
use time::OffsetDateTime;

use super::{ReplayCache, ReplayError};
use crate::storage::{Store, StoreError};

/// The replay key of a proof: base64url(SHA-256(jkt || "." || jti)), so `jti` values of
/// different keys never collide and the stored key is bounded.
#[must_use]
pub fn proof_key(jkt: &str, jti: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(b".");
    ctx.update(jti.as_bytes());
    b64::encode(ctx.finish().as_ref())
}

/// [`ReplayCache`] over [`Store::remember_dpop_proof`]; rows are purged with the other expired
/// records.
#[derive(Debug, Clone)]
pub struct StoreReplayCache {
    store: Store,
}

impl StoreReplayCache {
    /// The cache in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl ReplayCache for StoreReplayCache {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        until: OffsetDateTime,
    ) -> cryptoutil_realm::BoxFuture<'a, Result<bool, ReplayError>> {
        Box::pin(async move {
            self.store
                .remember_dpop_proof(key, until)
                .await
                .map_err(|e| match e {
                    StoreError::Unavailable(m) => ReplayError::Unavailable(m),
                    other => ReplayError::Unavailable(other.to_string()),
                })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::storage::DatabaseSettings;

    #[test]
    fn proof_keys_separate_keys_and_jtis() {
        let a = proof_key("jkt-a", "1");
        assert_eq!(a.len(), 43);
        assert_eq!(a, proof_key("jkt-a", "1"));
        assert_ne!(a, proof_key("jkt-b", "1"));
        assert_ne!(a, proof_key("jkt-a", "2"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(proof_key("ab", "c"), proof_key("a", "bc"));
    }

    #[tokio::test]
    async fn a_proof_is_accepted_once() {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let cache = StoreReplayCache::new(store.clone());
        let until = OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let key = proof_key("jkt", &uuid::Uuid::now_v7().to_string());
        assert!(cache.first_use(&key, until).await.unwrap());
        assert!(!cache.first_use(&key, until).await.unwrap(), "replay");
        let other = proof_key("jkt", &uuid::Uuid::now_v7().to_string());
        assert!(cache.first_use(&other, until).await.unwrap());
        store.close().await;
        assert!(matches!(
            cache.first_use(&proof_key("jkt", "x"), until).await,
            Err(ReplayError::Unavailable(_))
        ));
    }
}
