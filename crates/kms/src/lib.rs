//! The KMS: barrier, storage, elastic and material keys, and its HTTP API (SPEC §3).
//!
//! - [`model`]: domain types (tenants, elastic and material keys, barrier keys, paging).
//! - [`repository`]: the traits the barrier and the key service are written against (what they
//!   need from a database), so they never see SQL.
//! - [`storage`]: those traits on SQLite and PostgreSQL (schema/database per tenant).
//! - [`barrier`]: unseal keys → root → per-tenant intermediate → per-elastic-key content keys.
//! - [`scopes`]: every scope rule: the hierarchy, the route → scope table, the admin rule.
//! - [`keys`]: the key service: lifecycle rules and crypto operations, free of HTTP and SQL.
//! - [`audit`]: the typed audit event and the sinks it is written to.
//! - [`inventory`]: the cryptographic inventory (keys, quantum status, last use, CycloneDX CBOM).
//! - [`system`]: the system principal (the KMS acting without a caller).
//! - [`api`]: the HTTP surfaces, OpenAPI document and Swagger UI.
//! - [`server`]: assembles and starts a KMS; [`tasks`]: its background tasks, owned together.

pub mod api;
pub mod audit;
pub mod auth;
pub mod barrier;
mod cache;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod inventory;
pub mod keys;
pub mod model;
pub mod repository;
pub mod scopes;
pub mod seed;
pub mod server;
pub mod storage;
pub mod system;
pub mod tasks;
pub mod users;
