//! Passkey ceremonies over real HTTPS, answered by a software authenticator written here (an
//! ES256 key from aws-lc-rs, the attestation object in CBOR with `ciborium`, authenticator
//! data and signatures laid out as WebAuthn §6.1 says): registration on the account page,
//! passwordless sign-in to tokens, the passkey as a second factor, several named passkeys,
//! and every refusal a clear 4xx page after which the user can still sign in.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use ciborium::Value as Cbor;
use cryptoutil_jose::b64;
use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::common::*;

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const AT: u8 = 0x40;

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// What the passkey script would post for an assertion (raw bytes; encoded when posted).
#[derive(Clone)]
struct Assertion {
    id: Vec<u8>,
    client_data_json: Vec<u8>,
    authenticator_data: Vec<u8>,
    signature: Vec<u8>,
    user_handle: Vec<u8>,
}

/// A software authenticator holding one ES256 credential.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    origin: String,
    counter: u32,
    flags: u8,
}

impl Authenticator {
    /// A credential for `origin`; `flags` are added to every answer (e.g. `BE`).
    fn new(origin: &str, flags: u8) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let credential_id = uuid::Uuid::now_v7().as_bytes().to_vec();
        Self {
            key,
            credential_id,
            origin: origin.to_owned(),
            counter: 1,
            flags,
        }
    }

    /// The credential public key as a COSE_Key (EC2, P-256, ES256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let int = |i: i64| Cbor::Integer(i.into());
        cbor(&Cbor::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]))
    }

    fn client_data(&self, kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `clientDataJSON` and `attestationObject` (`none`) answering creation `options`.
    fn register(&self, options: &Value) -> (Vec<u8>, Vec<u8>) {
        let rp_id = options["rp"]["id"].as_str().unwrap();
        let challenge = options["challenge"].as_str().unwrap();
        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(UP | UV | AT | self.flags);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(
            &u16::try_from(self.credential_id.len())
                .unwrap()
                .to_be_bytes(),
        );
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let attestation = cbor(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        (
            self.client_data("webauthn.create", challenge, &self.origin),
            attestation,
        )
    }

    /// An assertion answering request `options` with `flags` (plus the authenticator's own),
    /// the counter moved forward, signed.
    fn assert(&mut self, options: &Value, flags: u8, user_handle: &[u8]) -> Assertion {
        self.counter += 1;
        let rp_id = options["rpId"].as_str().unwrap();
        let challenge = options["challenge"].as_str().unwrap();
        let client_data_json = self.client_data("webauthn.get", challenge, &self.origin);
        let mut authenticator_data = sha256(rp_id.as_bytes());
        authenticator_data.push(flags | self.flags);
        authenticator_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut assertion = Assertion {
            id: self.credential_id.clone(),
            client_data_json,
            authenticator_data,
            signature: Vec::new(),
            user_handle: user_handle.to_vec(),
        };
        self.sign(&mut assertion);
        assertion
    }

    /// Signs `authenticatorData || SHA-256(clientDataJSON)` again (after a change).
    fn sign(&self, assertion: &mut Assertion) {
        let mut message = assertion.authenticator_data.clone();
        message.extend_from_slice(&sha256(&assertion.client_data_json));
        assertion.signature = self
            .key
            .sign(&SystemRandom::new(), &message)
            .unwrap()
            .as_ref()
            .to_vec();
    }
}

/// The CSRF token the passkey button carries (`data-csrf`): the account page has no other form
/// until a passkey is listed.
fn button_csrf(html: &str) -> String {
    let marker = "data-csrf=\"";
    let start = html.find(marker).expect("a passkey button") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// The origin of the issuer (what a browser puts in client data).
fn origin(idp: &Idp) -> String {
    url::Url::parse(&idp.issuer)
        .unwrap()
        .origin()
        .ascii_serialization()
}

async fn json(browser: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let response = browser.get(url).send().await.unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()[header::CACHE_CONTROL].to_str().unwrap(),
        "no-store"
    );
    (status, response.json().await.unwrap())
}

/// Signs `user` in with the password on a fresh browser, for the account pages.
async fn signed_in_browser(idp: &Idp, user: &str) -> reqwest::Client {
    let browser = idp.browser();
    let (_, challenge) = pkce();
    let url = authorize_url(
        idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let done = sign_in(idp, &browser, &url, user).await;
    assert!(done.starts_with(CONFIDENTIAL_REDIRECT), "{done}");
    browser
}

/// Registers a passkey named `name` for the browser's user; returns the user handle.
async fn register(
    idp: &Idp,
    browser: &reqwest::Client,
    authenticator: &Authenticator,
    name: &str,
) -> Vec<u8> {
    let html = idp.page(browser, "/account/passkeys").await;
    let (status, options) = json(browser, &idp.url("/account/passkeys/options")).await;
    assert_eq!(status, 200, "{options}");
    let (client_data, attestation) = authenticator.register(&options);
    let response = post_registration(
        idp,
        browser,
        &button_csrf(&html),
        name,
        &client_data,
        &attestation,
    )
    .await;
    assert_eq!(location(&response), "/account/passkeys");
    b64::decode(options["user"]["id"].as_str().unwrap().as_bytes(), "user").unwrap()
}

async fn post_registration(
    idp: &Idp,
    browser: &reqwest::Client,
    csrf_token: &str,
    name: &str,
    client_data: &[u8],
    attestation: &[u8],
) -> reqwest::Response {
    browser
        .post(idp.url("/account/passkeys"))
        .form(&[
            ("csrf_token", csrf_token),
            ("name", name),
            ("client_data_json", &b64::encode(client_data)),
            ("attestation_object", &b64::encode(attestation)),
            ("transports", "[\"internal\",\"hybrid\"]"),
            ("resident_key", "true"),
        ])
        .send()
        .await
        .unwrap()
}

/// A browser on the login page of a new authorization request: its CSRF token and the PKCE
/// verifier.
async fn at_login(idp: &Idp, browser: &reqwest::Client) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        idp,
        CONFIDENTIAL,
        CONFIDENTIAL_REDIRECT,
        "openid",
        &challenge,
    );
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    let html = idp.page(browser, "/oidc/v1/login").await;
    assert!(html.contains("data-passkey=\"sign-in\""), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "{html}"
    );
    (csrf(&html), verifier)
}

