//! The rules a client or user record must satisfy, shared by seeding (`seed`) and the admin
//! client API (`services::clients`), so both refuse exactly the same records.

use std::fmt;

use cryptoutil_jose::jwk::JwkSet;

use crate::model::{Client, ClientAuthMethod, GrantType};

/// Longest name (username, client id, tenant, role, scope, audience).
pub const MAX_NAME_LEN: usize = 255;

/// A name: non-empty, bounded, no whitespace or control characters.
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(format!("{what} is longer than {MAX_NAME_LEN} bytes"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} {value:?} contains whitespace"));
    }
    Ok(())
}

/// A display text (name claims): bounded, no control characters.
pub fn check_text(what: &str, value: Option<&str>) -> Result<(), String> {
    let Some(value) = value else { return Ok(()) };
    if value.trim().is_empty() || value.len() > MAX_NAME_LEN {
        return Err(format!("{what} must be 1 to {MAX_NAME_LEN} bytes of text"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// No entry twice in a list.
pub fn check_unique<T: PartialEq + fmt::Debug>(what: &str, items: &[T]) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(format!("{what} lists {item:?} twice"));
        }
    }
    Ok(())
}

/// An RFC 6749 §3.3 scope token.
fn check_scope(scope: &str) -> Result<(), String> {
    if crate::oauth::scope::is_scope_token(scope) {
        Ok(())
    } else {
        Err(format!("scope {scope:?} is not a valid scope token"))
    }
}

/// An absolute redirect URI without fragment, in the normal form a URL parser keeps (redirect
/// URIs are compared as exact strings).
fn check_uri(what: &str, uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|e| format!("{what} {uri:?}: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{what} {uri:?} must not have a fragment"));
    }
    if parsed.as_str() != uri && format!("{uri}/") != parsed.as_str() {
        return Err(format!(
            "{what} {uri:?} is not in normal form (would be {:?})",
            parsed.as_str()
        ));
    }
    Ok(())
}

/// A public JWK Set (no private or symmetric keys), given as JSON or as a JSON string,
/// normalized to JSON text.
pub fn public_jwks(value: serde_json::Value) -> Result<String, String> {
    let text = match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let set = JwkSet::from_json(&text).map_err(|e| format!("jwks: {e}"))?;
    if set.keys.is_empty() {
        return Err("jwks has no keys".to_owned());
    }
    if set.keys.iter().any(|k| k.is_private()) {
        return Err(
            "jwks must hold public keys only (found private or symmetric key material)".to_owned(),
        );
    }
    Ok(set.to_json(false).to_string())
}

/// Checks a client record (its secrets are the caller's business: the seed reads them from its
/// sources, the admin API generates them).
pub fn check_client(client: &Client) -> Result<(), String> {
    check_name("client_id", &client.client_id)?;
    let c = &client.metadata;
    check_text("name", Some(&c.client_name))?;
    let method = c.token_endpoint_auth_method.as_str();
    match (c.token_endpoint_auth_method, &c.jwks) {
        (ClientAuthMethod::PrivateKeyJwt, None) => {
            return Err("private_key_jwt needs jwks".to_owned());
        }
        (ClientAuthMethod::PrivateKeyJwt, Some(_)) | (_, None) => {}
        (_, Some(_)) => return Err(format!("jwks is for private_key_jwt, not {method}")),
    }
    check_unique("grant_types", &c.grant_types)?;
    if client.is_public() {
        if client.allows_grant(GrantType::ClientCredentials) {
            return Err("public clients cannot use client_credentials".to_owned());
        }
        if c.introspect_any {
            return Err("public clients cannot have introspect_any".to_owned());
        }
        if client.allows_grant(GrantType::TokenExchange) || c.impersonation {
            return Err(
                "public clients cannot use token exchange (RFC 8693 §2.1 needs an authenticated client)"
                    .to_owned(),
            );
        }
    }
    let code = client.allows_grant(GrantType::AuthorizationCode);
    if code && c.redirect_uris.is_empty() {
        return Err("authorization_code needs redirect_uris".to_owned());
    }
    if client.allows_grant(GrantType::RefreshToken)
        && !code
        && !client.allows_grant(GrantType::DeviceCode)
    {
        return Err(
            "refresh_token needs authorization_code or the device grant (only they issue \
             refresh tokens)"
                .to_owned(),
        );
    }
    for uri in &c.redirect_uris {
        check_uri("redirect_uri", uri)?;
    }
    for uri in &c.post_logout_redirect_uris {
        check_uri("post_logout_redirect_uri", uri)?;
    }
    check_unique("redirect_uris", &c.redirect_uris)?;
    check_unique("post_logout_redirect_uris", &c.post_logout_redirect_uris)?;
    for scope in &c.scope {
        check_scope(scope)?;
    }
    check_unique("scopes", &c.scope)?;
    for audience in &c.audiences {
        check_name("audience", audience)?;
    }
    check_unique("audiences", &c.audiences)?;
    for actor in &c.may_act {
        check_name("may_act", actor)?;
    }
    check_unique("may_act", &c.may_act)?;
    if let Some(tenant) = &c.tenant_id {
        check_name("tenant_id", tenant)?;
    }
    Ok(())
}

