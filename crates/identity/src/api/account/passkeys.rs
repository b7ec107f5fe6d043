//! The account's passkeys (`/account/passkeys`): the list (name, kind, added, last used) with a
//! rename and a remove form each, and the button that registers a new one through the passkey
//! script (`GET /account/passkeys/options`, then `POST /account/passkeys`). Changes need a
//! recent sign-in; every form is CSRF-protected.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;

use super::{account_session, recent_account_form, recent_account_session};
use crate::api::extract::OAuthForm;
use crate::api::html::{SCRIPT_TAG, escape, page, passkey_button};
use crate::api::interaction::{see_other, unavailable};
use crate::api::passkey::{PasskeyForm, field, json_error, json_failure, json_response};
use crate::mfa::passkeys::{MAX_NAME_CHARS, NewPasskey, PasskeyError, PasskeyService};
use crate::model::{User, WebAuthnCredential};
use crate::oauth::OAuthError;
use crate::paths;
use crate::signin::{BrowserSession, SignInService};

/// Longest `transports` field (a JSON list of short names).
const MAX_TRANSPORTS_JSON: usize = 512;

/// A problem to show on the page: the message, and the form field it concerns (`passkey-name`
/// or a credential's rename field), marked invalid and focused.
struct Problem<'a> {
    status: StatusCode,
    message: String,
    field: Option<&'a str>,
}

/// A date as the page shows it (`2026-12-07 21:14 UTC`).
fn when(at: OffsetDateTime) -> String {
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// A text input with its label; with `error`, described by it, invalid and focused.
fn name_input(id: &str, label: &str, value: &str, error: Option<&str>) -> String {
    let (message, aria) = match error {
        Some(text) => (
            format!(
                "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
                escape(text)
            ),
            format!(" aria-invalid=\"true\" aria-describedby=\"{id}-error\" autofocus"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "<label for=\"{id}\">{label}</label>{message}<input type=\"text\" id=\"{id}\" \
         name=\"name\" value=\"{value}\" maxlength=\"{MAX_NAME_CHARS}\" autocomplete=\"off\"{aria}>",
        label = escape(label),
        value = escape(value),
    )
}

/// One credential: what it is and when it was used, and its rename and remove forms.
fn credential_html(c: &WebAuthnCredential, csrf: &str, problem: Option<&Problem<'_>>) -> String {
    let id = escape(&c.credential_id);
    let field_id = format!("rename-{}", c.credential_id);
    let error = problem
        .filter(|p| p.field == Some(field_id.as_str()))
        .map(|p| p.message.as_str());
    let kind = if c.backup_eligible {
        "Synced passkey"
    } else {
        "Device-bound passkey"
    };
    let used = c.last_used_at.map_or_else(|| "never".to_owned(), when);
    format!(
        "<li><h2>{name}</h2><p class=\"muted\">{kind} · added {added} · last used {used}</p>\
         <form method=\"post\" action=\"{base}/{id}/rename\" novalidate>\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">{input}\
         <div class=\"actions\"><button type=\"submit\" class=\"secondary\">Rename</button></div>\
         </form><form method=\"post\" action=\"{base}/{id}/remove\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\"><button type=\"submit\" class=\"secondary\" \
         aria-label=\"Remove {name}\">Remove</button></div></form></li>",
        name = escape(&c.name),
        added = when(c.created_at),
        base = paths::ACCOUNT_PASSKEYS,
        csrf = escape(csrf),
        input = name_input(
            &escape(&field_id),
            &format!("New name for {}", c.name),
            &c.name,
            error
        ),
    )
}

/// The passkeys page.
fn passkeys_page(
    session: &BrowserSession,
    user: &User,
    credentials: &[WebAuthnCredential],
    problem: Option<Problem<'_>>,
) -> Response {
    let summary = problem
        .as_ref()
        .map(|p| {
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(&p.message)
            )
        })
        .unwrap_or_default();
    let list = if credentials.is_empty() {
        "<p>You have no passkeys yet.</p>".to_owned()
    } else {
        format!(
            "<ul>{}</ul>",
            credentials
                .iter()
                .map(|c| credential_html(c, &session.csrf_token, problem.as_ref()))
                .collect::<String>()
        )
    };
    let add_error = problem
        .as_ref()
        .filter(|p| p.field == Some("passkey-name"))
        .map(|p| p.message.as_str());
    let body = format!(
        "<p class=\"muted\">Signed in as <strong>{username}</strong>. A passkey signs you in \
         without a password, or confirms it is you after the password.</p>{summary}{list}\
         <h2>Add a passkey</h2>{input}<div class=\"actions\">{button}</div>{script}\
         <p><a href=\"{account}\">Back to your account</a></p>",
        username = escape(&user.username),
        input = name_input(
            "passkey-name",
            "Name for the new passkey (optional)",
            "",
            add_error
        ),
        button = passkey_button("register", "Add a passkey", &session.csrf_token, false),
        script = SCRIPT_TAG,
        account = paths::ACCOUNT,
    );
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    page(status, "Passkeys", problem.is_some(), &body)
}

/// The page again with `problem` (or the 503 page when the list cannot be read).
async fn page_with(
    passkeys: &PasskeyService,
    session: &BrowserSession,
    user: &User,
    problem: Option<Problem<'_>>,
) -> Response {
    match passkeys.list(&user.id).await {
        Ok(credentials) => passkeys_page(session, user, &credentials, problem),
        Err(_) => unavailable(),
    }
}

/// The problem a refused change shows (`field`: the input it concerns).
fn problem_of<'a>(e: &PasskeyError, field: Option<&'a str>) -> Problem<'a> {
    let status = match e {
        PasskeyError::NotFound => StatusCode::NOT_FOUND,
        PasskeyError::AlreadyRegistered | PasskeyError::TooMany => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let text = e.to_string();
    let mut chars = text.chars();
    let message = match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    };
    Problem {
        status,
        message,
        field: matches!(e, PasskeyError::Name).then_some(field).flatten(),
    }
}

