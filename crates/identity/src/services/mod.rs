//! The authorization server's flows as services, free of HTTP types. Each service holds only
//! what its flow needs; the `api` module hands each handler the service it calls, never the
//! store.
//!
//! - [`authorization`]: the authorization request, PAR, remembered consent, code issuance.
//! - [`token`]: the token endpoint's grants, signing through [`minting`].
//! - [`exchange`]: token exchange (RFC 8693): policy (`may_act`, impersonation) and `act`.
//! - [`inspection`]: introspection, revocation and userinfo.
//! - [`clients`]: the client cache, client authentication, the admin API's client changes.
//! - [`signing_keys`]: the published signing keys: JWKS, administrative rotation, `id_token_hint`.
//! - [`issuer`], [`lifetimes`]: what several services share.
//!
//! The interactive sign-in is [`crate::signin`].

pub mod authorization;
pub mod clients;
mod errors;
pub mod exchange;
pub mod inspection;
pub mod issuer;
pub mod lifetimes;
pub mod minting;
pub mod signing_keys;
pub mod token;

pub use authorization::{AuthorizationRequest, AuthorizationService, AuthorizeFailure, Prompt};
pub use clients::{ClientRegistration, ClientRegistry, ClientService, RegistrationError};
pub use exchange::TokenExchange;
pub use inspection::{InspectionService, Introspection, UserInfo};
pub use issuer::{Issuer, IssuerCell};
pub use lifetimes::Lifetimes;
pub use minting::TokenMinter;
pub use signing_keys::SigningKeyService;
pub use token::{TokenResponse, TokenService};
