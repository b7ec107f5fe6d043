//! Strict, bounded `application/x-www-form-urlencoded` parsing for request bodies and query
//! strings (the authorization endpoint's GET uses the same rules).
//!
//! - Bounded: body/query length, parameter count, name length and value length (larger for
//!   the parameters that carry JWTs, see [`FormLimits::large_params`]).
//! - Every parameter at most once (RFC 6749 §3.1): a repeated name is `invalid_request`, even
//!   when one of the values is empty. The exceptions are the parameters the RFCs make
//!   repeatable ([`FormLimits::repeatable`]: `resource`, RFC 8707 §2, and `audience`, RFC 8693
//!   §2.1), read with [`FormParams::get_all`].
//! - Empty values are treated as absent ([`FormParams::get`] returns `None`).
//! - `+` is a space; `%XX` must be two hex digits; the result must be UTF-8 without control
//!   characters. Anything else is `invalid_request` (the description names the parameter only
//!   when the name itself is well-formed and short).
//!
//! Values are zeroized on drop (they carry secrets, codes and tokens) and `Debug` shows names only.

use std::fmt;

use zeroize::Zeroize;

use super::error::OAuthError;

/// Default largest body or query string, in bytes.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// Default most parameters.
pub const MAX_PARAMS: usize = 64;
/// Default longest parameter name, in bytes (decoded).
pub const MAX_NAME_LEN: usize = 128;
/// Default longest value, in bytes (decoded).
pub const MAX_VALUE_LEN: usize = 4 * 1024;
/// Default longest value of a [`FormLimits::large_params`] parameter, in bytes (decoded).
pub const MAX_LARGE_VALUE_LEN: usize = 16 * 1024;
/// Parameters that carry JWTs and may be up to [`MAX_LARGE_VALUE_LEN`].
pub const LARGE_PARAMS: &[&str] = &[
    "client_assertion",
    "request",
    "id_token_hint",
    "token",
    "subject_token",
    "actor_token",
];
/// Parameters that may appear more than once (RFC 8707 §2, RFC 8693 §2.1).
pub const REPEATABLE_PARAMS: &[&str] = &["resource", "audience"];

/// Bounds applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimits {
    /// Largest encoded input, in bytes.
    pub max_body_len: usize,
    /// Most parameters (empty ones included).
    pub max_params: usize,
    /// Longest decoded name.
    pub max_name_len: usize,
    /// Longest decoded value.
    pub max_value_len: usize,
    /// Longest decoded value of a parameter named in `large_params`.
    pub max_large_value_len: usize,
    /// Parameters allowed `max_large_value_len`.
    pub large_params: &'static [&'static str],
    /// Parameters that may be repeated (still counted against `max_params`).
    pub repeatable: &'static [&'static str],
}

impl FormLimits {
    /// The defaults (the module's constants).
    pub const DEFAULT: Self = Self {
        max_body_len: MAX_BODY_LEN,
        max_params: MAX_PARAMS,
        max_name_len: MAX_NAME_LEN,
        max_value_len: MAX_VALUE_LEN,
        max_large_value_len: MAX_LARGE_VALUE_LEN,
        large_params: LARGE_PARAMS,
        repeatable: REPEATABLE_PARAMS,
    };

    fn max_value_for(&self, name: &str) -> usize {
        if self.large_params.contains(&name) {
            self.max_large_value_len
        } else {
            self.max_value_len
        }
    }
}

impl Default for FormLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parsed parameters, in the order they appeared.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FormParams {
    params: Vec<(String, String)>,
}

impl fmt::Debug for FormParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormParams")
            .field(
                "names",
                &self.params.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for FormParams {
    fn drop(&mut self) {
        for (_, value) in &mut self.params {
            value.zeroize();
        }
    }
}

impl FormParams {
    /// Parses `input` (a body or a query string without `?`) with `limits`.
    pub fn parse(input: &[u8], limits: &FormLimits) -> Result<Self, OAuthError> {
        if input.len() > limits.max_body_len {
            return Err(OAuthError::invalid_request("the request is too large"));
        }
        let mut out = Self::default();
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if out.params.len() >= limits.max_params {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name, limits.max_name_len)
                .ok_or_else(|| OAuthError::invalid_request("malformed parameter name"))?;
            if name.is_empty() {
                return Err(OAuthError::invalid_request("empty parameter name"));
            }
            let Some(value) = decode(value, limits.max_value_for(&name)) else {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is malformed or too long"
                )));
            };
            if !limits.repeatable.contains(&name.as_str())
                && out.params.iter().any(|(n, _)| *n == name)
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
            out.params.push((name, value));
        }
        Ok(out)
    }

    /// Parses with [`FormLimits::DEFAULT`].
    pub fn parse_default(input: &[u8]) -> Result<Self, OAuthError> {
        Self::parse(input, &FormLimits::DEFAULT)
    }

    /// The value of `name`; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of a repeatable parameter, in order (`get` sees only the first).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `name`, or `invalid_request` naming it (`name` is the caller's constant).
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is required")))
    }

    /// Whether `name` is present with a non-empty value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Non-empty parameters, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of non-empty parameters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is no non-empty parameter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Form-decodes one name or value: `+` → space, `%XX` → byte; UTF-8 without control characters;
