//! Demo seeding (SPEC §4): users and clients from `deployments/identity/config/demo-seed.yml`,
//! idempotent by username and `client_id`. Seeding never relaxes security: demo users and
//! clients are ordinary records with PBKDF2 hashes.
//!
//! - `--demo`: [`Seed::apply`] with `reset = false` creates the users and clients that are
//!   missing and leaves existing ones as they are (a second run writes nothing and hashes nothing).
//! - `--reset-demo`: `reset = true` first deletes the seed's users and clients (nothing else), then
//!   seeds them again.
//!
//! Credentials come inline (`password`, `secret`: demo only, warned about), as PBKDF2 hashes
//! (`password_hash`, `secret_hash`) or from files holding the plaintext (`password_file`,
//! `secret_file`: Docker secrets, `file:///run/secrets/name` or a path, relative ones resolved
//! against the seed file's directory). Credential files are read before anything is written;
//! PBKDF2 (~0.2 s each) runs off the async workers, in parallel, only for records being written.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use cryptoutil_realm::PasswordHash;
use cryptoutil_realm::password::hash_password;

use crate::mfa::TotpAlgorithm;
use crate::mfa::policy::MfaPolicy;
use crate::mfa::seal::SecretSealer;
use crate::mfa::totp_service::seal_base32_secret;
use crate::model::{
    Client, ClientAuthMethod, ClientMetadata, ClientSecret, GrantType, TotpFactor, User,
};
use crate::rules::{check_client, check_name, check_text, check_unique, public_jwks};
use crate::storage::{Store, StoreError};

/// The seed file shipped with the product, embedded so the binary works from any directory.
pub const DEMO_SEED: &str = include_str!("../../../deployments/identity/config/demo-seed.yml");

/// Where [`DEMO_SEED`] lives in the repository (used in error messages).
pub const DEMO_SEED_PATH: &str = "deployments/identity/config/demo-seed.yml";

/// Largest seed file read.
const MAX_SEED_LEN: usize = 1 << 20;
/// Longest inline or file password / secret.
const MAX_SECRET_LEN: usize = 1024;

/// Why seeding failed. Messages never carry a password or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// The seed file is invalid: `path:line:column: …`, or `path: …` naming the entry.
    #[error("{0}")]
    Invalid(String),
    /// A credential file could not be read (nothing was written).
    #[error("{0}")]
    Credential(String),
    /// The database failed.
    #[error("seeding: {0}")]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error("seeding: {0}")]
    Internal(String),
}

/// Where a password or client secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Plaintext in the seed file: demo only (seeding logs a warning).
    Plain(Zeroizing<String>),
    /// A PBKDF2 hash (`pbkdf2-sha256$…`), stored as given.
    Hash(String),
    /// A file holding the plaintext (a Docker secret), read when seeding.
    File(PathBuf),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Hash(_) => f.write_str("Hash(<redacted>)"),
            Self::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// The demo data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// End users, by username.
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// OAuth clients, by `client_id`.
    #[serde(default)]
    pub clients: Vec<SeedClient>,
}

/// A seeded user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawUser")]
pub struct SeedUser {
    /// Login name.
    pub username: String,
    /// The password.
    pub credential: Credential,
    /// Roles (`admin` …).
    pub roles: Vec<String>,
    /// Tenant carried as `tenant_id` in the user's access tokens.
    pub tenant_id: Option<String>,
    /// `name` claim.
    pub name: Option<String>,
    /// `given_name` claim.
    pub given_name: Option<String>,
    /// `family_name` claim.
    pub family_name: Option<String>,
    /// `email` claim.
    pub email: Option<String>,
    /// `email_verified` claim.
    pub email_verified: bool,
    /// A TOTP authenticator to enrol (confirmed), its secret in base32 (SHA-1, 6 digits, 30 s:
    /// what authenticator apps assume). Demo only: the secret is public.
    pub totp_secret: Option<String>,
}

/// A seeded client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawClient")]
pub struct SeedClient {
    /// `client_id`.
    pub client_id: String,
    /// What the client registers (`client_name` defaults to the `client_id`).
    pub metadata: ClientMetadata,
    /// The secret (`client_secret_basic` / `client_secret_post` only).
    pub secret: Option<Credential>,
    /// Disabled clients are refused everywhere.
    pub enabled: bool,
}

/// What [`Seed::apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Users deleted by a reset.
    pub users_deleted: usize,
    /// Clients deleted by a reset.
    pub clients_deleted: usize,
    /// Users created.
    pub users_created: usize,
    /// Clients created.
    pub clients_created: usize,
    /// Passwords and secrets hashed with PBKDF2 (zero on an idempotent re-run).
    pub credentials_hashed: usize,
}

/// An inline password or secret as read from YAML (zeroized on drop).
struct Plain(Zeroizing<String>);

