//! The metric instruments (OpenTelemetry semantic conventions where they exist). Their names are
//! a contract with the dashboards in `deployments/telemetry`.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

use crate::ACTIVE;

/// `http.server.request.duration`: seconds per request, by `http.request.method`, `http.route`
/// (the matched route, absent when none matched) and `http.response.status_code`.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http.server.request.duration";
/// `cryptoutil.crypto.operations`: crypto operations by `operation` and `algorithm`.
const CRYPTO_OPERATIONS: &str = "cryptoutil.crypto.operations";
/// `cryptoutil.barrier.cache.lookups`: KMS key-cache lookups by `result` (`hit`/`miss`) and
/// `layer` (`intermediate`, `content`, `material`).
const BARRIER_CACHE_LOOKUPS: &str = "cryptoutil.barrier.cache.lookups";
/// `cryptoutil.credential.cache.lookups`: verified-credential lookups by `result` and `cache`
/// (`password`: Basic credentials; `token`: bearer tokens).
const CREDENTIAL_CACHE_LOOKUPS: &str = "cryptoutil.credential.cache.lookups";

/// Bucket boundaries the semantic conventions advise for `http.server.request.duration`.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Every instrument, made once when telemetry is activated.
pub(crate) struct Instruments {
    http_duration: Histogram<f64>,
    crypto: Counter<u64>,
    barrier_cache: Counter<u64>,
    credential_cache: Counter<u64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            http_duration: meter
                .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
                .with_unit("s")
                .with_description("Duration of HTTP server requests.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            crypto: meter
                .u64_counter(CRYPTO_OPERATIONS)
                .with_unit("{operation}")
                .with_description("Crypto operations by operation and algorithm.")
                .build(),
            barrier_cache: meter
                .u64_counter(BARRIER_CACHE_LOOKUPS)
                .with_unit("{lookup}")
                .with_description("Lookups of unwrapped keys in the KMS key caches.")
                .build(),
            credential_cache: meter
                .u64_counter(CREDENTIAL_CACHE_LOOKUPS)
                .with_unit("{lookup}")
                .with_description("Lookups of verified credentials and tokens.")
                .build(),
        }
    }
}

/// Records one HTTP server request.
pub fn http_request(method: &http::Method, route: Option<&str>, status: u16, elapsed: Duration) {
    let Some(i) = ACTIVE.get() else { return };
    let method = KeyValue::new("http.request.method", method.as_str().to_owned());
    let status = KeyValue::new("http.response.status_code", i64::from(status));
    let seconds = elapsed.as_secs_f64();
    match route {
        Some(route) => i.http_duration.record(
            seconds,
            &[
                method,
                KeyValue::new("http.route", route.to_owned()),
                status,
            ],
        ),
        None => i.http_duration.record(seconds, &[method, status]),
    }
}

/// Counts one crypto operation.
pub fn crypto_operation(operation: &'static str, algorithm: &str) {
    let Some(i) = ACTIVE.get() else { return };
    i.crypto.add(
        1,
        &[
            KeyValue::new("operation", operation),
            KeyValue::new("algorithm", algorithm.to_owned()),
        ],
    );
}

fn result(hit: bool) -> KeyValue {
    KeyValue::new("result", if hit { "hit" } else { "miss" })
}

/// Counts one lookup in a KMS key cache (`layer`: `intermediate`, `content`, `material`).
pub fn barrier_cache_lookup(layer: &'static str, hit: bool) {
    let Some(i) = ACTIVE.get() else { return };
    i.barrier_cache
        .add(1, &[result(hit), KeyValue::new("layer", layer)]);
}

/// Counts one lookup in a verified-credential cache (`cache`: `password` or `token`).
pub fn credential_cache_lookup(cache: &'static str, hit: bool) {
    let Some(i) = ACTIVE.get() else { return };
    i.credential_cache
        .add(1, &[result(hit), KeyValue::new("cache", cache)]);
}
