//! Sealed signing keys.

use sqlx::Row;
use time::OffsetDateTime;

use super::{Backend, Store, StoreError, instant, map, nanos, opt_instant, opt_nanos};
use crate::model::SealedSigningKey;

/// The advisory lock key serializing signing-key rotations on PostgreSQL ("cuidkeys").
const SIGNING_KEY_LOCK: i64 = 0x6375_6964_6b65_7973;

impl Store {
    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SealedSigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, public_jwk, sealed_jwk, created_at, retire_at FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| {
                Ok(SealedSigningKey {
                    kid: r.try_get("kid").map_err(map)?,
                    alg: r.try_get("alg").map_err(map)?,
                    public_jwk: r.try_get("public_jwk").map_err(map)?,
                    sealed_jwk: r.try_get("sealed_jwk").map_err(map)?,
                    created_at: instant(r.try_get("created_at").map_err(map)?)?,
                    retire_at: opt_instant(r.try_get("retire_at").map_err(map)?)?,
                })
            })
            .collect()
    }

    /// Adds a signing key unless another instance already added one created at or after
    /// `only_if_newest_before` (the rotation race): true when this key was stored.
    ///
    /// On PostgreSQL the check and the insert run under a transaction-scoped advisory lock: under
    /// READ COMMITTED two concurrent `INSERT … WHERE NOT EXISTS` would both see no newer key and
    /// both insert. On SQLite the single statement already holds the database's write lock.
    pub async fn insert_signing_key(
        &self,
        key: &SealedSigningKey,
        only_if_newest_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                .bind(SIGNING_KEY_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, sealed_jwk, created_at, retire_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS \
             (SELECT 1 FROM signing_keys WHERE created_at >= $7)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.public_jwk)
        .bind(&key.sealed_jwk)
        .bind(nanos(key.created_at)?)
        .bind(opt_nanos(key.retire_at)?)
        .bind(nanos(only_if_newest_before)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(done.rows_affected() == 1)
    }
}

impl crate::signing::SigningKeyStore for Store {
    fn list_signing_keys(
        &self,
    ) -> crate::signing::BoxFuture<'_, Result<Vec<SealedSigningKey>, crate::signing::StoreError>>
    {
        Box::pin(async move {
            self.signing_keys()
                .await
                .map_err(crate::signing::StoreError::new)
        })
    }

    fn insert_signing_key<'a>(
        &'a self,
        key: &'a SealedSigningKey,
        only_if_newest_before: OffsetDateTime,
    ) -> crate::signing::BoxFuture<'a, Result<bool, crate::signing::StoreError>> {
        Box::pin(async move {
            Store::insert_signing_key(self, key, only_if_newest_before)
                .await
                .map_err(crate::signing::StoreError::new)
        })
    }
}
