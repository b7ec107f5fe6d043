//! Demo seeding (SPEC §3.7): tenants, database-realm users and elastic keys from
//! `deployments/kms/config/demo-seed.yml`, idempotent by name. Seeding never relaxes security: the
//! demo users are ordinary realm users with PBKDF2 hashes, the keys ordinary keys.

use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::keys::{KeyService, NewElasticKey};
use crate::model::{ElasticKeyFilter, PageRequest, Principal, RealmUserRecord, Sort, TenantId};
use crate::repository::{BarrierStore, DirectoryStore, KeyStore, StoreError};
use crate::scopes;

/// The seed file shipped with the product.
pub const DEMO_SEED: &str = include_str!("../../../deployments/kms/config/demo-seed.yml");

/// The demo data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Tenant names.
    pub tenants: Vec<String>,
    /// Database-realm users.
    #[serde(default)]
    pub users: Vec<SeedUser>,
    /// Elastic keys.
    #[serde(default)]
    pub elastic_keys: Vec<SeedKey>,
}

/// A demo user. The password is demo data from the seed file, hashed before it is stored.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Username.
    pub username: String,
    /// Demo password (hashed at seeding).
    pub password: String,
    /// Roles (scope names).
    pub roles: Vec<String>,
    /// Tenant names; the first is the default.
    pub tenants: Vec<String>,
}

impl std::fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedUser")
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// A demo elastic key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    /// Tenant name.
    pub tenant: String,
    /// Key name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Algorithm.
    pub algorithm: String,
    /// Number of material key versions.
    pub versions: u32,
}

/// What seeding did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Tenants created.
    pub tenants_created: usize,
    /// Users created.
    pub users_created: usize,
    /// Keys created.
    pub keys_created: usize,
}

impl Seed {
    /// The shipped demo seed.
    ///
    /// In a FIPS build (cargo feature `fips`) the keys whose algorithm that build refuses (the
    /// ML-KEM JWE key, see `cryptoutil_jose::policy`) are left out, so `--demo` still starts; a
    /// seed file of the operator's own is never filtered: such a key there is an error.
    pub fn demo() -> Result<Self, String> {
        let mut seed = Self::parse(DEMO_SEED, Path::new("deployments/kms/config/demo-seed.yml"))?;
        seed.elastic_keys.retain(|key| {
            !matches!(
                cryptoutil_jose::KeyAlgorithm::parse(&key.algorithm)
                    .and_then(cryptoutil_jose::policy::check_key_algorithm),
                Err(cryptoutil_jose::JoseError::NotFipsApproved { .. })
            )
        });
        Ok(seed)
    }

