//! `POST /api/v1/protected/notes` `{"note": "..."}` (`write:resource`): the resource server
//! encrypts the caller's note at the KMS *on the caller's behalf*. It exchanges the caller's
//! access token at Identity's token endpoint (RFC 8693, authenticating as its own client,
//! `kms.client_id`) for a short-lived token with the KMS's audience whose `act` claim names this
//! server, calls the KMS's encrypt endpoint with it, and answers the compact JWE.
//!
//! Without `kms.url` the route answers 503 (the feature exists, its dependency is not
//! configured). Identity refusing the exchange (e.g. the caller's token lacks `kms:encrypt`) is
//! 403 with Identity's `error`; Identity or the KMS unreachable or failing is 502.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cryptoutil_realm::bearer::{ProtectedResource, TrustedIssuers, presented};
use cryptoutil_server::{ApiJson, Problem};
use cryptoutil_tls::{TrustConfig, client_config};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::api::WRITE_SCOPE;
use crate::config::ResourceServerSettings;

/// `POST /api/v1/protected/notes`.
pub const NOTES: &str = "/api/v1/protected/notes";
/// Longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;
/// Largest request body the route reads.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest answer read from Identity or the KMS.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Longest client secret read from `kms.client_secret_file`.
const MAX_SECRET_BYTES: usize = 1024;
/// RFC 8693 names.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The route's state: the token validator and the resource's DPoP policy (both shared with
/// the API) and the KMS client, if any.
#[derive(Debug, Clone)]
pub struct NotesState {
    issuers: TrustedIssuers,
    protected: Arc<ProtectedResource>,
    kms: Option<Arc<NotesKms>>,
}

impl NotesState {
    /// The route over `issuers` and `protected` (the API's, [`super::api::ResourceState::protection`]),
    /// encrypting through `kms` (`None`: 503).
    pub fn new(
        issuers: TrustedIssuers,
        protected: Arc<ProtectedResource>,
        kms: Option<NotesKms>,
    ) -> Self {
        Self {
            issuers,
            protected,
            kms: kms.map(Arc::new),
        }
    }
}

