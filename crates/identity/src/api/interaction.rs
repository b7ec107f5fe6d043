//! What the authorization, login, second-factor, consent, device and account pages share: the
//! session's pending interaction, the checked form, turning the sign-in flow's decision into a
//! response, and continuing whatever was pending once the user has signed in.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::html::error_page;
use super::session_cookie;
use crate::oauth::{FormParams, OAuthError};
use crate::paths;
use crate::services::{AuthorizationRequest, AuthorizationService};
use crate::signin::{
    AuthorizationFlow, BrowserSession, Next, PendingInteraction, SignInService, SignInState,
    StartedSession, Unavailable,
};

/// A 303 to `location`, optionally setting the session cookie.
pub(super) fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The 503 page.
pub(super) fn unavailable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable. Please try again.",
    )
}

/// The flow's decision as a 303 (to the client, or to the login, consent or second-factor
/// page, or the account page to set up a factor), setting `cookie` when the session is new.
pub(super) fn follow(next: Result<Next, Unavailable>, cookie: Option<HeaderValue>) -> Response {
    match next {
        Ok(Next::Redirect(location)) => see_other(&location, cookie),
        Ok(Next::Login) => see_other(paths::LOGIN, cookie),
        Ok(Next::Consent) => see_other(paths::CONSENT, cookie),
        Ok(Next::SecondFactor) => see_other(paths::LOGIN_SECOND_FACTOR, cookie),
        Ok(Next::SetUpSecondFactor) => see_other(paths::ACCOUNT, cookie),
        Err(Unavailable) => unavailable(),
    }
}

/// The session and its pending authorization request, or the page to show instead.
pub(super) async fn pending(
    sign_in: &SignInService,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(BrowserSession, AuthorizationRequest), Response> {
    let (session, interaction) = pending_interaction(sign_in, headers, now).await?;
    match interaction {
        PendingInteraction::Authorization(request) => Ok((session, *request)),
        _ => Err(nothing_in_progress()),
    }
}

/// The page saying there is nothing to continue.
fn nothing_in_progress() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "There is no sign-in in progress. Please start again from the application.",
    )
}

/// The session and the interaction it is in the middle of (an authorization request, a device
/// approval or an account visit; the login page serves them all), or the page to show
/// instead.
pub(super) async fn pending_interaction(
    sign_in: &SignInService,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(BrowserSession, PendingInteraction), Response> {
    let session = match session_cookie::load(sign_in, headers, now).await {
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
    match &session.pending {
        Some(
            interaction @ (PendingInteraction::Authorization(_)
            | PendingInteraction::DeviceApproval { .. }
            | PendingInteraction::AccountAction { .. }),
        ) => {
            let interaction = interaction.clone();
            Ok((session, interaction))
        }
        _ => Err(nothing_in_progress()),
    }
}

/// The submitted form of a page (`what`: "sign-in", "consent") once it parsed and its CSRF
/// token matched the session's; otherwise the page to show (boxed: a response is large).
pub(super) fn checked_form(
    what: &str,
    session: &BrowserSession,
    form: Result<OAuthForm, OAuthError>,
) -> Result<FormParams, Box<Response>> {
    let Ok(OAuthForm(form)) = form else {
        return Err(Box::new(error_page(
            StatusCode::BAD_REQUEST,
            &format!("The {what} form was malformed."),
        )));
    };
    if !session.csrf_ok(form.get("csrf_token")) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            &format!("The {what} form expired. Please go back to the application and start again."),
        )));
    }
    Ok(form)
}

/// A submitted sign-in page (`what`: "sign-in", "consent"): the session, its pending request
/// and the form, once the form parsed and its CSRF token matched; otherwise the page to show.
pub(super) async fn submitted_form(
    what: &str,
    sign_in: &SignInService,
    headers: &HeaderMap,
    form: Result<OAuthForm, OAuthError>,
    now: OffsetDateTime,
) -> Result<(BrowserSession, AuthorizationRequest, FormParams), Response> {
    let (session, request) = pending(sign_in, headers, now).await?;
    let form = checked_form(what, &session, form).map_err(|page| *page)?;
    Ok((session, request, form))
}

/// After a sign-in step (password, second factor, passkey) that produced `session` (to be
/// stored; `cookie` names it when it is new): the second-factor page while one is owed,
/// otherwise whatever `interaction` was waiting for: the authorization request continues
/// (consent, then the code), a device approval goes back to the device page, an account visit
/// to the account page.
pub(super) async fn continue_signed_in(
    sign_in: &SignInService,
    authorization: &AuthorizationService,
    session: BrowserSession,
    interaction: PendingInteraction,
    cookie: Option<HeaderValue>,
    now: OffsetDateTime,
) -> Response {
    let location = match (&session.state, interaction) {
        (SignInState::SecondFactorRequired { .. }, _) => paths::LOGIN_SECOND_FACTOR,
        (_, PendingInteraction::Authorization(request)) => {
            let flow = AuthorizationFlow::new(sign_in, authorization);
            return follow(flow.resume(session, *request, true, now).await, cookie);
        }
        (_, PendingInteraction::DeviceApproval { .. }) => paths::DEVICE,
        (_, PendingInteraction::AccountAction { .. }) => paths::ACCOUNT,
    };
    match sign_in.save(&session).await {
        Ok(()) => see_other(location, cookie),
        Err(_) => unavailable(),
    }
}

/// After a sign-in step (password, second factor, passkey) that `started` a new session: the
/// browser's `User-Agent` is recorded on it (the account page lists it), the new cookie is set,
/// and [`continue_signed_in`] decides what comes next.
pub(super) async fn continue_in_new_session(
    sign_in: &SignInService,
    authorization: &AuthorizationService,
    mut started: StartedSession,
    interaction: PendingInteraction,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Response {
    started.session.set_user_agent(
        headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok()),
    );
    let cookie = session_cookie::set_cookie(sign_in, &started.cookie_value);
    continue_signed_in(
        sign_in,
        authorization,
        started.session,
        interaction,
        Some(cookie),
        now,
    )
    .await
}