impl<'de> Deserialize<'de> for Plain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(Zeroizing::new(String::deserialize(deserializer)?)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    password: Option<Plain>,
    password_hash: Option<String>,
    password_file: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    tenant_id: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    totp_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    name: Option<String>,
    auth_method: ClientAuthMethod,
    secret: Option<Plain>,
    secret_hash: Option<String>,
    secret_file: Option<String>,
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    grant_types: Vec<GrantType>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    tenant_id: Option<String>,
    #[serde(default)]
    introspect_any: bool,
    #[serde(default)]
    dpop_bound_access_tokens: bool,
    #[serde(default)]
    may_act: Vec<String>,
    #[serde(default)]
    impersonation: bool,
    #[serde(default)]
    mfa: Option<MfaPolicy>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Exactly one of the three credential sources.
fn credential(
    what: &str,
    plain: Option<Plain>,
    hash: Option<String>,
    file: Option<String>,
) -> Result<Option<Credential>, String> {
    match (plain, hash, file) {
        (None, None, None) => Ok(None),
        (Some(Plain(p)), None, None) => {
            if p.is_empty() || p.len() > MAX_SECRET_LEN {
                return Err(format!("{what} must be 1 to {MAX_SECRET_LEN} bytes"));
            }
            Ok(Some(Credential::Plain(p)))
        }
        (None, Some(h), None) => {
            PasswordHash::parse(&h).map_err(|e| format!("{what}_hash: {e}"))?;
            Ok(Some(Credential::Hash(h)))
        }
        (None, None, Some(f)) => {
            let path = match f.strip_prefix("file://") {
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                Some(_) => {
                    return Err(format!(
                        "{what}_file {f:?} must be an absolute file URL such as \
                         file:///run/secrets/name, or a path"
                    ));
                }
                None => f,
            };
            if path.is_empty() {
                return Err(format!("{what}_file is empty"));
            }
            Ok(Some(Credential::File(PathBuf::from(path))))
        }
        _ => Err(format!(
            "give only one of {what}, {what}_hash and {what}_file"
        )),
    }
}

impl TryFrom<RawUser> for SeedUser {
    type Error = String;

    fn try_from(raw: RawUser) -> Result<Self, String> {
        let at = |e: String| format!("user {}: {e}", raw.username);
        check_name("username", &raw.username).map_err(at)?;
        let credential = credential(
            "password",
            raw.password,
            raw.password_hash,
            raw.password_file,
        )
        .map_err(at)?
        .ok_or_else(|| at("give one of password, password_hash and password_file".to_owned()))?;
        for role in &raw.roles {
            check_name("role", role).map_err(at)?;
        }
        check_unique("roles", &raw.roles).map_err(at)?;
        if let Some(tenant) = &raw.tenant_id {
            check_name("tenant_id", tenant).map_err(at)?;
        }
        check_text("name", raw.name.as_deref()).map_err(at)?;
        check_text("given_name", raw.given_name.as_deref()).map_err(at)?;
        check_text("family_name", raw.family_name.as_deref()).map_err(at)?;
        if let Some(email) = &raw.email {
            check_name("email", email).map_err(at)?;
            if !email.contains('@') {
                return Err(at(format!("email {email:?} has no @")));
            }
        }
        if let Some(secret) = &raw.totp_secret {
            let ok = crate::mfa::totp::base32_decode(secret).is_some_and(|bytes| bytes.len() >= 16);
            if !ok {
                return Err(at(
                    "totp_secret must be upper-case base32 of at least 16 bytes".to_owned(),
                ));
            }
        }
        Ok(Self {
            username: raw.username,
            credential,
            roles: raw.roles,
            tenant_id: raw.tenant_id,
            name: raw.name,
            given_name: raw.given_name,
            family_name: raw.family_name,
            email: raw.email,
            email_verified: raw.email_verified,
            totp_secret: raw.totp_secret,
        })
    }
}

impl TryFrom<RawClient> for SeedClient {
    type Error = String;

    fn try_from(raw: RawClient) -> Result<Self, String> {
        let id = raw.client_id.clone();
        let at = |e: String| format!("client {id}: {e}");
        let secret =
            credential("secret", raw.secret, raw.secret_hash, raw.secret_file).map_err(at)?;
        let method = raw.auth_method.as_str();
        match raw.auth_method {
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
                if secret.is_none() {
                    return Err(at(format!(
                        "{method} needs one of secret, secret_hash and secret_file"
                    )));
                }
            }
            ClientAuthMethod::PrivateKeyJwt | ClientAuthMethod::None => {
                if secret.is_some() {
                    return Err(at(format!("{method} clients have no secret")));
                }
            }
        }
        let client = Self {
            metadata: ClientMetadata {
                client_name: raw.name.unwrap_or_else(|| raw.client_id.clone()),
                token_endpoint_auth_method: raw.auth_method,
                jwks: raw.jwks.map(public_jwks).transpose().map_err(at)?,
                grant_types: raw.grant_types,
                redirect_uris: raw.redirect_uris,
                post_logout_redirect_uris: raw.post_logout_redirect_uris,
                scope: raw.scopes,
                audiences: raw.audiences,
                tenant_id: raw.tenant_id,
                introspect_any: raw.introspect_any,
                dpop_bound_access_tokens: raw.dpop_bound_access_tokens,
                may_act: raw.may_act,
                impersonation: raw.impersonation,
                mfa: raw.mfa,
            },
            client_id: raw.client_id,
            secret,
            enabled: raw.enabled,
        };
        check_client(&client.record(Vec::new(), OffsetDateTime::UNIX_EPOCH)).map_err(at)?;
        Ok(client)
    }
}

impl SeedClient {
    /// The client record this entry stores, with its hashed secrets.
    fn record(&self, secrets: Vec<ClientSecret>, created_at: OffsetDateTime) -> Client {
        Client {
            client_id: self.client_id.clone(),
            metadata: self.metadata.clone(),
            enabled: self.enabled,
            secrets,
            created_at,
        }
    }
}

/// A credential ready to be hashed (or already hashed).
enum Resolved {
    Plain(Zeroizing<String>),
    Hash(String),
}

