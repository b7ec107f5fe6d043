//! The two API surfaces (SPEC §3.1): the same operations mounted for services and for browsers.
//!
//! ```text
//! let api = Router::new().route("/elastickey", post(create)) /* ... */ .with_state(state);
//! let public = service_surface(api.clone(), &settings.api.service)
//!     .merge(browser_surface(api, &settings.api.browser));
//! ```
//!
//! Both surfaces (outermost first): `Cache-Control: no-store` on every response → IP/CIDR
//! allowlist (403) → per-client-IP rate limit (429 with `Retry-After`) → the operations.
//!
//! The browser surface adds security headers (CSP, Permissions-Policy, CORP; HSTS, nosniff,
//! Referrer-Policy and X-Frame-Options come from [`crate::middleware::common_layers`]), CORS for
//! the configured origins (between the allowlist and the rate limit, so a listed origin can read
//! 429 responses), double-submit CSRF on unsafe methods (innermost) and the route
//! `GET <prefix>/csrf-token`.
//!
//! Each surface is mounted as one opaque service (`nest_service`), so every response under its
//! prefix, 404 and 405 problems included, passes through its layers, and a CORS preflight or a
//! CSRF check happens before method routing.
//!
//! Products mount their own routes outside the surfaces with the same building blocks:
//! [`RateLimit`] (one set of buckets for several routers, optionally with an HTML refusal),
//! [`rate_limited`] and [`cross_origin`] (CORS with or without credentials).
//!
//! The client address is the TCP peer (`ConnectInfo<SocketAddr>`, set by the HTTPS accept
//! loop); forwarding headers are not trusted. A request without it is refused by a non-empty
//! allowlist and shares the rate limiter's overflow bucket.

mod allowlist;
mod cors;
mod csrf;
mod ratelimit;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::{BrowserSettings, RateLimitSettings, SurfaceSettings};

pub use csrf::{CSRF_COOKIE, CSRF_HEADER, CsrfTokenResponse};
pub use ratelimit::{MAX_TRACKED_CLIENTS, Refusal, problem_refusal};

/// Where the service surface is mounted.
pub const SERVICE_PREFIX: &str = "/service/api/v1";
/// Where the browser surface is mounted.
pub const BROWSER_PREFIX: &str = "/browser/api/v1";
/// The CSRF token route, relative to the browser prefix.
pub const CSRF_TOKEN_PATH: &str = "/csrf-token";

/// CSP of browser API responses: they are JSON, never documents that load anything.
pub const BROWSER_API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// Permissions-Policy of browser responses: no powerful features.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=()";

const PERMISSIONS_POLICY_HEADER: HeaderName = HeaderName::from_static("permissions-policy");
const CORP_HEADER: HeaderName = HeaderName::from_static("cross-origin-resource-policy");

/// Mounts `operations` (paths relative to the surface, e.g. `/elastickey/{id}`) under
/// [`SERVICE_PREFIX`] with the service layers: no-store, allowlist, rate limit.
pub fn service_surface(operations: Router, settings: &SurfaceSettings) -> Router {
    service_surface_at(SERVICE_PREFIX, operations, settings)
}

/// [`service_surface`] under another prefix (e.g. `/service/api/v2`).
pub fn service_surface_at(prefix: &str, operations: Router, settings: &SurfaceSettings) -> Router {
    let inner = guarded(
        with_problem_fallbacks(prefix, operations),
        &settings.allowed_ips,
        &settings.rate_limit,
        None,
    );
    Router::new().nest_service(prefix, inner)
}

/// Mounts `operations` under [`BROWSER_PREFIX`] with the browser layers (no-store, security
/// headers, allowlist, CORS, rate limit, CSRF) and adds `GET /browser/api/v1/csrf-token`.
/// `operations` must not have a route of its own at [`CSRF_TOKEN_PATH`].
pub fn browser_surface(operations: Router, settings: &BrowserSettings) -> Router {
    browser_surface_at(BROWSER_PREFIX, operations, settings)
}

