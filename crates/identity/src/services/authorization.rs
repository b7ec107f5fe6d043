//! The authorization request (RFC 6749 §4.1.1 with OAuth 2.1 and OIDC rules), pushed requests
//! (RFC 9126) and code issuance.
//!
//! Until the client and its exact `redirect_uri` are known, errors are shown to the user as a
//! page ([`AuthorizeFailure::Page`]): redirecting to an unverified URI would make this server an
//! open redirector. After that, errors go back to the client's redirect URI with `state` and
//! `iss` (RFC 9207).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::clients::ClientRegistry;
use super::errors::{internal, storage};
use super::issuer::IssuerCell;
use crate::mfa::policy::{self, Acr};
use crate::model::{AuthorizationCode, Client, Grant, GrantType, PushedRequest};
use crate::oauth::scope::Scopes;
use crate::oauth::{ErrorCode, FormLimits, FormParams, OAuthError, pkce, resource};
use crate::signin::state::AuthMethod;
use crate::storage::{Store, StoreError};
use crate::tokens;

/// The URN prefix of PAR `request_uri` values.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The OIDC `prompt` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// No page may be shown: fail with `login_required`/`consent_required` instead.
    None,
    /// Sign in again even with a session.
    Login,
    /// Ask for consent again even when remembered.
    Consent,
}

/// A validated authorization request, kept in the browser session while the user is on the
/// login and consent pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The exact registered redirect URI.
    pub redirect_uri: String,
    /// Requested scopes (already narrowed to the client's).
    pub scopes: Vec<String>,
    /// Echoed to the client.
    pub state: Option<String>,
    /// Carried into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt` values.
    pub prompt: Vec<Prompt>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// `resource` values (RFC 8707), each one of the client's audiences; stored on the code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The `acr_values` this server knows ([`Acr`]), in the order asked; unknown values are
    /// dropped (OpenID Connect Core §3.1.2.1: the request is voluntary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}

impl AuthorizationRequest {
    /// The class the request asks for: the weakest of its known `acr_values` (any of them
    /// satisfies it), `None` when it asks for none.
    pub fn requested_acr(&self) -> Option<Acr> {
        self.acr_values.iter().filter_map(|v| Acr::parse(v)).min()
    }
}

/// Most `acr_values` a request may carry.
pub const MAX_ACR_VALUES: usize = 8;

/// Longest `acr_values` parameter, in bytes.
pub const MAX_ACR_VALUES_LEN: usize = 512;

/// The known classes of an `acr_values` parameter (space-separated), unknown ones dropped;
/// refused when it has more than [`MAX_ACR_VALUES`] values or [`MAX_ACR_VALUES_LEN`] bytes.
pub fn parse_acr_values(text: &str) -> Result<Vec<String>, OAuthError> {
    if text.len() > MAX_ACR_VALUES_LEN {
        return Err(OAuthError::invalid_request("acr_values is too long"));
    }
    let values: Vec<&str> = text.split(' ').filter(|v| !v.is_empty()).collect();
    if values.len() > MAX_ACR_VALUES {
        return Err(OAuthError::invalid_request(
            "acr_values has too many values",
        ));
    }
    let mut known: Vec<String> = Vec::new();
    for acr in values.into_iter().filter_map(Acr::parse) {
        if !known.iter().any(|k| k == acr.as_str()) {
            known.push(acr.as_str().to_owned());
        }
    }
    Ok(known)
}

/// Why an authorization request failed.
#[derive(Debug)]
pub enum AuthorizeFailure {
    /// The client or redirect URI cannot be trusted: show this message as a page (400).
    Page(String),
    /// Send the browser back to the client with this error.
    Redirect(String),
    /// The server cannot answer now (503 page).
    Unavailable,
}

/// The authorization request, PAR, remembered consent and code issuance.
#[derive(Debug)]
pub struct AuthorizationService {
    store: Store,
    clients: Arc<ClientRegistry>,
    issuer: IssuerCell,
    code_lifetime: time::Duration,
    pushed_request_lifetime: time::Duration,
}

impl AuthorizationService {
    /// The authorization flow over `store` and the registered `clients`.
    pub fn new(
        store: Store,
        clients: Arc<ClientRegistry>,
        issuer: IssuerCell,
        code_lifetime: time::Duration,
        pushed_request_lifetime: time::Duration,
    ) -> Self {
        Self {
            store,
            clients,
            issuer,
            code_lifetime,
            pushed_request_lifetime,
        }
    }

