//! The Identity demo's state in the run context: what its steps hand to later ones, the
//! discovery document among them.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::credentials::Secret;

/// What the Identity steps hand to later ones.
#[derive(Debug, Default)]
pub struct IdentityState {
    pub(super) discovery: Option<Discovery>,
    pub(super) jwks: Option<String>,
    pub(super) pkce_verifier: Option<Secret>,
    pub(super) nonce: Option<String>,
    pub(super) code: Option<Secret>,
    pub(super) access_token: Option<Secret>,
    pub(super) id_token: Option<Secret>,
    pub(super) refresh_token: Option<Secret>,
    pub(super) subject: Option<String>,
    pub(super) machine_token: Option<Secret>,
    pub(super) registered: Option<Registered>,
    pub(super) device: Option<DeviceAuthorization>,
}

/// What the registration steps hand to later ones (`device`).
#[derive(Debug)]
pub(super) struct Registered {
    pub(super) client_id: String,
    pub(super) registration_access_token: Secret,
    pub(super) registration_client_uri: Url,
}

/// What the device authorization hands to the browser and the polling steps (`device`).
#[derive(Debug)]
pub(super) struct DeviceAuthorization {
    pub(super) device_code: Secret,
    pub(super) user_code: String,
    pub(super) verification_uri: Url,
    pub(super) interval: Duration,
    pub(super) last_poll: Instant,
}

/// The discovery fields the demo uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(super) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(super) jwks_uri: Url,
    pub(super) userinfo_endpoint: Url,
    pub(super) introspection_endpoint: Url,
    pub(crate) revocation_endpoint: Url,
    #[serde(default)]
    pub(super) code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub(super) grant_types_supported: Vec<String>,
    #[serde(default)]
    pub(super) id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: bool,
    /// RFC 7591 (absent when registration is off).
    #[serde(default)]
    pub(super) registration_endpoint: Option<Url>,
    /// RFC 8628.
    #[serde(default)]
    pub(super) device_authorization_endpoint: Option<Url>,
}
