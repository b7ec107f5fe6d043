#![no_main]
//! Arbitrary bytes as a JWK / JWK set; accepted keys must round-trip through serialization.
use cryptoutil_jose::Jwk;
use cryptoutil_jose::jwk::JwkSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(k) = Jwk::from_json(s) {
        let json = k.to_json(true);
        let back = Jwk::from_json(&json).expect("our own serialization must parse");
        assert_eq!(back.thumbprint(), k.thumbprint());
        assert_eq!(*back.to_json(true), *json);
        let _ = k.to_public();
        let _ = format!("{k:?}");
    }
    let _ = JwkSet::from_json(s);
});
