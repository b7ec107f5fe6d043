//! Fuzzing entry points (feature `fuzzing`): what the `config`, `oauth_forms` and `dpop` fuzz
//! targets and this crate's `fuzz_corpus` test feed untrusted bytes to. They call the same parsers the
//! endpoints do (the form parser with the endpoints' limits, client authentication, the
//! authorization request checks, the pushed request encoding) without a database. A failed
//! invariant panics on purpose (that is how libFuzzer reports it); nothing in the product calls
//! this module.
#![allow(clippy::panic, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use cryptoutil_jose::jwk::JwkSet;
use cryptoutil_jose::{Jwk, OkpCurve};
use cryptoutil_server::config::fuzzing::{check_settings_round_trip, config_input};
use time::OffsetDateTime;

use crate::api::extract::is_form_content_type;
use crate::config::{IdentitySettings, ResourceServerSettings};
use crate::model::{Client, ClientAuthMethod, ClientMetadata, GrantType};
use crate::oauth::client_auth::assertion::{self, TimeRules};
use crate::oauth::client_auth::presented::Presented;
use crate::oauth::{FormParams, Scopes, pkce};
use crate::seed::Seed;
use crate::services::authorization::{
    error_redirect_url, is_client_auth_param, pushed_parameters, validate,
};

/// Identity's configuration loaders on one input (see
/// [`cryptoutil_server::config::fuzzing::CONFIG_LOADERS`]: Identity takes 3–5). Inputs for the
/// KMS's loaders are ignored here.
pub fn config(data: &[u8]) {
    let Some((which, text)) = config_input(data) else {
        return;
    };
    match which {
        3 => {
            check_settings_round_trip::<IdentitySettings>("identity.yml", text);
        }
        4 => {
            check_settings_round_trip::<ResourceServerSettings>("rs.yml", text);
        }
        5 => {
            if let Ok(seed) = Seed::parse(text, Path::new("/nonexistent/demo-seed.yml")) {
                let _ = seed.redirect_origins();
            }
        }
        _ => {}
    }
}

/// The issuer the fixed client's assertions are audienced to.
pub const ISSUER: &str = "https://issuer.example";
/// The fixed client's one redirect URI.
pub const REDIRECT_URI: &str = "https://client.example/cb";
/// The fixed client's `client_id`.
pub const CLIENT_ID: &str = "fuzz-client";
/// The instant assertions are checked at (2026-01-01T00:00:00Z), fixed so that corpus
/// assertions stay valid.
pub const NOW_UNIX: i64 = 1_767_225_600;

/// The fixed `private_key_jwt` client and its Ed25519 signing key (for making corpus inputs).
pub fn fixed_client() -> &'static (Client, Jwk) {
    static CLIENT: OnceLock<(Client, Jwk)> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut key =
            Jwk::from_okp_private_bytes(OkpCurve::Ed25519, &[0x33; 32]).expect("fixed Ed25519 key");
        key.set_kid(Some("fuzz-key".to_owned()));
        let public = key.to_public().expect("public form");
        let jwks = JwkSet { keys: vec![public] }.to_json(false).to_string();
        let client = Client {
            client_id: CLIENT_ID.to_owned(),
            metadata: ClientMetadata {
                client_name: "Fuzz client".to_owned(),
                token_endpoint_auth_method: ClientAuthMethod::PrivateKeyJwt,
                jwks: Some(jwks),
                grant_types: vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::ClientCredentials,
                ],
                redirect_uris: vec![REDIRECT_URI.to_owned()],
                post_logout_redirect_uris: Vec::new(),
                scope: ["openid", "profile", "email", "offline_access", "kms:read"]
                    .map(str::to_owned)
                    .to_vec(),
                audiences: Vec::new(),
                tenant_id: None,
                introspect_any: false,
                dpop_bound_access_tokens: false,
                may_act: Vec::new(),
                impersonation: false,
                mfa: None,
            },
            enabled: true,
            secrets: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        (client, key)
    })
}

/// A form parses back, with the same parameters, from its `form_urlencoded` serialization.
fn check_form_round_trip(form: &FormParams) {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    // The serialization may outgrow the body limit (up to 3×): parse it without that bound.
    let limits = crate::oauth::FormLimits {
        max_body_len: usize::MAX,
        ..crate::oauth::FormLimits::DEFAULT
    };
    let again = FormParams::parse(encoded.as_bytes(), &limits).expect("serialized form parses");
    // Compared as the endpoints see them: an empty value is an absent parameter.
    assert!(
        again.iter().eq(form.iter()),
        "form round trip changed the parameters"
    );
}

