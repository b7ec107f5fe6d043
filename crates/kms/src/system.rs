//! The system principal: the KMS itself, acting without a caller (the purge task, schedulers
//! such as a rotation scheduler). It goes through the key service like any caller, with the
//! scopes it needs, and the audit trail names it [`SUBJECT`].

use crate::model::{Principal, TenantId};
use crate::scopes;

/// The subject of the system principal in the audit trail. No caller can have it: realm users
/// are `file:…`/`db:…` and tokens `bearer:…`.
pub const SUBJECT: &str = "system";

/// What the system may do: read elastic and material keys and add material key versions.
pub const SCOPES: &[&str] = &[
    scopes::ELASTIC_KEY_READ,
    scopes::MATERIAL_KEY_READ,
    scopes::MATERIAL_KEY_ROTATE,
];

/// The system principal acting in `tenant`.
pub fn principal(tenant: TenantId) -> Principal {
    Principal {
        tenant,
        subject: SUBJECT.to_owned(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        tenants: vec![tenant],
        request_id: None,
        actor: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use super::*;
    use crate::audit::testing::MemorySink;
    use crate::barrier::{Barrier, UnsealKeys};
    use crate::keys::{KeyService, KeyServiceOptions, NewElasticKey};
    use crate::storage::{DatabaseSettings, Store};

    #[tokio::test]
    async fn schedulers_rotate_and_purge_as_the_system_and_are_audited_so() {
        let store = Arc::new(
            Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
                .await
                .unwrap(),
        );
        let barrier = Barrier::open(store.clone(), UnsealKeys::dev().unwrap(), 100)
            .await
            .unwrap();
        let sink = Arc::new(MemorySink::default());
        let keys = KeyService::new(
            store,
            Arc::new(barrier),
            KeyServiceOptions {
                purge_delay: time::Duration::ZERO,
                material_cache_capacity: NonZeroUsize::new(100).unwrap(),
                metadata_cache_ttl: std::time::Duration::ZERO,
            },
        )
        .with_audit_sink(sink.clone());
        let tenant = TenantId(uuid::Uuid::new_v4());
        let owner = Principal {
            subject: "db:owner".to_owned(),
            scopes: scopes::OPERATION_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            ..principal(tenant)
        };
        let key = keys
            .create(
                &owner,
                NewElasticKey {
                    name: "scheduled".to_owned(),
                    description: String::new(),
                    algorithm: None,
                    versioning_allowed: true,
                    import_allowed: false,
                    export_allowed: false,
                },
            )
            .await
            .unwrap();
        let system = principal(tenant);
        keys.rotate(&system, key.id).await.unwrap();
        assert!(keys.encrypt(&system, key.id, b"x", None).await.is_err());
        keys.delete(&owner, key.id).await.unwrap();
        assert_eq!(keys.purge_due().await.unwrap(), 1);
        let recorded = sink.0.lock().unwrap().clone();
        let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = recorded
            .iter()
            .map(|(_, op, outcome, reason, subject)| {
                (
                    op.as_str(),
                    outcome.as_str(),
                    reason.as_deref(),
                    subject.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("create", "success", None, Some("db:owner")),
                ("rotate", "success", None, Some(SUBJECT)),
                (
                    "encrypt",
                    "refused",
                    Some("insufficient_scope"),
                    Some(SUBJECT)
                ),
                ("delete", "success", None, Some("db:owner")),
                ("purge", "success", None, Some(SUBJECT)),
            ]
        );
    }

    #[test]
    fn the_system_may_rotate_but_not_use_keys() {
        let tenant = TenantId(uuid::Uuid::now_v7());
        let system = principal(tenant);
        assert_eq!(system.subject, SUBJECT);
        assert_eq!(system.tenants, [tenant]);
        assert!(scopes::require(&system, scopes::MATERIAL_KEY_ROTATE).is_ok());
        for scope in [
            scopes::ENCRYPT,
            scopes::DECRYPT,
            scopes::ELASTIC_KEY_DELETE,
            scopes::ADMIN,
        ] {
            assert!(scopes::require(&system, scope).is_err(), "{scope}");
        }
    }
}
