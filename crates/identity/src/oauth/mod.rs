//! Protocol building blocks of the authorization server. No database code and no HTTP
//! framework: the HTTP layer (`api`) turns [`OAuthError`] into responses and extracts [`FormParams`].
//!
//! - [`error`]: RFC 6749/6750/7009/9126 and OIDC error codes, [`OAuthError`] (status, challenge, `Retry-After`).
//! - [`form`]: strict, bounded form-urlencoded parsing (duplicates refused).
//! - [`pkce`]: PKCE S256.
//! - [`scope`]: scope strings: parse, narrow, join.
//! - [`resource`]: resource indicators (RFC 8707): parse, allow, narrow, the token's `aud`.
//! - [`client_auth`]: client authentication (`client_secret_basic`, `client_secret_post`,
//!   `private_key_jwt`, `none`).

pub mod client_auth;
pub mod error;
pub mod form;
pub mod pkce;
pub mod resource;
pub mod scope;

pub use client_auth::{
    AuthenticatedClient, ClientAuthConfig, ClientAuthenticator, ClientDirectory, DirectoryError,
};
pub use error::{ErrorCode, OAuthError};
pub use form::{FormLimits, FormParams};
pub use scope::Scopes;
