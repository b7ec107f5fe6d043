#![no_main]
//! Arbitrary bytes as a compact JWE: decryption must fail cleanly (or succeed) but never panic.
use cryptoutil_jose::{ContentEncryption as E, JweAlgorithm as A, jwe};
use libfuzzer_sys::fuzz_target;

#[path = "keys.rs"]
mod keys;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let k = keys::keys();
    let _ = jwe::peek_header(s);
    for (key, alg, enc) in [
        (&k.oct16, A::Dir, E::A128GCM),
        (&k.oct32, A::Dir, E::A128CbcHs256),
        (&k.oct64, A::Dir, E::A256CbcHs512),
        (&k.oct32, A::A256KW, E::A256GCM),
        (&k.oct16, A::A128KW, E::A128CbcHs256),
        (&k.oct32, A::A256GCMKW, E::A256GCM),
        (&k.p256, A::EcdhEs, E::A128GCM),
        (&k.p256, A::EcdhEsA128KW, E::A256GCM),
        (&k.p521, A::EcdhEsA256KW, E::A256CbcHs512),
        (&k.x25519, A::EcdhEs, E::A256GCM),
        (&k.rsa, A::RsaOaep256, E::A256GCM),
    ] {
        let _ = jwe::decrypt(key, alg, enc, s);
    }
});
