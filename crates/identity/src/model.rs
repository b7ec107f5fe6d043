//! Identity's domain records: clients, users, grants, codes, refresh tokens, PAR requests,
//! sessions. Free of HTTP and database types; [`crate::storage`] persists them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with `client_id:client_secret` (form-urlencoded first, RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with one of the client's registered keys (RFC 7523).
    PrivateKeyJwt,
    /// A public client: only `client_id` (PKCE protects the code).
    None,
}

impl ClientAuthMethod {
    /// The registered name (`client_secret_basic` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Every method, in the order discovery lists them.
    pub const ALL: [ClientAuthMethod; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];
}

/// An OAuth grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code` (always with PKCE S256).
    AuthorizationCode,
    /// `client_credentials`.
    ClientCredentials,
    /// `refresh_token`.
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::TokenExchange => TOKEN_EXCHANGE,
            Self::DeviceCode => DEVICE_CODE,
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "authorization_code" => Some(Self::AuthorizationCode),
            "client_credentials" => Some(Self::ClientCredentials),
            "refresh_token" => Some(Self::RefreshToken),
            TOKEN_EXCHANGE => Some(Self::TokenExchange),
            DEVICE_CODE => Some(Self::DeviceCode),
            _ => None,
        }
    }

    /// Every grant, in the order discovery lists them.
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::TokenExchange,
        Self::DeviceCode,
    ];
}

/// The wire name of the token exchange grant (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The wire name of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One stored client secret (PBKDF2 hash). Several are valid at once during a rotation's grace
/// period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSecret {
    /// `pbkdf2-sha256$…` (SPEC §1).
    pub hash: String,
    /// After this instant the secret is refused (`None`: no expiry).
    pub expires_at: Option<OffsetDateTime>,
}

/// What a client registers, named as in RFC 7591 §2 (the metadata a dynamic registration
/// will carry). In JSON (the admin API) three fields keep the names that API always had:
/// `name`, `auth_method` and `scopes`; a registration endpoint can add the RFC names as aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientMetadata {
    /// `client_name`: shown on the consent page.
    #[serde(rename = "name")]
    pub client_name: String,
    /// `token_endpoint_auth_method`: the one method this client must use.
    #[serde(rename = "auth_method")]
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// `jwks`: public keys for `private_key_jwt`, a JWK Set as JSON text (given as a JSON
    /// object or a string holding one).
    #[serde(default, deserialize_with = "jwks_text")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub jwks: Option<String>,
    /// `grant_types`: the grants the client may use.
    pub grant_types: Vec<GrantType>,
    /// `redirect_uris`: exact redirect URIs (compared as strings).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `post_logout_redirect_uris` (OpenID Connect RP-Initiated Logout): exact URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// `scope`: the largest scope set the client may request (a list here; one
    /// space-separated string in RFC 7591 documents).
    #[serde(default, rename = "scopes")]
    pub scope: Vec<String>,
    /// Audiences of the client's access tokens (`aud`); empty → the issuer.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The tenant put into access tokens as `tenant_id` (client_credentials tokens).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// May introspect tokens issued to any client (the KMS's introspection client).
    #[serde(default)]
    pub introspect_any: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): the token endpoint refuses this client's
    /// requests without a DPoP proof, and every access token it gets is bound.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// Token exchange (RFC 8693) delegation policy: the clients that may act for the subjects
    /// of this client's access tokens (their `act` claim names the actor).
    #[serde(default)]
    pub may_act: Vec<String>,
    /// Token exchange: this client may impersonate (get a token for a subject with no `act`).
    #[serde(default)]
    pub impersonation: bool,
    /// The client's MFA policy (`optional`, `required`, `passkey_required`): its sign-ins
    /// reach at least the class it names, on top of the deployment's `mfa.policy`. Unset: the
    /// deployment's alone (dynamic registration and metadata documents leave it unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<crate::mfa::policy::MfaPolicy>,
}

impl ClientMetadata {
    /// `response_types`: `code` for clients of the authorization code grant (the only response
    /// type this server supports), none for others.
    pub fn response_types(&self) -> &'static [&'static str] {
        if self.grant_types.contains(&GrantType::AuthorizationCode) {
            &["code"]
        } else {
            &[]
        }
    }
}

/// `jwks` given as a JSON object or as a string holding one: kept as JSON text (checked with
/// the rest of the record, [`crate::rules::check_client`]).
fn jwks_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) => Some(text),
            Some(other) => Some(other.to_string()),
        },
    )
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The `client_id` (unique).
    pub client_id: String,
    /// What the client registered.
    #[serde(flatten)]
    pub metadata: ClientMetadata,
    /// Disabled clients are refused everywhere (`invalid_client`).
    pub enabled: bool,
    /// Current secrets (empty for `private_key_jwt` and `none`).
    pub secrets: Vec<ClientSecret>,
    /// When the client was registered.
    pub created_at: OffsetDateTime,
}

