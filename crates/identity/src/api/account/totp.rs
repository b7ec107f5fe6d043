//! `/account/totp`: add an authenticator app (the secret as text and as a QR code, confirmed
//! with a first code; the first confirmation shows the recovery codes once) and
//! `/account/totp/remove`. Every step needs a recent sign-in and a CSRF token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::super::extract::OAuthForm;
use super::super::html::{escape, page};
use super::super::interaction::unavailable;
use super::super::second_factor::{CodeProblem, code_field, error_summary};
use super::super::state::ClientAddr;
use super::{recent_account_form, recent_account_session};
use crate::mfa::totp_service::{Enrolment, TotpService};
use crate::oauth::OAuthError;
use crate::paths;
use crate::signin::{BrowserSession, SignInService};

/// The link back to the account overview.
pub(super) fn back_link() -> String {
    format!(
        "<p><a href=\"{}\">Back to your account</a></p>",
        paths::ACCOUNT
    )
}

/// The recovery codes, shown once, as a list.
pub(super) fn codes_html(codes: &[zeroize::Zeroizing<String>]) -> String {
    let items: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", escape(c)))
        .collect();
    format!(
        "<h2 id=\"recovery-codes-heading\">Recovery codes</h2>\
         <p>Save these codes somewhere safe: each one signs you in once if you lose your \
         authenticator. They are shown only now.</p>\
         <ul aria-labelledby=\"recovery-codes-heading\" id=\"recovery-codes\">{items}</ul>"
    )
}

/// The enrolment page: the secret as text and QR code, and the confirm form.
fn enrolment_html(
    session: &BrowserSession,
    enrolment: &Enrolment,
    problem: Option<CodeProblem>,
) -> Response {
    let message = problem.map(|p| p.message(false));
    let params = enrolment.params;
    let body = format!(
        "{summary}<p>Scan the QR code with your authenticator app, or type the key into it. \
         Then enter the code it shows to finish.</p>\
         <figure id=\"totp-qr\">{svg}</figure>\
         <p>Key: <code id=\"totp-secret\">{secret}</code></p>\
         <p class=\"muted\">Time-based, {algorithm}, {digits} digits, every {period} seconds.</p>\
         <form method=\"post\" action=\"{action}\" novalidate>\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">{field}\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\">Confirm</button></div>\
         </form>{back}",
        summary = error_summary(message.as_deref()),
        svg = enrolment.svg.as_str(),
        secret = escape(&enrolment.secret_text),
        algorithm = params.algorithm.as_str(),
        digits = params.digits,
        period = params.period_secs,
        action = paths::ACCOUNT_TOTP,
        csrf = escape(&session.csrf_token),
        field = code_field(
            "totp-code",
            "Code from the app",
            true,
            "Enter the code your app shows now.",
            message.as_deref(),
            true,
        ),
        back = back_link(),
    );
    let response = page(
        problem.map_or(StatusCode::OK, CodeProblem::status),
        "Add an authenticator app",
        problem.is_some(),
        &body,
    );
    match problem {
        Some(problem) => problem.decorate(response),
        None => response,
    }
}

/// The page of a user who already has an authenticator: remove it.
fn enrolled_html(session: &BrowserSession) -> Response {
    let body = format!(
        "<p>An authenticator app is set up for your account. To move it to a new app, remove it \
         and add it again.</p>\
         <form method=\"post\" action=\"{action}/remove\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\"><button type=\"submit\" class=\"secondary\">\
         Remove authenticator app</button></div></form>{back}",
        action = paths::ACCOUNT_TOTP,
        csrf = escape(&session.csrf_token),
        back = back_link(),
    );
    page(StatusCode::OK, "Authenticator app", false, &body)
}

/// `GET /account/totp`: starts an enrolment (a new secret each time until one is confirmed),
/// or offers removal when an authenticator is set up.
pub async fn totp_page(
    State(sign_in): State<Arc<SignInService>>,
    State(totp): State<Arc<TotpService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, user) =
        match recent_account_session(&sign_in, &headers, totp.reauthentication_window(), now).await
        {
            Ok(found) => found,
            Err(response) => return response,
        };
    match totp.start_enrolment(&user.id, &user.username, now).await {
        Ok(Some(enrolment)) => enrolment_html(&session, &enrolment, None),
        Ok(None) => enrolled_html(&session),
        Err(_) => unavailable(),
    }
}

/// `POST /account/totp`: confirms the enrolment with a first code.
pub async fn totp_confirm(
    State(sign_in): State<Arc<SignInService>>,
    State(totp): State<Arc<TotpService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = totp.reauthentication_window();
    let (session, user, form) =
        match recent_account_form(&sign_in, &headers, window, form, now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let code = form.get("code").unwrap_or_default();
    let result = if code.trim().is_empty() {
        Err(Some(CodeProblem::Missing))
    } else {
        totp.confirm(&user.id, code, source, now)
            .await
            .map_err(CodeProblem::from_failure)
    };
    let problem = match result {
        Ok(codes) => {
            let body = format!(
                "<div role=\"status\"><p>Your authenticator app is set up. From now on, signing \
                 in asks for its code after your password.</p></div>{codes}{back}",
                codes = codes.as_deref().map(codes_html).unwrap_or_default(),
                back = back_link(),
            );
            return page(StatusCode::OK, "Authenticator app added", false, &body);
        }
        Err(None) => return unavailable(),
        Err(Some(problem)) => problem,
    };
    match totp.current_enrolment(&user.id, &user.username).await {
        Ok(Some(enrolment)) => enrolment_html(&session, &enrolment, Some(problem)),
        Ok(None) => {
            let body = format!(
                "<div class=\"alert\" role=\"alert\"><p>There is no authenticator app being \
                 added. <a href=\"{}\">Start again</a>.</p></div>{}",
                paths::ACCOUNT_TOTP,
                back_link()
            );
            page(
                StatusCode::CONFLICT,
                "Add an authenticator app",
                true,
                &body,
            )
        }
        Err(_) => unavailable(),
    }
}

/// `POST /account/totp/remove`: removes the authenticator.
pub async fn totp_remove(
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
    match totp.remove(&user.id).await {
        Ok(removed) => {
            let text = if removed {
                "Your authenticator app was removed. It no longer signs you in."
            } else {
                "No authenticator app was set up."
            };
            let body = format!("<div role=\"status\"><p>{text}</p></div>{}", back_link());
            page(StatusCode::OK, "Authenticator app removed", false, &body)
        }
        Err(_) => unavailable(),
    }
}
