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
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
