//! `cargo fuzz run client_metadata`: dynamic client registration's metadata parser and policy
//! (RFC 7591 bodies); see `cryptoutil_identity::fuzzing::client_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_identity::fuzzing::client_metadata(data));
