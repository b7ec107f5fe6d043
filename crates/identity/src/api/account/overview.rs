//! `GET /account`: who is signed in and how, and one section per thing they manage: the
//! password, the authenticator app (TOTP), recovery codes, passkeys, sessions; a sign-out
//! button. When the session still holds an authorization request (a policy asked the user to
//! set up a second factor first), a notice at the top continues it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::super::html::{escape, page};
use super::super::interaction::unavailable;
use super::account_session;
use super::view::{csrf_input, methods_in_words, when};
use crate::account::AccountService;
use crate::model::{FactorSummary, User};
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{BrowserSession, PendingInteraction, SignInService};

/// `GET /account`.
pub async fn account_page(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    State(authorization): State<Arc<AuthorizationService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, user) = match account_session(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(factors) = account.factors(&user.id).await else {
        return unavailable();
    };
    let continuing = match session
        .pending
        .as_ref()
        .and_then(PendingInteraction::authorization)
    {
        Some(request) => match authorization.client(&request.client_id).await {
            Ok(Some(client)) => Some(client.metadata.client_name.clone()),
            Ok(None) => None,
            Err(_) => return unavailable(),
        },
        None => None,
    };
    page(
        StatusCode::OK,
        "Your account",
        false,
        &overview_html(&session, &user, &factors, continuing.as_deref()),
    )
}

