#![no_main]
//! Encrypt-then-decrypt with fuzzer-chosen algorithms, plaintext and extra header must give back
//! the plaintext; tampering with any byte must not panic.
use cryptoutil_jose::{ContentEncryption, JweAlgorithm, jwe};
use libfuzzer_sys::fuzz_target;

#[path = "keys.rs"]
mod keys;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let k = keys::keys();
    let enc = ContentEncryption::ALL[usize::from(data[0]) % ContentEncryption::ALL.len()];
    let choice = usize::from(data[1]) % 6;
    let (key, alg) = match choice {
        0 => (&k.oct32, JweAlgorithm::A256KW),
        1 => (&k.oct16, JweAlgorithm::A128GCMKW),
        2 => (&k.p256, JweAlgorithm::EcdhEs),
        3 => (&k.x25519, JweAlgorithm::EcdhEsA192KW),
        4 => (&k.p521, JweAlgorithm::EcdhEsA128KW),
        _ => (&k.rsa, JweAlgorithm::RsaOaep256),
    };
    let plaintext = &data[3..];
    let mut extra = serde_json::Map::new();
    extra.insert("kid".into(), String::from_utf8_lossy(&plaintext[..plaintext.len().min(8)]).into());
    let token = jwe::encrypt(key, alg, enc, plaintext, Some(&extra)).unwrap();
    let d = jwe::decrypt(key, alg, enc, &token).unwrap();
    assert_eq!(d.plaintext, plaintext);
    // Flip one byte of the token.
    let mut bytes = token.into_bytes();
    let i = usize::from(data[2]) * 7 % bytes.len();
    bytes[i] ^= 0x01;
    if let Ok(s) = String::from_utf8(bytes) {
        let _ = jwe::decrypt(key, alg, enc, &s);
    }
});
