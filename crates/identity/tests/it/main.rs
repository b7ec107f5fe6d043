//! Identity's integration tests, one module per area.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

// In a test a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod common;
mod device;
mod dpop;
mod exchange;
mod fuzz_corpus;
mod metadata_document;
mod mfa_policy;
mod mfa_totp;
mod multi_instance;
mod pages;
mod passkeys;
mod protocol;
mod registration;
mod resource_server;
mod resources;
mod storage;