/// A scope string that parses prints back to one that parses to the same scopes.
fn check_scope(text: Option<&str>) {
    if let Some(text) = text
        && let Ok(scopes) = Scopes::parse(text)
    {
        let again = Scopes::parse(&scopes.join()).expect("joined scopes parse");
        assert_eq!(again, scopes);
    }
}

/// The redirect `url` carries `pairs` back unchanged in its query.
fn check_redirect(url: &str, pairs: &[(&str, &str)]) {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let limits = crate::oauth::FormLimits {
        max_body_len: usize::MAX,
        max_value_len: usize::MAX,
        ..crate::oauth::FormLimits::DEFAULT
    };
    let parsed = FormParams::parse(query.as_bytes(), &limits).expect("redirect query parses");
    for (name, value) in pairs {
        assert_eq!(parsed.get(name), Some(*value).filter(|v| !v.is_empty()));
    }
}

/// The token endpoint's parameters, as its grants read them.
fn token_request(form: &FormParams) {
    match form.get("grant_type").and_then(GrantType::parse) {
        Some(GrantType::AuthorizationCode) => {
            let _ = (form.require("code"), form.require("redirect_uri"));
            if let Some(verifier) = form.get("code_verifier")
                && pkce::validate_verifier(verifier).is_ok()
            {
                let challenge = pkce::challenge_for(verifier);
                assert!(pkce::validate_challenge(Some(&challenge), Some("S256")).is_ok());
                assert!(
                    pkce::verify(verifier, &challenge).is_ok(),
                    "own challenge refused"
                );
            }
        }
        Some(GrantType::RefreshToken) => {
            let _ = form.require("refresh_token");
            check_scope(form.get("scope"));
        }
        Some(GrantType::ClientCredentials) => check_scope(form.get("scope")),
        Some(GrantType::TokenExchange) => {
            let _ = (
                form.require("subject_token"),
                form.require("subject_token_type"),
            );
            check_scope(form.get("scope"));
            // Targets either parse or are refused with invalid_target, never anything else.
            if let Err(e) = crate::services::exchange::targets(form) {
                assert_eq!(e.code, crate::oauth::ErrorCode::InvalidTarget);
            }
        }
        Some(GrantType::DeviceCode) => {
            // The typed user code's normalisation never panics and accepts only normal codes.
            if let Some(code) = form.get("device_code")
                && let Some(normal) = crate::device::UserCode::parse(code)
            {
                assert_eq!(
                    crate::device::UserCode::parse(&normal.display()),
                    Some(normal)
                );
            }
        }
        None => {}
    }
}

/// The authorization request checks on a query (or a pushed request's form), and the error
/// redirect they lead to.
fn authorization_request(params: &FormParams) {
    let (client, _) = fixed_client();
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return;
    };
    if !client
        .metadata
        .redirect_uris
        .iter()
        .any(|r| r == redirect_uri)
    {
        return;
    }
    let state = params.get("state");
    match validate(client, redirect_uri, params) {
        Ok(request) => {
            assert!(
                request
                    .scopes
                    .iter()
                    .all(|s| client.metadata.scope.contains(s))
            );
            assert!(pkce::validate_challenge(Some(&request.code_challenge), Some("S256")).is_ok());
            assert_eq!(request.state.as_deref(), state);
        }
        Err(error) => {
            let url = error_redirect_url(REDIRECT_URI, state, &error, ISSUER);
            let description = error.safe_description();
            let mut expected = vec![
                ("error", error.code.as_str()),
                ("error_description", description.as_str()),
                ("iss", ISSUER),
            ];
            expected.extend(state.map(|state| ("state", state)));
            check_redirect(&url, &expected);
        }
    }
}

