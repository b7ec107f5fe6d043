//! Parsing and checking a client ID metadata document (draft-ietf-oauth-client-id-metadata-document
//! §4, with RFC 7591 §2 names). Strict on what governs the flow (`client_id`,
//! `redirect_uris`, the authentication method, grants, keys); unknown fields are ignored, as
//! RFC 7591 asks. The input is already bounded by the fetch's size cap; JSON nesting is bounded
//! here too.

use serde::Deserialize;
use time::OffsetDateTime;

use super::DocumentError;
use crate::model::{Client, ClientAuthMethod, ClientMetadata, GrantType};

/// Deepest JSON nesting accepted (a client's metadata is at most a JWK Set deep).
pub const MAX_DEPTH: usize = 16;
/// Most redirect URIs (and post-logout redirect URIs) in one document.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Longest redirect URI (bytes).
pub const MAX_URI_LEN: usize = 2048;
/// Longest `client_name` shown (characters; longer names are cut).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest `scope` (bytes).
pub const MAX_SCOPE_LEN: usize = 2048;

/// What a document may ask for, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct DocumentPolicy<'a> {
    /// The scopes such a client may have (its `scope` is narrowed to these).
    pub allowed_scopes: &'a [String],
    /// The resources (RFC 8707) such a client may request: its audiences.
    pub audiences: &'a [String],
}

/// A checked document: the client it describes and, for `private_key_jwt` with `jwks_uri`,
/// where its keys are still to be fetched.
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    /// The client (public, or `private_key_jwt` with `jwks` unless `jwks_uri` is set).
    pub client: Client,
    /// `jwks_uri` (an `https` URL, checked like a client id), when the keys are not inline.
    pub jwks_uri: Option<url::Url>,
}

/// The fields read; every other field is ignored.
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    dpop_bound_access_tokens: Option<bool>,
}

