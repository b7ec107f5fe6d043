//! `cryptoutil demo identity` (SPEC §6): discovery and JWKS → authorization code + PKCE with the
//! login and consent forms posted as a browser would → token exchange → ID token validated →
//! userinfo → refresh rotation (the spent refresh token rejected) → client_credentials →
//! introspect (active) → revoke → introspect (inactive) → a CLI client registers itself
//! (RFC 7591/7592), signs the user in with the device grant (RFC 8628) and unregisters. The demo
//! acts as the clients and as demo-user's browser; every token is checked locally against the
//! JWKS.

use std::time::Duration;

use cryptoutil_jose::jwk::JwkSet;
use cryptoutil_jose::{JwsAlgorithm, b64, jws};
use reqwest::Client;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::context::{RunContext, Target};
use crate::credentials::{Credentials, Secret};
use crate::html;
use crate::http::{Http, Reply};
use crate::runner::{Step, StepFuture};
use crate::step_error::StepError;

mod device;
mod mfa;
pub(crate) mod state;

pub use device::approve_device;
pub(crate) use state::Discovery;
pub use state::IdentityState;

/// Scopes the demo asks for (refresh tokens need `offline_access`).
const SCOPE: &str = "openid profile email offline_access";
/// Clock skew allowed on `iat`/`exp`.
const SKEW: i64 = 60;
/// Redirects followed from the authorization request to the client's redirect URI.
const MAX_HOPS: usize = 10;

/// The steps of `demo identity`, in order.
pub const STEPS: &[Step] = &[
    Step {
        name: "identity-discovery",
        description: "Discovery and JWKS",
        phase: "discovery",
        needs: &[],
        run: discovery,
    },
    Step {
        name: "identity-authorize",
        description: "Authorization code + PKCE: sign in and consent as a browser would",
        phase: "authorization-code",
        needs: &["identity-discovery"],
        run: authorize,
    },
    Step {
        name: "identity-token-exchange",
        description: "Exchange the code for tokens (PKCE verifier, client_secret_basic)",
        phase: "authorization-code",
        needs: &["identity-authorize"],
        run: token_exchange,
    },
    Step {
        name: "identity-id-token",
        description: "Validate the ID token (signature against the JWKS, iss, aud, nonce, exp, at_hash)",
        phase: "authorization-code",
        needs: &["identity-token-exchange"],
        run: id_token,
    },
    Step {
        name: "identity-userinfo",
        description: "Userinfo with the access token",
        phase: "authorization-code",
        needs: &["identity-id-token"],
        run: userinfo,
    },
    Step {
        name: "identity-refresh",
        description: "Refresh rotation: a new refresh token; the spent one is rejected",
        phase: "refresh",
        needs: &["identity-token-exchange"],
        run: refresh,
    },
    Step {
        name: "identity-client-credentials",
        description: "client_credentials grant",
        phase: "client-credentials",
        needs: &["identity-discovery"],
        run: client_credentials,
    },
    Step {
        name: "identity-introspect-active",
        description: "Introspect the access token: active",
        phase: "introspection",
        needs: &["identity-client-credentials"],
        run: introspect_active,
    },
    Step {
        name: "identity-revoke",
        description: "Revoke the access token",
        phase: "introspection",
        needs: &["identity-client-credentials"],
        run: revoke,
    },
    Step {
        name: "identity-introspect-inactive",
        description: "Introspect it again: inactive",
        phase: "introspection",
        needs: &["identity-revoke"],
        run: introspect_inactive,
    },
    Step {
        name: "identity-mfa-sign-in",
        description: "demo-mfa-user signs in with a password and a TOTP code computed as an authenticator app would",
        phase: "mfa",
        needs: &["identity-discovery"],
        run: mfa::mfa_sign_in,
    },
    Step {
        name: "identity-register",
        description: "Dynamic client registration (RFC 7591): a CLI client registers itself, reads it back (RFC 7592)",
        phase: "device",
        needs: &["identity-discovery"],
        run: device::register,
    },
    Step {
        name: "identity-device-authorization",
        description: "Device authorization (RFC 8628): a user code; the first poll is pending",
        phase: "device",
        needs: &["identity-register"],
        run: device::device_authorization,
    },
    Step {
        name: "identity-device-approve",
        description: "The user's browser enters the code, signs in and approves",
        phase: "device",
        needs: &["identity-device-authorization"],
        run: device::device_approve,
    },
    Step {
        name: "identity-device-token",
        description: "The device polls at its interval and gets the user's tokens",
        phase: "device",
        needs: &["identity-device-approve"],
        run: device::device_token,
    },
    Step {
        name: "identity-unregister",
        description: "The client deletes its registration (RFC 7592)",
        phase: "device",
        needs: &["identity-register"],
        run: device::unregister,
    },
];

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn missing(what: &str) -> StepError {
    StepError::new(format!(
        "{what} is missing (an earlier step did not record it)"
    ))
}

