//! The handlers' state: the services, each extractable on its own (`State<Arc<TheService>>`
//! through [`FromRef`]), and the client's address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::account::AccountService;
use crate::device::service::DeviceService;
use crate::dpop::DpopGuard;
use crate::mfa::passkeys::PasskeyService;
use crate::mfa::totp_service::TotpService;
use crate::registration::RegistrationService;
use crate::services::{
    AuthorizationService, ClientService, InspectionService, IssuerCell, SigningKeyService,
    TokenService,
};
use crate::signin::SignInService;

/// The services the handlers are given; each handler extracts only the one(s) it calls.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The issuer (discovery).
    pub issuer: IssuerCell,
    /// Authorization requests, PAR, consent and codes.
    pub authorization: Arc<AuthorizationService>,
    /// Browser sessions and passwords.
    pub sign_in: Arc<SignInService>,
    /// The token endpoint's grants.
    pub tokens: Arc<TokenService>,
    /// Introspection, revocation, userinfo.
    pub inspection: Arc<InspectionService>,
    /// Client lookups, authentication and administration.
    pub clients: Arc<ClientService>,
    /// The published signing keys.
    pub signing_keys: Arc<SigningKeyService>,
    /// DPoP proofs and nonces at the token and PAR endpoints.
    pub dpop: Arc<DpopGuard>,
    /// Dynamic client registration (RFC 7591, RFC 7592) and initial access tokens.
    pub registration: Arc<RegistrationService>,
    /// The device authorization grant (RFC 8628): its endpoint and pages.
    pub device: Arc<DeviceService>,
    /// Account self-service (`/account`) and the admin reset of a user's factors.
    pub account: Arc<AccountService>,
    /// Passkey ceremonies and a user's passkeys.
    pub passkeys: Arc<PasskeyService>,
    /// TOTP authenticators and recovery codes.
    pub totp: Arc<TotpService>,
}

/// `impl FromRef<AppState>` for each service, so handlers take `State<Arc<TheService>>`.
macro_rules! sub_state {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

sub_state! {
    issuer: IssuerCell,
    authorization: Arc<AuthorizationService>,
    sign_in: Arc<SignInService>,
    tokens: Arc<TokenService>,
    inspection: Arc<InspectionService>,
    clients: Arc<ClientService>,
    signing_keys: Arc<SigningKeyService>,
    dpop: Arc<DpopGuard>,
    registration: Arc<RegistrationService>,
    device: Arc<DeviceService>,
    account: Arc<AccountService>,
    passkeys: Arc<PasskeyService>,
    totp: Arc<TotpService>,
}

/// The TCP peer's address, as the HTTPS accept loop recorded it (forwarding headers are never
/// trusted). `None` only outside a real listener (in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}
