//! Account self-service, free of HTTP types: what the account page shows of a user's factors,
//! changing the password (the current one required), the user's sessions (list, end one, end
//! the others), and an administrator's reset of a user's factors. Every change is audited
//! ([`crate::audit`]); passwords and codes never reach a log.

use std::net::IpAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::audit::{self, AccountOperation, Actor, Outcome};
use crate::model::{FactorSummary, User};
use crate::rules::{self, PasswordRule};
use crate::signin::{
    BrowserSession, SessionError, SessionListing, SignInFailure, SignInService, StartedSession,
};
use crate::storage::{Store, StoreError};

/// The service cannot answer now (database, randomness, a worker thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the account service cannot answer now")]
pub struct AccountUnavailable;

impl From<StoreError> for AccountUnavailable {
    fn from(_: StoreError) -> Self {
        Self
    }
}

impl From<SessionError> for AccountUnavailable {
    fn from(_: SessionError) -> Self {
        Self
    }
}

/// A password change as the form submitted it.
#[derive(Debug)]
pub struct PasswordChange<'a> {
    /// The current password.
    pub current: &'a str,
    /// The new password.
    pub new: &'a str,
    /// The new password again.
    pub confirm: &'a str,
}

/// Why a password change was refused; each concerns one field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// The current password is missing.
    MissingCurrent,
    /// The current password is wrong.
    WrongCurrent,
    /// Too many wrong passwords for the account or the address: refused without checking.
    Locked {
        /// Seconds until the next attempt is checked.
        retry_after_secs: u64,
    },
    /// The new password breaks the password rule.
    Rule(PasswordRule),
    /// The two new passwords differ.
    Mismatch,
    /// The new password is the current one.
    Unchanged,
    /// The account changed meanwhile (another password change won): try again.
    Conflict,
}

/// Why a password change did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChangeFailure {
    /// The user's input was refused.
    Refused(PasswordProblem),
    /// The service cannot answer now.
    Unavailable,
}

impl From<AccountUnavailable> for PasswordChangeFailure {
    fn from(_: AccountUnavailable) -> Self {
        Self::Unavailable
    }
}

/// A password change that took place.
#[derive(Debug)]
pub struct PasswordChanged {
    /// The session that made it, under a new id (stored): the browser gets a new cookie.
    pub session: StartedSession,
    /// How many other sessions of the user ended.
    pub sessions_ended: u64,
}

/// What an administrator's reset removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorsReset {
    /// Factor rows removed (TOTP, recovery codes, passkeys, pending challenges).
    pub removed: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
}

/// Account self-service over the store and the sign-in service.
#[derive(Debug)]
pub struct AccountService {
    store: Store,
    sign_in: Arc<SignInService>,
    reauthentication_window: Duration,
}

impl AccountService {
    /// The service; `reauthentication_window` (`mfa.reauthentication_window`) is how recent
    /// a sign-in must be to end other sessions.
    pub fn new(
        store: Store,
        sign_in: Arc<SignInService>,
        reauthentication_window: Duration,
    ) -> Self {
        Self {
            store,
            sign_in,
            reauthentication_window,
        }
    }

    /// How recent a sign-in must be for changes that ask for one.
    pub fn reauthentication_window(&self) -> Duration {
        self.reauthentication_window
    }

    /// Which factors the user has beyond the password.
    pub async fn factors(&self, user_id: &str) -> Result<FactorSummary, AccountUnavailable> {
        Ok(self.store.factor_summary(user_id).await?)
    }

