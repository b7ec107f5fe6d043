//! What dynamic registration accepts, from `registration:` in the configuration.
//!
//! Decisions (issue 27 left them open; docs/security.md records them):
//! - `token_endpoint_auth_method`: `none`, `client_secret_basic` (the RFC 7591 default) or
//!   `private_key_jwt` with an inline `jwks`. `client_secret_post` is refused (one way to send a
//!   secret is enough), and so is `jwks_uri`: the project's `private_key_jwt` verifies against
//!   registered keys only, and fetching a URL a stranger names on every assertion is a
//!   server-side request forgery surface this issue does not need.
//! - Redirect URIs: absolute, in normal form, no fragment, no userinfo, no `*`. `https` for
//!   every client; `http` only for `application_type: native` and only on the loopback IP
//!   literals `127.0.0.1` and `[::1]` (any port, RFC 8252 §7.3). `http://localhost` is refused
//!   (RFC 8252 §8.3: the name may resolve elsewhere), and so are private-use schemes
//!   (RFC 8252 §7.1 makes them optional; any app may claim one on some platforms) and every
//!   other scheme (`javascript:`, `data:` …).
//! - Unknown grant types, response types other than `code`, and scopes outside the allowed list
//!   are refused, not dropped; a client asking for no scope gets every allowed scope.
//! - A registered client never gets the administrative fields (`introspect_any`, its own
//!   audiences (every registered client gets `registration.audiences`),
//!   tenant, token exchange policy): those stay the admin API's.

use cryptoutil_jose::jwk::JwkSet;
use url::{Host, Url};

use super::error::{MetadataError, quoted};
use super::metadata::ClientMetadataDocument;
use super::records::RegisteredExtras;
use crate::config::RegistrationSettings;
use crate::model::{ClientAuthMethod, ClientMetadata, GrantType};
use crate::rules::check_text;

/// Most redirect URIs (and post-logout redirect URIs) per client.
pub const MAX_URIS: usize = 16;
/// Longest URI.
pub const MAX_URI_LEN: usize = 2048;
/// Most contacts.
pub const MAX_CONTACTS: usize = 10;
/// Most scope tokens asked for.
pub const MAX_SCOPES: usize = 64;

/// The registration policy in effect.
#[derive(Debug)]
pub struct RegistrationPolicy {
    /// Whether `/oauth2/v1/register` exists.
    pub enabled: bool,
    /// Whether registering needs no initial access token.
    pub open: bool,
    /// Grant types a registered client may use.
    pub allowed_grants: Vec<GrantType>,
    /// Scopes a registered client may ask for.
    pub allowed_scopes: Vec<String>,
    /// Keys that sign trusted software statements (`None`: none are approved).
    pub statement_keys: Option<JwkSet>,
    /// The resources (RFC 8707) every registered client may name: its audiences, from
    /// configuration, never from the request.
    pub audiences: Vec<String>,
}

/// A document that passed the policy: the client record's metadata (its `client_name` empty
/// when none was given: the service names the client after its id) and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// What the `clients` table holds.
    pub metadata: ClientMetadata,
    /// What it does not.
    pub extras: RegisteredExtras,
}

impl RegistrationPolicy {
    /// The policy of `settings`; `demo` (`--demo`) opens registration unless `open: false`.
    /// Grant type names this build does not know are skipped (logged).
    pub fn from_settings(settings: &RegistrationSettings, demo: bool) -> Result<Self, String> {
        let mut allowed_grants = Vec::new();
        for name in &settings.allowed_grant_types {
            match GrantType::parse(name) {
                Some(grant) if !allowed_grants.contains(&grant) => allowed_grants.push(grant),
                Some(_) => {}
                None => tracing::warn!(
                    grant_type = %name,
                    "registration.allowed_grant_types: unknown grant type ignored"
                ),
            }
        }
        let statement_keys = settings
            .software_statement_jwks
            .clone()
            .map(|jwks| {
                crate::rules::public_jwks(jwks)
                    .and_then(|text| JwkSet::from_json(&text).map_err(|e| e.to_string()))
            })
            .transpose()
            .map_err(|e| format!("registration.software_statement_jwks: {e}"))?;
        Ok(Self {
            enabled: settings.enabled,
            open: settings.open.unwrap_or(demo),
            allowed_grants,
            allowed_scopes: settings.allowed_scopes.clone(),
            statement_keys,
            audiences: settings.audiences.clone(),
        })
    }