async fn post(
    idp: &Idp,
    browser: &reqwest::Client,
    csrf_token: &str,
    a: &Assertion,
) -> reqwest::Response {
    browser
        .post(idp.url("/oidc/v1/login/passkey"))
        .form(&[
            ("csrf_token", csrf_token),
            ("id", &b64::encode(&a.id)),
            ("client_data_json", &b64::encode(&a.client_data_json)),
            ("authenticator_data", &b64::encode(&a.authenticator_data)),
            ("signature", &b64::encode(&a.signature)),
            ("user_handle", &b64::encode(&a.user_handle)),
        ])
        .send()
        .await
        .unwrap()
}

/// Request options for the browser's session (`GET /oidc/v1/login/passkey`).
async fn login_options(idp: &Idp, browser: &reqwest::Client) -> Value {
    let (status, options) = json(browser, &idp.url("/oidc/v1/login/passkey")).await;
    assert_eq!(status, 200, "{options}");
    options
}

/// The CSRF token of the jar's session, read from the store (the second-factor page is not
/// this module's).
async fn session_csrf(idp: &Idp, jar: &reqwest::cookie::Jar) -> String {
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&url::Url::parse(&idp.issuer).unwrap()).unwrap();
    let value = cookies
        .to_str()
        .unwrap()
        .split(';')
        .find_map(|c| c.trim().strip_prefix("__Host-cryptoutil-identity="))
        .unwrap()
        .to_owned();
    let hash = cryptoutil_identity::tokens::secret_hash(&value);
    let now = time::OffsetDateTime::now_utc();
    let session = idp
        .identity
        .store()
        .session(&hash, now)
        .await
        .unwrap()
        .unwrap();
    session.csrf_token
}

/// The `amr` methods the jar's session recorded.
async fn session_amr(idp: &Idp, jar: &reqwest::cookie::Jar) -> Vec<String> {
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&url::Url::parse(&idp.issuer).unwrap()).unwrap();
    let value = cookies
        .to_str()
        .unwrap()
        .split(';')
        .find_map(|c| c.trim().strip_prefix("__Host-cryptoutil-identity="))
        .unwrap()
        .to_owned();
    let hash = cryptoutil_identity::tokens::secret_hash(&value);
    let now = time::OffsetDateTime::now_utc();
    let session = idp
        .identity
        .store()
        .session(&hash, now)
        .await
        .unwrap()
        .unwrap();
    session.amr
}

