//! Every scope rule of the KMS (SPEC §3.6), in one place:
//!
//! - the scopes: coarse [`ADMIN`], [`WRITE`], [`READ`] and the fine ones, each named after what it
//!   guards (the wire names stay SPEC's: an elastic key is a `kms:pool:*`, a material key a
//!   `kms:key:*`);
//! - the hierarchy ([`expand`]): `kms:admin` ⊃ everything; `kms:write` ⊃ [`WRITE_SCOPES`];
//!   `kms:read` ⊃ [`READ_SCOPES`]. `kms:write` does not imply `kms:read`: a role that needs both
//!   names both (the demo users do). Realms expand roles with it through [`VOCABULARY`];
//! - the route → scope table ([`ROUTE_SCOPES`], [`required_scope`]) and the admin rule (user
//!   administration needs [`ADMIN`]);
//! - the check every operation makes ([`require`]) and the one bearer tokens get ([`grants`]).
//!
//! [`RESERVED_SCOPES`] are SPEC scopes that `kms:write` grants but no operation of this KMS needs
//! yet (there is no wrap, unwrap or material key deletion route); a test keeps that list exactly
//! the scopes no route names, and another keeps the table equal to SPEC's.

mod routes;
#[cfg(test)]
mod spec;

use std::collections::BTreeSet;

use cryptoutil_realm::ScopeVocabulary;

use crate::model::Principal;

pub use routes::{
    ECHO_PATH, ECHO_SCOPE, INVENTORY_PATH, ROUTE_SCOPES, USER_ADMIN_PATH, required_scope,
    route_scope,
};

/// Everything, including admin-only operations (user administration).
pub const ADMIN: &str = "kms:admin";
/// The coarse write scope.
pub const WRITE: &str = "kms:write";
/// The coarse read scope.
pub const READ: &str = "kms:read";

/// Create an elastic key.
pub const ELASTIC_KEY_CREATE: &str = "kms:pool:create";
/// Read or list elastic keys.
pub const ELASTIC_KEY_READ: &str = "kms:pool:read";
/// Update an elastic key's description or status.
pub const ELASTIC_KEY_UPDATE: &str = "kms:pool:update";
/// Schedule an elastic key's deletion.
pub const ELASTIC_KEY_DELETE: &str = "kms:pool:delete";
/// Import key material as a new material key.
pub const MATERIAL_KEY_CREATE: &str = "kms:key:create";
/// Add a generated material key version.
pub const MATERIAL_KEY_ROTATE: &str = "kms:key:rotate";
/// Read material key metadata and public keys.
pub const MATERIAL_KEY_READ: &str = "kms:key:read";
/// Delete a material key: reserved, no operation yet.
pub const MATERIAL_KEY_DELETE: &str = "kms:key:delete";
/// Encrypt.
pub const ENCRYPT: &str = "kms:encrypt";
/// Decrypt.
pub const DECRYPT: &str = "kms:decrypt";
/// Sign.
pub const SIGN: &str = "kms:sign";
/// Verify.
pub const VERIFY: &str = "kms:verify";
/// Generate data keys.
pub const GENERATE: &str = "kms:generate";
/// Wrap a key: reserved, no operation yet.
pub const WRAP: &str = "kms:wrap";
/// Unwrap a key: reserved, no operation yet.
pub const UNWRAP: &str = "kms:unwrap";

/// Fine scopes implied by [`WRITE`], in SPEC's order.
pub const WRITE_SCOPES: &[&str] = &[
    ENCRYPT,
    DECRYPT,
    SIGN,
    WRAP,
    UNWRAP,
    GENERATE,
    ELASTIC_KEY_CREATE,
    ELASTIC_KEY_UPDATE,
    ELASTIC_KEY_DELETE,
    MATERIAL_KEY_CREATE,
    MATERIAL_KEY_ROTATE,
    MATERIAL_KEY_DELETE,
];

/// Fine scopes implied by [`READ`], in SPEC's order.
pub const READ_SCOPES: &[&str] = &[ELASTIC_KEY_READ, MATERIAL_KEY_READ, VERIFY];

