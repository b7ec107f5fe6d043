//! The server plumbing's integration tests, one module per area.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

mod server;
mod surfaces;
mod swagger_ui;
