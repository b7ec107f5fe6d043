//! Test harness: a real Identity server (in-process, real TLS on free ports, demo data) and a
//! browser-like client that keeps cookies and does not follow redirects.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use cryptoutil_identity::config::IdentitySettings;
use cryptoutil_identity::server::Identity;
use cryptoutil_server::DevPki;
use cryptoutil_testkit::identity::IdentityServer;
use reqwest::StatusCode;
use serde_json::Value;

pub const CONFIDENTIAL: &str = "demo-confidential-client";
pub const CONFIDENTIAL_SECRET: &str = "demo-confidential-client-secret";
pub const CONFIDENTIAL_REDIRECT: &str = "https://localhost:8084/confidential/callback";
pub const SPA: &str = "demo-spa-client";
pub const SPA_REDIRECT: &str = "https://localhost:8084/callback";
pub const KMS_CLIENT: &str = "demo-kms-client";
pub const KMS_CLIENT_SECRET: &str = "demo-kms-client-secret";
pub const INTROSPECTOR: &str = "kms-introspection-client";
pub const INTROSPECTOR_SECRET: &str = "kms-introspection-client-secret";

/// A running Identity server with the demo data.
pub struct Idp {
    pub identity: Identity,
    pub issuer: String,
    pub admin: String,
    pki: DevPki,
    /// A client without cookies.
    pub http: reqwest::Client,
}

pub fn settings(pki: &DevPki) -> IdentitySettings {
    cryptoutil_testkit::identity::settings(pki)
}

impl Idp {
    /// A `--dev --demo` server.
    pub async fn demo() -> Self {
        Self::demo_with(|_| {}).await
    }

    /// A `--dev --demo` server with changed settings.
    pub async fn demo_with(change: impl FnOnce(&mut IdentitySettings)) -> Self {
        let (identity, issuer, admin, pki) = IdentityServer::demo_with(change).await.into_parts();
        let http = Self::client_for(&pki, false);
        Self {
            identity,
            issuer,
            admin,
            pki,
            http,
        }
    }

    /// A server started by the test itself (e.g. one of several instances on one database,
    /// behind a proxy at `issuer`), its certificate from `pki`.
    pub fn from_running(identity: Identity, issuer: String, pki: DevPki) -> Self {
        let admin = format!("https://127.0.0.1:{}", identity.server.admin_addr.port());
        let http = Self::client_for(&pki, false);
        Self {
            identity,
            issuer,
            admin,
            pki,
            http,
        }
    }

    fn client_for(pki: &DevPki, cookies: bool) -> reqwest::Client {
        Self::builder(pki).cookie_store(cookies).build().unwrap()
    }

    fn builder(pki: &DevPki) -> reqwest::ClientBuilder {
        cryptoutil_testkit::tls::client_builder(pki).redirect(reqwest::redirect::Policy::none())
    }

    /// The demo PKI the server's certificate comes from (it also holds an `rs` certificate).
    pub fn pki(&self) -> &DevPki {
        &self.pki
    }

    /// A browser: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        Self::client_for(&self.pki, true)
    }

    /// A browser connecting from another loopback address (e.g. `127.0.0.2`), so per-address
    /// limits see a different client.
    pub fn browser_from(&self, source: &str) -> reqwest::Client {
        Self::builder(&self.pki)
            .cookie_store(true)
            .local_address(source.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    }

    /// The HTML of `path` (an absolute path) as `browser` sees it.
    pub async fn page(&self, browser: &reqwest::Client, path: &str) -> String {
        browser
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A browser whose cookies the test can read (the session cookie is HttpOnly).
    pub fn browser_with_jar(&self) -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = Self::builder(&self.pki)
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        (client, jar)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// POSTs a form to the token endpoint with HTTP Basic client authentication.
    pub async fn token(
        &self,
        client: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.post_form("/oauth2/v1/token", Some((client, secret)), form)
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        (status, body)
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .post_form(
                "/oauth2/v1/introspect",
                Some((INTROSPECTOR, INTROSPECTOR_SECRET)),
                &[("token", token)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn stop(self) {
        self.identity.stop().await;
    }
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::now_v7().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = cryptoutil_identity::oauth::pkce::challenge_for(&verifier);
    (verifier, challenge)
}

/// The `Location` of a redirect response.
pub fn location(response: &reqwest::Response) -> String {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of the hidden `csrf_token` input of a page.
pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a csrf_token input") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Walks a browser through authorize → login → consent (allow) and returns the final redirect
/// to the client.
pub async fn sign_in(
    idp: &Idp,
    browser: &reqwest::Client,
    authorize_url: &str,
    user: &str,
) -> String {
    let response = browser.get(authorize_url).send().await.unwrap();
    let mut next = location(&response);
    if next.starts_with("/oidc/v1/login") {
        let page = browser.get(idp.url(&next)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let password = format!("{user}-password");
        let response = browser
            .post(idp.url("/oidc/v1/login"))
            .form(&[
                ("csrf_token", csrf(&html).as_str()),
                ("username", user),
                ("password", &password),
            ])
            .send()
            .await
            .unwrap();
        next = location(&response);
    }
    if next.starts_with("/oidc/v1/consent") {
        let page = browser.get(idp.url(&next)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let response = browser
            .post(idp.url("/oidc/v1/consent"))
            .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        next = location(&response);
    }
    next
}

/// An authorization URL for `client` with PKCE, state and nonce.
pub fn authorize_url(
    idp: &Idp,
    client: &str,
    redirect: &str,
    scope: &str,
    challenge: &str,
) -> String {
    let mut url = url::Url::parse(&idp.url("/oauth2/v1/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", scope)
        .append_pair("state", "state-123")
        .append_pair("nonce", "nonce-456")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// Decodes a JWS part (header 0, payload 1) without verifying.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&cryptoutil_jose::b64::decode(part.as_bytes(), "part").unwrap()).unwrap()
}
