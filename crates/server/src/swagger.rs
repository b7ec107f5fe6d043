//! Swagger UI from files shipped inside the binary (no CDN: it works offline), and the OpenAPI
//! document it shows.
//!
//! The vendored `swagger-ui-dist` files and their licence sit in `assets/swagger-ui/` (see its
//! NOTICE); `index.html` and `initializer.js` are ours. The initializer keeps every script in
//! files, so the pages run under [`SWAGGER_CSP`], and adds the CSRF token to "Try it out"
//! requests against the browser surface.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where Swagger UI is served; the document is at `<this>doc.json`.
pub const SWAGGER_PATH: &str = "/ui/swagger/";

/// The CSP of the Swagger UI pages: scripts, styles, images and API calls from this origin
/// only; `data:` images for the icons inlined in swagger-ui.css. No inline script or style.
pub const SWAGGER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &[u8] = include_bytes!("../assets/swagger-ui/index.html");
const INITIALIZER_JS: &[u8] = include_bytes!("../assets/swagger-ui/initializer.js");
const BUNDLE_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const FAVICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const STYLESHEET: &str = "text/css; charset=utf-8";
const PNG: &str = "image/png";
const JSON: &str = "application/json";

/// `GET /ui/swagger/` (Swagger UI), `GET /ui/swagger/doc.json` (`openapi_json`, served as is)
/// and the UI's assets; `/ui/swagger` redirects to `/ui/swagger/`.
pub fn swagger_router(openapi_json: String) -> Router {
    let doc = axum::body::Bytes::from(openapi_json);
    Router::new()
        .route(
            "/ui/swagger",
            get(|| async { Redirect::permanent(SWAGGER_PATH) }),
        )
        .route("/ui/swagger/", get(|| async { asset(HTML, INDEX_HTML) }))
        .route(
            "/ui/swagger/index.html",
            get(|| async { asset(HTML, INDEX_HTML) }),
        )
        .route(
            "/ui/swagger/initializer.js",
            get(|| async { asset(JAVASCRIPT, INITIALIZER_JS) }),
        )
        .route(
            "/ui/swagger/swagger-ui-bundle.js",
            get(|| async { asset(JAVASCRIPT, BUNDLE_JS) }),
        )
        .route(
            "/ui/swagger/swagger-ui.css",
            get(|| async { asset(STYLESHEET, CSS) }),
        )
        .route(
            "/ui/swagger/favicon-32x32.png",
            get(|| async { asset(PNG, FAVICON) }),
        )
        .route(
            "/ui/swagger/doc.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, JSON)], doc).into_response() }
            }),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SWAGGER_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(crate::surface::PERMISSIONS_POLICY),
        ))
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn get(router: &Router, path: &str) -> Response {
        router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_the_ui_its_assets_and_the_document() {
        let doc = format!(
            r#"{{"openapi":"3.1.0","info":{{"title":"t-{}"}}}}"#,
            uuid::Uuid::now_v7()
        );
        let router = swagger_router(doc.clone());
        for (path, content_type, needle) in [
            ("/ui/swagger/", HTML, &b"swagger-ui-bundle.js"[..]),
            ("/ui/swagger/index.html", HTML, b"initializer.js"),
            ("/ui/swagger/initializer.js", JAVASCRIPT, b"X-CSRF-Token"),
            (
                "/ui/swagger/swagger-ui-bundle.js",
                JAVASCRIPT,
                b"SwaggerUIBundle",
            ),
            ("/ui/swagger/swagger-ui.css", STYLESHEET, b".swagger-ui"),
            ("/ui/swagger/favicon-32x32.png", PNG, b"PNG"),
            ("/ui/swagger/doc.json", JSON, doc.as_bytes()),
        ] {
            let response = get(&router, path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                content_type,
                "{path}"
            );
            assert_eq!(
                response.headers()[header::CONTENT_SECURITY_POLICY],
                SWAGGER_CSP,
                "{path}"
            );
            let body = axum::body::to_bytes(response.into_body(), 4 << 20)
                .await
                .unwrap();
            assert!(
                body.windows(needle.len()).any(|w| w == needle),
                "{path} lacks {:?}",
                String::from_utf8_lossy(needle)
            );
        }
        let redirect = get(&router, "/ui/swagger").await;
        assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(redirect.headers()[header::LOCATION], SWAGGER_PATH);
    }

    #[test]
    fn no_inline_script_and_nothing_from_elsewhere() {
        let index = std::str::from_utf8(INDEX_HTML).unwrap();
        assert!(!index.contains("<script>"), "scripts must be files");
        assert!(!index.contains("http://") && !index.contains("https://"));
        let init = std::str::from_utf8(INITIALIZER_JS).unwrap();
        assert!(init.contains("./doc.json"));
        assert!(!init.contains("http://") && !init.contains("https://"));
    }
}