    /// The client with this id (cached), enabled or not.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.clients.get(client_id).await
    }

    /// The host of a metadata document client's `client_id` (shown on the consent page),
    /// `None` for registered clients.
    pub fn client_document_host(&self, client_id: &str) -> Option<String> {
        self.clients.document_host(client_id)
    }

    /// The scopes `user_id` already approved for `client_id` (none yet: empty).
    pub async fn remembered_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .store
            .consent(user_id, client_id)
            .await?
            .unwrap_or_default())
    }

    /// Remembers that `user_id` approved `request`'s scopes for its client.
    pub async fn remember_consent(
        &self,
        user_id: &str,
        request: &AuthorizationRequest,
    ) -> Result<(), StoreError> {
        self.store
            .save_consent(user_id, &request.client_id, &request.scopes)
            .await
    }

    /// Validates an authorization request from the query (GET) or form (POST), resolving a
    /// pushed request's `request_uri`.
    pub async fn authorization_request(
        &self,
        params: &FormParams,
        now: OffsetDateTime,
    ) -> Result<(Arc<Client>, AuthorizationRequest), AuthorizeFailure> {
        let client_id = params
            .get("client_id")
            .ok_or_else(|| AuthorizeFailure::Page("The request has no client_id.".to_owned()))?;
        let client = self.trusted_client(client_id).await?;
        let pushed;
        let params = match params.get("request_uri") {
            Some(uri) => {
                let id = uri.strip_prefix(REQUEST_URI_PREFIX).ok_or_else(|| {
                    AuthorizeFailure::Page(
                        "The request_uri is not one this server issued.".to_owned(),
                    )
                })?;
                let request = self
                    .store
                    .take_pushed_request(id, now)
                    .await
                    .map_err(|_| AuthorizeFailure::Unavailable)?
                    .filter(|p| p.client_id == client.client_id)
                    .ok_or_else(|| {
                        AuthorizeFailure::Page(
                            "The request_uri is unknown, expired or already used.".to_owned(),
                        )
                    })?;
                pushed =
                    FormParams::parse_default(request.parameters.as_bytes()).map_err(|_| {
                        AuthorizeFailure::Page("The pushed request is invalid.".to_owned())
                    })?;
                &pushed
            }
            None => params,
        };
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| AuthorizeFailure::Page("The request has no redirect_uri.".to_owned()))?;
        if !client
            .metadata
            .redirect_uris
            .iter()
            .any(|r| r == redirect_uri)
        {
            return Err(AuthorizeFailure::Page(
                "The redirect_uri is not registered for this client.".to_owned(),
            ));
        }
        let state = params.get("state").map(str::to_owned);
        match validate(&client, redirect_uri, params) {
            Ok(request) => Ok((client, request)),
            Err(error) => Err(AuthorizeFailure::Redirect(self.error_redirect(
                redirect_uri,
                state.as_deref(),
                &error,
            )?)),
        }
    }

    /// Stores a pushed authorization request (RFC 9126) for an authenticated client and returns
    /// its `request_uri` and lifetime in seconds.
    /// `proof_jkt` is the key of the PAR request's own DPoP proof (RFC 9449 §10.1): it binds
    /// the code like `dpop_jkt`, and must equal `dpop_jkt` when both are sent.
    pub async fn push_request(
        &self,
        client: &Client,
        params: &FormParams,
        proof_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(String, i64), OAuthError> {
        if params.contains("request_uri") {
            return Err(OAuthError::invalid_request(
                "request_uri is not allowed in a pushed request",
            ));
        }
        let redirect_uri = params.require("redirect_uri")?;
        if !client
            .metadata
            .redirect_uris
            .iter()
            .any(|r| r == redirect_uri)
        {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            ));
        }
        let request = validate(client, redirect_uri, params)?;
        let mut encoded = pushed_parameters(params)?;
        if let Some(jkt) = proof_jkt {
            match request.dpop_jkt.as_deref() {
                Some(stated) if stated != jkt => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidDpopProof,
                        "dpop_jkt does not match the key of the DPoP proof",
                    ));
                }
                Some(_) => {}
                // A thumbprint is 43 base64url characters: nothing to encode.
                None => encoded.push_str(&format!("&dpop_jkt={jkt}")),
            }
            if encoded.len() > FormLimits::DEFAULT.max_body_len {
                return Err(OAuthError::invalid_request(
                    "the pushed request is too large once encoded",
                ));
            }
        }
        let id = tokens::opaque_secret().map_err(|e| internal("random", e))?;
        let lifetime = self.pushed_request_lifetime;
        self.store
            .insert_pushed_request(&PushedRequest {
                id: id.clone(),
                client_id: client.client_id.clone(),
                parameters: encoded,
                expires_at: now + lifetime,
            })
            .await
            .map_err(storage)?;
        Ok((
            format!("{REQUEST_URI_PREFIX}{id}"),
            lifetime.whole_seconds(),
        ))
    }

    /// Issues a code for a signed-in user who approved `request` after signing in at
    /// `auth_time` with `methods` (the grant's `amr` and `acr`): returns the redirect URL.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        user_id: &str,
        auth_time: OffsetDateTime,
        methods: &[AuthMethod],
        now: OffsetDateTime,
    ) -> Result<String, OAuthError> {
        let (amr, acr) = policy::grant_context(methods);
        let grant = Grant {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: request.client_id.clone(),
            user_id: user_id.to_owned(),
            scopes: request.scopes.clone(),
            auth_time,
            amr,
            acr: Some(acr),
            created_at: now,
            revoked_at: None,
        };
        self.store.insert_grant(&grant).await.map_err(storage)?;
        let code = tokens::opaque_secret().map_err(|e| internal("random", e))?;
        self.store
            .insert_code(&AuthorizationCode {
                code_hash: tokens::secret_hash(&code),
                grant_id: grant.id,
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                nonce: request.nonce.clone(),
                scopes: request.scopes.clone(),
                dpop_jkt: request.dpop_jkt.clone(),
                resources: request.resources.clone(),
                expires_at: now + self.code_lifetime,
                used_at: None,
            })
            .await
            .map_err(storage)?;
        let issuer = self.issuer.get()?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &issuer.url));
        Ok(with_query(&request.redirect_uri, &pairs))
    }

    /// The redirect URL carrying `error` back to a validated redirect URI.
    pub fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &OAuthError,
    ) -> Result<String, AuthorizeFailure> {
        let issuer = self
            .issuer
            .get()
            .map_err(|_| AuthorizeFailure::Unavailable)?;
        Ok(error_redirect_url(redirect_uri, state, error, &issuer.url))
    }

    /// An enabled client, or a page saying why not.
    async fn trusted_client(&self, client_id: &str) -> Result<Arc<Client>, AuthorizeFailure> {
        match self.clients.get(client_id).await {
            Ok(Some(client)) if client.enabled => Ok(client),
            Ok(_) => Err(AuthorizeFailure::Page(
                "The client is unknown or disabled.".to_owned(),
            )),
            Err(_) => Err(AuthorizeFailure::Unavailable),
        }
    }
}

