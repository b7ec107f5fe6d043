//! The TLS crate's integration tests, one module per area.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

mod ca_chain;
mod common;
mod handshake;
mod reload;
