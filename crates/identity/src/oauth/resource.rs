//! Resource indicators (RFC 8707): the `resource` parameter of the authorization, PAR and token
//! requests, and how it narrows an access token's `aud`.
//!
//! - [`parse`]: each value an absolute URI without a fragment (RFC 8707 §2), at most
//!   [`MAX_RESOURCES`] values of at most [`MAX_RESOURCE_LEN`] bytes; duplicates collapse.
//!   Anything else is `invalid_target`.
//! - [`allowed`]: a client may request only the resources listed in its registered `audiences`
//!   (ARCHITECTURE.md, Decisions: the audiences a client may get are the resources it may
//!   request), compared as exact strings.
//! - [`narrow`]: a later request (the token request after the authorization request, a refresh
//!   after the previous one) may name a subset of what was granted, never more.
//!
//! No HTTP types: callers hand in the values from [`crate::oauth::FormParams::get_all`].

use super::error::{ErrorCode, OAuthError};
use crate::model::Client;

/// Most `resource` values in one request.
pub const MAX_RESOURCES: usize = 10;
/// Longest `resource` value, in bytes.
pub const MAX_RESOURCE_LEN: usize = 2048;

/// `invalid_target` with a description.
pub fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// The requested resources: every value an absolute URI without a fragment, bounded in count
/// and length, duplicates removed (first occurrence kept). No value: an empty list.
pub fn parse(values: &[&str]) -> Result<Vec<String>, OAuthError> {
    if values.len() > MAX_RESOURCES {
        return Err(invalid_target("too many resource values"));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if value.len() > MAX_RESOURCE_LEN {
            return Err(invalid_target("a resource value is too long"));
        }
        let uri = url::Url::parse(value)
            .map_err(|_| invalid_target("a resource must be an absolute URI"))?;
        if uri.fragment().is_some() || value.contains('#') {
            return Err(invalid_target("a resource must not have a fragment"));
        }
        if !out.iter().any(|r| r == value) {
            out.push((*value).to_owned());
        }
    }
    Ok(out)
}

/// Checks that `client` may request every one of `resources` (its registered `audiences`).
pub fn allowed(client: &Client, resources: &[String]) -> Result<(), OAuthError> {
    if resources
        .iter()
        .all(|r| client.metadata.audiences.iter().any(|a| a == r))
    {
        Ok(())
    } else {
        Err(invalid_target("the client may not request this resource"))
    }
}

/// The resources of a follow-up request: `requested` when it is a subset of `granted`
/// (`invalid_target` otherwise), `granted` when nothing was requested. An empty `granted`
/// means no resource was requested before: then `requested` stands (the caller checked it
/// with [`allowed`]).
pub fn narrow(requested: Vec<String>, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    if granted.is_empty() || requested.iter().all(|r| granted.contains(r)) {
        Ok(requested)
    } else {
        Err(invalid_target(
            "the resource was not part of the original grant",
        ))
    }
}

/// The `aud` of an access token for `client`: the `resources` when any were requested, else all
/// of the client's registered audiences, else `issuer`.
pub fn audience(client: &Client, resources: &[String], issuer: &str) -> Vec<String> {
    if !resources.is_empty() {
        resources.to_vec()
    } else if client.metadata.audiences.is_empty() {
        vec![issuer.to_owned()]
    } else {
        client.metadata.audiences.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::{ClientAuthMethod, ClientMetadata, GrantType};

    fn client(audiences: &[&str]) -> Client {
        Client {
            client_id: "c".to_owned(),
            metadata: ClientMetadata {
                client_name: "c".to_owned(),
                token_endpoint_auth_method: ClientAuthMethod::None,
                jwks: None,
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: Vec::new(),
                post_logout_redirect_uris: Vec::new(),
                scope: Vec::new(),
                audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
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

    fn target(result: Result<impl std::fmt::Debug, OAuthError>) -> String {
        let e = result.expect_err("invalid_target expected");
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert_eq!(e.status, 400);
        e.description.into_owned()
    }

    #[test]
    fn absolute_uris_are_accepted_and_deduplicated() {
        assert!(parse(&[]).unwrap().is_empty());
        assert_eq!(
            parse(&[
                "https://rs.example/api",
                "urn:example:kms",
                "https://rs.example/api"
            ])
            .unwrap(),
            ["https://rs.example/api", "urn:example:kms"]
        );
    }

    #[test]
    fn malformed_resources_are_invalid_target() {
        assert!(target(parse(&["cryptoutil-kms"])).contains("absolute URI"));
        assert!(target(parse(&["/relative"])).contains("absolute URI"));
        assert!(target(parse(&["https://rs.example/#frag"])).contains("fragment"));
        assert!(target(parse(&["https://rs.example/#"])).contains("fragment"));
        let long = format!("https://rs.example/{}", "a".repeat(MAX_RESOURCE_LEN));
        assert!(target(parse(&[long.as_str()])).contains("too long"));
        let many = vec!["https://rs.example/"; MAX_RESOURCES + 1];
        assert!(target(parse(&many)).contains("too many"));
        assert!(parse(&many[..MAX_RESOURCES]).is_ok());
    }

    #[test]
    fn only_registered_audiences_are_allowed() {
        let c = client(&["https://a.example/", "https://b.example/"]);
        assert!(allowed(&c, &[]).is_ok());
        assert!(allowed(&c, &["https://b.example/".to_owned()]).is_ok());
        target(allowed(&c, &["https://c.example/".to_owned()]));
        // Exact comparison: no normalisation.
        target(allowed(&c, &["https://a.example".to_owned()]));
        // A client without audiences may request none.
        target(allowed(&client(&[]), &["https://a.example/".to_owned()]));
    }

    #[test]
    fn narrowing_never_widens() {
        let granted = vec![
            "https://a.example/".to_owned(),
            "https://b.example/".to_owned(),
        ];
        assert_eq!(narrow(Vec::new(), &granted).unwrap(), granted);
        assert_eq!(
            narrow(vec!["https://b.example/".to_owned()], &granted).unwrap(),
            ["https://b.example/"]
        );
        assert!(
            target(narrow(vec!["https://c.example/".to_owned()], &granted))
                .contains("original grant")
        );
        // Nothing granted before: the request stands.
        assert_eq!(
            narrow(vec!["https://c.example/".to_owned()], &[]).unwrap(),
            ["https://c.example/"]
        );
    }

    #[test]
    fn the_audience_is_the_resource_else_every_registered_one_else_the_issuer() {
        let c = client(&["https://a.example/", "https://b.example/"]);
        assert_eq!(
            audience(&c, &["https://a.example/".to_owned()], "https://idp"),
            ["https://a.example/"]
        );
        assert_eq!(audience(&c, &[], "https://idp").len(), 2);
        assert_eq!(audience(&client(&[]), &[], "https://idp"), ["https://idp"]);
    }
}
