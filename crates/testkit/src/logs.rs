//! Test logging, installed once per test process.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Server logs go to the test's captured output (shown when a test fails; `RUST_LOG` sets the
/// level, `info` by default) and audit events are also kept in memory, so that tests can query
/// them with `cryptoutil_server::audit::read`. Later calls, in the same process, do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(filter),
        )
        .with(cryptoutil_server::audit::layer())
        .try_init();
}
