//! W3C trace context (`traceparent`, `tracestate`) on HTTP headers, through the propagator the
//! SDK installs globally.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::enabled;

/// Adds the current span's trace context to outgoing request headers (nothing when telemetry is
/// off or no span is current).
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

/// Makes the trace context of an incoming request (if it has one) the parent of `span`.
pub fn set_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() {
        return;
    }
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(cx);
}

/// Renames `span` after it started (e.g. once the route is known); nothing when telemetry is
/// off.
pub fn rename(span: &tracing::Span, name: String) {
    if !enabled() {
        return;
    }
    use opentelemetry::trace::TraceContextExt;
    span.context().span().update_name(name);
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}
