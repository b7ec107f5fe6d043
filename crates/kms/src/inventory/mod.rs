//! The cryptographic inventory (issue 26): every elastic key with its algorithm, key type and
//! size, creation date, versions, rotation policy, status, last use and whether a quantum computer
//! breaks it, with totals per algorithm; for one tenant (`kms:admin`) or the whole KMS (the admin
//! listener), as JSON or as a CycloneDX 1.6 CBOM ([`cbom`]).
//!
//! - [`classify`]: algorithm name → family, key type and size, quantum status (never fails).
//! - [`last_use`]: the in-memory, minute-resolution last-use map and its flush.
//! - [`report`]: the inventory built from the store.
//! - [`cbom`]: the inventory as a CycloneDX 1.6 cryptography bill of materials.
//!
//! Free of HTTP and SQL: the store is reached through [`crate::repository::InventoryStore`].

pub mod cbom;
pub mod classify;
pub mod last_use;
pub mod report;

use std::sync::Arc;
use std::time::Duration;

use crate::model::Principal;
use crate::repository::{BarrierStore, DirectoryStore, InventoryStore, StoreError};
use crate::scopes::{self, MissingScope};

pub use classify::{Classification, QuantumStatus, classify};
pub use last_use::LastUse;
pub use report::{Inventory, InventoryKey, Totals};

/// Why an inventory could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The caller lacks `kms:admin` (403).
    #[error("the cryptographic inventory needs the scope {0}")]
    InsufficientScope(&'static str),
    /// The database is unavailable (503).
    #[error("the key store is unavailable, try again later")]
    Unavailable,
    /// Stored data could not be read (500; details are logged, not shown).
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for InventoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<MissingScope> for InventoryError {
    fn from(MissingScope(scope): MissingScope) -> Self {
        Self::InsufficientScope(scope)
    }
}

/// The caller's tenant's inventory; needs [`scopes::ADMIN`].
pub async fn tenant_inventory<S: InventoryStore + DirectoryStore>(
    store: &S,
    uses: &LastUse,
    who: &Principal,
) -> Result<Inventory, InventoryError> {
    scopes::require(who, scopes::ADMIN)?;
    let name = store.tenant_by_id(who.tenant).await?.map(|t| t.name);
    let records = store.inventory_keys(who.tenant).await?;
    let mut keys = Vec::with_capacity(records.len());
    report::add_tenant(&mut keys, who.tenant, name.as_deref(), records, uses);
    Ok(Inventory::new(report::Scope::Tenant, keys))
}

/// Every tenant's inventory (the admin listener: the operator, no tenant principal).
pub async fn system_inventory<S: InventoryStore + BarrierStore + DirectoryStore>(
    store: &S,
    uses: &LastUse,
) -> Result<Inventory, InventoryError> {
    let names: std::collections::HashMap<_, _> = store
        .named_tenants()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut keys = Vec::new();
    for tenant in store.tenants().await? {
        let records = store.inventory_keys(tenant).await?;
        let name = names.get(&tenant).map(String::as_str);
        report::add_tenant(&mut keys, tenant, name, records, uses);
    }
    Ok(Inventory::new(report::Scope::System, keys))
}

/// Writes the pending last-use times to the database. A tenant whose write fails keeps its
/// times pending for the next flush; the first error is returned after the others were tried.
pub async fn flush_last_use<S: InventoryStore>(
    store: &S,
    uses: &LastUse,
) -> Result<u64, StoreError> {
    let mut written = 0;
    let mut first_error = None;
    for (tenant, times) in uses.drain() {
        match store.record_last_use(tenant, &times).await {
            Ok(n) => written += n,
            Err(e) => {
                uses.restore(tenant, &times);
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// The background task: flushes every `every` (and logs touches dropped by a full map).
pub async fn flush_loop<S: InventoryStore>(store: Arc<S>, uses: Arc<LastUse>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dropped_before = 0;
    loop {
        ticker.tick().await;
        if let Err(e) = flush_last_use(store.as_ref(), &uses).await {
            tracing::warn!(error = %e, "could not record elastic keys' last use; will retry");
        }
        let dropped = uses.dropped();
        if dropped > dropped_before {
            tracing::warn!(
                dropped = dropped - dropped_before,
                "last-use map full: some keys' last use is recorded one flush late"
            );
            dropped_before = dropped;
        }
    }
}
