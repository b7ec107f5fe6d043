//! What the demos sign in with: the demo users' and clients' credentials (SPEC §3.7 and §4
//! defaults) and the [`Secret`] that holds each password and client secret.

use zeroize::Zeroizing;

/// A secret from a flag or a file (passwords, client secrets): zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Credentials the demos use (defaults: the canonical demo data of SPEC §3.7 and §4).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The main user: KMS realm user (demo-tenant) and Identity user who signs in.
    pub username: String,
    /// Its password.
    pub password: Secret,
    /// A user of another KMS tenant, for the isolation check.
    pub second_username: String,
    /// Its password.
    pub second_password: Secret,
    /// The confidential OAuth client of the Identity demo.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// A redirect URI registered for that client (the demo reads the redirect, it serves nothing).
    pub redirect_uri: String,
    /// The machine client whose tokens the KMS accepts (`demo all`: kms:read kms:write).
    pub kms_client_id: String,
    /// Its secret.
    pub kms_client_secret: Secret,
    /// A machine client with kms:read only (`demo all`: refused on encrypt).
    pub readonly_client_id: String,
    /// Its secret.
    pub readonly_client_secret: Secret,
    /// The public single-page client the user signs in to (`demo all`'s delegation chain).
    pub spa_client_id: String,
    /// A redirect URI registered for it (read, not served).
    pub spa_redirect_uri: String,
    /// The resource server's client at Identity: exchanges the user's token (RFC 8693).
    pub rs_client_id: String,
    /// Its secret.
    pub rs_client_secret: Secret,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            username: "demo-user".to_owned(),
            password: Secret::new("demo-user-password"),
            second_username: "demo-user-2".to_owned(),
            second_password: Secret::new("demo-user-2-password"),
            client_id: "demo-confidential-client".to_owned(),
            client_secret: Secret::new("demo-confidential-client-secret"),
            redirect_uri: "https://localhost:8084/confidential/callback".to_owned(),
            kms_client_id: "demo-kms-client".to_owned(),
            kms_client_secret: Secret::new("demo-kms-client-secret"),
            readonly_client_id: "demo-kms-readonly-client".to_owned(),
            readonly_client_secret: Secret::new("demo-kms-readonly-client-secret"),
            spa_client_id: "demo-spa-client".to_owned(),
            spa_redirect_uri: "https://localhost:8084/callback".to_owned(),
            rs_client_id: "demo-rs".to_owned(),
            rs_client_secret: Secret::new("demo-rs-secret"),
        }
    }
}
