//! The user a realm identifies: shared by the realms, the realm walk and the credential cache.

use std::collections::BTreeSet;

/// An authenticated (or at least identified) realm user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmUser {
    /// Name of the realm that holds the user (`file`, `db`, …).
    pub realm: String,
    /// The username, as stored.
    pub username: String,
    /// The roles as configured (role names or scope names).
    pub roles: Vec<String>,
    /// The scopes the roles grant, expanded (see [`crate::ScopeVocabulary::expand`]).
    pub scopes: BTreeSet<String>,
    /// Tenant *names* the user may act in, in configured order; the first is the default. Empty
    /// means the user has no tenant of its own (the KMS decides what that allows, e.g. a global admin).
    pub tenants: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
}