/// Fewest characters (Unicode scalar values) in a new password a user chooses.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes in a password (what the login form checks, and what PBKDF2 is given).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the password must have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

/// The rule for a password a user chooses: 12 characters or more (length is what makes a
/// password strong; no composition rules, NIST SP 800-63B §3.1.1.2), 1024 bytes at most.
pub fn check_new_password(password: &str) -> Result<(), PasswordRule> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRule::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordRule::TooShort);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ClientMetadata;

    fn client() -> Client {
        Client {
            client_id: "c1".into(),
            metadata: ClientMetadata {
                client_name: "C1".into(),
                token_endpoint_auth_method: ClientAuthMethod::None,
                jwks: None,
                grant_types: vec![GrantType::AuthorizationCode],
                redirect_uris: vec!["https://app.example/cb".into()],
                post_logout_redirect_uris: Vec::new(),
                scope: vec!["openid".into()],
                audiences: Vec::new(),
                tenant_id: None,
                introspect_any: false,
                dpop_bound_access_tokens: false,
                may_act: Vec::new(),
                impersonation: false,
                mfa: None,
            },
            enabled: true,
            secrets: Vec::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn client_records_are_checked() {
        assert_eq!(check_client(&client()), Ok(()));
        let refused = |change: fn(&mut Client), expected: &str| {
            let mut c = client();
            change(&mut c);
            let e = check_client(&c).unwrap_err();
            assert!(e.contains(expected), "{e}");
        };
        refused(
            |c| c.metadata.grant_types.push(GrantType::ClientCredentials),
            "public clients",
        );
        refused(|c| c.metadata.introspect_any = true, "introspect_any");
        refused(
            |c| c.metadata.grant_types.push(GrantType::TokenExchange),
            "token exchange",
        );
        refused(|c| c.metadata.impersonation = true, "token exchange");
        refused(|c| c.metadata.may_act = vec!["a b".into()], "whitespace");
        refused(
            |c| c.metadata.may_act = vec!["a".into(), "a".into()],
            "twice",
        );
        refused(|c| c.metadata.redirect_uris.clear(), "needs redirect_uris");
        refused(
            |c| c.metadata.grant_types = vec![GrantType::RefreshToken],
            "refresh_token needs",
        );
        refused(
            |c| c.metadata.redirect_uris = vec!["https://A.example/cb".into()],
            "normal form",
        );
        refused(
            |c| c.metadata.redirect_uris = vec!["https://a.example/cb#f".into()],
            "fragment",
        );
        refused(|c| c.metadata.scope.push("openid".into()), "twice");
        refused(|c| c.metadata.scope = vec!["a\"b".into()], "scope token");
        refused(|c| c.client_id = "has space".into(), "whitespace");
        refused(
            |c| c.metadata.token_endpoint_auth_method = ClientAuthMethod::PrivateKeyJwt,
            "needs jwks",
        );
        refused(
            |c| c.metadata.jwks = Some("{}".into()),
            "jwks is for private_key_jwt",
        );
    }

    #[test]
    fn jwks_must_be_public() {
        let key = cryptoutil_jose::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
        let private = serde_json::json!({"keys": [key.to_value(true)]});
        assert!(
            public_jwks(private)
                .unwrap_err()
                .contains("public keys only")
        );
        let public = serde_json::json!({"keys": [key.to_value(false)]});
        let text = public_jwks(serde_json::Value::String(public.to_string())).unwrap();
        assert!(!text.contains("\"d\""));
        assert!(public_jwks(serde_json::json!({"keys": []})).is_err());
    }

    #[test]
    fn a_new_password_has_12_characters_to_1024_bytes() {
        assert_eq!(check_new_password("short"), Err(PasswordRule::TooShort));
        assert_eq!(
            check_new_password("elevenchars"),
            Err(PasswordRule::TooShort)
        );
        assert_eq!(check_new_password("twelve chars"), Ok(()));
        // Characters, not bytes: 12 two-byte characters are enough, 11 are not.
        assert_eq!(check_new_password(&"é".repeat(12)), Ok(()));
        assert_eq!(
            check_new_password(&"é".repeat(11)),
            Err(PasswordRule::TooShort)
        );
        assert_eq!(check_new_password(&"x".repeat(1024)), Ok(()));
        assert_eq!(
            check_new_password(&"x".repeat(1025)),
            Err(PasswordRule::TooLong)
        );
    }
}
