//! The in-memory list of revoked access tokens, so introspection never waits on the database.
//!
//! Access tokens are self-contained JWS; revoking one (revocation endpoint, code or refresh
//! reuse) records its `jti` in the database and here. Every instance polls the database for
//! revocations made elsewhere ([`RevocationList::sync`], every second by default), so a revocation
//! at one instance is seen by the others within one poll. Entries leave the list when the token
//! would have expired anyway, which bounds it by (revocations per token lifetime).

use std::collections::HashMap;
use std::sync::RwLock;

use time::{Duration, OffsetDateTime};

use crate::storage::{Store, StoreError};

/// How far back each poll looks again, so a revocation committed late by a slow transaction at
/// another instance is still picked up.
const POLL_OVERLAP: Duration = Duration::seconds(10);

/// Revoked access-token ids with their expiry.
#[derive(Debug)]
pub struct RevocationList {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    revoked: HashMap<String, OffsetDateTime>,
    /// Revocations recorded at or after this instant have not been read yet.
    synced_until: OffsetDateTime,
}

impl Default for RevocationList {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationList {
    /// An empty list that will read every unexpired revocation on its first sync.
    pub fn new() -> Self {
        Self {
            inner: RwLock::new(Inner {
                revoked: HashMap::new(),
                synced_until: OffsetDateTime::UNIX_EPOCH,
            }),
        }
    }

    /// True when the token with this `jti` was revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        match self.inner.read() {
            Ok(inner) => inner.revoked.contains_key(jti),
            // A writer panicked mid-update: fail closed.
            Err(_) => true,
        }
    }

    /// Adds revoked tokens (already stored in the database by the caller).
    pub fn add(&self, tokens: impl IntoIterator<Item = (String, OffsetDateTime)>) {
        if let Ok(mut inner) = self.inner.write() {
            inner.revoked.extend(tokens);
        }
    }

    /// The number of tokens listed.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.revoked.len()).unwrap_or(0)
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads revocations recorded by any instance since the last sync and drops expired entries.
    pub async fn sync(&self, store: &Store, now: OffsetDateTime) -> Result<(), StoreError> {
        let since = match self.inner.read() {
            Ok(inner) => inner.synced_until,
            Err(_) => OffsetDateTime::UNIX_EPOCH,
        };
        let rows = store.revocations_since(since - POLL_OVERLAP).await?;
        if let Ok(mut inner) = self.inner.write() {
            for (jti, expires_at, _) in rows {
                inner.revoked.insert(jti, expires_at);
            }
            inner.revoked.retain(|_, expires_at| *expires_at >= now);
            inner.synced_until = now;
        }
        Ok(())
    }

    /// Revokes a grant and everything issued under it, in the database (so every instance
    /// sees it at its next sync) and here at once.
    pub async fn revoke_grant(
        &self,
        store: &Store,
        grant_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let revoked = store.revoke_grant(grant_id, now).await?;
        self.add(revoked);
        Ok(())
    }

    /// Revokes one access token (by `jti`, until it would expire), in the database and here.
    pub async fn revoke_access_token(
        &self,
        store: &Store,
        jti: String,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        store.revoke_access_token(&jti, expires_at, now).await?;
        self.add([(jti, expires_at)]);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::storage::DatabaseSettings;

    #[tokio::test]
    async fn sync_reads_revocations_from_other_instances_and_forgets_expired_ones() {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let list = RevocationList::new();
        store
            .revoke_access_token("a", now + Duration::minutes(5), now)
            .await
            .unwrap();
        store
            .revoke_access_token("b", now + Duration::seconds(1), now)
            .await
            .unwrap();
        assert!(!list.is_revoked("a"));
        list.sync(&store, now).await.unwrap();
        assert!(list.is_revoked("a") && list.is_revoked("b"));
        list.sync(&store, now + Duration::seconds(2)).await.unwrap();
        assert!(list.is_revoked("a"));
        assert!(!list.is_revoked("b"), "expired entries are dropped");
        list.add([("c".to_owned(), now + Duration::minutes(1))]);
        assert!(list.is_revoked("c"));
        assert_eq!(list.len(), 2);
    }
}
