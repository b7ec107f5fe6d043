//! The errors of registration: the RFC 7591 §3.2.2 codes for refused metadata, and what the
//! endpoint answers otherwise (an invalid token, storage trouble).

use crate::storage::StoreError;

/// An RFC 7591 §3.2.2 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataErrorCode {
    /// A redirect URI is invalid or not allowed.
    InvalidRedirectUri,
    /// A metadata field is invalid or not allowed.
    InvalidClientMetadata,
    /// The software statement is invalid (malformed, bad signature, expired).
    InvalidSoftwareStatement,
    /// The software statement is not approved here (no trusted keys configured).
    UnapprovedSoftwareStatement,
}

impl MetadataErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
        }
    }
}

/// Refused client metadata: a code and a description for the client developer (never holds a
/// secret; values are quoted bounded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", .code.as_str())]
pub struct MetadataError {
    /// The error code.
    pub code: MetadataErrorCode,
    /// What was wrong.
    pub description: String,
}

impl MetadataError {
    /// `invalid_client_metadata`.
    pub fn metadata(description: impl Into<String>) -> Self {
        Self {
            code: MetadataErrorCode::InvalidClientMetadata,
            description: description.into(),
        }
    }

    /// `invalid_redirect_uri`.
    pub fn redirect(description: impl Into<String>) -> Self {
        Self {
            code: MetadataErrorCode::InvalidRedirectUri,
            description: description.into(),
        }
    }

    /// `invalid_software_statement`.
    pub fn statement(description: impl Into<String>) -> Self {
        Self {
            code: MetadataErrorCode::InvalidSoftwareStatement,
            description: description.into(),
        }
    }

    /// `unapproved_software_statement`.
    pub fn unapproved(description: impl Into<String>) -> Self {
        Self {
            code: MetadataErrorCode::UnapprovedSoftwareStatement,
            description: description.into(),
        }
    }
}

/// Why a registration request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The metadata was refused (400 with the RFC 7591 code).
    #[error(transparent)]
    Metadata(MetadataError),
    /// The initial access token or registration access token is missing, unknown, expired,
    /// revoked, used up, or another client's (401 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// Registration is switched off (404).
    #[error("dynamic client registration is disabled")]
    Disabled,
    /// An administrative request was invalid (400).
    #[error("{0}")]
    Invalid(String),
    /// No such record (404, admin API).
    #[error("not found")]
    NotFound,
    /// Storage failed (503).
    #[error(transparent)]
    Store(StoreError),
    /// The RNG or the hashing thread failed (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<MetadataError> for RegistrationError {
    fn from(e: MetadataError) -> Self {
        Self::Metadata(e)
    }
}

impl From<StoreError> for RegistrationError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A value quoted for an error description: at most 64 characters, control characters
/// escaped.
pub(crate) fn quoted(value: &str) -> String {
    let short: String = value.chars().take(64).collect();
    if short.len() < value.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}
