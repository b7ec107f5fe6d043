//! Middleware shared by every listener: request IDs and access logs, limits, security headers,
//! and problem+json for every error response that lacks a body of its own.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use tracing::field::Empty;

use crate::problem::Problem;

/// The value of the request cookie `name` (the first one, across every `Cookie` header), if
/// any. Callers check the value's form.
pub fn request_cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The request ID header, echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request ID of the current request (a request extension).
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// Wraps `router` with the layers every listener gets; `server` names the product in traces.
pub fn common_layers(
    router: Router,
    server: &'static str,
    max_body_bytes: usize,
    request_timeout: Duration,
) -> Router {
    let headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    // `Router::layer` wraps what is already there, so the last layer added runs first.
    router
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(headers)
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn_with_state(server, request_context))
}

/// Assigns the request ID (a caller's well-formed `X-Request-ID`, else a new UUIDv7), opens a
/// tracing span for the request and writes one access-log line. With telemetry on, the span is
/// also the OTLP server span (parent: the caller's `traceparent`; semantic-convention attributes
/// `http.request.method`, `http.route`, `http.response.status_code`) and the request is measured
/// in `http.server.request.duration`; with telemetry off none of that is recorded.
async fn request_context(
    State(server): State<&'static str>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| is_acceptable_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %String::from_utf8_lossy(id.as_bytes()),
        %method,
        %path,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
        http.request.method = Empty,
        http.route = Empty,
        http.response.status_code = Empty,
        cryptoutil.server = Empty,
    );
    let telemetry = cryptoutil_telemetry::enabled();
    let mut route = telemetry
        .then(|| request.extensions().get::<MatchedPath>())
        .flatten()
        .map(|m| m.as_str().to_owned());
    // A surface is mounted as one service: its routes are matched inside, and reported back.
    let inner_route = (telemetry && route.is_none()).then(|| {
        let slot = RouteSlot::default();
        request.extensions_mut().insert(slot.clone());
        slot
    });
    if telemetry {
        cryptoutil_telemetry::set_remote_parent(&span, request.headers());
        let name = match &route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        span.record("otel.name", name);
        span.record("otel.kind", "server");
        span.record("http.request.method", method.as_str());
        if let Some(route) = &route {
            span.record("http.route", route.as_str());
        }
        span.record("cryptoutil.server", server);
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(inner) = inner_route.and_then(|slot| slot.0.get().cloned()) {
        cryptoutil_telemetry::rename(&span, format!("{method} {inner}"));
        span.record("http.route", inner.as_str());
        route = Some(inner);
    }
    if telemetry {
        span.record("http.response.status_code", status);
        if response.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
        cryptoutil_telemetry::http_request(&method, route.as_deref(), status, elapsed);
    }
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request handled"));
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// Where a router mounted as a service reports the route it matched (`http.route`).
#[derive(Debug, Clone, Default)]
struct RouteSlot(Arc<OnceLock<String>>);

/// With telemetry on, makes `router` (mounted as a service under `prefix`) report the route each
/// request matched to [`request_context`]; with telemetry off, returns it unchanged (no cost).
pub(crate) fn report_matched_route(prefix: &str, router: Router) -> Router {
    if !cryptoutil_telemetry::enabled() {
        return router;
    }
    let prefix: Arc<str> = Arc::from(prefix.trim_end_matches('/'));
    router.route_layer(middleware::from_fn_with_state(prefix, report_route))
}

async fn report_route(State(prefix): State<Arc<str>>, request: Request, next: Next) -> Response {
    if let (Some(slot), Some(matched)) = (
        request.extensions().get::<RouteSlot>(),
        request.extensions().get::<MatchedPath>(),
    ) {
        let matched = matched.as_str();
        let route = if matched.starts_with(&*prefix) {
            matched.to_owned()
        } else {
            format!("{prefix}{matched}")
        };
        let _ = slot.0.set(route);
    }
    next.run(request).await
}

/// A UUIDv7 request id. Built from the clock and aws-lc's DRBG rather than `Uuid::now_v7`, which
/// takes a process-wide lock (contended by every worker under load) and makes a `getrandom`
/// system call per id. The random bytes are drawn [`RANDOM_BATCH`] at a time per thread: one
/// DRBG call costs as much as a few hundred bytes of its output. Ids of one millisecond are
/// unique (74 random bits) but not ordered among themselves, which a request id does not need.
fn new_request_id() -> HeaderValue {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let id = match random_id_bytes() {
        Some(random) => uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid(),
        None => uuid::Uuid::now_v7(),
    };
    let mut buf = uuid::Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Random bytes drawn from the DRBG per refill of a thread's request-id pool.
const RANDOM_BATCH: usize = 640;

/// Ten random bytes for a request id from this thread's pool (`None`: the DRBG failed).
fn random_id_bytes() -> Option<[u8; 10]> {
    thread_local! {
        static POOL: std::cell::RefCell<(usize, [u8; RANDOM_BATCH])> =
            const { std::cell::RefCell::new((RANDOM_BATCH, [0; RANDOM_BATCH])) };
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (used, bytes) = &mut *pool;
        if *used + 10 > RANDOM_BATCH {
            aws_lc_rs::rand::fill(bytes).ok()?;
            *used = 0;
        }
        let mut out = [0u8; 10];
        out.copy_from_slice(&bytes[*used..*used + 10]);
        // Used bytes are not kept around.
        bytes[*used..*used + 10].fill(0);
        *used += 10;
        Some(out)
    })
}

fn is_acceptable_request_id(raw: &[u8]) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Turns error responses produced without a body of their own (by routing, limits or timeouts)
/// into problem documents. Responses that already carry JSON or HTML are left alone.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let bare = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct.as_bytes().starts_with(b"text/plain"),
    };
    if !bare {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|s| !s.trim().is_empty());
    let mut problem = Problem::new(status);
    if let Some(detail) = detail {
        problem = problem.with_detail(detail.trim().to_owned());
    }
    let mut fresh = problem.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fresh
}

/// A response with an empty body (helper for handlers).
pub fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_plain() {
        assert!(is_acceptable_request_id(
            b"0193c1a0-aaaa-7bbb-8ccc-0123456789ab"
        ));
        assert!(!is_acceptable_request_id(b""));
        assert!(!is_acceptable_request_id(&[b'a'; 65]));
        assert!(!is_acceptable_request_id(b"bad id\n"));
        let id = new_request_id();
        let parsed = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(secs) <= 1, "the id carries the current time");
        // More ids than one pool refill holds: they keep differing across refills.
        let many: std::collections::HashSet<_> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(many.len(), 1000, "ids of the same millisecond differ");
        const { assert!(1000 * 10 > RANDOM_BATCH) };
    }
}
