//! With no exporter activated, instrumentation does nothing at all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

#[test]
fn everything_is_a_no_op_until_activated() {
    assert!(!cryptoutil_telemetry::enabled());
    assert!(cryptoutil_telemetry::crypto_span("kms", "encrypt", "A256GCM").is_none());
    let mut headers = http::HeaderMap::new();
    let span = tracing::info_span!("outer");
    span.in_scope(|| cryptoutil_telemetry::inject(&mut headers));
    assert!(headers.is_empty());
    cryptoutil_telemetry::set_remote_parent(&span, &headers);
    cryptoutil_telemetry::http_request(&http::Method::GET, Some("/x"), 200, Duration::ZERO);
    cryptoutil_telemetry::crypto_operation("sign", "ES256");
    cryptoutil_telemetry::barrier_cache_lookup("content", true);
    cryptoutil_telemetry::credential_cache_lookup("token", false);
    cryptoutil_telemetry::rename(&span, "renamed".to_owned());
    assert!(!cryptoutil_telemetry::enabled());
}
