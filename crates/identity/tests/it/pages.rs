//! The pages a person sees, over real HTTPS: prompt and max_age, remembered consent, deny,
//! logout, CSRF, the session cookie, accessibility markup, brute-force backoff at the login
//! form and the token endpoint, rate limits, and CORS for the single-page app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use cryptoutil_server::config::RateLimitSettings;
use reqwest::cookie::CookieStore;
use reqwest::header;
use serde_json::Value;

const SPA_ORIGIN: &str = "https://localhost:8084";

/// Starts an authorization request and returns the login page's HTML.
async fn open_login(idp: &Idp, browser: &reqwest::Client, url: &str) -> String {
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let page = browser.get(idp.url("/oidc/v1/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

async fn post_login(
    idp: &Idp,
    browser: &reqwest::Client,
    csrf_token: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf_token),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Redeems a code of the confidential client.
async fn redeem(idp: &Idp, code: &str, verifier: &str) -> Value {
    let (status, tokens) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn is_html(response: &reqwest::Response) -> bool {
    response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html")
}

fn confidential_url(idp: &Idp, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    (
        authorize_url(idp, CONFIDENTIAL, CONFIDENTIAL_REDIRECT, scope, &challenge),
        verifier,
    )
}

#[tokio::test]
async fn prompt_none_reports_login_and_consent_required_and_prompt_login_asks_again() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, _) = confidential_url(&idp, "openid profile");

    // No session: login_required, with state and iss.
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    let params = query(&location(&response));
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], idp.issuer);

    // Signed in but not consented: consent_required.
    let html = open_login(&idp, &browser, &url).await;
    let response = post_login(
        &idp,
        &browser,
        &csrf(&html),
        "demo-user",
        "demo-user-password",
    )
    .await;
    assert_eq!(location(&response), "/oidc/v1/consent");
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    let params = query(&location(&response));
    assert_eq!(params["error"], "consent_required");
    assert_eq!(params["iss"], idp.issuer);

    // Consent given: prompt=none succeeds silently.
    let callback = sign_in(&idp, &browser, &url, "demo-user").await;
    assert!(query(&callback).contains_key("code"));
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert!(query(&location(&response)).contains_key("code"));

    // prompt=login sends a signed-in user back to the login page, and then on to the client.
    let response = browser
        .get(format!("{url}&prompt=login"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(&browser, "/oidc/v1/login").await;
    let response = post_login(
        &idp,
        &browser,
        &csrf(&html),
        "demo-user",
        "demo-user-password",
    )
    .await;
    assert!(location(&response).starts_with(CONFIDENTIAL_REDIRECT));
    idp.stop().await;
}

#[tokio::test]
async fn max_age_forces_a_new_sign_in_and_auth_time_is_in_the_id_token() {
    let idp = Idp::demo().await;
    let (browser, jar) = idp.browser_with_jar();
    let (url, _) = confidential_url(&idp, "openid");
    sign_in(&idp, &browser, &url, "demo-user").await;

    // max_age=0 always asks again.
    let response = browser
        .get(format!("{url}&max_age=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");

    // Move the session's sign-in two minutes into the past.
    let cookies = jar.cookies(&url::Url::parse(&idp.issuer).unwrap()).unwrap();
    let value = cookies
        .to_str()
        .unwrap()
        .split(';')
        .find_map(|c| c.trim().strip_prefix("__Host-cryptoutil-identity="))
        .unwrap()
        .to_owned();
    let store = idp.identity.store();
    let now = time::OffsetDateTime::now_utc();
    let hash = cryptoutil_identity::tokens::secret_hash(&value);
    let mut session = store.session(&hash, now).await.unwrap().unwrap();
    let signed_in_at = now - time::Duration::seconds(120);
    session.auth_time = Some(signed_in_at);
    session.pending_request = None;
    store.save_session(&session).await.unwrap();

    // Older than max_age=60: sign in again. Within max_age=600: a code at once, and the ID
    // token names the (moved) sign-in time.
    let response = browser
        .get(format!("{url}&max_age=60&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "login_required");
    let response = browser
        .get(format!("{url}&max_age=60"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let (url, verifier) = confidential_url(&idp, "openid");
    let response = browser
        .get(format!("{url}&max_age=600"))
        .send()
        .await
        .unwrap();
    let code = query(&location(&response))["code"].clone();
    let tokens = redeem(&idp, &code, &verifier).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["auth_time"], signed_in_at.unix_timestamp());
    idp.stop().await;
}

#[tokio::test]
async fn consent_is_remembered_per_scope_set_and_deny_returns_access_denied() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, _) = confidential_url(&idp, "openid profile");
    sign_in(&idp, &browser, &url, "demo-user").await;

    // Same (or narrower) scopes: straight back to the client.
    for scope in ["openid profile", "openid"] {
        let (url, _) = confidential_url(&idp, scope);
        let response = browser.get(&url).send().await.unwrap();
        assert!(query(&location(&response)).contains_key("code"), "{scope}");
    }
    // A wider set asks again; the page lists what is asked and offers two buttons.
    let (url, _) = confidential_url(&idp, "openid profile email");
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/consent");
    let page = browser
        .get(idp.url("/oidc/v1/consent"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("see your email address"), "{html}");
    assert!(
        html.contains("Signed in as <strong>demo-user</strong>"),
        "{html}"
    );
    assert!(html.contains(">Allow</button>") && html.contains(">Deny</button>"));
    assert!(html.contains("name=\"decision\" value=\"deny\""));

    // Deny: access_denied with state and iss, and nothing remembered.
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert!(target.starts_with(CONFIDENTIAL_REDIRECT), "{target}");
    let params = query(&target);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], idp.issuer);
    assert!(!params.contains_key("code"));
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "consent_required");
    idp.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_refuses_unregistered_targets_and_foreign_hints() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, verifier) = confidential_url(&idp, "openid");
    let code = query(&sign_in(&idp, &browser, &url, "demo-user").await)["code"].clone();
    let id_token = redeem(&idp, &code, &verifier).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let logout = |pairs: &[(&str, &str)]| {
        let mut u = url::Url::parse(&idp.url("/oidc/v1/logout")).unwrap();
        u.query_pairs_mut().extend_pairs(pairs);
        u.to_string()
    };
    // Unregistered post-logout URI: an HTML error page, not a redirect; still signed in.
    let response = browser
        .get(logout(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get(header::LOCATION).is_none());
    assert!(is_html(&response));
    // A hint issued to another client than the one named: refused the same way.
    let response = browser
        .get(logout(&[
            ("id_token_hint", &id_token),
            ("client_id", SPA),
            ("post_logout_redirect_uri", "https://localhost:8084/"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(is_html(&response));
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("client_id does not match the id_token_hint")
    );
    let (url, _) = confidential_url(&idp, "openid");
    let response = browser.get(&url).send().await.unwrap();
    assert!(location(&response).starts_with(CONFIDENTIAL_REDIRECT));

    // Registered URI: the session ends and the next request asks for a sign-in.
    let response = browser
        .post(idp.url("/oidc/v1/logout"))
        .form(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://localhost:8084/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "https://localhost:8084/");
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    idp.stop().await;
}

#[tokio::test]
async fn csrf_failures_are_403_pages_and_change_nothing() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, _) = confidential_url(&idp, "openid");
    open_login(&idp, &browser, &url).await;
    for token in [None, Some("wrong"), Some("")] {
        let mut form = vec![
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = browser
            .post(idp.url("/oidc/v1/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{token:?}");
        assert!(is_html(&response));
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }
    // Not signed in by any of that.
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "login_required");

    // The consent form: a wrong token neither consents nor finishes the request.
    let html = open_login(&idp, &browser, &url).await;
    let response = post_login(
        &idp,
        &browser,
        &csrf(&html),
        "demo-user",
        "demo-user-password",
    )
    .await;
    assert_eq!(location(&response), "/oidc/v1/consent");
    let page = browser
        .get(idp.url("/oidc/v1/consent"))
        .send()
        .await
        .unwrap();
    let real = csrf(&page.text().await.unwrap());
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("csrf_token", "not-the-token"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(is_html(&response));
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = browser
        .get(format!("{url}&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(query(&location(&response))["error"], "consent_required");
    // The request is still pending: the right token finishes it.
    let response = browser
        .post(idp.url("/oidc/v1/consent"))
        .form(&[("csrf_token", real.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert!(query(&location(&response)).contains_key("code"));
    idp.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_host_only_secure_httponly_and_lax() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, _) = confidential_url(&idp, "openid");
    let response = browser.get(&url).send().await.unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-cryptoutil-identity="),
        "{cookie}"
    );
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
    for expected in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(attributes.contains(&expected), "{expected} in {cookie}");
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("Domain")),
        "{cookie}"
    );
    // A new session id after sign-in, with the same attributes.
    let html = idp.page(&browser, "/oidc/v1/login").await;
    let response = post_login(
        &idp,
        &browser,
        &csrf(&html),
        "demo-user",
        "demo-user-password",
    )
    .await;
    let after = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert_ne!(after.split(';').next(), cookie.split(';').next());
    assert!(after.contains("Secure; HttpOnly; SameSite=Lax"), "{after}");
    idp.stop().await;
}

#[tokio::test]
async fn login_and_consent_pages_are_accessible() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    let (url, _) = confidential_url(&idp, "openid");
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let page = browser.get(idp.url("/oidc/v1/login")).send().await.unwrap();
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    // The only script is ours, from this origin (the passkey button); nothing inline.
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    for expected in [
        "<html lang=\"en\">",
        "<title>Sign in · cryptoutil Identity</title>",
        "<label for=\"username\">Username</label>",
        "<label for=\"password\">Password</label>",
        "autocomplete=\"username webauthn\" required autofocus>",
        "<button type=\"submit\" class=\"primary\">Sign in</button>",
        "to continue to <strong>",
        ":focus-visible{outline:3px solid",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert!(
        html.contains("<script src=\"/oidc/v1/assets/passkey.js\" defer></script>"),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("aria-invalid=\"true\""), "{html}");

    // A wrong password: the summary is an alert, the message sits next to the password field,
    // which is marked invalid, described by it and focused; the username is kept.
    let response = post_login(&idp, &browser, &csrf(&html), "demo-user", "wrong").await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    for expected in [
        "<title>Error: Sign in · cryptoutil Identity</title>",
        "role=\"alert\"",
        "<label for=\"password\">Password</label><p class=\"field-error\" id=\"password-error\">The username or password is incorrect.</p>",
        "aria-invalid=\"true\" aria-describedby=\"password-error\" autofocus>",
        "value=\"demo-user\"",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    // An empty username: the message goes next to the username field.
    let response = post_login(&idp, &browser, &csrf(&html), "", "x").await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"username-error\">Enter your username.</p>"),
        "{html}"
    );
    assert!(
        html.contains("aria-invalid=\"true\" aria-describedby=\"username-error\" autofocus>"),
        "{html}"
    );

    let response = post_login(
        &idp,
        &browser,
        &csrf(&html),
        "demo-user",
        "demo-user-password",
    )
    .await;
    assert_eq!(location(&response), "/oidc/v1/consent");
    let html = idp.page(&browser, "/oidc/v1/consent").await;
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<title>Allow access? · cryptoutil Identity</title>"));
    assert!(html.contains(
        "<button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\">Allow</button>"
    ));
    assert!(html.contains(
        "<button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>"
    ));
    assert!(
        !html.contains("autofocus"),
        "no accidental consent on Enter"
    );
    idp.stop().await;
}

/// Backoff long enough that no lock runs out during a test.
fn slow_backoff(settings: &mut cryptoutil_identity::config::IdentitySettings) {
    settings.brute_force.account_free_failures = 3;
    settings.brute_force.address_free_failures = 6;
    settings.brute_force.base_delay = cryptoutil_server::config::HumanDuration::from_secs(600);
    settings.brute_force.max_delay = cryptoutil_server::config::HumanDuration::from_secs(900);
}

/// Signs in at a fresh login page; the response to the login POST.
async fn try_sign_in(
    idp: &Idp,
    browser: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let (url, _) = confidential_url(idp, "openid");
    let html = open_login(idp, browser, &url).await;
    post_login(idp, browser, &csrf(&html), user, password).await
}

#[tokio::test]
async fn wrong_passwords_back_off_per_account_and_per_address() {
    let idp = Idp::demo_with(slow_backoff).await;
    let attacker = idp.browser_from("127.0.0.1");
    for _ in 0..2 {
        let response = try_sign_in(&idp, &attacker, "demo-user", "guess").await;
        assert_eq!(response.status(), 401);
    }
    // The third failure starts the backoff.
    let response = try_sign_in(&idp, &attacker, "demo-user", "guess").await;
    assert_eq!(response.status(), 429);
    // While locked even the right password is refused, unchecked, with the form and a clear
    // message; also from another address (the account is backing off).
    for browser in [&attacker, &idp.browser_from("127.0.0.2")] {
        let response = try_sign_in(&idp, browser, "demo-user", "demo-user-password").await;
        assert_eq!(response.status(), 429);
        assert!(is_html(&response));
        let retry: u64 = response.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("Too many failed sign-in attempts. Try again in "),
            "{html}"
        );
        assert!(html.contains("<label for=\"username\">Username</label>"));
        assert!(html.contains("role=\"alert\""));
    }
    // Another account from another address is unaffected.
    let other = idp.browser_from("127.0.0.3");
    let response = try_sign_in(&idp, &other, "demo-admin", "demo-admin-password").await;
    assert!(location(&response).starts_with("/oidc/v1/consent"));

    // Spraying many usernames from one address: the address backs off after 6 failures, for
    // every account, while other addresses still sign in.
    let sprayer = idp.browser_from("127.0.0.4");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let name = format!("nobody-{}", uuid::Uuid::now_v7());
        statuses.push(
            try_sign_in(&idp, &sprayer, &name, "guess")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let response = try_sign_in(&idp, &sprayer, "demo-admin", "demo-admin-password").await;
    assert_eq!(response.status(), 429);
    let response = try_sign_in(
        &idp,
        &idp.browser_from("127.0.0.5"),
        "demo-admin",
        "demo-admin-password",
    )
    .await;
    assert!(location(&response).starts_with("/oidc/v1/consent"));
    idp.stop().await;
}

#[tokio::test]
async fn a_trusted_address_keeps_signing_in_while_the_account_backs_off_elsewhere() {
    let idp = Idp::demo_with(slow_backoff).await;
    let owner = idp.browser_from("127.0.0.10");
    let response = try_sign_in(&idp, &owner, "demo-user", "demo-user-password").await;
    assert!(location(&response).starts_with("/oidc/v1/consent"));
    let attacker = idp.browser_from("127.0.0.11");
    for _ in 0..3 {
        try_sign_in(&idp, &attacker, "demo-user", "guess").await;
    }
    let response = try_sign_in(&idp, &attacker, "demo-user", "demo-user-password").await;
    assert_eq!(response.status(), 429);
    // The owner's address signed in successfully before: the attacker cannot lock it out.
    let owner_again = idp.browser_from("127.0.0.10");
    let response = try_sign_in(&idp, &owner_again, "demo-user", "demo-user-password").await;
    assert!(location(&response).starts_with("/oidc/v1/consent"));
    idp.stop().await;
}

async fn basic_token(
    client: &reqwest::Client,
    idp: &Idp,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    client
        .post(idp.url("/oauth2/v1/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn client_secret_guessing_at_the_token_endpoint_backs_off() {
    let idp = Idp::demo_with(slow_backoff).await;
    // The real service authenticates first from its own address.
    let service = idp.browser_from("127.0.0.20");
    let response = basic_token(&service, &idp, KMS_CLIENT, KMS_CLIENT_SECRET).await;
    assert_eq!(response.status(), 200);

    let attacker = idp.browser_from("127.0.0.21");
    for _ in 0..3 {
        let response = basic_token(&attacker, &idp, KMS_CLIENT, "guess").await;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // Locked: refused unchecked with 429, Retry-After and an RFC 6749 body, even with the
    // right secret, from the guessing address and from any other new one.
    for client in [&attacker, &idp.browser_from("127.0.0.22")] {
        let response = basic_token(client, &idp, KMS_CLIENT, KMS_CLIENT_SECRET).await;
        assert_eq!(response.status(), 429);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("too many failed client authentication attempts"),
            "{body}"
        );
    }
    // The service keeps working from its known address; other clients are unaffected.
    let response = basic_token(&service, &idp, KMS_CLIENT, KMS_CLIENT_SECRET).await;
    assert_eq!(response.status(), 200);
    let response = basic_token(&attacker, &idp, CONFIDENTIAL, CONFIDENTIAL_SECRET).await;
    assert_eq!(response.status(), 200);
    // Introspection uses the same protection.
    for _ in 0..3 {
        let (status, _) = idp
            .post_form(
                "/oauth2/v1/introspect",
                Some((INTROSPECTOR, "guess")),
                &[("token", "x")],
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body) = idp
        .post_form(
            "/oauth2/v1/introspect",
            Some((INTROSPECTOR, INTROSPECTOR_SECRET)),
            &[("token", "x")],
        )
        .await;
    assert_eq!(status, 429, "{body}");
    idp.stop().await;
}

#[tokio::test]
async fn pages_are_rate_limited_per_address_with_an_html_page() {
    let idp = Idp::demo_with(|s| {
        s.rate_limits.pages = RateLimitSettings {
            per_second: 1,
            burst: 3,
        };
        s.rate_limits.protocol = RateLimitSettings {
            per_second: 1,
            burst: 3,
        };
    })
    .await;
    let browser = idp.browser();
    let mut limited = None;
    for _ in 0..10 {
        let response = browser.get(idp.url("/oidc/v1/login")).send().await.unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the page limit applies");
    assert!(is_html(&limited));
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert!(limited.text().await.unwrap().contains("Too many requests"));
    // The protocol endpoints have their own buckets; another address has its own too.
    let other = idp.browser_from("127.0.0.30");
    let response = other.get(idp.url("/oidc/v1/login")).send().await.unwrap();
    assert_ne!(response.status(), 429);
    let mut limited = None;
    for _ in 0..10 {
        let response = browser
            .get(idp.url("/oauth2/v1/jwks"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the protocol limit applies");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    idp.stop().await;
}

async fn preflight(idp: &Idp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    idp.http
        .request(reqwest::Method::OPTIONS, idp.url(path))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_lets_listed_origins_call_the_protocol_endpoints_without_credentials() {
    let configured = "https://app.example.com";
    let idp = Idp::demo_with(|s| {
        s.cors.allowed_origins = vec![configured.parse().unwrap()];
    })
    .await;
    // The demo origin (from the seeded redirect URIs) and the configured one.
    for origin in [SPA_ORIGIN, configured] {
        for (path, method) in [
            ("/oauth2/v1/token", "POST"),
            ("/oauth2/v1/revoke", "POST"),
            ("/oidc/v1/userinfo", "GET"),
            ("/oidc/v1/userinfo", "POST"),
            ("/.well-known/openid-configuration", "GET"),
            ("/oauth2/v1/jwks", "GET"),
        ] {
            let response = preflight(&idp, path, origin, method).await;
            assert_eq!(response.status(), 204, "{origin} {method} {path}");
            let h = response.headers();
            assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
            assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
            let methods = h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
            assert!(methods.contains(method), "{methods}");
            let headers = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
            assert!(
                headers.contains("authorization") && headers.contains("content-type"),
                "{headers}"
            );
            assert!(h[header::VARY].to_str().unwrap().contains("origin"));
        }
    }
    // Unlisted origins are refused; the pages never answer a preflight.
    let response = preflight(&idp, "/oauth2/v1/token", "https://evil.example", "POST").await;
    assert_eq!(response.status(), 403);
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let response = preflight(&idp, "/oauth2/v1/token", "http://localhost:8084", "POST").await;
    assert_eq!(response.status(), 403);
    for path in [
        "/oauth2/v1/authorize",
        "/oidc/v1/login",
        "/oidc/v1/consent",
        "/oidc/v1/logout",
        "/oauth2/v1/introspect",
    ] {
        let response = preflight(&idp, path, SPA_ORIGIN, "POST").await;
        assert_ne!(response.status(), 204, "{path}");
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none(),
            "{path}"
        );
    }

    // Actual responses: the listed origin, exactly, and Vary: Origin; nothing for others.
    let response = idp
        .http
        .post(idp.url("/oauth2/v1/token"))
        .header(header::ORIGIN, SPA_ORIGIN)
        .basic_auth(KMS_CLIENT, Some(KMS_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], SPA_ORIGIN);
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    assert!(h[header::VARY].to_str().unwrap().contains("origin"));
    let token: Value = response.json().await.unwrap();
    let response = idp
        .http
        .get(idp.url("/oidc/v1/userinfo"))
        .header(header::ORIGIN, "https://evil.example")
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert!(
        response.headers()[header::VARY]
            .to_str()
            .unwrap()
            .contains("origin")
    );
    let response = idp
        .http
        .get(idp.url("/.well-known/openid-configuration"))
        .header(header::ORIGIN, configured)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        configured
    );
    // The pages never carry CORS headers.
    let response = idp
        .http
        .get(idp.url("/oidc/v1/login"))
        .header(header::ORIGIN, SPA_ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    idp.stop().await;
}

#[tokio::test]
async fn user_facing_errors_are_pages_never_json() {
    let idp = Idp::demo().await;
    let browser = idp.browser();
    for path in [
        "/oidc/v1/login",
        "/oidc/v1/consent",
        "/oauth2/v1/authorize?client_id=nobody",
        "/oidc/v1/logout?post_logout_redirect_uri=https://evil.example/",
    ] {
        let response = browser.get(idp.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert!(is_html(&response), "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("role=\"alert\""), "{path}: {html}");
    }
    idp.stop().await;
}
