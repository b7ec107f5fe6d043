//! `POST /oidc/v1/login/continue`: the button on the account page's notice after the user set
//! up a factor their sign-in required. It continues the session's pending interaction from
//! where the sign-in left it: an authorization request goes back through
//! [`crate::signin::AuthorizationFlow::resume`] (which now steps up to the factor just added),
//! a device approval to the device page. The sign-in this interaction began with counts as
//! fresh (as after any sign-in step: `prompt=login` and `max_age` asked for it already), so
//! the user is not sent back to the password.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::interaction::{checked_form, continue_signed_in, pending_interaction, see_other};
use crate::oauth::OAuthError;
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{SignInService, SignInState};

/// `POST /oidc/v1/login/continue` (CSRF token `csrf_token`).
pub async fn continue_submit(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, interaction) = match pending_interaction(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if let Err(page) = checked_form("sign-in", &session, form) {
        return *page;
    }
    if session.state == SignInState::Anonymous {
        return see_other(paths::LOGIN, None);
    }
    continue_signed_in(&sign_in, &authorization, session, interaction, None, now).await
}
