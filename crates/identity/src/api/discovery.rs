//! Discovery (OpenID Connect Discovery 1.0, RFC 8414) and the JWK Set. Both documents advertise
//! exactly what is implemented, with absolute URLs from the issuer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::dpop::DpopGuard;
use crate::mfa::policy::Acr;
use crate::model::{ClientAuthMethod, GrantType};
use crate::oauth::OAuthError;
use crate::paths;
use crate::registration::RegistrationService;
use crate::services::{ClientService, IssuerCell, SigningKeyService};

/// Algorithms accepted for `private_key_jwt` assertions.
pub const ASSERTION_ALGORITHMS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// The metadata document shared by both discovery endpoints.
fn metadata(
    issuer: &IssuerCell,
    signing: &SigningKeyService,
    dpop: &DpopGuard,
    registration: &RegistrationService,
    clients: &ClientService,
) -> Result<Value, OAuthError> {
    let issuer = issuer.get()?;
    let url = |path: &str| issuer.endpoint(path);
    let ring = signing.ring();
    let signing: Vec<&str> = ring.algorithms().iter().map(|a| a.name()).collect();
    let auth_methods: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    let authenticated: Vec<&str> = ClientAuthMethod::ALL
        .iter()
        .filter(|m| **m != ClientAuthMethod::None)
        .map(|m| m.as_str())
        .collect();
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    let classes: Vec<&str> = Acr::ALL.iter().map(|a| a.as_str()).collect();
    let mut doc = json!({
        "issuer": issuer.url,
        "authorization_endpoint": url(paths::AUTHORIZE),
        "token_endpoint": url(paths::TOKEN),
        "jwks_uri": url(paths::JWKS),
        "userinfo_endpoint": url(paths::USERINFO),
        "pushed_authorization_request_endpoint": url(paths::PAR),
        "introspection_endpoint": url(paths::INTROSPECT),
        "revocation_endpoint": url(paths::REVOKE),
        "end_session_endpoint": url(paths::LOGOUT),
        "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": authenticated,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "acr",
            "amr", "name", "given_name", "family_name", "preferred_username", "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": classes,
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_pushed_authorization_requests": false,
        "require_request_uri_registration": false,
        "tls_client_certificate_bound_access_tokens": false,
        "dpop_signing_alg_values_supported": dpop.algorithm_names(),
    });
    if registration.enabled() {
        doc["registration_endpoint"] = url(paths::REGISTER).into();
    }
    if clients.metadata_documents_enabled() {
        doc["client_id_metadata_document_supported"] = Value::Bool(true);
    }
    Ok(doc)
}

fn cacheable(body: Value, max_age: &'static str) -> Response {
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    response
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(
    State(issuer): State<IssuerCell>,
    State(signing): State<Arc<SigningKeyService>>,
    State(dpop): State<Arc<DpopGuard>>,
    State(registration): State<Arc<RegistrationService>>,
    State(clients): State<Arc<ClientService>>,
) -> Response {
    match metadata(&issuer, &signing, &dpop, &registration, &clients) {
        Ok(doc) => cacheable(doc, "public, max-age=300"),
        Err(e) => e.into_response(),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): the same document.
pub async fn oauth_authorization_server(
    issuer: State<IssuerCell>,
    signing: State<Arc<SigningKeyService>>,
    dpop: State<Arc<DpopGuard>>,
    registration: State<Arc<RegistrationService>>,
    clients: State<Arc<ClientService>>,
) -> Response {
    openid_configuration(issuer, signing, dpop, registration, clients).await
}

/// `GET /oauth2/v1/jwks` and `/.well-known/jwks.json`: every published public signing key.
pub async fn jwks(State(signing): State<Arc<SigningKeyService>>) -> Response {
    let ring = signing.fresh_ring(time::OffsetDateTime::now_utc()).await;
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        ring.jwks_json(),
    )
        .into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
