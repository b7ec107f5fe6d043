//! RFC 8414 authorization server metadata: where the endpoints are, checked to belong to the
//! issuer the user named.

use serde_json::Value;

use super::Error;
use super::http::{self, https_endpoint};

/// The metadata the CLI uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The `issuer`, equal to the one asked for (RFC 8414 §3.3).
    pub issuer: String,
    /// `token_endpoint`.
    pub token_endpoint: url::Url,
    /// `device_authorization_endpoint` (RFC 8628 §4), if the server offers the device grant.
    pub device_authorization_endpoint: Option<url::Url>,
    /// `revocation_endpoint` (RFC 7009), if any.
    pub revocation_endpoint: Option<url::Url>,
}

/// Where the metadata of `issuer` is (RFC 8414 §3.1): `/.well-known/oauth-authorization-server`
/// inserted between the host and the issuer's path.
pub fn metadata_url(issuer: &url::Url) -> url::Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url
}

/// Fetches and checks the metadata of `issuer`.
pub async fn discover(client: &reqwest::Client, issuer: &url::Url) -> Result<Metadata, Error> {
    let url = metadata_url(issuer);
    let answer = http::get(client, &url).await?;
    if answer.status != 200 {
        return Err(http::refused("GET", &url, &answer));
    }
    parse(&answer.body, issuer.as_str()).map_err(|e| Error::Http(format!("GET {url}: {e}")))
}

/// Checks a metadata document: its `issuer` must be `expected` exactly (RFC 8414 §3.3: so a
/// server cannot hand out another issuer's endpoints), its endpoints https URLs.
pub fn parse(body: &[u8], expected: &str) -> Result<Metadata, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| format!("the metadata is not JSON: {e}"))?;
    let issuer = document
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or("the metadata has no issuer")?;
    if !same_issuer(issuer, expected) {
        return Err(format!(
            "the metadata names the issuer {:?}, not {expected:?} (give --issuer exactly as the \
             server names itself)",
            super::printable(issuer, 200)
        ));
    }
    let endpoint = |name: &str| -> Result<Option<url::Url>, String> {
        match document.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => https_endpoint(text)
                .map(Some)
                .ok_or_else(|| format!("{name} is not an https URL")),
            Some(_) => Err(format!("{name} is not a string")),
        }
    };
    Ok(Metadata {
        issuer: issuer.to_owned(),
        token_endpoint: endpoint("token_endpoint")?.ok_or("the metadata has no token_endpoint")?,
        device_authorization_endpoint: endpoint("device_authorization_endpoint")?,
        revocation_endpoint: endpoint("revocation_endpoint")?,
    })
}

/// The issuer identifiers are the same: exactly, or but for the one trailing slash `url`
/// puts after a bare host (`https://id.example` is given back as `https://id.example/`).
pub fn same_issuer(named: &str, expected: &str) -> bool {
    named == expected
        || (named.trim_end_matches('/') == expected.trim_end_matches('/')
            && url::Url::parse(named).is_ok_and(|u| u.path() == "/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_follows_rfc_8414() {
        let at = |s: &str| metadata_url(&url::Url::parse(s).unwrap()).to_string();
        assert_eq!(
            at("https://id.example:8443"),
            "https://id.example:8443/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at("https://id.example/tenant1/"),
            "https://id.example/.well-known/oauth-authorization-server/tenant1"
        );
    }

    #[test]
    fn the_issuer_must_match_and_endpoints_must_be_https() {
        let doc = |issuer: &str, token: &str| {
            serde_json::json!({
                "issuer": issuer,
                "token_endpoint": token,
                "device_authorization_endpoint": "https://id.example/oauth2/v1/device_authorization",
            })
            .to_string()
        };
        let ok = parse(
            doc("https://id.example", "https://id.example/oauth2/v1/token").as_bytes(),
            "https://id.example/",
        )
        .unwrap();
        assert_eq!(ok.token_endpoint.path(), "/oauth2/v1/token");
        assert!(ok.device_authorization_endpoint.is_some());
        assert_eq!(ok.revocation_endpoint, None);
        let evil = parse(
            doc("https://evil.example", "https://evil.example/token").as_bytes(),
            "https://id.example",
        )
        .unwrap_err();
        assert!(evil.contains("evil.example"), "{evil}");
        assert!(
            parse(
                doc("https://id.example/a", "https://id.example/token").as_bytes(),
                "https://id.example/a/"
            )
            .is_err()
        );
        let plain = parse(
            doc("https://id.example", "http://id.example/token").as_bytes(),
            "https://id.example",
        )
        .unwrap_err();
        assert!(plain.contains("token_endpoint"), "{plain}");
        assert!(parse(b"[]", "https://id.example").is_err());
    }
}