    /// Parses and checks a seed file's text.
    pub fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let seed: Self = serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            format!("{}{at}: {e}", path.display())
        })?;
        for user in &seed.users {
            if let Some(unknown) = user.tenants.iter().find(|t| !seed.tenants.contains(t)) {
                return Err(format!(
                    "user {} names an unknown tenant {unknown}",
                    user.username
                ));
            }
        }
        for key in &seed.elastic_keys {
            if !seed.tenants.contains(&key.tenant) {
                return Err(format!(
                    "key {} names an unknown tenant {}",
                    key.name, key.tenant
                ));
            }
            if !(1..=10).contains(&key.versions) {
                return Err(format!("key {}: versions must be 1 to 10", key.name));
            }
        }
        Ok(seed)
    }

    /// Creates what is missing, by name. `hash` turns a demo password into a stored hash; the
    /// missing users' passwords are hashed concurrently on the blocking pool (PBKDF2 at 600,000
    /// iterations is the cost of seeding).
    pub async fn apply<S, H>(
        &self,
        store: &S,
        keys: &KeyService<S>,
        hash: H,
    ) -> Result<SeedReport, String>
    where
        S: KeyStore + BarrierStore + DirectoryStore,
        H: Fn(&str) -> Result<String, String> + Clone + Send + 'static,
    {
        let mut report = SeedReport::default();
        let mut ids = Vec::new();
        for name in &self.tenants {
            let existed = store
                .tenant_by_name(name)
                .await
                .map_err(store_error)?
                .is_some();
            let tenant = store.ensure_named_tenant(name).await.map_err(store_error)?;
            report.tenants_created += usize::from(!existed);
            ids.push((name.clone(), tenant.id));
        }
        let mut missing = Vec::new();
        for user in &self.users {
            if store
                .realm_user(&user.username)
                .await
                .map_err(store_error)?
                .is_none()
            {
                let (hash, password) =
                    (hash.clone(), zeroize::Zeroizing::new(user.password.clone()));
                let hashing = tokio::task::spawn_blocking(move || hash(&password));
                missing.push((user, hashing));
            }
        }
        for (user, hashing) in missing {
            let password_hash = hashing
                .await
                .map_err(|e| format!("seeding: hashing task failed: {e}"))??;
            let now = OffsetDateTime::now_utc();
            let record = RealmUserRecord {
                username: user.username.clone(),
                password_hash,
                roles: user.roles.clone(),
                tenants: user.tenants.clone(),
                enabled: true,
                metadata: "{\"demo\":true}".to_owned(),
                certificate_subject: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            match store.insert_realm_user(&record).await {
                Ok(()) => report.users_created += 1,
                // Another instance seeded it meanwhile.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        for key in &self.elastic_keys {
            let Some((_, tenant)) = ids.iter().find(|(name, _)| *name == key.tenant) else {
                continue;
            };
            if seed_key(keys, *tenant, key).await? {
                report.keys_created += 1;
            }
        }
        Ok(report)
    }
}

/// Creates one key with its versions unless a key of that name exists in the tenant.
async fn seed_key<S>(keys: &KeyService<S>, tenant: TenantId, key: &SeedKey) -> Result<bool, String>
where
    S: KeyStore + BarrierStore,
{
    let seeder = Principal {
        tenant,
        tenants: vec![tenant],
        subject: "demo-seed".to_owned(),
        scopes: scopes::OPERATION_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        request_id: None,
        actor: None,
    };
    let filter = ElasticKeyFilter {
        names: vec![key.name.clone()],
        ..ElasticKeyFilter::default()
    };
    let existing = keys
        .list(&seeder, &filter, Sort::default(), PageRequest::default())
        .await
        .map_err(|e| format!("seeding {}: {e}", key.name))?;
    if existing.total > 0 {
        return Ok(false);
    }
    let created = keys
        .create(
            &seeder,
            NewElasticKey {
                name: key.name.clone(),
                description: key.description.clone(),
                algorithm: Some(key.algorithm.clone()),
                versioning_allowed: true,
                import_allowed: false,
                export_allowed: false,
            },
        )
        .await;
    let created = match created {
        Ok(k) => k,
        // Another instance seeded it meanwhile.
        Err(crate::keys::KeyError::Conflict(_)) => return Ok(false),
        Err(e) => return Err(format!("seeding {}: {e}", key.name)),
    };
    for _ in 1..key.versions {
        keys.rotate(&seeder, created.id)
            .await
            .map_err(|e| format!("seeding {}: {e}", key.name))?;
    }
    Ok(true)
}

fn store_error(e: StoreError) -> String {
    format!("seeding: {e}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_seed_has_the_canonical_demo_data() {
        let seed = Seed::demo().unwrap();
        assert_eq!(seed.tenants, ["demo-tenant", "demo-tenant-2"]);
        let users: Vec<_> = seed.users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(
            users,
            [
                "demo-admin",
                "demo-tenant-admin",
                "demo-user",
                "demo-readonly",
                "demo-user-2"
            ]
        );
        for user in &seed.users {
            assert_eq!(user.password, format!("{}-password", user.username));
        }
        let keys: Vec<_> = seed
            .elastic_keys
            .iter()
            .map(|k| (k.name.as_str(), k.algorithm.as_str(), k.versions))
            .collect();
        let expected: Vec<_> = [
            ("demo-encryption-aes256", "A256GCM/dir", 3),
            ("demo-wrapping-aes256kw", "A256GCM/A256KW", 1),
            ("demo-signing-rsa2048", "RS256", 2),
            ("demo-signing-ec256", "ES256", 2),
            ("demo-signing-ed25519", "EdDSA", 1),
            ("demo-signing-mldsa65", "ML-DSA-65", 1),
            ("demo-encryption-mlkem768", "A256GCM/ML-KEM-768", 1),
        ]
        .into_iter()
        // The FIPS build leaves out what it refuses (ML-KEM JWE).
        .filter(|(_, alg, _)| cryptoutil_jose::policy::allows(alg.rsplit('/').next().unwrap()))
        .collect();
        assert_eq!(keys, expected);
        assert_eq!(
            keys.len(),
            if cryptoutil_jose::policy::ENFORCED {
                6
            } else {
                7
            }
        );
        assert!(!format!("{:?}", seed.users[0]).contains("password\""));
    }

    #[test]
    fn bad_seeds_are_refused_with_their_location() {
        let path = Path::new("seed.yml");
        assert!(Seed::parse("tenants: [a]\nusers:\n  - username: u\n    password: p\n    roles: []\n    tenants: [b]\n", path).unwrap_err().contains("unknown tenant b"));
        assert!(
            Seed::parse("tenants: [a]\ncolour: red\n", path)
                .unwrap_err()
                .contains("seed.yml:")
        );
        assert!(Seed::parse("tenants: [a]\nelastic_keys:\n  - {tenant: a, name: k, algorithm: ES256, versions: 0}\n", path).unwrap_err().contains("versions"));
    }
}
