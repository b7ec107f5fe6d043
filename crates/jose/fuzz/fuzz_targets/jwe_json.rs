#![no_main]
//! Arbitrary bytes as a JWE JSON serialization.
use cryptoutil_jose::{ContentEncryption as E, JweAlgorithm as A, jwe};
use libfuzzer_sys::fuzz_target;

#[path = "keys.rs"]
mod keys;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let k = keys::keys();
    for (key, alg, enc) in [
        (&k.oct32, A::A256KW, E::A256GCM),
        (&k.oct16, A::Dir, E::A128GCM),
        (&k.oct32, A::A256GCMKW, E::A128CbcHs256),
        (&k.p256, A::EcdhEsA128KW, E::A256GCM),
        (&k.x25519, A::EcdhEs, E::A256GCM),
    ] {
        let _ = jwe::decrypt_json(key, alg, enc, s);
    }
});