    /// Changes `user`'s password from `session` (which must be theirs, signed in): the
    /// current password is checked like at the login (backoff per account and per `source`
    /// address, PBKDF2 off the async workers), the new one must follow
    /// [`rules::check_new_password`], match its confirmation and differ from the current one.
    /// Then it is hashed and stored (compare-and-set on the user's version), every other
    /// session of the user ends and `session` continues under a new id.
    pub async fn change_password(
        &self,
        session: BrowserSession,
        user: &User,
        change: &PasswordChange<'_>,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<PasswordChanged, PasswordChangeFailure> {
        let refused = |problem| Err(PasswordChangeFailure::Refused(problem));
        if change.current.is_empty() {
            return refused(PasswordProblem::MissingCurrent);
        }
        if let Err(rule) = rules::check_new_password(change.new) {
            return refused(PasswordProblem::Rule(rule));
        }
        if !bool::from(change.new.as_bytes().ct_eq(change.confirm.as_bytes())) {
            return refused(PasswordProblem::Mismatch);
        }
        match self
            .sign_in
            .verify_password(&user.username, change.current, source, now)
            .await
        {
            Ok(verified) if verified.user_id == user.id => {}
            Ok(_) | Err(SignInFailure::Wrong) => {
                audit::account(
                    AccountOperation::PasswordChanged,
                    &user.id,
                    Actor::User,
                    Outcome::Refused("wrong current password"),
                    None,
                );
                return refused(PasswordProblem::WrongCurrent);
            }
            Err(SignInFailure::Locked(locked)) => {
                return refused(PasswordProblem::Locked {
                    retry_after_secs: locked.retry_after_secs,
                });
            }
            Err(SignInFailure::Unavailable) => return Err(PasswordChangeFailure::Unavailable),
        }
        if bool::from(change.new.as_bytes().ct_eq(change.current.as_bytes())) {
            return refused(PasswordProblem::Unchanged);
        }
        let new = Zeroizing::new(change.new.to_owned());
        let hash =
            tokio::task::spawn_blocking(move || cryptoutil_realm::password::hash_password(&new))
                .await
                .map_err(|_| PasswordChangeFailure::Unavailable)?
                .map_err(|_| PasswordChangeFailure::Unavailable)?;
        if !self
            .store
            .set_password_hash(&user.id, user.version, &hash)
            .await
            .map_err(AccountUnavailable::from)?
        {
            return refused(PasswordProblem::Conflict);
        }
        let sessions_ended = self
            .sign_in
            .end_other_sessions(&session)
            .await
            .map_err(AccountUnavailable::from)?;
        let session = self
            .sign_in
            .renew(session, now)
            .await
            .map_err(AccountUnavailable::from)?;
        let detail = format!("{sessions_ended} other sessions ended");
        audit::account(
            AccountOperation::PasswordChanged,
            &user.id,
            Actor::User,
            Outcome::Success,
            Some(&detail),
        );
        Ok(PasswordChanged {
            session,
            sessions_ended,
        })
    }