pub(crate) fn discovered(ctx: &RunContext) -> Result<Discovery, StepError> {
    ctx.identity
        .discovery
        .clone()
        .ok_or_else(|| missing("the discovery document"))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A random URL-safe value of `bytes` random bytes.
fn random(bytes: usize) -> Result<String, StepError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| StepError::new("the random generator failed"))?;
    Ok(b64::encode(&buf))
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
fn s256(verifier: &str) -> String {
    b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the access token's hash with the ID token's
/// hash (SHA-256 for ES256/RS256/PS256; SHA-512 for EdDSA/Ed25519), base64url.
fn at_hash(alg: JwsAlgorithm, access_token: &str) -> String {
    let algorithm = match alg {
        JwsAlgorithm::EdDSA
        | JwsAlgorithm::ES512
        | JwsAlgorithm::RS512
        | JwsAlgorithm::PS512
        | JwsAlgorithm::HS512 => &aws_lc_rs::digest::SHA512,
        JwsAlgorithm::ES384 | JwsAlgorithm::RS384 | JwsAlgorithm::PS384 | JwsAlgorithm::HS384 => {
            &aws_lc_rs::digest::SHA384
        }
        _ => &aws_lc_rs::digest::SHA256,
    };
    let digest = aws_lc_rs::digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    b64::encode(&bytes[..bytes.len() / 2])
}

/// RFC 6749 §2.3.1: client_secret_basic sends the form-encoded id and secret.
pub(crate) fn client_basic(client_id: &str, secret: &Secret) -> (String, String) {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    (encode(client_id), encode(secret.expose()))
}

/// POSTs a form to an endpoint with the demo client's credentials (client_secret_basic).
async fn post_as_client(
    http: &Http,
    credentials: &Credentials,
    endpoint: &Url,
    form: &[(&str, &str)],
) -> Result<Reply, StepError> {
    post_as(
        http,
        &credentials.client_id,
        &credentials.client_secret,
        endpoint,
        form,
    )
    .await
}

/// POSTs a form to an endpoint as the client `client_id` with client_secret_basic.
pub(crate) async fn post_as(
    http: &Http,
    client_id: &str,
    secret: &Secret,
    endpoint: &Url,
    form: &[(&str, &str)],
) -> Result<Reply, StepError> {
    let (id, secret) = client_basic(client_id, secret);
    let what = format!("POST {}", endpoint.path());
    http.send(&what, |client: &Client| {
        client
            .post(endpoint.clone())
            .basic_auth(&id, Some(&secret))
            .form(form)
    })
    .await
}

/// Verifies a JWS against the JWKS: `kid` names the key, the header `alg` must be one the
/// server advertises (`allowed`) and the key's own; returns header and claims.
fn verify_jwt(jwks: &str, token: &str, allowed: &[String]) -> Result<(Value, Value), StepError> {
    let set = JwkSet::from_json(jwks)
        .map_err(|e| StepError::with_cause("the JWKS does not parse", e.to_string()))?;
    let header = jws::peek_header(token)
        .map_err(|e| StepError::with_cause("not a compact JWS", e.to_string()))?;
    let kid = header
        .kid()
        .ok_or_else(|| StepError::new("the token header has no kid"))?;
    let alg_name = header
        .alg()
        .ok_or_else(|| StepError::new("the token header has no alg"))?;
    if !allowed.iter().any(|a| a == alg_name) {
        return Err(StepError::new(format!(
            "alg {alg_name} is not among the advertised signing algorithms {allowed:?}"
        )));
    }
    let alg = alg_name
        .parse::<JwsAlgorithm>()
        .map_err(|e| StepError::with_cause(format!("unsupported alg {alg_name}"), e.to_string()))?;
    let key = set
        .find(kid)
        .ok_or_else(|| StepError::new(format!("kid {kid} is not in the JWKS")))?;
    let verified = jws::verify(key, alg, token).map_err(|e| {
        StepError::with_cause(
            "the signature does not verify against the JWKS",
            e.to_string(),
        )
    })?;
    let claims: Value = serde_json::from_slice(&verified.payload)
        .map_err(|e| StepError::with_cause("the claims are not JSON", e.to_string()))?;
    let header = Value::Object(verified.header.into_members());
    Ok((header, claims))
}

/// `iss`, `exp` and `iat` of verified claims.
fn check_times_and_issuer(claims: &Value, issuer: &str) -> Result<i64, StepError> {
    if claims["iss"].as_str() != Some(issuer) {
        return Err(StepError::new(format!(
            "iss {} is not the issuer {issuer}",
            claims["iss"]
        )));
    }
    let now = now();
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| StepError::new("no exp"))?;
    if exp <= now - SKEW {
        return Err(StepError::new(format!("expired {} s ago", now - exp)));
    }
    let iat = claims["iat"]
        .as_i64()
        .ok_or_else(|| StepError::new("no iat"))?;
    if iat > now + SKEW {
        return Err(StepError::new("iat is in the future"));
    }
    Ok(exp - now)
}

