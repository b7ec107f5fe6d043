//! Server-rendered pages: one small layout, every value HTML-escaped, no inline script: the
//! only script is ours, served from this server (`/oidc/v1/assets/passkey.js`, for passkeys).
//!
//! The stylesheet is inline and allowed by its CSP hash (no `'unsafe-inline'`): one response
//! per page, nothing else to serve. Colours meet WCAG AA contrast (text ≥ 4.5:1, borders and
//! focus rings ≥ 3:1) and every focusable element shows a visible focus ring.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The pages' stylesheet.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;\
     padding:0 1rem;color:#1a1a1a;background:#fff;line-height:1.5}h1{font-size:1.5rem}\
     label{display:block;margin:1rem 0 .25rem;font-weight:600}\
     input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;\
     box-sizing:border-box;border:1px solid #6b6b6b;border-radius:4px;color:#1a1a1a;\
     background:#fff}input[aria-invalid=true]{border:2px solid #b00020}\
     .field-error{color:#b00020;margin:.25rem 0;font-weight:600}\
     .alert{border:2px solid #b00020;border-radius:4px;padding:.5rem .75rem;color:#b00020;\
     margin:1rem 0}.alert p{margin:0}.actions{display:flex;gap:.75rem;margin-top:1.5rem}\
     button{padding:.6rem 1.4rem;font-size:1rem;border-radius:4px;cursor:pointer;\
     border:2px solid #1a4fc4;font-weight:600}.primary{background:#1a4fc4;color:#fff}\
     .secondary{background:#fff;color:#1a4fc4}\
     :focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}ul{padding-left:1.2rem}\
     .muted{color:#4a4a4a}";

/// Pages allow only their own stylesheet (by hash), scripts served by this server (the
/// passkey script: no inline script, no `eval`) fetching from this server only (the passkey
/// options), and forms posting to this server (whose answers redirect to registered client
/// URIs); no frames, no plugins, no other fetches.
static PAGE_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; script-src 'self'; \
         connect-src 'self'; form-action 'self' https:; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page: `heading` is escaped here, `body` must already be safe HTML. The document
/// title is the heading, prefixed with "Error: " when `error` (so screen readers announce it).
pub fn page(status: StatusCode, heading: &str, error: bool, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{prefix}{heading} · cryptoutil Identity</title><style>{STYLE}</style></head>\
         <body><main><h1>{heading}</h1>{body}</main></body></html>",
        prefix = if error { "Error: " } else { "" },
        heading = escape(heading),
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, PAGE_CSP.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The button of a page that offers a passkey (`kind`: `sign-in` or `register`); the script
/// ([`SCRIPT_TAG`]) gives it its behaviour and hides it where WebAuthn is missing.
pub fn passkey_button(kind: &str, label: &str, csrf: &str, autofocus: bool) -> String {
    format!(
        "<button type=\"button\" class=\"secondary\" data-passkey=\"{kind}\" \
         data-csrf=\"{csrf}\"{focus}>{label}</button>",
        csrf = escape(csrf),
        label = escape(label),
        focus = if autofocus { " autofocus" } else { "" },
    )
}

/// The script tag of pages that offer a passkey.
pub const SCRIPT_TAG: &str = "<script src=\"/oidc/v1/assets/passkey.js\" defer></script>";

/// A page explaining an error to the user.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in cannot continue",
        true,
        &format!(
            "<div class=\"alert\" role=\"alert\"><p>{}</p></div>",
            escape(message)
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn csp_allows_exactly_the_served_stylesheet_and_same_origin_script() {
        let csp = PAGE_CSP.to_str().unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert_eq!(
            directives,
            [
                "default-src 'none'",
                &format!("style-src 'sha256-{hash}'"),
                "script-src 'self'",
                "connect-src 'self'",
                "form-action 'self' https:",
                "frame-ancestors 'none'",
                "base-uri 'none'",
            ],
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
    }

    #[test]
    fn the_passkey_button_escapes_its_token() {
        let html = passkey_button("sign-in", "Use a passkey", "a\"b", false);
        assert_eq!(
            html,
            "<button type=\"button\" class=\"secondary\" data-passkey=\"sign-in\" \
             data-csrf=\"a&quot;b\">Use a passkey</button>"
        );
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
