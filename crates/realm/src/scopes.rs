//! The **KMS** scope hierarchy (SPEC §3.6). This table is KMS-specific; the rest of the crate is not.
//!
//! - `kms:admin` ⊃ every scope below (and admin-only operations such as realm-user management).
//! - `kms:write` ⊃ `kms:encrypt kms:decrypt kms:sign kms:wrap kms:unwrap kms:generate
//!   kms:pool:create kms:pool:update kms:pool:delete kms:key:create kms:key:rotate kms:key:delete`.
//! - `kms:read` ⊃ `kms:pool:read kms:key:read kms:verify`.
//!
//! `kms:write` does not imply `kms:read`: a role that needs both names both (the demo users do).

use std::collections::BTreeSet;

use crate::RealmError;

/// Everything, including admin-only operations.
pub const ADMIN: &str = "kms:admin";
/// The coarse write scope.
pub const WRITE: &str = "kms:write";
/// The coarse read scope.
pub const READ: &str = "kms:read";

/// Fine scopes implied by [`WRITE`].
pub const WRITE_SCOPES: &[&str] = &[
    "kms:encrypt",
    "kms:decrypt",
    "kms:sign",
    "kms:wrap",
    "kms:unwrap",
    "kms:generate",
    "kms:pool:create",
    "kms:pool:update",
    "kms:pool:delete",
    "kms:key:create",
    "kms:key:rotate",
    "kms:key:delete",
];

/// Fine scopes implied by [`READ`].
pub const READ_SCOPES: &[&str] = &["kms:pool:read", "kms:key:read", "kms:verify"];

/// Every known KMS scope: coarse ones first, then the fine ones.
pub fn all() -> impl Iterator<Item = &'static str> {
    [ADMIN, WRITE, READ]
        .into_iter()
        .chain(WRITE_SCOPES.iter().copied())
        .chain(READ_SCOPES.iter().copied())
}

/// Whether `scope` is a KMS scope.
pub fn is_known(scope: &str) -> bool {
    all().any(|s| s == scope)
}

/// Refuses a scope that is not a KMS scope (for configuration loading).
pub fn check(scope: &str) -> Result<(), RealmError> {
    if is_known(scope) {
        Ok(())
    } else {
        Err(RealmError::UnknownScope(scope.to_owned()))
    }
}

/// Expands scopes to the set they grant: each known scope itself plus everything it implies.
/// Unknown scopes are dropped (a token may carry `openid` and the like); configuration refuses them
/// earlier with [`check`].
pub fn expand<I, S>(scopes: I) -> BTreeSet<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = BTreeSet::new();
    for scope in scopes {
        let scope = scope.as_ref();
        let implied: Vec<&str> = match scope {
            ADMIN => all().collect(),
            WRITE => std::iter::once(WRITE)
                .chain(WRITE_SCOPES.iter().copied())
                .collect(),
            READ => std::iter::once(READ)
                .chain(READ_SCOPES.iter().copied())
                .collect(),
            s if is_known(s) => vec![s],
            _ => Vec::new(),
        };
        out.extend(implied.into_iter().map(str::to_owned));
    }
    out
}

/// Whether an expanded scope set (from [`expand`]) grants `required`.
pub fn grants(expanded: &BTreeSet<String>, required: &str) -> bool {
    expanded.contains(required) || expanded.contains(ADMIN)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything() {
        let set = expand([ADMIN]);
        assert_eq!(set.len(), 3 + WRITE_SCOPES.len() + READ_SCOPES.len());
        for s in all() {
            assert!(set.contains(s), "{s}");
        }
    }

    #[test]
    fn write_and_read_imply_their_fine_scopes_only() {
        let write = expand([WRITE]);
        assert!(
            write.contains(WRITE)
                && write.contains("kms:encrypt")
                && write.contains("kms:key:delete")
        );
        assert!(!write.contains(READ) && !write.contains("kms:verify") && !write.contains(ADMIN));
        let read = expand([READ]);
        assert_eq!(
            read,
            ["kms:read", "kms:pool:read", "kms:key:read", "kms:verify"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert!(!grants(&read, "kms:encrypt"));
        assert!(grants(&read, "kms:verify"));
    }

    #[test]
    fn fine_scopes_stay_fine_and_unknown_ones_are_dropped() {
        let set = expand(["kms:sign", "openid", "kms:nonsense"]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec!["kms:sign".to_owned()]
        );
        assert!(check("kms:sign").is_ok());
        assert!(
            matches!(check("kms:nonsense"), Err(RealmError::UnknownScope(s)) if s == "kms:nonsense")
        );
        assert!(check("KMS:ADMIN").is_err());
    }

    #[test]
    fn grants_via_admin_even_for_scopes_outside_the_table() {
        let admin = expand([ADMIN]);
        assert!(grants(&admin, "kms:realm:manage"));
        assert!(!grants(&expand([WRITE]), "kms:realm:manage"));
    }
}
