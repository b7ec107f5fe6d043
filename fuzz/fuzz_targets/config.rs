//! `cargo fuzz run config`: the YAML configuration loaders. Byte 0 picks the loader (`'0'`
//! kms.yml, `'1'` realms.yml, `'2'` the KMS seed, `'3'` identity.yml, `'4'` rs.yml, `'5'` the
//! Identity seed); each crate's entry point ignores the other's. See
//! `cryptoutil_kms::fuzzing::config` and `cryptoutil_identity::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cryptoutil_kms::fuzzing::config(data);
    cryptoutil_identity::fuzzing::config(data);
});