impl Client {
    /// True when the client is public (`none`).
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == ClientAuthMethod::None
    }

    /// True when the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.metadata.grant_types.contains(&grant)
    }
}

/// An end user who signs in on the login page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The stable subject (`sub`), a UUIDv7.
    pub id: String,
    /// The login name (unique).
    pub username: String,
    /// `pbkdf2-sha256$…`.
    pub password_hash: String,
    /// Disabled users cannot sign in; their refresh tokens stop working.
    pub enabled: bool,
    /// Roles (`admin` …), carried as the `roles` claim.
    pub roles: Vec<String>,
    /// The tenant carried as `tenant_id` in their access tokens.
    pub tenant_id: Option<String>,
    /// `profile` scope: `name`.
    pub name: Option<String>,
    /// `profile` scope: `given_name`.
    pub given_name: Option<String>,
    /// `profile` scope: `family_name`.
    pub family_name: Option<String>,
    /// `email` scope: `email`.
    pub email: Option<String>,
    /// `email` scope: `email_verified`.
    pub email_verified: bool,
    /// Bumped on every change (password, enabled …): caches keyed by it stay correct.
    pub version: i64,
    /// When the user was created.
    pub created_at: OffsetDateTime,
}

/// What the user approved for a client in one authorization: the parent of the codes, refresh
/// tokens and access tokens it produces, so revoking it revokes them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// UUIDv7.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The user's `sub`.
    pub user_id: String,
    /// The granted scopes (space-separated in tokens).
    pub scopes: Vec<String>,
    /// When the user authenticated (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// How the user authenticated (`amr`, RFC 8176 values; `["pwd"]` for grants stored before
    /// it was recorded).
    pub amr: Vec<String>,
    /// The authentication context class reached (`acr`; the single-factor class for grants
    /// stored before it was recorded).
    pub acr: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Set once revoked (code reuse, refresh reuse, revocation endpoint, logout).
    pub revoked_at: Option<OffsetDateTime>,
}

/// A single-use authorization code (stored by the SHA-256 of the code, never the code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// base64url(SHA-256(code)).
    pub code_hash: String,
    /// The grant it belongs to.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The exact `redirect_uri` of the request.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The OpenID `nonce`, carried into the ID token.
    pub nonce: Option<String>,
    /// The scopes the token will carry.
    pub scopes: Vec<String>,
    /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 §10): the token request must
    /// carry a proof of this key.
    pub dpop_jkt: Option<String>,
    /// The resources requested (RFC 8707); empty: none.
    pub resources: Vec<String>,
    /// Expiry (10 minutes after issue).
    pub expires_at: OffsetDateTime,
    /// Set by the first redemption; a second redemption revokes the grant.
    pub used_at: Option<OffsetDateTime>,
}

/// An opaque refresh token (stored by hash). Each use rotates it: the new token joins the same
/// family; presenting a spent token revokes the family (its grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// base64url(SHA-256(token)).
    pub token_hash: String,
    /// The grant (family) it belongs to.
    pub grant_id: String,
    /// The client it is bound to.
    pub client_id: String,
    /// The scopes it may yield (a refresh may only narrow them).
    pub scopes: Vec<String>,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449 §5): a refresh
    /// needs a proof of this key.
    pub dpop_jkt: Option<String>,
    /// The resources it may yield (RFC 8707); a refresh may narrow them, never widen them.
    /// Empty: none requested.
    pub resources: Vec<String>,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Set when it was exchanged for a new one (or revoked).
    pub used_at: Option<OffsetDateTime>,
}

/// A pushed authorization request (RFC 9126), redeemed once through `request_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRequest {
    /// The random part of `urn:ietf:params:oauth:request_uri:<id>`.
    pub id: String,
    /// The client that pushed it.
    pub client_id: String,
    /// The authorization request parameters (JSON object of strings).
    pub parameters: String,
    /// Expiry (60 seconds after push).
    pub expires_at: OffsetDateTime,
}

/// A browser session at the IdP as stored (server-side; the cookie holds only a random id,
/// stored hashed). [`crate::signin::BrowserSession`] reads it as a sign-in state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// base64url(SHA-256(cookie value)).
    pub id_hash: String,
    /// The user signed in or part way through signing in, if any.
    pub user_id: Option<String>,
    /// When the user completed the sign-in (unset while a second factor is due).
    pub auth_time: Option<OffsetDateTime>,
    /// The authentication methods used so far (`amr` values such as `pwd`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The pending interaction (JSON), while the browser is on the sign-in pages.
    pub pending_request: Option<String>,
    /// Per-session CSRF token for the forms.
    pub csrf_token: String,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// The id the account page shows and ends the session by (a UUIDv7; never the cookie's
    /// hash). `None` in sessions stored before it existed.
    #[serde(default)]
    pub public_id: Option<String>,
    /// When the session started (`None` in sessions stored before it was recorded).
    #[serde(default)]
    pub created_at: Option<OffsetDateTime>,
    /// The browser's `User-Agent` at sign-in, cut to 256 characters (`None`: unknown).
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// A signing key as persisted: the private JWK sealed (JWE) under the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSigningKey {
    /// The `kid`.
    pub kid: String,
    /// The JWS algorithm (`ES256` …).
    pub alg: String,
    /// The public JWK (JSON), for JWKS without unsealing.
    pub public_jwk: String,
    /// The private JWK sealed as a compact JWE (`dir`/`A256GCM`, `kid` as additional data).
    pub sealed_jwk: String,
    /// When it was created (it signs from then on, being the newest).
    pub created_at: OffsetDateTime,
    /// When it stops being published (set when a newer key takes over: that instant plus the
    /// longest token lifetime).
    pub retire_at: Option<OffsetDateTime>,
}

