//! `GET|POST /account/password`: change the password. The current password is required (and
//! checked like at the login), the new one typed twice; a recent sign-in is required. Errors
//! sit next to their field, are summed up in a `role=alert` box, and focus goes to the first
//! field in error. On success every other session of the user ends and this one continues
//! under a new cookie.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use time::OffsetDateTime;

use super::super::extract::OAuthForm;
use super::super::html::{escape, page};
use super::super::interaction::unavailable;
use super::super::session_cookie;
use super::super::state::ClientAddr;
use super::recent_account_session;
use super::view::{checked, csrf_input};
use crate::account::{AccountService, PasswordChange, PasswordChangeFailure, PasswordProblem};
use crate::oauth::OAuthError;
use crate::paths;
use crate::rules::{MIN_PASSWORD_CHARS, PasswordRule};
use crate::signin::{BrowserSession, SignInService};

/// The form's fields, in page order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Current,
    New,
    Confirm,
}

impl Field {
    fn id(self) -> &'static str {
        match self {
            Self::Current => "current_password",
            Self::New => "new_password",
            Self::Confirm => "confirm_password",
        }
    }
}

/// The field a refusal concerns and what to say.
fn explain(problem: PasswordProblem) -> (Field, String) {
    match problem {
        PasswordProblem::MissingCurrent => (Field::Current, "Enter your current password.".into()),
        PasswordProblem::WrongCurrent => {
            (Field::Current, "The current password is incorrect.".into())
        }
        PasswordProblem::Locked { retry_after_secs } => (
            Field::Current,
            format!("Too many wrong passwords. Try again in {retry_after_secs} seconds."),
        ),
        PasswordProblem::Rule(PasswordRule::TooShort) => (
            Field::New,
            format!("The new password must have at least {MIN_PASSWORD_CHARS} characters."),
        ),
        PasswordProblem::Rule(PasswordRule::TooLong) => (
            Field::New,
            "The new password is too long (1024 bytes at most).".into(),
        ),
        PasswordProblem::Unchanged => (
            Field::New,
            "The new password must differ from the current one.".into(),
        ),
        PasswordProblem::Mismatch => (Field::Confirm, "The two new passwords do not match.".into()),
        PasswordProblem::Conflict => (
            Field::Current,
            "Your account changed meanwhile. Please try again.".into(),
        ),
    }
}

fn status(problem: PasswordProblem) -> StatusCode {
    match problem {
        PasswordProblem::WrongCurrent => StatusCode::UNAUTHORIZED,
        PasswordProblem::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        PasswordProblem::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// One password input with its label, an optional hint and an optional error (between label
/// and input, referenced by `aria-describedby`, with `aria-invalid`).
fn password_field(
    field: Field,
    label: &str,
    autocomplete: &str,
    hint: Option<&str>,
    error: Option<&str>,
    autofocus: bool,
) -> String {
    let id = field.id();
    let mut described = Vec::new();
    let hint_html = hint
        .map(|text| {
            described.push(format!("{id}-hint"));
            format!("<p class=\"muted\" id=\"{id}-hint\">{}</p>", escape(text))
        })
        .unwrap_or_default();
    let error_html = error
        .map(|text| {
            described.push(format!("{id}-error"));
            format!(
                "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
                escape(text)
            )
        })
        .unwrap_or_default();
    let aria = format!(
        "{}{}",
        if error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        },
        if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        }
    );
    format!(
        "<label for=\"{id}\">{label}</label>{hint_html}{error_html}\
         <input type=\"password\" id=\"{id}\" name=\"{id}\" autocomplete=\"{autocomplete}\" \
         required{aria}{focus}>",
        focus = if autofocus { " autofocus" } else { "" },
    )
}

