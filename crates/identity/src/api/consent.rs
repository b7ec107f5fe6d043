//! The consent page (`/oidc/v1/consent`): what the client asks for, with Allow and Deny
//! buttons; the decision finishes the pending request (code, or `access_denied`) with a
//! redirect to the client ([`crate::signin::flow`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::html::{error_page, escape, page};
use super::interaction::{follow, pending, see_other, submitted_form, unavailable};
use crate::oauth::OAuthError;
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{AuthorizationFlow, Decision, SignInService};

/// `GET /oidc/v1/consent`: what the client asks for, with Allow and Deny buttons (no
/// autofocus, so a stray Enter does not consent).
pub async fn consent_page(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, request) = match pending(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some((user_id, _)) = session.state.signed_in() else {
        return see_other(paths::LOGIN, None);
    };
    let client_name = match authorization.client(&request.client_id).await {
        Ok(Some(client)) => client.metadata.client_name.clone(),
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The client no longer exists."),
        Err(_) => return unavailable(),
    };
    let signed_in_as = match sign_in.user(user_id).await {
        Ok(Some(user)) => format!(
            "<p class=\"muted\">Signed in as <strong>{}</strong>.</p>",
            escape(&user.username)
        ),
        Ok(None) => String::new(),
        Err(_) => return unavailable(),
    };
    // A metadata document client is who its URL's host says (the server fetched it from
    // there); its name is only what that document claims.
    let (asker, about) = match authorization.client_document_host(&request.client_id) {
        Some(host) => (
            format!("<strong class=\"client-host\">{}</strong>", escape(&host)),
            format!(
                "<p class=\"muted\">Client <code>{id}</code>, which calls itself \
                 \u{201c}{name}\u{201d} (not verified).</p>",
                id = escape(&request.client_id),
                name = escape(&client_name),
            ),
        ),
        None => (
            format!("<strong>{}</strong>", escape(&client_name)),
            String::new(),
        ),
    };
    let scopes: String = request
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let body = format!(
        "<p id=\"consent-question\">{asker} asks to:</p>{about}\
         <ul aria-labelledby=\"consent-question\">{scopes}</ul>{signed_in_as}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\">\
         <button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>\
         </div></form>",
        action = paths::CONSENT,
        csrf = escape(&session.csrf_token),
    );
    page(StatusCode::OK, "Allow access?", false, &body)
}

/// What a scope lets the client do, in words.
pub(super) fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "know who you are".to_owned(),
        "profile" => "see your name and username".to_owned(),
        "email" => "see your email address".to_owned(),
        "offline_access" => "stay signed in when you are away (refresh tokens)".to_owned(),
        other => format!("use the permission \u{201c}{other}\u{201d}"),
    }
}

/// `POST /oidc/v1/consent`: `decision=allow` remembers the consent and issues the code;
/// `decision=deny` returns `access_denied` to the client.
pub async fn consent_submit(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, request, form) =
        match submitted_form("consent", &sign_in, &headers, form, now).await {
            Ok(submitted) => submitted,
            Err(response) => return response,
        };
    let decision = match form.get("decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ if session.state.signed_in().is_none() => return see_other(paths::LOGIN, None),
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let flow = AuthorizationFlow::new(&sign_in, &authorization);
    follow(flow.decide(session, &request, decision, now).await, None)
}