/// Reads a credential file (one trailing newline removed), bounded.
fn read_credential(path: &Path, what: &str) -> Result<Zeroizing<String>, SeedError> {
    let fail = |e: &dyn fmt::Display| {
        SeedError::Credential(format!("{what}: cannot read {}: {e}", path.display()))
    };
    let size = std::fs::metadata(path).map_err(|e| fail(&e))?.len();
    if size > MAX_SECRET_LEN as u64 + 2 {
        return Err(fail(&format_args!("longer than {MAX_SECRET_LEN} bytes")));
    }
    let mut text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(&e))?);
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() || text.len() > MAX_SECRET_LEN {
        return Err(fail(&format_args!("must hold 1 to {MAX_SECRET_LEN} bytes")));
    }
    Ok(text)
}

fn resolve(credential: &Credential, what: &str) -> Result<Resolved, SeedError> {
    Ok(match credential {
        Credential::Plain(p) => Resolved::Plain(p.clone()),
        Credential::Hash(h) => Resolved::Hash(h.clone()),
        Credential::File(path) => Resolved::Plain(read_credential(path, what)?),
    })
}

/// Hashes every plaintext at once on the blocking pool; hashes pass through. Returns the hashes in
/// order and how many were computed.
async fn hash_all(items: Vec<Resolved>) -> Result<(Vec<String>, usize), SeedError> {
    enum Pending {
        Ready(String),
        Hashing(tokio::task::JoinHandle<Result<String, cryptoutil_realm::RealmError>>),
    }
    let mut computed = 0;
    let pending: Vec<Pending> = items
        .into_iter()
        .map(|item| match item {
            Resolved::Hash(h) => Pending::Ready(h),
            Resolved::Plain(p) => {
                computed += 1;
                Pending::Hashing(tokio::task::spawn_blocking(move || hash_password(&p)))
            }
        })
        .collect();
    let mut hashes = Vec::with_capacity(pending.len());
    for item in pending {
        hashes.push(match item {
            Pending::Ready(h) => h,
            Pending::Hashing(task) => task
                .await
                .map_err(|e| SeedError::Internal(format!("hashing task failed: {e}")))?
                .map_err(|e| SeedError::Internal(format!("hashing failed: {e}")))?,
        });
    }
    Ok((hashes, computed))
}