/// `redirect_uri` with `error`, `error_description`, the caller's `state` and `iss` (RFC 9207)
/// added to its query.
pub(crate) fn error_redirect_url(
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
    issuer: &str,
) -> String {
    let description = error.safe_description();
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", description.as_str()),
    ];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(redirect_uri, &pairs)
}

/// The stored form of a pushed request: its parameters without the client authentication ones,
/// form-encoded. Refused when the encoding (which can be three times the size of what was sent)
/// would not parse back within the default limits when the authorization endpoint reads it.
pub(crate) fn pushed_parameters(params: &FormParams) -> Result<String, OAuthError> {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(k, _)| !is_client_auth_param(k)))
        .finish();
    if encoded.len() > FormLimits::DEFAULT.max_body_len {
        return Err(OAuthError::invalid_request(
            "the pushed request is too large once encoded",
        ));
    }
    Ok(encoded)
}

/// Client authentication parameters are not part of a pushed request's stored parameters.
pub(crate) fn is_client_auth_param(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "client_assertion" | "client_assertion_type"
    )
}

/// Checks everything after the redirect URI: response type, grant, PKCE, scope, prompt,
/// max_age, acr_values.
pub(crate) fn validate(
    client: &Client,
    redirect_uri: &str,
    params: &FormParams,
) -> Result<AuthorizationRequest, OAuthError> {
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(OAuthError::invalid_request("response_type is required")),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    if params.contains("request") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequestObject,
            "request objects are not supported",
        ));
    }
    let challenge = params.get("code_challenge");
    pkce::validate_challenge(challenge, params.get("code_challenge_method"))?;
    let challenge = challenge.unwrap_or_default();
    let scopes = match params.get("scope") {
        Some(requested) => Scopes::parse(requested)?
            .narrow(&client.metadata.scope)?
            .into_vec(),
        None => return Err(OAuthError::invalid_scope("scope is required")),
    };
    let resources = resource::parse(&params.get_all("resource"))?;
    resource::allowed(client, &resources)?;
    let mut prompt = Vec::new();
    if let Some(values) = params.get("prompt") {
        for value in values.split(' ') {
            let p = match value {
                "none" => Prompt::None,
                "login" => Prompt::Login,
                "consent" => Prompt::Consent,
                _ => {
                    return Err(OAuthError::invalid_request(
                        "prompt must be none, login or consent",
                    ));
                }
            };
            if !prompt.contains(&p) {
                prompt.push(p);
            }
        }
        if prompt.contains(&Prompt::None) && prompt.len() > 1 {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
    }
    let max_age = match params.get("max_age") {
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|v| (0..=10 * 365 * 24 * 3600).contains(v))
                .ok_or_else(|| {
                    OAuthError::invalid_request("max_age must be a number of seconds")
                })?,
        ),
        None => None,
    };
    let dpop_jkt = match params.get("dpop_jkt") {
        Some(jkt) if is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters)",
            ));
        }
        None => None,
    };
    let acr_values = match params.get("acr_values") {
        Some(text) => parse_acr_values(text)?,
        None => Vec::new(),
    };
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: params.get("state").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
        prompt,
        max_age,
        dpop_jkt,
        resources,
        acr_values,
    })
}

