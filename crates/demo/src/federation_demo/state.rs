//! The federation demo's state in the run context: what its steps pass on.

use crate::credentials::Secret;

/// What the federation steps pass on.
#[derive(Debug, Default)]
pub struct FederationState {
    pub(super) token: Option<Secret>,
    pub(super) encryption_key_id: Option<String>,
    pub(super) signing_key_id: Option<String>,
    pub(super) jwe: Option<String>,
    pub(super) jws: Option<String>,
    pub(super) dpop_token: Option<Secret>,
    pub(super) dpop_key: Option<std::sync::Arc<crate::dpop::DpopKey>>,
    pub(super) user_token: Option<Secret>,
    pub(super) exchanged_token: Option<Secret>,
}
