//! `cargo fuzz run dpop`: Identity's DPoP proof verifier (RFC 9449) on untrusted `DPoP` header
//! values; see `cryptoutil_identity::fuzzing::dpop`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_identity::fuzzing::dpop(data));
