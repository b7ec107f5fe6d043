//! The KMS: barrier, storage, elastic and material keys, and its HTTP API.
//!
//! - [`barrier`]: keys at rest (unseal → root → intermediate → content keys).
//! - [`model`]: domain types (tenants, elastic and material keys, barrier keys, paging).
//! - [`store`]: the storage traits the barrier and the key service are written against.

pub mod barrier;
pub mod config;
pub mod model;
pub mod store;
