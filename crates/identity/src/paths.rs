//! Endpoint paths (SPEC §4), relative to the issuer.

/// OpenID Provider metadata.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 authorization server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// JWKS.
pub const JWKS: &str = "/oauth2/v1/jwks";
/// JWKS, well-known alias.
pub const WELL_KNOWN_JWKS: &str = "/.well-known/jwks.json";
/// Authorization endpoint.
pub const AUTHORIZE: &str = "/oauth2/v1/authorize";
/// Token endpoint.
pub const TOKEN: &str = "/oauth2/v1/token";
/// Introspection (RFC 7662).
pub const INTROSPECT: &str = "/oauth2/v1/introspect";
/// Revocation (RFC 7009).
pub const REVOKE: &str = "/oauth2/v1/revoke";
/// Pushed authorization requests (RFC 9126).
pub const PAR: &str = "/oauth2/v1/par";
/// Login page.
pub const LOGIN: &str = "/oidc/v1/login";
/// Consent page.
pub const CONSENT: &str = "/oidc/v1/consent";
/// Userinfo.
pub const USERINFO: &str = "/oidc/v1/userinfo";
/// RP-initiated logout.
pub const LOGOUT: &str = "/oidc/v1/logout";
/// Dynamic client registration (RFC 7591); `{REGISTER}/{client_id}` is a client's
/// registration_client_uri (RFC 7592).
pub const REGISTER: &str = "/oauth2/v1/register";
/// Device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION: &str = "/oauth2/v1/device_authorization";
/// The device flow's verification URI (RFC 8628 §3.2): the user-code entry page, then consent.
pub const DEVICE: &str = "/oidc/v1/device";
/// The second step of a sign-in: a TOTP code, a recovery code or a passkey after the password.
pub const LOGIN_SECOND_FACTOR: &str = "/oidc/v1/login/second-factor";
/// Where the passkey script posts a WebAuthn assertion (passwordless sign-in from the login
/// page, or the second factor).
pub const LOGIN_PASSKEY: &str = "/oidc/v1/login/passkey";
/// Continues the session's pending authorization request once the user has set up the second
/// factor a policy asked for (a POST from the account page).
pub const LOGIN_CONTINUE: &str = "/oidc/v1/login/continue";
/// The pages' one script (passkey ceremonies), served from the binary.
pub const PASSKEY_SCRIPT: &str = "/oidc/v1/assets/passkey.js";
/// The signed-in user's account: factors, password, sessions.
pub const ACCOUNT: &str = "/account";
/// Change the password (current password required).
pub const ACCOUNT_PASSWORD: &str = "/account/password";
/// The user's signed-in browser sessions (a POST signs out all but the current one);
/// `{ACCOUNT_SESSIONS}/{id}/end` signs one out.
pub const ACCOUNT_SESSIONS: &str = "/account/sessions";
/// TOTP enrolment (QR code, confirm with a first code) and removal (`{ACCOUNT_TOTP}/remove`).
pub const ACCOUNT_TOTP: &str = "/account/totp";
/// Generate a new set of recovery codes (shown once).
pub const ACCOUNT_RECOVERY_CODES: &str = "/account/recovery-codes";
/// Passkeys: add (POST), `{ACCOUNT_PASSKEYS}/{id}/rename`, `{ACCOUNT_PASSKEYS}/{id}/remove`.
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
