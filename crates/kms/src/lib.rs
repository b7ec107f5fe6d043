//! The KMS: barrier, storage, elastic and material keys, and its HTTP API (SPEC §3).
//!
//! - [`model`]: domain types (tenants, elastic and material keys, barrier keys, paging).
//! - [`store`]: the storage traits the barrier and the key service are written against.
//! - [`storage`]: those traits on SQLite and PostgreSQL (schema/database per tenant).
//! - [`barrier`]: unseal keys → root → per-tenant intermediate → per-elastic-key content keys.
//! - [`keys`]: the key service: lifecycle rules and crypto operations, free of HTTP and SQL.
//! - [`api`]: the HTTP surfaces, OpenAPI document and Swagger UI.
//! - [`server`]: assembles and starts a KMS.

pub mod api;
pub mod auth;
pub mod barrier;
mod cache;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod keys;
pub mod model;
pub mod seed;
pub mod server;
pub mod storage;
pub mod store;
pub mod users;
