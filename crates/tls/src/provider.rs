//! The one rustls crypto provider of the workspace: aws-lc-rs.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider used everywhere: aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
