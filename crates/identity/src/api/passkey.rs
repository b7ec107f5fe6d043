//! Passkeys at sign-in: the pages' one script (`/oidc/v1/assets/passkey.js`), the request
//! options for the session (`GET /oidc/v1/login/passkey`) and the assertion the script posts
//! back (`POST /oidc/v1/login/passkey`): passwordless from the login page, or the second factor
//! after a password. The ceremonies are [`crate::mfa::passkeys`]; the account page that
//! registers passkeys is [`super::account::passkeys`].

use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cryptoutil_jose::b64;
use serde_json::json;
use time::OffsetDateTime;

use super::extract::{OAuthForm, read_form};
use super::html::{error_page, escape, page};
use super::interaction::{checked_form, continue_in_new_session, pending_interaction, unavailable};
use super::login::passkey_failed_login_page;
use super::session_cookie;
use crate::mfa::passkeys::{PasskeyAssertion, PasskeyError, PasskeyService};
use crate::oauth::OAuthError;
use crate::oauth::form::{FormLimits, FormParams};
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{BrowserSession, PendingInteraction, SignInService, SignInState};

/// The script, served from the binary.
const SCRIPT: &str = include_str!("passkey.js");

/// The script's entity tag: its SHA-256 (a new build with a changed script has a new tag).
static SCRIPT_ETAG: LazyLock<String> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SCRIPT.as_bytes());
    format!("\"{}\"", b64::encode(&digest.as_ref()[..16]))
});

/// Bounds of the forms the script posts: WebAuthn answers are binary, base64url. An
/// attestation object may be 16 KiB (22 KiB encoded), client data 4 KiB; the rest is small.
pub(super) const PASSKEY_FORM_LIMITS: FormLimits = FormLimits {
    max_body_len: 48 * 1024,
    max_params: 16,
    max_name_len: 32,
    max_value_len: 4 * 1024,
    max_large_value_len: 22 * 1024,
    large_params: &[
        "attestation_object",
        "client_data_json",
        "authenticator_data",
    ],
    repeatable: &[],
};

/// A form posted by the passkey script, parsed with [`PASSKEY_FORM_LIMITS`].
pub struct PasskeyForm(pub Result<OAuthForm, OAuthError>);

impl<S: Send + Sync> FromRequest<S> for PasskeyForm {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            read_form(req, &PASSKEY_FORM_LIMITS).await.map(OAuthForm),
        ))
    }
}

/// A base64url form field decoded; `None` when missing (and `required`) or malformed.
pub(super) fn field(form: &FormParams, name: &str, required: bool) -> Option<Vec<u8>> {
    match form.get(name) {
        Some(value) if !value.is_empty() => b64::decode(value.as_bytes(), "field").ok(),
        _ if required => None,
        _ => Some(Vec::new()),
    }
}

/// `GET /oidc/v1/assets/passkey.js`: the script, cached for an hour and revalidated by its
/// entity tag.
pub async fn script(headers: HeaderMap) -> Response {
    let etag = SCRIPT_ETAG.as_str();
    let cache = [
        (header::ETAG, etag.to_owned()),
        (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut response = (
        StatusCode::OK,
        cache,
        [(
            header::CONTENT_TYPE,
            "text/javascript; charset=utf-8".to_owned(),
        )],
        SCRIPT,
    )
        .into_response();
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A JSON answer of the options endpoints, never cached.
pub(super) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON error the script shows (`error_description`).
pub(super) fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// The JSON answer of a failed ceremony step.
pub(super) fn json_failure(e: &PasskeyError) -> Response {
    if e.is_unavailable() {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable. Please try again.",
        )
    } else {
        json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
    }
}

/// `GET /oidc/v1/login/passkey`: request options with a fresh challenge for the session:
/// passwordless for a session nobody has signed in to, the user's credentials for one waiting
/// for a second factor.
pub async fn login_options(
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let session = match session_cookie::load(&sign_in, &headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "no_session",
                "Your sign-in session has expired or cookies are disabled. Please start again \
                 from the application.",
            );
        }
        Err(e) => return json_failure(&PasskeyError::Unavailable(e)),
    };
    let user_id = match &session.state {
        SignInState::Anonymous => None,
        SignInState::SecondFactorRequired { user_id, .. } => Some(user_id.as_str()),
        SignInState::SignedIn { .. } => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "already_signed_in",
                "You are signed in already.",
            );
        }
    };
    match passkeys
        .request_options(user_id, &session.id_hash, now)
        .await
    {
        Ok(options) => json_response(StatusCode::OK, options),
        Err(e) => json_failure(&e),
    }
}

