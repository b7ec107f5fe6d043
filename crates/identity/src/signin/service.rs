//! The sign-in service: browser sessions (start, load, save, end) and the password check with
//! brute-force backoff.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use super::session::{BrowserSession, SessionListing};
use super::state::{AuthMethod, PasswordVerified, SecondFactorPolicy, SignInState};
use crate::mfa::policy::{self, Acr, MfaPolicy, Requirement};
use crate::model::User;
use crate::storage::{Store, StoreError};
use crate::throttle::{Locked, Throttle, ThrottlePolicy};
use crate::tokens::{self, TokenError};

/// Why a password check at the login form failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    /// Wrong username or password (one message for both).
    Wrong,
    /// Too many failures for the account or the address: refused without checking.
    Locked(Locked),
    /// The database is unavailable.
    Unavailable,
}

/// Why a session could not be started or stored.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No randomness for the session id.
    #[error(transparent)]
    Random(#[from] TokenError),
    /// The pending interaction could not be serialised.
    #[error(transparent)]
    Encoding(#[from] serde_json::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new session and the cookie value that names it (only its hash is stored).
#[derive(Debug)]
pub struct StartedSession {
    /// The session (not stored yet).
    pub session: BrowserSession,
    /// The random id the cookie carries.
    pub cookie_value: String,
}

/// Browser sessions and the password check.
#[derive(Debug)]
pub struct SignInService {
    store: Store,
    throttle: Throttle,
    session_lifetime: Duration,
    mfa_policy: MfaPolicy,
}

impl SignInService {
    /// Sessions over `store` living `session_lifetime`; failed passwords back off per
    /// `throttle`.
    pub fn new(store: Store, throttle: ThrottlePolicy, session_lifetime: Duration) -> Self {
        Self {
            store,
            throttle: Throttle::new(throttle),
            session_lifetime,
            mfa_policy: MfaPolicy::Optional,
        }
    }

    /// The same service under the deployment's MFA policy (`mfa.policy`; default
    /// `optional`).
    pub fn with_mfa_policy(mut self, policy: MfaPolicy) -> Self {
        self.mfa_policy = policy;
        self
    }

    /// The deployment's MFA policy.
    pub fn mfa_policy(&self) -> MfaPolicy {
        self.mfa_policy
    }

    /// What `user_id`'s sign-in with `methods` still needs for a request of a client with
    /// policy `client` asking for `requested` ([`policy::requirement`]: the deployment's and
    /// the client's policies enforced, `acr_values` as far as the user's factors go).
    pub async fn requirement(
        &self,
        user_id: &str,
        methods: &[AuthMethod],
        client: Option<MfaPolicy>,
        requested: Option<Acr>,
    ) -> Result<Requirement, StoreError> {
        let reachable = self.store.factor_summary(user_id).await?.reachable_acr();
        Ok(policy::requirement(
            Acr::of(methods),
            policy::enforced(self.mfa_policy, client),
            requested,
            reachable,
        ))
    }

    /// How long a session lives (the cookie's `Max-Age`).
    pub fn session_lifetime(&self) -> Duration {
        self.session_lifetime
    }

    /// The live session named by a cookie value.
    pub async fn load(
        &self,
        cookie_value: &str,
        now: OffsetDateTime,
    ) -> Result<Option<BrowserSession>, StoreError> {
        Ok(self
            .store
            .session(&tokens::secret_hash(cookie_value), now)
            .await?
            .map(BrowserSession::from_record))
    }

    /// A new anonymous session (not stored yet).
    pub fn start(&self, now: OffsetDateTime) -> Result<StartedSession, TokenError> {
        let cookie_value = tokens::opaque_secret()?;
        Ok(StartedSession {
            session: BrowserSession {
                id_hash: tokens::secret_hash(&cookie_value),
                state: SignInState::Anonymous,
                pending: None,
                csrf_token: tokens::opaque_secret()?,
                expires_at: now + self.session_lifetime,
                public_id: Some(uuid::Uuid::now_v7().to_string()),
                created_at: Some(now),
                user_agent: None,
            },
            cookie_value,
        })
    }

    /// Stores a session (creating or replacing it).
    pub async fn save(&self, session: &BrowserSession) -> Result<(), SessionError> {
        self.store.save_session(&session.to_record()?).await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn end(&self, session: &BrowserSession) -> Result<(), StoreError> {
        self.store.delete_session(&session.id_hash).await
    }

    /// The user with this id, if any.
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.store.user(user_id).await
    }

    /// Checks a user's password from `source` (the TCP peer): refused unchecked while the
    /// account or the address is backing off after failures; otherwise PBKDF2 off the async
    /// workers (unknown users cost the same). A failure that starts a backoff is reported as
    /// `Locked`.
    pub async fn verify_password(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<PasswordVerified, SignInFailure> {
        if username.is_empty()
            || password.is_empty()
            || username.len() > 256
            || password.len() > 1024
        {
            return Err(SignInFailure::Wrong);
        }
        self.throttle
            .check(username, source)
            .map_err(SignInFailure::Locked)?;
        let user = self
            .store
            .user_by_username(username)
            .await
            .map_err(|_| SignInFailure::Unavailable)?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password = zeroize::Zeroizing::new(password.to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            match hash.as_deref().map(cryptoutil_realm::PasswordHash::parse) {
                Some(Ok(hash)) => hash.verify(&password),
                _ => {
                    cryptoutil_realm::password::dummy_verify(&password);
                    false
                }
            }
        })
        .await
        .map_err(|_| SignInFailure::Unavailable)?;
        match user {
            Some(user) if ok && user.enabled => {
                self.throttle.succeeded(username, source);
                Ok(PasswordVerified {
                    user_id: user.id,
                    at: now,
                })
            }
            _ => match self.throttle.failed(username, source) {
                Ok(()) => Err(SignInFailure::Wrong),
                Err(locked) => Err(SignInFailure::Locked(locked)),
            },
        }
    }

    /// Whether `user_id` owes a second factor after the password: yes when they enrolled one.
    pub async fn second_factor_policy(
        &self,
        user_id: &str,
    ) -> Result<SecondFactorPolicy, StoreError> {
        let factors = self.store.factor_summary(user_id).await?;
        Ok(if factors.any_second_factor() {
            SecondFactorPolicy::Required
        } else {
            SecondFactorPolicy::NotRequired
        })
    }

    /// After a sign-in step that produced `state` (a passkey, a second factor): a new
    /// session carrying `previous`'s pending interaction (the session id changes whenever who
    /// is signed in, or how, changes); the previous session is ended. Not stored yet.
    pub async fn after_sign_in_step(
        &self,
        previous: BrowserSession,
        state: SignInState,
        now: OffsetDateTime,
    ) -> Result<StartedSession, SessionError> {
        let mut started = self.start(now)?;
        started.session.state = state;
        started.session.pending = previous.pending.clone();
        started.session.user_agent = previous.user_agent.clone();
        self.end(&previous).await?;
        Ok(started)
    }

    /// After a verified password: a new session (the pre-login session id is never reused)
    /// that carries `previous`'s pending interaction and the concluded sign-in state (waiting
    /// for a second factor when the user has one); the previous session is ended. The new
    /// session is not stored yet.
    pub async fn after_password(
        &self,
        previous: BrowserSession,
        verified: PasswordVerified,
        now: OffsetDateTime,
    ) -> Result<StartedSession, SessionError> {
        let policy = self.second_factor_policy(&verified.user_id).await?;
        self.after_sign_in_step(previous, verified.conclude(policy), now)
            .await
    }

    /// The same session under a new id (cookie value) and CSRF token, stored; the old id ends.
    /// What a password change does to the session that made it.
    pub async fn renew(
        &self,
        session: BrowserSession,
        now: OffsetDateTime,
    ) -> Result<StartedSession, SessionError> {
        let mut started = self.start(now)?;
        started.session = BrowserSession {
            id_hash: started.session.id_hash,
            csrf_token: started.session.csrf_token,
            // A session stored before public ids existed gets one now.
            public_id: session.public_id.clone().or(started.session.public_id),
            created_at: session.created_at.or(started.session.created_at),
            ..session.clone()
        };
        self.save(&started.session).await?;
        self.end(&session).await?;
        Ok(started)
    }

    /// The user's signed-in sessions as the account page lists them, `current` marked (at
    /// most [`crate::storage::MAX_USER_SESSIONS`], the latest sign-in first).
    pub async fn user_sessions(
        &self,
        user_id: &str,
        current: &BrowserSession,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionListing>, StoreError> {
        Ok(self
            .store
            .user_sessions(user_id, now)
            .await?
            .into_iter()
            .filter_map(|record| BrowserSession::from_record(record).listing(&current.id_hash))
            .collect())
    }

    /// Ends the user's session with this public id; false when they have none by that id.
    pub async fn end_user_session(
        &self,
        user_id: &str,
        public_id: &str,
    ) -> Result<bool, StoreError> {
        self.store.delete_user_session(user_id, public_id).await
    }

    /// Ends every session of `current`'s user but `current`. Returns how many ended.
    pub async fn end_other_sessions(&self, current: &BrowserSession) -> Result<u64, StoreError> {
        match current.state.user_id() {
            Some(user_id) => {
                self.store
                    .delete_user_sessions(user_id, Some(&current.id_hash))
                    .await
            }
            None => Ok(0),
        }
    }

    /// Ends every session of the user (an administrator's reset). Returns how many ended.
    pub async fn end_all_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        self.store.delete_user_sessions(user_id, None).await
    }
}