    /// The user's signed-in sessions, `current` marked.
    pub async fn sessions(
        &self,
        user_id: &str,
        current: &BrowserSession,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionListing>, AccountUnavailable> {
        Ok(self.sign_in.user_sessions(user_id, current, now).await?)
    }

    /// Ends the user's session `public_id` (audited). False when they have none by that id.
    pub async fn end_session(
        &self,
        user_id: &str,
        public_id: &str,
    ) -> Result<bool, AccountUnavailable> {
        let ended = self.sign_in.end_user_session(user_id, public_id).await?;
        if ended {
            audit::account(
                AccountOperation::SessionEnded,
                user_id,
                Actor::User,
                Outcome::Success,
                Some("one session"),
            );
        }
        Ok(ended)
    }

    /// Ends every session of `current`'s user but `current` (audited). Returns how many ended.
    pub async fn end_other_sessions(
        &self,
        user_id: &str,
        current: &BrowserSession,
    ) -> Result<u64, AccountUnavailable> {
        let ended = self.sign_in.end_other_sessions(current).await?;
        let detail = format!("{ended} other sessions");
        audit::account(
            AccountOperation::SessionEnded,
            user_id,
            Actor::User,
            Outcome::Success,
            Some(&detail),
        );
        Ok(ended)
    }

    /// An administrator (`admin`: the client certificate's subject, or `admin` in `--dev`)
    /// removes every factor of `username` and ends their sessions (audited). `None` when there
    /// is no such user.
    pub async fn reset_factors(
        &self,
        username: &str,
        admin: &str,
    ) -> Result<Option<FactorsReset>, AccountUnavailable> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        let removed = self.store.reset_factors(&user.id).await?;
        let sessions_ended = self.sign_in.end_all_sessions(&user.id).await?;
        let detail = format!("{removed} factor records removed, {sessions_ended} sessions ended");
        audit::account(
            AccountOperation::FactorsReset,
            &user.id,
            Actor::Admin(admin),
            Outcome::Success,
            Some(&detail),
        );
        Ok(Some(FactorsReset {
            removed,
            sessions_ended,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::TotpFactor;
    use crate::signin::{PasswordVerified, SecondFactorPolicy};
    use crate::storage::DatabaseSettings;
    use crate::throttle::ThrottlePolicy;

    const PASSWORD: &str = "correct horse battery";

    struct World {
        store: Store,
        sign_in: Arc<SignInService>,
        account: AccountService,
        user: User,
        now: OffsetDateTime,
    }

    async fn world() -> World {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let user = store
            .upsert_user(&User {
                id: uuid::Uuid::now_v7().to_string(),
                username: format!("user-{}", uuid::Uuid::now_v7()),
                password_hash: cryptoutil_realm::password::hash_password(PASSWORD).unwrap(),
                enabled: true,
                roles: Vec::new(),
                tenant_id: None,
                name: None,
                given_name: None,
                family_name: None,
                email: None,
                email_verified: false,
                version: 1,
                created_at: now,
            })
            .await
            .unwrap();
        let sign_in = Arc::new(SignInService::new(
            store.clone(),
            ThrottlePolicy::default(),
            Duration::hours(1),
        ));
        let account = AccountService::new(store.clone(), sign_in.clone(), Duration::minutes(15));
        World {
            store,
            sign_in,
            account,
            user,
            now,
        }
    }

    /// A stored, signed-in session of the world's user.
    async fn signed_in(w: &World, user_agent: &str) -> StartedSession {
        let mut started = w.sign_in.start(w.now).unwrap();
        started.session.state = PasswordVerified {
            user_id: w.user.id.clone(),
            at: w.now,
        }
        .conclude(SecondFactorPolicy::NotRequired);
        started.session.set_user_agent(Some(user_agent));
        w.sign_in.save(&started.session).await.unwrap();
        started
    }

    fn change<'a>(current: &'a str, new: &'a str, confirm: &'a str) -> PasswordChange<'a> {
        PasswordChange {
            current,
            new,
            confirm,
        }
    }

    #[tokio::test]
    async fn a_password_change_is_checked_field_by_field() {
        let w = world().await;
        let mine = signed_in(&w, "mine").await.session;
        for (attempt, problem) in [
            (
                change("", "a new long password", "a new long password"),
                PasswordProblem::MissingCurrent,
            ),
            (
                change(PASSWORD, "short", "short"),
                PasswordProblem::Rule(PasswordRule::TooShort),
            ),
            (
                change(PASSWORD, "a new long password", "a new long passw0rd"),
                PasswordProblem::Mismatch,
            ),
            (
                change(PASSWORD, PASSWORD, PASSWORD),
                PasswordProblem::Unchanged,
            ),
            (
                change(
                    "not the password",
                    "a new long password",
                    "a new long password",
                ),
                PasswordProblem::WrongCurrent,
            ),
        ] {
            let result = w
                .account
                .change_password(mine.clone(), &w.user, &attempt, None, w.now)
                .await;
            assert!(
                matches!(result, Err(PasswordChangeFailure::Refused(p)) if p == problem),
                "{attempt:?}: {result:?}"
            );
        }
        let stored = w.store.user(&w.user.id).await.unwrap().unwrap();
        assert_eq!(
            stored.password_hash, w.user.password_hash,
            "nothing changed"
        );
    }

    #[tokio::test]
    async fn a_password_change_ends_the_other_sessions_and_renews_this_one() {
        let w = world().await;
        let mine = signed_in(&w, "mine").await;
        let other = signed_in(&w, "other").await;
        let new = "a brand new passphrase";
        let changed = w
            .account
            .change_password(
                mine.session.clone(),
                &w.user,
                &change(PASSWORD, new, new),
                None,
                w.now,
            )
            .await
            .unwrap();
        assert_eq!(changed.sessions_ended, 1);
        let load = |value: String| {
            let sign_in = w.sign_in.clone();
            async move { sign_in.load(&value, w.now).await.unwrap() }
        };
        assert_eq!(
            load(other.cookie_value).await,
            None,
            "the other browser is signed out"
        );
        assert_eq!(
            load(mine.cookie_value.clone()).await,
            None,
            "the old id is gone"
        );
        let renewed = load(changed.session.cookie_value).await.unwrap();
        assert_ne!(renewed.id_hash, mine.session.id_hash);
        assert_ne!(renewed.csrf_token, mine.session.csrf_token);
        assert_eq!(renewed.state, mine.session.state, "still signed in");
        assert_eq!(renewed.public_id, mine.session.public_id);

        assert!(
            w.sign_in
                .verify_password(&w.user.username, new, None, w.now)
                .await
                .is_ok()
        );
        assert_eq!(
            w.sign_in
                .verify_password(&w.user.username, PASSWORD, None, w.now)
                .await,
            Err(SignInFailure::Wrong)
        );
        // The change was made against version 1: a second one from the same stale record
        // loses (compare-and-set).
        let again = w
            .account
            .change_password(
                renewed,
                &w.user,
                &change(new, "yet another passphrase", "yet another passphrase"),
                None,
                w.now,
            )
            .await;
        assert!(matches!(
            again,
            Err(PasswordChangeFailure::Refused(PasswordProblem::Conflict))
        ));
    }

    #[tokio::test]
    async fn sessions_are_listed_and_ended_only_for_their_user() {
        let w = world().await;
        let mine = signed_in(&w, "mine").await.session;
        let other = signed_in(&w, "other").await.session;
        let listed = w.account.sessions(&w.user.id, &mine, w.now).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed.iter().filter(|s| s.current).count(), 1);
        let other_id = other.public_id.clone().unwrap();
        assert!(
            !w.account
                .end_session("someone-else", &other_id)
                .await
                .unwrap()
        );
        assert!(w.account.end_session(&w.user.id, &other_id).await.unwrap());
        assert!(!w.account.end_session(&w.user.id, &other_id).await.unwrap());
        let listed = w.account.sessions(&w.user.id, &mine, w.now).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].current);

        signed_in(&w, "third").await;
        assert_eq!(
            w.account
                .end_other_sessions(&w.user.id, &mine)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            w.account
                .sessions(&w.user.id, &mine, w.now)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_reset_removes_every_factor_and_session() {
        let w = world().await;
        signed_in(&w, "mine").await;
        w.store
            .put_totp_factor(&TotpFactor {
                user_id: w.user.id.clone(),
                sealed_secret: "sealed".to_owned(),
                algorithm: "SHA1".to_owned(),
                digits: 6,
                period_secs: 30,
                confirmed_at: Some(w.now),
                last_used_step: None,
                created_at: w.now,
                last_used_at: None,
            })
            .await
            .unwrap();
        assert!(w.account.factors(&w.user.id).await.unwrap().totp);
        let reset = w
            .account
            .reset_factors(&w.user.username, "admin")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            reset,
            FactorsReset {
                removed: 1,
                sessions_ended: 1
            }
        );
        assert!(
            !w.account
                .factors(&w.user.id)
                .await
                .unwrap()
                .any_second_factor()
        );
        assert_eq!(
            w.account.reset_factors("nobody", "admin").await.unwrap(),
            None
        );
    }
}
