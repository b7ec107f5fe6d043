//! The route → scope table: the fine scope of every operation, by method and path relative to a
//! surface, and the admin rule for user administration. The key service enforces these scopes;
//! the OpenAPI document shows them; the authentication layer checks a bearer token against them
//! before any revocation check; and an API test drives every route with and without its scope.

use cryptoutil_server::surface::{BROWSER_PREFIX, SERVICE_PREFIX};

use super::{
    ADMIN, DECRYPT, ELASTIC_KEY_CREATE, ELASTIC_KEY_DELETE, ELASTIC_KEY_READ, ELASTIC_KEY_UPDATE,
    ENCRYPT, GENERATE, MATERIAL_KEY_CREATE, MATERIAL_KEY_READ, MATERIAL_KEY_ROTATE, SIGN, VERIFY,
};

/// The load harness's echo route, relative to the service surface (mounted only with
/// `benchmark.echo: true`; see `api::echo`).
pub const ECHO_PATH: &str = "/echo";
/// The scope the echo route needs: the one encrypt needs, so both authenticate alike.
pub const ECHO_SCOPE: &str = ENCRYPT;

/// The user administration routes (this path and everything under it) need [`ADMIN`].
pub const USER_ADMIN_PATH: &str = "/admin/realm-users";

/// The tenant's cryptographic inventory (`GET`, both surfaces) needs [`ADMIN`]: it lists every
/// key of the tenant, which no single fine scope covers.
pub const INVENTORY_PATH: &str = "/crypto-inventory";

/// `(method, path pattern, scope)` of every key operation; `{name}` matches one path segment.
pub const ROUTE_SCOPES: &[(&str, &str, &str)] = &[
    ("post", "/elastickey", ELASTIC_KEY_CREATE),
    ("get", "/elastickey/{id}", ELASTIC_KEY_READ),
    ("get", "/elastickeys", ELASTIC_KEY_READ),
    ("put", "/elastickey/{id}", ELASTIC_KEY_UPDATE),
    ("delete", "/elastickey/{id}", ELASTIC_KEY_DELETE),
    ("post", "/elastickey/{id}/materialkey", MATERIAL_KEY_ROTATE),
    ("post", "/elastickey/{id}/import", MATERIAL_KEY_CREATE),
    (
        "get",
        "/elastickey/{id}/materialkey/{mid}",
        MATERIAL_KEY_READ,
    ),
    ("get", "/elastickey/{id}/materialkeys", MATERIAL_KEY_READ),
    ("get", "/materialkeys", MATERIAL_KEY_READ),
    ("post", "/elastickey/{id}/encrypt", ENCRYPT),
    ("post", "/elastickey/{id}/decrypt", DECRYPT),
    ("post", "/elastickey/{id}/sign", SIGN),
    ("post", "/elastickey/{id}/verify", VERIFY),
    ("post", "/elastickey/{id}/generate", GENERATE),
    // Only mounted with `benchmark.echo: true` (service surface).
    ("post", ECHO_PATH, ECHO_SCOPE),
];

/// The scope a request needs, from its method (any case) and path (relative to a surface, or with
/// the surface prefix): [`ROUTE_SCOPES`] for key operations, [`ADMIN`] for user administration
/// and the inventory.
/// `None` for paths outside both (they answer 404 or 405; callers treat them as sensitive).
pub fn required_scope(method: &str, path: &str) -> Option<&'static str> {
    let path = [SERVICE_PREFIX, BROWSER_PREFIX]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .unwrap_or(path);
    if path
        .strip_prefix(USER_ADMIN_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    {
        return Some(ADMIN);
    }
    if path == INVENTORY_PATH {
        return Some(ADMIN);
    }
    ROUTE_SCOPES
        .iter()
        .find(|(m, pattern, _)| m.eq_ignore_ascii_case(method) && path_matches(pattern, path))
        .map(|(_, _, scope)| *scope)
}

/// The scope [`ROUTE_SCOPES`] names for a lowercase method and an exact path pattern.
pub fn route_scope(method: &str, pattern: &str) -> Option<&'static str> {
    ROUTE_SCOPES
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .map(|(_, _, scope)| *scope)
}

/// Whether `path` fits a route `pattern` whose `{name}` segments match any one segment.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && !h.is_empty() => {}
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::{OPERATION_SCOPES, RESERVED_SCOPES};
    use super::*;

    #[test]
    fn every_route_resolves_to_its_scope_with_or_without_a_prefix() {
        for (method, pattern, scope) in ROUTE_SCOPES {
            let path = pattern
                .replace("{id}", "0190a5b2-0000-7000-8000-000000000001")
                .replace("{mid}", "0190a5b2-0000-7000-8000-000000000002");
            for prefix in ["", SERVICE_PREFIX, BROWSER_PREFIX] {
                assert_eq!(
                    required_scope(&method.to_uppercase(), &format!("{prefix}{path}")),
                    Some(*scope),
                    "{method} {prefix}{path}"
                );
            }
            assert_eq!(route_scope(method, pattern), Some(*scope));
        }
        assert_eq!(
            required_scope("PUT", "/admin/realm-users/alice/password"),
            Some("kms:admin")
        );
        assert_eq!(
            required_scope("GET", "/service/api/v1/admin/realm-users"),
            Some("kms:admin")
        );
        assert_eq!(
            required_scope("GET", "/browser/api/v1/crypto-inventory"),
            Some("kms:admin")
        );
        assert_eq!(required_scope("GET", "/crypto-inventory/x"), None);
        assert_eq!(required_scope("GET", "/elastickey/x/encrypt"), None);
        assert_eq!(required_scope("POST", "/elastickey//encrypt"), None);
        assert_eq!(required_scope("POST", "/nothing"), None);
        assert_eq!(required_scope("POST", "/admin/realm-usersX"), None);
        assert_eq!(route_scope("post", "/elastickey/x/encrypt"), None);
    }

    /// Every scope an operation checks guards a route, and the reserved ones guard none.
    #[test]
    fn routes_name_exactly_the_operation_scopes() {
        let named: BTreeSet<&str> = ROUTE_SCOPES.iter().map(|(_, _, s)| *s).collect();
        let operations: BTreeSet<&str> = OPERATION_SCOPES.iter().copied().collect();
        assert_eq!(named, operations);
        assert!(RESERVED_SCOPES.iter().all(|s| !named.contains(s)));
    }
}