fn discovery(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let target: Target = ctx.env.identity()?.clone();
        let http = &ctx.env.http;
        let timeout = ctx.env.health_timeout;
        let mut details = Vec::new();
        if let Some(admin) = &target.admin_url {
            let url = admin
                .join("/admin/v1/readyz")
                .map_err(|e| StepError::new(e.to_string()))?;
            let ready: Value = http
                .wait_healthy(http.admin(), "Identity server", &url, timeout)
                .await?
                .json()?;
            if ready["status"] != "ok" {
                return Err(StepError::with_cause(
                    "the Identity server reports itself not ready",
                    ready.to_string(),
                ));
            }
            details.push("readyz: ok".to_owned());
        }
        let url = target.url("/.well-known/openid-configuration")?;
        let reply = http
            .wait_healthy(http.api(), "Identity server", &url, timeout)
            .await?;
        let document: Discovery = reply.json()?;
        let expected = target.public_url.as_str().trim_end_matches('/');
        if document.issuer != expected {
            return Err(StepError::new(format!(
                "the issuer {} differs from the URL it was discovered at ({expected}); give the issuer URL as --identity-url",
                document.issuer
            )));
        }
        let mut gaps = Vec::new();
        if !document
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            gaps.push("PKCE S256".to_owned());
        }
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            if !document.grant_types_supported.iter().any(|g| g == grant) {
                gaps.push(format!("grant {grant}"));
            }
        }
        if !document.authorization_response_iss_parameter_supported {
            gaps.push("RFC 9207 iss in authorization responses".to_owned());
        }
        if document.id_token_signing_alg_values_supported.is_empty() {
            gaps.push("ID token signing algorithms".to_owned());
        }
        if !gaps.is_empty() {
            return Err(StepError::with_cause(
                "the discovery document does not advertise what the demo needs",
                gaps.join(", "),
            ));
        }
        let jwks = http
            .send(&format!("GET {}", document.jwks_uri.path()), |c| {
                c.get(document.jwks_uri.clone())
            })
            .await?
            .expect(200)?
            .text()?;
        let set = JwkSet::from_json(&jwks)
            .map_err(|e| StepError::with_cause("the JWKS does not parse", e.to_string()))?;
        let parsed: Value = serde_json::from_str(&jwks)
            .map_err(|e| StepError::with_cause("the JWKS is not JSON", e.to_string()))?;
        let keys = parsed["keys"].as_array().cloned().unwrap_or_default();
        if keys.is_empty() {
            return Err(StepError::new("the JWKS has no keys"));
        }
        let mut described = Vec::new();
        for key in &keys {
            let kid = key["kid"].as_str().unwrap_or_default();
            let public = set.find(kid).is_some_and(|k| !k.is_private());
            if kid.is_empty() || !public {
                return Err(StepError::new(
                    "every JWKS key must be public and carry a kid",
                ));
            }
            described.push(format!("{} {kid}", key["alg"].as_str().unwrap_or("?")));
        }
        details.push(format!("issuer {}", document.issuer));
        details.push(format!("JWKS: {}", described.join(", ")));
        ctx.identity.discovery = Some(document);
        ctx.identity.jwks = Some(jwks);
        Ok(details)
    })
}

