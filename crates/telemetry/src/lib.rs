//! The instrumentation side of cryptoutil's telemetry: the metric instruments every crate
//! records to, the spans of crypto operations, and W3C trace context on HTTP headers.
//!
//! Nothing here exports anything. The process owner (a server command or the demo) installs the
//! OpenTelemetry SDK through `cryptoutil_server::telemetry`, which then calls [`activate`]. Until
//! then — and for the whole run when no OTLP endpoint is configured — every function here is a
//! single atomic load: no instrument, no attribute, no span, no header is made.

mod metrics;
mod propagation;

use std::sync::OnceLock;

pub use metrics::{
    HTTP_SERVER_REQUEST_DURATION, barrier_cache_lookup, credential_cache_lookup, crypto_operation,
    http_request,
};
pub use propagation::{inject, rename, set_remote_parent};

/// The instruments, present once telemetry is active.
static ACTIVE: OnceLock<metrics::Instruments> = OnceLock::new();

/// Turns the instrumentation on, recording to `meter` (the SDK's, with the process's resource).
/// The first call wins; telemetry cannot be turned off again in a process.
pub fn activate(meter: &opentelemetry::metrics::Meter) {
    let _ = ACTIVE.get_or_init(|| metrics::Instruments::new(meter));
}

/// Whether an exporter is installed (an OTLP endpoint is configured).
#[inline]
pub fn enabled() -> bool {
    ACTIVE.get().is_some()
}

/// The span of one crypto operation (`operation`: `encrypt`, `decrypt`, `sign`, `verify`,
/// `generate`, `wrap`, `unwrap`), named `<scope>.<operation>` in traces, e.g. `kms.encrypt`;
/// [`tracing::Span::none`] when telemetry is off. Also counts the operation.
pub fn crypto_span(scope: &'static str, operation: &'static str, algorithm: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    crypto_operation(operation, algorithm);
    let span = tracing::info_span!(
        "crypto",
        otel.name = tracing::field::Empty,
        operation,
        algorithm,
    );
    span.record("otel.name", format!("{scope}.{operation}"));
    span
}