/// A pushed request: validated as the PAR endpoint does, then stored as the authorization
/// endpoint will read it back.
fn pushed_request(params: &FormParams) {
    let (client, _) = fixed_client();
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return;
    };
    if params.contains("request_uri")
        || !client
            .metadata
            .redirect_uris
            .iter()
            .any(|r| r == redirect_uri)
        || validate(client, redirect_uri, params).is_err()
    {
        return;
    }
    let Ok(stored) = pushed_parameters(params) else {
        return;
    };
    let again = FormParams::parse_default(stored.as_bytes())
        .expect("a stored pushed request parses at the authorization endpoint");
    let kept: Vec<_> = params
        .iter()
        .filter(|(k, _)| !is_client_auth_param(k))
        .collect();
    assert_eq!(again.iter().collect::<Vec<_>>(), kept);
    authorization_request(&again);
}

/// Splits `rest` at its first newline: an `Authorization` header value (none when empty or
/// not a valid header value) and a body.
fn header_and_body(rest: &[u8], name: header::HeaderName) -> (HeaderMap, &[u8]) {
    let (line, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let mut headers = HeaderMap::new();
    if !line.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(line)
    {
        headers.insert(name, value);
    }
    (headers, body)
}

/// Client authentication as the token, introspection, revocation and PAR endpoints read it:
/// which method the request presents, and for `private_key_jwt` the assertion checks against
/// the fixed client.
fn client_authentication(headers: &HeaderMap, form: &FormParams) {
    let authorization: Vec<&[u8]> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let Ok(presented) = Presented::from_request(&authorization, form) else {
        return;
    };
    let method = presented.method();
    match presented {
        Presented::Secret { client_id, .. } => {
            assert!(!client_id.is_empty());
            assert!(matches!(
                method,
                ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
            ));
        }
        Presented::Assertion { assertion, .. } => {
            let (client, _) = fixed_client();
            if assertion::claimed_client_id(&assertion).is_ok() {
                let rules = TimeRules {
                    now: OffsetDateTime::from_unix_timestamp(NOW_UNIX)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    skew: Duration::from_secs(60),
                    max_lifetime: Duration::from_secs(300),
                };
                let token = format!("{ISSUER}/oauth2/v1/token");
                if let Ok(accepted) =
                    assertion::verify(client, &assertion, &[ISSUER, &token], rules)
                {
                    assert!(!accepted.jti.is_empty());
                    assert!(accepted.expires_at >= rules.now - rules.skew);
                }
            }
        }
        Presented::Public { client_id } => assert!(!client_id.is_empty()),
    }
}

/// Number of request kinds [`oauth_forms`] dispatches on (byte 0 modulo this).
pub const OAUTH_FORM_KINDS: u8 = 6;

/// Identity's request parsers on one input. Byte 0 selects (modulo [`OAUTH_FORM_KINDS`]):
/// `'0'` token form, `'1'` authorization query, `'2'` PAR form, `'3'` introspection/revocation
/// form, `'4'` client authentication (an `Authorization` header line, then the form), `'5'`
/// userinfo (an `Authorization` header line, then the body, also tried as a `Content-Type`).
///
/// Invariants: an accepted form parses back from its serialization; accepted scopes print back
/// to themselves; an error redirect carries `state` back unchanged; a stored pushed request
/// parses at the authorization endpoint to the same parameters and passes the same checks;
/// a valid `code_verifier` matches its own S256 challenge.
pub fn oauth_forms(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % OAUTH_FORM_KINDS {
        0 => {
            if let Ok(form) = FormParams::parse_default(rest) {
                check_form_round_trip(&form);
                token_request(&form);
            }
        }
        1 => {
            if let Ok(query) = FormParams::parse_default(rest) {
                check_form_round_trip(&query);
                authorization_request(&query);
            }
        }
        2 => {
            if let Ok(form) = FormParams::parse_default(rest) {
                pushed_request(&form);
            }
        }
        3 => {
            if let Ok(form) = FormParams::parse_default(rest) {
                check_form_round_trip(&form);
                if let Ok(token) = form.require("token") {
                    assert!(!token.is_empty());
                }
            }
        }
        4 => {
            let (headers, body) = header_and_body(rest, header::AUTHORIZATION);
            if let Ok(form) = FormParams::parse_default(body) {
                client_authentication(&headers, &form);
            }
        }
        _ => {
            let (headers, body) = header_and_body(rest, header::AUTHORIZATION);
            if let Ok(Some(token)) = crate::api::protocol::bearer(&headers) {
                assert!(!token.is_empty());
            }
            let (content_type, _) = header_and_body(body, header::CONTENT_TYPE);
            let _ = is_form_content_type(&content_type);
            if let Ok(form) = FormParams::parse_default(body) {
                let _ = form.get("access_token");
            }
        }
    }
}

/// Seed inputs for `oauth_forms`: one real request of each kind, including a
/// `private_key_jwt` assertion signed with the fixed client's key that the checks accept at
/// [`NOW_UNIX`] (`tests/it/fuzz_corpus.rs` writes them with `--ignored`).
pub fn seeds() -> Vec<Vec<u8>> {
    let (_, key) = fixed_client();
    let claims = serde_json::json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": ISSUER, "jti": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "iat": NOW_UNIX, "exp": NOW_UNIX + 120,
    });
    let mut kid = serde_json::Map::new();
    kid.insert("kid".into(), "fuzz-key".into());
    let assertion = cryptoutil_jose::jws::sign(
        key,
        cryptoutil_jose::JwsAlgorithm::EdDSA,
        claims.to_string().as_bytes(),
        Some(&kid),
    )
    .expect("seed assertion");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = pkce::challenge_for(verifier);
    let authorize = format!(
        "response_type=code&client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Fclient.example%2Fcb\
         &scope=openid+profile+kms%3Aread&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj\
         &code_challenge={challenge}&code_challenge_method=S256&prompt=login+consent&max_age=3600"
    );
    let assertion_form = format!(
        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={assertion}"
    );
    vec![
        format!(
            "0grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
             &redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier={verifier}"
        ),
        "0grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&scope=openid+profile"
            .to_owned(),
        "0grant_type=client_credentials&scope=kms%3Aread+kms%3Aencrypt".to_owned(),
        format!("1{authorize}"),
        format!(
            "1{}",
            authorize.replace("response_type=code", "response_type=token")
        ),
        format!("2{authorize}&{assertion_form}"),
        "3token=eyJhbGciOiJFUzI1NiJ9.e30.c2ln&token_type_hint=access_token".to_owned(),
        "4Basic ZnV6ei1jbGllbnQ6czNjcjN0\ngrant_type=client_credentials".to_owned(),
        "4\nclient_id=fuzz-client&client_secret=s3cr3t&grant_type=client_credentials".to_owned(),
        format!("4\nclient_id={CLIENT_ID}&{assertion_form}&grant_type=client_credentials"),
        "4\nclient_id=public-spa&grant_type=authorization_code".to_owned(),
        "5Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln\n".to_owned(),
        "5\napplication/x-www-form-urlencoded; charset=UTF-8\naccess_token=abc".to_owned(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// The request every `dpop` input is checked against: `POST` to the token endpoint.
pub const DPOP_URI: &str = "https://issuer.example/oauth2/v1/token";
/// The access token the `dpop` target's second check binds proofs to (`ath`).
pub const DPOP_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// The DPoP proof verifier ([`crate::dpop::verify`]) on one untrusted header value, at
/// [`NOW_UNIX`], without and with an access token: never a panic, and an accepted proof is the
/// request's (method, normalised URI), with a 43-character thumbprint and a bounded `jti`.
pub fn dpop(data: &[u8]) {
    use crate::dpop::{DpopSettings, MAX_JTI_LEN, ProofRequest, verify};
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let uri = url::Url::parse(DPOP_URI).expect("fixed URI");
    let now = OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("fixed time");
    let settings = DpopSettings::default();
    for access_token in [None, Some(DPOP_ACCESS_TOKEN)] {
        let request = ProofRequest {
            method: "POST",
            uri: &uri,
            now,
            nonce: None,
            access_token,
        };
        if let Ok(verified) = verify(proof, &request, &settings) {
            assert_eq!(verified.htm, "POST", "accepted another method");
            assert_eq!(
                verified.jkt.len(),
                43,
                "a SHA-256 thumbprint is 43 characters"
            );
            assert!(!verified.jti.is_empty() && verified.jti.len() <= MAX_JTI_LEN);
        }
    }
}

/// Seed inputs for `dpop`: proofs the verifier accepts at [`NOW_UNIX`] (ES256 and EdDSA, one
/// bound to [`DPOP_ACCESS_TOKEN`], one whose `htu` only normalises to the request's) and an
/// hour-old one (`tests/it/fuzz_corpus.rs` writes them with `--ignored`).
pub fn dpop_seeds() -> Vec<Vec<u8>> {
    use cryptoutil_jose::{EcCurve, JwsAlgorithm};
    let proof = |key: &Jwk, alg: JwsAlgorithm, claims: serde_json::Value| {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("jwk".into(), key.to_value(false));
        cryptoutil_jose::jws::sign(key, alg, claims.to_string().as_bytes(), Some(&header))
            .expect("seed proof")
            .into_bytes()
    };
    let claims = serde_json::json!({
        "jti": "-BwC3ESc6acc2lTc", "htm": "POST", "htu": DPOP_URI, "iat": NOW_UNIX,
    });
    let ec = Jwk::generate_ec(EcCurve::P256).expect("seed key");
    let okp = Jwk::generate_okp(OkpCurve::Ed25519).expect("seed key");
    let mut bound = claims.clone();
    bound["ath"] = crate::dpop::access_token_hash(DPOP_ACCESS_TOKEN).into();
    let mut other_uri = claims.clone();
    other_uri["htu"] = "HTTPS://Issuer.Example:443/oauth2/v1/token?x=1".into();
    let mut stale = claims.clone();
    stale["iat"] = (NOW_UNIX - 3600).into();
    vec![
        proof(&ec, JwsAlgorithm::ES256, claims.clone()),
        proof(&okp, JwsAlgorithm::EdDSA, claims),
        proof(&ec, JwsAlgorithm::ES256, bound),
        proof(&ec, JwsAlgorithm::ES256, other_uri),
        proof(&okp, JwsAlgorithm::EdDSA, stale),
    ]
}

/// The dynamic registration metadata parser and policy (`client_metadata` target) on one
/// body, as `POST /oauth2/v1/register` reads it. Invariants: no panic; a software statement is
/// `unapproved` (no keys are trusted here); an accepted document makes a client record that
/// passes [`crate::rules::check_client`] and whose redirect URIs pass the registration rules.
pub fn client_metadata(data: &[u8]) {
    use crate::registration::error::MetadataErrorCode;
    use crate::registration::metadata::{parse_object, read_document};
    use crate::registration::policy::check_redirect_uri;
    use crate::registration::{RegistrationPolicy, software_statement};

    static POLICY: OnceLock<RegistrationPolicy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        RegistrationPolicy::from_settings(&crate::config::RegistrationSettings::default(), true)
            .expect("default registration policy")
    });
    let Ok(mut members) = parse_object(data) else {
        return;
    };
    if let Some(serde_json::Value::String(statement)) = members.remove("software_statement") {
        let now = OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("fixed instant");
        let refused = software_statement::verify(&statement, None, now).expect_err("no keys");
        assert_eq!(refused.code, MetadataErrorCode::UnapprovedSoftwareStatement);
    }
    let Ok(doc) = read_document(members) else {
        return;
    };
    let Ok(accepted) = policy.check(&doc) else {
        return;
    };
    let native = accepted.extras.application_type == "native";
    for uri in &accepted.metadata.redirect_uris {
        assert!(check_redirect_uri(uri, native).is_ok(), "accepted {uri:?}");
    }
    let mut metadata = accepted.metadata;
    if metadata.client_name.is_empty() {
        metadata.client_name = "fuzz".to_owned();
    }
    let client = Client {
        client_id: "fuzz-registered".to_owned(),
        metadata,
        enabled: true,
        secrets: Vec::new(),
        created_at: OffsetDateTime::UNIX_EPOCH,
    };
    if let Err(e) = crate::rules::check_client(&client) {
        panic!("the policy accepted a client the record rules refuse: {e}");
    }
}

