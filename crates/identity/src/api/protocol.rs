//! The back-channel endpoints: token, introspection, revocation, PAR and userinfo. Every error
//! is an RFC 6749 / 6750 error object; nothing reflects a stack trace.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{AppState, ClientAddr, paths};
use crate::model::ClientAuthMethod;
use crate::oauth::extract::OAuthForm;
use crate::oauth::{ErrorCode, FormParams, OAuthError};

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
fn no_store_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}

fn respond<T: Serialize>(result: Result<T, OAuthError>) -> Response {
    match result {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth2/v1/token`.
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    respond(
        async {
            let client = state
                .authenticate_client(&headers, &form, paths::TOKEN, source)
                .await?;
            state.token(&client.client, &form, now).await
        }
        .await,
    )
}

/// Authenticates a confidential client (introspection refuses public clients).
async fn confidential(
    state: &AppState,
    headers: &HeaderMap,
    form: &FormParams,
    path: &str,
    source: Option<std::net::IpAddr>,
) -> Result<std::sync::Arc<crate::model::Client>, OAuthError> {
    let client = state
        .authenticate_client(headers, form, path, source)
        .await?;
    if client.method == ClientAuthMethod::None {
        return Err(OAuthError::invalid_client(
            "this endpoint requires client authentication",
        ));
    }
    Ok(client.client)
}

/// `POST /oauth2/v1/introspect` (RFC 7662).
pub async fn introspect(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    respond(
        async {
            let caller = confidential(&state, &headers, &form, paths::INTROSPECT, source).await?;
            let token = form.require("token")?;
            state
                .introspect(&caller, token, form.get("token_type_hint"), now)
                .await
        }
        .await,
    )
}

/// `POST /oauth2/v1/revoke` (RFC 7009): 200 with an empty body, also for unknown tokens.
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = async {
        let caller = state
            .authenticate_client(&headers, &form, paths::REVOKE, source)
            .await?;
        let token = form.require("token")?;
        state
            .revoke(&caller.client, token, form.get("token_type_hint"), now)
            .await
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth2/v1/par` (RFC 9126): 201 with `request_uri` and `expires_in`.
pub async fn par(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = async {
        let client = state
            .authenticate_client(&headers, &form, paths::PAR, source)
            .await?;
        if form
            .get("client_id")
            .is_some_and(|id| id != client.client.client_id)
        {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        state.push_request(&client.client, &form, now).await
    };
    match result.await {
        Ok((request_uri, expires_in)) => no_store_json(
            StatusCode::CREATED,
            &json!({"request_uri": request_uri, "expires_in": expires_in}),
        ),
        Err(e) => e.into_response(),
    }
}

/// The bearer token of `Authorization: Bearer …` (RFC 6750 §2.1).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        OAuthError::bearer(ErrorCode::InvalidRequest, "malformed Authorization header")
    })?;
    match value.split_once(' ') {
        // Trimmed before the emptiness check: `Bearer` and spaces is malformed, not an empty token.
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(OAuthError::bearer(
            ErrorCode::InvalidRequest,
            "the Authorization header must be Bearer",
        )),
    }
}

async fn userinfo(state: AppState, token: Result<Option<&str>, OAuthError>) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = async {
        let token = token?.ok_or_else(OAuthError::bearer_token_missing)?;
        state.userinfo(token, now).await
    };
    respond(result.await)
}

/// `GET /oidc/v1/userinfo`.
pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(state, bearer(&headers)).await
}

/// `POST /oidc/v1/userinfo`: the token in the header or, form-encoded, as `access_token`
/// (RFC 6750 §2.2), not both.
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_header = match bearer(&headers) {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    let form = if body.is_empty() {
        None
    } else {
        match FormParams::parse_default(&body) {
            Ok(form) => Some(form),
            Err(e) => return e.into_response(),
        }
    };
    let from_form = form.as_ref().and_then(|f| f.get("access_token"));
    let token = match (from_header, from_form) {
        (Some(_), Some(_)) => Err(OAuthError::bearer(
            ErrorCode::InvalidRequest,
            "send the access token once",
        )),
        (token, None) | (None, token) => Ok(token),
    };
    userinfo(state, token).await
}
