//! `cargo fuzz run jose_json`: see `cryptoutil_jose::fuzzing::jose_json` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_jose::fuzzing::jose_json(data));