/// Where the browser is sent next: the `Location` of a redirect, resolved against `base`.
fn location(reply: &Reply, base: &Url) -> Result<Url, StepError> {
    if !reply.status.is_redirection() {
        let page = reply.text().unwrap_or_default();
        let said = html::error_message(&page)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(StepError::with_cause(
            format!(
                "{}: expected a redirect, got HTTP {}",
                reply.what,
                reply.status.as_u16()
            ),
            format!("{}{said}", reply.describe()),
        ));
    }
    let target = reply
        .header("location")
        .ok_or_else(|| StepError::new(format!("{}: a redirect without Location", reply.what)))?;
    base.join(target)
        .map_err(|e| StepError::with_cause("a redirect to a malformed URL", e.to_string()))
}

/// What demo-user's browser does on an Identity page: the form it fills and the fields it sends
/// (the user-code entry when `user_code` is given, the login form, the consent form's allow
/// button), or `None` when the page has none of them.
pub(crate) fn fill_page<'f>(
    forms: &'f [html::Form],
    credentials: &Credentials,
    user_code: Option<&str>,
    details: &mut Vec<String>,
) -> Option<(&'f html::Form, Vec<(String, String)>)> {
    let entry = user_code.and_then(|code| {
        forms
            .iter()
            .find(|f| {
                f.controls
                    .iter()
                    .any(|c| c.name == "user_code" && c.kind != "hidden")
            })
            .map(|f| (f, code))
    });
    if let Some((form, code)) = entry {
        details.push(format!("verification page: typing the code as {code:?}"));
        Some((form, form.submission(None, &[("user_code", code)])))
    } else if let Some(form) = forms.iter().find(|f| f.password_field().is_some()) {
        details.push(format!(
            "login page: signing in as {}",
            credentials.username
        ));
        let fields = form.submission(
            None,
            &[
                ("username", credentials.username.as_str()),
                ("password", credentials.password.expose()),
            ],
        );
        Some((form, fields))
    } else {
        let (form, allow) = forms
            .iter()
            .find_map(|f| f.button("decision", "allow").map(|b| (f, b)))?;
        details.push("consent page: allowing the requested scopes".to_owned());
        Some((form, form.submission(Some(allow), &[])))
    }
}

/// Posts `form` of the page at `page` as a browser would; the action's URL and the reply.
pub(crate) async fn submit(
    http: &Http,
    browser: &Client,
    page: &Url,
    form: &html::Form,
    fields: &[(String, String)],
) -> Result<(Url, Reply), StepError> {
    if form.method != "POST" {
        return Err(StepError::new(format!(
            "{}: the form is not posted",
            page.path()
        )));
    }
    let action = page
        .join(&form.action)
        .map_err(|e| StepError::with_cause("a form with a malformed action", e.to_string()))?;
    let post = format!("POST {}", action.path());
    let reply = http
        .send_with(browser, &post, |c| c.post(action.clone()).form(fields))
        .await?;
    Ok((action, reply))
}

/// What a browser sign-in asks for: the authorization request's parameters besides PKCE,
/// `state` and `nonce`.
pub(crate) struct SignIn<'a> {
    /// The client.
    pub(crate) client_id: &'a str,
    /// Its registered redirect URI (the demo reads the redirect; nothing listens there).
    pub(crate) redirect_uri: &'a str,
    /// The requested scope.
    pub(crate) scope: &'a str,
    /// More parameters (e.g. `resource`).
    pub(crate) extra: &'a [(&'a str, &'a str)],
    /// Who signs in instead of the demo user (e.g. demo-mfa-user).
    pub(crate) user: Option<&'a Credentials>,
    /// The user's TOTP secret (base32): the second-factor page is answered with the code an
    /// authenticator app would show now ([`mfa::totp_now`]).
    pub(crate) totp_secret: Option<&'a str>,
}