/// Fine scopes SPEC defines and `kms:write` grants, but that no operation checks: this KMS has no
/// wrap, unwrap or material key deletion operation. They stay grantable (realm files, tokens and
/// `auth.federation.revocation.sensitive_scopes` name them, as SPEC does) and guard nothing.
pub const RESERVED_SCOPES: &[&str] = &[WRAP, UNWRAP, MATERIAL_KEY_DELETE];

/// Every fine scope an operation checks (everything but the coarse and the reserved scopes).
pub const OPERATION_SCOPES: &[&str] = &[
    ELASTIC_KEY_CREATE,
    ELASTIC_KEY_READ,
    ELASTIC_KEY_UPDATE,
    ELASTIC_KEY_DELETE,
    MATERIAL_KEY_CREATE,
    MATERIAL_KEY_ROTATE,
    MATERIAL_KEY_READ,
    ENCRYPT,
    DECRYPT,
    SIGN,
    VERIFY,
    GENERATE,
];

/// Every scope: the coarse ones first, then the fine ones of [`WRITE`] and of [`READ`].
pub const ALL: &[&str] = &[
    ADMIN,
    WRITE,
    READ,
    ENCRYPT,
    DECRYPT,
    SIGN,
    WRAP,
    UNWRAP,
    GENERATE,
    ELASTIC_KEY_CREATE,
    ELASTIC_KEY_UPDATE,
    ELASTIC_KEY_DELETE,
    MATERIAL_KEY_CREATE,
    MATERIAL_KEY_ROTATE,
    MATERIAL_KEY_DELETE,
    ELASTIC_KEY_READ,
    MATERIAL_KEY_READ,
    VERIFY,
];

/// Whether `scope` is a KMS scope.
pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}

/// Expands scopes to the set they grant: each known scope itself plus everything it implies.
/// Unknown scopes are dropped (a token may carry `openid` and the like); configuration refuses
/// them earlier ([`VOCABULARY`]'s `check`).
pub fn expand<I, S>(scopes: I) -> BTreeSet<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = BTreeSet::new();
    for scope in scopes {
        let implied: &[&str] = match scope.as_ref() {
            ADMIN => ALL,
            WRITE => {
                out.insert(WRITE.to_owned());
                WRITE_SCOPES
            }
            READ => {
                out.insert(READ.to_owned());
                READ_SCOPES
            }
            s => match ALL.iter().find(|known| **known == s) {
                Some(known) => std::slice::from_ref(known),
                None => &[],
            },
        };
        out.extend(implied.iter().map(|s| (*s).to_owned()));
    }
    out
}

/// Whether an expanded scope set (from [`expand`]) grants `required`: `kms:admin` grants
/// everything, including admin-only scopes outside the table.
pub fn grants<S: AsRef<str>>(expanded: &[S], required: &str) -> bool {
    expanded
        .iter()
        .any(|s| s.as_ref() == required || s.as_ref() == ADMIN)
}

/// The coarse scope whose group holds `scope`: [`WRITE`] for write operations, [`READ`] for
/// reads, the coarse scope itself for `kms:write`/`kms:read`, and [`ADMIN`] for everything else.
pub fn coarse_scope_of(scope: &str) -> &'static str {
    if scope == WRITE || WRITE_SCOPES.contains(&scope) {
        WRITE
    } else if scope == READ || READ_SCOPES.contains(&scope) {
        READ
    } else {
        ADMIN
    }
}

/// The principal lacks the scope an operation needs (403 `insufficient_scope` naming it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingScope(pub &'static str);

/// The check every operation makes: the principal's (expanded) scopes hold `scope`.
pub fn require(who: &Principal, scope: &'static str) -> Result<(), MissingScope> {
    if who.scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(MissingScope(scope))
    }
}

/// The KMS scopes as the realms see them: what realm files and the database realm may grant.
#[derive(Debug, Clone, Copy)]
pub struct KmsScopes;

