//! Shared HTTP plumbing for every cryptoutil server: configuration loading, HTTPS listeners,
//! the admin API, RFC 7807 problem responses, security middleware and logging.

pub mod config;