/// The audit operations recorded for `subject` (the admin listener's ring is process-wide:
/// filtered by the user's id, unique per server).
async fn audited(idp: &Idp, subject: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut after = 0;
    loop {
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
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            return found;
        }
        found.extend(
            events
                .iter()
                .filter(|e| e["fields"]["subject"] == subject)
                .map(|e| {
                    let field =
                        |name: &str| e["fields"][name].as_str().unwrap_or_default().to_owned();
                    (field("operation"), field("outcome"))
                }),
        );
        after = page["next_after"].as_u64().unwrap();
    }
}

/// Follows consent to the code and redeems it; returns the ID token's claims.
async fn finish_code_flow(
    idp: &Idp,
    browser: &reqwest::Client,
    mut next: String,
    verifier: &str,
) -> Value {
    if next.starts_with("/oidc/v1/consent") {
        let html = idp.page(browser, &next).await;
        let response = browser
            .post(idp.url("/oidc/v1/consent"))
            .form(&[("csrf_token", csrf(&html).as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        next = location(&response);
    }
    assert!(next.starts_with(CONFIDENTIAL_REDIRECT), "{next}");
    let code = query(&next)["code"].clone();
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
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)
}

/// A refusal: a 4xx HTML page with the reason announced (`role="alert"`), never a 500.
async fn assert_refused(response: reqwest::Response, status: u16, says: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains(says), "{says} in {html}");
    html
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_password_to_tokens() {
    let idp = Idp::demo().await;
    let account = signed_in_browser(&idp, "demo-user").await;
    let mut authenticator = Authenticator::new(&origin(&idp), BE);
    let name = format!("Phone {}", uuid::Uuid::now_v7());
    let user_handle = register(&idp, &account, &authenticator, &name).await;

    // The list shows it as a synced passkey, never used.
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(html.contains(&format!("<h2>{name}</h2>")), "{html}");
    assert!(html.contains("Synced passkey"), "{html}");
    assert!(html.contains("last used never"), "{html}");
    assert!(html.contains("data-passkey=\"register\""), "{html}");

    // Another browser, passwordless: no allowCredentials, user verification required.
    let (browser, jar) = idp.browser_with_jar();
    let (csrf_token, verifier) = at_login(&idp, &browser).await;
    let (status, options) = json(&browser, &idp.url("/oidc/v1/login/passkey")).await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["allowCredentials"], serde_json::json!([]));
    assert_eq!(options["userVerification"], "required");
    let assertion = authenticator.assert(&options, UP | UV, &user_handle);
    let response = post(&idp, &browser, &csrf_token, &assertion).await;
    // A new session (the cookie changes) continues the authorization request.
    assert!(response.headers().contains_key(header::SET_COOKIE));
    let next = location(&response);
    // A synced passkey with user verification: swk, user presence, and two factors in one.
    assert_eq!(session_amr(&idp, &jar).await, ["swk", "user", "mfa"]);
    // The same answer replayed by another browser signs nobody in: the challenge is gone.
    let other = idp.browser();
    let (other_csrf, _) = at_login(&idp, &other).await;
    let replay = post(&idp, &other, &other_csrf, &assertion).await;
    assert_refused(replay, 400, "expired or was already used").await;
    let claims = finish_code_flow(&idp, &browser, next, &verifier).await;
    let user = idp
        .identity
        .store()
        .user_by_username("demo-user")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], user.id);
    assert_eq!(user.id.as_bytes(), user_handle.as_slice());

    // The stored counter moved and the last use is shown.
    let stored = idp
        .identity
        .store()
        .webauthn_credential(&b64::encode(&authenticator.credential_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sign_count, authenticator.counter);
    assert!(stored.discoverable && stored.backup_eligible);
    assert_eq!(stored.transports, ["internal", "hybrid"]);
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(!html.contains("last used never"), "{html}");
    idp.stop().await;
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_after_the_password() {
    let idp = Idp::demo().await;
    let account = signed_in_browser(&idp, "demo-user").await;
    let mut authenticator = Authenticator::new(&origin(&idp), 0);
    let user_handle = register(&idp, &account, &authenticator, "").await;

    let (browser, jar) = idp.browser_with_jar();
    let (csrf_token, verifier) = at_login(&idp, &browser).await;
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf_token.as_str()),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");

    // The options name the user's credential; user verification is only preferred.
    let (status, options) = json(&browser, &idp.url("/oidc/v1/login/passkey")).await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["userVerification"], "preferred");
    assert_eq!(
        options["allowCredentials"][0]["id"],
        b64::encode(&authenticator.credential_id)
    );
    // The password step started a new session (new CSRF token).
    let csrf_token = session_csrf(&idp, &jar).await;
    let assertion = authenticator.assert(&options, UP, &user_handle);
    let response = post(&idp, &browser, &csrf_token, &assertion).await;
    let next = location(&response);
    // The password, then a device-bound key with presence only.
    assert_eq!(session_amr(&idp, &jar).await, ["pwd", "hwk", "user"]);
    let claims = finish_code_flow(&idp, &browser, next, &verifier).await;
    assert!(claims["sub"].is_string());

    // An unnamed, device-bound key got a default name.
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(html.contains("Device passkey added"), "{html}");
    assert!(html.contains("Device-bound passkey"), "{html}");
    idp.stop().await;
}

