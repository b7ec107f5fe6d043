//! `GET /account/sessions`: where the user is signed in (browser, when it started, the sign-in
//! methods; "this session" marked). `POST /account/sessions/{id}/end` signs one out,
//! `POST /account/sessions` signs out every other session. Ending another session needs a
//! recent sign-in.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;

use super::super::extract::OAuthForm;
use super::super::html::{escape, page};
use super::super::interaction::{see_other, unavailable};
use super::super::session_cookie;
use super::view::{account_error, browser_name, checked, csrf_input, methods_in_words, when};
use super::{account_session, is_recent, sign_in_again};
use crate::account::AccountService;
use crate::oauth::OAuthError;
use crate::paths;
use crate::signin::{BrowserSession, SessionListing, SignInService};

/// Longest session id accepted in a path (a UUIDv7 has 36 characters).
const MAX_PUBLIC_ID_LEN: usize = 64;

/// One listed session.
fn session_item(listing: &SessionListing, csrf: &str) -> String {
    let browser = escape(&browser_name(listing.user_agent.as_deref()));
    let started = listing
        .created_at
        .map(|at| format!("<li>Started {}</li>", when(at)))
        .unwrap_or_default();
    let action = match (&listing.public_id, listing.current) {
        (_, true) => "<p><strong>This session</strong>: the browser you are using.</p>".to_owned(),
        (Some(id), false) => format!(
            "<form method=\"post\" action=\"{sessions}/{id}/end\">{csrf}\
             <button type=\"submit\" class=\"secondary\" aria-label=\"Sign out {browser}, \
             signed in {signed_in}\">Sign out</button></form>",
            sessions = paths::ACCOUNT_SESSIONS,
            id = escape(id),
            signed_in = escape(&format_plain(listing.auth_time)),
        ),
        (None, false) => {
            "<p class=\"muted\">Ended by \u{201c}Sign out everywhere else\u{201d}.</p>".to_owned()
        }
    };
    let user_agent = listing
        .user_agent
        .as_deref()
        .map(|ua| format!("<li class=\"muted\">Browser: {}</li>", escape(ua)))
        .unwrap_or_default();
    format!(
        "<li><h2>{browser}{this}</h2><ul>\
         <li>Signed in {signed_in} with {methods}</li>{started}{user_agent}</ul>{action}</li>",
        this = if listing.current {
            " (this session)"
        } else {
            ""
        },
        signed_in = when(listing.auth_time),
        methods = methods_in_words(&listing.methods),
    )
}

/// An instant as plain text, for an `aria-label`.
fn format_plain(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// The page's body.
fn sessions_html(session: &BrowserSession, listed: &[SessionListing]) -> String {
    let csrf = csrf_input(session);
    let items: String = listed.iter().map(|l| session_item(l, &csrf)).collect();
    let others = listed.iter().filter(|l| !l.current).count();
    let everywhere = if others > 0 {
        format!(
            "<form method=\"post\" action=\"{}\">{csrf}<div class=\"actions\">\
             <button type=\"submit\" class=\"primary\">Sign out everywhere else</button></div>\
             </form>",
            paths::ACCOUNT_SESSIONS
        )
    } else {
        "<p>You are signed in nowhere else.</p>".to_owned()
    };
    format!(
        "<p><a href=\"{account}\">Back to your account</a></p>\
         <ul aria-label=\"Signed-in sessions\">{items}</ul>{everywhere}",
        account = paths::ACCOUNT,
    )
}

/// `GET /account/sessions`.
pub async fn sessions_page(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, user) = match account_session(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match account.sessions(&user.id, &session, now).await {
        Ok(listed) => page(
            StatusCode::OK,
            "Where you are signed in",
            false,
            &sessions_html(&session, &listed),
        ),
        Err(_) => unavailable(),
    }
}

/// `POST /account/sessions/{id}/end`: signs out one session; the current one signs out this
/// browser.
pub async fn end_session(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, user) = match account_session(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(response) = checked(&session, form) {
        return *response;
    }
    let gone = || {
        account_error(
            StatusCode::NOT_FOUND,
            "That session is not signed in any more.",
        )
    };
    if public_id.len() > MAX_PUBLIC_ID_LEN {
        return gone();
    }
    let current = session.public_id.as_deref() == Some(public_id.as_str());
    if !current && !is_recent(&session, account.reauthentication_window(), now) {
        return sign_in_again(&sign_in, session).await;
    }
    match account.end_session(&user.id, &public_id).await {
        Ok(true) if current => {
            let mut response = see_other(paths::ACCOUNT, None);
            response.headers_mut().insert(
                axum::http::header::SET_COOKIE,
                session_cookie::clear_cookie(),
            );
            response
        }
        Ok(true) => see_other(paths::ACCOUNT_SESSIONS, None),
        Ok(false) => gone(),
        Err(_) => unavailable(),
    }
}

/// `POST /account/sessions`: signs out every session of the user but this one.
pub async fn end_other_sessions(
    State(sign_in): State<Arc<SignInService>>,
    State(account): State<Arc<AccountService>>,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, user) = match account_session(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(response) = checked(&session, form) {
        return *response;
    }
    if !is_recent(&session, account.reauthentication_window(), now) {
        return sign_in_again(&sign_in, session).await;
    }
    match account.end_other_sessions(&user.id, &session).await {
        Ok(_) => see_other(paths::ACCOUNT_SESSIONS, None),
        Err(_) => unavailable(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::Session;
    use crate::signin::AuthMethod;

    fn session() -> BrowserSession {
        BrowserSession::from_record(Session {
            id_hash: "h".to_owned(),
            user_id: Some("u".to_owned()),
            auth_time: Some(OffsetDateTime::UNIX_EPOCH),
            amr: Vec::new(),
            pending_request: None,
            csrf_token: "tok".to_owned(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            public_id: Some("mine".to_owned()),
            created_at: None,
            user_agent: None,
        })
    }

    fn listing(public_id: Option<&str>, current: bool, ua: Option<&str>) -> SessionListing {
        SessionListing {
            public_id: public_id.map(str::to_owned),
            created_at: Some(OffsetDateTime::UNIX_EPOCH),
            auth_time: OffsetDateTime::UNIX_EPOCH,
            methods: vec![AuthMethod::Password],
            user_agent: ua.map(str::to_owned),
            current,
        }
    }

    #[test]
    fn the_current_session_is_marked_and_others_get_a_button() {
        let html = sessions_html(
            &session(),
            &[
                listing(
                    Some("mine"),
                    true,
                    Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"),
                ),
                listing(Some("other-id"), false, Some("<script>")),
                listing(None, false, None),
            ],
        );
        assert!(
            html.contains("<h2>Firefox on Linux (this session)</h2>"),
            "{html}"
        );
        assert!(!html.contains("/account/sessions/mine/end"));
        assert!(html.contains("action=\"/account/sessions/other-id/end\""));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<h2>Unknown browser</h2>"));
        assert!(html.contains("Sign out everywhere else"));
        assert_eq!(html.matches("name=\"csrf_token\"").count(), 2);

        let alone = sessions_html(&session(), &[listing(Some("mine"), true, None)]);
        assert!(alone.contains("You are signed in nowhere else."));
        assert!(!alone.contains("<form"));
    }
}
