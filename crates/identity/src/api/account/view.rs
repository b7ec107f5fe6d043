//! What the account pages share in their HTML: the checked form (CSRF), the error page, times
//! and sign-in methods in words, a browser's name from its `User-Agent`.

use axum::http::StatusCode;
use axum::response::Response;
use time::{OffsetDateTime, UtcOffset};

use super::super::extract::OAuthForm;
use super::super::html::{escape, page};
use crate::oauth::{FormParams, OAuthError};
use crate::paths;
use crate::signin::{AuthMethod, BrowserSession};

/// An account page explaining what went wrong, with a way back to the account.
pub(super) fn account_error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Your account",
        true,
        &format!(
            "<div class=\"alert\" role=\"alert\"><p>{}</p></div>\
             <p><a href=\"{account}\">Back to your account</a></p>",
            escape(message),
            account = paths::ACCOUNT,
        ),
    )
}

/// The submitted account form once it parsed and its CSRF token matched the session's;
/// otherwise the page to show (boxed: a response is large).
pub(super) fn checked(
    session: &BrowserSession,
    form: Result<OAuthForm, OAuthError>,
) -> Result<FormParams, Box<Response>> {
    let Ok(OAuthForm(form)) = form else {
        return Err(Box::new(account_error(
            StatusCode::BAD_REQUEST,
            "The form was malformed.",
        )));
    };
    if !session.csrf_ok(form.get("csrf_token")) {
        return Err(Box::new(account_error(
            StatusCode::FORBIDDEN,
            "The form expired. Please open the page again and retry.",
        )));
    }
    Ok(form)
}

/// The hidden CSRF input of a form.
pub(super) fn csrf_input(session: &BrowserSession) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
        escape(&session.csrf_token)
    )
}

/// An instant as `YYYY-MM-DD HH:MM UTC` in a `<time>` element (machine-readable too).
pub(super) fn when(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "<time datetime=\"{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z\">\
         {y:04}-{m:02}-{d:02} {h:02}:{min:02} UTC</time>",
        y = at.year(),
        m = u8::from(at.month()),
        d = at.day(),
        h = at.hour(),
        min = at.minute(),
        s = at.second(),
    )
}

/// A sign-in method in words.
fn method_word(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Password => "password",
        AuthMethod::OneTimePassword => "one-time code",
        AuthMethod::HardwareKey => "security key",
        AuthMethod::SoftwareKey => "passkey",
        AuthMethod::UserPresence => "presence check",
        AuthMethod::MultiFactor => "verified on the device",
    }
}

/// Sign-in methods in words: "password and one-time code".
pub(super) fn methods_in_words(methods: &[AuthMethod]) -> String {
    let words: Vec<&str> = methods.iter().map(|m| method_word(*m)).collect();
    match words.split_last() {
        None => "an unknown method".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A short name for the browser a `User-Agent` describes ("Firefox on Linux"), or the start
/// of the text itself when it names no known browser; "Unknown browser" without one.
pub(super) fn browser_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown browser".to_owned();
    };
    // Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, _) => ua.chars().take(60).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(browser_name(Some(firefox)), "Firefox on Linux");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                    Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(browser_name(Some(edge)), "Edge on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_name(Some(safari)), "Safari on iOS");
        assert_eq!(browser_name(Some("reqwest/0.12")), "reqwest/0.12");
        assert_eq!(browser_name(None), "Unknown browser");
    }

    #[test]
    fn methods_read_as_a_phrase() {
        assert_eq!(methods_in_words(&[AuthMethod::Password]), "password");
        assert_eq!(
            methods_in_words(&[AuthMethod::Password, AuthMethod::OneTimePassword]),
            "password and one-time code"
        );
        assert_eq!(
            methods_in_words(&[
                AuthMethod::SoftwareKey,
                AuthMethod::UserPresence,
                AuthMethod::MultiFactor
            ]),
            "passkey, presence check and verified on the device"
        );
        assert_eq!(methods_in_words(&[]), "an unknown method");
    }

    #[test]
    fn times_are_utc_and_machine_readable() {
        let at = OffsetDateTime::from_unix_timestamp(1_765_000_000).unwrap();
        assert_eq!(
            when(at),
            "<time datetime=\"2025-12-06T05:46:40Z\">2025-12-06 05:46 UTC</time>"
        );
    }
}
