//! The CLI's OAuth client: signing in with the device authorization grant (RFC 8628) and using
//! the tokens afterwards.
//!
//! - [`http`]: the HTTPS client (TLS 1.3 through `cryptoutil_tls`, bounded answers) and the
//!   OAuth error document.
//! - [`discovery`]: RFC 8414 authorization server metadata.
//! - [`device`]: the device authorization request and the polling loop.
//! - [`token`]: token responses and the refresh grant.
//! - [`revoke`]: RFC 7009 revocation.
//! - [`store`]: the token store in the user's configuration directory (0600, atomic writes).
//! - [`display`]: what the user sees: the code, the address, a terminal QR code.
//!
//! Nothing here prints a token; only `cryptoutil identity token` does, on request.

pub mod device;
pub mod discovery;
pub mod display;
pub mod http;
pub mod revoke;
pub mod store;
pub mod token;

use std::fmt;

/// Longest error description shown from a server (the rest is cut).
const MAX_DESCRIPTION: usize = 300;

/// An OAuth error answer (RFC 6749 §5.2): the `error` code and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code, e.g. `authorization_pending`.
    pub code: String,
    /// The `error_description`, made printable and cut to a sane length.
    pub description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.code),
            None => f.write_str(&self.code),
        }
    }
}

/// Why a request to the authorization server did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No usable answer: connection, TLS, timeout, or an answer that breaks the protocol.
    Http(String),
    /// The server answered with an OAuth error.
    OAuth(OAuthError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(message) => f.write_str(message),
            Self::OAuth(error) => write!(f, "the server answered {error}"),
        }
    }
}

/// `s` with control characters replaced and cut to `max` characters, so text a server chose
/// cannot rewrite the terminal or flood it.
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// Whether `token` is a well-formed token value to keep and send in a header: 1 to `max`
/// visible ASCII characters (RFC 6749 Appendix A: VSCHAR, here without the space).
pub fn token_ok(token: &str, max: usize) -> bool {
    !token.is_empty() && token.len() <= max && token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn printable_removes_control_characters_and_cuts() {
        assert_eq!(printable("a\u{1b}[2Jb", 10), "a?[2Jb");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }

    #[test]
    fn tokens_are_visible_ascii_and_bounded() {
        assert!(token_ok("eyJ.abc-_~+/=", 100));
        assert!(!token_ok("", 100));
        assert!(!token_ok("a b", 100));
        assert!(!token_ok("a\r\nX-Evil: 1", 100));
        assert!(!token_ok("é", 100));
        assert!(!token_ok(&"a".repeat(101), 100));
    }
}
