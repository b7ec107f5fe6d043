//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while generating, storing, loading or serving certificates.
///
/// Variants that involve a file name it, so a log line or a CLI message says which file to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading, writing or creating a file or directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file that must not be overwritten already exists.
    #[error("{path} already exists (refusing to overwrite it)")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A directory holds a demo CA that is incomplete or differs from the one requested, so it
    /// is neither used nor replaced.
    #[error(
        "{dir} holds a demo CA that is incomplete or not the one requested: {reason}; remove the directory (in compose: the certificate volume) to generate a new one"
    )]
    IncompleteDemoCa {
        /// The demo CA directory.
        dir: PathBuf,
        /// The first problem found.
        reason: String,
    },
    /// A PEM file could not be parsed.
    #[error("invalid PEM in {path}: {reason}")]
    Pem {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A PEM file holds no certificate.
    #[error("no certificate found in {path}")]
    NoCertificate {
        /// The file involved.
        path: PathBuf,
    },
    /// A PEM file holds no private key.
    #[error("no private key found in {path}")]
    NoPrivateKey {
        /// The file involved.
        path: PathBuf,
    },
    /// A certificate could not be parsed or is unusable.
    #[error("invalid certificate {path}: {reason}")]
    InvalidCertificate {
        /// The file involved (or a description of the in-memory certificate).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("private key {key_path} does not match the certificate {cert_path}: {reason}")]
    KeyMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate is outside its validity period.
    #[error("certificate {path} is not valid now: {reason}")]
    NotValidNow {
        /// The certificate file.
        path: PathBuf,
        /// Expired or not yet valid, with the dates.
        reason: String,
    },
    /// A DNS name (SAN or CN) is not an RFC 1035 fully qualified domain name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The requested validity period is not allowed.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// The requested CA chain length is not allowed.
    #[error("invalid CA chain length {0}: it must be at least 1 and at most 8")]
    InvalidChainLength(usize),
    /// The key algorithm is not supported.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// rcgen failed to generate a key or certificate.
    #[error("certificate generation failed ({context}): {source}")]
    Generate {
        /// What was being generated.
        context: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused a configuration or key.
    #[error("TLS configuration error ({context}): {source}")]
    Rustls {
        /// What was being configured.
        context: String,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    /// No trust anchor is configured.
    #[error("no trust anchors: {0}")]
    NoTrustAnchors(String),
    /// The system trust store could not be loaded.
    #[error("system trust store: {0}")]
    SystemRoots(String),
    /// A signing operation failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The file watcher could not be set up.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The directory or file that could not be watched.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: notify::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

impl TlsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn generate(context: impl Into<String>, source: rcgen::Error) -> Self {
        Self::Generate {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn rustls(context: impl Into<String>, source: rustls::Error) -> Self {
        Self::Rustls {
            context: context.into(),
            source,
        }
    }
}
