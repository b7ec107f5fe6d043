//! Client ID metadata documents: an https server on a free port (the test's demo CA) serves
//! documents; Identity fetches them for `https://` client ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use cryptoutil_identity::config::IdentitySettings;
use cryptoutil_server::{DevPki, RunningServer, ServerSettings, ServerSpec, TlsRuntime};
use serde_json::{Value, json};

use crate::common::{Idp, authorize_url, csrf, location, pkce, query, sign_in};

/// One served answer.
#[derive(Clone)]
struct Served {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Served {
    fn json(doc: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".to_owned())],
            body: doc.to_string().into_bytes(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

#[derive(Clone, Default)]
struct Documents {
    served: Arc<Mutex<HashMap<String, Served>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

async fn serve(State(docs): State<Documents>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *docs.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(served) = docs.served.lock().unwrap().get(&path).cloned() else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    let mut response = Response::builder().status(served.status);
    for (name, value) in served.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(served.body)).unwrap()
}

/// The document host: HTTPS on a free port of 127.0.0.1 with the `rs` certificate of `pki`.
struct DocumentServer {
    server: RunningServer,
    _tls: TlsRuntime,
    docs: Documents,
}

impl DocumentServer {
    async fn start(pki: &DevPki) -> Self {
        let mut settings = ServerSettings::with_ports(0, 0);
        cryptoutil_testkit::tls::free_ports(&mut settings, pki, "rs");
        let tls = cryptoutil_server::tls_setup::build(&settings, true, None).unwrap();
        let docs = Documents::default();
        let server = cryptoutil_server::start(ServerSpec {
            name: "documents",
            settings,
            public: axum::Router::new()
                .route("/{*path}", axum::routing::any(serve))
                .with_state(docs.clone()),
            admin_extra: axum::Router::new(),
            checks: Vec::new(),
            tls: tls.setup.clone(),
        })
        .await
        .unwrap();
        Self {
            server,
            _tls: tls,
            docs,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.public_addr.port())
    }

    fn put(&self, path: &str, served: Served) -> String {
        self.docs
            .served
            .lock()
            .unwrap()
            .insert(path.to_owned(), served);
        self.url(path)
    }

    /// A valid document for a client id at `path`, registering `redirect`.
    fn document(&self, path: &str) -> Value {
        json!({
            "client_id": self.url(path),
            "client_name": "Test <b>App</b>",
            "redirect_uris": [self.redirect()],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        })
    }

    fn redirect(&self) -> String {
        self.url("/callback")
    }

    fn hits(&self, path: &str) -> usize {
        self.docs
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn stop(self) {
        self.server.shutdown();
    }
}

/// A `--demo` Identity server trusting the documents' CA, with private addresses allowed
/// (the documents are on 127.0.0.1) unless `change` says otherwise.
async fn idp_trusting(
    docs: &DocumentServer,
    pki: &DevPki,
    change: impl FnOnce(&mut IdentitySettings),
) -> Idp {
    let _ = docs;
    let ca = pki.root();
    Idp::demo_with(move |s| {
        let d = &mut s.client_id_metadata_documents;
        d.enabled = true;
        d.public_roots = false;
        d.ca_file = Some(ca);
        d.allow_private_addresses = true;
        change(s);
    })
    .await
}

/// The authorization request's answer: `Ok(location)` for a redirect, `Err((status, body))`
/// otherwise.
async fn authorize(
    idp: &Idp,
    browser: &reqwest::Client,
    client_id: &str,
    redirect: &str,
) -> Result<String, (u16, String)> {
    let (_, challenge) = pkce();
    let url = authorize_url(idp, client_id, redirect, "openid", &challenge);
    let response = browser.get(url).send().await.unwrap();
    if response.status().is_redirection() {
        Ok(location(&response))
    } else {
        Err((response.status().as_u16(), response.text().await.unwrap()))
    }
}

/// Asserts that the authorization request was refused as for an unknown client: a 400 page,
/// never a redirect to the (untrusted) redirect URI.
async fn refused(idp: &Idp, client_id: &str, redirect: &str) {
    let browser = idp.browser();
    match authorize(idp, &browser, client_id, redirect).await {
        Err((400, body)) => assert!(body.contains("unknown"), "{body}"),
        other => panic!("expected a 400 page for {client_id}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_url_client_id_runs_the_code_flow_with_pkce() {
    let pki = cryptoutil_testkit::tls::demo_pki();
    let docs = DocumentServer::start(&pki).await;
    let mut doc = docs.document("/app/client.json");
    // Unknown fields are ignored.
    doc["logo_uri"] = "https://example.com/logo.png".into();
    doc["software_statement_extension"] = json!({"deep": [{"x": [1, 2, 3]}]});
    let client_id = docs.put("/app/client.json", Served::json(&doc));
    let idp = idp_trusting(&docs, &pki, |_| {}).await;

    let (status, discovery) = {
        let r = idp
            .http
            .get(idp.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(discovery["client_id_metadata_document_supported"], true);

    let browser = idp.browser();
    let (verifier, challenge) = pkce();
    let redirect = docs.redirect();
    let url = authorize_url(
        &idp,
        &client_id,
        &redirect,
        "openid profile offline_access",
        &challenge,
    );
    // The consent page names the document's host, with the client's own name as unverified.
    let response = browser.get(&url).send().await.unwrap();
    let login = location(&response);
    let html = idp.page(&browser, &login).await;
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    let consent = location(&response);
    assert!(consent.starts_with("/oidc/v1/consent"), "{consent}");
    let html = idp.page(&browser, &consent).await;
    let host = format!("127.0.0.1:{}", docs.server.public_addr.port());
    assert!(
        html.contains(&format!(
            "<strong class=\"client-host\">{host}</strong> asks to"
        )),
        "{html}"
    );
    assert!(html.contains("not verified"), "{html}");
    assert!(html.contains("Test &lt;b&gt;App&lt;/b&gt;"), "{html}");
    assert!(html.contains(&client_id), "{html}");
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    let back = location(&response);
    assert!(back.starts_with(&redirect), "{back}");
    let code = query(&back)["code"].clone();

    let (status, tokens) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());
    assert!(tokens["id_token"].is_string());
    let claims = crate::common::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], json!(client_id));
    // The refresh grant sees the same client.
    let (status, refreshed) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().unwrap_or(""),
                ),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed} {tokens}");
    // So does PAR (a public client: client_id only).
    let (_, challenge) = pkce();
    let (status, pushed) = idp
        .post_form(
            "/oauth2/v1/par",
            None,
            &[
                ("client_id", &client_id),
                ("response_type", "code"),
                ("redirect_uri", &redirect),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{pushed}");
    assert!(pushed["request_uri"].is_string());
    // One fetch served the authorization request, consent, the token, refresh and PAR requests.
    assert_eq!(docs.hits("/app/client.json"), 1);

    // A scope outside the configured list is not the client's, whatever the document says.
    let (_, challenge) = pkce();
    let url = authorize_url(&idp, &client_id, &redirect, "openid kms:admin", &challenge);
    let answer = query(&sign_in(&idp, &browser, &url, "demo-user").await);
    assert_eq!(answer["error"], "invalid_scope");
    idp.stop().await;
    docs.stop();
}

#[tokio::test]
async fn unusable_documents_fail_as_unknown_clients() {
    let pki = cryptoutil_testkit::tls::demo_pki();
    let docs = DocumentServer::start(&pki).await;
    let redirect = docs.redirect();

    // The document's client_id is not the URL it came from.
    let mut doc = docs.document("/mismatch.json");
    doc["client_id"] = docs.url("/other.json").into();
    let mismatch = docs.put("/mismatch.json", Served::json(&doc));
    // A client secret has no place in a document.
    let mut doc = docs.document("/secret.json");
    doc["client_secret"] = "s3cret".into();
    let secret = docs.put("/secret.json", Served::json(&doc));
    // Neither has a symmetric authentication method.
    let mut doc = docs.document("/basic.json");
    doc["token_endpoint_auth_method"] = "client_secret_basic".into();
    let basic = docs.put("/basic.json", Served::json(&doc));
    // Larger than the 5 KiB limit (padding in an ignored field).
    let mut doc = docs.document("/huge.json");
    doc["padding"] = "x".repeat(6000).into();
    let huge = docs.put("/huge.json", Served::json(&doc));
    // Redirects are not followed.
    let good = docs.put("/good.json", Served::json(&docs.document("/good.json")));
    let redirected = docs.put(
        "/moved.json",
        Served {
            status: 302,
            headers: vec![("location", good.clone())],
            body: Vec::new(),
        },
    );
    // Not JSON, not found.
    let html = docs.put(
        "/page.json",
        Served {
            status: 200,
            headers: vec![("content-type", "text/html".to_owned())],
            body: b"<html></html>".to_vec(),
        },
    );
    let missing = docs.url("/missing.json");
    let idp = idp_trusting(&docs, &pki, |_| {}).await;

    for client_id in [
        &mismatch,
        &secret,
        &basic,
        &huge,
        &redirected,
        &html,
        &missing,
    ] {
        refused(&idp, client_id, &redirect).await;
    }
    assert_eq!(docs.hits("/good.json"), 0, "the redirect was followed");

    // A redirect URI the document does not list.
    refused_redirect(&idp, &good, &docs.url("/elsewhere")).await;

    // The token endpoint says invalid_client for the same documents.
    let (status, body) = idp
        .post_form(
            "/oauth2/v1/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &mismatch),
                ("code", "x"),
                ("redirect_uri", &redirect),
                ("code_verifier", &"v".repeat(43)),
            ],
        )
        .await;
    assert_eq!(body["error"], "invalid_client", "{status} {body}");
    idp.stop().await;
    docs.stop();
}

/// A redirect URI not in the document: a 400 page, no redirect.
async fn refused_redirect(idp: &Idp, client_id: &str, redirect: &str) {
    let browser = idp.browser();
    match authorize(idp, &browser, client_id, redirect).await {
        Err((400, body)) => assert!(body.contains("redirect_uri"), "{body}"),
        other => panic!("expected a 400 page, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_url_client_ids_are_never_fetched() {
    let pki = cryptoutil_testkit::tls::demo_pki();
    let docs = DocumentServer::start(&pki).await;
    docs.put("/c.json", Served::json(&docs.document("/c.json")));
    let port = docs.server.public_addr.port();
    let idp = idp_trusting(&docs, &pki, |_| {}).await;
    let redirect = docs.redirect();
    for client_id in [
        format!("http://127.0.0.1:{port}/c.json"),
        format!("https://user@127.0.0.1:{port}/c.json"),
        format!("https://user:pw@127.0.0.1:{port}/c.json"),
        format!("https://127.0.0.1:{port}/c.json#x"),
        format!("https://127.0.0.1:{port}/x/../c.json"),
        format!("https://127.0.0.1:{port}/./c.json"),
        format!("HTTPS://127.0.0.1:{port}/c.json"),
        format!("https://127.0.0.1:{port}/"),
        format!("https://127.0.0.1:{port}/{}", "c".repeat(300)),
    ] {
        refused(&idp, &client_id, &redirect).await;
    }
    assert_eq!(docs.hits("/c.json"), 0);
    idp.stop().await;
    docs.stop();
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let pki = cryptoutil_testkit::tls::demo_pki();
    let docs = DocumentServer::start(&pki).await;
    let client_id = docs.put("/c.json", Served::json(&docs.document("/c.json")));
    let by_name = client_id.replace("127.0.0.1", "localhost");
    let idp = idp_trusting(&docs, &pki, |s| {
        s.client_id_metadata_documents.allow_private_addresses = false;
    })
    .await;
    refused(&idp, &client_id, &docs.redirect()).await;
    refused(&idp, &by_name, &docs.redirect()).await;
    assert_eq!(
        docs.hits("/c.json"),
        0,
        "a private address was connected to"
    );
    idp.stop().await;
    docs.stop();
}

#[tokio::test]
async fn caching_headers_are_honoured_within_the_configured_bounds() {
    let pki = cryptoutil_testkit::tls::demo_pki();
    let docs = DocumentServer::start(&pki).await;
    // Asks for a day; the configured maximum (2 s) wins.
    let long = docs.put(
        "/long.json",
        Served::json(&docs.document("/long.json")).with_header("cache-control", "max-age=86400"),
    );
    // Asks for no caching; the configured minimum (1 s) still applies.
    let none = docs.put(
        "/none.json",
        Served::json(&docs.document("/none.json")).with_header("cache-control", "no-store"),
    );
    // A failure is remembered for the failure lifetime (1 s), even once the document is fixed.
    let mut broken = docs.document("/broken.json");
    broken["client_id"] = "https://example.com/x".into();
    let fixed_later = docs.put("/broken.json", Served::json(&broken));
    let idp = idp_trusting(&docs, &pki, |s| {
        let d = &mut s.client_id_metadata_documents;
        d.min_cache_lifetime = cryptoutil_server::config::HumanDuration::from_secs(1);
        d.max_cache_lifetime = cryptoutil_server::config::HumanDuration::from_secs(2);
        d.failure_cache_lifetime = cryptoutil_server::config::HumanDuration::from_secs(1);
    })
    .await;
    let redirect = docs.redirect();
    let browser = idp.browser();
    let ok = |r: Result<String, (u16, String)>| {
        assert!(
            r.as_ref().is_ok_and(|l| l.starts_with("/oidc/v1/login")),
            "{r:?}"
        );
    };
    ok(authorize(&idp, &browser, &long, &redirect).await);
    ok(authorize(&idp, &browser, &none, &redirect).await);
    refused(&idp, &fixed_later, &redirect).await;
    docs.put("/broken.json", Served::json(&docs.document("/broken.json")));
    ok(authorize(&idp, &browser, &long, &redirect).await);
    ok(authorize(&idp, &browser, &none, &redirect).await);
    refused(&idp, &fixed_later, &redirect).await;
    assert_eq!(
        (
            docs.hits("/long.json"),
            docs.hits("/none.json"),
            docs.hits("/broken.json")
        ),
        (1, 1, 1)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    ok(authorize(&idp, &browser, &long, &redirect).await);
    ok(authorize(&idp, &browser, &none, &redirect).await);
    ok(authorize(&idp, &browser, &fixed_later, &redirect).await);
    assert_eq!(
        (
            docs.hits("/long.json"),
            docs.hits("/none.json"),
            docs.hits("/broken.json")
        ),
        (1, 2, 2)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    ok(authorize(&idp, &browser, &long, &redirect).await);
    assert_eq!(
        docs.hits("/long.json"),
        2,
        "the maximum lifetime was not applied"
    );
    idp.stop().await;
    docs.stop();
}

#[tokio::test]
async fn off_without_demo_or_configuration() {
    let server = cryptoutil_testkit::identity::IdentityServer::start(None, |_| {})
        .await
        .unwrap();
    let http = server.client_builder().build().unwrap();
    let discovery: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            server.issuer
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let response = http
        .get(format!(
            "{}/oauth2/v1/authorize?client_id=https%3A%2F%2F127.0.0.1%2Fc.json",
            server.issuer
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST.as_u16());
    server.stop().await;
}