/// A user's TOTP authenticator (RFC 6238), one per user. Enrolment stores it unconfirmed; the
/// first right code confirms it, and only a confirmed one is a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The user.
    pub user_id: String,
    /// The shared secret, sealed under the key-encryption key (compact JWE).
    pub sealed_secret: String,
    /// The HMAC: `SHA1` (what authenticator apps use) or `SHA256`.
    pub algorithm: String,
    /// Digits per code (6 or 8).
    pub digits: u32,
    /// Seconds per time step (30).
    pub period_secs: u32,
    /// When the first right code confirmed the enrolment (`None`: still being enrolled).
    pub confirmed_at: Option<OffsetDateTime>,
    /// The latest time step a code was accepted for: a code of this step or an earlier one is
    /// refused (each code is usable once).
    pub last_used_step: Option<i64>,
    /// When it was enrolled.
    pub created_at: OffsetDateTime,
    /// When a code was last accepted.
    pub last_used_at: Option<OffsetDateTime>,
}

/// One single-use recovery code, stored hashed (PBKDF2, as passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCode {
    /// The user.
    pub user_id: String,
    /// The code's public lookup id (part of the code shown to the user, not secret), unique per
    /// user: a submitted code costs one PBKDF2 check, not one per stored code.
    pub id: String,
    /// `pbkdf2-sha256$…` of the code's secret part.
    pub code_hash: String,
    /// When the set it belongs to was generated.
    pub created_at: OffsetDateTime,
    /// When it was used (`None`: still usable).
    pub used_at: Option<OffsetDateTime>,
}

/// A WebAuthn credential (a passkey or a security key) registered by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnCredential {
    /// The credential id, base64url.
    pub credential_id: String,
    /// The user (its id is also the WebAuthn user handle).
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// The credential public key, a COSE_Key, base64url.
    pub public_key: String,
    /// Its COSE algorithm (-7 ES256, -257 RS256, …).
    pub algorithm: i64,
    /// The latest signature counter seen (0: the authenticator keeps none).
    pub sign_count: u32,
    /// The transports the browser reported (`internal`, `usb`, `hybrid` …).
    pub transports: Vec<String>,
    /// The authenticator's AAGUID (UUID text; all zeros when not attested).
    pub aaguid: String,
    /// The attestation statement format it was registered with (`none`, `packed`).
    pub attestation_format: String,
    /// A discoverable credential (usable for passwordless sign-in without a username), as far
    /// as the browser told (`credProps`).
    pub discoverable: bool,
    /// Backup eligible (flag BE): a synced passkey rather than a device-bound key.
    pub backup_eligible: bool,
    /// Backed up (flag BS), as of the last use.
    pub backed_up: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a WebAuthn challenge was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengePurpose {
    /// Creating a credential (`navigator.credentials.create`).
    Registration,
    /// Signing in with one (`navigator.credentials.get`).
    Authentication,
}

impl ChallengePurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Authentication => "authentication",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registration" => Some(Self::Registration),
            "authentication" => Some(Self::Authentication),
            _ => None,
        }
    }
}

/// A WebAuthn challenge handed to a browser session, usable once and only by that session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnChallenge {
    /// base64url(SHA-256(challenge)).
    pub challenge_hash: String,
    /// The browser session it was issued to (its `id_hash`).
    pub session_hash: String,
    /// What it is for.
    pub purpose: ChallengePurpose,
    /// The user it was issued for (`None`: passwordless sign-in, the user is not known yet).
    pub user_id: Option<String>,
    /// Expiry.
    pub expires_at: OffsetDateTime,
}

/// Which factors a user has, beyond the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Registered WebAuthn credentials.
    pub passkeys: usize,
    /// Recovery codes not used yet.
    pub recovery_codes_left: usize,
}

impl FactorSummary {
    /// True when the user has a second factor (TOTP or a passkey; recovery codes only stand in
    /// for one).
    pub fn any_second_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// The strongest class these factors reach with the password: a passkey reaches
    /// phishing-resistant, TOTP two factors, nothing else one.
    pub fn reachable_acr(&self) -> crate::mfa::policy::Acr {
        use crate::mfa::policy::Acr;
        if self.passkeys > 0 {
            Acr::PhishingResistant
        } else if self.totp {
            Acr::MultiFactor
        } else {
            Acr::SingleFactor
        }
    }
}
