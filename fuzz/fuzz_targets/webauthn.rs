//! `cargo fuzz run webauthn`: Identity's WebAuthn relying-party checks (client data,
//! attestation objects, authenticator data, COSE keys, packed statements and x5c certificates,
//! assertion signatures) on untrusted responses; see `cryptoutil_identity::fuzzing::webauthn`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_identity::fuzzing::webauthn(data));