/// A base64url SHA-256 thumbprint: 43 characters of the unpadded base64url alphabet.
fn is_thumbprint(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// `uri` with `pairs` appended to its query, encoded.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs.iter().copied());
    let query = query.finish();
    if uri.contains('?') {
        format!("{uri}&{query}")
    } else {
        format!("{uri}?{query}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_keep_our_classes_and_are_bounded() {
        assert_eq!(
            parse_acr_values("urn:other phr  urn:cryptoutil:acr:mfa phr").unwrap(),
            ["phr", "urn:cryptoutil:acr:mfa"]
        );
        assert!(parse_acr_values("urn:other").unwrap().is_empty());
        assert!(parse_acr_values("").unwrap().is_empty());
        let eight = ["phr"; MAX_ACR_VALUES].join(" ");
        assert!(parse_acr_values(&eight).is_ok());
        let nine = ["phr"; MAX_ACR_VALUES + 1].join(" ");
        assert_eq!(
            parse_acr_values(&nine).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let long = "x".repeat(MAX_ACR_VALUES_LEN + 1);
        assert_eq!(
            parse_acr_values(&long).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_weakest_known_value_is_what_a_request_asks_for() {
        let request = |values: &[&str]| AuthorizationRequest {
            client_id: "c".to_owned(),
            redirect_uri: "https://c.example/cb".to_owned(),
            scopes: Vec::new(),
            state: None,
            nonce: None,
            code_challenge: String::new(),
            prompt: Vec::new(),
            max_age: None,
            dpop_jkt: None,
            resources: Vec::new(),
            acr_values: values.iter().map(|v| (*v).to_owned()).collect(),
        };
        assert_eq!(request(&[]).requested_acr(), None);
        assert_eq!(
            request(&["phr", "urn:cryptoutil:acr:mfa"]).requested_acr(),
            Some(Acr::MultiFactor)
        );
        // A session stored before acr_values existed still reads.
        let old: AuthorizationRequest = serde_json::from_str(
            r#"{"client_id":"c","redirect_uri":"https://c.example/cb","scopes":[],"state":null,
            "nonce":null,"code_challenge":"","prompt":[],"max_age":null}"#,
        )
        .unwrap();
        assert!(old.acr_values.is_empty());
    }
}
