//! `cargo fuzz run jose_compact`: see `cryptoutil_jose::fuzzing::jose_compact` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_jose::fuzzing::jose_compact(data));
