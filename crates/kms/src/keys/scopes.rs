//! The fine scope each key operation needs (SPEC §3.6). Coarse scopes (`kms:admin`, `kms:write`,
//! `kms:read`) are expanded to these by authentication before they reach the service.

/// Create an elastic key.
pub const POOL_CREATE: &str = "kms:pool:create";
/// Read or list elastic keys.
pub const POOL_READ: &str = "kms:pool:read";
/// Update an elastic key's description or status.
pub const POOL_UPDATE: &str = "kms:pool:update";
/// Schedule an elastic key's deletion.
pub const POOL_DELETE: &str = "kms:pool:delete";
/// Import key material.
pub const KEY_CREATE: &str = "kms:key:create";
/// Add a material key version.
pub const KEY_ROTATE: &str = "kms:key:rotate";
/// Read material key metadata and public keys.
pub const KEY_READ: &str = "kms:key:read";
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

/// Every fine scope the key service checks.
pub const ALL: &[&str] = &[
    POOL_CREATE,
    POOL_READ,
    POOL_UPDATE,
    POOL_DELETE,
    KEY_CREATE,
    KEY_ROTATE,
    KEY_READ,
    ENCRYPT,
    DECRYPT,
    SIGN,
    VERIFY,
    GENERATE,
];
