//! The crate's error type.

/// Result alias used across the crate.
pub type Result<T> = core::result::Result<T, JoseError>;

/// Every way a JOSE operation can fail. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// An input exceeded a documented size limit (see [`crate::limits`]).
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// The limit in bytes (or items).
        limit: usize,
    },
    /// A base64url segment was not strict, unpadded, canonical base64url.
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    /// The serialization has the wrong structure (number of parts, JSON shape ...).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    /// JSON could not be parsed.
    #[error("invalid JSON in {0}")]
    Json(&'static str),
    /// A JSON object contained the same member name twice.
    #[error("duplicate JSON member {0:?}")]
    DuplicateMember(String),
    /// A header parameter is missing or has the wrong type or value.
    #[error("invalid header parameter {0:?}")]
    InvalidHeader(String),
    /// The same header parameter appears in more than one header (JWE JSON).
    #[error("header parameter {0:?} appears in more than one header")]
    HeaderConflict(String),
    /// The `crit` header is invalid or names an extension we do not understand.
    #[error("crit: {0}")]
    Crit(String),
    /// Compression (`zip`) is not supported.
    #[error("the zip header parameter (compression) is not supported")]
    UnsupportedZip,
    /// An algorithm name is unknown or not allowed (for example `none`, `RSA1_5`, `RSA-OAEP`).
    #[error("unsupported or forbidden algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// This is a FIPS build (cargo feature `fips`) and the algorithm or key type is not in the
    /// approved table of [`crate::policy`].
    #[error("{what} is not FIPS-approved and this is a FIPS build: {why}")]
    NotFipsApproved {
        /// The algorithm or key type (`EdDSA`, `X25519`, `A192KW` …).
        what: String,
        /// Why it is not approved here.
        why: &'static str,
    },
    /// The token's algorithm differs from the algorithm the caller expects.
    #[error("algorithm mismatch: expected {expected}, found {found}")]
    AlgorithmMismatch {
        /// What the caller (key configuration) expects.
        expected: String,
        /// What the token or key says.
        found: String,
    },
    /// A key is malformed or unusable (wrong size, point not on the curve, inconsistent RSA components ...).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The key cannot be used for this algorithm or operation.
    #[error("key not usable for this operation: {0}")]
    KeyMismatch(&'static str),
    /// A signature or MAC did not verify.
    #[error("signature verification failed")]
    InvalidSignature,
    /// Decryption failed (wrong key, tampered data, bad padding, bad wrapped key). Deliberately uninformative.
    #[error("decryption failed")]
    DecryptionFailed,
    /// No recipient of a JWE JSON serialization could be decrypted with the given key.
    #[error("no recipient matches the key and algorithm")]
    NoMatchingRecipient,
    /// The underlying cryptographic library reported a failure (for example the RNG).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}
