//! The database realm's user administration (SPEC §3.6, `kms:admin`): create, list, read, update,
//! disable, set password, delete. An administrator manages only users whose tenants are all among
//! its own, so a tenant's admin can never create or change a user of another tenant. Every change
//! drops the user's cached credentials at once.

use std::collections::HashMap;
use std::sync::Arc;

use cryptoutil_realm::ScopeVocabulary;

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditSink, Operation, Outcome, UserOperation};
use crate::auth::{Authenticator, DB_REALM};
use crate::keys::KeyError;
use crate::model::{PAGE_SIZE_MAX, Page, PageRequest, Principal, RealmUserRecord, TenantId};
use crate::repository::DirectoryStore;
use crate::scopes::{self, VOCABULARY};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest metadata document, in bytes.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// A new user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// 1–256 characters, no `:` or control characters.
    pub username: String,
    /// 12–1024 characters; stored as a PBKDF2 hash.
    pub password: zeroize::Zeroizing<String>,
    /// Scope names (`kms:read`, `kms:encrypt`, …).
    pub roles: Vec<String>,
    /// Existing tenant names, each one of the administrator's.
    pub tenants: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
    /// A JSON object (text).
    pub metadata: String,
    /// TLS client certificate subject.
    pub certificate_subject: Option<String>,
}

/// A change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// New tenants.
    pub tenants: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New metadata (JSON object text).
    pub metadata: Option<String>,
    /// New certificate subject (`Some(None)` removes it).
    pub certificate_subject: Option<Option<String>>,
}

/// User administration over a directory store.
pub struct UserAdmin<S> {
    store: Arc<S>,
    auth: Arc<Authenticator<S>>,
    audit: Arc<dyn AuditSink>,
}

impl<S> std::fmt::Debug for UserAdmin<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserAdmin")
    }
}

impl<S: DirectoryStore> UserAdmin<S> {
    /// Administration that invalidates `auth`'s credential cache on every change.
    pub fn new(store: Arc<S>, auth: Arc<Authenticator<S>>) -> Self {
        Self {
            store,
            auth,
            audit: crate::audit::default_sink(),
        }
    }

    /// Writes the changes' audit events to `sink` instead of the default tracing sink.
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// Creates a user.
    pub async fn create(&self, who: &Principal, new: NewUser) -> Result<RealmUserRecord, KeyError> {
        let username = new.username.clone();
        let result = self.create_unaudited(who, new).await;
        self.record(who, UserOperation::Create, &username, result.as_ref().err());
        result
    }