/// Parses the document fetched from `client_id` and checks it against `policy`.
pub fn parse(
    body: &[u8],
    client_id: &str,
    policy: DocumentPolicy<'_>,
    now: OffsetDateTime,
) -> Result<ParsedDocument, DocumentError> {
    let bad = |why: String| DocumentError::InvalidDocument(why);
    if nesting_depth(body) > MAX_DEPTH {
        return Err(bad(format!("nested deeper than {MAX_DEPTH}")));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(bad("not a JSON object".to_owned()));
    };
    for secret in ["client_secret", "client_secret_expires_at"] {
        if object.contains_key(secret) {
            return Err(bad(format!(
                "has {secret}: metadata document clients have no secret"
            )));
        }
    }
    let doc: Document =
        serde_json::from_value(value).map_err(|e| bad(format!("invalid field: {e}")))?;
    if doc.client_id != client_id {
        return Err(DocumentError::ClientIdMismatch);
    }
    let redirect_uris = doc
        .redirect_uris
        .ok_or_else(|| bad("has no redirect_uris".to_owned()))?;
    if redirect_uris.is_empty() {
        return Err(bad("redirect_uris is empty".to_owned()));
    }
    check_redirect_uris("redirect_uris", &redirect_uris)?;
    let post_logout_redirect_uris = doc.post_logout_redirect_uris.unwrap_or_default();
    check_redirect_uris("post_logout_redirect_uris", &post_logout_redirect_uris)?;

    let grant_types = match doc.grant_types {
        None => vec![GrantType::AuthorizationCode],
        Some(names) => {
            let mut grants = Vec::new();
            for name in &names {
                let grant = match name.as_str() {
                    "authorization_code" => GrantType::AuthorizationCode,
                    "refresh_token" => GrantType::RefreshToken,
                    _ => {
                        return Err(bad(format!(
                            "grant type {:?} is not allowed (only authorization_code and \
                             refresh_token)",
                            shorten(name)
                        )));
                    }
                };
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
            grants
        }
    };
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(bad("grant_types must include authorization_code".to_owned()));
    }
    if let Some(types) = &doc.response_types
        && types.iter().any(|t| t != "code")
    {
        return Err(bad("response_types may only be code".to_owned()));
    }

    let method = match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => ClientAuthMethod::None,
        Some("private_key_jwt") => ClientAuthMethod::PrivateKeyJwt,
        Some(other) => {
            return Err(bad(format!(
                "token_endpoint_auth_method {:?} is not allowed (none or private_key_jwt)",
                shorten(other)
            )));
        }
    };
    let (jwks, jwks_uri) = match (method, doc.jwks, doc.jwks_uri) {
        (ClientAuthMethod::PrivateKeyJwt, Some(_), Some(_)) => {
            return Err(bad("jwks and jwks_uri must not both be given".to_owned()));
        }
        (ClientAuthMethod::PrivateKeyJwt, Some(jwks), None) => {
            (Some(crate::rules::public_jwks(jwks).map_err(bad)?), None)
        }
        (ClientAuthMethod::PrivateKeyJwt, None, Some(uri)) => {
            let url = super::client_id::parse(&uri).map_err(|e| bad(format!("jwks_uri: {e}")))?;
            (None, Some(url))
        }
        (ClientAuthMethod::PrivateKeyJwt, None, None) => {
            return Err(bad("private_key_jwt needs jwks or jwks_uri".to_owned()));
        }
        _ => (None, None),
    };

    let scope = match doc.scope.as_deref() {
        None => policy.allowed_scopes.to_vec(),
        Some(text) if text.len() > MAX_SCOPE_LEN => {
            return Err(bad("scope is too long".to_owned()));
        }
        Some(text) => {
            let mut scopes: Vec<String> = Vec::new();
            for token in text.split(' ').filter(|t| !t.is_empty()) {
                if !crate::oauth::scope::is_scope_token(token) {
                    return Err(bad("scope holds an invalid scope token".to_owned()));
                }
                if policy.allowed_scopes.iter().any(|a| a == token)
                    && !scopes.iter().any(|s| s == token)
                {
                    scopes.push(token.to_owned());
                }
            }
            scopes
        }
    };

    let client_name = display_name(doc.client_name.as_deref())
        .or_else(|| super::client_id::host(client_id))
        .unwrap_or_else(|| client_id.to_owned());

    Ok(ParsedDocument {
        client: Client {
            client_id: client_id.to_owned(),
            metadata: ClientMetadata {
                client_name,
                token_endpoint_auth_method: method,
                jwks,
                grant_types,
                redirect_uris,
                post_logout_redirect_uris,
                scope,
                audiences: policy.audiences.to_vec(),
                tenant_id: None,
                introspect_any: false,
                dpop_bound_access_tokens: doc.dpop_bound_access_tokens.unwrap_or(false),
                may_act: Vec::new(),
                impersonation: false,
                mfa: None,
            },
            enabled: true,
            secrets: Vec::new(),
            created_at: now,
        },
        jwks_uri,
    })
}

/// Redirect URIs: absolute, normalised, no fragment; `https`, `http` only to a loopback host
/// (RFC 8252 §7.3), or a private-use scheme with a dot (RFC 8252 §7.1); never `javascript:`,
/// `data:`, `file:` and the like. Compared later as exact strings.
fn check_redirect_uris(what: &str, uris: &[String]) -> Result<(), DocumentError> {
    let bad = |why: String| Err(DocumentError::InvalidDocument(why));
    if uris.len() > MAX_REDIRECT_URIS {
        return bad(format!("{what} lists more than {MAX_REDIRECT_URIS} URIs"));
    }
    for uri in uris {
        if uri.len() > MAX_URI_LEN {
            return bad(format!(
                "{what} holds a URI longer than {MAX_URI_LEN} bytes"
            ));
        }
        let Ok(url) = url::Url::parse(uri) else {
            return bad(format!(
                "{what} holds {:?}, not an absolute URI",
                shorten(uri)
            ));
        };
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return bad(format!(
                "{what} holds {:?} with a fragment or user information",
                shorten(uri)
            ));
        }
        let allowed = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => {
                matches!(url.host(), Some(url::Host::Domain("localhost")))
                    || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            }
            "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws"
            | "wss" => false,
            other => other.contains('.'),
        };
        if !allowed {
            return bad(format!(
                "{what} holds {:?}: https, http to loopback or a private-use scheme only",
                shorten(uri)
            ));
        }
        if url.as_str() != uri && format!("{uri}/") != url.as_str() {
            return bad(format!(
                "{what} holds {:?}, not in normal form",
                shorten(uri)
            ));
        }
    }
    Ok(())
}

