//! Material keys in memory: sealing new ones through the barrier, unsealing stored ones, and the
//! bounded cache of unsealed keys.

use std::sync::Arc;

use cryptoutil_jose::Jwk;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{KeyError, KeyService, barrier_error, now, public_jwk_text, with_identity};
use crate::model::{ElasticKey, MaterialKey, TenantId};
use crate::repository::{BarrierStore, KeyStore};

/// The stored form of a new material key: metadata, public JWK, and the sealed private JWK.
pub(super) fn material_record(
    id: Uuid,
    elastic_key_id: Uuid,
    jwk: &Jwk,
    import_date: Option<OffsetDateTime>,
    sealed_jwk: String,
) -> Result<MaterialKey, KeyError> {
    Ok(MaterialKey {
        id,
        elastic_key_id,
        generate_date: now(),
        import_date,
        revocation_date: None,
        public_jwk: public_jwk_text(jwk)?,
        sealed_jwk,
    })
}

/// Generates key material on the blocking pool: RSA-4096 generation takes long enough to stall an
/// async worker.
pub(super) async fn generate_off_thread(
    generate: impl FnOnce() -> Result<Jwk, KeyError> + Send + 'static,
) -> Result<Jwk, KeyError> {
    tokio::task::spawn_blocking(generate)
        .await
        .map_err(|_| KeyError::Internal("key generation task failed".to_owned()))?
}

impl<S: KeyStore + BarrierStore> KeyService<S> {
    /// Seals a new key's first material under a content key that is not stored yet.
    pub(super) fn material_from(
        &self,
        content_key: &crate::barrier::NewContentKey,
        elastic_key_id: Uuid,
        jwk: Jwk,
        import_date: Option<OffsetDateTime>,
    ) -> Result<(MaterialKey, Arc<Jwk>), KeyError> {
        let id = Uuid::now_v7();
        let jwk = with_identity(jwk, id);
        let sealed = self
            .barrier
            .seal_with(content_key, jwk.to_json(true).as_bytes())
            .map_err(barrier_error)?;
        let material = material_record(id, elastic_key_id, &jwk, import_date, sealed)?;
        Ok((material, Arc::new(jwk)))
    }

    pub(super) async fn material_by_id(
        &self,
        tenant: TenantId,
        key: &ElasticKey,
        material_id: Uuid,
    ) -> Result<Arc<Jwk>, KeyError> {
        if let Some(jwk) = self.cached_material(tenant, key.id, material_id) {
            return Ok(jwk);
        }
        // Boxed: a warm request should not carry (and copy) the cold path's large future.
        Box::pin(async {
            let material = self
                .store
                .material_key(tenant, key.id, material_id)
                .await?
                .filter(|m| m.revocation_date.is_none())
                .ok_or_else(|| {
                    KeyError::DecryptionFailed(
                        "the token's kid names no usable material key of this elastic key"
                            .to_owned(),
                    )
                })?;
            self.unsealed(tenant, &material).await
        })
        .await
    }

    pub(super) async fn unsealed(
        &self,
        tenant: TenantId,
        material: &MaterialKey,
    ) -> Result<Arc<Jwk>, KeyError> {
        if let Some(jwk) = self.cached_material(tenant, material.elastic_key_id, material.id) {
            return Ok(jwk);
        }
        Box::pin(self.unseal_material(tenant, material)).await
    }

    /// Unwraps a material key through the barrier and caches it.
    async fn unseal_material(
        &self,
        tenant: TenantId,
        material: &MaterialKey,
    ) -> Result<Arc<Jwk>, KeyError> {
        let clear = self
            .barrier
            .unseal(tenant, &material.sealed_jwk)
            .await
            .map_err(barrier_error)?;
        let text = std::str::from_utf8(&clear).map_err(|_| {
            KeyError::Internal(format!("material key {} is not UTF-8", material.id))
        })?;
        let jwk = Jwk::from_json(text).map_err(|e| {
            KeyError::Internal(format!("material key {} is unusable: {e}", material.id))
        })?;
        let jwk = Arc::new(jwk);
        self.cache_material(tenant, material.elastic_key_id, material.id, jwk.clone());
        Ok(jwk)
    }

    pub(super) fn cached_material(
        &self,
        tenant: TenantId,
        owner: Uuid,
        id: Uuid,
    ) -> Option<Arc<Jwk>> {
        let mut cache = self.materials.lock().ok()?;
        let found = cache.get(&(tenant, owner, id)).cloned();
        cryptoutil_telemetry::barrier_cache_lookup("material", found.is_some());
        found
    }

    pub(super) fn cache_material(&self, tenant: TenantId, owner: Uuid, id: Uuid, jwk: Arc<Jwk>) {
        if let Ok(mut cache) = self.materials.lock() {
            cache.insert((tenant, owner, id), jwk);
        }
    }

    pub(super) fn forget_materials_of(&self, tenant: TenantId, owner: Uuid) {
        if let Ok(mut cache) = self.materials.lock() {
            for key in cache.keys_where(|(t, o, _), _| *t == tenant && *o == owner) {
                cache.remove(&key);
            }
        }
    }
}
