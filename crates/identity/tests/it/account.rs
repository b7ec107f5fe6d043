//! The account pages (`/account`): sign-in guard, CSRF, password change, sessions, the recent
//! sign-in rule, and the admin API's reset of a user's factors, over real HTTPS.

use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use serde_json::Value;
use time::OffsetDateTime;

use crate::common::*;
use cryptoutil_identity::model::{TotpFactor, User, WebAuthnCredential};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
                      AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 \
                      Safari/604.1";
const PASSWORD: &str = "first password of the test";

/// A new user with a unique name and [`PASSWORD`].
async fn new_user(idp: &Idp) -> User {
    let id = uuid::Uuid::now_v7();
    idp.identity
        .store()
        .upsert_user(&User {
            id: id.to_string(),
            username: format!("account-{id}"),
            password_hash: cryptoutil_realm::password::hash_password(PASSWORD).unwrap(),
            enabled: true,
            roles: Vec::new(),
            tenant_id: None,
            name: Some("Ada Lovelace".to_owned()),
            given_name: None,
            family_name: None,
            email: None,
            email_verified: false,
            version: 1,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap()
}

/// Opens `/account` in `browser` (sent to the login page), signs in as `username` with
/// `password` from a browser called `user_agent`, and returns the login's response.
async fn try_account_sign_in(
    idp: &Idp,
    browser: &reqwest::Client,
    username: &str,
    password: &str,
    user_agent: &str,
) -> reqwest::Response {
    let response = browser.get(idp.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/oidc/v1/login");
    let login = idp.page(browser, "/oidc/v1/login").await;
    browser
        .post(idp.url("/oidc/v1/login"))
        .header("user-agent", user_agent)
        .form(&[
            ("csrf_token", csrf(&login).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs `browser` in to its account; returns the account page.
async fn account_sign_in(
    idp: &Idp,
    browser: &reqwest::Client,
    user: &User,
    password: &str,
    user_agent: &str,
) -> String {
    let response = try_account_sign_in(idp, browser, &user.username, password, user_agent).await;
    assert_eq!(location(&response), "/account", "back to the account page");
    let response = browser.get(idp.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// True when `browser` is still signed in (the account page shows instead of a redirect).
async fn signed_in(idp: &Idp, browser: &reqwest::Client) -> bool {
    let response = browser.get(idp.url("/account")).send().await.unwrap();
    match response.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => false,
        other => panic!("unexpected {other}"),
    }
}

/// POSTs a form.
async fn post(
    idp: &Idp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(idp.url(path)).form(form).send().await.unwrap()
}

/// The position of the newest event in the admin audit ring.
async fn audit_latest(idp: &Idp) -> u64 {
    let page: Value = idp
        .http
        .get(format!("{}/admin/v1/audit?limit=0", idp.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["latest"].as_u64().unwrap()
}

/// The account events about `subject` recorded after `after`.
async fn audit_events(idp: &Idp, after: u64, subject: &str) -> Vec<Value> {
    let page: Value = idp
        .http
        .get(format!(
            "{}/admin/v1/audit?after={after}&limit=1000",
            idp.admin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fields"].clone())
        .filter(|f| f["event"] == "account" && f["subject"] == subject)
        .collect()
}

/// The `action` of the form that ends the session listed under `heading`.
fn end_action(html: &str, heading: &str) -> String {
    let start = html.find(&format!("<h2>{heading}</h2>")).expect(heading);
    let rest = &html[start..];
    let marker = "action=\"";
    let at = rest.find(marker).unwrap() + marker.len();
    let end = rest[at..].find('"').unwrap() + at;
    rest[at..end].to_owned()
}

#[tokio::test]
async fn the_account_page_needs_a_sign_in_and_shows_how_and_what() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    let html = account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    assert!(
        html.contains(&format!(
            "Signed in as <strong>{}</strong> (Ada Lovelace).",
            user.username
        )),
        "{html}"
    );
    assert!(html.contains("Signed in with password on <time datetime="));
    for heading in [
        "Password",
        "Authenticator app (TOTP)",
        "Recovery codes",
        "Passkeys",
        "Sessions",
    ] {
        assert!(html.contains(&format!("\">{heading}</h2>")), "{heading}");
    }
    for link in [
        "/account/password",
        "/account/totp",
        "/account/passkeys",
        "/account/sessions",
    ] {
        assert!(html.contains(&format!("<a href=\"{link}\">")), "{link}");
    }
    assert!(html.contains("action=\"/account/recovery-codes\""));
    assert!(html.contains("action=\"/oidc/v1/logout\""));
    assert!(html.contains("You have no passkeys."));
    assert!(!html.contains("role=\"status\""), "no pending request");

    // Sign out from the account page: the next visit goes to the login page again.
    let response = post(&idp, &browser, "/oidc/v1/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!signed_in(&idp, &browser).await);
    idp.stop().await;
}

#[tokio::test]
async fn account_forms_refuse_a_missing_or_wrong_csrf_token() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    let other = idp.browser();
    account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    account_sign_in(&idp, &other, &user, PASSWORD, SAFARI).await;
    let listed = idp.page(&browser, "/account/sessions").await;
    let end_other = end_action(&listed, "Safari on iOS");
    let new = "a second password, long enough";
    for token in [None, Some("not-the-token")] {
        let mut form = vec![
            ("current_password", PASSWORD),
            ("new_password", new),
            ("confirm_password", new),
        ];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        for path in ["/account/password", "/account/sessions", end_other.as_str()] {
            let response = post(&idp, &browser, path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
            let html = response.text().await.unwrap();
            assert!(html.contains("role=\"alert\""), "{html}");
        }
    }
    // Nothing happened: the old password works and the other browser is signed in.
    assert!(signed_in(&idp, &other).await);
    let third = idp.browser();
    account_sign_in(&idp, &third, &user, PASSWORD, FIREFOX).await;
    idp.stop().await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_signs_out_other_browsers() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    let other = idp.browser();
    account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    account_sign_in(&idp, &other, &user, PASSWORD, SAFARI).await;

    let form_page = idp.page(&browser, "/account/password").await;
    for (id, label) in [
        ("current_password", "Current password"),
        ("new_password", "New password"),
        ("confirm_password", "New password again"),
    ] {
        assert!(
            form_page.contains(&format!("<label for=\"{id}\">{label}</label>")),
            "{form_page}"
        );
    }
    let token = csrf(&form_page);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let token = token.clone();
        let browser = browser.clone();
        let url = idp.url("/account/password");
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", confirm),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let new = "correct horse battery staple";

    // A wrong current password: 401, the error at that field, announced, focused.
    let response = change("not my password at all", new, new).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<title>Error: Change your password"),
        "{html}"
    );
    assert!(html.contains("<div class=\"alert\" role=\"alert\" id=\"form-error\">"));
    assert!(html.contains(
        "<p class=\"field-error\" id=\"current_password-error\">The current password is \
         incorrect.</p>"
    ));
    assert!(html.contains(
        "id=\"current_password\" name=\"current_password\" autocomplete=\"current-password\" \
         required aria-invalid=\"true\" aria-describedby=\"current_password-error\" autofocus>"
    ));

    // Too short: 400 at the new password.
    let response = change(PASSWORD, "too short", "too short").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains("at least 12 characters"), "{html}");
    assert!(html.contains("aria-describedby=\"new_password-hint new_password-error\" autofocus"));

    // The two new passwords differ: 400 at the confirmation.
    let response = change(PASSWORD, new, "correct horse battery stapler").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("do not match"));
    assert!(signed_in(&idp, &other).await, "refusals change nothing");

    let after = audit_latest(&idp).await;
    let response = change(PASSWORD, new, new).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("__Host-cryptoutil-identity="),
        "a new session id"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Your password was changed. Your other session was signed out."));

    // This browser stays signed in (under its new cookie), the other one is signed out.
    assert!(signed_in(&idp, &browser).await);
    assert!(!signed_in(&idp, &other).await);

    // The old password fails, the new one works.
    let response =
        try_account_sign_in(&idp, &idp.browser(), &user.username, PASSWORD, FIREFOX).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    account_sign_in(&idp, &idp.browser(), &user, new, FIREFOX).await;

    let events = audit_events(&idp, after, &user.id).await;
    let changed: Vec<_> = events
        .iter()
        .filter(|e| e["operation"] == "password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0]["outcome"], "success");
    assert_eq!(changed[0]["actor"], "self");
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(new) && !text.contains(PASSWORD),
        "no password in the audit"
    );
    idp.stop().await;
}

#[tokio::test]
async fn the_sessions_page_lists_each_browser_and_ends_them() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let (mine, theirs, third) = (idp.browser(), idp.browser(), idp.browser());
    account_sign_in(&idp, &mine, &user, PASSWORD, FIREFOX).await;
    account_sign_in(&idp, &theirs, &user, PASSWORD, SAFARI).await;

    let html = idp.page(&mine, "/account/sessions").await;
    assert!(
        html.contains("<h2>Firefox on Linux (this session)</h2>"),
        "{html}"
    );
    assert!(html.contains("<h2>Safari on iOS</h2>"), "{html}");
    assert!(html.contains("with password</li>"));
    assert!(html.contains("<ul aria-label=\"Signed-in sessions\">"));
    assert!(!html.contains("id_hash"));
    assert_eq!(
        html.matches("/end\"").count(),
        1,
        "no button for this session"
    );

    let after = audit_latest(&idp).await;
    let action = end_action(&html, "Safari on iOS");
    let response = post(&idp, &mine, &action, &[("csrf_token", &csrf(&html))]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account/sessions");
    assert!(
        !signed_in(&idp, &theirs).await,
        "the other browser is signed out"
    );
    assert!(signed_in(&idp, &mine).await);
    // Ending it again: it is gone.
    let response = post(&idp, &mine, &action, &[("csrf_token", &csrf(&html))]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Sign out everywhere else.
    account_sign_in(&idp, &theirs, &user, PASSWORD, SAFARI).await;
    account_sign_in(&idp, &third, &user, PASSWORD, SAFARI).await;
    let html = idp.page(&mine, "/account/sessions").await;
    assert_eq!(html.matches("/end\"").count(), 2);
    let response = post(
        &idp,
        &mine,
        "/account/sessions",
        &[("csrf_token", &csrf(&html))],
    )
    .await;
    assert_eq!(location(&response), "/account/sessions");
    assert!(!signed_in(&idp, &theirs).await);
    assert!(!signed_in(&idp, &third).await);
    let html = idp.page(&mine, "/account/sessions").await;
    assert!(html.contains("You are signed in nowhere else."), "{html}");

    let ended: Vec<_> = audit_events(&idp, after, &user.id)
        .await
        .into_iter()
        .filter(|e| e["operation"] == "session_ended")
        .collect();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[1]["detail"], "2 other sessions");

    // Another user's session cannot be ended by its public id.
    let stranger = new_user(&idp).await;
    let strangers = idp.browser();
    account_sign_in(&idp, &strangers, &stranger, PASSWORD, SAFARI).await;
    let listed = idp.page(&strangers, "/account/sessions").await;
    assert!(!listed.contains("/end\""));
    let stranger_sessions = idp
        .identity
        .store()
        .user_sessions(&stranger.id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let public_id = stranger_sessions[0].public_id.clone().unwrap();
    let html = idp.page(&mine, "/account").await;
    let response = post(
        &idp,
        &mine,
        &format!("/account/sessions/{public_id}/end"),
        &[("csrf_token", &csrf(&html))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(signed_in(&idp, &strangers).await);
    idp.stop().await;
}

#[tokio::test]
async fn ending_another_session_needs_a_recent_sign_in() {
    let idp = Idp::demo_with(|settings| {
        settings.mfa.reauthentication_window =
            cryptoutil_server::config::HumanDuration::from_secs(60);
    })
    .await;
    let user = new_user(&idp).await;
    let (mine, jar) = idp.browser_with_jar();
    let theirs = idp.browser();
    account_sign_in(&idp, &mine, &user, PASSWORD, FIREFOX).await;
    account_sign_in(&idp, &theirs, &user, PASSWORD, SAFARI).await;

    // Move this browser's sign-in two minutes into the past (beyond the 1m window).
    let cookies = jar.cookies(&url::Url::parse(&idp.issuer).unwrap()).unwrap();
    let value = cookies
        .to_str()
        .unwrap()
        .split(';')
        .find_map(|c| c.trim().strip_prefix("__Host-cryptoutil-identity="))
        .unwrap()
        .to_owned();
    let store = idp.identity.store();
    let now = OffsetDateTime::now_utc();
    let hash = cryptoutil_identity::tokens::secret_hash(&value);
    let mut session = store.session(&hash, now).await.unwrap().unwrap();
    session.auth_time = Some(now - time::Duration::minutes(2));
    store.save_session(&session).await.unwrap();

    // Listing still works; ending another session asks for the sign-in again.
    let html = idp.page(&mine, "/account/sessions").await;
    let action = end_action(&html, "Safari on iOS");
    let response = post(&idp, &mine, &action, &[("csrf_token", &csrf(&html))]).await;
    assert_eq!(location(&response), "/oidc/v1/login");
    assert!(signed_in(&idp, &theirs).await, "nothing ended");
    // The password page too.
    let response = mine.get(idp.url("/account/password")).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");

    // Signed in again: back on the account page, and now it works.
    let login = idp.page(&mine, "/oidc/v1/login").await;
    let response = post(
        &idp,
        &mine,
        "/oidc/v1/login",
        &[
            ("csrf_token", &csrf(&login)),
            ("username", &user.username),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/account");
    let html = idp.page(&mine, "/account/sessions").await;
    let action = end_action(&html, "Safari on iOS");
    let response = post(&idp, &mine, &action, &[("csrf_token", &csrf(&html))]).await;
    assert_eq!(location(&response), "/account/sessions");
    assert!(!signed_in(&idp, &theirs).await);
    idp.stop().await;
}

#[tokio::test]
async fn an_admin_reset_removes_the_factors_ends_the_sessions_and_is_audited() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    let store = idp.identity.store();
    let now = OffsetDateTime::now_utc();
    store
        .put_totp_factor(&TotpFactor {
            user_id: user.id.clone(),
            sealed_secret: "eyJhbGciOiJkaXIifQ..iv.ct.tag".to_owned(),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period_secs: 30,
            confirmed_at: Some(now),
            last_used_step: None,
            created_at: now,
            last_used_at: None,
        })
        .await
        .unwrap();
    store
        .insert_webauthn_credential(&WebAuthnCredential {
            credential_id: format!("cred-{}", uuid::Uuid::now_v7()),
            user_id: user.id.clone(),
            name: "Laptop".to_owned(),
            public_key: "pAEC".to_owned(),
            algorithm: -7,
            sign_count: 0,
            transports: vec!["internal".to_owned()],
            aaguid: "00000000-0000-0000-0000-000000000000".to_owned(),
            attestation_format: "none".to_owned(),
            discoverable: true,
            backup_eligible: false,
            backed_up: false,
            created_at: now,
            last_used_at: None,
        })
        .await
        .unwrap();
    let html = idp.page(&browser, "/account").await;
    assert!(html.contains("You have 1 passkey."), "{html}");
    assert!(html.contains("action=\"/account/totp/remove\""));

    let after = audit_latest(&idp).await;
    let response = idp
        .http
        .delete(format!(
            "{}/admin/v1/users/{}/factors",
            idp.admin, user.username
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], user.username.as_str());
    assert_eq!(body["removed"], 2);
    assert_eq!(body["sessions_ended"], 1);
    let factors = store.factor_summary(&user.id).await.unwrap();
    assert!(!factors.any_second_factor() && factors.recovery_codes_left == 0);
    assert!(
        !signed_in(&idp, &browser).await,
        "the user's sessions ended"
    );

    let events = audit_events(&idp, after, &user.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["operation"], "factors_reset");
    assert_eq!(
        events[0]["actor"], "admin",
        "--dev has no client certificate"
    );
    assert_eq!(events[0]["outcome"], "success");

    // The user signs in with the password alone again.
    account_sign_in(&idp, &idp.browser(), &user, PASSWORD, FIREFOX).await;

    // An unknown user: a 404 problem.
    let response = idp
        .http
        .delete(format!(
            "{}/admin/v1/users/nobody-{}/factors",
            idp.admin,
            uuid::Uuid::now_v7()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    idp.stop().await;
}

#[tokio::test]
async fn a_pending_authorization_request_is_offered_to_continue() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    // A request the signed-in session cannot answer at once (`prompt=login`) stays pending in
    // it, as when a policy sends the user to set up a second factor first.
    let (_, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let response = browser
        .get(format!("{url}&prompt=login"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(&browser, "/account").await;
    assert!(html.contains("<div role=\"status\""), "{html}");
    assert!(html.contains("<form method=\"post\" action=\"/oidc/v1/login/continue\">"));
    assert!(
        html.contains("Continue to Demo confidential client</button>"),
        "{html}"
    );

    // Ending this very session from the sessions page signs this browser out.
    let session = idp
        .identity
        .store()
        .user_sessions(&user.id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(session.len(), 1);
    let public_id = session[0].public_id.clone().unwrap();
    let response = post(
        &idp,
        &browser,
        &format!("/account/sessions/{public_id}/end"),
        &[("csrf_token", &csrf(&html))],
    )
    .await;
    assert_eq!(location(&response), "/account");
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!signed_in(&idp, &browser).await);
    idp.stop().await;
}

#[tokio::test]
async fn guessing_the_current_password_backs_off_like_the_login() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = idp.browser();
    account_sign_in(&idp, &browser, &user, PASSWORD, FIREFOX).await;
    let token = csrf(&idp.page(&browser, "/account/password").await);
    let new = "correct horse battery staple";
    let mut statuses = Vec::new();
    for guess in 0..7 {
        let wrong = format!("guess number {guess}");
        let response = post(
            &idp,
            &browser,
            "/account/password",
            &[
                ("csrf_token", token.as_str()),
                ("current_password", wrong.as_str()),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let html = response.text().await.unwrap();
            assert!(html.contains("Too many wrong passwords."), "{html}");
            break;
        }
    }
    // The demo's `brute_force` allows 5 free failures per account, then locks.
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    // While locked, even the right password is refused unchecked.
    let response = post(
        &idp,
        &browser,
        "/account/password",
        &[
            ("csrf_token", token.as_str()),
            ("current_password", PASSWORD),
            ("new_password", new),
            ("confirm_password", new),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    idp.stop().await;
}
