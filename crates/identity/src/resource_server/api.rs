//! The resource API: a public health route and one protected resource, readable with
//! `read:resource` and writable with `write:resource`. Bearer failures follow RFC 6750
//! (`WWW-Authenticate`) with an RFC 7807 body that also carries `error` (SPEC §5); DPoP-bound
//! tokens (RFC 9449) are accepted with the `DPoP` scheme and a proof, and refused otherwise, with
//! `WWW-Authenticate: DPoP error=...`; every 401 challenge names the RFC 9728 metadata document
//! (`resource_metadata`), served at `/.well-known/oauth-protected-resource` when the server has
//! a resource identifier.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cryptoutil_realm::bearer::{
    AccessToken, BearerError, ProtectedResource, TrustedIssuers, presented,
};
use cryptoutil_server::{ApiJson, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `GET /api/v1/public/health`.
pub const HEALTH: &str = "/api/v1/public/health";
/// `GET|POST /api/v1/protected/resource`.
pub const RESOURCE: &str = "/api/v1/protected/resource";
/// The scope that reads the resource.
pub const READ_SCOPE: &str = "read:resource";
/// The scope that writes to it.
pub const WRITE_SCOPE: &str = "write:resource";
/// Longest message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Most messages kept; the oldest go first.
pub const MAX_MESSAGES: usize = 100;
/// Largest request body the write route reads (a 1 KiB message, JSON-escaped, fits).
const MAX_BODY_BYTES: usize = 8 * 1024;
/// The `realm` of the challenges.
pub const REALM: &str = "cryptoutil-rs";
/// The RFC 9728 metadata document.
pub const METADATA: &str = "/.well-known/oauth-protected-resource";

/// One message written to the resource.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// UUIDv7.
    pub id: String,
    /// The text.
    pub message: String,
    /// The token's `sub`.
    pub author: String,
    /// The token's `client_id`.
    pub client_id: Option<String>,
    /// When it was written (RFC 3339).
    pub created_at: String,
}

/// The messages written so far, newest last, at most [`MAX_MESSAGES`] (the oldest go first).
#[derive(Debug, Default)]
pub struct Board(Mutex<VecDeque<Message>>);

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        // A panic while holding the lock cannot leave the list inconsistent: keep using it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The messages, newest first.
    pub fn list(&self) -> Vec<Message> {
        self.lock().iter().rev().cloned().collect()
    }

    /// Adds a message, dropping the oldest when full.
    pub fn push(&self, message: Message) {
        let mut list = self.lock();
        while list.len() >= MAX_MESSAGES {
            list.pop_front();
        }
        list.push_back(message);
    }
}

/// Handler state: the token validator, the DPoP policy and the message board.
#[derive(Debug, Clone)]
pub struct ResourceState {
    issuers: TrustedIssuers,
    protected: Arc<ProtectedResource>,
    board: Arc<Board>,
}

impl ResourceState {
    /// State over the trusted issuers (one, for this server), with no messages yet. A token
    /// from any other issuer is refused as `invalid_issuer` before any key lookup. Without
    /// [`Self::with_protection`] there is no resource identifier: bearer tokens only.
    pub fn new(issuers: TrustedIssuers) -> Self {
        Self {
            issuers,
            protected: Arc::new(ProtectedResource::bearer_only(REALM)),
            board: Arc::default(),
        }
    }

    /// With this resource identity and DPoP policy.
    #[must_use]
    pub fn with_protection(mut self, protected: ProtectedResource) -> Self {
        self.protected = Arc::new(protected);
        self
    }

    /// The resource identity and DPoP policy, for other routes of this server (notes).
    pub fn protection(&self) -> Arc<ProtectedResource> {
        Arc::clone(&self.protected)
    }
}