/// at most `max` decoded bytes. `None` on any violation.
pub(crate) fn decode(raw: &[u8], max: usize) -> Option<String> {
    // Decoding never grows the input, and never shrinks it below a third.
    if raw.len() > max.saturating_mul(3) {
        return None;
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|&b| hex(b))?;
                let lo = raw.get(i + 2).and_then(|&b| hex(b))?;
                bytes.push(hi << 4 | lo);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    if bytes.len() > max {
        bytes.zeroize();
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => Some(text),
        Ok(mut text) => {
            text.zeroize();
            None
        }
        Err(e) => {
            e.into_bytes().zeroize();
            None
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

    fn parse(s: &str) -> Result<FormParams, OAuthError> {
        FormParams::parse_default(s.as_bytes())
    }

    fn refused(s: &str) -> String {
        let e = parse(s).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{s}");
        e.description.into_owned()
    }

    #[test]
    fn decodes_plus_and_percent_and_keeps_order() {
        let f = parse("grant_type=authorization_code&redirect_uri=https%3A%2F%2Fa.example%2Fcb&state=a+b%2Bc&x=%C3%A9").unwrap();
        assert_eq!(f.get("grant_type"), Some("authorization_code"));
        assert_eq!(f.get("redirect_uri"), Some("https://a.example/cb"));
        assert_eq!(f.get("state"), Some("a b+c"));
        assert_eq!(f.get("x"), Some("é"));
        assert_eq!(
            f.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["grant_type", "redirect_uri", "state", "x"]
        );
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn empty_values_are_absent_and_empty_pairs_skipped() {
        let f = parse("a=&b&&c=1&").unwrap();
        assert_eq!(f.get("a"), None);
        assert_eq!(f.get("b"), None);
        assert!(!f.contains("a"));
        assert_eq!(f.get("c"), Some("1"));
        assert_eq!(f.len(), 1);
        assert!(parse("").unwrap().is_empty());
        let e = f.require("a").unwrap_err();
        assert_eq!(e.description, "parameter a is required");
    }

    #[test]
    fn duplicates_are_refused_even_when_empty() {
        assert_eq!(refused("scope=a&scope=b"), "parameter scope is repeated");
        refused("scope=&scope=b");
        refused("code=x&state=1&code=x");
        // Percent-encoding does not hide a duplicate.
        refused("code=x&%63ode=y");
    }

    #[test]
    fn malformed_input_is_refused() {
        refused("a=%");
        refused("a=%4");
        refused("a=%zz");
        refused("a=%FF"); // not UTF-8
        refused("a=%0A"); // control character
        refused("a=%00");
        refused("=value");
        refused("%ZZ=1");
    }

    #[test]
    fn bounds_are_enforced_and_inclusive() {
        let ok = format!("state={}", "s".repeat(MAX_VALUE_LEN));
        assert!(parse(&ok).is_ok());
        refused(&format!("state={}", "s".repeat(MAX_VALUE_LEN + 1)));
        // Counted after decoding: an escaped value of the same decoded length is fine.
        assert!(parse(&format!("state={}", "%41".repeat(MAX_VALUE_LEN))).is_ok());
        // JWT-carrying parameters get the larger bound.
        assert!(
            parse(&format!(
                "client_assertion={}",
                "a".repeat(MAX_LARGE_VALUE_LEN)
            ))
            .is_ok()
        );
        refused(&format!(
            "client_assertion={}",
            "a".repeat(MAX_LARGE_VALUE_LEN + 1)
        ));
        refused(&format!("{}=1", "n".repeat(MAX_NAME_LEN + 1)));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(refused(&many.join("&")), "too many parameters");
        assert!(parse(&many[..MAX_PARAMS].join("&")).is_ok());
        let big = "a".repeat(MAX_BODY_LEN + 1);
        assert_eq!(refused(&big), "the request is too large");
    }

    #[test]
    fn resource_and_audience_may_repeat() {
        let f = parse("resource=https%3A%2F%2Fa.example&audience=x&resource=urn%3Ab&resource=")
            .unwrap();
        assert_eq!(f.get_all("resource"), ["https://a.example", "urn:b"]);
        assert_eq!(f.get_all("audience"), ["x"]);
        assert_eq!(f.get("resource"), Some("https://a.example"));
        assert!(f.get_all("scope").is_empty());
        // Others still may not.
        refused("scope=a&scope=b");
        let strict = FormLimits {
            repeatable: &[],
            ..FormLimits::DEFAULT
        };
        assert!(FormParams::parse(b"resource=a&resource=b", &strict).is_err());
    }

    #[test]
    fn custom_limits() {
        let limits = FormLimits {
            max_params: 1,
            max_value_len: 3,
            ..FormLimits::DEFAULT
        };
        assert!(FormParams::parse(b"a=123", &limits).is_ok());
        assert!(FormParams::parse(b"a=1234", &limits).is_err());
        assert!(FormParams::parse(b"a=1&b=2", &limits).is_err());
    }

    #[test]
    fn debug_shows_names_only() {
        let f = parse("client_id=c&client_secret=hunter2").unwrap();
        let shown = format!("{f:?}");
        assert!(shown.contains("client_secret") && !shown.contains("hunter2"));
    }
}
