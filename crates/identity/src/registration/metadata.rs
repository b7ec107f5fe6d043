//! The client metadata document of RFC 7591 §2 as a client sends it, parsed with bounds.
//!
//! Decisions: unknown fields are ignored and not echoed back (RFC 7591 §2: "the authorization
//! server MUST ignore any client metadata sent by the client that it does not understand"); a
//! known field with a value of the wrong type or one this server does not support is refused
//! (`invalid_client_metadata`, by [`super::policy`]). The body is at most
//! [`MAX_DOCUMENT_BYTES`], nested at most [`MAX_DEPTH`] deep, and must be one JSON object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::MetadataError;

/// Largest accepted registration body (16 KiB: a JWK Set with a few RSA keys fits).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Deepest accepted JSON nesting (`{"jwks":{"keys":[{"x5c":[…]}]}}` is 5).
pub const MAX_DEPTH: usize = 6;

/// The RFC 7591 §2 client metadata (and the RFC 7592 update fields `client_id` and
/// `client_secret`) as sent. Every field is optional here; [`super::policy`] applies the
/// defaults and the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadataDocument {
    /// `redirect_uris`.
    pub redirect_uris: Option<Vec<String>>,
    /// `token_endpoint_auth_method` (default `client_secret_basic`).
    pub token_endpoint_auth_method: Option<String>,
    /// `grant_types` (default `authorization_code`).
    pub grant_types: Option<Vec<String>>,
    /// `response_types` (default `code`).
    pub response_types: Option<Vec<String>>,
    /// `client_name`.
    pub client_name: Option<String>,
    /// `client_uri`.
    pub client_uri: Option<String>,
    /// `logo_uri`.
    pub logo_uri: Option<String>,
    /// `scope`: space-separated.
    pub scope: Option<String>,
    /// `contacts`.
    pub contacts: Option<Vec<String>>,
    /// `tos_uri`.
    pub tos_uri: Option<String>,
    /// `policy_uri`.
    pub policy_uri: Option<String>,
    /// `jwks_uri` (refused: see [`super::policy`]).
    pub jwks_uri: Option<String>,
    /// `jwks`: a JWK Set object.
    pub jwks: Option<Value>,
    /// `software_id`.
    pub software_id: Option<String>,
    /// `software_version`.
    pub software_version: Option<String>,
    /// `software_statement` (consumed before this type is read; see
    /// [`super::software_statement`]).
    pub software_statement: Option<String>,
    /// `application_type` (OpenID Connect Registration): `web` (default) or `native`.
    pub application_type: Option<String>,
    /// `post_logout_redirect_uris` (OpenID Connect RP-Initiated Logout).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: Option<bool>,
    /// `client_id` (RFC 7592 update requests only).
    pub client_id: Option<String>,
    /// `client_secret` (RFC 7592 update requests only).
    pub client_secret: Option<String>,
}

/// True when `bytes` (JSON text) nests arrays and objects at most `max` deep. Brackets inside
/// strings do not count. Linear, no allocation: run before any parser sees the input.
pub fn depth_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses a registration body into its JSON members: bounded in size and depth, one object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, MetadataError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(MetadataError::metadata(format!(
            "the metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    if !depth_within(body, MAX_DEPTH) {
        return Err(MetadataError::metadata(format!(
            "the metadata document nests deeper than {MAX_DEPTH} levels"
        )));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(MetadataError::metadata(
            "the metadata document must be a JSON object",
        )),
        Err(e) => Err(MetadataError::metadata(format!(
            "the metadata document is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// Reads the known fields of `members` (unknown ones are dropped); a known field of the wrong
/// type is `invalid_client_metadata` naming the problem.
pub fn read_document(members: Map<String, Value>) -> Result<ClientMetadataDocument, MetadataError> {
    serde_json::from_value(Value::Object(members)).map_err(|e| {
        // serde's message names the expected type, never echoes a long value.
        let message: String = e.to_string().chars().take(200).collect();
        MetadataError::metadata(format!("a metadata field has the wrong type: {message}"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::registration::error::MetadataErrorCode;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert!(depth_within(br#"{"a":[{"b":"[[[[[[[[["}]}"#, 3));
        assert!(!depth_within(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(depth_within(br#"{"a":"\"[[[[["}"#, 1));
        assert!(!depth_within(&[b'['; 10_000], MAX_DEPTH));
    }

    #[test]
    fn bodies_are_bounded_objects() {
        assert!(parse_object(br#"{"client_name":"x"}"#).is_ok());
        for bad in [
            &b"[]"[..],
            b"\"x\"",
            b"{",
            b"",
            b"{\"a\":1,}",
            &[b'['; 64][..],
        ] {
            let e = parse_object(bad).unwrap_err();
            assert_eq!(e.code, MetadataErrorCode::InvalidClientMetadata);
        }
        let huge = format!(r#"{{"client_name":"{}"}}"#, "a".repeat(MAX_DOCUMENT_BYTES));
        assert!(
            parse_object(huge.as_bytes())
                .unwrap_err()
                .description
                .contains("larger")
        );
    }

    #[test]
    fn unknown_fields_are_dropped_and_wrong_types_refused() {
        let doc = read_document(
            parse_object(
                br#"{"colour":"blue","client_name":"A","redirect_uris":["https://a.example/cb"]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(doc.client_name.as_deref(), Some("A"));
        let e =
            read_document(parse_object(br#"{"redirect_uris":"https://a.example/cb"}"#).unwrap())
                .unwrap_err();
        assert_eq!(e.code, MetadataErrorCode::InvalidClientMetadata);
        assert!(read_document(parse_object(br#"{"client_name":null}"#).unwrap()).is_ok());
    }
}
