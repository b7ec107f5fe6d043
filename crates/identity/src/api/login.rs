//! The login page (`/oidc/v1/login`): username and password for the pending authorization
//! request, device approval or account visit, with the error next to the field it concerns; a
//! right password continues it in a new session ([`crate::signin`]): on the second-factor page
//! when the user has a second factor, else where the interaction continues.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::html::{SCRIPT_TAG, escape, page, passkey_button};
use super::interaction::{checked_form, continue_in_new_session, pending_interaction, unavailable};
use super::state::ClientAddr;
use crate::oauth::OAuthError;
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{BrowserSession, PendingInteraction, SignInFailure, SignInService};

/// What went wrong with the last sign-in attempt, shown next to the field it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginProblem {
    MissingUsername,
    MissingPassword,
    Wrong,
    Locked { retry_after_secs: u64 },
}

impl LoginProblem {
    fn message(self) -> String {
        match self {
            Self::MissingUsername => "Enter your username.".to_owned(),
            Self::MissingPassword => "Enter your password.".to_owned(),
            Self::Wrong => "The username or password is incorrect.".to_owned(),
            Self::Locked { retry_after_secs } => format!(
                "Too many failed sign-in attempts. Try again in {retry_after_secs} seconds."
            ),
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::MissingUsername | Self::MissingPassword => StatusCode::BAD_REQUEST,
            Self::Wrong => StatusCode::UNAUTHORIZED,
            Self::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// One labelled input; `error` is shown between the label and the input, which points at it
/// with `aria-describedby` and carries `aria-invalid`.
fn field(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    autocomplete: &str,
    error: Option<&str>,
    autofocus: bool,
) -> String {
    let (message, aria) = match error {
        Some(text) => (
            format!(
                "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
                escape(text)
            ),
            format!(" aria-invalid=\"true\" aria-describedby=\"{id}-error\""),
        ),
        None => (String::new(), String::new()),
    };
    let value = if value.is_empty() {
        String::new()
    } else {
        format!(" value=\"{}\"", escape(value))
    };
    format!(
        "<label for=\"{id}\">{label}</label>{message}\
         <input type=\"{kind}\" id=\"{id}\" name=\"{id}\"{value} \
         autocomplete=\"{autocomplete}\" required{aria}{focus}>",
        focus = if autofocus { " autofocus" } else { "" },
    )
}

/// A refused passkey sign-in: its status and message, shown above the form with focus on the
/// passkey button.
type PasskeyProblem<'a> = (StatusCode, &'a str);

/// The login page: an error summary (`role=alert`) above the form, the message again next to
/// the field it concerns, focus on that field (else on the first empty one, or on the passkey
/// button after a refused passkey). The username field offers passkeys too (conditional UI).
fn login_page_html(
    session: &BrowserSession,
    client_name: Option<&str>,
    username: &str,
    problem: Option<LoginProblem>,
    passkey_problem: Option<PasskeyProblem<'_>>,
) -> Response {
    let summary = problem
        .map(|p| p.message())
        .or(passkey_problem.map(|(_, m)| m.to_owned()))
        .map(|message| {
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(&message)
            )
        })
        .unwrap_or_default();
    let message = problem.map(LoginProblem::message);
    let (username_error, password_error) = match problem {
        Some(LoginProblem::MissingUsername) => (message.as_deref(), None),
        Some(LoginProblem::MissingPassword | LoginProblem::Wrong) => (None, message.as_deref()),
        _ => (None, None),
    };
    let focus_password = !username.is_empty() && username_error.is_none();
    let context = client_name
        .map(|name| {
            format!(
                "<p class=\"muted\">to continue to <strong>{}</strong></p>",
                escape(name)
            )
        })
        .unwrap_or_default();
    let locked = matches!(problem, Some(LoginProblem::Locked { .. }));
    let body = format!(
        "{context}{summary}<form method=\"post\" action=\"{action}\" novalidate>\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         {username_field}{password_field}\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\"{described}>\
         Sign in</button></div></form><div class=\"actions\">{passkey}</div>{script}",
        action = paths::LOGIN,
        csrf = escape(&session.csrf_token),
        username_field = field(
            "username",
            "Username",
            "text",
            username,
            "username webauthn",
            username_error,
            !focus_password && passkey_problem.is_none()
        ),
        password_field = field(
            "password",
            "Password",
            "password",
            "",
            "current-password",
            password_error,
            focus_password && passkey_problem.is_none()
        ),
        passkey = passkey_button(
            "sign-in",
            "Use a passkey",
            &session.csrf_token,
            passkey_problem.is_some()
        ),
        script = SCRIPT_TAG,
        described = if locked {
            " aria-describedby=\"form-error\""
        } else {
            ""
        },
    );
    let status = match (problem, passkey_problem) {
        (Some(problem), _) => problem.status(),
        (None, Some((status, _))) => status,
        (None, None) => StatusCode::OK,
    };
    let mut response = page(
        status,
        "Sign in",
        problem.is_some() || passkey_problem.is_some(),
        &body,
    );
    if let Some(LoginProblem::Locked { retry_after_secs }) = problem {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

/// The display name of the requesting client (`None` if it vanished or on a database error:
/// the page still works without it).
async fn client_name(authorization: &AuthorizationService, client_id: &str) -> Option<String> {
    match authorization.client(client_id).await {
        Ok(Some(client)) => Some(client.metadata.client_name.clone()),
        _ => None,
    }
}

/// The client name to show for the pending interaction (a device approval shows its client
/// on the consent page that follows, not here).
async fn interaction_client_name(
    authorization: &AuthorizationService,
    interaction: &PendingInteraction,
) -> Option<String> {
    match interaction.authorization() {
        Some(request) => client_name(authorization, &request.client_id).await,
        None => None,
    }
}

/// The login page again after a refused passkey sign-in, saying why (`status`, `message`).
pub(super) async fn passkey_failed_login_page(
    authorization: &AuthorizationService,
    session: &BrowserSession,
    interaction: &PendingInteraction,
    status: StatusCode,
    message: &str,
) -> Response {
    let name = interaction_client_name(authorization, interaction).await;
    login_page_html(session, name.as_deref(), "", None, Some((status, message)))
}

/// `GET /oidc/v1/login`.
pub async fn login_page(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    match pending_interaction(&sign_in, &headers, now).await {
        Ok((session, interaction)) => {
            let name = interaction_client_name(&authorization, &interaction).await;
            login_page_html(&session, name.as_deref(), "", None, None)
        }
        Err(response) => response,
    }
}

/// `POST /oidc/v1/login`: checks the CSRF token and the password (with brute-force backoff per
/// account and per address), then continues the request in a new session (a new cookie: the
/// pre-login session id is never reused).
pub async fn login_submit(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, interaction) = match pending_interaction(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = match checked_form("sign-in", &session, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let username = form.get("username").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();
    let problem = if username.is_empty() {
        Some(LoginProblem::MissingUsername)
    } else if password.is_empty() {
        Some(LoginProblem::MissingPassword)
    } else {
        None
    };
    let result = match problem {
        Some(problem) => Err(problem),
        None => match sign_in
            .verify_password(username, password, source, now)
            .await
        {
            Ok(verified) => Ok(verified),
            Err(SignInFailure::Wrong) => Err(LoginProblem::Wrong),
            Err(SignInFailure::Locked(locked)) => Err(LoginProblem::Locked {
                retry_after_secs: locked.retry_after_secs,
            }),
            Err(SignInFailure::Unavailable) => return unavailable(),
        },
    };
    let verified = match result {
        Ok(verified) => verified,
        Err(problem) => {
            let name = interaction_client_name(&authorization, &interaction).await;
            let shown = if username.len() > 256 { "" } else { username };
            return login_page_html(&session, name.as_deref(), shown, Some(problem), None);
        }
    };
    let Ok(started) = sign_in.after_password(session, verified, now).await else {
        return unavailable();
    };
    continue_in_new_session(
        &sign_in,
        &authorization,
        started,
        interaction,
        &headers,
        now,
    )
    .await
}
