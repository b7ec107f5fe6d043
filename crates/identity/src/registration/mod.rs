//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), free of
//! HTTP and database types.
//!
//! - [`metadata`]: the client metadata document a client sends (RFC 7591 §2), parsed with
//!   bounds (size, JSON depth, list lengths); unknown fields are ignored as RFC 7591 §2 says.
//! - [`policy`]: what this server accepts (grant types, scopes, redirect URI rules,
//!   authentication methods), turning a document into a [`crate::model::ClientMetadata`].
//! - [`software_statement`]: signed statements (RFC 7591 §2.3), verified against trusted keys.
//! - [`records`]: initial access tokens and the per-client registration record.
//! - [`service`]: register, read, update, delete; initial access tokens for the admin API.
//! - [`error`]: the RFC 7591 §3.2.2 error codes.

pub mod error;
pub mod metadata;
pub mod policy;
pub mod records;
pub mod service;
pub mod software_statement;

pub use error::{MetadataError, MetadataErrorCode, RegistrationError};
pub use metadata::ClientMetadataDocument;
pub use policy::RegistrationPolicy;
pub use records::{ClientRegistrationRecord, CreatedBy, InitialAccessToken, RegisteredExtras};
pub use service::RegistrationService;
