//! The KMS: barrier, storage, elastic and material keys, and its HTTP API.
//!
//! - [`model`]: domain types (tenants, elastic and material keys, barrier keys, paging).
//! - [`store`]: the storage traits the barrier and the key service are written against.

pub mod config;
pub mod model;
pub mod storage;
pub mod store;