/// The notes route.
pub fn router(state: NotesState) -> Router {
    Router::new()
        .route(
            NOTES,
            post(encrypt_note).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

/// How the resource server reaches Identity's token endpoint and the KMS.
pub struct NotesKms {
    http: reqwest::Client,
    token_endpoint: String,
    encrypt_url: String,
    client_id: String,
    client_secret: Zeroizing<String>,
    audience: String,
    scope: String,
}

impl fmt::Debug for NotesKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotesKms")
            .field("token_endpoint", &self.token_endpoint)
            .field("encrypt_url", &self.encrypt_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why a note could not be encrypted.
#[derive(Debug)]
enum NotesError {
    /// Identity refused the exchange with this OAuth `error`.
    Refused(String),
    /// Identity or the KMS failed or could not be reached.
    Upstream(String),
}

impl NotesKms {
    /// The KMS client `settings.kms` describes; `None` without `kms.url`. `issuer` is
    /// Identity's (the token endpoint's default base).
    pub fn from_settings(
        settings: &ResourceServerSettings,
        issuer: &str,
    ) -> Result<Option<Self>, String> {
        let kms = &settings.kms;
        let Some(url) = &kms.url else {
            return Ok(None);
        };
        let key = kms
            .elastic_key_id
            .as_deref()
            .ok_or("kms.elastic_key_id is required with kms.url")?;
        let secret_file = kms
            .client_secret_file
            .as_deref()
            .ok_or("kms.client_secret_file is required with kms.url")?;
        let client_secret = read_secret(secret_file)?;
        let ca_file = kms
            .ca_file
            .clone()
            .or_else(|| settings.identity.ca_file.clone())
            .or_else(|| settings.server.tls.ca_file.clone())
            .ok_or("kms.ca_file (or identity.ca_file) is required with kms.url: the CA that signs the KMS's and Identity's certificates")?;
        let trust = TrustConfig::from_ca_files(&[&ca_file])
            .map_err(|e| format!("kms.ca_file {}: {e}", ca_file.display()))?;
        let tls = client_config(trust, None)
            .map_err(|e| format!("kms.ca_file {}: {e}", ca_file.display()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(kms.timeout.get())
            .build()
            .map_err(|e| format!("kms: HTTP client: {e}"))?;
        Ok(Some(Self {
            http,
            token_endpoint: kms
                .token_endpoint
                .clone()
                .unwrap_or_else(|| format!("{issuer}/oauth2/v1/token")),
            encrypt_url: format!("{url}/elastickey/{key}/encrypt"),
            client_id: kms.client_id.clone(),
            client_secret,
            audience: kms.audience.clone(),
            scope: kms.scope.clone(),
        }))
    }

    /// Exchanges the caller's token for a KMS-audience token acting for the caller.
    async fn exchange(&self, subject_token: &str) -> Result<Zeroizing<String>, NotesError> {
        // RFC 6749 §2.3.1: the credentials are form-urlencoded before Basic encoding.
        let id: String = form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let secret = Zeroizing::new(
            form_urlencoded::byte_serialize(self.client_secret.as_bytes()).collect::<String>(),
        );
        let form = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", TOKEN_EXCHANGE)
                .append_pair("subject_token", subject_token)
                .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
                .append_pair("audience", &self.audience)
                .append_pair("scope", &self.scope)
                .finish(),
        );
        let response = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(id, Some(secret.as_str()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| NotesError::Upstream(format!("Identity's token endpoint: {e}")))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        let reply: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            NotesError::Upstream(format!(
                "Identity's token endpoint answered {status}, not JSON"
            ))
        })?;
        if status == StatusCode::OK {
            return reply["access_token"]
                .as_str()
                .map(|t| Zeroizing::new(t.to_owned()))
                .ok_or_else(|| {
                    NotesError::Upstream("Identity's answer has no access_token".to_owned())
                });
        }
        match reply["error"].as_str() {
            Some(code) if status == StatusCode::BAD_REQUEST => {
                Err(NotesError::Refused(code.chars().take(64).collect()))
            }
            _ => Err(NotesError::Upstream(format!(
                "Identity's token endpoint answered {status}"
            ))),
        }
    }

    /// Encrypts `note` at the KMS with `token`: the compact JWE.
    async fn encrypt(&self, token: &str, note: &str) -> Result<String, NotesError> {
        let response = self
            .http
            .post(&self.encrypt_url)
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(note.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| NotesError::Upstream(format!("the KMS: {e}")))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if status != StatusCode::OK {
            return Err(NotesError::Upstream(format!("the KMS answered {status}")));
        }
        String::from_utf8(body)
            .ok()
            .filter(|jwe| jwe.split('.').count() == 5)
            .ok_or_else(|| NotesError::Upstream("the KMS's answer is not a compact JWE".to_owned()))
    }
}

/// A client secret from a file (one line; surrounding whitespace dropped).
fn read_secret(path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("kms.client_secret_file {}: {e}", path.display()))?,
    );
    let secret = text.trim();
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "kms.client_secret_file {}: must hold a secret of 1 to {MAX_SECRET_BYTES} bytes",
            path.display()
        ));
    }
    Ok(Zeroizing::new(secret.to_owned()))
}

