#![no_main]
//! Arbitrary bytes as a compact JWS: verification must fail cleanly (or succeed) but never panic.
use cryptoutil_jose::{JwsAlgorithm, jws};
use libfuzzer_sys::fuzz_target;

#[path = "keys.rs"]
mod keys;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let k = keys::keys();
    let _ = jws::peek_header(s);
    for (key, alg) in [
        (&k.oct32, JwsAlgorithm::HS256),
        (&k.oct64, JwsAlgorithm::HS512),
        (&k.p256, JwsAlgorithm::ES256),
        (&k.p521, JwsAlgorithm::ES512),
        (&k.ed25519, JwsAlgorithm::EdDSA),
        (&k.rsa, JwsAlgorithm::RS256),
        (&k.rsa, JwsAlgorithm::PS256),
    ] {
        let _ = jws::verify(key, alg, s);
    }
});
