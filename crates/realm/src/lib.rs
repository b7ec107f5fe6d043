//! Password hashing, realms and roles, and the verified-credential cache (SPEC §1, §3.6).
//!
//! - [`password`]: PBKDF2-HMAC-SHA256 password hashes (write the canonical format, read both).
//! - [`vocabulary`]: the [`ScopeVocabulary`] trait: which scopes exist and what each implies is the
//!   product's to say (the KMS defines its hierarchy); realms only check and expand with it.
//! - [`file_realm`]: the `realms.yml` file realm, strict and with located errors.
//! - [`basic`]: strict `Authorization: Basic` parsing.
//! - [`cache`]: the verified-credential cache, so only the first request of a credential pays PBKDF2.
//! - [`bearer`]: JWT access tokens of trusted issuers, validated locally against a cached JWKS.
//! - [`dpop`]: DPoP proof verification (RFC 9449 §4.3) and the replay cache contract, shared by
//!   the authorization server and every resource server.
//! - [`RealmUser`]: the user a realm identifies (its own module, shared by the walk and the cache).
//! - [`authenticate`]: the [`Realm`] trait and [`verify_basic`], which walks realms in order.
//!
//! The DB realm lives in the KMS (it needs the KMS store); it implements [`Realm`].

pub mod authenticate;
pub mod basic;
pub mod bearer;
pub mod cache;
pub mod dpop;
mod error;
pub mod file_realm;
pub mod password;
mod user;
pub mod vocabulary;

pub use authenticate::{
    BoxFuture, Outcome, Realm, RealmEntry, RealmUser, StoredPassword, verify_basic,
    verify_certificate,
};
pub use basic::{BasicError, Credentials};
pub use cache::{CacheConfig, Clock, CredentialCache};
pub use error::{Problem, RealmError};
pub use file_realm::FileRealm;
pub use password::PasswordHash;
pub use vocabulary::ScopeVocabulary;
