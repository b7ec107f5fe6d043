//! The form a `client_id` URL must have (draft-ietf-oauth-client-id-metadata-document §3):
//! `https`, a host, a path, no fragment, no user information, no `.` or `..` segments.

use url::Url;

use super::DocumentError;

/// Longest `client_id` URL accepted (bytes): the limit of every client id at the token
/// endpoint, so a document client usable at the authorization endpoint is usable there too.
pub const MAX_CLIENT_ID_LEN: usize = crate::oauth::client_auth::MAX_CLIENT_ID_LEN;

/// True when `client_id` names a metadata document (starts with `https://`, any case): such
/// ids are resolved by fetching, never looked up among registered clients.
pub fn is_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Checks that `client_id` is a URL a metadata document may be fetched from, and parses it.
/// The URL must be in its normalised form (what the `url` crate serialises back), so the
/// document's `client_id`, compared as a string, cannot differ from what was fetched.
pub fn parse(client_id: &str) -> Result<Url, DocumentError> {
    let invalid = |why: &str| Err(DocumentError::InvalidClientId(why.to_owned()));
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return invalid("is too long");
    }
    if !client_id.starts_with("https://") {
        return invalid("not an https URL");
    }
    if client_id.contains('#') {
        return invalid("has a fragment");
    }
    let Ok(url) = Url::parse(client_id) else {
        return invalid("not a URL");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("has user information");
    }
    if url.host().is_none() {
        return invalid("has no host");
    }
    let raw_path = client_id
        .get("https://".len()..)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let raw_path = raw_path.split(['?']).next().unwrap_or("");
    if raw_path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        matches!(
            lower.as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return invalid("has a . or .. path segment");
    }
    if url.path() == "/" || url.path().is_empty() {
        return invalid("has no path");
    }
    if url.as_str() != client_id {
        return invalid("is not in normalised form");
    }
    Ok(url)
}

/// The host of a metadata document client's `client_id` (shown on the consent page), or
/// `None` when `client_id` is not such a URL.
pub fn host(client_id: &str) -> Option<String> {
    let url = parse(client_id).ok()?;
    let host = url.host_str()?.to_owned();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_parse() {
        for ok in [
            "https://app.example.com/client.json",
            "https://app.example.com:8443/oauth/client-metadata.json",
            "https://127.0.0.1:9000/c",
            "https://app.example.com/client?v=1",
        ] {
            assert_eq!(parse(ok).unwrap().as_str(), ok);
            assert!(is_url(ok));
        }
        assert_eq!(
            host("https://app.example.com:8443/c.json").as_deref(),
            Some("app.example.com:8443")
        );
        assert_eq!(
            host("https://app.example.com/c.json").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(host("demo-spa-client"), None);
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/client.json#frag",
            "https://user@app.example.com/client.json",
            "https://user:pw@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/./client.json",
            "https://app.example.com/a/%2e%2e/client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https:///client.json",
            "https://app.example.com/a b",
            "javascript:alert(1)",
            "data:application/json,{}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("https://a.example/{}", "x".repeat(300))).is_err());
        assert!(!is_url("demo-spa-client"));
        assert!(is_url("HTTPS://app.example.com/c"));
    }
}
