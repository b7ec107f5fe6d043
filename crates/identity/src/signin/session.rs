//! A browser session at the IdP as the sign-in sees it: its sign-in state, the pending
//! interaction and the CSRF token of its forms. [`crate::model::Session`] is its stored form.

use time::OffsetDateTime;

use super::pending::PendingInteraction;
use super::state::{AuthMethod, SignInState};
use crate::model::Session;

/// A browser session (server-side; the cookie holds only a random id, stored hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    /// base64url(SHA-256(cookie value)).
    pub id_hash: String,
    /// Who signed in, how and when.
    pub state: SignInState,
    /// What continues once the user has signed in.
    pub pending: Option<PendingInteraction>,
    /// Per-session CSRF token for the forms.
    pub csrf_token: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// The id the account page shows and ends the session by (a UUIDv7 made when the session
    /// starts; `None` for sessions stored before public ids existed).
    pub public_id: Option<String>,
    /// When the session started (`None` when not recorded).
    pub created_at: Option<OffsetDateTime>,
    /// The browser's `User-Agent` at sign-in (at most [`MAX_USER_AGENT_CHARS`] characters).
    pub user_agent: Option<String>,
}

/// The longest `User-Agent` kept with a session, in characters (longer ones are cut).
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// What the account page lists of one of the user's signed-in sessions: never its id hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionListing {
    /// Its public id (`None` for a session stored before public ids: only "sign out
    /// everywhere else" ends it).
    pub public_id: Option<String>,
    /// When it started, if known.
    pub created_at: Option<OffsetDateTime>,
    /// When its sign-in completed.
    pub auth_time: OffsetDateTime,
    /// The sign-in methods.
    pub methods: Vec<AuthMethod>,
    /// The browser's `User-Agent` at sign-in, if known.
    pub user_agent: Option<String>,
    /// True for the session asking.
    pub current: bool,
}

impl BrowserSession {
    /// The session a stored record describes. A record with a user but no `auth_time` waits
    /// for a second factor; a record without methods (written before they were recorded)
    /// signed in with the password. A pending interaction that cannot be read is dropped.
    pub fn from_record(record: Session) -> Self {
        let mut methods: Vec<AuthMethod> = record
            .amr
            .iter()
            .filter_map(|m| AuthMethod::parse(m))
            .collect();
        if methods.is_empty() {
            methods.push(AuthMethod::Password);
        }
        let state = match (record.user_id, record.auth_time) {
            (None, _) => SignInState::Anonymous,
            (Some(user_id), Some(auth_time)) => SignInState::SignedIn {
                user_id,
                auth_time,
                methods,
            },
            (Some(user_id), None) => SignInState::SecondFactorRequired { user_id, methods },
        };
        Self {
            id_hash: record.id_hash,
            state,
            pending: record
                .pending_request
                .as_deref()
                .and_then(PendingInteraction::from_json),
            csrf_token: record.csrf_token,
            expires_at: record.expires_at,
            public_id: record.public_id,
            created_at: record.created_at,
            user_agent: record.user_agent,
        }
    }

    /// Records the browser's `User-Agent` (control characters dropped, cut to
    /// [`MAX_USER_AGENT_CHARS`]; empty: unknown).
    pub fn set_user_agent(&mut self, user_agent: Option<&str>) {
        let kept: String = user_agent
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        let kept = kept.trim();
        self.user_agent = (!kept.is_empty()).then(|| kept.to_owned());
    }

    /// How the account page lists this session; `current_id_hash` names the session asking.
    pub fn listing(&self, current_id_hash: &str) -> Option<SessionListing> {
        let (_, auth_time) = self.state.signed_in()?;
        Some(SessionListing {
            public_id: self.public_id.clone(),
            created_at: self.created_at,
            auth_time,
            methods: self.state.methods().to_vec(),
            user_agent: self.user_agent.clone(),
            current: self.id_hash == current_id_hash,
        })
    }

