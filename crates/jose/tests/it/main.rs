//! The JOSE integration tests: RFC 7520 vectors, Wycheproof, josekit, round trips, the fuzz corpus.
//!
//! One test binary for the whole crate (each file was its own binary, each linking the heavy
//! dependencies again); `cargo test -p <crate> --test it <module>::` runs one file's tests.

// In a test a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fips;
mod fuzz_corpus;
mod josekit_diff;
mod pq;
mod rfc7520;
mod roundtrip;
mod wycheproof;