/// The API routes (and the metadata document when the server has a resource identifier).
pub fn router(state: ResourceState) -> Router {
    let metadata = state
        .protected
        .metadata()
        .and_then(|m| serde_json::to_vec(m).ok())
        .map(axum::body::Bytes::from);
    let router = match metadata {
        Some(body) => Router::new().route(
            METADATA,
            get(move || {
                let body = body.clone();
                async move { metadata_document(body) }
            }),
        ),
        None => Router::new(),
    };
    router
        .route(HEALTH, get(health))
        .route(
            RESOURCE,
            get(read)
                .post(write)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The RFC 9728 document: public, cacheable for an hour.
fn metadata_document(body: axum::body::Bytes) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET`: who is calling and what has been written.
async fn read(State(state): State<ResourceState>, method: Method, headers: HeaderMap) -> Response {
    let token = match authorize(
        &state.issuers,
        &state.protected,
        &headers,
        (&method, RESOURCE),
        READ_SCOPE,
    )
    .await
    {
        Ok(token) => token,
        Err(problem) => return problem.into_response(),
    };
    axum::Json(json!({
        "resource": "the cryptoutil sample resource",
        "subject": token.subject,
        "client_id": token.client_id,
        "scopes": token.scopes,
        "messages": state.board.list(),
    }))
    .into_response()
}

/// The body of a write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    message: String,
}

/// `POST {"message": "..."}`: keeps the message (201). Authorization is checked before the body
/// is read.
async fn write(
    State(state): State<ResourceState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let token = match authorize(
        &state.issuers,
        &state.protected,
        &headers,
        (request.method(), RESOURCE),
        WRITE_SCOPE,
    )
    .await
    {
        Ok(token) => token,
        Err(problem) => return problem.into_response(),
    };
    let body =
        match <ApiJson<NewMessage> as axum::extract::FromRequest<()>>::from_request(request, &())
            .await
        {
            Ok(ApiJson(body)) => body,
            Err(problem) => return problem.into_response(),
        };
    if let Err(reason) = check_message(&body.message) {
        return Problem::bad_request(reason).into_response();
    }
    let message = Message {
        id: uuid::Uuid::now_v7().to_string(),
        message: body.message,
        author: token.subject,
        client_id: token.client_id,
        created_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    };
    state.board.push(message.clone());
    (StatusCode::CREATED, axum::Json(message)).into_response()
}

/// A message is 1–1024 bytes of text without control characters other than newlines and tabs.
fn check_message(message: &str) -> Result<(), String> {
    if message.trim().is_empty() {
        return Err("message must not be empty".to_owned());
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(format!("message must be at most {MAX_MESSAGE_BYTES} bytes"));
    }
    if message
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("message must not contain control characters".to_owned());
    }
    Ok(())
}

/// Validates the token, its binding (a DPoP proof for the request's method at `path`) and
/// `scope`: every protected route of this server goes through here.
pub(super) async fn authorize(
    issuers: &TrustedIssuers,
    protected: &ProtectedResource,
    headers: &HeaderMap,
    (method, path): (&Method, &str),
    scope: &str,
) -> Result<AccessToken, Problem> {
    let refused = |e: BearerError| bearer_problem(protected, &e);
    let credentials = presented(headers).map_err(refused)?;
    let token = issuers.validate(credentials.token).await.map_err(refused)?;
    protected
        .check(
            &credentials,
            token.jkt.as_deref(),
            method.as_str(),
            Some(path),
        )
        .await
        .map_err(refused)?;
    if !token.has_scope(scope) {
        let description = format!("this request needs the scope {scope}");
        let challenge = protected.challenge().header(
            Some(("insufficient_scope", &description)),
            false,
            Some(scope),
        );
        return Err(Problem::new(StatusCode::FORBIDDEN)
            .with_title("Insufficient scope")
            .with_detail(description)
            .with_extension("error", "insufficient_scope")
            .with_extension("scope", scope)
            .with_www_authenticate(challenge));
    }
    Ok(token)
}

/// A short, fixed explanation per error code (never token contents).
fn description(e: &BearerError) -> String {
    match e.code() {
        "token_expired" => "the access token has expired".to_owned(),
        "invalid_issuer" => "the access token is not from the trusted issuer".to_owned(),
        "invalid_audience" => "the access token is not meant for this resource server".to_owned(),
        "invalid_signature" => "the access token's signature does not verify".to_owned(),
        "token_revoked" => "the access token has been revoked".to_owned(),
        // Fixed texts of the binding checks (no token contents either).
        _ if e.is_dpop() => e.to_string(),
        _ => "the access token is malformed or not acceptable".to_owned(),
    }
}

/// RFC 6750 §3 / RFC 9449 §7.1: no `error` in the challenge when the request carried no token;
/// 503 when the issuer's keys cannot be fetched or the replay check cannot answer.
fn bearer_problem(protected: &ProtectedResource, e: &BearerError) -> Problem {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "token validation unavailable");
        return Problem::unavailable(
            "the access token cannot be checked at the moment; try again later",
        )
        .with_extension("error", "temporarily_unavailable");
    }
    let code = e.code();
    let problem = Problem::new(StatusCode::UNAUTHORIZED).with_extension("error", code);
    let challenge = protected.challenge();
    if code == "missing_token" {
        return problem
            .with_detail("this request needs an access token (Authorization: Bearer or DPoP)")
            .with_www_authenticate(challenge.header(None, false, None));
    }
    tracing::debug!(error = %e, "access token refused");
    let text = description(e);
    problem
        .with_www_authenticate(challenge.header(
            Some((e.challenge_error(), &text)),
            e.is_dpop(),
            None,
        ))
        .with_detail(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_and_plain() {
        assert!(check_message("hello").is_ok());
        assert!(check_message("two\nlines\tand a tab").is_ok());
        assert!(check_message(&"é".repeat(512)).is_ok());
        assert!(check_message(&"é".repeat(513)).is_err());
        assert!(check_message("").is_err());
        assert!(check_message("  \n").is_err());
        assert!(check_message("bell\u{7}").is_err());
    }

    #[test]
    fn the_board_keeps_the_newest_messages() {
        let board = Board::default();
        for i in 0..=MAX_MESSAGES {
            board.push(Message {
                id: i.to_string(),
                message: format!("message {i}"),
                author: "someone".to_owned(),
                client_id: None,
                created_at: String::new(),
            });
        }
        let list = board.list();
        assert_eq!(list.len(), MAX_MESSAGES);
        assert_eq!(list[0].id, MAX_MESSAGES.to_string());
        assert_eq!(list[MAX_MESSAGES - 1].id, "1");
    }
}
