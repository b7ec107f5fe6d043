//! The database realm: `kms_realm_users` through [`DirectoryStore`].

use std::sync::Arc;

use cryptoutil_realm::{
    BoxFuture, PasswordHash, Realm, RealmEntry, RealmError, RealmUser, StoredPassword,
};

use crate::model::RealmUserRecord;
use crate::repository::{DirectoryStore, StoreError};
use crate::scopes;

/// Name of the database realm in cache keys and audit events.
pub const DB_REALM: &str = "db";

/// The database realm.
pub struct DbRealm<S> {
    store: Arc<S>,
}

impl<S> DbRealm<S> {
    /// A realm over the store's `kms_realm_users`.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

/// A stored record as a realm user (roles expanded to scopes).
pub fn realm_user(record: &RealmUserRecord) -> RealmUser {
    RealmUser {
        realm: DB_REALM.to_owned(),
        username: record.username.clone(),
        roles: record.roles.clone(),
        scopes: scopes::expand(&record.roles),
        tenants: record.tenants.clone(),
        enabled: record.enabled,
    }
}

fn unavailable(e: StoreError) -> RealmError {
    RealmError::Unavailable(e.to_string())
}

impl<S: DirectoryStore> Realm for DbRealm<S> {
    fn name(&self) -> &str {
        DB_REALM
    }

    fn lookup<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmEntry>, RealmError>> {
        Box::pin(async move {
            let Some(record) = self.store.realm_user(username).await.map_err(unavailable)? else {
                return Ok(None);
            };
            // A malformed stored hash makes the user unable to log in (and costs a dummy
            // verification), never a 500.
            let password = PasswordHash::parse(&record.password_hash)
                .ok()
                .map(|h| Arc::new(StoredPassword::Hash(h)));
            Ok(Some(RealmEntry {
                user: realm_user(&record),
                password,
            }))
        })
    }

    fn lookup_by_certificate_subject<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<RealmUser>, RealmError>> {
        Box::pin(async move {
            let record = self
                .store
                .realm_user_by_subject(subject)
                .await
                .map_err(unavailable)?;
            Ok(record.as_ref().map(realm_user))
        })
    }
}
