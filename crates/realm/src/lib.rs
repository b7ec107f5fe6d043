//! Password hashing, realms, roles and scopes, the verified-credential cache, bearer-token validation.
