//! Test logging, installed once per test process.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Server logs at `info` and above go to the test's captured output (shown when a test fails)
/// and audit events are also kept in memory, so that tests can query them with
/// `cryptoutil_server::audit::read`. Later calls, in the same process, do nothing.
pub fn init() {
    // A global level filter, not a per-layer one on the log output: with the latter the audit
    // layer missed events (the KMS's refused authentications) that the tests look for.
    let _ = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .with(cryptoutil_server::audit::layer())
        .try_init();
}
