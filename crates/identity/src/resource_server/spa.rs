//! The single-page sample client: one HTML page (served at `/` and `/callback`), one script
//! module and one style sheet, embedded in the binary, and `/spa/config.json` that tells the
//! script which issuer and client to use. No inline script or style: the page's CSP allows
//! scripts and styles from this origin only, and network requests to this origin and the
//! issuer's.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

const INDEX_HTML: &str = include_str!("spa/index.html");
const APP_JS: &str = include_str!("spa/app.js");
const APP_CSS: &str = include_str!("spa/app.css");

/// What the sample client needs to know.
#[derive(Debug, Clone)]
pub struct SpaConfig {
    /// The issuer it signs in at.
    pub issuer: String,
    /// Its `client_id` (a public client).
    pub client_id: String,
    /// The scopes it asks for.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct SpaState {
    config: serde_json::Value,
    csp: HeaderValue,
}

/// The page's Content-Security-Policy: everything from this origin only, except that the
/// script may call the issuer (discovery, token endpoint) and forms may post there.
pub fn content_security_policy(issuer_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' {issuer_origin}; form-action 'self' {issuer_origin}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The origin (`https://host:port`) of an issuer URL.
pub fn origin_of(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err(format!("{url} has no origin")),
    }
}

/// `GET /`, `GET /callback`, `GET /spa/app.js`, `GET /spa/app.css`, `GET /spa/config.json`,
/// `GET /favicon.ico` (204).
pub fn router(config: SpaConfig) -> Result<Router, String> {
    let csp = HeaderValue::from_str(&content_security_policy(&origin_of(&config.issuer)?))
        .map_err(|e| format!("the issuer cannot appear in a header: {e}"))?;
    let state = SpaState {
        config: json!({
            "issuer": config.issuer,
            "client_id": config.client_id,
            "scope": config.scopes.join(" "),
            "resource": super::api::RESOURCE,
        }),
        csp,
    };
    Ok(Router::new()
        .route("/", get(page))
        .route("/callback", get(page))
        .route("/spa/app.js", get(script))
        .route("/spa/app.css", get(style))
        .route("/spa/config.json", get(settings))
        .route("/favicon.ico", get(no_icon))
        .with_state(state))
}

async fn page(State(state): State<SpaState>) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, state.csp);
    response
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

/// No icon (204), so browsers do not log a 404 for it.
async fn no_icon() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

async fn settings(State(state): State<SpaState>) -> Response {
    axum::Json(state.config).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_issuer_origin_only() {
        assert_eq!(
            origin_of("https://127.0.0.1:8082").unwrap(),
            "https://127.0.0.1:8082"
        );
        assert_eq!(
            origin_of("https://id.example/tenant/a").unwrap(),
            "https://id.example"
        );
        let csp = content_security_policy("https://id.example");
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("connect-src 'self' https://id.example;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        assert!(INDEX_HTML.contains("<script type=\"module\" src=\"/spa/app.js\"></script>"));
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        let handler = INDEX_HTML.split(|c: char| c.is_whitespace()).any(|word| {
            word.strip_prefix("on").is_some_and(|rest| {
                rest.split_once('=')
                    .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_lowercase()))
            })
        });
        assert!(!handler, "no inline event handlers");
    }
}