/// The form, with `problem` shown (summary, next to its field, focus there).
fn password_page(session: &BrowserSession, problem: Option<PasswordProblem>) -> Response {
    let explained = problem.map(explain);
    let error_for = |field: Field| {
        explained
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, text)| text.as_str())
    };
    let focus = explained.as_ref().map_or(Field::Current, |(f, _)| *f);
    let summary = explained
        .as_ref()
        .map(|(field, text)| {
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>\
                 <a href=\"#{}\">{}</a></p></div>",
                field.id(),
                escape(text)
            )
        })
        .unwrap_or_default();
    let hint =
        format!("At least {MIN_PASSWORD_CHARS} characters. A few unrelated words work well.");
    let body = format!(
        "<p><a href=\"{account}\">Back to your account</a></p>{summary}\
         <form method=\"post\" action=\"{action}\" novalidate>{csrf}\
         {current}{new}{confirm}\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\">Change password\
         </button></div></form>",
        account = paths::ACCOUNT,
        action = paths::ACCOUNT_PASSWORD,
        csrf = csrf_input(session),
        current = password_field(
            Field::Current,
            "Current password",
            "current-password",
            None,
            error_for(Field::Current),
            focus == Field::Current
        ),
        new = password_field(
            Field::New,
            "New password",
            "new-password",
            Some(&hint),
            error_for(Field::New),
            focus == Field::New
        ),
        confirm = password_field(
            Field::Confirm,
            "New password again",
            "new-password",
            None,
            error_for(Field::Confirm),
            focus == Field::Confirm
        ),
    );
    let mut response = page(
        problem.map_or(StatusCode::OK, status),
        "Change your password",
        problem.is_some(),
        &body,
    );
    if let Some(PasswordProblem::Locked { retry_after_secs }) = problem {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    response
}

/// `GET /account/password`.
pub async fn password_form(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = account.reauthentication_window();
    match recent_account_session(&sign_in, &headers, window, now).await {
        Ok((session, _)) => password_page(&session, None),
        Err(response) => response,
    }
}

/// `POST /account/password`.
pub async fn password_submit(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = account.reauthentication_window();
    let (session, user) = match recent_account_session(&sign_in, &headers, window, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = match checked(&session, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let change = PasswordChange {
        current: form.get("current_password").unwrap_or_default(),
        new: form.get("new_password").unwrap_or_default(),
        confirm: form.get("confirm_password").unwrap_or_default(),
    };
    match account
        .change_password(session.clone(), &user, &change, source, now)
        .await
    {
        Ok(changed) => {
            let ended = match changed.sessions_ended {
                0 => String::new(),
                1 => " Your other session was signed out.".to_owned(),
                n => format!(" Your {n} other sessions were signed out."),
            };
            let mut response = page(
                StatusCode::OK,
                "Password changed",
                false,
                &format!(
                    "<div role=\"status\"><p>Your password was changed.{ended}</p></div>\
                     <p><a href=\"{}\">Back to your account</a></p>",
                    paths::ACCOUNT
                ),
            );
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie::set_cookie(&sign_in, &changed.session.cookie_value),
            );
            response
        }
        Err(PasswordChangeFailure::Refused(problem)) => password_page(&session, Some(problem)),
        Err(PasswordChangeFailure::Unavailable) => unavailable(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::Session;

    fn session() -> BrowserSession {
        BrowserSession::from_record(Session {
            id_hash: "h".to_owned(),
            user_id: None,
            auth_time: None,
            amr: Vec::new(),
            pending_request: None,
            csrf_token: "tok".to_owned(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            public_id: None,
            created_at: None,
            user_agent: None,
        })
    }

    async fn html(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_error_sits_at_its_field_which_gets_the_focus() {
        let page = html(password_page(&session(), None)).await;
        assert!(!page.contains("role=\"alert\""));
        assert!(page.contains("id=\"current_password\" name=\"current_password\" autocomplete=\"current-password\" required autofocus>"), "{page}");
        assert!(page.contains("aria-describedby=\"new_password-hint\""));

        let response = password_page(&session(), Some(PasswordProblem::Mismatch));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = html(response).await;
        assert!(page.contains("<title>Error: "), "{page}");
        assert!(page.contains("role=\"alert\""));
        assert!(
            page.contains("<a href=\"#confirm_password\">The two new passwords do not match.</a>")
        );
        assert!(page.contains(
            "<p class=\"field-error\" id=\"confirm_password-error\">The two new passwords do not match.</p>\
             <input type=\"password\" id=\"confirm_password\" name=\"confirm_password\" \
             autocomplete=\"new-password\" required aria-invalid=\"true\" \
             aria-describedby=\"confirm_password-error\" autofocus>"
        ), "{page}");
        assert_eq!(page.matches("autofocus").count(), 1);

        let response = password_page(
            &session(),
            Some(PasswordProblem::Rule(PasswordRule::TooShort)),
        );
        let page = html(response).await;
        assert!(
            page.contains("aria-describedby=\"new_password-hint new_password-error\" autofocus"),
            "{page}"
        );

        let response = password_page(
            &session(),
            Some(PasswordProblem::Locked {
                retry_after_secs: 7,
            }),
        );
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
