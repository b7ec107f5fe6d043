//! The resource API: a public health route and one protected resource, readable with
//! `read:resource` and writable with `write:resource`. Bearer failures follow RFC 6750
//! (`WWW-Authenticate`) with an RFC 7807 body that also carries `error` (SPEC §5).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cryptoutil_realm::bearer::{AccessToken, BearerError, TrustedIssuers, bearer_token};
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
/// The `realm` of the Bearer challenges.
const REALM: &str = "cryptoutil-rs";

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

/// Handler state: the token validator and the message board.
#[derive(Debug, Clone)]
pub struct ResourceState {
    issuers: TrustedIssuers,
    board: Arc<Board>,
}

impl ResourceState {
    /// State over the trusted issuers (one, for this server), with no messages yet. A token
    /// from any other issuer is refused as `invalid_issuer` before any key lookup.
    pub fn new(issuers: TrustedIssuers) -> Self {
        Self {
            issuers,
            board: Arc::default(),
        }
    }
}

/// The API routes.
pub fn router(state: ResourceState) -> Router {
    Router::new()
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

/// `GET`: who is calling and what has been written.
async fn read(State(state): State<ResourceState>, headers: HeaderMap) -> Response {
    let token = match authorize(&state, &headers, READ_SCOPE).await {
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
    let token = match authorize(&state, &headers, WRITE_SCOPE).await {
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

/// Validates the bearer token and checks `scope`.
async fn authorize(
    state: &ResourceState,
    headers: &HeaderMap,
    scope: &str,
) -> Result<AccessToken, Problem> {
    let token = bearer_token(headers).map_err(|e| bearer_problem(&e))?;
    let token = state
        .issuers
        .validate(token)
        .await
        .map_err(|e| bearer_problem(&e))?;
    if !token.has_scope(scope) {
        return Err(Problem::new(StatusCode::FORBIDDEN)
            .with_title("Insufficient scope")
            .with_detail(format!("this request needs the scope {scope}"))
            .with_extension("error", "insufficient_scope")
            .with_extension("scope", scope)
            .with_www_authenticate(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
            )));
    }
    Ok(token)
}

/// A short, fixed explanation per error code (never token contents).
fn description(code: &str) -> &'static str {
    match code {
        "token_expired" => "the access token has expired",
        "invalid_issuer" => "the access token is not from the trusted issuer",
        "invalid_audience" => "the access token is not meant for this resource server",
        "invalid_signature" => "the access token's signature does not verify",
        "token_revoked" => "the access token has been revoked",
        _ => "the access token is malformed or not acceptable",
    }
}

/// RFC 6750 §3: no `error` in the challenge when the request carried no token; 503 when the
/// issuer's keys cannot be fetched.
fn bearer_problem(e: &BearerError) -> Problem {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "token validation unavailable");
        return Problem::unavailable(
            "the token issuer's keys cannot be fetched at the moment; try again later",
        )
        .with_extension("error", "temporarily_unavailable");
    }
    let code = e.code();
    let problem = Problem::new(StatusCode::UNAUTHORIZED).with_extension("error", code);
    if code == "missing_token" {
        return problem
            .with_detail("this request needs an access token (Authorization: Bearer)")
            .with_www_authenticate(format!("Bearer realm=\"{REALM}\""));
    }
    tracing::debug!(error = %e, "access token refused");
    let text = description(code);
    problem.with_detail(text).with_www_authenticate(format!(
        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{text}\""
    ))
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
