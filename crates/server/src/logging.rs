//! Structured logging through `tracing`: JSON lines on stderr by default (written in batches by
//! one thread: [`BatchedWriter`]; [`flush`] before exiting), the audit trail
//! ([`crate::audit`]) kept for the admin API whatever the log level, and OTLP traces and logs
//! when telemetry is set up ([`crate::telemetry`]).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, LoggingSettings};
use crate::telemetry::Telemetry;

mod batched;
mod json_lines;

pub use batched::{BatchedWriter, flush};
pub use json_lines::JsonLines;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
/// Calling it again (as tests and the in-process demo do) keeps the first subscriber.
pub fn init(settings: &LoggingSettings) {
    init_with_telemetry(settings, None);
}

/// [`init`], adding the layers of `telemetry` (spans → OTLP traces, events → OTLP logs).
pub fn init_with_telemetry(settings: &LoggingSettings, telemetry: Option<&Telemetry>) {
    let lines = tracing_subscriber::fmt::layer().with_writer(BatchedWriter::stderr());
    let lines = match settings.format {
        LogFormat::Json => lines
            .fmt_fields(json_lines::span_fields())
            .event_format(JsonLines)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    let exported = telemetry.map(|t| t.layers(filter(settings)));
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(filter(settings)))
        .with(crate::audit::layer())
        .with(exported)
        .try_init();
}

/// The level filter: `RUST_LOG` when set and valid, else the configured level, else `info`.
pub fn filter(settings: &LoggingSettings) -> EnvFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&settings.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}
