//! `cargo fuzz run oauth_forms`: Identity's request parsers (token, authorize, PAR,
//! introspection/revocation forms, client authentication, userinfo). Byte 0 picks the request
//! kind; see `cryptoutil_identity::fuzzing::oauth_forms`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cryptoutil_identity::fuzzing::oauth_forms(data));
