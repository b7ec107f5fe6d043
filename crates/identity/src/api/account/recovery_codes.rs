//! `POST /account/recovery-codes`: a new set of recovery codes, shown once (the old set stops
//! working). Needs a recent sign-in and a CSRF token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::super::extract::OAuthForm;
use super::super::html::page;
use super::super::interaction::unavailable;
use super::recent_account_form;
use super::totp::{back_link, codes_html};
use crate::mfa::totp_service::TotpService;
use crate::oauth::OAuthError;
use crate::signin::SignInService;

/// `POST /account/recovery-codes`.
pub async fn regenerate(
    State(sign_in): State<Arc<SignInService>>,
    State(totp): State<Arc<TotpService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = totp.reauthentication_window();
    let (_, user, _) = match recent_account_form(&sign_in, &headers, window, form, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match totp.regenerate_recovery_codes(&user.id, now).await {
        Ok(codes) => {
            let body = format!(
                "<div role=\"status\"><p>A new set of recovery codes was made. The old codes no \
                 longer work.</p></div>{}{}",
                codes_html(&codes),
                back_link()
            );
            page(StatusCode::OK, "New recovery codes", false, &body)
        }
        Err(_) => unavailable(),
    }
}
