//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ends the browser session and
//! redirects only to a post-logout URI registered for the client named by `id_token_hint` or
//! `client_id`; otherwise shows a signed-out page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::extract::{OAuthForm, OAuthQuery};
use super::html::{error_page, page};
use super::session_cookie;
use crate::oauth::{FormParams, OAuthError};
use crate::services::{ClientService, SigningKeyService};
use crate::signin::SignInService;

/// What logout calls: the keys (`id_token_hint`), the clients (post-logout URIs), sessions.
#[derive(Clone, Copy)]
struct LogoutServices<'a> {
    signing_keys: &'a SigningKeyService,
    clients: &'a ClientService,
    sign_in: &'a SignInService,
}

/// `GET /oidc/v1/logout`.
pub async fn logout_get(
    State(signing_keys): State<Arc<SigningKeyService>>,
    State(clients): State<Arc<ClientService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    query: Result<OAuthQuery, OAuthError>,
) -> Response {
    let state = LogoutServices {
        signing_keys: &signing_keys,
        clients: &clients,
        sign_in: &sign_in,
    };
    match query {
        Ok(OAuthQuery(params)) => logout(state, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

/// `POST /oidc/v1/logout`.
pub async fn logout_post(
    State(signing_keys): State<Arc<SigningKeyService>>,
    State(clients): State<Arc<ClientService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let state = LogoutServices {
        signing_keys: &signing_keys,
        clients: &clients,
        sign_in: &sign_in,
    };
    match form {
        Ok(OAuthForm(params)) => logout(state, &headers, &params).await,
        Err(e) => error_page(StatusCode::BAD_REQUEST, &e.safe_description()),
    }
}

/// Where to send the browser afterwards, if the request names a registered URI.
async fn post_logout_target(
    state: LogoutServices<'_>,
    params: &FormParams,
) -> Result<Option<String>, String> {
    let hinted = match params.get("id_token_hint") {
        Some(hint) => Some(
            state
                .signing_keys
                .verify_id_token_hint(hint)
                .map_err(|_| {
                    "The id_token_hint is not a valid ID token from this server.".to_owned()
                })?
                .aud,
        ),
        None => None,
    };
    let client_id = match (hinted, params.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Err("client_id does not match the id_token_hint.".to_owned());
        }
        (Some(a), _) => Some(a),
        (None, b) => b.map(str::to_owned),
    };
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let Some(client_id) = client_id else {
        return Err("post_logout_redirect_uri needs id_token_hint or client_id.".to_owned());
    };
    let client = state
        .clients
        .get(&client_id)
        .await
        .map_err(|_| "The service is temporarily unavailable.".to_owned())?
        .filter(|c| c.enabled)
        .ok_or_else(|| "The client is unknown.".to_owned())?;
    if !client
        .metadata
        .post_logout_redirect_uris
        .iter()
        .any(|r| r == uri)
    {
        return Err("The post_logout_redirect_uri is not registered for this client.".to_owned());
    }
    let mut target = uri.to_owned();
    if let Some(value) = params.get("state") {
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", value)
            .finish();
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str(&encoded);
    }
    Ok(Some(target))
}

async fn logout(state: LogoutServices<'_>, headers: &HeaderMap, params: &FormParams) -> Response {
    let now = OffsetDateTime::now_utc();
    let target = match post_logout_target(state, params).await {
        Ok(target) => target,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    match session_cookie::load(state.sign_in, headers, now).await {
        Ok(Some(current)) => {
            if state.sign_in.end(&current).await.is_err() {
                return error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable. Please try again.",
                );
            }
        }
        Ok(None) => {}
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Please try again.",
            );
        }
    }
    let mut response = match target {
        Some(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        None => page(
            StatusCode::OK,
            "Signed out",
            false,
            "<p>You are signed out.</p>",
        ),
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie::clear_cookie());
    response
}