    /// Checks `doc` and turns it into client metadata.
    pub fn check(&self, doc: &ClientMetadataDocument) -> Result<Accepted, MetadataError> {
        let method = self.auth_method(doc)?;
        // RFC 7591 has no `application_type` (OpenID Connect Dynamic Registration does, default
        // web), and the clients of the MCP authorization spec register without it: a public
        // client that does not say is a native app (RFC 8252: it cannot keep a secret), so its
        // loopback redirect URIs are allowed. A client that says `web` stays web.
        let application_type = match doc.application_type.as_deref() {
            None if method == ClientAuthMethod::None => "native",
            None | Some("web") => "web",
            Some("native") => "native",
            Some(other) => {
                return Err(MetadataError::metadata(format!(
                    "application_type {} is not web or native",
                    quoted(other)
                )));
            }
        };
        let native = application_type == "native";
        let grant_types = self.grant_types(doc)?;
        let code = grant_types.contains(&GrantType::AuthorizationCode);
        let device = grant_types.contains(&GrantType::DeviceCode);
        if grant_types.contains(&GrantType::RefreshToken) && !code && !device {
            return Err(MetadataError::metadata(
                "refresh_token needs authorization_code or the device grant (only they issue \
                 refresh tokens)",
            ));
        }
        check_response_types(doc, code)?;
        let redirect_uris =
            checked_redirect_uris("redirect_uris", doc.redirect_uris.as_deref(), native)?;
        if code && redirect_uris.is_empty() {
            return Err(MetadataError::redirect(
                "authorization_code needs at least one redirect URI",
            ));
        }
        let post_logout_redirect_uris = checked_redirect_uris(
            "post_logout_redirect_uris",
            doc.post_logout_redirect_uris.as_deref(),
            native,
        )?;
        if doc.jwks_uri.is_some() {
            return Err(MetadataError::metadata(
                "jwks_uri is not supported: register the public keys inline as jwks",
            ));
        }
        let jwks = match (method, &doc.jwks) {
            (ClientAuthMethod::PrivateKeyJwt, Some(jwks)) => {
                Some(crate::rules::public_jwks(jwks.clone()).map_err(MetadataError::metadata)?)
            }
            (ClientAuthMethod::PrivateKeyJwt, None) => {
                return Err(MetadataError::metadata("private_key_jwt needs jwks"));
            }
            (_, Some(_)) => {
                return Err(MetadataError::metadata(
                    "jwks is only for token_endpoint_auth_method private_key_jwt",
                ));
            }
            (_, None) => None,
        };
        let scope = self.scopes(doc.scope.as_deref())?;
        let client_name = match &doc.client_name {
            Some(name) => {
                check_text("client_name", Some(name.as_str())).map_err(MetadataError::metadata)?;
                name.clone()
            }
            None => String::new(),
        };
        let contacts = doc.contacts.clone().unwrap_or_default();
        if contacts.len() > MAX_CONTACTS {
            return Err(MetadataError::metadata(format!(
                "contacts lists more than {MAX_CONTACTS} entries"
            )));
        }
        for contact in &contacts {
            check_text("a contact", Some(contact.as_str())).map_err(MetadataError::metadata)?;
        }
        for (what, value) in [
            ("software_id", &doc.software_id),
            ("software_version", &doc.software_version),
        ] {
            check_text(what, value.as_deref()).map_err(MetadataError::metadata)?;
        }
        let extras = RegisteredExtras {
            application_type: application_type.to_owned(),
            client_uri: web_uri("client_uri", doc.client_uri.as_deref())?,
            logo_uri: web_uri("logo_uri", doc.logo_uri.as_deref())?,
            tos_uri: web_uri("tos_uri", doc.tos_uri.as_deref())?,
            policy_uri: web_uri("policy_uri", doc.policy_uri.as_deref())?,
            contacts,
            software_id: doc.software_id.clone(),
            software_version: doc.software_version.clone(),
            software_statement: None,
        };
        let metadata = ClientMetadata {
            client_name,
            token_endpoint_auth_method: method,
            jwks,
            grant_types,
            redirect_uris,
            post_logout_redirect_uris,
            scope,
            audiences: self.audiences.clone(),
            tenant_id: None,
            introspect_any: false,
            dpop_bound_access_tokens: doc.dpop_bound_access_tokens.unwrap_or(false),
            may_act: Vec::new(),
            impersonation: false,
            mfa: None,
        };
        Ok(Accepted { metadata, extras })
    }

