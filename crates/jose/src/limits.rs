//! Documented size limits applied to untrusted input before any parsing work.

/// Maximum length of a compact JWS/JWE token, in bytes (16 MiB).
pub const MAX_COMPACT_LEN: usize = 16 * 1024 * 1024;
/// Maximum length of a JWE JSON serialization, in bytes (16 MiB).
pub const MAX_JSON_LEN: usize = 16 * 1024 * 1024;
/// Maximum length of a decoded protected or unprotected header (JSON), in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Maximum length of a JWK (JSON), in bytes.
pub const MAX_JWK_LEN: usize = 16 * 1024;
/// Maximum number of recipients in a JWE JSON serialization.
pub const MAX_RECIPIENTS: usize = 64;
/// Maximum length of a decoded JWE encrypted key (RSA-8192 = 1024 bytes).
pub const MAX_ENCRYPTED_KEY_LEN: usize = 1024;
/// Maximum decoded `apu`/`apv` length.
pub const MAX_PARTY_INFO_LEN: usize = 1024;
/// Maximum JSON nesting depth accepted in headers and keys.
pub const MAX_JSON_DEPTH: usize = 16;
/// Largest accepted RSA modulus, in bits.
pub const MAX_RSA_BITS: usize = 8192;
/// Smallest accepted RSA modulus, in bits (FIPS 140-3).
pub const MIN_RSA_BITS: usize = 2048;
