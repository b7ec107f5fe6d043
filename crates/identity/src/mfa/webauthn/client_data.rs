//! The client data (WebAuthn Level 3 §7.1 steps 5–12, §7.2 steps 10–15): what the browser
//! says it was asked, and where.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::WebAuthnError;

/// The shortest challenge a relying party may issue (WebAuthn §13.4.3: at least 16 bytes).
pub(super) const MIN_CHALLENGE: usize = 16;

/// Which ceremony a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ceremony {
    /// `navigator.credentials.create()`.
    Create,
    /// `navigator.credentials.get()`.
    Get,
}

impl Ceremony {
    fn client_data_type(self) -> &'static str {
        match self {
            Self::Create => "webauthn.create",
            Self::Get => "webauthn.get",
        }
    }
}

/// `CollectedClientData`: the members checked; others (such as `extraData`) are ignored as
/// the specification requires. Duplicate members are refused by the parser.
#[derive(Deserialize)]
struct CollectedClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin", default)]
    top_origin: Option<serde_json::Value>,
}

/// Checks the client data JSON of a `ceremony` against the expected challenge and origins.
pub(super) fn check(
    json: &[u8],
    ceremony: Ceremony,
    challenge: &[u8],
    origins: &[String],
) -> Result<(), WebAuthnError> {
    let data: CollectedClientData =
        serde_json::from_slice(json).map_err(|_| WebAuthnError::Malformed("client data"))?;
    if data.kind != ceremony.client_data_type() {
        return Err(WebAuthnError::WrongType);
    }
    let received = URL_SAFE_NO_PAD
        .decode(data.challenge.as_bytes())
        .map_err(|_| WebAuthnError::ChallengeMismatch)?;
    if challenge.len() < MIN_CHALLENGE || !bool::from(received.as_slice().ct_eq(challenge)) {
        return Err(WebAuthnError::ChallengeMismatch);
    }
    if !origins.contains(&data.origin) {
        return Err(WebAuthnError::OriginNotAllowed);
    }
    if data.cross_origin == Some(true) || data.top_origin.is_some() {
        return Err(WebAuthnError::CrossOrigin);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const CHALLENGE: [u8; 16] = [7; 16];

    fn json(kind: &str, challenge: &[u8], origin: &str, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}"{extra}}}"#,
            URL_SAFE_NO_PAD.encode(challenge)
        )
        .into_bytes()
    }

    fn origins() -> Vec<String> {
        vec!["https://id.example".to_owned()]
    }

    fn run(bytes: &[u8], ceremony: Ceremony) -> Result<(), WebAuthnError> {
        check(bytes, ceremony, &CHALLENGE, &origins())
    }

    #[test]
    fn accepts_the_expected_ceremony() {
        let good = json("webauthn.get", &CHALLENGE, "https://id.example", "");
        assert_eq!(run(&good, Ceremony::Get), Ok(()));
        let extended = json(
            "webauthn.create",
            &CHALLENGE,
            "https://id.example",
            r#","crossOrigin":false,"extraData":"x""#,
        );
        assert_eq!(run(&extended, Ceremony::Create), Ok(()));
    }

    #[test]
    fn refuses_the_other_ceremony_and_unknown_types() {
        let create = json("webauthn.create", &CHALLENGE, "https://id.example", "");
        assert_eq!(run(&create, Ceremony::Get), Err(WebAuthnError::WrongType));
        let other = json("payment.get", &CHALLENGE, "https://id.example", "");
        assert_eq!(run(&other, Ceremony::Get), Err(WebAuthnError::WrongType));
    }

    #[test]
    fn refuses_another_challenge() {
        let mut other = CHALLENGE;
        other[15] ^= 1;
        let bytes = json("webauthn.get", &other, "https://id.example", "");
        assert_eq!(
            run(&bytes, Ceremony::Get),
            Err(WebAuthnError::ChallengeMismatch)
        );
        let longer = json("webauthn.get", &[7; 17], "https://id.example", "");
        assert_eq!(
            run(&longer, Ceremony::Get),
            Err(WebAuthnError::ChallengeMismatch)
        );
        let padded = br#"{"type":"webauthn.get","challenge":"!!","origin":"https://id.example"}"#;
        assert_eq!(
            run(padded, Ceremony::Get),
            Err(WebAuthnError::ChallengeMismatch)
        );
    }

    #[test]
    fn refuses_a_short_expected_challenge() {
        let bytes = json("webauthn.get", &[1; 8], "https://id.example", "");
        assert_eq!(
            check(&bytes, Ceremony::Get, &[1; 8], &origins()),
            Err(WebAuthnError::ChallengeMismatch)
        );
    }

    #[test]
    fn refuses_other_origins_exactly() {
        for origin in [
            "https://evil.example",
            "https://id.example:443",
            "https://id.example/",
            "http://id.example",
            "https://ID.example",
        ] {
            let bytes = json("webauthn.get", &CHALLENGE, origin, "");
            assert_eq!(
                run(&bytes, Ceremony::Get),
                Err(WebAuthnError::OriginNotAllowed),
                "{origin}"
            );
        }
    }

    #[test]
    fn refuses_cross_origin_and_top_origin() {
        let cross = json(
            "webauthn.get",
            &CHALLENGE,
            "https://id.example",
            r#","crossOrigin":true"#,
        );
        assert_eq!(run(&cross, Ceremony::Get), Err(WebAuthnError::CrossOrigin));
        let top = json(
            "webauthn.get",
            &CHALLENGE,
            "https://id.example",
            r#","topOrigin":"https://id.example""#,
        );
        assert_eq!(run(&top, Ceremony::Get), Err(WebAuthnError::CrossOrigin));
    }

    #[test]
    fn refuses_malformed_json() {
        for bytes in [
            &b"not json"[..],
            b"{}",
            b"[]",
            b"\xff\xfe",
            br#"{"type":"webauthn.get","type":"webauthn.get","challenge":"BwcHBwcHBwcHBwcHBwcHBw","origin":"https://id.example"}"#,
            br#"{"type":1,"challenge":"BwcHBwcHBwcHBwcHBwcHBw","origin":"https://id.example"}"#,
        ] {
            assert_eq!(
                run(bytes, Ceremony::Get),
                Err(WebAuthnError::Malformed("client data")),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