/// The one instance realms are given.
pub static VOCABULARY: KmsScopes = KmsScopes;

impl ScopeVocabulary for KmsScopes {
    fn known(&self) -> &[&'static str] {
        ALL
    }

    fn expand(&self, granted: &[String]) -> BTreeSet<String> {
        expand(granted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use cryptoutil_realm::RealmError;

    use super::*;
    use crate::model::TenantId;

    #[test]
    fn admin_implies_everything() {
        let set = expand([ADMIN]);
        assert_eq!(set.len(), 3 + WRITE_SCOPES.len() + READ_SCOPES.len());
        assert_eq!(set.len(), ALL.len());
        for s in ALL {
            assert!(set.contains(*s), "{s}");
        }
    }

    #[test]
    fn write_and_read_imply_their_fine_scopes_only() {
        let write = expand([WRITE]);
        assert!(
            write.contains(WRITE) && write.contains(ENCRYPT) && write.contains(MATERIAL_KEY_DELETE)
        );
        assert!(!write.contains(READ) && !write.contains(VERIFY) && !write.contains(ADMIN));
        let read = expand([READ]);
        assert_eq!(
            read,
            ["kms:read", "kms:pool:read", "kms:key:read", "kms:verify"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        let read: Vec<String> = read.into_iter().collect();
        assert!(!grants(&read, ENCRYPT));
        assert!(grants(&read, VERIFY));
    }

    #[test]
    fn fine_scopes_stay_fine_and_unknown_ones_are_dropped() {
        let set = expand(["kms:sign", "openid", "kms:nonsense"]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec!["kms:sign".to_owned()]
        );
        assert!(VOCABULARY.check("kms:sign").is_ok());
        assert!(
            matches!(VOCABULARY.check("kms:nonsense"), Err(RealmError::UnknownScope(s)) if s == "kms:nonsense")
        );
        assert!(VOCABULARY.check("KMS:ADMIN").is_err());
        assert_eq!(VOCABULARY.expand(&["kms:read".to_owned()]), expand([READ]));
    }

    #[test]
    fn grants_via_admin_even_for_scopes_outside_the_table() {
        let admin: Vec<String> = expand([ADMIN]).into_iter().collect();
        assert!(grants(&admin, "kms:realm:manage"));
        let write: Vec<String> = expand([WRITE]).into_iter().collect();
        assert!(!grants(&write, "kms:realm:manage"));
    }

    #[test]
    fn the_lists_partition_the_scopes() {
        let fine: BTreeSet<&str> = WRITE_SCOPES.iter().chain(READ_SCOPES).copied().collect();
        let operations: BTreeSet<&str> = OPERATION_SCOPES.iter().copied().collect();
        let reserved: BTreeSet<&str> = RESERVED_SCOPES.iter().copied().collect();
        assert!(operations.is_disjoint(&reserved));
        assert_eq!(&operations | &reserved, fine);
        let all: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(all.len(), ALL.len(), "no duplicates");
        assert_eq!(&fine | &BTreeSet::from([ADMIN, WRITE, READ]), all);
    }

    #[test]
    fn coarse_groups_and_the_operation_check() {
        assert_eq!(coarse_scope_of(ENCRYPT), WRITE);
        assert_eq!(coarse_scope_of(ELASTIC_KEY_DELETE), WRITE);
        assert_eq!(coarse_scope_of(VERIFY), READ);
        assert_eq!(coarse_scope_of(READ), READ);
        assert_eq!(coarse_scope_of(ADMIN), ADMIN);
        assert_eq!(coarse_scope_of("kms:realm:manage"), ADMIN);
        let tenant = TenantId(uuid::Uuid::nil());
        let who = Principal {
            tenant,
            subject: "t".to_owned(),
            scopes: vec![VERIFY.to_owned()],
            tenants: vec![tenant],
            request_id: None,
            actor: None,
        };
        assert_eq!(require(&who, VERIFY), Ok(()));
        assert_eq!(require(&who, SIGN), Err(MissingScope(SIGN)));
    }
}