/// The result of a sign-in: the code with what redeeming it needs.
pub(crate) struct SignedIn {
    /// The authorization code.
    pub(crate) code: Secret,
    /// The PKCE verifier.
    pub(crate) verifier: Secret,
    /// The `nonce` sent (checked in the ID token).
    pub(crate) nonce: String,
    /// What happened, for the step's details.
    pub(crate) details: Vec<String>,
}

/// The demo user signs in through Identity's login and consent pages in a fresh browser
/// session (authorization code flow with PKCE S256, `state`, `nonce`, RFC 9207 `iss` checked).
pub(crate) async fn sign_in(ctx: &RunContext, request: &SignIn<'_>) -> Result<SignedIn, StepError> {
    let discovery = discovered(ctx)?;
    let credentials = request.user.unwrap_or(&ctx.env.credentials);
    let redirect_uri = request.redirect_uri;
    let http = &ctx.env.http;
    let browser = http.browser()?;
    let verifier = random(32)?;
    let state = random(16)?;
    let nonce = random(16)?;
    let mut url = discovery.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", request.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", request.scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &s256(&verifier))
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(request.extra);
    let mut details = Vec::new();
    let mut next = url;
    let mut callback = None;
    for _ in 0..MAX_HOPS {
        if next.as_str().starts_with(redirect_uri) {
            callback = Some(next);
            break;
        }
        let what = format!("GET {}", next.path());
        let reply = http
            .send_with(&browser, &what, |c| c.get(next.clone()))
            .await?;
        if reply.status.is_redirection() {
            next = location(&reply, &next)?;
            continue;
        }
        let page = reply.expect(200)?.text()?;
        let forms = html::forms(&page);
        let second_factor = match request.totp_secret {
            Some(secret) => mfa::fill_second_factor(&forms, secret, &mut details)?,
            None => None,
        };
        let Some((form, fields)) =
            second_factor.or_else(|| fill_page(&forms, credentials, None, &mut details))
        else {
            let said =
                html::error_message(&page).unwrap_or_else(|| "no login or consent form".to_owned());
            return Err(StepError::with_cause(
                format!("{what}: an unexpected page"),
                said,
            ));
        };
        let (action, reply) = submit(http, &browser, &next, form, &fields).await?;
        let post = format!("POST {}", action.path());
        next = location(&reply, &action)
            .map_err(|e| e.context(format!("{post}: the form was not accepted")))?;
    }
    let callback = callback.ok_or_else(|| {
        StepError::new(format!(
            "no redirect to {redirect_uri} after {MAX_HOPS} pages"
        ))
    })?;
    let params: std::collections::HashMap<String, String> = callback
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(error) = params.get("error") {
        return Err(StepError::with_cause(
            format!("the authorization failed: {error}"),
            params.get("error_description").cloned().unwrap_or_default(),
        ));
    }
    if params.get("state") != Some(&state) {
        return Err(StepError::new(
            "the callback's state differs from the request's",
        ));
    }
    if params.get("iss") != Some(&discovery.issuer) {
        return Err(StepError::new(format!(
            "the callback's iss {:?} is not the issuer (RFC 9207)",
            params.get("iss")
        )));
    }
    let code = params
        .get("code")
        .ok_or_else(|| StepError::new("the callback has no code"))?;
    details.push("redirected to the client with a code; state and iss match".to_owned());
    Ok(SignedIn {
        code: Secret::new(code.clone()),
        verifier: Secret::new(verifier),
        nonce,
        details,
    })
}

fn authorize(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let credentials = ctx.env.credentials.clone();
        let signed_in = sign_in(
            ctx,
            &SignIn {
                client_id: &credentials.client_id,
                redirect_uri: &credentials.redirect_uri,
                scope: SCOPE,
                extra: &[],
                user: None,
                totp_secret: None,
            },
        )
        .await?;
        ctx.identity.code = Some(signed_in.code);
        ctx.identity.pkce_verifier = Some(signed_in.verifier);
        ctx.identity.nonce = Some(signed_in.nonce);
        Ok(signed_in.details)
    })
}

