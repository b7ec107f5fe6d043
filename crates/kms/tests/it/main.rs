//! The KMS's integration tests, one module per area.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

// In a test a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod auth;
mod barrier;
mod common;
mod crypto_module;
mod dpop;
mod faults;
mod federation;
mod fuzz_corpus;
mod inventory;
mod pq;
mod step_up;
mod storage;
mod storage_directory;
mod swagger_ui;
