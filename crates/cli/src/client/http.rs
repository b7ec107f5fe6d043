//! The HTTPS client of the OAuth commands: TLS 1.3 with the server verified against the
//! configured CA certificates (or, when asked, the system trust store), no redirects, a time
//! limit per request, and answers read up to [`MAX_BODY`] bytes.

use std::path::PathBuf;
use std::time::Duration;

use cryptoutil_tls::{TrustConfig, client_config};
use serde_json::Value;

use super::{Error, MAX_DESCRIPTION, OAuthError, printable};

/// Largest answer read from the authorization server (metadata, tokens, errors).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest wait for one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the client trusts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trust {
    /// PEM files of the CA certificates that sign the server's certificate.
    pub ca_certs: Vec<PathBuf>,
    /// Also the operating system's trust store (off unless asked for).
    pub system_roots: bool,
}

/// An HTTPS client trusting `trust`.
pub fn client(trust: &Trust) -> Result<reqwest::Client, String> {
    let config = TrustConfig::from_ca_files(&trust.ca_certs)
        .map_err(|e| e.to_string())?
        .with_system_roots(trust.system_roots);
    let tls = client_config(config, None).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("cryptoutil-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// An answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
}

/// `GET url` with `Accept: application/json`.
pub async fn get(client: &reqwest::Client, url: &url::Url) -> Result<Answer, Error> {
    let request = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    send(request, "GET", url).await
}

/// `POST url` with an `application/x-www-form-urlencoded` body.
pub async fn post_form(
    client: &reqwest::Client,
    url: &url::Url,
    fields: &[(&str, &str)],
) -> Result<Answer, Error> {
    let request = client
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(fields);
    send(request, "POST", url).await
}

async fn send(
    request: reqwest::RequestBuilder,
    method: &str,
    url: &url::Url,
) -> Result<Answer, Error> {
    let failed = |e: &reqwest::Error| Error::Http(format!("{method} {url}: {}", one_line(e)));
    let mut response = request.send().await.map_err(|e| failed(&e))?;
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(Error::Http(format!(
            "{method} {url}: the answer is larger than {MAX_BODY} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::Http(format!(
                "{method} {url}: the answer is larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// The OAuth error of an error answer (RFC 6749 §5.2), if the body is one.
pub fn oauth_error(body: &[u8]) -> Option<OAuthError> {
    let document: Value = serde_json::from_slice(body).ok()?;
    let code = document.get("error")?.as_str()?;
    // RFC 6749 §5.2: error codes are NQSCHAR; anything else is not an OAuth error document.
    if code.is_empty()
        || code.len() > 128
        || !code
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        return None;
    }
    Some(OAuthError {
        code: code.to_owned(),
        description: document
            .get("error_description")
            .and_then(Value::as_str)
            .map(|d| printable(d, MAX_DESCRIPTION)),
    })
}

/// An error answer as an [`Error`]: the OAuth error when the body is one, otherwise the status
/// and the start of the body.
pub fn refused(method: &str, url: &url::Url, answer: &Answer) -> Error {
    match oauth_error(&answer.body) {
        Some(error) => Error::OAuth(error),
        None => Error::Http(format!(
            "{method} {url}: HTTP {}: {}",
            answer.status,
            printable(&String::from_utf8_lossy(&answer.body), 200)
        )),
    }
}

/// An error's causes on one line (reqwest's own message only repeats the URL).
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(error.source().unwrap_or(error));
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// An `https` URL with a host and no fragment or userinfo, as endpoints must be.
pub fn https_endpoint(text: &str) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    (url.scheme() == "https"
        && url.host().is_some()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none())
    .then_some(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_are_read_and_cleaned() {
        let e = oauth_error(br#"{"error":"slow_down","error_description":"x\u001b[2Jy"}"#).unwrap();
        assert_eq!(e.code, "slow_down");
        assert_eq!(e.description.as_deref(), Some("x?[2Jy"));
        assert_eq!(oauth_error(b"not json"), None);
        assert_eq!(oauth_error(br#"{"error":7}"#), None);
        assert_eq!(oauth_error(br#"{"error":"a\"b"}"#), None);
        assert_eq!(oauth_error(br#"{"error":""}"#), None);
    }

    #[test]
    fn endpoints_must_be_plain_https_urls() {
        assert!(https_endpoint("https://id.example/oauth2/v1/token").is_some());
        assert!(https_endpoint("http://id.example/token").is_none());
        assert!(https_endpoint("https://user:pw@id.example/token").is_none());
        assert!(https_endpoint("https://id.example/token#x").is_none());
        assert!(https_endpoint("javascript:alert(1)").is_none());
        assert!(https_endpoint("/relative").is_none());
    }
}