/// Checks a token response and the access token in it (signature, `typ`, iss, exp, client).
fn check_token_response(
    reply: Reply,
    jwks: &str,
    discovery: &Discovery,
    client_id: &str,
) -> Result<(TokenResponse, Value), StepError> {
    let no_store = reply
        .header("cache-control")
        .is_some_and(|v| v.contains("no-store"));
    let tokens: TokenResponse = reply.expect(200)?.json()?;
    if !no_store {
        return Err(StepError::new(
            "the token response lacks Cache-Control: no-store",
        ));
    }
    if !tokens.token_type.eq_ignore_ascii_case("bearer") || tokens.expires_in <= 0 {
        return Err(StepError::new(format!(
            "token_type {} expires_in {}: expected a Bearer token with a lifetime",
            tokens.token_type, tokens.expires_in
        )));
    }
    let (header, claims) = verify_jwt(
        jwks,
        &tokens.access_token,
        &discovery.id_token_signing_alg_values_supported,
    )
    .map_err(|e| e.context("the access token"))?;
    if header["typ"] != "at+jwt" {
        return Err(StepError::new(format!(
            "the access token's typ is {}, not at+jwt (RFC 9068)",
            header["typ"]
        )));
    }
    check_times_and_issuer(&claims, &discovery.issuer)
        .map_err(|e| e.context("the access token"))?;
    if claims["client_id"].as_str() != Some(client_id) {
        return Err(StepError::new(format!(
            "the access token's client_id is {}",
            claims["client_id"]
        )));
    }
    Ok((tokens, claims))
}

fn token_exchange(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let code = ctx
            .identity
            .code
            .take()
            .ok_or_else(|| missing("the code"))?;
        let verifier = ctx
            .identity
            .pkce_verifier
            .take()
            .ok_or_else(|| missing("the PKCE verifier"))?;
        let credentials = &ctx.env.credentials;
        let reply = post_as_client(
            &ctx.env.http,
            credentials,
            &discovery.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", credentials.redirect_uri.as_str()),
                ("code_verifier", verifier.expose()),
            ],
        )
        .await?;
        let (tokens, claims) =
            check_token_response(reply, &jwks, &discovery, &credentials.client_id)?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| StepError::new("no id_token although openid was granted"))?;
        let refresh = tokens.refresh_token.ok_or_else(|| {
            StepError::new("no refresh_token although offline_access was granted")
        })?;
        let scope = tokens.scope.unwrap_or_default();
        let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
        let details = vec![
            format!(
                "access token (at+jwt, signature verified): sub {sub}, scope \"{scope}\", expires in {} s",
                tokens.expires_in
            ),
            "ID token and refresh token received".to_owned(),
        ];
        ctx.identity.access_token = Some(Secret::new(tokens.access_token));
        ctx.identity.id_token = Some(Secret::new(id_token));
        ctx.identity.refresh_token = Some(Secret::new(refresh));
        ctx.identity.subject = Some(sub);
        Ok(details)
    })
}

fn id_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let token = ctx
            .identity
            .id_token
            .clone()
            .ok_or_else(|| missing("the ID token"))?;
        let access = ctx
            .identity
            .access_token
            .clone()
            .ok_or_else(|| missing("the access token"))?;
        let nonce = ctx
            .identity
            .nonce
            .clone()
            .ok_or_else(|| missing("the nonce"))?;
        let client_id = ctx.env.credentials.client_id.clone();
        let (header, claims) = verify_jwt(
            &jwks,
            token.expose(),
            &discovery.id_token_signing_alg_values_supported,
        )?;
        let expires_in = check_times_and_issuer(&claims, &discovery.issuer)?;
        let aud_ok = match &claims["aud"] {
            Value::String(aud) => *aud == client_id,
            Value::Array(auds) => {
                auds.iter().any(|a| a.as_str() == Some(client_id.as_str()))
                    && (auds.len() == 1 || claims["azp"].as_str() == Some(client_id.as_str()))
            }
            _ => false,
        };
        if !aud_ok {
            return Err(StepError::new(format!(
                "aud {} does not name the client {client_id}",
                claims["aud"]
            )));
        }
        if claims["nonce"].as_str() != Some(nonce.as_str()) {
            return Err(StepError::new(
                "the nonce differs from the authorization request's",
            ));
        }
        let alg = header["alg"]
            .as_str()
            .and_then(|a| a.parse::<JwsAlgorithm>().ok())
            .ok_or_else(|| StepError::new("no alg"))?;
        let expected_hash = at_hash(alg, access.expose());
        if claims["at_hash"].as_str() != Some(expected_hash.as_str()) {
            return Err(StepError::new("at_hash does not match the access token"));
        }
        if claims["sub"].as_str() != ctx.identity.subject.as_deref() {
            return Err(StepError::new(
                "the ID token's sub differs from the access token's",
            ));
        }
        if !claims["auth_time"].is_i64() {
            return Err(StepError::new("no auth_time"));
        }
        Ok(vec![format!(
            "{} kid {}: iss, aud {client_id}, nonce, at_hash ok; expires in {expires_in} s",
            header["alg"].as_str().unwrap_or("?"),
            header["kid"].as_str().unwrap_or("?")
        )])
    })
}