/// The body of a response, at most [`MAX_REPLY_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, NotesError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| NotesError::Upstream(format!("reading an answer: {e}")))?
    {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(NotesError::Upstream("an answer is too large".to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of the route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    note: String,
}

/// `POST {"note": "..."}`: 200 `{"ciphertext", "subject", "actor"}`.
async fn encrypt_note(
    State(state): State<NotesState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    // The same checks as the resource API: a DPoP-bound token needs its proof here too.
    let token = match super::api::authorize(
        &state.issuers,
        &state.protected,
        &headers,
        (&Method::POST, NOTES),
        WRITE_SCOPE,
    )
    .await
    {
        Ok(token) => token,
        Err(problem) => return problem.into_response(),
    };
    // The raw token, to exchange: present, since it was just validated.
    let raw = match presented(&headers) {
        Ok(credentials) => Zeroizing::new(credentials.token.to_owned()),
        Err(_) => return Problem::bad_request("no access token").into_response(),
    };
    let Some(kms) = &state.kms else {
        return Problem::unavailable(
            "this resource server has no KMS configured (kms.url in rs.yml), so it cannot encrypt notes",
        )
        .with_extension("error", "temporarily_unavailable")
        .into_response();
    };
    let body = match <ApiJson<NewNote> as axum::extract::FromRequest<()>>::from_request(
        request,
        &(),
    )
    .await
    {
        Ok(ApiJson(body)) => body,
        Err(problem) => return problem.into_response(),
    };
    if let Err(reason) = check_note(&body.note) {
        return Problem::bad_request(reason).into_response();
    }
    let result = async {
        let exchanged = kms.exchange(&raw).await?;
        kms.encrypt(&exchanged, &body.note).await
    }
    .await;
    match result {
        Ok(ciphertext) => axum::Json(json!({
            "ciphertext": ciphertext,
            "subject": token.subject,
            "actor": kms.client_id,
        }))
        .into_response(),
        Err(NotesError::Refused(code)) => Problem::new(StatusCode::FORBIDDEN)
            .with_title("Delegation refused")
            .with_detail(format!(
                "Identity refused to let this server act for you at the KMS ({code}); \
                 your token needs the scope {} and this server must be allowed to act for its client",
                kms.scope
            ))
            .with_extension("error", code)
            .into_response(),
        Err(NotesError::Upstream(reason)) => {
            tracing::warn!(%reason, "encrypting a note failed");
            Problem::new(StatusCode::BAD_GATEWAY)
                .with_title("Upstream failure")
                .with_detail("Identity or the KMS could not complete the request; try again later")
                .into_response()
        }
    }
}

/// A note is 1–4096 bytes of text without control characters other than newlines and tabs.
fn check_note(note: &str) -> Result<(), String> {
    if note.trim().is_empty() {
        return Err("note must not be empty".to_owned());
    }
    if note.len() > MAX_NOTE_BYTES {
        return Err(format!("note must be at most {MAX_NOTE_BYTES} bytes"));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("note must not contain control characters".to_owned());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_plain() {
        assert!(check_note("a secret\nwith\ttabs").is_ok());
        assert!(check_note(&"a".repeat(MAX_NOTE_BYTES)).is_ok());
        assert!(check_note(&"a".repeat(MAX_NOTE_BYTES + 1)).is_err());
        assert!(check_note(" ").is_err());
        assert!(check_note("nul\0").is_err());
    }

    #[test]
    fn no_kms_url_no_client_and_the_secret_is_never_shown() {
        let mut settings = ResourceServerSettings::default();
        assert!(
            NotesKms::from_settings(&settings, "https://idp.example")
                .unwrap()
                .is_none()
        );
        let dir = std::env::temp_dir().join(format!("notes-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cr3t-value\n").unwrap();
        settings.kms.url = Some("https://kms.example/service/api/v1".to_owned());
        settings.kms.elastic_key_id = Some("key-1".to_owned());
        settings.kms.client_secret_file = Some(secret.clone());
        // No CA anywhere: refused with what to set.
        let e = NotesKms::from_settings(&settings, "https://idp.example").unwrap_err();
        assert!(e.contains("kms.ca_file"), "{e}");
        assert_eq!(read_secret(&secret).unwrap().as_str(), "s3cr3t-value");
        std::fs::write(&secret, "\n").unwrap();
        assert!(read_secret(&secret).is_err());
        assert!(read_secret(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
