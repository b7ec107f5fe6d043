//! The back-channel endpoints: token, introspection, revocation, PAR and userinfo. Every error
//! is an RFC 6749 / 6750 error object; nothing reflects a stack trace.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::state::ClientAddr;
use crate::dpop::DpopGuard;
use crate::model::ClientAuthMethod;
use crate::oauth::{AuthenticatedClient, ErrorCode, FormParams, OAuthError};
use crate::paths;
use crate::services::{AuthorizationService, ClientService, InspectionService, TokenService};

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(super) fn no_store_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn respond<T: Serialize>(result: Result<T, OAuthError>) -> Response {
    match result {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// Authenticates the client of a request to the endpoint at `path`.
pub(super) async fn authenticate(
    clients: &ClientService,
    headers: &HeaderMap,
    form: &FormParams,
    path: &str,
    source: Option<std::net::IpAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    let authorization: Vec<&[u8]> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    clients
        .authenticate(&authorization, form, path, source)
        .await
}

/// The request's `DPoP` header fields (RFC 9449 §4.1; more than one is refused).
pub(super) fn dpop_fields(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(DPOP)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect()
}

/// The `DPoP` request header.
const DPOP: &str = "dpop";
/// The `DPoP-Nonce` response header (RFC 9449 §8).
const DPOP_NONCE: &str = "dpop-nonce";

/// Adds a fresh `DPoP-Nonce` (when nonces are required) to a response to a request that sent
/// a DPoP proof, and to every DPoP error. Always the current nonce, not only when the last one
/// is about to rotate: it costs one HMAC and saves clients a `use_dpop_nonce` round trip.
pub(super) fn with_dpop_nonce(
    mut response: Response,
    dpop: &DpopGuard,
    sent_proof: bool,
    error: Option<ErrorCode>,
    now: OffsetDateTime,
) -> Response {
    let dpop_error = matches!(
        error,
        Some(ErrorCode::UseDpopNonce | ErrorCode::InvalidDpopProof)
    );
    if (sent_proof || dpop_error)
        && let Some(nonce) = dpop.nonce(now)
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
    response
}

/// `POST /oauth2/v1/token`: with a `DPoP` proof (RFC 9449) the access token is bound to its key.
pub async fn token(
    State(clients): State<Arc<ClientService>>,
    State(tokens): State<Arc<TokenService>>,
    State(dpop): State<Arc<DpopGuard>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let fields = dpop_fields(&headers);
    let result = async {
        let client = authenticate(&clients, &headers, &form, paths::TOKEN, source).await?;
        let proof = dpop.check(&fields, paths::TOKEN, now).await?;
        tokens
            .token(
                &client.client,
                &form,
                proof.as_ref().map(|p| p.jkt.as_str()),
                now,
            )
            .await
    }
    .await;
    let error = result.as_ref().err().map(|e| e.code);
    with_dpop_nonce(respond(result), &dpop, !fields.is_empty(), error, now)
}

/// Authenticates a confidential client (introspection refuses public clients).
async fn confidential(
    clients: &ClientService,
    headers: &HeaderMap,
    form: &FormParams,
    path: &str,
    source: Option<std::net::IpAddr>,
) -> Result<Arc<crate::model::Client>, OAuthError> {
    let client = authenticate(clients, headers, form, path, source).await?;
    if client.method == ClientAuthMethod::None {
        return Err(OAuthError::invalid_client(
            "this endpoint requires client authentication",
        ));
    }
    Ok(client.client)
}

/// `POST /oauth2/v1/introspect` (RFC 7662).
pub async fn introspect(
    State(clients): State<Arc<ClientService>>,
    State(inspection): State<Arc<InspectionService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    respond(
        async {
            let caller = confidential(&clients, &headers, &form, paths::INTROSPECT, source).await?;
            let token = form.require("token")?;
            inspection
                .introspect(&caller, token, form.get("token_type_hint"), now)
                .await
        }
        .await,
    )
}

/// `POST /oauth2/v1/revoke` (RFC 7009): 200 with an empty body, also for unknown tokens.
pub async fn revoke(
    State(clients): State<Arc<ClientService>>,
    State(inspection): State<Arc<InspectionService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = async {
        let caller = authenticate(&clients, &headers, &form, paths::REVOKE, source).await?;
        let token = form.require("token")?;
        inspection
            .revoke(&caller.client, token, form.get("token_type_hint"), now)
            .await
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth2/v1/par` (RFC 9126): 201 with `request_uri` and `expires_in`. A `DPoP` proof
/// binds the code to its key like `dpop_jkt` (RFC 9449 §10.1; both must then agree).
pub async fn par(
    State(clients): State<Arc<ClientService>>,
    State(authorization): State<Arc<AuthorizationService>>,
    State(dpop): State<Arc<DpopGuard>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let fields = dpop_fields(&headers);
    let result = async {
        let client = authenticate(&clients, &headers, &form, paths::PAR, source).await?;
        if form
            .get("client_id")
            .is_some_and(|id| id != client.client.client_id)
        {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        let proof = dpop.check(&fields, paths::PAR, now).await?;
        authorization
            .push_request(
                &client.client,
                &form,
                proof.as_ref().map(|p| p.jkt.as_str()),
                now,
            )
            .await
    };
    let result = result.await;
    let error = result.as_ref().err().map(|e| e.code);
    let response = match result {
        Ok((request_uri, expires_in)) => no_store_json(
            StatusCode::CREATED,
            &json!({"request_uri": request_uri, "expires_in": expires_in}),
        ),
        Err(e) => e.into_response(),
    };
    with_dpop_nonce(response, &dpop, !fields.is_empty(), error, now)
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

/// An access token as presented in `Authorization`: `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §7.1).
#[derive(Debug, Clone, Copy)]
enum Presented<'a> {
    Bearer(&'a str),
    Dpop(&'a str),
}

/// The access token of `Authorization: Bearer …` or `Authorization: DPoP …`.
fn presented(headers: &HeaderMap) -> Result<Option<Presented<'_>>, OAuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(value) = value.to_str()
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("dpop")
    {
        if headers.get_all(header::AUTHORIZATION).iter().count() > 1 || token.trim().is_empty() {
            return Err(OAuthError::bearer(
                ErrorCode::InvalidRequest,
                "malformed Authorization header",
            ));
        }
        return Ok(Some(Presented::Dpop(token.trim())));
    }
    Ok(bearer(headers)?.map(Presented::Bearer))
}

async fn userinfo(
    inspection: &InspectionService,
    dpop: &DpopGuard,
    headers: &HeaderMap,
    method: &str,
    token: Result<Option<Presented<'_>>, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = async {
        match token?.ok_or_else(OAuthError::bearer_token_missing)? {
            Presented::Bearer(token) => inspection.userinfo(token, None, now).await,
            Presented::Dpop(token) => {
                let dpop_error = |e: OAuthError| e.with_dpop_challenge(&dpop.algorithm_names());
                let proof = dpop
                    .check_resource(&dpop_fields(headers), method, paths::USERINFO, token, now)
                    .await
                    .map_err(dpop_error)?;
                inspection
                    .userinfo(token, Some(&proof.jkt), now)
                    .await
                    .map_err(dpop_error)
            }
        }
    };
    respond(result.await)
}

/// `GET /oidc/v1/userinfo`: a `Bearer` token, or a `DPoP` one with its proof.
pub async fn userinfo_get(
    State(inspection): State<Arc<InspectionService>>,
    State(dpop): State<Arc<DpopGuard>>,
    headers: HeaderMap,
) -> Response {
    let token = presented(&headers);
    userinfo(&inspection, &dpop, &headers, "GET", token).await
}

/// `POST /oidc/v1/userinfo`: the token in the header or, form-encoded, as `access_token`
/// (RFC 6750 §2.2; a `Bearer` token), not both.
pub async fn userinfo_post(
    State(inspection): State<Arc<InspectionService>>,
    State(dpop): State<Arc<DpopGuard>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_header = match presented(&headers) {
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
    let from_form = form
        .as_ref()
        .and_then(|f| f.get("access_token"))
        .map(Presented::Bearer);
    let token = match (from_header, from_form) {
        (Some(_), Some(_)) => Err(OAuthError::bearer(
            ErrorCode::InvalidRequest,
            "send the access token once",
        )),
        (token, None) | (None, token) => Ok(token),
    };
    userinfo(&inspection, &dpop, &headers, "POST", token).await
}
