//! The crate's error type.

use std::fmt;

/// One problem in a realm file and where it is: `file:line:column` (or the file) and a message
/// that names the field. Never contains a password or a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, or the file alone when the position is unknown.
    pub origin: String,
    /// What is wrong, starting with the field path when there is one (`users[1].roles[0]: …`).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Errors of this crate. Messages never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum RealmError {
    /// A stored password hash is malformed or outside the accepted parameters.
    #[error("invalid password hash: {0}")]
    InvalidHash(&'static str),
    /// A scope name is not in the product's [`crate::ScopeVocabulary`].
    #[error("unknown scope `{0}`")]
    UnknownScope(String),
    /// A realm file could not be loaded.
    #[error("invalid realm file: {}", .0.iter().map(Problem::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<Problem>),
    /// A realm's backing store failed (for realms implemented elsewhere, e.g. the KMS DB realm).
    #[error("realm store unavailable: {0}")]
    Unavailable(String),
    /// The system random generator or a background task failed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
