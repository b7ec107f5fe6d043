//! TOTP and recovery codes end to end over real HTTPS: enrolment on the account page, the
//! second-factor page after the password, single use, backoff, recovery codes, removal, CSRF
//! and malformed input. Codes are computed with `mfa::totp` (proven by the RFC vectors).

use cryptoutil_identity::mfa::TotpAlgorithm;
use cryptoutil_identity::mfa::totp::{TotpParams, base32_decode, code_at_step, step_at};
use cryptoutil_identity::model::User;
use reqwest::header;
use serde_json::Value;

use crate::common::*;

const SECOND_FACTOR: &str = "/oidc/v1/login/second-factor";
const DEFAULT_PARAMS: TotpParams = TotpParams {
    algorithm: TotpAlgorithm::SHA1,
    digits: 6,
    period_secs: 30,
};

/// A fresh user (UUIDv7 name) whose password is `<username>-password`.
async fn new_user(idp: &Idp) -> User {
    let username = format!("mfa-{}", uuid::Uuid::now_v7());
    let password_hash =
        cryptoutil_realm::password::hash_password(&format!("{username}-password")).unwrap();
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username,
        password_hash,
        enabled: true,
        roles: Vec::new(),
        tenant_id: None,
        name: None,
        given_name: None,
        family_name: None,
        email: None,
        email_verified: false,
        version: 1,
        created_at: time::OffsetDateTime::now_utc(),
    };
    idp.identity.store().upsert_user(&user).await.unwrap()
}

fn now_step() -> i64 {
    step_at(time::OffsetDateTime::now_utc().unix_timestamp(), 30)
}

