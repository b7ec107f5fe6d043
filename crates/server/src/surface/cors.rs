//! CORS: exact configured origins; the browser surface also allows credentials (cookies) for
//! them, [`super::cross_origin`] may leave credentials out (token endpoints called by
//! single-page apps with bearer tokens and no cookies).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from a listed origin
//! gets 204 with the allowed methods and headers; from any other origin a 403 problem. Other
//! requests always run (a same-origin page such as Swagger UI sends `Origin` too); a listed
//! origin gets `Access-Control-Allow-Origin` and `-Credentials` on the response, any other none,
//! so its scripts cannot read the response. CSRF protection, not CORS, guards state changes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

const ALLOW_METHODS: HeaderValue =
    HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static(
    "accept, authorization, content-type, dpop, x-csrf-token, x-request-id, x-tenant-id",
);
const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("dpop-nonce, retry-after, www-authenticate, x-request-id");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// The origins allowed to call cross-origin, as `scheme://host[:port]`, and whether they may
/// send credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct CorsOrigins {
    origins: Arc<[String]>,
    credentials: bool,
}

impl CorsOrigins {
    /// Listed origins with credentials (the browser surface).
    pub(crate) fn new(origins: &[url::Url]) -> Self {
        Self::with_credentials(origins, true)
    }

    pub(crate) fn with_credentials(origins: &[url::Url], credentials: bool) -> Self {
        Self {
            origins: origins
                .iter()
                .map(|u| u.origin().ascii_serialization())
                .filter(|o| o != "null")
                .collect(),
            credentials,
        }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
    }
}

/// Middleware: answers preflights and adds CORS headers for listed origins.
pub(crate) async fn cors(
    State(origins): State<CorsOrigins>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin.clone().filter(|o| origins.allows(o));
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(origin) = allowed else {
            let mut refused = Problem::new(StatusCode::FORBIDDEN)
                .with_detail("this origin may not call this API cross-origin")
                .with_extension("error", "cors_origin_not_allowed")
                .into_response();
            refused.headers_mut().insert(header::VARY, VARY_PREFLIGHT);
            return refused;
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if origins.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        h.insert(header::VARY, VARY_PREFLIGHT);
        return response;
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if origins.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_exactly_with_default_ports_elided() {
        let o = CorsOrigins::new(&[
            "https://app.example.com".parse().unwrap(),
            "https://other.example.com:8443/".parse().unwrap(),
        ]);
        for ok in ["https://app.example.com", "https://other.example.com:8443"] {
            assert!(o.allows(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "https://app.example.com:443",
            "http://app.example.com",
            "https://app.example.com.evil.test",
            "https://other.example.com",
            "null",
            "",
        ] {
            assert!(!o.allows(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