/// `client_name` as shown: control characters dropped, whitespace collapsed, at most
/// [`MAX_NAME_CHARS`] characters; `None` when nothing is left.
fn display_name(name: Option<&str>) -> Option<String> {
    let name = name?;
    let cleaned: String = name
        .split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let cut: String = cleaned.chars().take(MAX_NAME_CHARS).collect();
    (!cut.is_empty()).then_some(cut)
}

/// A value for a log or error message: at most 80 characters.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The deepest nesting of arrays and objects in `body` (strings skipped), computed without
/// recursion so an attacker's deeply nested input costs one pass.
fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "https://app.example.com/client.json";

    fn policy_scopes() -> Vec<String> {
        ["openid", "profile", "offline_access"]
            .map(str::to_owned)
            .to_vec()
    }

    fn parse_json(doc: serde_json::Value) -> Result<ParsedDocument, DocumentError> {
        let scopes = policy_scopes();
        let audiences = vec!["https://rs.example.com".to_owned()];
        parse(
            doc.to_string().as_bytes(),
            ID,
            DocumentPolicy {
                allowed_scopes: &scopes,
                audiences: &audiences,
            },
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn minimal() -> serde_json::Value {
        json!({"client_id": ID, "redirect_uris": ["https://app.example.com/cb"]})
    }

    #[test]
    fn a_minimal_document_is_a_public_code_client() {
        let parsed = parse_json(minimal()).unwrap();
        let c = &parsed.client;
        assert_eq!(c.client_id, ID);
        assert!(c.is_public());
        assert_eq!(c.metadata.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(c.metadata.scope, policy_scopes());
        assert_eq!(c.metadata.audiences, ["https://rs.example.com"]);
        assert_eq!(c.metadata.client_name, "app.example.com");
        assert!(c.secrets.is_empty());
    }

    #[test]
    fn fields_are_read_and_unknown_ones_ignored() {
        let mut doc = minimal();
        doc["client_name"] = "  My\u{7}  App\n".into();
        doc["scope"] = "openid kms:admin offline_access openid".into();
        doc["grant_types"] = json!(["authorization_code", "refresh_token"]);
        doc["response_types"] = json!(["code"]);
        doc["logo_uri"] = "https://app.example.com/logo.png".into();
        doc["software_id"] = json!({"nested": [1, 2, {"x": null}]});
        let c = parse_json(doc).unwrap().client;
        assert_eq!(c.metadata.client_name, "My App");
        assert_eq!(c.metadata.scope, ["openid", "offline_access"]);
        assert_eq!(
            c.metadata.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
    }

    #[test]
    fn the_client_id_must_match_exactly() {
        for other in [
            "https://app.example.com/client.json/",
            "https://APP.example.com/client.json",
            "https://app.example.com/other.json",
        ] {
            let mut doc = minimal();
            doc["client_id"] = other.into();
            assert!(matches!(
                parse_json(doc),
                Err(DocumentError::ClientIdMismatch)
            ));
        }
    }

    #[test]
    fn secrets_and_symmetric_methods_are_refused() {
        for (field, value) in [
            ("client_secret", json!("s3cret")),
            ("client_secret", json!(null)),
            ("client_secret_expires_at", json!(0)),
            ("token_endpoint_auth_method", json!("client_secret_basic")),
            ("token_endpoint_auth_method", json!("client_secret_post")),
            ("token_endpoint_auth_method", json!("client_secret_jwt")),
            ("token_endpoint_auth_method", json!("private_key_jwt")),
            ("grant_types", json!(["client_credentials"])),
            ("grant_types", json!(["refresh_token"])),
            (
                "grant_types",
                json!(["urn:ietf:params:oauth:grant-type:token-exchange"]),
            ),
            ("response_types", json!(["token"])),
            ("redirect_uris", json!([])),
            ("redirect_uris", json!("https://app.example.com/cb")),
            ("redirect_uris", json!(["javascript:alert(1)"])),
            ("redirect_uris", json!(["data:text/html,hi"])),
            ("redirect_uris", json!(["http://app.example.com/cb"])),
            ("redirect_uris", json!(["https://app.example.com/cb#x"])),
            ("redirect_uris", json!(["https://u:p@app.example.com/cb"])),
            ("redirect_uris", json!(["/relative"])),
            ("scope", json!(["openid"])),
            ("scope", json!("open\"id")),
            ("client_name", json!(7)),
        ] {
            let mut doc = minimal();
            doc[field] = value.clone();
            assert!(parse_json(doc).is_err(), "{field}: {value}");
        }
        let mut doc = minimal();
        doc.as_object_mut().unwrap().remove("redirect_uris");
        assert!(parse_json(doc).is_err());
        let many: Vec<String> = (0..17).map(|i| format!("https://a.example/{i}")).collect();
        let mut doc = minimal();
        doc["redirect_uris"] = json!(many);
        assert!(parse_json(doc).is_err());
    }

    #[test]
    fn native_redirects_are_allowed() {
        let mut doc = minimal();
        doc["redirect_uris"] = json!([
            "http://127.0.0.1:33418/cb",
            "http://[::1]/cb",
            "http://localhost:8080/cb",
            "com.example.app:/oauth2redirect"
        ]);
        assert_eq!(
            parse_json(doc).unwrap().client.metadata.redirect_uris.len(),
            4
        );
    }

    #[test]
    fn private_key_jwt_needs_public_keys() {
        let jwk = cryptoutil_jose::jwk::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
        let public: serde_json::Value =
            serde_json::from_str(&jwk.to_public().unwrap().to_json(false)).unwrap();
        let private: serde_json::Value = serde_json::from_str(&jwk.to_json(true)).unwrap();
        let mut doc = minimal();
        doc["token_endpoint_auth_method"] = "private_key_jwt".into();
        doc["jwks"] = json!({"keys": [public]});
        let parsed = parse_json(doc.clone()).unwrap();
        assert_eq!(
            parsed.client.metadata.token_endpoint_auth_method,
            ClientAuthMethod::PrivateKeyJwt
        );
        assert!(parsed.client.metadata.jwks.is_some());
        doc["jwks"] = json!({"keys": [private]});
        assert!(parse_json(doc.clone()).is_err());
        doc.as_object_mut().unwrap().remove("jwks");
        doc["jwks_uri"] = "https://app.example.com/jwks.json".into();
        let parsed = parse_json(doc.clone()).unwrap();
        assert_eq!(
            parsed.jwks_uri.unwrap().as_str(),
            "https://app.example.com/jwks.json"
        );
        doc["jwks_uri"] = "http://app.example.com/jwks.json".into();
        assert!(parse_json(doc).is_err());
    }

    #[test]
    fn deep_or_broken_json_is_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let scopes = policy_scopes();
        let policy = DocumentPolicy {
            allowed_scopes: &scopes,
            audiences: &[],
        };
        for body in [
            deep.as_bytes(),
            b"",
            b"null",
            b"[]",
            b"{\"client_id\":",
            b"\xff\xfe",
        ] {
            assert!(parse(body, ID, policy, OffsetDateTime::UNIX_EPOCH).is_err());
        }
        assert_eq!(nesting_depth(br#"{"a":"[[[[{{{{","b":[{"c":"\"[["}]}"#), 3);
    }
}