/// The HTTP status of a refused assertion.
fn refusal_status(e: &PasskeyError) -> StatusCode {
    match e {
        PasskeyError::Malformed | PasskeyError::Challenge => StatusCode::BAD_REQUEST,
        PasskeyError::UserDisabled => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The page after a refused passkey: the login page with the message (passwordless), or a page
/// saying so with the way back to the second-factor page (a sign-in waiting for one: the
/// password stays verified, the user can use another factor).
async fn refused(
    authorization: &AuthorizationService,
    session: &BrowserSession,
    interaction: &PendingInteraction,
    status: StatusCode,
    message: &str,
) -> Response {
    if matches!(session.state, SignInState::SecondFactorRequired { .. }) {
        let body = format!(
            "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>\
             <p><a href=\"{back}\" autofocus>Back to the second step of sign-in</a></p>",
            escape(message),
            back = paths::LOGIN_SECOND_FACTOR,
        );
        return page(status, "Passkey not accepted", true, &body);
    }
    passkey_failed_login_page(authorization, session, interaction, status, message).await
}

/// `POST /oidc/v1/login/passkey`: the assertion (CSRF-checked, bounded); on success the
/// sign-in completes in a new session (new cookie) and the pending interaction continues;
/// every refusal is a page saying why (4xx), and the session can still sign in otherwise.
pub async fn login_submit(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    State(passkeys): State<Arc<PasskeyService>>,
    headers: HeaderMap,
    PasskeyForm(form): PasskeyForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, interaction) = match pending_interaction(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = match checked_form("passkey", &session, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let decoded = (
        field(&form, "id", true),
        field(&form, "client_data_json", true),
        field(&form, "authenticator_data", true),
        field(&form, "signature", true),
        field(&form, "user_handle", false),
    );
    let (Some(id), Some(client_data), Some(authenticator_data), Some(signature), Some(handle)) =
        decoded
    else {
        let e = PasskeyError::Malformed;
        return refused(
            &authorization,
            &session,
            &interaction,
            refusal_status(&e),
            &message(&e),
        )
        .await;
    };
    let assertion = PasskeyAssertion {
        credential_id: &id,
        client_data_json: &client_data,
        authenticator_data: &authenticator_data,
        signature: &signature,
        user_handle: &handle,
    };
    let proved = match passkeys
        .finish_assertion(&session.id_hash, &assertion, now)
        .await
    {
        Ok(proved) => proved,
        Err(e) if e.is_unavailable() => return unavailable(),
        Err(e) => {
            return refused(
                &authorization,
                &session,
                &interaction,
                refusal_status(&e),
                &message(&e),
            )
            .await;
        }
    };
    let Ok(state) = session
        .state
        .clone()
        .passkey_verified(&proved.user_id, &proved.methods, now)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This passkey does not belong to the account signing in. Please start again.",
        );
    };
    let Ok(started) = sign_in.after_sign_in_step(session, state, now).await else {
        return unavailable();
    };
    continue_in_new_session(
        &sign_in,
        &authorization,
        started,
        interaction,
        &headers,
        now,
    )
    .await
}

/// The sentence shown for a refusal.
fn message(e: &PasskeyError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_small_and_has_no_inline_handlers_or_third_parties() {
        assert!(SCRIPT.len() < 6 * 1024, "{} bytes", SCRIPT.len());
        assert!(!SCRIPT.contains("http://") && !SCRIPT.contains("https://"));
        assert!(!SCRIPT.contains("prompt("));
        assert!(!SCRIPT.contains("innerHTML"));
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            message(&PasskeyError::Malformed),
            "The passkey answer was malformed."
        );
    }
}
