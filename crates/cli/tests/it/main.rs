//! End-to-end tests of the `cryptoutil` binary, one module per area.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

// In a test a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod common;
mod demo;
mod deployments;
mod faults;
mod inventory;
mod login;
mod security;
mod sign_in;
mod telemetry;
mod version;