/// [`browser_surface`] under another prefix; the token route is `<prefix>/csrf-token`.
pub fn browser_surface_at(prefix: &str, operations: Router, settings: &BrowserSettings) -> Router {
    let operations = with_problem_fallbacks(
        prefix,
        operations.route(CSRF_TOKEN_PATH, get(csrf::issue_token)),
    )
    .layer(axum::middleware::from_fn(csrf::require_token));
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(BROWSER_API_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            PERMISSIONS_POLICY_HEADER,
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CORP_HEADER,
            HeaderValue::from_static("same-origin"),
        ));
    let inner = guarded(
        operations,
        &settings.allowed_ips,
        &settings.rate_limit,
        Some(cors::CorsOrigins::new(&settings.cors_origins)),
    )
    .layer(security_headers);
    Router::new().nest_service(prefix, inner)
}

/// 404 and 405 problems inside the surface, so they pass through its layers too. The surface
/// is mounted as one service (`nest_service`): the product's router cannot reach inside it and
/// replace these fallbacks with unlayered ones. Matched routes are reported for telemetry.
fn with_problem_fallbacks(prefix: &str, operations: Router) -> Router {
    crate::middleware::report_matched_route(prefix, operations)
        .fallback(crate::problem::not_found)
        .method_not_allowed_fallback(crate::problem::method_not_allowed)
}

/// The layers both surfaces share, with CORS between the allowlist and the rate limit when
/// given. `Router::layer` wraps what is already there, so the last layer added runs first.
fn guarded(
    router: Router,
    allowed_ips: &[ipnet::IpNet],
    rate_limit: &RateLimitSettings,
    cors: Option<cors::CorsOrigins>,
) -> Router {
    let mut router = RateLimit::new(rate_limit).apply(router);
    if let Some(origins) = cors {
        router = router.layer(from_fn_with_state(origins, cors::cors));
    }
    let list = allowlist::Allowlist::new(allowed_ips);
    if !list.is_empty() {
        router = router.layer(from_fn_with_state(list, allowlist::allowlist));
    }
    router.layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// A per-client-IP rate limit (token buckets in bounded memory, IPv6 per /64, keyed by the TCP
/// peer: forwarding headers are not trusted) that can guard several routers with one set of
/// buckets.
///
/// ```text
/// let limit = RateLimit::new(&settings.rate_limits.pages).refusing_with(html_429);
/// let pages = limit.apply(pages);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimit(ratelimit::Limit);

impl RateLimit {
    /// Buckets of `settings`; refused requests get a 429 problem with `Retry-After`.
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self(ratelimit::Limit {
            limiter: Arc::new(ratelimit::RateLimiter::new(settings, MAX_TRACKED_CLIENTS)),
            refuse: problem_refusal,
        })
    }

    /// Refused requests get `refusal(retry_after_secs)` instead (status 429 and `Retry-After`
    /// are set on it), e.g. an HTML page for people.
    pub fn refusing_with(mut self, refusal: Refusal) -> Self {
        self.0.refuse = refusal;
        self
    }

    /// `router` with this limit on every route (wrap CORS around it afterwards, so a listed
    /// origin can read the 429).
    pub fn apply(&self, router: Router) -> Router {
        router.layer(from_fn_with_state(self.0.clone(), ratelimit::rate_limit))
    }
}

/// `router` with a per-client-IP rate limit of its own (see [`RateLimit`]).
pub fn rate_limited(router: Router, settings: &RateLimitSettings) -> Router {
    RateLimit::new(settings).apply(router)
}

/// The routes of `router` at `paths`, callable cross-origin from exactly `origins`
/// (`https://host[:port]`), with or without credentials: preflights from listed origins get 204
/// with the allowed methods and headers, from others a 403 problem; responses to listed origins
/// carry `Access-Control-Allow-Origin` (that origin), every response `Vary: Origin`. Apply it to
/// a router already guarded by [`RateLimit::apply`], so a listed origin can read the 429.
///
/// Each path is mounted as one opaque service (like the surfaces), so a preflight reaches the
/// CORS layer before method routing and the server's own 405 fallback cannot replace it.
pub fn cross_origin(
    router: Router,
    paths: &[&str],
    origins: &[url::Url],
    credentials: bool,
) -> Router {
    let origins = cors::CorsOrigins::with_credentials(origins, credentials);
    let inner = ServiceBuilder::new()
        .layer(from_fn_with_state(origins, cors::cors))
        .service(with_problem_fallbacks("", router));
    paths.iter().fold(Router::new(), |r, path| {
        r.route_service(path, inner.clone())
    })
}

/// The TCP peer address of a request, when the accept loop recorded it.
fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}