/// Seeds of the `client_metadata` target: accepted documents of each kind and refused ones.
pub fn client_metadata_seeds() -> Vec<Vec<u8>> {
    let key = Jwk::from_okp_private_bytes(OkpCurve::Ed25519, &[0x44; 32])
        .expect("fixed Ed25519 key")
        .to_public()
        .expect("public form");
    let jwks: serde_json::Value =
        serde_json::from_str(&JwkSet { keys: vec![key] }.to_json(false)).expect("JWK Set JSON");
    [
        serde_json::json!({"redirect_uris": [REDIRECT_URI], "client_name": "Web"}),
        serde_json::json!({"application_type": "native", "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1:8080/cb", "http://[::1]/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "scope": "openid offline_access"}),
        serde_json::json!({"redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
            "contacts": ["ops@client.example"], "client_uri": "https://client.example",
            "logo_uri": "https://client.example/logo.png", "software_id": "s",
            "software_version": "1", "tos_uri": "https://client.example/tos",
            "policy_uri": "https://client.example/policy", "dpop_bound_access_tokens": true,
            "post_logout_redirect_uris": ["https://client.example/bye"], "unknown": [1]}),
        serde_json::json!({"redirect_uris": ["https://u:p@client.example/cb#f",
            "javascript:alert(1)", "https://*.client.example/"]}),
        serde_json::json!({"redirect_uris": [REDIRECT_URI], "software_statement": "a.b.c",
            "jwks_uri": "https://client.example/jwks"}),
    ]
    .iter()
    .map(|v| v.to_string().into_bytes())
    .collect()
}

/// The `client_id` the `client_metadata_document` target's documents are fetched from.
pub const DOCUMENT_CLIENT_ID: &str = "https://client.example/oauth/client.json";

/// A client ID metadata document body through [`crate::metadata_document::document::parse`]
/// (the parser the fetch feeds, after its size cap), with a fixed `client_id` and scope policy.
/// An accepted document is a public or `private_key_jwt` client of exactly that id, with
/// redirect URIs, only the code and refresh grants, no secret and only allowed scopes.
pub fn client_metadata_document(data: &[u8]) {
    use crate::metadata_document::document::{DocumentPolicy, parse};
    if data.len() > 64 * 1024 {
        return;
    }
    let allowed = ["openid".to_owned(), "profile".to_owned()];
    let policy = DocumentPolicy {
        allowed_scopes: &allowed,
        audiences: &[],
    };
    let Ok(parsed) = parse(data, DOCUMENT_CLIENT_ID, policy, OffsetDateTime::UNIX_EPOCH) else {
        return;
    };
    let client = &parsed.client;
    let m = &client.metadata;
    assert_eq!(
        client.client_id, DOCUMENT_CLIENT_ID,
        "another client id accepted"
    );
    assert!(client.secrets.is_empty(), "a document client with a secret");
    assert!(!m.redirect_uris.is_empty(), "no redirect URI");
    assert!(
        m.grant_types
            .iter()
            .all(|g| matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken)),
        "a grant beyond code and refresh"
    );
    assert!(
        m.scope.iter().all(|s| allowed.contains(s)),
        "a scope beyond the policy"
    );
    match m.token_endpoint_auth_method {
        ClientAuthMethod::None => assert!(m.jwks.is_none() && parsed.jwks_uri.is_none()),
        ClientAuthMethod::PrivateKeyJwt => {
            assert!(
                m.jwks.is_some() != parsed.jwks_uri.is_some(),
                "keys inline xor by URI"
            );
        }
        other => panic!("{other:?} accepted"),
    }
    for uri in &m.redirect_uris {
        let url = url::Url::parse(uri).expect("an accepted redirect URI parses");
        assert!(url.fragment().is_none(), "a redirect URI with a fragment");
        assert!(
            !matches!(url.scheme(), "javascript" | "data" | "file"),
            "a dangerous redirect scheme"
        );
    }
}

/// Seed inputs for `client_metadata_document`: a minimal document, a full one, a
/// `private_key_jwt` one with inline keys and one with `jwks_uri`, and refused ones (secret,
/// wrong id, bad redirect).
pub fn client_metadata_document_seeds() -> Vec<Vec<u8>> {
    use serde_json::json;
    let key = Jwk::from_okp_private_bytes(OkpCurve::Ed25519, &[0x44; 32])
        .expect("fixed Ed25519 key")
        .to_public()
        .expect("public form");
    let id = DOCUMENT_CLIENT_ID;
    [
        json!({"client_id": id, "redirect_uris": ["https://client.example/cb"]}),
        json!({
            "client_id": id,
            "client_name": "Example",
            "client_uri": "https://client.example",
            "logo_uri": "https://client.example/logo.png",
            "redirect_uris": ["https://client.example/cb", "http://127.0.0.1:3000/cb", "com.example.app:/cb"],
            "post_logout_redirect_uris": ["https://client.example/bye"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile email",
            "dpop_bound_access_tokens": true,
        }),
        json!({
            "client_id": id,
            "redirect_uris": ["https://client.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.to_value(false)]},
        }),
        json!({
            "client_id": id,
            "redirect_uris": ["https://client.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://client.example/jwks.json",
        }),
        json!({"client_id": id, "client_secret": "x", "redirect_uris": ["https://client.example/cb"]}),
        json!({"client_id": "https://client.example/other.json", "redirect_uris": ["https://client.example/cb"]}),
        json!({"client_id": id, "redirect_uris": ["javascript:alert(1)"]}),
    ]
    .iter()
    .map(|doc| doc.to_string().into_bytes())
    .collect()
}

/// One `webauthn` fuzz input: byte 0 picks `'0'` registration or `'1'` assertion, then the RP
/// id, the expected challenge and the client data JSON, each as a big-endian `u16` length and
/// its bytes; a registration ends with the attestation object; an assertion with the
/// authenticator data and the signature (length-prefixed), then the stored COSE key.
pub fn webauthn_input(
    kind: u8,
    rp_id: &[u8],
    challenge: &[u8],
    client_data: &[u8],
    rest: &[&[u8]],
) -> Vec<u8> {
    let mut out = vec![kind];
    let fields = [rp_id, challenge, client_data];
    let (last, middle) = rest
        .split_last()
        .map_or((&[][..], &[][..]), |(l, m)| (*l, m));
    for field in fields.iter().chain(middle) {
        let len = u16::try_from(field.len()).expect("a field under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(last);
    out
}

/// What the WebAuthn checks decided on one [`webauthn_input`]: `None` when the framing does not
/// parse, else whether the response was accepted. The invariants: an accepted registration
/// yields a credential id of 1 to 1023 bytes and a supported algorithm, and the same object
/// with a byte appended is refused; an accepted
/// assertion reports the authenticator data's counter, and one bit flipped in the signature
/// fails.
pub fn webauthn_verdict(data: &[u8]) -> Option<bool> {
    use crate::mfa::AttestationPolicy;
    use crate::mfa::webauthn::{
        AssertionResponse, MAX_CREDENTIAL_ID, RegistrationResponse, RelyingParty,
        SUPPORTED_ALGORITHMS, StoredCredential, verify_assertion, verify_registration,
    };
    let (&kind, mut rest) = data.split_first()?;
    let mut field = || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let (value, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        rest = tail;
        Some(value)
    };
    let rp_id = std::str::from_utf8(field()?).ok()?;
    let challenge = field()?;
    let client_data_json = field()?;
    let rp = RelyingParty {
        id: rp_id.to_owned(),
        origins: vec![format!("https://{rp_id}")],
        attestation: AttestationPolicy::NoneOrPacked,
    };
    match kind {
        b'0' => {
            let attestation_object = rest;
            let response = RegistrationResponse {
                client_data_json,
                attestation_object,
            };
            let Ok(credential) = verify_registration(&rp, challenge, false, &response) else {
                return Some(false);
            };
            assert!((1..=MAX_CREDENTIAL_ID).contains(&credential.credential_id.len()));
            assert!(SUPPORTED_ALGORITHMS.contains(&credential.algorithm));
            let mut longer = attestation_object.to_vec();
            longer.push(0);
            let response = RegistrationResponse {
                client_data_json,
                attestation_object: &longer,
            };
            assert!(verify_registration(&rp, challenge, false, &response).is_err());
            Some(true)
        }
        b'1' => {
            let authenticator_data = field()?;
            let signature = field()?;
            let public_key = rest;
            let mut accepted = false;
            for &algorithm in SUPPORTED_ALGORITHMS {
                let stored = StoredCredential {
                    public_key,
                    algorithm,
                    sign_count: 0,
                };
                let response = AssertionResponse {
                    client_data_json,
                    authenticator_data,
                    signature,
                };
                if let Ok(verified) = verify_assertion(&rp, challenge, false, &stored, &response) {
                    let counter = authenticator_data.get(33..37).expect("37 bytes at least");
                    assert_eq!(verified.sign_count.to_be_bytes(), counter);
                    let mut flipped = signature.to_vec();
                    if let Some(last) = flipped.last_mut() {
                        *last ^= 1;
                    }
                    let response = AssertionResponse {
                        signature: &flipped,
                        ..response
                    };
                    assert!(verify_assertion(&rp, challenge, false, &stored, &response).is_err());
                    accepted = true;
                }
            }
            Some(accepted)
        }
        _ => None,
    }
}

/// The `webauthn` fuzz target: [`webauthn_verdict`] on untrusted bytes.
pub fn webauthn(data: &[u8]) {
    let _ = webauthn_verdict(data);
}
