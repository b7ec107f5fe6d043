//! The KMS: barrier, storage, elastic and material keys, and its HTTP API.
//!
//! Today this crate holds the KMS configuration; the service itself is built in the KMS core issue.

pub mod config;
