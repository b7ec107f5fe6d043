//! `cargo fuzz run client_metadata_document`: Identity's client ID metadata document parser on
//! untrusted bodies; see `cryptoutil_identity::fuzzing::client_metadata_document`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cryptoutil_identity::fuzzing::client_metadata_document(data)
});
