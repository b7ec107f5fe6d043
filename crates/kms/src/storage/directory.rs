//! [`DirectoryStore`] for [`Store`]: named tenants in the system `tenants` registry and the
//! database realm's users in the system table `kms_realm_users`.
//!
//! Names, usernames and subjects are stored as given: callers (the KMS) validate them first
//! (tenant names 1–128 characters without control characters, usernames 1–256). Tenants without a
//! name (provisioned by [`KeyStore::ensure_tenant`] alone) are not part of the directory:
//! [`DirectoryStore::tenant_by_id`] and [`DirectoryStore::named_tenants`] skip them.
//!
//! [`DirectoryStore::ensure_named_tenant`] first claims the name with
//! `INSERT … ON CONFLICT (name) DO NOTHING` and re-reads it, so instances racing on one name all
//! get the row that won; then it provisions that tenant like [`KeyStore::ensure_tenant`]
//! (idempotent, serialised by the migration lock on PostgreSQL). Should the process stop in
//! between, the registered tenant is provisioned by its next use or the next call.

use uuid::Uuid;

use super::{Inner, Store, ops, postgres::SYSTEM};
use crate::model::{Page, PageRequest, RealmUserRecord, Tenant, TenantId};
use crate::repository::{DirectoryStore, KeyStore, StoreError};

/// Runs `$body` with `$ops` naming the backend's operations and `$pool`, `$p` bound to the system
/// database and its table prefix.
macro_rules! on_system {
    ($store:expr, |$ops:ident, $pool:ident, $p:ident| $body:expr) => {
        match &*$store.inner {
            Inner::Sqlite(b) => {
                use ops::sqlite as $ops;
                let $pool = &b.main;
                let $p = "";
                $body
            }
            Inner::Postgres(b) => {
                use ops::postgres as $ops;
                let $pool = &b.pool;
                let $p = SYSTEM;
                $body
            }
        }
    };
}

impl DirectoryStore for Store {
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        on_system!(self, |o, pool, p| o::tenant_by_name(pool, p, name).await)
    }

    async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        on_system!(self, |o, pool, p| o::tenant_by_id(pool, p, id).await)
    }

    async fn ensure_named_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = match self.tenant_by_name(name).await? {
            Some(tenant) => tenant,
            None => {
                let candidate = TenantId(Uuid::new_v4());
                on_system!(self, |o, pool, p| {
                    o::register_named_tenant(pool, p, candidate, name).await
                })?;
                // Ours, or the one another instance registered first.
                self.tenant_by_name(name).await?.ok_or_else(|| {
                    StoreError::Conflict("the tenant was deleted while being created".to_owned())
                })?
            }
        };
        self.ensure_tenant(tenant.id).await?;
        Ok(tenant)
    }

    async fn named_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        on_system!(self, |o, pool, p| o::named_tenants(pool, p).await)
    }

    async fn realm_user(&self, username: &str) -> Result<Option<RealmUserRecord>, StoreError> {
        on_system!(self, |o, pool, p| {
            o::realm_user_where(pool, p, "username", username).await
        })
    }

    async fn realm_user_by_subject(
        &self,
        subject: &str,
    ) -> Result<Option<RealmUserRecord>, StoreError> {
        on_system!(self, |o, pool, p| {
            o::realm_user_where(pool, p, "certificate_subject", subject).await
        })
    }

    async fn list_realm_users(
        &self,
        page: PageRequest,
    ) -> Result<Page<RealmUserRecord>, StoreError> {
        on_system!(self, |o, pool, p| o::list_realm_users(pool, p, page).await)
    }

    async fn insert_realm_user(&self, user: &RealmUserRecord) -> Result<(), StoreError> {
        on_system!(self, |o, pool, p| o::insert_realm_user(pool, p, user).await)
    }

    async fn update_realm_user(
        &self,
        user: &RealmUserRecord,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        on_system!(self, |o, pool, p| {
            o::update_realm_user(pool, p, user, expected_version).await
        })
    }

    async fn delete_realm_user(&self, username: &str) -> Result<bool, StoreError> {
        on_system!(self, |o, pool, p| {
            o::delete_realm_user(pool, p, username).await
        })
    }

    async fn announce_user_change(&self, username: &str) -> Result<(), StoreError> {
        Store::announce_user_change(self, username).await
    }
}
