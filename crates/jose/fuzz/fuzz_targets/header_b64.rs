#![no_main]
//! Strict base64url and header parsing: decode∘encode is the identity on accepted input, and
//! header parsing/crit checks never panic.
use cryptoutil_jose::header::{Header, check_crit};
use cryptoutil_jose::{KeyAlgorithm, b64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = b64::decode(data, "fuzz") {
        assert_eq!(b64::encode(&decoded).as_bytes(), data, "non-canonical base64url accepted");
    }
    let encoded = b64::encode(data);
    assert_eq!(b64::decode(encoded.as_bytes(), "fuzz").unwrap(), data);
    if let Ok(h) = Header::parse(data) {
        let _ = check_crit(h.members(), &[]);
        let _ = check_crit(h.members(), &["exp", "b64"]);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(a) = KeyAlgorithm::parse(s) {
            assert_eq!(a.to_string(), s);
        }
    }
});
