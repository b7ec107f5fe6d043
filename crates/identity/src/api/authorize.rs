//! The authorization endpoint. `/oauth2/v1/authorize` validates the request; a signed-in user
//! whose consent is remembered gets a code at once, anyone else is sent (303) to
//! `/oidc/v1/login` ([`super::login`]) and then `/oidc/v1/consent` ([`super::consent`]) with
//! the request kept in their server-side session ([`crate::signin::flow`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::extract::{OAuthForm, OAuthQuery};
use super::html::error_page;
use super::interaction::{follow, see_other, unavailable};
use super::session_cookie;
use crate::oauth::{FormParams, OAuthError};
use crate::services::{AuthorizationService, AuthorizeFailure};
use crate::signin::{AuthorizationFlow, SignInService};

/// `GET /oauth2/v1/authorize`.
pub async fn authorize_get(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    query: Result<OAuthQuery, OAuthError>,
) -> Response {
    match query {
        Ok(OAuthQuery(params)) => authorize(&authorization, &sign_in, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

/// `POST /oauth2/v1/authorize` (form-encoded, same parameters).
pub async fn authorize_post(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    match form {
        Ok(OAuthForm(params)) => authorize(&authorization, &sign_in, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

async fn authorize(
    authorization: &AuthorizationService,
    sign_in: &SignInService,
    headers: &HeaderMap,
    params: &FormParams,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let request = match authorization.authorization_request(params, now).await {
        Ok((_, request)) => request,
        Err(AuthorizeFailure::Page(message)) => {
            return error_page(StatusCode::BAD_REQUEST, &message);
        }
        Err(AuthorizeFailure::Redirect(location)) => return see_other(&location, None),
        Err(AuthorizeFailure::Unavailable) => return unavailable(),
    };
    let (session, cookie) = match session_cookie::load(sign_in, headers, now).await {
        Ok(Some(session)) => (session, None),
        Ok(None) => match sign_in.start(now) {
            Ok(started) => (
                started.session,
                Some(session_cookie::set_cookie(sign_in, &started.cookie_value)),
            ),
            Err(_) => return unavailable(),
        },
        Err(_) => return unavailable(),
    };
    let flow = AuthorizationFlow::new(sign_in, authorization);
    follow(flow.resume(session, request, false, now).await, cookie)
}