/// The page's body.
fn overview_html(
    session: &BrowserSession,
    user: &User,
    factors: &FactorSummary,
    continuing: Option<&str>,
) -> String {
    let csrf = csrf_input(session);
    let notice = continuing
        .map(|client| {
            format!(
                "<div role=\"status\" class=\"notice\"><p>When your account is ready, continue \
                 signing in to <strong>{client}</strong>.</p>\
                 <form method=\"post\" action=\"{action}\">{csrf}\
                 <button type=\"submit\" class=\"primary\">Continue to {client}</button>\
                 </form></div>",
                client = escape(client),
                action = paths::LOGIN_CONTINUE,
            )
        })
        .unwrap_or_default();
    let name = user
        .name
        .as_deref()
        .map(|n| format!(" ({})", escape(n)))
        .unwrap_or_default();
    let how = match session.state.signed_in() {
        Some((_, auth_time)) => format!(
            "<p class=\"muted\">Signed in with {} on {}.</p>",
            methods_in_words(session.state.methods()),
            when(auth_time)
        ),
        None => String::new(),
    };
    let totp = if factors.totp {
        format!(
            "<p>On: codes from your authenticator app are asked after your password.</p>\
             <ul><li><a href=\"{totp}\">Set up a new authenticator app</a></li></ul>\
             <form method=\"post\" action=\"{totp}/remove\">{csrf}\
             <button type=\"submit\" class=\"secondary\">Remove the authenticator app</button>\
             </form>",
            totp = paths::ACCOUNT_TOTP,
        )
    } else {
        format!(
            "<p>Off.</p><ul><li><a href=\"{}\">Set up an authenticator app</a></li></ul>",
            paths::ACCOUNT_TOTP
        )
    };
    let recovery = match factors.recovery_codes_left {
        0 => "You have no unused recovery codes.".to_owned(),
        1 => "1 unused recovery code is left.".to_owned(),
        n => format!("{n} unused recovery codes are left."),
    };
    let passkeys = match factors.passkeys {
        0 => "You have no passkeys.".to_owned(),
        1 => "You have 1 passkey.".to_owned(),
        n => format!("You have {n} passkeys."),
    };
    format!(
        "{notice}<p>Signed in as <strong>{username}</strong>{name}.</p>{how}\
         <section aria-labelledby=\"password-heading\"><h2 id=\"password-heading\">Password</h2>\
         <ul><li><a href=\"{password}\">Change your password</a></li></ul></section>\
         <section aria-labelledby=\"totp-heading\">\
         <h2 id=\"totp-heading\">Authenticator app (TOTP)</h2>{totp}</section>\
         <section aria-labelledby=\"recovery-heading\">\
         <h2 id=\"recovery-heading\">Recovery codes</h2><p>{recovery}</p>\
         <form method=\"post\" action=\"{recovery_action}\">{csrf}\
         <button type=\"submit\" class=\"secondary\">Generate new codes</button></form>\
         </section>\
         <section aria-labelledby=\"passkeys-heading\"><h2 id=\"passkeys-heading\">Passkeys</h2>\
         <p>{passkeys}</p><ul><li><a href=\"{passkeys_page}\">Manage your passkeys</a></li></ul>\
         </section>\
         <section aria-labelledby=\"sessions-heading\"><h2 id=\"sessions-heading\">Sessions</h2>\
         <ul><li><a href=\"{sessions}\">See where you are signed in</a></li></ul></section>\
         <form method=\"post\" action=\"{logout}\"><div class=\"actions\">\
         <button type=\"submit\" class=\"primary\">Sign out</button></div></form>",
        username = escape(&user.username),
        password = paths::ACCOUNT_PASSWORD,
        recovery_action = paths::ACCOUNT_RECOVERY_CODES,
        passkeys_page = paths::ACCOUNT_PASSKEYS,
        sessions = paths::ACCOUNT_SESSIONS,
        logout = paths::LOGOUT,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::Session;
    use crate::signin::AuthMethod;

    fn user() -> User {
        User {
            id: "u".to_owned(),
            username: "ada<b>".to_owned(),
            password_hash: String::new(),
            enabled: true,
            roles: Vec::new(),
            tenant_id: None,
            name: Some("Ada & co".to_owned()),
            given_name: None,
            family_name: None,
            email: None,
            email_verified: false,
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn session() -> BrowserSession {
        BrowserSession::from_record(Session {
            id_hash: "h".to_owned(),
            user_id: Some("u".to_owned()),
            auth_time: Some(OffsetDateTime::UNIX_EPOCH),
            amr: vec!["pwd".to_owned(), "otp".to_owned()],
            pending_request: None,
            csrf_token: "tok".to_owned(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            public_id: None,
            created_at: None,
            user_agent: None,
        })
    }

    #[test]
    fn the_overview_escapes_and_reflects_the_factors() {
        let none = FactorSummary {
            totp: false,
            passkeys: 0,
            recovery_codes_left: 0,
        };
        let html = overview_html(&session(), &user(), &none, None);
        assert!(
            html.contains("<strong>ada&lt;b&gt;</strong> (Ada &amp; co)"),
            "{html}"
        );
        assert!(
            html.contains("Signed in with password and one-time code on"),
            "{html}"
        );
        assert_eq!(
            session().state.methods(),
            [AuthMethod::Password, AuthMethod::OneTimePassword]
        );
        assert!(html.contains("<p>Off.</p>"));
        assert!(!html.contains("/account/totp/remove"));
        assert!(html.contains("You have no passkeys."));
        assert!(!html.contains("role=\"status\""));

        let some = FactorSummary {
            totp: true,
            passkeys: 2,
            recovery_codes_left: 1,
        };
        let html = overview_html(&session(), &user(), &some, Some("App <x>"));
        assert!(html.contains("action=\"/account/totp/remove\""));
        assert!(html.contains("You have 2 passkeys."));
        assert!(html.contains("1 unused recovery code is left."));
        assert!(
            html.contains("Continue to App &lt;x&gt;</button>"),
            "{html}"
        );
        assert!(html.contains("action=\"/oidc/v1/login/continue\""));
        // Every form carries the CSRF token, except the logout (an RP-initiated logout).
        let forms = html.matches("<form ").count();
        let tokens = html.matches("name=\"csrf_token\" value=\"tok\"").count();
        assert_eq!(forms, tokens + 1, "{html}");
    }
}