#[tokio::test]
async fn several_passkeys_are_named_renamed_and_removed() {
    let idp = Idp::demo().await;
    let account = signed_in_browser(&idp, "demo-user").await;
    let first = Authenticator::new(&origin(&idp), 0);
    let second = Authenticator::new(&origin(&idp), BE);
    let first_name = format!("Key {}", uuid::Uuid::now_v7());
    let second_name = format!("Laptop {}", uuid::Uuid::now_v7());
    register(&idp, &account, &first, &first_name).await;
    register(&idp, &account, &second, &second_name).await;

    // Registering the same credential again is refused (excludeCredentials names both).
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(
        html.contains(&first_name) && html.contains(&second_name),
        "{html}"
    );
    let (_, options) = json(&account, &idp.url("/account/passkeys/options")).await;
    assert_eq!(options["excludeCredentials"].as_array().unwrap().len(), 2);
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["extensions"]["credProps"], true);
    let (client_data, attestation) = first.register(&options);
    let response = post_registration(
        &idp,
        &account,
        &button_csrf(&html),
        "again",
        &client_data,
        &attestation,
    )
    .await;
    assert_refused(response, 409, "registered already").await;

    // Rename: a bad name is refused next to its field; a good one is kept.
    let id = b64::encode(&first.credential_id);
    let rename = format!("/account/passkeys/{id}/rename");
    let response = account
        .post(idp.url(&rename))
        .form(&[("csrf_token", csrf(&html).as_str()), ("name", "   ")])
        .send()
        .await
        .unwrap();
    let page = assert_refused(response, 400, "1 to 64 characters").await;
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    let renamed = format!("Renamed {}", uuid::Uuid::now_v7());
    let response = account
        .post(idp.url(&rename))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("name", renamed.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account/passkeys");
    // Without the CSRF token nothing changes.
    let response = account
        .post(idp.url(&format!("/account/passkeys/{id}/remove")))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Remove: gone from the list and from the store; removing again is a 404 page.
    let response = account
        .post(idp.url(&format!("/account/passkeys/{id}/remove")))
        .form(&[("csrf_token", csrf(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/account/passkeys");
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(
        !html.contains(&renamed) && !html.contains(&first_name),
        "{html}"
    );
    assert!(html.contains(&second_name), "{html}");
    let response = account
        .post(idp.url(&format!("/account/passkeys/{id}/remove")))
        .form(&[("csrf_token", csrf(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_refused(response, 404, "No such passkey").await;

    // Someone else cannot touch them: demo-admin's rename of demo-user's passkey is a 404.
    let admin = signed_in_browser(&idp, "demo-admin").await;
    let admin_html = idp.page(&admin, "/account/passkeys").await;
    assert!(!admin_html.contains(&second_name), "{admin_html}");
    let response = admin
        .post(idp.url(&format!(
            "/account/passkeys/{}/remove",
            b64::encode(&second.credential_id)
        )))
        .form(&[("csrf_token", button_csrf(&admin_html).as_str())])
        .send()
        .await
        .unwrap();
    assert_refused(response, 404, "No such passkey").await;
    idp.stop().await;
}

#[tokio::test]
async fn refused_passkeys_are_clear_pages_and_the_user_can_still_sign_in() {
    let idp = Idp::demo().await;
    let account = signed_in_browser(&idp, "demo-user").await;
    let mut authenticator = Authenticator::new(&origin(&idp), 0);
    let user_handle = register(&idp, &account, &authenticator, "Key").await;
    let admin = signed_in_browser(&idp, "demo-admin").await;
    let mut admins = Authenticator::new(&origin(&idp), 0);
    let admin_handle = register(&idp, &admin, &admins, "Admin key").await;

    let (browser, jar) = idp.browser_with_jar();
    let (csrf_token, verifier) = at_login(&idp, &browser).await;

    // Wrong origin: the login page again, the reason announced, focus on the passkey button.
    authenticator.origin = "https://evil.example".to_owned();
    let a = authenticator.assert(&login_options(&idp, &browser).await, UP | UV, &user_handle);
    authenticator.origin = origin(&idp);
    let html = assert_refused(
        post(&idp, &browser, &csrf_token, &a).await,
        401,
        "could not be verified",
    )
    .await;
    assert!(html.contains("name=\"password\""), "{html}");
    assert!(
        html.contains("data-passkey=\"sign-in\" data-csrf=\""),
        "{html}"
    );

    // UP missing; UV missing (passwordless requires it); a tampered signature. Each used its
    // challenge: the same answer signed right is then a replay, refused.
    for (flags, tamper) in [(UV, false), (UP, false), (UP | UV, true)] {
        let mut a = authenticator.assert(&login_options(&idp, &browser).await, flags, &user_handle);
        if tamper {
            let last = a.signature.len() - 1;
            a.signature[last] ^= 1;
        }
        assert_refused(
            post(&idp, &browser, &csrf_token, &a).await,
            401,
            "could not be verified",
        )
        .await;
        a.authenticator_data[32] = UP | UV;
        authenticator.sign(&mut a);
        assert_refused(
            post(&idp, &browser, &csrf_token, &a).await,
            400,
            "expired or was already used",
        )
        .await;
    }

    // Another session's challenge.
    let other = idp.browser();
    let (other_csrf, _) = at_login(&idp, &other).await;
    let a = authenticator.assert(&login_options(&idp, &browser).await, UP | UV, &user_handle);
    assert_refused(
        post(&idp, &other, &other_csrf, &a).await,
        400,
        "expired or was already used",
    )
    .await;

    // User handle mismatch (passwordless: the handle must name the credential's user).
    let a = authenticator.assert(&login_options(&idp, &browser).await, UP | UV, &admin_handle);
    assert_refused(
        post(&idp, &browser, &csrf_token, &a).await,
        401,
        "does not belong",
    )
    .await;

    // Counter regression: an authenticator whose counter does not move past the stored one
    // (a clone).
    let stored = idp
        .identity
        .store()
        .webauthn_credential(&b64::encode(&authenticator.credential_id))
        .await
        .unwrap()
        .unwrap();
    authenticator.counter = stored.sign_count - 1;
    let a = authenticator.assert(&login_options(&idp, &browser).await, UP | UV, &user_handle);
    assert_refused(post(&idp, &browser, &csrf_token, &a).await, 401, "counter").await;
    let user_id = String::from_utf8(user_handle.clone()).unwrap();
    let events = audited(&idp, &user_id).await;
    for expected in [
        ("passkey_registered", "success"),
        ("passkey_counter_regression", "refused"),
    ] {
        assert!(
            events
                .iter()
                .any(|(o, r)| (o.as_str(), r.as_str()) == expected),
            "{expected:?} in {events:?}"
        );
    }
    authenticator.counter = stored.sign_count + 10;

    // Malformed base64, malformed client data, an oversized field, a missing field.
    let good = authenticator.assert(&login_options(&idp, &browser).await, UP | UV, &user_handle);
    for (name, value) in [
        ("signature", "***".to_owned()),
        ("client_data_json", b64::encode(b"not json")),
        ("authenticator_data", "A".repeat(23 * 1024)),
        ("id", String::new()),
    ] {
        let mut form = vec![
            ("csrf_token", csrf_token.clone()),
            ("id", b64::encode(&good.id)),
            ("client_data_json", b64::encode(&good.client_data_json)),
            ("authenticator_data", b64::encode(&good.authenticator_data)),
            ("signature", b64::encode(&good.signature)),
            ("user_handle", b64::encode(&good.user_handle)),
        ];
        form.retain(|(n, _)| *n != name);
        form.push((name, value));
        let response = browser
            .post(idp.url("/oidc/v1/login/passkey"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name}");
        assert!(
            response.text().await.unwrap().contains("role=\"alert\""),
            "{name}"
        );
    }

    // The password still works. As a second factor the challenge is bound to demo-user:
    // demo-admin's credential is refused, with the way back to the second-factor page.
    let response = browser
        .post(idp.url("/oidc/v1/login"))
        .form(&[
            ("csrf_token", csrf_token.as_str()),
            ("username", "demo-user"),
            ("password", "demo-user-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login/second-factor");
    let csrf_token = session_csrf(&idp, &jar).await;
    let a = admins.assert(&login_options(&idp, &browser).await, UP | UV, &admin_handle);
    let html = assert_refused(
        post(&idp, &browser, &csrf_token, &a).await,
        401,
        "not registered for this account",
    )
    .await;
    assert!(
        html.contains("href=\"/oidc/v1/login/second-factor\""),
        "{html}"
    );
    // … and the user's own passkey completes it: nobody was locked out.
    let a = authenticator.assert(&login_options(&idp, &browser).await, UP, &user_handle);
    let response = post(&idp, &browser, &csrf_token, &a).await;
    let claims = finish_code_flow(&idp, &browser, location(&response), &verifier).await;
    assert!(claims["sub"].is_string());

    // A disabled user's passkey signs nobody in.
    let store = idp.identity.store();
    let mut user = store.user_by_username("demo-user").await.unwrap().unwrap();
    user.enabled = false;
    store.upsert_user(&user).await.unwrap();
    let late = idp.browser();
    let (late_csrf, _) = at_login(&idp, &late).await;
    let a = authenticator.assert(&login_options(&idp, &late).await, UP | UV, &user_handle);
    assert_refused(
        post(&idp, &late, &late_csrf, &a).await,
        403,
        "cannot sign in",
    )
    .await;
    idp.stop().await;
}

#[tokio::test]
async fn registration_refuses_bad_answers_with_a_page() {
    let idp = Idp::demo().await;
    let account = signed_in_browser(&idp, "demo-user").await;
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(html.contains("You have no passkeys yet."), "{html}");
    let authenticator = Authenticator::new(&origin(&idp), 0);

    // Malformed CBOR, a name too long, a wrong origin, a challenge not issued: each a page.
    let (_, options) = json(&account, &idp.url("/account/passkeys/options")).await;
    let (client_data, _) = authenticator.register(&options);
    let response = post_registration(
        &idp,
        &account,
        &button_csrf(&html),
        "",
        &client_data,
        &[0xa1, 0xff],
    )
    .await;
    assert_refused(response, 400, "could not be verified").await;
    let (_, options) = json(&account, &idp.url("/account/passkeys/options")).await;
    let (client_data, attestation) = authenticator.register(&options);
    let long = "x".repeat(65);
    let response = post_registration(
        &idp,
        &account,
        &button_csrf(&html),
        &long,
        &client_data,
        &attestation,
    )
    .await;
    let page = assert_refused(response, 400, "1 to 64 characters").await;
    assert!(page.contains("id=\"passkey-name-error\""), "{page}");
    let evil = Authenticator::new("https://evil.example", 0);
    let (_, options) = json(&account, &idp.url("/account/passkeys/options")).await;
    let (client_data, attestation) = evil.register(&options);
    let response = post_registration(
        &idp,
        &account,
        &button_csrf(&html),
        "",
        &client_data,
        &attestation,
    )
    .await;
    assert_refused(response, 400, "could not be verified").await;
    // Replaying the last (refused) answer's challenge: used already.
    let response = post_registration(
        &idp,
        &account,
        &button_csrf(&html),
        "",
        &client_data,
        &attestation,
    )
    .await;
    assert_refused(response, 400, "expired or was already used").await;
    // Nothing was registered.
    let html = idp.page(&account, "/account/passkeys").await;
    assert!(html.contains("You have no passkeys yet."), "{html}");
    idp.stop().await;
}

#[tokio::test]
async fn the_script_is_served_cached_and_options_need_a_session() {
    let idp = Idp::demo().await;
    let response = idp
        .http
        .get(idp.url("/oidc/v1/assets/passkey.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let script = response.text().await.unwrap();
    assert!(script.contains("navigator.credentials.get"), "{script}");
    let response = idp
        .http
        .get(idp.url("/oidc/v1/assets/passkey.js"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);

    // No session: a JSON error, not a page and not a challenge.
    let (status, body) = json(&idp.http, &idp.url("/oidc/v1/login/passkey")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "no_session");

    // The account page needs a signed-in browser: off to the login page.
    let browser = idp.browser();
    let response = browser
        .get(idp.url("/account/passkeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/oidc/v1/login");
    idp.stop().await;
}
