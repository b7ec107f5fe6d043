//! The service and browser API surfaces on a real HTTPS server (TLS 1.3, demo CA): allowlist,
//! rate limit, CORS, CSRF, no-store and security headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::routing::get;
use cryptoutil_server::config::{
    BrowserSettings, RateLimitSettings, ServerSettings, SurfaceSettings,
};
use cryptoutil_server::surface::{
    BROWSER_API_CSP, CSRF_COOKIE, PERMISSIONS_POLICY, RateLimit, browser_surface, cross_origin,
    service_surface,
};
use cryptoutil_server::{DevPki, RunningServer, ServerSpec, TlsRuntime};
use cryptoutil_tls::{TrustConfig, client_config};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

const ALLOWED_ORIGIN: &str = "https://app.example.com";

struct Harness {
    server: RunningServer,
    client: reqwest::Client,
    _pki: DevPki,
    _tls: TlsRuntime,
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.public_addr.port())
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    async fn csrf_token(&self) -> (String, String) {
        let response = self
            .request(Method::GET, "/browser/api/v1/csrf-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        let token = body["csrf_token"].as_str().unwrap().to_owned();
        (token, cookie)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// A few operations, mounted on both surfaces like the KMS does.
fn operations() -> Router {
    Router::new()
        .route(
            "/things",
            get(|| async { axum::Json(json!({"items": []})) })
                .post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        )
        .route(
            "/things/{id}",
            get(|| async { "one" })
                .put(|| async { "put" })
                .patch(|| async { "patched" })
                .delete(|| async { "deleted" }),
        )
}

fn rate(per_second: u32, burst: u32) -> RateLimitSettings {
    RateLimitSettings { per_second, burst }
}

async fn start(service: SurfaceSettings, browser: BrowserSettings) -> Harness {
    start_with(
        service_surface(operations(), &service).merge(browser_surface(operations(), &browser)),
    )
    .await
}

async fn start_with(public: Router) -> Harness {
    let pki = DevPki::generate().unwrap();
    let mut settings = ServerSettings::with_ports(0, 0);
    settings.public.address = "127.0.0.1".parse().unwrap();
    settings.admin.require_client_cert = Some(false);
    settings.tls.watch = Some(false);
    pki.apply(&mut settings, "kms");
    let tls = cryptoutil_server::tls_setup::build(&settings, false, None).unwrap();
    let server = cryptoutil_server::start(ServerSpec {
        name: "surfaces-test",
        settings,
        public,
        admin_extra: Router::new(),
        checks: Vec::new(),
        tls: tls.setup.clone(),
    })
    .await
    .unwrap();
    let config = client_config(TrustConfig::from_ca_files(&[pki.root()]).unwrap(), None).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap();
    Harness {
        server,
        client,
        _pki: pki,
        _tls: tls,
    }
}

async fn start_default() -> Harness {
    start(
        SurfaceSettings::default(),
        BrowserSettings {
            cors_origins: vec![ALLOWED_ORIGIN.parse().unwrap()],
            ..BrowserSettings::default()
        },
    )
    .await
}

async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

fn unique_name() -> String {
    format!("thing-{}", uuid::Uuid::now_v7())
}

#[tokio::test]
async fn service_surface_has_no_csrf_cors_or_cookies_and_is_never_cached() {
    let h = start_default().await;
    let name = unique_name();
    let response = h
        .request(Method::POST, "/service/api/v1/things")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no CSRF token needed");
    let headers = response.headers().clone();
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(headers.get(header::CONTENT_SECURITY_POLICY).is_none());
    assert_eq!(response.json::<Value>().await.unwrap()["name"], name);

    let missing = h
        .request(Method::GET, "/service/api/v1/csrf-token")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let preflight = h
        .request(Method::OPTIONS, "/service/api/v1/things")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        preflight
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert_eq!(preflight.headers()[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn browser_surface_sets_strict_headers_on_every_response() {
    let h = start_default().await;
    let ok = h
        .request(Method::GET, "/browser/api/v1/things")
        .send()
        .await
        .unwrap();
    let refused = h
        .request(Method::DELETE, "/browser/api/v1/things/1")
        .send()
        .await
        .unwrap();
    let wrong_method = h
        .request(Method::POST, "/browser/api/v1/things/1")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // CSRF runs before routing to the method, so even a wrong method needs the token.
    assert_eq!(wrong_method.status(), StatusCode::FORBIDDEN);
    for response in [&ok, &refused, &wrong_method] {
        let headers = response.headers();
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], BROWSER_API_CSP);
        assert_eq!(headers["permissions-policy"], PERMISSIONS_POLICY);
        assert_eq!(headers["cross-origin-resource-policy"], "same-origin");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert!(
            headers[header::STRICT_TRANSPORT_SECURITY]
                .to_str()
                .unwrap()
                .starts_with("max-age=")
        );
        assert_eq!(
            headers
                .get_all(header::CONTENT_SECURITY_POLICY)
                .iter()
                .count(),
            1,
            "not duplicated"
        );
    }
    let unknown = h
        .request(Method::GET, "/browser/api/v1/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        unknown.headers()[header::CONTENT_SECURITY_POLICY],
        BROWSER_API_CSP,
        "404s inside the surface pass through its layers"
    );
    problem(unknown).await;

    let (token, _) = h.csrf_token().await;
    let wrong_method = h
        .request(Method::POST, "/browser/api/v1/things/1")
        .header(header::COOKIE, format!("{CSRF_COOKIE}={token}"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.headers()[header::CONTENT_SECURITY_POLICY],
        BROWSER_API_CSP
    );
    assert_eq!(problem(wrong_method).await["status"], 405);
}

#[tokio::test]
async fn csrf_token_cookie_has_strict_attributes_and_is_reused() {
    let h = start_default().await;
    let (token, cookie) = h.csrf_token().await;
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(attributes[0], format!("{CSRF_COOKIE}={token}"));
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(
            attributes.contains(&attribute),
            "{cookie} lacks {attribute}"
        );
    }
    assert!(
        !cookie.to_ascii_lowercase().contains("domain="),
        "__Host- cookies have no Domain"
    );

    // A fresh client gets a fresh token; a client presenting its cookie gets the same one back.
    let (other, _) = h.csrf_token().await;
    assert_ne!(token, other);
    let again = h
        .request(Method::GET, "/browser/api/v1/csrf-token")
        .header(header::COOKIE, format!("{CSRF_COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["csrf_token"], token);
}

#[tokio::test]
async fn csrf_refuses_missing_or_wrong_tokens_and_accepts_the_right_one() {
    let h = start_default().await;
    let (token, _) = h.csrf_token().await;
    let (other, _) = h.csrf_token().await;
    let cookie = format!("{CSRF_COOKIE}={token}");

    let cases: [(&str, Option<&str>, Option<&str>); 4] = [
        ("no token at all", None, None),
        ("cookie only", Some(&cookie), None),
        ("header only", None, Some(&token)),
        ("wrong header", Some(&cookie), Some(&other)),
    ];
    for (case, cookie, sent) in cases {
        let mut request = h
            .request(Method::POST, "/browser/api/v1/things")
            .json(&json!({"name": unique_name()}));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(sent) = sent {
            request = request.header("x-csrf-token", sent);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(
            problem(response).await["error"],
            "csrf_token_invalid",
            "{case}"
        );
    }

    let name = unique_name();
    let accepted = h
        .request(Method::POST, "/browser/api/v1/things")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &token)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(accepted.json::<Value>().await.unwrap()["name"], name);

    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let refused = h
            .request(method.clone(), "/browser/api/v1/things/1")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{method}");
        let accepted = h
            .request(method.clone(), "/browser/api/v1/things/1")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), StatusCode::OK, "{method}");
    }
    // Safe methods need no token.
    let read = h
        .request(Method::GET, "/browser/api/v1/things/1")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_allows_listed_origins_only() {
    let h = start_default().await;
    let preflight = |origin: &'static str| {
        h.request(Method::OPTIONS, "/browser/api/v1/things")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type, x-csrf-token",
            )
            .send()
    };
    let allowed = preflight(ALLOWED_ORIGIN).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let headers = allowed.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED_ORIGIN);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    let allow_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allow_headers.contains("x-csrf-token"), "{allow_headers}");
    assert!(allow_headers.contains("content-type"), "{allow_headers}");
    let allow_methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(allow_methods.contains("POST"), "{allow_methods}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");

    let refused = preflight("https://evil.example.net").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert!(
        refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    assert_eq!(problem(refused).await["error"], "cors_origin_not_allowed");

    // Simple requests: a listed origin can read the response, another gets no CORS headers.
    let listed = h
        .request(Method::GET, "/browser/api/v1/things")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    assert_eq!(
        listed.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let vary: Vec<_> = listed.headers().get_all(header::VARY).iter().collect();
    assert!(vary.iter().any(|v| v.to_str().unwrap().contains("origin")));
    let unlisted = h
        .request(Method::GET, "/browser/api/v1/things")
        .header(header::ORIGIN, "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(unlisted.status(), StatusCode::OK);
    assert!(
        unlisted
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_once_the_burst_is_spent() {
    let burst = 5;
    let h = start(
        SurfaceSettings {
            rate_limit: rate(1, burst),
            ..SurfaceSettings::default()
        },
        BrowserSettings {
            rate_limit: rate(1, burst),
            ..BrowserSettings::default()
        },
    )
    .await;
    for surface in ["service", "browser"] {
        let path = format!("/{surface}/api/v1/things");
        // A full bucket serves the whole burst.
        for i in 0..burst {
            let response = h.request(Method::GET, &path).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{surface} request {i}");
        }
        // At 1/s the next requests find the bucket empty (counted, not timed: 20 more requests
        // would need 20 s to all pass).
        let mut limited = None;
        for _ in 0..20 {
            let response = h.request(Method::GET, &path).send().await.unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(response);
                break;
            }
        }
        let limited = limited.unwrap_or_else(|| panic!("{surface}: never limited"));
        let retry_after: u64 = limited.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        assert_eq!(limited.headers()[header::CACHE_CONTROL], "no-store");
        let body = problem(limited).await;
        assert_eq!(body["status"], 429);
        assert_eq!(body["error"], "rate_limited");
    }
}

/// The public building blocks a product mounts on its own routes: one limiter shared by two
/// routers with a custom refusal, and CORS without credentials around it.
#[tokio::test]
async fn rate_limit_and_cross_origin_layers_for_product_routes() {
    use axum::response::IntoResponse;
    fn html_refusal(_: u64) -> axum::response::Response {
        ([(header::CONTENT_TYPE, "text/html")], "<p>slow down</p>").into_response()
    }
    let limit = RateLimit::new(&rate(1, 3)).refusing_with(html_refusal);
    let origins: [url::Url; 1] = [ALLOWED_ORIGIN.parse().unwrap()];
    let open = cross_origin(
        limit.apply(Router::new().route(
            "/open",
            get(|| async { "open" }).post(|| async { "posted" }),
        )),
        &["/open"],
        &origins,
        false,
    );
    let other = limit.apply(Router::new().route("/other", get(|| async { "other" })));
    let h = start_with(open.merge(other)).await;

    let preflight = h
        .request(Method::OPTIONS, "/open")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    assert!(
        preflight
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none(),
        "no credentials"
    );
    let refused = h
        .request(Method::OPTIONS, "/open")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Preflights are answered before the limit; the buckets are shared with /other.
    let response = h
        .request(Method::POST, "/open")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    assert_eq!(response.headers()[header::VARY], "origin");
    let mut limited = None;
    for _ in 0..10 {
        let response = h.request(Method::GET, "/other").send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the shared bucket runs dry");
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(limited.headers()[header::CONTENT_TYPE], "text/html");
    assert_eq!(limited.text().await.unwrap(), "<p>slow down</p>");
    // A listed origin can read the 429 of a cross-origin route.
    let limited = h
        .request(Method::POST, "/open")
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
}

#[tokio::test]
async fn allowlist_refuses_other_addresses_with_403_and_admits_listed_ones() {
    let outside = vec!["192.0.2.0/24".parse().unwrap()];
    let h = start(
        SurfaceSettings {
            allowed_ips: outside.clone(),
            ..SurfaceSettings::default()
        },
        BrowserSettings {
            allowed_ips: outside,
            ..BrowserSettings::default()
        },
    )
    .await;
    for surface in ["service", "browser"] {
        let response = h
            .request(Method::GET, &format!("/{surface}/api/v1/things"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{surface}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(problem(response).await["error"], "ip_not_allowed");
    }

    let loopback = vec![
        "192.0.2.0/24".parse().unwrap(),
        "127.0.0.0/8".parse().unwrap(),
    ];
    let h = start(
        SurfaceSettings {
            allowed_ips: loopback.clone(),
            ..SurfaceSettings::default()
        },
        BrowserSettings {
            allowed_ips: loopback,
            ..BrowserSettings::default()
        },
    )
    .await;
    for surface in ["service", "browser"] {
        let response = h
            .request(Method::GET, &format!("/{surface}/api/v1/things"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{surface}");
    }
}

#[test]
fn settings_defaults_and_validation() {
    use cryptoutil_server::config::{SurfacesSettings, Validator};
    let defaults = SurfacesSettings::default();
    assert_eq!(defaults.service.rate_limit, rate(1000, 1000));
    assert_eq!(defaults.browser.rate_limit, rate(100, 100));
    assert!(defaults.service.allowed_ips.is_empty());
    assert!(defaults.browser.cors_origins.is_empty());
    let mut v = Validator::default();
    defaults.validate("api", &mut v);
    assert!(v.finish().is_ok());

    let parsed: SurfacesSettings = serde_yaml_ng::from_str(
        "service:\n  allowed_ips: [10.0.0.0/8, 192.0.2.7/32]\nbrowser:\n  rate_limit: {per_second: 5, burst: 10}\n  cors_origins: ['https://app.example.com']\n",
    )
    .unwrap();
    assert_eq!(parsed.service.allowed_ips.len(), 2);
    assert_eq!(
        parsed.service.rate_limit,
        rate(1000, 1000),
        "unset keeps the default"
    );
    assert_eq!(parsed.browser.rate_limit, rate(5, 10));
    assert!(
        serde_yaml_ng::from_str::<SurfacesSettings>("service:\n  allowed_ips: [not-an-ip]\n")
            .is_err()
    );
    assert!(serde_yaml_ng::from_str::<SurfacesSettings>("service:\n  cors_origins: []\n").is_err());

    let mut bad = SurfacesSettings::default();
    bad.service.rate_limit.per_second = 0;
    bad.browser.cors_origins = vec![
        "http://app.example.com".parse().unwrap(),
        "https://app.example.com/path".parse().unwrap(),
        "https://app.example.com".parse().unwrap(),
    ];
    let mut v = Validator::default();
    bad.validate("api", &mut v);
    let message = v.finish().unwrap_err().to_string();
    assert!(
        message.contains("api.service.rate_limit.per_second"),
        "{message}"
    );
    assert!(message.contains("api.browser.cors_origins[0]"), "{message}");
    assert!(message.contains("api.browser.cors_origins[1]"), "{message}");
    assert!(
        !message.contains("api.browser.cors_origins[2]"),
        "{message}"
    );
}
