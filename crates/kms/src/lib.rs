//! The KMS: barrier, storage, elastic and material keys, and its HTTP API.
