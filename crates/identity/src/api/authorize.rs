//! The authorization endpoint and the login and consent pages it hands the browser to.
//!
//! `/oauth2/v1/authorize` validates the request; a signed-in user whose consent is remembered
//! gets a code at once, anyone else is sent (303) to `/oidc/v1/login` and then
//! `/oidc/v1/consent` with the request kept in their server-side session. The pages post back
//! with the session's CSRF token; the consent page's decision finishes the request (code, or
//! `access_denied`) with a redirect to the client.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::html::{error_page, escape, page};
use super::{AppState, ClientAddr, paths, session};
use crate::model::Session;
use crate::oauth::extract::{OAuthForm, OAuthQuery};
use crate::oauth::{ErrorCode, FormParams, OAuthError};
use crate::provider::{AuthorizationRequest, AuthorizeFailure, Prompt, Provider, SignInFailure};

/// A 303 to `location`, optionally setting the session cookie.
fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn unavailable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable. Please try again.",
    )
}

/// `GET /oauth2/v1/authorize`.
pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<OAuthQuery, OAuthError>,
) -> Response {
    match query {
        Ok(OAuthQuery(params)) => authorize(&state, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

/// `POST /oauth2/v1/authorize` (form-encoded, same parameters).
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    match form {
        Ok(OAuthForm(params)) => authorize(&state, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

async fn authorize(state: &Provider, headers: &HeaderMap, params: &FormParams) -> Response {
    let now = OffsetDateTime::now_utc();
    let request = match state.authorization_request(params, now).await {
        Ok((_, request)) => request,
        Err(AuthorizeFailure::Page(message)) => {
            return error_page(StatusCode::BAD_REQUEST, &message);
        }
        Err(AuthorizeFailure::Redirect(location)) => return see_other(&location, None),
        Err(AuthorizeFailure::Unavailable) => return unavailable(),
    };
    let (session, cookie) = match session::load(state, headers, now).await {
        Ok(Some(session)) => (session, None),
        Ok(None) => match session::create(state, now) {
            Ok((session, cookie)) => (session, Some(cookie)),
            Err(_) => return unavailable(),
        },
        Err(_) => return unavailable(),
    };
    resume(state, session, request, false, cookie, now).await
}

/// Continues an authorization request: sign-in, then consent, then the code.
async fn resume(
    state: &Provider,
    mut session: Session,
    request: AuthorizationRequest,
    just_signed_in: bool,
    cookie: Option<HeaderValue>,
    now: OffsetDateTime,
) -> Response {
    let fail = |error: OAuthError| match state.error_redirect(
        &request.redirect_uri,
        request.state.as_deref(),
        &error,
    ) {
        Ok(location) => see_other(&location, cookie.clone()),
        Err(_) => unavailable(),
    };
    let signed_in = match (&session.user_id, session.auth_time) {
        (Some(user_id), Some(auth_time)) => Some((user_id.clone(), auth_time)),
        _ => None,
    };
    // `max_age=0` always asks again (OIDC Core §3.1.2.1: like `prompt=login`).
    let fresh_enough = |auth_time: OffsetDateTime| {
        request
            .max_age
            .is_none_or(|max| max > 0 && (now - auth_time).whole_seconds() <= max)
    };
    let user = match signed_in {
        Some((user_id, auth_time))
            if just_signed_in
                || (!request.prompt.contains(&Prompt::Login) && fresh_enough(auth_time)) =>
        {
            match state.store().user(&user_id).await {
                Ok(Some(user)) if user.enabled => Some((user, auth_time)),
                Ok(_) => None,
                Err(_) => return unavailable(),
            }
        }
        _ => None,
    };
    let Some((user, auth_time)) = user else {
        if request.prompt.contains(&Prompt::None) {
            return fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        return park(state, session, &request, paths::LOGIN, cookie).await;
    };
    let remembered = match state.store().consent(&user.id, &request.client_id).await {
        Ok(scopes) => scopes.unwrap_or_default(),
        Err(_) => return unavailable(),
    };
    let covered = request.scopes.iter().all(|s| remembered.contains(s));
    if !covered || request.prompt.contains(&Prompt::Consent) {
        if request.prompt.contains(&Prompt::None) {
            return fail(OAuthError::new(
                ErrorCode::ConsentRequired,
                "consent is required",
            ));
        }
        return park(state, session, &request, paths::CONSENT, cookie).await;
    }
    match state.issue_code(&request, &user.id, auth_time, now).await {
        Ok(location) => {
            session.pending_request = None;
            if state.store().save_session(&session).await.is_err() {
                return unavailable();
            }
            see_other(&location, cookie)
        }
        Err(_) => unavailable(),
    }
}

/// Keeps the request in the session and sends the browser to a page.
async fn park(
    state: &Provider,
    mut session: Session,
    request: &AuthorizationRequest,
    page_path: &str,
    cookie: Option<HeaderValue>,
) -> Response {
    let Ok(pending) = serde_json::to_string(request) else {
        return unavailable();
    };
    session.pending_request = Some(pending);
    if state.store().save_session(&session).await.is_err() {
        return unavailable();
    }
    see_other(page_path, cookie)
}

/// The session and its pending request, or the page to show instead.
async fn pending(
    state: &Provider,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(Session, AuthorizationRequest), Response> {
    let session = match session::load(state, headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Your sign-in session has expired or cookies are disabled. Please start again \
                 from the application.",
            ));
        }
        Err(_) => return Err(unavailable()),
    };
    let request = session
        .pending_request
        .as_deref()
        .and_then(|p| serde_json::from_str::<AuthorizationRequest>(p).ok());
    match request {
        Some(request) => Ok((session, request)),
        None => Err(error_page(
            StatusCode::BAD_REQUEST,
            "There is no sign-in in progress. Please start again from the application.",
        )),
    }
}

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

/// The login page: an error summary (`role=alert`) above the form, the message again next to
/// the field it concerns, focus on that field (else on the first empty one).
fn login_page_html(
    session: &Session,
    client_name: Option<&str>,
    username: &str,
    problem: Option<LoginProblem>,
) -> Response {
    let summary = problem
        .map(|p| {
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(&p.message())
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
         Sign in</button></div></form>",
        action = paths::LOGIN,
        csrf = escape(&session.csrf_token),
        username_field = field(
            "username",
            "Username",
            "text",
            username,
            "username",
            username_error,
            !focus_password
        ),
        password_field = field(
            "password",
            "Password",
            "password",
            "",
            "current-password",
            password_error,
            focus_password
        ),
        described = if locked {
            " aria-describedby=\"form-error\""
        } else {
            ""
        },
    );
    let mut response = page(
        problem.map_or(StatusCode::OK, LoginProblem::status),
        "Sign in",
        problem.is_some(),
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
async fn client_name(state: &Provider, client_id: &str) -> Option<String> {
    match state.clients().get(client_id).await {
        Ok(Some(client)) => Some(client.name.clone()),
        _ => None,
    }
}

/// `GET /oidc/v1/login`.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = OffsetDateTime::now_utc();
    match pending(&state, &headers, now).await {
        Ok((session, request)) => {
            let name = client_name(&state, &request.client_id).await;
            login_page_html(&session, name.as_deref(), "", None)
        }
        Err(response) => response,
    }
}

/// `POST /oidc/v1/login`: checks the CSRF token and the password (with brute-force backoff per
/// account and per address), then continues the request in a new session (a new cookie: the
/// pre-login session id is never reused).
pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, request) = match pending(&state, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(OAuthForm(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in form was malformed.");
    };
    if !session::csrf_ok(&session, form.get("csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form expired. Please go back to the application and start again.",
        );
    }
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
        None => match state.verify_user_password(username, password, source).await {
            Ok(user) => Ok(user),
            Err(SignInFailure::Wrong) => Err(LoginProblem::Wrong),
            Err(SignInFailure::Locked(locked)) => Err(LoginProblem::Locked {
                retry_after_secs: locked.retry_after_secs,
            }),
            Err(SignInFailure::Unavailable) => return unavailable(),
        },
    };
    let user = match result {
        Ok(user) => user,
        Err(problem) => {
            let name = client_name(&state, &request.client_id).await;
            let shown = if username.len() > 256 { "" } else { username };
            return login_page_html(&session, name.as_deref(), shown, Some(problem));
        }
    };
    let Ok((mut signed_in, cookie)) = session::create(&state, now) else {
        return unavailable();
    };
    signed_in.user_id = Some(user.id);
    signed_in.auth_time = Some(now);
    if state
        .store()
        .delete_session(&session.id_hash)
        .await
        .is_err()
    {
        return unavailable();
    }
    resume(&state, signed_in, request, true, Some(cookie), now).await
}

/// `GET /oidc/v1/consent`: what the client asks for, with Allow and Deny buttons (no
/// autofocus, so a stray Enter does not consent).
pub async fn consent_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, request) = match pending(&state, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(user_id) = session.user_id.as_deref() else {
        return see_other(paths::LOGIN, None);
    };
    let client_name = match state.clients().get(&request.client_id).await {
        Ok(Some(client)) => client.name.clone(),
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The client no longer exists."),
        Err(_) => return unavailable(),
    };
    let signed_in_as = match state.store().user(user_id).await {
        Ok(Some(user)) => format!(
            "<p class=\"muted\">Signed in as <strong>{}</strong>.</p>",
            escape(&user.username)
        ),
        Ok(None) => String::new(),
        Err(_) => return unavailable(),
    };
    let scopes: String = request
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let body = format!(
        "<p id=\"consent-question\"><strong>{client}</strong> asks to:</p>\
         <ul aria-labelledby=\"consent-question\">{scopes}</ul>{signed_in_as}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\">\
         <button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>\
         </div></form>",
        client = escape(&client_name),
        action = paths::CONSENT,
        csrf = escape(&session.csrf_token),
    );
    page(StatusCode::OK, "Allow access?", false, &body)
}

/// What a scope lets the client do, in words.
fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "know who you are".to_owned(),
        "profile" => "see your name and username".to_owned(),
        "email" => "see your email address".to_owned(),
        "offline_access" => "stay signed in when you are away (refresh tokens)".to_owned(),
        other => format!("use the permission \u{201c}{other}\u{201d}"),
    }
}

/// `POST /oidc/v1/consent`: `decision=allow` remembers the consent and issues the code;
/// `decision=deny` returns `access_denied` to the client.
pub async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (mut session, request) = match pending(&state, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(OAuthForm(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "The consent form was malformed.");
    };
    if !session::csrf_ok(&session, form.get("csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The consent form expired. Please go back to the application and start again.",
        );
    }
    let (Some(user_id), Some(auth_time)) = (session.user_id.clone(), session.auth_time) else {
        return see_other(paths::LOGIN, None);
    };
    let location = match form.get("decision") {
        Some("allow") => {
            if state
                .store()
                .save_consent(&user_id, &request.client_id, &request.scopes)
                .await
                .is_err()
            {
                return unavailable();
            }
            match state.issue_code(&request, &user_id, auth_time, now).await {
                Ok(location) => location,
                Err(_) => return unavailable(),
            }
        }
        Some("deny") => {
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            match state.error_redirect(&request.redirect_uri, request.state.as_deref(), &error) {
                Ok(location) => location,
                Err(_) => return unavailable(),
            }
        }
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    session.pending_request = None;
    if state.store().save_session(&session).await.is_err() {
        return unavailable();
    }
    see_other(&location, None)
}
