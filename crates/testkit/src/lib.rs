//! What the integration tests of the workspace share: throwaway PostgreSQL databases
//! ([`postgres`]), the free-port TLS recipe ([`tls`]), test logging ([`logs`]) and the servers
//! started in-process on free ports with real TLS (`kms`, `identity`, behind features).
//!
//! A dev-dependency only: no library or binary of the workspace depends on it.

// A helper that cannot do its job fails the test that called it: these panics are the test
// failures, each with a message that says what could not be done.
#![allow(clippy::expect_used, clippy::panic)]

#[cfg(feature = "identity")]
pub mod identity;
#[cfg(feature = "kms")]
pub mod kms;
pub mod logs;
pub mod postgres;
pub mod tls;