/// Posts the login form of the login page the browser was sent to.
async fn login(idp: &Idp, browser: &reqwest::Client, username: &str) -> reqwest::Response {
    let html = idp.page(browser, "/oidc/v1/login").await;
    browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("username", username),
            ("password", &format!("{username}-password")),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs a browser in for the account pages (password only: the user has no factor yet).
async fn account_browser(idp: &Idp, user: &User) -> reqwest::Client {
    let browser = idp.browser();
    let response = browser.get(idp.url("/account/totp")).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let response = login(idp, &browser, &user.username).await;
    assert_eq!(location(&response), "/account");
    browser
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap() + from;
    &html[from..to]
}

/// The recovery codes listed on a page.
fn recovery_codes(html: &str) -> Vec<String> {
    let list = between(
        html,
        "<ul aria-labelledby=\"recovery-codes-heading\"",
        "</ul>",
    );
    list.split("<code>")
        .skip(1)
        .map(|part| part.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Opens `/account/totp` and returns its secret and CSRF token.
async fn start_enrolment(idp: &Idp, browser: &reqwest::Client) -> (Vec<u8>, String) {
    let response = browser.get(idp.url("/account/totp")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("<figure id=\"totp-qr\"><svg "), "inline SVG");
    assert!(!html.contains("data:image"));
    let text = between(&html, "<code id=\"totp-secret\">", "</code>").replace(' ', "");
    let secret = base32_decode(&text).unwrap();
    assert_eq!(secret.len(), 20);
    (secret, csrf(&html))
}

/// Enrols TOTP for the signed-in browser: the secret, the confirming step and the recovery
/// codes shown.
async fn enrol(idp: &Idp, browser: &reqwest::Client) -> (Vec<u8>, i64, Vec<String>) {
    let (secret, token) = start_enrolment(idp, browser).await;
    let step = now_step();
    let code = code_at_step(DEFAULT_PARAMS, &secret, step);
    let response = browser
        .post(idp.url("/account/totp"))
        .form(&[("csrf_token", token.as_str()), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let codes = recovery_codes(&html);
    assert_eq!(codes.len(), 10, "{html}");
    (secret, step, codes)
}

/// Starts an authorization with the password; the second-factor page's HTML.
async fn password_step(idp: &Idp, browser: &reqwest::Client, user: &User) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let response = login(idp, browser, &user.username).await;
    assert_eq!(location(&response), SECOND_FACTOR);
    let page = browser.get(idp.url(SECOND_FACTOR)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    (page.text().await.unwrap(), verifier)
}

async fn submit(
    idp: &Idp,
    browser: &reqwest::Client,
    html: &str,
    method: &str,
    code: &str,
) -> reqwest::Response {
    browser
        .post(idp.url(SECOND_FACTOR))
        .form(&[
            ("csrf_token", csrf(html).as_str()),
            ("method", method),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
}

/// From the redirect after the second factor: consent, the code, the tokens.
async fn finish(idp: &Idp, browser: &reqwest::Client, next: String, verifier: &str) -> Value {
    // Consent is asked the first time; later authorizations remember it.
    let redirect = if next == "/oidc/v1/consent" {
        let html = idp.page(browser, &next).await;
        let response = browser
            .post(idp.url("/oidc/v1/consent"))
            .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        location(&response)
    } else {
        next
    };
    assert!(redirect.starts_with(CONFIDENTIAL_REDIRECT), "{redirect}");
    let code = query(&redirect)["code"].clone();
    let (status, tokens) = idp
        .token(
            CONFIDENTIAL,
            CONFIDENTIAL_SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CONFIDENTIAL_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn enrol_then_sign_in_with_password_and_a_code_each_code_once() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = account_browser(&idp, &user).await;

    // A wrong first code: the same secret is shown again with the error.
    let (secret, token) = start_enrolment(&idp, &browser).await;
    let wrong = code_at_step(DEFAULT_PARAMS, &secret, now_step() + 5);
    let response = browser
        .post(idp.url("/account/totp"))
        .form(&[("csrf_token", token.as_str()), ("code", &wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("aria-invalid=\"true\""));
    let again = between(&html, "<code id=\"totp-secret\">", "</code>").replace(' ', "");
    assert_eq!(base32_decode(&again).unwrap(), secret);
    // A new visit starts over with a new secret, then confirms.
    let (secret, confirmed_step, codes) = enrol(&idp, &browser).await;
    assert!(codes.iter().all(|c| c.len() == 19));
    // A confirmed authenticator is not replaced by opening the page again.
    let html = idp.page(&browser, "/account/totp").await;
    assert!(html.contains("/account/totp/remove"), "{html}");
    assert!(!html.contains("totp-secret"));

    // Sign in: the password, then the second-factor page.
    let signer = idp.browser();
    let (html, verifier) = password_step(&idp, &signer, &user).await;
    assert!(html.contains("id=\"totp-code\""));
    assert!(html.contains("autocomplete=\"one-time-code\""));
    assert!(html.contains("id=\"recovery-code\""));
    assert!(!html.contains("data-passkey"), "no passkeys, no button");
    // The code that confirmed the enrolment was spent.
    let spent = code_at_step(DEFAULT_PARAMS, &secret, confirmed_step);
    let response = submit(&idp, &signer, &html, "totp", &spent).await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(html.contains("already used"), "{html}");
    // The next step's code (within the window) signs in, in a new session.
    let fresh = code_at_step(DEFAULT_PARAMS, &secret, confirmed_step + 1);
    let response = submit(&idp, &signer, &html, "totp", &fresh).await;
    assert!(
        response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("__Host-cryptoutil-identity=")
    );
    let tokens = finish(&idp, &signer, location(&response), &verifier).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], user.id.as_str());
    // The old (pre-second-factor) page has nothing in progress any more.
    let response = submit(&idp, &signer, &html, "totp", &fresh).await;
    assert_eq!(response.status(), 400);

    // Another sign-in: the same code again is refused.
    let other = idp.browser();
    let (html, _) = password_step(&idp, &other, &user).await;
    let response = submit(&idp, &other, &html, "totp", &fresh).await;
    assert_eq!(response.status(), 401);
    idp.stop().await;
}

#[tokio::test]
async fn wrong_codes_back_off_and_a_recovery_code_still_signs_in_once() {
    let idp = Idp::demo_with(|settings| {
        settings.brute_force.account_free_failures = 3;
        settings.brute_force.address_free_failures = 6;
        settings.brute_force.base_delay = cryptoutil_server::config::HumanDuration::from_secs(600);
        settings.brute_force.max_delay = cryptoutil_server::config::HumanDuration::from_secs(900);
    })
    .await;
    let user = new_user(&idp).await;
    let browser = account_browser(&idp, &user).await;
    let (secret, step, codes) = enrol(&idp, &browser).await;

    let signer = idp.browser();
    let (mut html, verifier) = password_step(&idp, &signer, &user).await;
    let wrong = code_at_step(DEFAULT_PARAMS, &secret, step + 7);
    for _ in 0..2 {
        let response = submit(&idp, &signer, &html, "totp", &wrong).await;
        assert_eq!(response.status(), 401);
        html = response.text().await.unwrap();
    }
    let response = submit(&idp, &signer, &html, "totp", &wrong).await;
    assert_eq!(response.status(), 429);
    assert!(
        response.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    html = response.text().await.unwrap();
    assert!(html.contains("Too many incorrect codes"));
    // Locked: even the right code is refused unchecked.
    let right = code_at_step(DEFAULT_PARAMS, &secret, step + 1);
    let response = submit(&idp, &signer, &html, "totp", &right).await;
    assert_eq!(response.status(), 429);
    // A TOTP lock-out does not block recovery codes (typed loosely: case, spaces).
    let typed = codes[0].to_uppercase().replace('-', " ");
    let response = submit(&idp, &signer, &html, "recovery", &typed).await;
    let tokens = finish(&idp, &signer, location(&response), &verifier).await;
    assert!(tokens["id_token"].is_string());

    // The same recovery code a second time fails.
    let other = idp.browser();
    let (html, _) = password_step(&idp, &other, &user).await;
    let response = submit(&idp, &other, &html, "recovery", &codes[0]).await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(html.contains("already used"));
    // Another one works.
    let response = submit(&idp, &other, &html, "recovery", &codes[1]).await;
    assert!(location(&response).starts_with(CONFIDENTIAL_REDIRECT));

    // Each use is audited with how many are left; no code is in the trail.
    let trail = cryptoutil_server::audit::read(0, cryptoutil_server::audit::MAX_PAGE);
    let mine: Vec<_> = trail
        .events
        .iter()
        .filter(|e| e.fields.get("subject") == Some(&serde_json::json!(user.id)))
        .collect();
    let used: Vec<_> = mine
        .iter()
        .filter(|e| e.fields["operation"] == "recovery_code_used")
        .map(|e| e.fields["detail"].clone())
        .collect();
    assert_eq!(
        used,
        [serde_json::json!("9 left"), serde_json::json!("8 left")]
    );
    assert!(
        mine.iter()
            .any(|e| e.fields["operation"] == "totp_enrolled")
    );
    let text = serde_json::to_string(&mine.iter().map(|e| &e.fields).collect::<Vec<_>>()).unwrap();
    assert!(codes.iter().all(|code| !text.contains(code.as_str())));
    idp.stop().await;
}

#[tokio::test]
async fn regenerating_invalidates_the_old_set_and_removing_totp_restores_password_only() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = account_browser(&idp, &user).await;
    let (_, _, old_codes) = enrol(&idp, &browser).await;

    let html = idp.page(&browser, "/account/totp").await;
    let response = browser
        .post(idp.url("/account/recovery-codes"))
        .form(&[("csrf_token", csrf(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let new_codes = recovery_codes(&response.text().await.unwrap());
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));

    let signer = idp.browser();
    let (html, verifier) = password_step(&idp, &signer, &user).await;
    let response = submit(&idp, &signer, &html, "recovery", &old_codes[2]).await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    let response = submit(&idp, &signer, &html, "recovery", &new_codes[2]).await;
    finish(&idp, &signer, location(&response), &verifier).await;

    // Remove the authenticator: the password alone signs in again.
    let html = idp.page(&browser, "/account/totp").await;
    let response = browser
        .post(idp.url("/account/totp/remove"))
        .form(&[("csrf_token", csrf(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let plain = idp.browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    plain.get(url).send().await.unwrap();
    let response = login(&idp, &plain, &user.username).await;
    finish(&idp, &plain, location(&response), &verifier).await;
    idp.stop().await;
}

#[tokio::test]
async fn account_pages_need_a_sign_in_and_a_csrf_token() {
    let idp = Idp::demo().await;
    let anonymous = idp.browser();
    for path in ["/account/totp"] {
        let response = anonymous.get(idp.url(path)).send().await.unwrap();
        assert_eq!(location(&response), "/oidc/v1/login");
    }
    for path in [
        "/account/totp",
        "/account/totp/remove",
        "/account/recovery-codes",
    ] {
        let response = idp
            .browser()
            .post(idp.url(path))
            .form(&[("csrf_token", "x"), ("code", "123456")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/oidc/v1/login", "{path}");
    }
    let user = new_user(&idp).await;
    let browser = account_browser(&idp, &user).await;
    for (path, form) in [
        ("/account/totp", vec![("code", "123456")]),
        (
            "/account/totp",
            vec![("csrf_token", "forged"), ("code", "1")],
        ),
        ("/account/totp/remove", vec![("csrf_token", "forged")]),
        ("/account/recovery-codes", vec![]),
    ] {
        let response = browser
            .post(idp.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path} {form:?}");
    }
    // Nothing changed.
    let factors = idp.identity.store().factor_summary(&user.id).await.unwrap();
    assert_eq!(factors.recovery_codes_left, 0);
    assert!(!factors.totp);
    // The second-factor page without a sign-in waiting for one.
    let response = browser.get(idp.url(SECOND_FACTOR)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = idp
        .browser()
        .get(idp.url(SECOND_FACTOR))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    idp.stop().await;
}

#[tokio::test]
async fn malformed_codes_get_a_page_never_a_500() {
    let idp = Idp::demo().await;
    let user = new_user(&idp).await;
    let browser = account_browser(&idp, &user).await;
    let (secret, step, _) = enrol(&idp, &browser).await;
    let signer = idp.browser();
    let (html, verifier) = password_step(&idp, &signer, &user).await;
    let huge = "9".repeat(100_000);
    let cases: [(&str, &str, u16); 7] = [
        ("totp", "", 400),
        ("totp", "12ab56", 400),
        ("totp", "１２３４５６", 400),
        ("totp", &huge, 400),
        ("recovery", "not-a-code", 400),
        ("recovery", &huge, 400),
        ("sms", "123456", 400),
    ];
    for (method, code, status) in cases {
        let response = submit(&idp, &signer, &html, method, code).await;
        let got = response.status().as_u16();
        assert!(
            got == status || (code.len() > 10_000 && got == 413),
            "{method} {:.20}: {got}",
            code
        );
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Malformed input is not counted as a wrong code: the right one still works.
    let right = code_at_step(DEFAULT_PARAMS, &secret, step + 1);
    let response = submit(&idp, &signer, &html, "totp", &right).await;
    finish(&idp, &signer, location(&response), &verifier).await;
    idp.stop().await;
}

#[tokio::test]
async fn the_demo_mfa_user_signs_in_with_the_documented_secret() {
    let idp = Idp::demo().await;
    let user = idp
        .identity
        .store()
        .user_by_username("demo-mfa-user")
        .await
        .unwrap()
        .unwrap();
    let signer = idp.browser();
    let (html, verifier) = password_step(&idp, &signer, &user).await;
    // The secret written in the demo seed and docs, as an authenticator app would use it.
    let secret = base32_decode("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
    let code = code_at_step(DEFAULT_PARAMS, &secret, now_step());
    let response = submit(&idp, &signer, &html, "totp", &code).await;
    let tokens = finish(&idp, &signer, location(&response), &verifier).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], user.id.as_str());
    idp.stop().await;
}