fn userinfo(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let access = ctx
            .identity
            .access_token
            .clone()
            .ok_or_else(|| missing("the access token"))?;
        let http = &ctx.env.http;
        let endpoint = discovery.userinfo_endpoint.clone();
        let what = format!("GET {}", endpoint.path());
        let info: Value = http
            .send(&what, |c| {
                c.get(endpoint.clone()).bearer_auth(access.expose())
            })
            .await?
            .expect(200)?
            .json()?;
        if info["sub"].as_str() != ctx.identity.subject.as_deref() {
            return Err(StepError::new("userinfo's sub differs from the tokens'"));
        }
        let username = &ctx.env.credentials.username;
        if info["preferred_username"].as_str() != Some(username.as_str()) {
            return Err(StepError::new(format!(
                "userinfo names {} instead of {username} (profile scope)",
                info["preferred_username"]
            )));
        }
        if !info["email"].is_string() {
            return Err(StepError::new(
                "userinfo has no email although the email scope was granted",
            ));
        }
        // Without a token: 401 with a Bearer challenge.
        let anonymous = http.send(&what, |c| c.get(endpoint.clone())).await?;
        let challenge = anonymous
            .header("www-authenticate")
            .unwrap_or_default()
            .to_owned();
        if anonymous.status != 401 || !challenge.starts_with("Bearer") {
            return Err(StepError::with_cause(
                "userinfo without a token was not refused with 401 and a Bearer challenge",
                anonymous.describe(),
            ));
        }
        Ok(vec![
            format!(
                "sub {}, preferred_username {username}, email {}",
                info["sub"].as_str().unwrap_or_default(),
                info["email"].as_str().unwrap_or_default()
            ),
            "without a token: 401 Bearer".to_owned(),
        ])
    })
}

fn refresh(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let spent = ctx
            .identity
            .refresh_token
            .take()
            .ok_or_else(|| missing("the refresh token"))?;
        let credentials = &ctx.env.credentials;
        let http = &ctx.env.http;
        let endpoint = &discovery.token_endpoint;
        let grant = |token: Secret| async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.expose()),
            ];
            post_as_client(http, credentials, endpoint, &form).await
        };
        let reply = grant(spent.clone()).await?;
        let (tokens, _) = check_token_response(reply, &jwks, &discovery, &credentials.client_id)?;
        let rotated = tokens
            .refresh_token
            .ok_or_else(|| StepError::new("the refresh grant returned no new refresh token"))?;
        if rotated == spent.expose() {
            return Err(StepError::new("the refresh token was not rotated"));
        }
        let rotated = Secret::new(rotated);
        // The spent token is rejected …
        let replay = grant(spent).await?;
        let replay_body: Value = serde_json::from_slice(&replay.body).unwrap_or(Value::Null);
        if replay.status != 400 || replay_body["error"] != "invalid_grant" {
            return Err(StepError::with_cause(
                "the spent refresh token was not rejected with invalid_grant",
                replay.describe(),
            ));
        }
        // … and its reuse revoked the whole family, the new token included.
        let family = grant(rotated).await?;
        if family.status != 400 {
            return Err(StepError::with_cause(
                "reusing a spent refresh token did not revoke its family",
                family.describe(),
            ));
        }
        Ok(vec![
            "new access and refresh tokens; the refresh token rotated".to_owned(),
            format!("spent token replayed: {}", replay.describe()),
            "the replay revoked the family: the new refresh token is refused too".to_owned(),
        ])
    })
}

