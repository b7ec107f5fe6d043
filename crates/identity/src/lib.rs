//! Identity: OAuth 2.1 authorization server and OpenID Connect provider (SPEC §4).
//!
//! - [`account`]: account self-service (factors overview, password change, sessions) and an
//!   administrator's reset of a user's factors.
//! - [`audit`]: the audit trail of changes to a user's credentials.
//! - [`config`]: `identity.yml` and `rs.yml`.
//! - [`model`]: clients, users, grants, codes, refresh tokens, sessions, signing keys.
//! - [`storage`]: SQLite and PostgreSQL persistence.
//! - [`signing`]: signing keys sealed at rest, rotation with overlap, JWKS.
//! - [`tokens`]: access tokens (RFC 9068), ID tokens, opaque secrets.
//! - [`device`]: the device authorization grant (RFC 8628): user codes, polling, decisions.
//! - [`mfa`]: multi-factor and passwordless sign-in: the MFA policy, `acr`/`amr`, settings.
//! - [`dpop`]: DPoP (RFC 9449) at Identity, over the shared verifier in `cryptoutil_realm::dpop`.
//! - [`oauth`]: protocol building blocks: RFC 6749 errors, client authentication, PKCE, forms.
//! - [`services`]: the flows as services, free of HTTP types: authorization (requests, PAR,
//!   consent, codes), token (grants), inspection (introspection, revocation, userinfo), clients
//!   (cache, authentication, administration), signing keys (JWKS, rotation).
//! - [`signin`]: browser sessions with an explicit sign-in state (`amr`, `auth_time`), the
//!   pending interaction, and an authorization request's way through sign-in and consent.
//! - [`paths`]: the endpoint paths.
//! - [`registration`]: dynamic client registration (RFC 7591) and management (RFC 7592).
//! - [`revocation`]: the in-memory list of revoked access tokens, synced from the database.
//! - [`api`]: HTTP handlers, the login and consent pages, the admin client API.
//! - [`resource_server`]: the sample resource server and its single-page client.
//! - [`rules`]: checks of client and user records, shared by seeding and the admin API.
//! - [`seed`]: `--demo` / `--reset-demo` data.
//! - [`server`]: assembles and starts a server.
//! - [`throttle`]: brute-force protection (backoff per account and per client address).

pub mod account;
pub mod api;
pub mod audit;
pub mod config;
pub mod device;
pub mod dpop;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod metadata_document;
pub mod mfa;
pub mod model;
pub mod oauth;
pub mod paths;
pub mod registration;
pub mod resource_server;
pub mod revocation;
pub mod rules;
pub mod seed;
pub mod server;
pub mod services;
pub mod signin;
pub mod signing;
pub mod storage;
pub mod throttle;
pub mod tokens;
