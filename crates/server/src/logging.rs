//! Structured logging through `tracing`: JSON lines on stderr by default, and the audit trail
//! ([`crate::audit`]) kept for the admin API whatever the log level.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LoggingSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
/// Calling it again (as tests and the in-process demo do) keeps the first subscriber.
pub fn init(settings: &LoggingSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&settings.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match settings.format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(crate::audit::layer())
        .try_init();
}
