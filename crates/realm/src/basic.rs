//! Strict `Authorization: Basic` parsing (RFC 7617).
//!
//! Accepted: scheme `Basic` (any case), one or more spaces, then standard base64 *with* padding of
//! UTF-8 `user-id ":" password`, split at the first colon. Bounded: header ≤ 4 KiB, user-id ≤ 256
//! bytes, password ≤ 1024 bytes; the user-id must be non-empty; neither may contain control characters.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Longest `Authorization` header value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Longest user-id accepted, in bytes.
pub const MAX_USERNAME_LEN: usize = 256;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Credentials from a Basic header. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The user-id.
    pub username: String,
    /// The password, zeroized on drop.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a header is not acceptable Basic credentials. Messages never contain the header's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    /// The scheme is not `Basic` (another authenticator may handle it).
    #[error("not a Basic authorization")]
    NotBasic,
    /// The header is longer than [`MAX_HEADER_LEN`].
    #[error("authorization header too long")]
    HeaderTooLong,
    /// The credentials are not standard padded base64.
    #[error("Basic credentials are not valid base64")]
    Base64,
    /// The decoded credentials are not UTF-8.
    #[error("Basic credentials are not UTF-8")]
    Utf8,
    /// There is no colon between user-id and password.
    #[error("Basic credentials have no colon")]
    NoColon,
    /// The user-id is empty.
    #[error("Basic user-id is empty")]
    EmptyUsername,
    /// The user-id is longer than [`MAX_USERNAME_LEN`].
    #[error("Basic user-id too long")]
    UsernameTooLong,
    /// The password is longer than [`MAX_PASSWORD_LEN`].
    #[error("Basic password too long")]
    PasswordTooLong,
    /// The user-id or password contains a control character.
    #[error("Basic credentials contain control characters")]
    ControlCharacter,
}

/// Parses an `Authorization` header value (e.g. `HeaderValue::as_bytes()`).
pub fn parse(header: &[u8]) -> Result<Credentials, BasicError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(BasicError::HeaderTooLong);
    }
    let scheme_end = header
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(header.len());
    if !header[..scheme_end].eq_ignore_ascii_case(b"basic") {
        return Err(BasicError::NotBasic);
    }
    let token = header[scheme_end..]
        .iter()
        .position(|&b| b != b' ')
        .map(|i| &header[scheme_end + i..])
        .unwrap_or_default();
    if token.is_empty() || scheme_end == header.len() {
        return Err(BasicError::Base64);
    }
    // STANDARD requires canonical padding and refuses whitespace and the url-safe alphabet.
    let decoded = Zeroizing::new(STANDARD.decode(token).map_err(|_| BasicError::Base64)?);
    let text = std::str::from_utf8(&decoded).map_err(|_| BasicError::Utf8)?;
    let (username, password) = text.split_once(':').ok_or(BasicError::NoColon)?;
    if username.is_empty() {
        return Err(BasicError::EmptyUsername);
    }
    if username.len() > MAX_USERNAME_LEN {
        return Err(BasicError::UsernameTooLong);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(BasicError::PasswordTooLong);
    }
    if username
        .chars()
        .chain(password.chars())
        .any(char::is_control)
    {
        return Err(BasicError::ControlCharacter);
    }
    Ok(Credentials {
        username: username.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    })
}

/// Builds a header value for `username` and `password` (for clients and tests).
pub fn encode(username: &str, password: &str) -> String {
    let joined = Zeroizing::new(format!("{username}:{password}"));
    format!("Basic {}", STANDARD.encode(joined.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn parses_the_rfc_example_and_round_trips() {
        // RFC 7617 §2: Aladdin / open sesame.
        let c = parse(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(c.username, "Aladdin");
        assert_eq!(c.password.as_str(), "open sesame");
        let c = parse(encode("demo-user", "demo-user-password").as_bytes()).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("demo-user", "demo-user-password")
        );
    }

    #[test]
    fn splits_at_the_first_colon_and_allows_empty_password_and_utf8() {
        let c = parse(format!("basic {}", b64("u:p:q:".as_bytes())).as_bytes()).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q:"));
        let c = parse(format!("BASIC   {}", b64("u:".as_bytes())).as_bytes()).unwrap();
        assert_eq!(c.password.as_str(), "");
        let c = parse(format!("Basic {}", b64("jürgen:pässwörd€".as_bytes())).as_bytes()).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("jürgen", "pässwörd€")
        );
    }

    #[test]
    fn refuses_bad_headers_with_typed_errors() {
        let cases: Vec<(Vec<u8>, BasicError)> = vec![
            (b"Bearer abc".to_vec(), BasicError::NotBasic),
            (b"Basicx abc".to_vec(), BasicError::NotBasic),
            (b"".to_vec(), BasicError::NotBasic),
            (b"Basic".to_vec(), BasicError::Base64),
            (b"Basic ".to_vec(), BasicError::Base64),
            (
                b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ".to_vec(),
                BasicError::Base64,
            ),
            (
                b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== ".to_vec(),
                BasicError::Base64,
            ),
            // "a:~~~" encodes with '+': the url-safe alphabet is refused.
            (
                format!("Basic {}", b64(b"a:~~~"))
                    .replace('+', "-")
                    .into_bytes(),
                BasicError::Base64,
            ),
            (
                format!("Basic {}", b64(b"\xff\xfe:x")).into_bytes(),
                BasicError::Utf8,
            ),
            (
                format!("Basic {}", b64(b"nocolon")).into_bytes(),
                BasicError::NoColon,
            ),
            (
                format!("Basic {}", b64(b":pw")).into_bytes(),
                BasicError::EmptyUsername,
            ),
            (
                format!("Basic {}", b64(b"u\x00:pw")).into_bytes(),
                BasicError::ControlCharacter,
            ),
            (
                format!("Basic {}", b64(b"u:p\nw")).into_bytes(),
                BasicError::ControlCharacter,
            ),
            (
                format!("Basic {}", b64(format!("{}:p", "u".repeat(257)).as_bytes())).into_bytes(),
                BasicError::UsernameTooLong,
            ),
            (
                format!(
                    "Basic {}",
                    b64(format!("u:{}", "p".repeat(1025)).as_bytes())
                )
                .into_bytes(),
                BasicError::PasswordTooLong,
            ),
            (
                format!("Basic {}", "A".repeat(4096)).into_bytes(),
                BasicError::HeaderTooLong,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                parse(&header).map(|c| c.username),
                Err(want),
                "{}",
                String::from_utf8_lossy(&header)
            );
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let ok = format!("{}:{}", "u".repeat(256), "p".repeat(1024));
        assert!(parse(format!("Basic {}", b64(ok.as_bytes())).as_bytes()).is_ok());
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = parse(encode("alice", "hunter2").as_bytes()).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("alice") && !shown.contains("hunter2"));
    }
}