fn client_credentials(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let credentials = &ctx.env.credentials;
        let reply = post_as_client(
            &ctx.env.http,
            credentials,
            &discovery.token_endpoint,
            &[("grant_type", "client_credentials")],
        )
        .await?;
        let (tokens, claims) =
            check_token_response(reply, &jwks, &discovery, &credentials.client_id)?;
        if claims["sub"].as_str() != Some(credentials.client_id.as_str()) {
            return Err(StepError::new(format!(
                "a client_credentials token's sub is {}, not the client",
                claims["sub"]
            )));
        }
        if tokens.refresh_token.is_some() || tokens.id_token.is_some() {
            return Err(StepError::new(
                "client_credentials returned a refresh or ID token",
            ));
        }
        let details = vec![format!(
            "access token (at+jwt, signature verified): sub {}, jti {}, expires in {} s",
            credentials.client_id,
            claims["jti"].as_str().unwrap_or("?"),
            tokens.expires_in
        )];
        ctx.identity.machine_token = Some(Secret::new(tokens.access_token));
        Ok(details)
    })
}

async fn introspect(ctx: &RunContext) -> Result<Value, StepError> {
    let discovery = discovered(ctx)?;
    let token = ctx
        .identity
        .machine_token
        .clone()
        .ok_or_else(|| missing("the access token"))?;
    post_as_client(
        &ctx.env.http,
        &ctx.env.credentials,
        &discovery.introspection_endpoint,
        &[
            ("token", token.expose()),
            ("token_type_hint", "access_token"),
        ],
    )
    .await?
    .expect(200)?
    .json()
}

fn introspect_active(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let result = introspect(ctx).await?;
        let client_id = &ctx.env.credentials.client_id;
        if result["active"] != true {
            return Err(StepError::with_cause(
                "the fresh token is not active",
                result.to_string(),
            ));
        }
        if result["client_id"].as_str() != Some(client_id.as_str()) {
            return Err(StepError::new(format!(
                "introspection names client {}",
                result["client_id"]
            )));
        }
        let issuer = discovered(ctx)?.issuer;
        check_times_and_issuer(&result, &issuer).map_err(|e| e.context("introspection"))?;
        Ok(vec![format!(
            "active: true, client_id {client_id}, token_type {}",
            result["token_type"].as_str().unwrap_or("-")
        )])
    })
}

fn revoke(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let token = ctx
            .identity
            .machine_token
            .clone()
            .ok_or_else(|| missing("the access token"))?;
        post_as_client(
            &ctx.env.http,
            &ctx.env.credentials,
            &discovery.revocation_endpoint,
            &[
                ("token", token.expose()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await?
        .expect(200)?;
        Ok(vec!["revocation accepted (RFC 7009)".to_owned()])
    })
}

fn introspect_inactive(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        // Revocations reach every instance within a second; one instance sees them at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let result = introspect(ctx).await?;
            if result["active"] == false {
                let extra = result.as_object().map_or(0, |o| o.len() - 1);
                if extra > 0 {
                    return Err(StepError::new(
                        "an inactive token's introspection reveals claims",
                    ));
                }
                return Ok(vec!["active: false (nothing else disclosed)".to_owned()]);
            }
            if std::time::Instant::now() >= deadline {
                return Err(StepError::with_cause(
                    "the revoked token is still active",
                    result["active"].to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OIDC Core A.3 (RS256): access token and its at_hash.
        assert_eq!(
            at_hash(
                JwsAlgorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(JwsAlgorithm::EdDSA, "x").len(),
            43,
            "half of SHA-512"
        );
    }

    #[test]
    fn client_secret_basic_form_encodes_id_and_secret() {
        let credentials = Credentials {
            client_id: "a b".to_owned(),
            client_secret: Secret::new("p:w&d"),
            ..Credentials::default()
        };
        assert_eq!(
            client_basic(&credentials.client_id, &credentials.client_secret),
            ("a+b".to_owned(), "p%3Aw%26d".to_owned())
        );
    }
}
