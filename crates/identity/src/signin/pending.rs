//! What a browser session is in the middle of: the interaction that continues once the user
//! has signed in (and, for an authorization request, consented).

use serde::{Deserialize, Serialize};

use crate::services::authorization::AuthorizationRequest;

/// The interaction a session holds while the user is on the sign-in pages.
///
/// Stored as JSON; an authorization request is stored exactly as the request itself (the form
/// sessions had before the other kinds existed), the others under their name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PendingInteraction {
    /// A device-code approval (RFC 8628) waiting for the user.
    DeviceApproval {
        /// The approval.
        device_approval: DeviceApproval,
    },
    /// An action on the user's own account.
    AccountAction {
        /// The action.
        account_action: AccountAction,
    },
    /// An authorization request (RFC 6749 §4.1) waiting for sign-in and consent (boxed: it is
    /// much larger than the other kinds).
    Authorization(Box<AuthorizationRequest>),
}

/// A device asking to be approved with the code its user typed (RFC 8628 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceApproval {
    /// The code the user entered.
    pub user_code: String,
}

/// An action on the signed-in user's own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    /// Open the account page (`/account`) once signed in.
    Overview,
    /// Change the password.
    ChangePassword,
    /// Add or remove second factors.
    ManageSecondFactors,
}

impl PendingInteraction {
    /// The authorization request, when that is what is pending.
    pub fn authorization(&self) -> Option<&AuthorizationRequest> {
        match self {
            Self::Authorization(request) => Some(request.as_ref()),
            Self::DeviceApproval { .. } | Self::AccountAction { .. } => None,
        }
    }

    /// The stored form.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads the stored form; `None` when it is not a pending interaction.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::services::authorization::Prompt;

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".to_owned(),
            redirect_uri: "https://c.example/cb".to_owned(),
            scopes: vec!["openid".to_owned()],
            state: Some("s".to_owned()),
            nonce: None,
            code_challenge: "x".repeat(43),
            prompt: vec![Prompt::Login],
            max_age: Some(60),
            dpop_jkt: None,
            resources: Vec::new(),
            acr_values: Vec::new(),
        }
    }

    #[test]
    fn an_authorization_request_is_stored_as_the_request_itself() {
        let pending = PendingInteraction::Authorization(Box::new(request()));
        let json = pending.to_json().unwrap();
        assert_eq!(json, serde_json::to_string(&request()).unwrap());
        assert_eq!(PendingInteraction::from_json(&json), Some(pending));
    }

    #[test]
    fn every_kind_round_trips() {
        for pending in [
            PendingInteraction::DeviceApproval {
                device_approval: DeviceApproval {
                    user_code: "WDJB-MJHT".to_owned(),
                },
            },
            PendingInteraction::AccountAction {
                account_action: AccountAction::ChangePassword,
            },
        ] {
            let json = pending.to_json().unwrap();
            assert_eq!(PendingInteraction::from_json(&json), Some(pending.clone()));
            assert_eq!(pending.authorization(), None);
        }
        assert_eq!(PendingInteraction::from_json(r#"{"client_id":"c"}"#), None);
    }
}