    async fn create_unaudited(
        &self,
        who: &Principal,
        new: NewUser,
    ) -> Result<RealmUserRecord, KeyError> {
        require_admin(who)?;
        check_username(&new.username)?;
        check_password(&new.password)?;
        check_roles(&new.roles)?;
        self.check_tenants(who, &new.tenants).await?;
        let metadata = check_metadata(&new.metadata)?;
        let password = new.password.clone();
        let hash = tokio::task::spawn_blocking(move || {
            cryptoutil_realm::password::hash_password(&password)
        })
        .await
        .map_err(|_| KeyError::Internal("password hashing task failed".to_owned()))?
        .map_err(|e| KeyError::Internal(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        let record = RealmUserRecord {
            username: new.username,
            password_hash: hash,
            roles: new.roles,
            tenants: new.tenants,
            enabled: new.enabled,
            metadata,
            certificate_subject: new.certificate_subject,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_realm_user(&record)
            .await
            .map_err(|e| match e {
                crate::repository::StoreError::Conflict(_) => KeyError::Conflict(
                    "a user with this username or certificate subject exists".to_owned(),
                ),
                other => other.into(),
            })?;
        self.auth
            .cache()
            .invalidate_user(DB_REALM, &record.username);
        Ok(record)
    }

    /// Users the administrator may manage, sorted by username. The store is walked whole (users
    /// are few and admin-made) so that `total` counts only visible users: a tenant's admin learns
    /// nothing about other tenants' users, not even how many there are.
    pub async fn list(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<RealmUserRecord>, KeyError> {
        require_admin(who)?;
        let mut visible = Vec::new();
        let mut own: HashMap<String, bool> = HashMap::new();
        let mut number = 0;
        loop {
            let chunk = PageRequest::new(number, PAGE_SIZE_MAX).unwrap_or_default();
            let listed = self.store.list_realm_users(chunk).await?;
            let done = listed.items.len() < PAGE_SIZE_MAX as usize;
            for user in listed.items {
                if self.manages_cached(who, &user.tenants, &mut own).await? {
                    visible.push(user);
                }
            }
            if done {
                break;
            }
            number += 1;
        }
        let total = visible.len() as u64;
        let items = visible
            .into_iter()
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.size as usize)
            .collect();
        Ok(Page {
            items,
            page: page.page,
            size: page.size,
            total,
        })
    }

    /// One user.
    pub async fn get(&self, who: &Principal, username: &str) -> Result<RealmUserRecord, KeyError> {
        require_admin(who)?;
        let user = self
            .store
            .realm_user(username)
            .await?
            .ok_or_else(not_found)?;
        if !self.manages(who, &user.tenants).await? {
            return Err(not_found());
        }
        Ok(user)
    }

    /// Changes roles, tenants, enabled, metadata or certificate subject.
    pub async fn update(
        &self,
        who: &Principal,
        username: &str,
        change: UserChange,
    ) -> Result<RealmUserRecord, KeyError> {
        let result = self.update_unaudited(who, username, change).await;
        self.record(who, UserOperation::Update, username, result.as_ref().err());
        result
    }

    async fn update_unaudited(
        &self,
        who: &Principal,
        username: &str,
        change: UserChange,
    ) -> Result<RealmUserRecord, KeyError> {
        let mut user = self.get(who, username).await?;
        let expected = user.version;
        if let Some(roles) = change.roles {
            check_roles(&roles)?;
            user.roles = roles;
        }
        if let Some(tenants) = change.tenants {
            self.check_tenants(who, &tenants).await?;
            user.tenants = tenants;
        }
        if let Some(enabled) = change.enabled {
            user.enabled = enabled;
        }
        if let Some(metadata) = change.metadata {
            user.metadata = check_metadata(&metadata)?;
        }
        if let Some(subject) = change.certificate_subject {
            user.certificate_subject = subject;
        }
        self.save(user, expected).await
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        who: &Principal,
        username: &str,
        password: zeroize::Zeroizing<String>,
    ) -> Result<(), KeyError> {
        let result = self.set_password_unaudited(who, username, password).await;
        self.record(
            who,
            UserOperation::SetPassword,
            username,
            result.as_ref().err(),
        );
        result
    }

    async fn set_password_unaudited(
        &self,
        who: &Principal,
        username: &str,
        password: zeroize::Zeroizing<String>,
    ) -> Result<(), KeyError> {
        check_password(&password)?;
        let mut user = self.get(who, username).await?;
        let expected = user.version;
        user.password_hash = tokio::task::spawn_blocking(move || {
            cryptoutil_realm::password::hash_password(&password)
        })
        .await
        .map_err(|_| KeyError::Internal("password hashing task failed".to_owned()))?
        .map_err(|e| KeyError::Internal(e.to_string()))?;
        self.save(user, expected).await.map(|_| ())
    }

    /// Deletes a user.
    pub async fn delete(&self, who: &Principal, username: &str) -> Result<(), KeyError> {
        let result = self.delete_unaudited(who, username).await;
        self.record(who, UserOperation::Delete, username, result.as_ref().err());
        result
    }

    async fn delete_unaudited(&self, who: &Principal, username: &str) -> Result<(), KeyError> {
        let user = self.get(who, username).await?;
        self.store.delete_realm_user(&user.username).await?;
        self.forget(&user.username).await;
        Ok(())
    }

    /// Records a change's audit event: success when `error` is `None`.
    fn record(
        &self,
        who: &Principal,
        operation: UserOperation,
        user: &str,
        error: Option<&KeyError>,
    ) {
        let outcome = error.map_or(Outcome::Success, KeyError::audit_outcome);
        let user: String = user.chars().take(256).collect();
        self.audit.record(&AuditEvent::by(
            who,
            Operation::UserAdmin {
                operation,
                user: &user,
            },
            outcome,
        ));
    }

    async fn save(
        &self,
        mut user: RealmUserRecord,
        expected: i64,
    ) -> Result<RealmUserRecord, KeyError> {
        user.version = expected + 1;
        user.updated_at = OffsetDateTime::now_utc();
        let saved = self
            .store
            .update_realm_user(&user, expected)
            .await
            .map_err(|e| match e {
                crate::repository::StoreError::Conflict(_) => {
                    KeyError::Conflict("another user has this certificate subject".to_owned())
                }
                other => other.into(),
            })?;
        // Invalidate even when the write lost a race: the cache must never outlive a change.
        self.forget(&user.username).await;
        if !saved {
            return Err(KeyError::Conflict(
                "the user changed meanwhile; read it again and retry".to_owned(),
            ));
        }
        Ok(user)
    }

    /// Drops the user's cached credentials here and tells the other instances to do the same.
    /// A failed announcement is logged: the other instances then forget within their cache TTL.
    async fn forget(&self, username: &str) {
        self.auth.cache().invalidate_user(DB_REALM, username);
        if let Err(e) = self.store.announce_user_change(username).await {
            tracing::warn!(error = %e, user = %username,
                "could not announce a user change to other instances; their caches expire within auth.cache_ttl");
        }
    }

    /// Whether every one of `tenants` is one of the administrator's.
    async fn manages(&self, who: &Principal, tenants: &[String]) -> Result<bool, KeyError> {
        self.manages_cached(who, tenants, &mut HashMap::new()).await
    }

    /// [`Self::manages`], remembering each tenant name's answer in `own`.
    async fn manages_cached(
        &self,
        who: &Principal,
        tenants: &[String],
        own: &mut HashMap<String, bool>,
    ) -> Result<bool, KeyError> {
        for name in tenants {
            let mine = match own.get(name) {
                Some(mine) => *mine,
                None => {
                    let tenant = self.store.tenant_by_name(name).await?;
                    let mine = tenant.is_some_and(|t| who.tenants.contains(&t.id));
                    own.insert(name.clone(), mine);
                    mine
                }
            };
            if !mine {
                return Ok(false);
            }
        }
        Ok(!tenants.is_empty() || who.tenants.is_empty())
    }

    async fn check_tenants(&self, who: &Principal, tenants: &[String]) -> Result<(), KeyError> {
        if tenants.is_empty() {
            return Err(KeyError::Invalid(
                "a user needs at least one tenant".to_owned(),
            ));
        }
        if tenants.len() > 100 {
            return Err(KeyError::Invalid("at most 100 tenants per user".to_owned()));
        }
        for name in tenants {
            let tenant: Option<TenantId> = self.store.tenant_by_name(name).await?.map(|t| t.id);
            match tenant {
                Some(id) if who.tenants.contains(&id) => {}
                // Unknown and foreign tenants look alike.
                _ => {
                    return Err(KeyError::Invalid(format!(
                        "tenant {:?} is not one of yours",
                        name.chars().take(128).collect::<String>()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The admin rule: user administration needs `kms:admin`.
fn require_admin(who: &Principal) -> Result<(), KeyError> {
    Ok(scopes::require(who, scopes::ADMIN)?)
}

fn not_found() -> KeyError {
    KeyError::NotFound("no such user".to_owned())
}

fn check_username(name: &str) -> Result<(), KeyError> {
    let chars = name.chars().count();
    if chars == 0 || chars > 256 || name.contains(':') || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid(
            "username must have 1 to 256 characters and no ':' or control characters".to_owned(),
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), KeyError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(KeyError::Invalid(format!(
            "password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_roles(roles: &[String]) -> Result<(), KeyError> {
    if roles.len() > 64 {
        return Err(KeyError::Invalid("at most 64 roles".to_owned()));
    }
    for role in roles {
        VOCABULARY
            .check(role)
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
    }
    Ok(())
}

fn check_metadata(text: &str) -> Result<String, KeyError> {
    if text.len() > MAX_METADATA_BYTES {
        return Err(KeyError::Invalid(format!(
            "metadata must have at most {MAX_METADATA_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(text.to_owned()),
        _ => Err(KeyError::Invalid(
            "metadata must be a JSON object".to_owned(),
        )),
    }
}