impl Seed {
    /// The `https` origins of the clients' redirect URIs (`--demo` allows them cross-origin
    /// access to the protocol endpoints), each once, as `https://host[:port]/`.
    pub fn redirect_origins(&self) -> Vec<url::Url> {
        let mut origins: Vec<url::Url> = Vec::new();
        for uri in self.clients.iter().flat_map(|c| &c.metadata.redirect_uris) {
            let Ok(url) = url::Url::parse(uri) else {
                continue;
            };
            if url.scheme() != "https" {
                continue;
            }
            let Ok(origin) = url::Url::parse(&url.origin().ascii_serialization()) else {
                continue;
            };
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        origins
    }

    /// The shipped demo seed ([`DEMO_SEED`]).
    pub fn demo() -> Result<Self, SeedError> {
        Self::parse(DEMO_SEED, Path::new(DEMO_SEED_PATH))
    }

    /// Reads and parses a seed file.
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let fail = |e: &dyn fmt::Display| {
            SeedError::Invalid(format!("cannot read seed file {}: {e}", path.display()))
        };
        let size = std::fs::metadata(path).map_err(|e| fail(&e))?.len();
        if size > MAX_SEED_LEN as u64 {
            return Err(fail(&format_args!("larger than {MAX_SEED_LEN} bytes")));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(&e))?);
        Self::parse(&text, path)
    }

    /// Parses and checks a seed file's text. `path` names the file in errors
    /// (`path:line:column: …`) and anchors relative `*_file` paths (its directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, SeedError> {
        let invalid =
            |message: String| SeedError::Invalid(format!("{}: {message}", path.display()));
        if text.len() > MAX_SEED_LEN {
            return Err(invalid(format!("larger than {MAX_SEED_LEN} bytes")));
        }
        let mut seed: Self = serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            SeedError::Invalid(format!("{}{at}: {e}", path.display()))
        })?;
        for (i, user) in seed.users.iter().enumerate() {
            if seed.users[..i].iter().any(|u| u.username == user.username) {
                return Err(invalid(format!(
                    "users: username {:?} appears twice",
                    user.username
                )));
            }
        }
        for (i, client) in seed.clients.iter().enumerate() {
            if seed.clients[..i]
                .iter()
                .any(|c| c.client_id == client.client_id)
            {
                return Err(invalid(format!(
                    "clients: client_id {:?} appears twice",
                    client.client_id
                )));
            }
        }
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let anchor = |credential: &mut Credential| {
            if let Credential::File(file) = credential
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
        };
        for user in &mut seed.users {
            anchor(&mut user.credential);
        }
        for client in &mut seed.clients {
            if let Some(secret) = &mut client.secret {
                anchor(secret);
            }
        }
        Ok(seed)
    }

    /// Seeds `store`: with `reset`, first deletes this seed's users and clients (and nothing
    /// else); then creates those missing, by username and `client_id`, leaving existing ones as
    /// they are. Credential files are read before anything changes; PBKDF2 runs only for records
    /// being written. Safe to run from several instances at once. A user's `totp_secret` is
    /// sealed with `totp_sealer` and enrolled (confirmed) when the user has no authenticator;
    /// `reset` removes the seed users' factors with them.
    pub async fn apply(
        &self,
        store: &Store,
        reset: bool,
        totp_sealer: &SecretSealer,
    ) -> Result<SeedReport, SeedError> {
        self.warn_plaintext();
        let user_credentials = self
            .users
            .iter()
            .map(|u| resolve(&u.credential, &format!("user {}", u.username)))
            .collect::<Result<Vec<_>, _>>()?;
        let client_credentials = self
            .clients
            .iter()
            .map(|c| {
                c.secret
                    .as_ref()
                    .map(|s| resolve(s, &format!("client {}", c.client_id)))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut report = SeedReport::default();
        if reset {
            for user in &self.users {
                if let Some(existing) = store.user_by_username(&user.username).await? {
                    store.reset_factors(&existing.id).await?;
                }
                report.users_deleted += usize::from(store.delete_user(&user.username).await?);
            }
            for client in &self.clients {
                report.clients_deleted +=
                    usize::from(store.delete_client(&client.client_id).await?);
            }
        }

        // What is missing, and the credentials to hash for it (users first, then clients).
        let mut new_users = Vec::new();
        let mut to_hash = Vec::new();
        for (user, credential) in self.users.iter().zip(user_credentials) {
            if store.user_by_username(&user.username).await?.is_none() {
                new_users.push(user);
                to_hash.push(credential);
            }
        }
        let mut new_clients = Vec::new();
        for (client, credential) in self.clients.iter().zip(client_credentials) {
            if store.client(&client.client_id).await?.is_none() {
                new_clients.push(client);
                to_hash.extend(credential);
            }
        }
        let (hashes, computed) = hash_all(to_hash).await?;
        report.credentials_hashed = computed;
        let mut hashes = hashes.into_iter();

        let now = OffsetDateTime::now_utc();
        for user in &new_users {
            let password_hash = hashes
                .next()
                .ok_or_else(|| SeedError::Internal("missing hash".to_owned()))?;
            let record = User {
                id: uuid::Uuid::now_v7().to_string(),
                username: user.username.clone(),
                password_hash,
                enabled: true,
                roles: user.roles.clone(),
                tenant_id: user.tenant_id.clone(),
                name: user.name.clone(),
                given_name: user.given_name.clone(),
                family_name: user.family_name.clone(),
                email: user.email.clone(),
                email_verified: user.email_verified,
                version: 1,
                created_at: now,
            };
            // A concurrent seeder may have created it meanwhile: the upsert then keeps that
            // user's id (same demo data, fresh hash).
            store.upsert_user(&record).await?;
            report.users_created += 1;
        }
        for client in &new_clients {
            let secrets = match client.secret {
                Some(_) => vec![ClientSecret {
                    hash: hashes
                        .next()
                        .ok_or_else(|| SeedError::Internal("missing hash".to_owned()))?,
                    expires_at: None,
                }],
                None => Vec::new(),
            };
            let record = client.record(secrets, now);
            match store.insert_client(&record).await {
                Ok(()) => report.clients_created += 1,
                // Another instance seeded it meanwhile.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.enrol_totp(store, totp_sealer, now).await?;
        tracing::info!(
            users_deleted = report.users_deleted,
            clients_deleted = report.clients_deleted,
            users_created = report.users_created,
            clients_created = report.clients_created,
            credentials_hashed = report.credentials_hashed,
            "identity demo seed applied"
        );
        Ok(report)
    }

    /// Logs a loud warning naming the entries whose credentials are inline plaintext.
    /// Enrols the seed users' `totp_secret`s, sealed, for users without an authenticator.
    async fn enrol_totp(
        &self,
        store: &Store,
        sealer: &SecretSealer,
        now: OffsetDateTime,
    ) -> Result<(), SeedError> {
        for user in &self.users {
            let Some(secret) = &user.totp_secret else {
                continue;
            };
            let Some(record) = store.user_by_username(&user.username).await? else {
                continue;
            };
            if store.totp_factor(&record.id).await?.is_some() {
                continue;
            }
            let sealed = seal_base32_secret(sealer, &record.id, secret)
                .map_err(|e| SeedError::Internal(e.to_string()))?;
            store
                .put_totp_factor(&TotpFactor {
                    user_id: record.id.clone(),
                    sealed_secret: sealed,
                    algorithm: TotpAlgorithm::SHA1.as_str().to_owned(),
                    digits: 6,
                    period_secs: 30,
                    confirmed_at: Some(now),
                    last_used_step: None,
                    created_at: now,
                    last_used_at: None,
                })
                .await?;
        }
        Ok(())
    }

    fn warn_plaintext(&self) {
        let users = self
            .users
            .iter()
            .filter(|u| matches!(u.credential, Credential::Plain(_)))
            .map(|u| format!("user {}", u.username));
        let clients = self
            .clients
            .iter()
            .filter(|c| matches!(c.secret, Some(Credential::Plain(_))))
            .map(|c| format!("client {}", c.client_id));
        let entries: Vec<String> = users.chain(clients).collect();
        if !entries.is_empty() {
            tracing::warn!(
                entries = %entries.join(", "),
                "DEMO ONLY: the seed file holds plaintext passwords or client secrets (hashed \
                 before storage, never logged). Never use such a seed outside a demo: give \
                 password_hash/secret_hash, or password_file/secret_file (Docker secrets)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::storage::DatabaseSettings;

    async fn memory_store() -> Store {
        Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap()
    }

    fn verifies(hash: &str, password: &str) -> bool {
        PasswordHash::parse(hash).unwrap().verify(password)
    }

    fn sealer() -> SecretSealer {
        SecretSealer::new(&[42u8; 32]).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_shipped_seed_has_the_canonical_demo_data() {
        let seed = Seed::demo().unwrap();
        let users: Vec<_> = seed.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(users, ["demo-user", "demo-admin", "demo-mfa-user"]);
        assert_eq!(
            seed.users[2].totp_secret.as_deref(),
            Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        );
        assert!(seed.users[..2].iter().all(|u| u.totp_secret.is_none()));
        for user in &seed.users {
            let expected = format!("{}-password", user.username);
            assert_eq!(
                user.credential,
                Credential::Plain(Zeroizing::new(expected)),
                "{}",
                user.username
            );
            assert!(user.email_verified);
            assert_eq!(
                user.email.as_deref(),
                Some(format!("{}@cryptoutil.demo.local", user.username).as_str())
            );
            // demo-user acts in the KMS's demo-tenant (its delegated tokens, demo all).
            let tenant = (user.username == "demo-user").then_some("demo-tenant");
            assert_eq!(user.tenant_id.as_deref(), tenant);
        }
        assert!(seed.users[0].roles.is_empty());
        assert_eq!(seed.users[0].name.as_deref(), Some("Demo User"));
        assert_eq!(seed.users[1].roles, ["admin"]);

        let client = |id: &str| seed.clients.iter().find(|c| c.client_id == id).unwrap();
        let ids: Vec<_> = seed.clients.iter().map(|c| c.client_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "demo-confidential-client",
                "demo-spa-client",
                "demo-cli",
                "demo-rs",
                "demo-kms-client",
                "demo-kms-readonly-client",
                "kms-introspection-client"
            ]
        );
        for c in &seed.clients {
            assert!(c.enabled);
            match c.metadata.token_endpoint_auth_method {
                ClientAuthMethod::None => assert_eq!(c.secret, None),
                _ => assert_eq!(
                    c.secret,
                    Some(Credential::Plain(Zeroizing::new(format!(
                        "{}-secret",
                        c.client_id
                    )))),
                ),
            }
            assert_eq!(
                c.metadata.introspect_any,
                c.client_id == "kms-introspection-client"
            );
        }
        use GrantType::{AuthorizationCode, ClientCredentials, RefreshToken};
        let confidential = client("demo-confidential-client");
        assert_eq!(
            confidential.metadata.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            confidential.metadata.grant_types,
            [AuthorizationCode, RefreshToken, ClientCredentials]
        );
        assert_eq!(
            confidential.metadata.scope,
            ["openid", "profile", "email", "offline_access"]
        );
        assert_eq!(
            confidential.metadata.redirect_uris,
            ["https://localhost:8084/confidential/callback"]
        );
        assert_eq!(
            confidential.metadata.post_logout_redirect_uris,
            ["https://localhost:8084/"]
        );
        let spa = client("demo-spa-client");
        assert_eq!(
            spa.metadata.token_endpoint_auth_method,
            ClientAuthMethod::None
        );
        assert_eq!(spa.metadata.grant_types, [AuthorizationCode, RefreshToken]);
        assert_eq!(
            spa.metadata.redirect_uris,
            ["https://localhost:8084/callback"]
        );
        assert_eq!(
            spa.metadata.post_logout_redirect_uris,
            ["https://localhost:8084/"]
        );
        assert_eq!(
            spa.metadata.scope,
            [
                "openid",
                "profile",
                "email",
                "offline_access",
                "read:resource",
                "write:resource",
                "kms:encrypt"
            ]
        );
        assert_eq!(spa.metadata.audiences, ["cryptoutil-rs"]);
        assert_eq!(spa.metadata.may_act, ["demo-rs"]);
        let cli = client("demo-cli");
        assert_eq!(
            cli.metadata.token_endpoint_auth_method,
            ClientAuthMethod::None
        );
        assert_eq!(
            cli.metadata.grant_types,
            [GrantType::DeviceCode, RefreshToken]
        );
        assert!(cli.metadata.redirect_uris.is_empty());
        assert_eq!(
            cli.metadata.scope,
            strings(&[
                "openid",
                "profile",
                "email",
                "offline_access",
                "kms:read",
                "kms:write",
                "kms:admin"
            ])
        );
        assert_eq!(cli.metadata.audiences, ["cryptoutil-kms"]);
        let rs = client("demo-rs");
        assert_eq!(
            rs.metadata.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic
        );
        assert_eq!(rs.metadata.grant_types, [GrantType::TokenExchange]);
        assert_eq!(rs.metadata.audiences, ["cryptoutil-kms"]);
        assert!(!rs.metadata.impersonation);
        for (id, scopes) in [
            ("demo-kms-client", strings(&["kms:read", "kms:write"])),
            ("demo-kms-readonly-client", strings(&["kms:read"])),
        ] {
            let c = client(id);
            assert_eq!(
                c.metadata.token_endpoint_auth_method,
                ClientAuthMethod::ClientSecretBasic
            );
            assert_eq!(c.metadata.grant_types, [ClientCredentials]);
            assert_eq!(c.metadata.scope, scopes);
            assert_eq!(c.metadata.audiences, ["cryptoutil-kms"]);
            assert_eq!(c.metadata.tenant_id.as_deref(), Some("demo-tenant"));
        }
        let introspection = client("kms-introspection-client");
        assert!(introspection.metadata.grant_types.is_empty());
        assert!(introspection.metadata.scope.is_empty());
        // `--demo` allows the sample apps' origin cross-origin.
        let origins: Vec<String> = seed
            .redirect_origins()
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect();
        assert_eq!(origins, ["https://localhost:8084"]);

        // Debug output never shows a credential.
        let debug = format!("{seed:?}");
        assert!(!debug.contains("-password\""), "{debug}");
        assert!(!debug.contains("-secret\""), "{debug}");
    }

    #[test]
    fn bad_seeds_are_refused_with_their_location() {
        let path = Path::new("conf/seed.yml");
        let err = |text: &str| match Seed::parse(text, path) {
            Err(SeedError::Invalid(message)) => message,
            other => panic!("expected an error for {text:?}, got {other:?}"),
        };
        let user = "users:\n  - username: u\n    password: p\n";
        // Unknown keys, at every level, with line and column.
        let e = err("users: []\ncolour: red\n");
        assert!(e.starts_with("conf/seed.yml:2:1: "), "{e}");
        assert!(e.contains("colour"), "{e}");
        let e = err(&format!("{user}    colour: red\n"));
        assert!(e.starts_with("conf/seed.yml:"), "{e}");
        assert!(e.contains("colour"), "{e}");
        let e = err("clients:\n  - client_id: c\n    auth_method: none\n    tint: blue\n");
        assert!(e.contains("tint"), "{e}");
        // Credentials: exactly one source; hashes must parse.
        let e = err("users:\n  - username: u\n");
        assert!(e.starts_with("conf/seed.yml:"), "{e}");
        assert!(e.contains("user u: give one of password"), "{e}");
        let e = err("users:\n  - username: u\n    password: p\n    password_file: /x\n");
        assert!(e.contains("only one of password"), "{e}");
        let e = err("users:\n  - username: u\n    password_hash: plain\n");
        assert!(e.contains("password_hash"), "{e}");
        assert!(!e.contains("plain"), "the rejected hash is not echoed: {e}");
        let e = err("users:\n  - username: u\n    password_file: file://relative\n");
        assert!(e.contains("absolute file URL"), "{e}");
        let e = err("users:\n  - username: u\n    password: \"\"\n");
        assert!(e.contains("password must be"), "{e}");
        // Names, duplicates.
        assert!(err("users:\n  - username: a b\n    password: p\n").contains("whitespace"));
        let e = err(&format!("{user}  - username: u\n    password: q\n"));
        assert!(e.contains("users: username \"u\" appears twice"), "{e}");
        assert!(err(&format!("{user}    email: nobody\n")).contains("email \"nobody\" has no @"));
        // Clients.
        let client = |rest: &str| format!("clients:\n  - client_id: c\n{rest}");
        let e = err(&client("    auth_method: client_secret_basic\n"));
        assert!(
            e.contains("client c: client_secret_basic needs one of secret"),
            "{e}"
        );
        let e = err(&client("    auth_method: none\n    secret: s\n"));
        assert!(e.contains("none clients have no secret"), "{e}");
        let e = err(&client("    auth_method: sometimes\n"));
        assert!(e.contains("unknown variant"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    grant_types: [password]\n",
        ));
        assert!(e.contains("unknown variant"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    grant_types: [authorization_code]\n",
        ));
        assert!(e.contains("authorization_code needs redirect_uris"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    grant_types: [client_credentials]\n",
        ));
        assert!(
            e.contains("public clients cannot use client_credentials"),
            "{e}"
        );
        let e = err(&client("    auth_method: none\n    introspect_any: true\n"));
        assert!(e.contains("introspect_any"), "{e}");
        let e = err(&client(
            "    auth_method: client_secret_post\n    secret: s\n    grant_types: [refresh_token]\n",
        ));
        assert!(e.contains("refresh_token needs authorization_code"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    grant_types: [authorization_code]\n    redirect_uris: [\"https://a.example/cb#x\"]\n",
        ));
        assert!(e.contains("fragment"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    grant_types: [authorization_code]\n    redirect_uris: [\"https://A.example/cb\"]\n",
        ));
        assert!(e.contains("normal form"), "{e}");
        let e = err(&client(
            "    auth_method: none\n    redirect_uris: [\"not a uri\"]\n",
        ));
        assert!(e.contains("redirect_uri"), "{e}");
        let e = err(&client("    auth_method: none\n    scopes: [\"a\\\"b\"]\n"));
        assert!(e.contains("not a valid scope token"), "{e}");
        let e = err(&client("    auth_method: none\n    scopes: [a, a]\n"));
        assert!(e.contains("scopes lists \"a\" twice"), "{e}");
        let e = err(&client("    auth_method: private_key_jwt\n"));
        assert!(e.contains("private_key_jwt needs jwks"), "{e}");
        let public = cryptoutil_jose::jwk::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256)
            .unwrap()
            .to_public()
            .unwrap();
        let e = err(&client(&format!(
            "    auth_method: none\n    jwks: '{{\"keys\":[{}]}}'\n",
            &*public.to_json(false)
        )));
        assert!(e.contains("jwks is for private_key_jwt"), "{e}");
        let e = err(&client(
            "    auth_method: private_key_jwt\n    jwks: {keys: [{kty: oct, k: AAAAAAAAAAAAAAAAAAAAAA}]}\n",
        ));
        assert!(e.contains("public keys only"), "{e}");
        let e = err(
            "clients:\n  - {client_id: c, auth_method: none}\n  - {client_id: c, auth_method: none}\n",
        );
        assert!(e.contains("clients: client_id \"c\" appears twice"), "{e}");
        // Not YAML at all.
        assert!(err("users: [").starts_with("conf/seed.yml:"));
    }

    #[test]
    fn public_jwks_and_defaults_are_accepted() {
        let jwk = cryptoutil_jose::jwk::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256)
            .unwrap()
            .to_public()
            .unwrap();
        let text = format!(
            "clients:\n  - client_id: jwt-client\n    auth_method: private_key_jwt\n    jwks: '{{\"keys\":[{}]}}'\n    grant_types: [client_credentials]\n    enabled: false\n",
            &*jwk.to_json(false)
        );
        let seed = Seed::parse(&text, Path::new("s.yml")).unwrap();
        let c = &seed.clients[0];
        assert_eq!(c.metadata.client_name, "jwt-client");
        assert!(!c.enabled);
        let stored =
            cryptoutil_jose::jwk::JwkSet::from_json(c.metadata.jwks.as_deref().unwrap()).unwrap();
        assert_eq!(stored.keys[0].thumbprint(), jwk.thumbprint());
        assert!(seed.users.is_empty());
        assert_eq!(Seed::parse("{}", Path::new("s.yml")).unwrap().clients, []);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_seed_is_idempotent_and_its_credentials_verify() {
        let store = memory_store().await;
        let seed = Seed::demo().unwrap();
        let report = seed.apply(&store, false, &sealer()).await.unwrap();
        assert_eq!(
            report,
            SeedReport {
                users_created: 3,
                clients_created: 7,
                credentials_hashed: 8,
                ..SeedReport::default()
            }
        );
        let users = [
            store.user_by_username("demo-user").await.unwrap().unwrap(),
            store.user_by_username("demo-admin").await.unwrap().unwrap(),
            store
                .user_by_username("demo-mfa-user")
                .await
                .unwrap()
                .unwrap(),
        ];
        let summary = store.factor_summary(&users[2].id).await.unwrap();
        assert!(summary.totp);
        assert!(!store.factor_summary(&users[0].id).await.unwrap().totp);
        let clients = store.clients().await.unwrap();
        assert_eq!(clients.len(), 7);

        // A second run writes nothing and hashes nothing.
        let again = seed.apply(&store, false, &sealer()).await.unwrap();
        assert_eq!(again, SeedReport::default());
        assert_eq!(store.clients().await.unwrap(), clients);
        for user in &users {
            let now = store.user(&user.id).await.unwrap().unwrap();
            assert_eq!(&now, user);
        }

        for user in &users {
            uuid::Uuid::parse_str(&user.id).unwrap();
            assert!(user.enabled);
            assert_eq!(user.version, 1);
            assert!(verifies(
                &user.password_hash,
                &format!("{}-password", user.username)
            ));
            assert!(!verifies(&user.password_hash, "wrong"));
        }
        assert_eq!(users[0].name.as_deref(), Some("Demo User"));
        assert!(users[0].roles.is_empty());
        assert_eq!(users[1].roles, ["admin"]);
        for client in &clients {
            let spec = seed
                .clients
                .iter()
                .find(|c| c.client_id == client.client_id)
                .unwrap();
            assert_eq!(client.metadata.scope, spec.metadata.scope);
            assert_eq!(client.metadata.grant_types, spec.metadata.grant_types);
            assert_eq!(client.metadata.audiences, spec.metadata.audiences);
            assert_eq!(client.metadata.tenant_id, spec.metadata.tenant_id);
            assert_eq!(client.metadata.redirect_uris, spec.metadata.redirect_uris);
            if client.is_public() {
                assert!(client.secrets.is_empty());
            } else {
                assert_eq!(client.secrets.len(), 1);
                assert_eq!(client.secrets[0].expires_at, None);
                assert!(verifies(
                    &client.secrets[0].hash,
                    &format!("{}-secret", client.client_id)
                ));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_totp_secret_is_enrolled_sealed_once_and_reset_with_the_user() {
        let store = memory_store().await;
        let text = "users:\n  - username: demo-totp\n    password: demo-totp-password\n    \
                    totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n";
        let seed = Seed::parse(text, Path::new("totp.yml")).unwrap();
        seed.apply(&store, false, &sealer()).await.unwrap();
        let user = store.user_by_username("demo-totp").await.unwrap().unwrap();
        let factor = store.totp_factor(&user.id).await.unwrap().unwrap();
        assert!(factor.confirmed_at.is_some());
        assert_eq!(
            (factor.algorithm.as_str(), factor.digits, factor.period_secs),
            ("SHA1", 6, 30)
        );
        assert!(!factor.sealed_secret.contains("JBSWY3DP"));
        let opened = sealer().open(&user.id, &factor.sealed_secret).unwrap();
        assert_eq!(
            crate::mfa::totp::base32_encode(&opened),
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        );
        // Idempotent: a second run keeps the enrolment (and its spent steps).
        store
            .claim_totp_step(
                &user.id,
                &factor.sealed_secret,
                5,
                false,
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        seed.apply(&store, false, &sealer()).await.unwrap();
        let again = store.totp_factor(&user.id).await.unwrap().unwrap();
        assert_eq!(again.last_used_step, Some(5));
        // Reset: a new user, a fresh enrolment, and nothing left of the old one.
        seed.apply(&store, true, &sealer()).await.unwrap();
        let fresh = store.user_by_username("demo-totp").await.unwrap().unwrap();
        assert_ne!(fresh.id, user.id);
        assert!(store.totp_factor(&user.id).await.unwrap().is_none());
        let factor = store.totp_factor(&fresh.id).await.unwrap().unwrap();
        assert_eq!(factor.last_used_step, None);
        // A secret that is not strict base32, or too short, is refused at parse time.
        for bad in ["jbswy3dpehpk3pxp", "JBSWY3DP", "JBSWY3DPEHPK3PX1"] {
            let text =
                format!("users:\n  - username: x\n    password: p\n    totp_secret: {bad}\n");
            assert!(Seed::parse(&text, Path::new("bad.yml")).is_err(), "{bad}");
        }
    }

    const SMALL: &str = "users:\n  - username: demo-one\n    password: demo-one-password\n    \
        name: One\nclients:\n  - client_id: demo-one-client\n    auth_method: client_secret_post\n    \
        secret: demo-one-client-secret\n    grant_types: [client_credentials]\n    scopes: [a]\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn existing_records_are_kept_and_reset_replaces_only_the_seeded_ones() {
        let store = memory_store().await;
        let seed = Seed::parse(SMALL, Path::new("small.yml")).unwrap();
        seed.apply(&store, false, &sealer()).await.unwrap();
        let original = store.user_by_username("demo-one").await.unwrap().unwrap();

        // Someone changes the seeded records and adds their own.
        let changed = store
            .upsert_user(&User {
                name: Some("Changed".to_owned()),
                ..original.clone()
            })
            .await
            .unwrap();
        let mut client = store.client("demo-one-client").await.unwrap().unwrap();
        client.metadata.scope = strings(&["b"]);
        store.upsert_client(&client).await.unwrap();
        let other_user = store
            .upsert_user(&User {
                id: uuid::Uuid::now_v7().to_string(),
                username: "someone-else".to_owned(),
                ..original.clone()
            })
            .await
            .unwrap();
        let other_client = Client {
            client_id: "someone-elses-client".to_owned(),
            ..client.clone()
        };
        store.insert_client(&other_client).await.unwrap();

        // --demo leaves them all as they are.
        assert_eq!(
            seed.apply(&store, false, &sealer()).await.unwrap(),
            SeedReport::default()
        );
        assert_eq!(
            store.user_by_username("demo-one").await.unwrap(),
            Some(changed.clone())
        );
        assert_eq!(
            store.client("demo-one-client").await.unwrap(),
            Some(client.clone())
        );

        // --reset-demo restores the seeded ones and touches nothing else.
        let report = seed.apply(&store, true, &sealer()).await.unwrap();
        assert_eq!(
            report,
            SeedReport {
                users_deleted: 1,
                clients_deleted: 1,
                users_created: 1,
                clients_created: 1,
                credentials_hashed: 2,
            }
        );
        let restored = store.user_by_username("demo-one").await.unwrap().unwrap();
        assert_ne!(restored.id, original.id);
        assert_eq!(restored.name.as_deref(), Some("One"));
        assert!(verifies(&restored.password_hash, "demo-one-password"));
        let restored = store.client("demo-one-client").await.unwrap().unwrap();
        assert_eq!(restored.metadata.scope, ["a"]);
        assert_eq!(
            restored.metadata.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretPost
        );
        assert!(verifies(
            &restored.secrets[0].hash,
            "demo-one-client-secret"
        ));
        assert_eq!(
            store.user_by_username("someone-else").await.unwrap(),
            Some(other_user)
        );
        assert_eq!(
            store.client("someone-elses-client").await.unwrap(),
            Some(other_client)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn secret_files_and_hashes_are_used_as_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        let relative = dir.path().join("secrets/client-secret");
        std::fs::write(&relative, "from-a-docker-secret\n").unwrap();
        let absolute = dir.path().join("secrets/password");
        std::fs::write(&absolute, "file-password\r\n").unwrap();
        let hash = hash_password("hashed-password").unwrap();
        let secret_hash = hash_password("hashed-secret").unwrap();
        let text = format!(
            "users:\n\
             \x20 - username: file-user\n    password_file: file://{}\n\
             \x20 - username: hash-user\n    password_hash: \"{hash}\"\n\
             clients:\n\
             \x20 - client_id: file-client\n    auth_method: client_secret_basic\n    secret_file: secrets/client-secret\n\
             \x20 - client_id: hash-client\n    auth_method: client_secret_basic\n    secret_hash: \"{secret_hash}\"\n",
            absolute.display()
        );
        let seed_path = dir.path().join("seed.yml");
        std::fs::write(&seed_path, &text).unwrap();
        let seed = Seed::load(&seed_path).unwrap();
        assert_eq!(seed.clients[0].secret, Some(Credential::File(relative)));
        let debug = format!("{seed:?}");
        assert!(!debug.contains(&hash), "{debug}");

        let store = memory_store().await;
        let report = seed.apply(&store, false, &sealer()).await.unwrap();
        assert_eq!(report.users_created, 2);
        assert_eq!(report.clients_created, 2);
        assert_eq!(report.credentials_hashed, 2);
        let user = store.user_by_username("file-user").await.unwrap().unwrap();
        assert!(verifies(&user.password_hash, "file-password"));
        let user = store.user_by_username("hash-user").await.unwrap().unwrap();
        assert_eq!(user.password_hash, hash);
        let client = store.client("file-client").await.unwrap().unwrap();
        assert!(verifies(&client.secrets[0].hash, "from-a-docker-secret"));
        let client = store.client("hash-client").await.unwrap().unwrap();
        assert_eq!(client.secrets[0].hash, secret_hash);
    }

    #[tokio::test]
    async fn a_missing_or_empty_secret_file_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let store = memory_store().await;
        for (file, expected) in [
            (dir.path().join("missing"), "cannot read"),
            (empty, "must hold 1 to"),
        ] {
            let text = format!(
                "users:\n  - username: u\n    password: p\nclients:\n  - client_id: c\n    \
                 auth_method: client_secret_basic\n    secret_file: {}\n",
                file.display()
            );
            let seed = Seed::parse(&text, Path::new("s.yml")).unwrap();
            match seed.apply(&store, true, &sealer()).await {
                Err(SeedError::Credential(message)) => {
                    assert!(message.contains("client c"), "{message}");
                    assert!(message.contains(expected), "{message}");
                }
                other => panic!("expected a credential error, got {other:?}"),
            }
            assert_eq!(store.user_by_username("u").await.unwrap(), None);
            assert!(store.clients().await.unwrap().is_empty());
        }
        assert!(matches!(
            Seed::load(&dir.path().join("nope.yml")),
            Err(SeedError::Invalid(m)) if m.contains("cannot read seed file")
        ));
    }
}
