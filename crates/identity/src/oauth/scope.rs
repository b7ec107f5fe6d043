//! Scope strings (RFC 6749 §3.3): `scope-token *( SP scope-token )`, each token
//! `1*( %x21 / %x23-5B / %x5D-7E )`.
//!
//! Parsing is bounded, tolerates repeated spaces, removes duplicates and keeps the order of
//! first appearance (so joined strings are stable). Malformed scopes are `invalid_scope`.

use std::fmt;

use super::error::OAuthError;

/// Longest scope string, in bytes.
pub const MAX_SCOPE_LEN: usize = 2048;
/// Most scope tokens.
pub const MAX_SCOPES: usize = 64;
/// Longest scope token, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// A parsed, de-duplicated scope set in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a space-separated scope string (`""` is the empty set).
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        if text.len() > MAX_SCOPE_LEN {
            return Err(OAuthError::invalid_scope("scope is too long"));
        }
        let mut out: Vec<String> = Vec::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            if !is_scope_token(token) {
                return Err(OAuthError::invalid_scope("scope is malformed"));
            }
            if out.iter().any(|s| s == token) {
                continue;
            }
            if out.len() == MAX_SCOPES {
                return Err(OAuthError::invalid_scope("too many scopes"));
            }
            out.push(token.to_owned());
        }
        Ok(Self(out))
    }

    /// Parses an optional parameter (absent is the empty set).
    pub fn parse_optional(text: Option<&str>) -> Result<Self, OAuthError> {
        text.map_or_else(|| Ok(Self::default()), Self::parse)
    }

    /// A set from stored, already valid scopes (de-duplicated, order kept).
    pub fn from_stored<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out: Vec<String> = Vec::new();
        for s in scopes {
            let s = s.into();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Self(out)
    }

    /// `self`, provided every scope is in `allowed`; otherwise `invalid_scope` naming the first
    /// scope that is not. An empty request stays empty (the caller applies any default).
    pub fn narrow<S: AsRef<str>>(&self, allowed: &[S]) -> Result<Self, OAuthError> {
        match self
            .0
            .iter()
            .find(|s| !allowed.iter().any(|a| a.as_ref() == s.as_str()))
        {
            Some(denied) => Err(OAuthError::invalid_scope(format!(
                "scope {denied} is not allowed"
            ))),
            None => Ok(self.clone()),
        }
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The scopes, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The scopes as a vector (for storage).
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// The space-separated form.
    pub fn join(&self) -> String {
        self.0.join(" ")
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join())
    }
}

/// Whether `token` is one RFC 6749 scope-token, at most [`MAX_TOKEN_LEN`] bytes.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

    #[test]
    fn parses_dedupes_and_keeps_order() {
        let s = Scopes::parse("openid  profile email profile kms:read").unwrap();
        assert_eq!(s.as_slice(), ["openid", "profile", "email", "kms:read"]);
        assert_eq!(s.join(), "openid profile email kms:read");
        assert_eq!(s.to_string(), s.join());
        assert!(s.contains("email") && !s.contains("offline_access"));
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(Scopes::parse_optional(None).unwrap().is_empty());
        assert_eq!(Scopes::from_stored(["a", "b", "a"]).len(), 2);
    }

    #[test]
    fn malformed_and_oversized_scopes_are_invalid_scope() {
        let too_many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        for bad in [
            "openid\tprofile".to_owned(),
            "a\"b".to_owned(),
            "a\\b".to_owned(),
            "café".to_owned(),
            "x".repeat(MAX_TOKEN_LEN + 1),
            "a ".repeat(MAX_SCOPE_LEN),
            too_many.join(" "),
        ] {
            let e = Scopes::parse(&bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidScope);
        }
        // Duplicates do not count against the limit.
        let repeated = vec!["same"; MAX_SCOPES + 10].join(" ");
        assert_eq!(Scopes::parse(&repeated).unwrap().len(), 1);
        assert!(is_scope_token(&"x".repeat(MAX_TOKEN_LEN)));
    }

    #[test]
    fn narrow_allows_subsets_only() {
        let allowed = ["openid", "profile", "email"];
        let req = Scopes::parse("email openid").unwrap();
        assert_eq!(req.narrow(&allowed).unwrap(), req);
        let e = Scopes::parse("openid kms:admin")
            .unwrap()
            .narrow(&allowed)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert_eq!(e.description, "scope kms:admin is not allowed");
        assert!(Scopes::default().narrow(&allowed).unwrap().is_empty());
        let stored = vec!["openid".to_owned()];
        assert!(req.narrow(&stored).is_err());
    }
}
