//! Strict JSON parsing for headers and keys, and the parsed [`Header`] type.
//!
//! `serde_json` silently keeps the last of duplicate member names; JOSE requires rejecting them
//! (RFC 7515 §5.2, RFC 7516 §5.2), so objects are parsed with a visitor that fails on duplicates
//! at any depth and on nesting deeper than [`crate::limits::MAX_JSON_DEPTH`].

use core::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{JoseError, Result};
use crate::limits::{MAX_HEADER_LEN, MAX_JSON_DEPTH};

/// Header parameters registered by RFC 7515/7516/7518 (and RFC 7797 `b64`), which `crit` must not name.
pub const REGISTERED: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc",
    "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
];

const DUP_PREFIX: &str = "\u{0}dup:";

struct StrictSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> core::result::Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor { depth: self.depth })
    }
}

struct StrictVisitor {
    depth: usize,
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> core::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> core::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> core::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> core::result::Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> core::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> core::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> core::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> core::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Value, A::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut v = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed {
            depth: self.depth + 1,
        })? {
            v.push(item);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> core::result::Result<Value, A::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed {
                depth: self.depth + 1,
            })?;
            if m.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format_args!("{DUP_PREFIX}{shown}")));
            }
            m.insert(key, value);
        }
        Ok(Value::Object(m))
    }
}

/// Parses a JSON object strictly: no duplicate member names at any depth, bounded depth,
/// no trailing data. `what` names the input in errors.
///
/// # Errors
/// [`JoseError::DuplicateMember`], [`JoseError::Json`] or [`JoseError::Malformed`].
pub fn parse_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = (&mut de)
        .deserialize_any(StrictVisitor { depth: 0 })
        .map_err(|e| map_json_err(&e, what))?;
    de.end().map_err(|_| JoseError::Json(what))?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(JoseError::Malformed("expected a JSON object")),
    }
}

fn map_json_err(e: &serde_json::Error, what: &'static str) -> JoseError {
    let msg = e.to_string();
    if let Some(start) = msg.find(DUP_PREFIX) {
        let rest = &msg[start + DUP_PREFIX.len()..];
        let name = rest.split(" at line").next().unwrap_or(rest);
        return JoseError::DuplicateMember(name.to_owned());
    }
    JoseError::Json(what)
}

/// A parsed JOSE header (protected, or the joint header of a JWE JSON recipient).
///
/// The raw member map is kept so callers can read custom fields (for example the KMS `context`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    members: Map<String, Value>,
}

impl Header {
    /// Wraps an already-validated member map.
    #[must_use]
    pub fn from_map(members: Map<String, Value>) -> Self {
        Self { members }
    }

    /// Parses a decoded header (JSON bytes) strictly, enforcing [`MAX_HEADER_LEN`].
    ///
    /// # Errors
    /// Size, JSON and duplicate-member errors.
    pub fn parse(json: &[u8]) -> Result<Self> {
        if json.len() > MAX_HEADER_LEN {
            return Err(JoseError::TooLarge {
                what: "header",
                limit: MAX_HEADER_LEN,
            });
        }
        Ok(Self {
            members: parse_object(json, "header")?,
        })
    }

    /// All members.
    #[must_use]
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// Consumes the header, returning its members.
    #[must_use]
    pub fn into_members(self) -> Map<String, Value> {
        self.members
    }

    /// A member by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// A string member; `Ok(None)` when absent, an error when present but not a string.
    ///
    /// # Errors
    /// [`JoseError::InvalidHeader`] when the member is not a string.
    pub fn get_str(&self, name: &str) -> Result<Option<&str>> {
        match self.members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(JoseError::InvalidHeader(name.to_owned())),
        }
    }

    /// The `alg` member.
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.members.get("alg").and_then(Value::as_str)
    }

    /// The `enc` member.
    #[must_use]
    pub fn enc(&self) -> Option<&str> {
        self.members.get("enc").and_then(Value::as_str)
    }

    /// The `kid` member.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.members.get("kid").and_then(Value::as_str)
    }

    /// The `typ` member.
    #[must_use]
    pub fn typ(&self) -> Option<&str> {
        self.members.get("typ").and_then(Value::as_str)
    }
}

/// Validates `crit` (RFC 7515 §4.1.11): when present it must be a non-empty array of unique
/// strings, none of them a registered parameter, each present in `header` and each in
/// `understood`. This crate implements no extensions, so callers pass `&[]` unless they
/// process an extension themselves.
///
/// # Errors
/// [`JoseError::Crit`].
pub fn check_crit(header: &Map<String, Value>, understood: &[&str]) -> Result<()> {
    let Some(crit) = header.get("crit") else {
        return Ok(());
    };
    let Value::Array(names) = crit else {
        return Err(JoseError::Crit("must be an array".into()));
    };
    if names.is_empty() {
        return Err(JoseError::Crit("must not be empty".into()));
    }
    let mut seen: Vec<&str> = Vec::with_capacity(names.len());
    for n in names {
        let Value::String(n) = n else {
            return Err(JoseError::Crit("names must be strings".into()));
        };
        let shown = crate::jwa::truncate(n);
        if REGISTERED.contains(&n.as_str()) {
            return Err(JoseError::Crit(format!(
                "names registered parameter {shown:?}"
            )));
        }
        if seen.contains(&n.as_str()) {
            return Err(JoseError::Crit(format!("duplicate name {shown:?}")));
        }
        seen.push(n);
        if !header.contains_key(n) {
            return Err(JoseError::Crit(format!("{shown:?} not present in header")));
        }
        if !understood.contains(&n.as_str()) {
            return Err(JoseError::Crit(format!(
                "extension {shown:?} not understood"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(matches!(
            parse_object(br#"{"alg":"HS256","alg":"none"}"#, "h"),
            Err(JoseError::DuplicateMember(n)) if n == "alg"
        ));
        assert!(matches!(
            parse_object(br#"{"epk":{"x":"a","x":"b"}}"#, "h"),
            Err(JoseError::DuplicateMember(_))
        ));
        assert!(parse_object(br#"{"a":1} x"#, "h").is_err());
        assert!(parse_object(br#"[1]"#, "h").is_err());
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        assert!(parse_object(format!("{{\"a\":{deep}}}").as_bytes(), "h").is_err());
        assert!(parse_object(br#"{"a":{"b":[1,2,{"c":null}]}}"#, "h").is_ok());
    }

    #[test]
    fn crit_rules() {
        let h = |s: &str| parse_object(s.as_bytes(), "h").unwrap();
        assert!(check_crit(&h(r#"{"alg":"HS256"}"#), &[]).is_ok());
        assert!(check_crit(&h(r#"{"crit":[]}"#), &[]).is_err());
        assert!(check_crit(&h(r#"{"crit":"x"}"#), &[]).is_err());
        assert!(check_crit(&h(r#"{"crit":["alg"],"alg":"x"}"#), &[]).is_err());
        assert!(check_crit(&h(r#"{"crit":["exp"],"exp":1}"#), &[]).is_err());
        assert!(check_crit(&h(r#"{"crit":["exp"],"exp":1}"#), &["exp"]).is_ok());
        assert!(check_crit(&h(r#"{"crit":["exp"]}"#), &["exp"]).is_err());
        assert!(check_crit(&h(r#"{"crit":["exp","exp"],"exp":1}"#), &["exp"]).is_err());
    }
}
