//! The records of dynamic registration: initial access tokens and, per registered client, the
//! registration access token's hash, how the client was created and the metadata the
//! `clients` table has no column for.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An initial access token (RFC 7591 §3): created on the admin listener, shown once, stored as
/// the SHA-256 of its value. It may register at most `max_clients` clients before it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitialAccessToken {
    /// Its id (UUIDv7), for listing and revoking.
    pub id: String,
    /// base64url(SHA-256(token)); never shown.
    #[serde(skip_serializing)]
    pub token_hash: String,
    /// Most clients it may register.
    pub max_clients: i64,
    /// Clients registered with it so far.
    pub clients_created: i64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// After this instant it is refused.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Set when an administrator revoked it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl InitialAccessToken {
    /// Whether it may register one more client at `now`.
    pub fn usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.clients_created < self.max_clients
    }
}

/// How a dynamically registered client came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatedBy {
    /// Open registration (no initial access token).
    Open,
    /// With an initial access token.
    InitialAccessToken,
}

impl CreatedBy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InitialAccessToken => "initial_access_token",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "initial_access_token" => Some(Self::InitialAccessToken),
            _ => None,
        }
    }
}

/// The registered metadata the `clients` table does not hold (RFC 7591 §2 display and
/// software fields), returned as registered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredExtras {
    /// `application_type`: `web` or `native`.
    pub application_type: String,
    /// `client_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// `logo_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `tos_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `policy_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `contacts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// `software_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// `software_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// The verified `software_statement`, as presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
}

/// A dynamically registered client's registration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistrationRecord {
    /// The client.
    pub client_id: String,
    /// base64url(SHA-256(registration access token)).
    pub registration_token_hash: String,
    /// How it was created.
    pub created_by: CreatedBy,
    /// The initial access token used, if any.
    pub initial_access_token_id: Option<String>,
    /// The metadata beyond the client record.
    pub extras: RegisteredExtras,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}
