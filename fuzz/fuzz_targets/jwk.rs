//! `cargo fuzz run jwk`: see `cryptoutil_jose::fuzzing::jwk` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_jose::fuzzing::jwk(data));
