//! Identity: OAuth 2.1 authorization server and OpenID Connect provider (SPEC §4).
//!
//! - [`config`]: `identity.yml` and `rs.yml`.
//! - [`model`]: clients, users, grants, codes, refresh tokens, sessions, signing keys.
//! - [`storage`]: SQLite and PostgreSQL persistence.
//! - [`signing`]: signing keys sealed at rest, rotation with overlap, JWKS.
//! - [`tokens`]: access tokens (RFC 9068), ID tokens, opaque secrets.
//! - [`oauth`]: protocol building blocks: RFC 6749 errors, client authentication, PKCE, forms.

pub mod config;
pub mod model;
pub mod oauth;
pub mod seed;
pub mod signing;
pub mod storage;
pub mod tokens;
