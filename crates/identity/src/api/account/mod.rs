//! The signed-in user's account pages (`/account`): the overview of their factors, password
//! and sessions, and one module per thing they manage. Every page needs a signed-in session
//! ([`account_session`]); adding or removing a factor, changing the password or ending other
//! sessions needs a recent sign-in ([`recent_account_session`]). Every form is CSRF-protected.

pub mod overview;
pub mod passkeys;
pub mod password;
pub mod recovery_codes;
pub mod sessions;
pub mod totp;
mod view;

use axum::http::HeaderMap;
use axum::response::Response;
use time::{Duration, OffsetDateTime};

use super::extract::OAuthForm;
use super::interaction::{see_other, unavailable};
use super::session_cookie;
use crate::model::User;
use crate::oauth::{FormParams, OAuthError};
use crate::paths;
use crate::signin::{
    AccountAction, BrowserSession, PendingInteraction, SignInService, SignInState,
};

/// The signed-in session and user of an account page, or the response to send instead: a
/// browser that is not signed in (or still owes a second factor) is sent to the login page,
/// which brings it back to `/account`.
pub(crate) async fn account_session(
    sign_in: &SignInService,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(BrowserSession, User), Response> {
    let (session, cookie) = match session_cookie::load(sign_in, headers, now).await {
        Ok(Some(session)) => (session, None),
        Ok(None) => match sign_in.start(now) {
            Ok(started) => (
                started.session,
                Some(session_cookie::set_cookie(sign_in, &started.cookie_value)),
            ),
            Err(_) => return Err(unavailable()),
        },
        Err(_) => return Err(unavailable()),
    };
    if let Some((user_id, _)) = session.state.signed_in() {
        match sign_in.user(user_id).await {
            Ok(Some(user)) if user.enabled => return Ok((session, user)),
            Ok(_) => {}
            Err(_) => return Err(unavailable()),
        }
    }
    let mut session = session;
    if !matches!(session.state, SignInState::SecondFactorRequired { .. }) {
        session.state = SignInState::Anonymous;
    }
    session.pending = Some(PendingInteraction::AccountAction {
        account_action: AccountAction::Overview,
    });
    match sign_in.save(&session).await {
        Ok(()) if matches!(session.state, SignInState::SecondFactorRequired { .. }) => {
            Err(see_other(paths::LOGIN_SECOND_FACTOR, cookie))
        }
        Ok(()) => Err(see_other(paths::LOGIN, cookie)),
        Err(_) => Err(unavailable()),
    }
}

/// Like [`account_session`], for a change that needs a recent sign-in: a sign-in older than
/// `window` (`mfa.reauthentication_window`) is asked again (the login page, then every factor
/// the user has), and comes back to the account page.
pub(crate) async fn recent_account_session(
    sign_in: &SignInService,
    headers: &HeaderMap,
    window: Duration,
    now: OffsetDateTime,
) -> Result<(BrowserSession, User), Response> {
    let (session, user) = account_session(sign_in, headers, now).await?;
    if is_recent(&session, window, now) {
        Ok((session, user))
    } else {
        Err(sign_in_again(sign_in, session).await)
    }
}

/// True when `session`'s sign-in completed within `window` of `now`.
pub(crate) fn is_recent(session: &BrowserSession, window: Duration, now: OffsetDateTime) -> bool {
    matches!(session.state.signed_in(), Some((_, auth_time)) if now - auth_time <= window)
}

/// Asks a session whose sign-in is too old for a change to sign in again (the login page,
/// then every factor the user has), coming back to the account page.
pub(crate) async fn sign_in_again(
    sign_in: &SignInService,
    mut session: BrowserSession,
) -> Response {
    session.state = SignInState::Anonymous;
    session.pending = Some(PendingInteraction::AccountAction {
        account_action: AccountAction::Overview,
    });
    match sign_in.save(&session).await {
        Ok(()) => see_other(paths::LOGIN, None),
        Err(_) => unavailable(),
    }
}

/// A submitted account form that changes something: the recent signed-in session, its user and
/// the form once its CSRF token matched; otherwise the response to send (the sign-in again, or
/// the account's error page).
pub(crate) async fn recent_account_form(
    sign_in: &SignInService,
    headers: &HeaderMap,
    window: Duration,
    form: Result<OAuthForm, OAuthError>,
    now: OffsetDateTime,
) -> Result<(BrowserSession, User, FormParams), Response> {
    let (session, user) = recent_account_session(sign_in, headers, window, now).await?;
    let form = view::checked(&session, form).map_err(|page| *page)?;
    Ok((session, user, form))
}