    fn auth_method(&self, doc: &ClientMetadataDocument) -> Result<ClientAuthMethod, MetadataError> {
        match doc.token_endpoint_auth_method.as_deref() {
            None | Some("client_secret_basic") => Ok(ClientAuthMethod::ClientSecretBasic),
            Some("none") => Ok(ClientAuthMethod::None),
            Some("private_key_jwt") => Ok(ClientAuthMethod::PrivateKeyJwt),
            Some(other) => Err(MetadataError::metadata(format!(
                "token_endpoint_auth_method {} is not one of none, client_secret_basic, \
                 private_key_jwt",
                quoted(other)
            ))),
        }
    }

    fn grant_types(&self, doc: &ClientMetadataDocument) -> Result<Vec<GrantType>, MetadataError> {
        let Some(names) = &doc.grant_types else {
            return if self.allowed_grants.contains(&GrantType::AuthorizationCode) {
                Ok(vec![GrantType::AuthorizationCode])
            } else {
                Err(MetadataError::metadata(
                    "grant_types is required (authorization_code is not allowed here)",
                ))
            };
        };
        if names.is_empty() || names.len() > 8 {
            return Err(MetadataError::metadata(
                "grant_types must list 1 to 8 grants",
            ));
        }
        let mut grants = Vec::new();
        for name in names {
            let grant = GrantType::parse(name).ok_or_else(|| {
                MetadataError::metadata(format!("grant type {} is not supported", quoted(name)))
            })?;
            if !self.allowed_grants.contains(&grant) {
                return Err(MetadataError::metadata(format!(
                    "grant type {} may not be registered here",
                    quoted(name)
                )));
            }
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        Ok(grants)
    }

    fn scopes(&self, scope: Option<&str>) -> Result<Vec<String>, MetadataError> {
        let Some(scope) = scope else {
            return Ok(self.allowed_scopes.clone());
        };
        let mut scopes: Vec<String> = Vec::new();
        for token in scope.split(' ').filter(|t| !t.is_empty()) {
            if scopes.len() >= MAX_SCOPES {
                return Err(MetadataError::metadata(format!(
                    "scope lists more than {MAX_SCOPES} values"
                )));
            }
            if !self.allowed_scopes.iter().any(|s| s == token) {
                return Err(MetadataError::metadata(format!(
                    "scope {} may not be registered here",
                    quoted(token)
                )));
            }
            if !scopes.iter().any(|s| s == token) {
                scopes.push(token.to_owned());
            }
        }
        Ok(scopes)
    }
}

fn check_response_types(doc: &ClientMetadataDocument, code: bool) -> Result<(), MetadataError> {
    let Some(types) = &doc.response_types else {
        return Ok(());
    };
    for t in types {
        if t != "code" {
            return Err(MetadataError::metadata(format!(
                "response type {} is not supported (only code)",
                quoted(t)
            )));
        }
    }
    if code == types.is_empty() {
        return Err(MetadataError::metadata(
            "response_types must be [\"code\"] exactly when grant_types has authorization_code",
        ));
    }
    Ok(())
}

/// The redirect URIs of `what`, checked (see the module documentation).
fn checked_redirect_uris(
    what: &str,
    uris: Option<&[String]>,
    native: bool,
) -> Result<Vec<String>, MetadataError> {
    let uris = uris.unwrap_or_default();
    if uris.len() > MAX_URIS {
        return Err(MetadataError::redirect(format!(
            "{what} lists more than {MAX_URIS} URIs"
        )));
    }
    let mut checked: Vec<String> = Vec::new();
    for uri in uris {
        check_redirect_uri(uri, native)
            .map_err(|why| MetadataError::redirect(format!("{what}: {} {why}", quoted(uri))))?;
        if checked.contains(uri) {
            return Err(MetadataError::redirect(format!(
                "{what} lists {} twice",
                quoted(uri)
            )));
        }
        checked.push(uri.clone());
    }
    Ok(checked)
}

/// One redirect URI; the error says why it is refused.
pub fn check_redirect_uri(uri: &str, native: bool) -> Result<(), &'static str> {
    if uri.len() > MAX_URI_LEN {
        return Err("is too long");
    }
    if uri.contains('*') {
        return Err("has a wildcard");
    }
    let parsed = Url::parse(uri).map_err(|_| "is not an absolute URI")?;
    if parsed.fragment().is_some() {
        return Err("has a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("has userinfo");
    }
    match (parsed.scheme(), parsed.host()) {
        ("https", Some(Host::Domain(_) | Host::Ipv4(_) | Host::Ipv6(_))) => {}
        ("http", Some(host)) => {
            let loopback = match host {
                Host::Ipv4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
                Host::Ipv6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
                Host::Domain(_) => false,
            };
            if !loopback {
                return Err("uses http off the loopback IP literals 127.0.0.1 and [::1]");
            }
            if !native {
                return Err("uses http, which only native applications may (on loopback)");
            }
        }
        _ => return Err("must use https (or http on loopback for native applications)"),
    }
    if parsed.as_str() != uri && format!("{uri}/") != parsed.as_str() {
        return Err("is not in normal form");
    }
    Ok(())
}

/// An informational https URL (`client_uri`, `logo_uri` …).
fn web_uri(what: &str, uri: Option<&str>) -> Result<Option<String>, MetadataError> {
    let Some(uri) = uri else { return Ok(None) };
    let ok = uri.len() <= MAX_URI_LEN
        && Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "https"
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if ok {
        Ok(Some(uri.to_owned()))
    } else {
        Err(MetadataError::metadata(format!(
            "{what} {} must be an https URL without userinfo",
            quoted(uri)
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registration::error::MetadataErrorCode;
    use crate::registration::metadata::{parse_object, read_document};

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy::from_settings(&RegistrationSettings::default(), false).unwrap()
    }

    fn check(doc: serde_json::Value) -> Result<Accepted, MetadataError> {
        let doc = read_document(parse_object(doc.to_string().as_bytes()).unwrap()).unwrap();
        policy().check(&doc)
    }

    fn code(doc: serde_json::Value) -> MetadataErrorCode {
        check(doc).unwrap_err().code
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let accepted = check(json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        let m = &accepted.metadata;
        assert_eq!(
            m.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic
        );
        assert_eq!(m.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(m.scope, ["openid", "profile", "email", "offline_access"]);
        assert_eq!(accepted.extras.application_type, "web");
        assert!(!m.introspect_any && m.audiences.is_empty());
    }

    #[test]
    fn redirect_uri_rules() {
        for good in ["https://app.example/cb", "https://app.example:8443/cb?x=1"] {
            assert!(check_redirect_uri(good, false).is_ok(), "{good}");
        }
        for good in [
            "http://127.0.0.1:5000/cb",
            "http://[::1]/cb",
            "http://127.0.0.1/",
        ] {
            assert!(check_redirect_uri(good, true).is_ok(), "{good}");
            assert!(check_redirect_uri(good, false).is_err(), "web: {good}");
        }
        for bad in [
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "https://user@app.example/cb",
            "https://*.app.example/cb",
            "https://app.example/*",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://localhost:5000/cb",
            "http://app.example/cb",
            "http://127.0.0.2/cb",
            "com.example.app:/cb",
            "file:///etc/passwd",
            "/relative",
            "https://APP.example/cb",
        ] {
            assert!(check_redirect_uri(bad, true).is_err(), "{bad}");
        }
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb#x"]})),
            MetadataErrorCode::InvalidRedirectUri
        );
        assert_eq!(code(json!({})), MetadataErrorCode::InvalidRedirectUri);
        assert_eq!(
            code(json!({"redirect_uris": ["https://a.example/cb", "https://a.example/cb"]})),
            MetadataErrorCode::InvalidRedirectUri
        );
        let many: Vec<String> = (0..=MAX_URIS)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        assert_eq!(
            code(json!({"redirect_uris": many})),
            MetadataErrorCode::InvalidRedirectUri
        );
        let native = check(json!({"application_type": "native",
            "redirect_uris": ["http://127.0.0.1:8765/cb"], "token_endpoint_auth_method": "none"}))
        .unwrap();
        assert!(native.metadata.redirect_uris[0].starts_with("http://127.0.0.1"));
    }

    #[test]
    fn registered_clients_get_the_configured_audiences_only() {
        let settings = RegistrationSettings {
            audiences: vec!["https://mcp.example/".to_owned()],
            ..RegistrationSettings::default()
        };
        let policy = RegistrationPolicy::from_settings(&settings, true).unwrap();
        let doc = read_document(
            parse_object(br#"{"redirect_uris": ["https://app.example/cb"], "audiences": ["x"]}"#)
                .unwrap(),
        )
        .unwrap();
        let accepted = policy.check(&doc).unwrap();
        assert_eq!(accepted.metadata.audiences, ["https://mcp.example/"]);
    }

    #[test]
    fn a_public_client_that_does_not_say_is_native_and_may_use_loopback() {
        let mcp = check(json!({"redirect_uris": ["http://127.0.0.1:33418/callback"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code",
            "refresh_token"], "response_types": ["code"]}))
        .unwrap();
        assert_eq!(mcp.extras.application_type, "native");
        assert_eq!(
            code(json!({"redirect_uris": ["http://127.0.0.1:33418/callback"],
                "token_endpoint_auth_method": "none", "application_type": "web"})),
            MetadataErrorCode::InvalidRedirectUri
        );
        assert_eq!(
            code(json!({"redirect_uris": ["http://127.0.0.1:33418/callback"]})),
            MetadataErrorCode::InvalidRedirectUri,
            "a confidential client is web unless it says native"
        );
    }

    #[test]
    fn a_device_client_needs_no_redirect_uri_and_may_refresh() {
        let cli = check(
            json!({"application_type": "native", "token_endpoint_auth_method": "none",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "response_types": []}),
        )
        .unwrap();
        assert!(cli.metadata.redirect_uris.is_empty());
        assert_eq!(
            cli.metadata.grant_types,
            [GrantType::DeviceCode, GrantType::RefreshToken]
        );
        assert_eq!(
            code(json!({"grant_types": ["refresh_token"], "response_types": []})),
            MetadataErrorCode::InvalidClientMetadata
        );
    }

    #[test]
    fn unknown_values_are_refused() {
        let cb = json!(["https://app.example/cb"]);
        for bad in [
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_jwt"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_post"}),
            json!({"redirect_uris": cb, "grant_types": ["implicit"]}),
            json!({"redirect_uris": cb, "grant_types": ["client_credentials"]}),
            json!({"redirect_uris": cb, "grant_types": []}),
            json!({"redirect_uris": cb, "response_types": ["token"]}),
            json!({"redirect_uris": cb, "grant_types": ["authorization_code"], "response_types": []}),
            json!({"redirect_uris": cb, "scope": "openid admin"}),
            json!({"redirect_uris": cb, "application_type": "desktop"}),
            json!({"redirect_uris": cb, "jwks_uri": "https://app.example/jwks"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": cb, "jwks": {"keys": []}}),
            json!({"redirect_uris": cb, "client_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": cb, "logo_uri": "https://u:p@app.example/logo.png"}),
            json!({"redirect_uris": cb, "client_name": "tab\tname"}),
            json!({"redirect_uris": cb, "contacts": vec!["a"; 11]}),
            json!({"redirect_uris": cb, "grant_types": ["refresh_token"]}),
        ] {
            assert_eq!(
                code(bad.clone()),
                MetadataErrorCode::InvalidClientMetadata,
                "{bad}"
            );
        }
    }

    #[test]
    fn private_key_jwt_takes_inline_public_keys() {
        let key = cryptoutil_jose::Jwk::generate_ec(cryptoutil_jose::EcCurve::P256).unwrap();
        let accepted = check(json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.to_public().unwrap().to_value(false)]},
        }))
        .unwrap();
        assert!(accepted.metadata.jwks.is_some());
        let private = check(json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.to_value(true)]},
        }));
        assert!(
            private
                .unwrap_err()
                .description
                .contains("public keys only")
        );
    }

    #[test]
    fn demo_opens_unless_closed_explicitly() {
        let mut settings = RegistrationSettings::default();
        assert!(
            !RegistrationPolicy::from_settings(&settings, false)
                .unwrap()
                .open
        );
        assert!(
            RegistrationPolicy::from_settings(&settings, true)
                .unwrap()
                .open
        );
        settings.open = Some(false);
        assert!(
            !RegistrationPolicy::from_settings(&settings, true)
                .unwrap()
                .open
        );
        settings.allowed_grant_types = vec!["authorization_code".into(), "no-such".into()];
        assert_eq!(
            RegistrationPolicy::from_settings(&settings, true)
                .unwrap()
                .allowed_grants,
            [GrantType::AuthorizationCode]
        );
    }
}