/// `GET /account/passkeys`.
pub async fn passkeys_get(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    match account_session(&sign_in, &headers, now).await {
        Ok((session, user)) => page_with(&passkeys, &session, &user, None).await,
        Err(response) => response,
    }
}

/// `GET /account/passkeys/options`: creation options with a fresh challenge (JSON). A sign-in
/// that is not recent enough answers 401 with where to sign in again (the script goes there).
pub async fn creation_options(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = passkeys.reauthentication_window();
    let (session, user) = match recent_account_session(&sign_in, &headers, window, now).await {
        Ok(found) => found,
        Err(response) if response.status() == StatusCode::SEE_OTHER => {
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(paths::LOGIN)
                .to_owned();
            let mut answer = json_response(
                StatusCode::UNAUTHORIZED,
                json!({
                    "error": "login_required",
                    "error_description": "Please sign in again to add a passkey.",
                    "location": location,
                }),
            );
            if let Some(cookie) = response.headers().get(header::SET_COOKIE) {
                answer
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
            return answer;
        }
        Err(_) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Please try again.",
            );
        }
    };
    match passkeys
        .creation_options(&user, &session.id_hash, now)
        .await
    {
        Ok(options) => json_response(StatusCode::OK, options),
        Err(e) => json_failure(&e),
    }
}

/// `POST /account/passkeys`: registers the passkey the script created (CSRF-checked, bounded
/// fields), then back to the list; a refusal shows the list with the reason.
pub async fn passkeys_add(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    headers: HeaderMap,
    PasskeyForm(form): PasskeyForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = passkeys.reauthentication_window();
    let (session, user, form) =
        match recent_account_form(&sign_in, &headers, window, form, now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let transports: Option<Vec<String>> = match form.get("transports") {
        None | Some("") => Some(Vec::new()),
        Some(text) if text.len() <= MAX_TRANSPORTS_JSON => serde_json::from_str(text).ok(),
        Some(_) => None,
    };
    let resident_key = match form.get("resident_key") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let (Some(client_data), Some(attestation), Some(transports)) = (
        field(&form, "client_data_json", true),
        field(&form, "attestation_object", true),
        transports,
    ) else {
        let problem = problem_of(&PasskeyError::Malformed, None);
        return page_with(&passkeys, &session, &user, Some(problem)).await;
    };
    let new = NewPasskey {
        name: form.get("name").unwrap_or_default(),
        client_data_json: &client_data,
        attestation_object: &attestation,
        transports,
        resident_key,
    };
    match passkeys
        .finish_registration(&user, &session.id_hash, &new, now)
        .await
    {
        Ok(_) => see_other(paths::ACCOUNT_PASSKEYS, None),
        Err(e) if e.is_unavailable() => unavailable(),
        Err(e) => {
            let problem = problem_of(&e, Some("passkey-name"));
            page_with(&passkeys, &session, &user, Some(problem)).await
        }
    }
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn passkeys_rename(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    Path(credential_id): Path<String>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = passkeys.reauthentication_window();
    let (session, user, form) =
        match recent_account_form(&sign_in, &headers, window, form, now).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let name = form.get("name").unwrap_or_default();
    match passkeys.rename(&user.id, &credential_id, name).await {
        Ok(()) => see_other(paths::ACCOUNT_PASSKEYS, None),
        Err(e) if e.is_unavailable() => unavailable(),
        Err(e) => {
            let field_id = format!("rename-{credential_id}");
            let problem = problem_of(&e, Some(&field_id));
            page_with(&passkeys, &session, &user, Some(problem)).await
        }
    }
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn passkeys_remove(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    Path(credential_id): Path<String>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let window = passkeys.reauthentication_window();
    let (session, user, _) = match recent_account_form(&sign_in, &headers, window, form, now).await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    match passkeys.remove(&user.id, &credential_id).await {
        Ok(()) => see_other(paths::ACCOUNT_PASSKEYS, None),
        Err(e) if e.is_unavailable() => unavailable(),
        Err(e) => page_with(&passkeys, &session, &user, Some(problem_of(&e, None))).await,
    }
}
