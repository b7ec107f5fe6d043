//! Token, code and session lifetimes taken from the settings.

use time::Duration;

use crate::config::IdentitySettings;

/// Token lifetimes and other knobs taken from the settings.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    /// Access tokens.
    pub access_token: Duration,
    /// ID tokens.
    pub id_token: Duration,
    /// Refresh tokens (the family's whole life).
    pub refresh_token: Duration,
    /// Authorization codes (10 minutes, SPEC §4).
    pub code: Duration,
    /// Pushed authorization requests (RFC 9126 suggests a short life).
    pub pushed_request: Duration,
    /// Login sessions.
    pub session: Duration,
}

impl Lifetimes {
    /// From `identity.yml`.
    pub fn from_settings(settings: &IdentitySettings) -> Self {
        let d = |h: &cryptoutil_server::config::HumanDuration| {
            Duration::try_from(h.get()).unwrap_or(Duration::MAX)
        };
        Self {
            access_token: d(&settings.tokens.access_token_lifetime),
            id_token: d(&settings.tokens.id_token_lifetime),
            refresh_token: d(&settings.tokens.refresh_token_lifetime),
            code: Duration::minutes(10),
            pushed_request: Duration::seconds(60),
            session: d(&settings.sessions.lifetime),
        }
    }

    /// The longest time a signed token stays valid: how long a superseded signing key must
    /// stay in the JWKS.
    pub fn longest_signed(&self) -> Duration {
        self.access_token.max(self.id_token)
    }
}