    /// The stored form.
    pub fn to_record(&self) -> Result<Session, serde_json::Error> {
        Ok(Session {
            id_hash: self.id_hash.clone(),
            user_id: self.state.user_id().map(str::to_owned),
            auth_time: self.state.signed_in().map(|(_, at)| at),
            amr: self
                .state
                .methods()
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            pending_request: self
                .pending
                .as_ref()
                .map(PendingInteraction::to_json)
                .transpose()?,
            csrf_token: self.csrf_token.clone(),
            expires_at: self.expires_at,
            public_id: self.public_id.clone(),
            created_at: self.created_at,
            user_agent: self.user_agent.clone(),
        })
    }

    /// True when `presented` equals the session's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf_token.as_bytes())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::signin::pending::{AccountAction, PendingInteraction};

    fn record() -> Session {
        Session {
            id_hash: "h".to_owned(),
            user_id: None,
            auth_time: None,
            amr: Vec::new(),
            pending_request: None,
            csrf_token: "csrf".to_owned(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            public_id: None,
            created_at: None,
            user_agent: None,
        }
    }

    #[test]
    fn every_stored_state_round_trips() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        for state in [
            SignInState::Anonymous,
            SignInState::SecondFactorRequired {
                user_id: "u".to_owned(),
                methods: vec![AuthMethod::Password],
            },
            SignInState::SignedIn {
                user_id: "u".to_owned(),
                auth_time: now,
                methods: vec![AuthMethod::Password, AuthMethod::HardwareKey],
            },
        ] {
            let session = BrowserSession {
                state,
                pending: Some(PendingInteraction::AccountAction {
                    account_action: AccountAction::ManageSecondFactors,
                }),
                ..BrowserSession::from_record(record())
            };
            let stored = session.to_record().unwrap();
            assert_eq!(BrowserSession::from_record(stored), session);
        }
    }

    #[test]
    fn a_record_without_methods_signed_in_with_the_password() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let session = BrowserSession::from_record(Session {
            user_id: Some("u".to_owned()),
            auth_time: Some(now),
            ..record()
        });
        assert_eq!(session.state.signed_in(), Some(("u", now)));
        assert_eq!(session.state.methods(), &[AuthMethod::Password]);
    }

    #[test]
    fn the_user_agent_is_cleaned_and_bounded() {
        let mut session = BrowserSession::from_record(record());
        session.set_user_agent(Some("Mozilla/5.0\r\nX-Evil: 1"));
        assert_eq!(session.user_agent.as_deref(), Some("Mozilla/5.0X-Evil: 1"));
        session.set_user_agent(Some(&"é".repeat(1000)));
        assert_eq!(
            session.user_agent.as_deref().map(|ua| ua.chars().count()),
            Some(MAX_USER_AGENT_CHARS)
        );
        session.set_user_agent(Some("  "));
        assert_eq!(session.user_agent, None);
        session.set_user_agent(None);
        assert_eq!(session.user_agent, None);
    }

    #[test]
    fn only_a_signed_in_session_is_listed_and_the_asker_is_marked() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let session = BrowserSession::from_record(Session {
            user_id: Some("u".to_owned()),
            auth_time: Some(now),
            amr: vec!["pwd".to_owned(), "otp".to_owned()],
            public_id: Some("p".to_owned()),
            created_at: Some(now),
            user_agent: Some("ua".to_owned()),
            ..record()
        });
        let listed = session.listing("h").unwrap();
        assert!(listed.current);
        assert_eq!(listed.public_id.as_deref(), Some("p"));
        assert_eq!(
            listed.methods,
            [AuthMethod::Password, AuthMethod::OneTimePassword]
        );
        assert!(!session.listing("other").unwrap().current);
        let waiting = BrowserSession::from_record(Session {
            user_id: Some("u".to_owned()),
            ..record()
        });
        assert_eq!(waiting.listing("h"), None);
    }

    #[test]
    fn csrf_must_match() {
        let session = BrowserSession::from_record(record());
        assert!(session.csrf_ok(Some("csrf")));
        assert!(!session.csrf_ok(Some("csrg")));
        assert!(!session.csrf_ok(None));
    }
}
