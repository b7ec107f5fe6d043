//! What every step works with: the servers under test, the HTTP client, the credentials, and
//! each demo's state (results earlier steps hand to later ones).

use std::time::Duration;

use url::Url;
use zeroize::Zeroizing;

use crate::federation_demo::FederationState;
use crate::http::Http;
use crate::identity_demo::IdentityState;
use crate::kms_demo::KmsState;
use crate::runner::StepError;

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
        }
    }
}

/// One server the demo talks to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `KMS`, `Identity`.
    pub label: &'static str,
    /// Public listener, e.g. `https://127.0.0.1:8081`.
    pub public_url: Url,
    /// Admin listener, when known (an in-process server's, or `--kms-admin-url`): readiness is
    /// then checked there, and the KMS's audit trail read from it.
    pub admin_url: Option<Url>,
    /// Whether the demo started this server itself.
    pub in_process: bool,
    /// Why the embedded server is not there (it failed to start): its steps fail with this.
    pub unavailable: Option<String>,
}

impl Target {
    /// `public_url` joined with `path` (an absolute path).
    pub fn url(&self, path: &str) -> Result<Url, StepError> {
        self.public_url
            .join(path)
            .map_err(|e| StepError::with_cause(format!("bad URL path {path}"), e.to_string()))
    }

    /// Fails when the server never started.
    pub fn available(&self) -> Result<(), StepError> {
        match &self.unavailable {
            Some(why) => Err(StepError::with_cause(
                format!("the {} is not running", self.label),
                why.clone(),
            )),
            None => Ok(()),
        }
    }
}

/// The environment of a run.
#[derive(Debug)]
pub struct Env {
    /// HTTPS client (TLS verified against the demo CA) with transient-failure retries.
    pub http: Http,
    /// The KMS, when the demo uses one.
    pub kms: Option<Target>,
    /// Identity, when the demo uses it.
    pub identity: Option<Target>,
    /// Credentials.
    pub credentials: Credentials,
    /// How long to wait for a server to become healthy.
    pub health_timeout: Duration,
}

impl Env {
    /// The KMS target (a step of a demo without one fails).
    pub fn kms(&self) -> Result<&Target, StepError> {
        let target = self
            .kms
            .as_ref()
            .ok_or_else(|| StepError::new("this demo has no KMS"))?;
        target.available()?;
        Ok(target)
    }

    /// The Identity target.
    pub fn identity(&self) -> Result<&Target, StepError> {
        let target = self
            .identity
            .as_ref()
            .ok_or_else(|| StepError::new("this demo has no Identity server"))?;
        target.available()?;
        Ok(target)
    }
}

/// Everything the steps share. Each demo keeps what its later steps need in its own state.
#[derive(Debug)]
pub struct Session {
    /// Servers, client, credentials.
    pub env: Env,
    /// The KMS demo's results so far.
    pub kms: KmsState,
    /// The Identity demo's results so far.
    pub identity: IdentityState,
    /// The federation demo's results so far.
    pub federation: FederationState,
    /// Runs counted by the runner's unit tests.
    #[cfg(test)]
    pub test_runs: usize,
}

impl Session {
    /// A session over `env` with empty demo states.
    pub fn new(env: Env) -> Self {
        Self {
            env,
            kms: KmsState::default(),
            identity: IdentityState::default(),
            federation: FederationState::default(),
            #[cfg(test)]
            test_runs: 0,
        }
    }

    /// A session without servers, for unit tests of the runner.
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub fn for_tests() -> Self {
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        Self::new(Env {
            http: Http::new(&[pki.root()], None, crate::runner::RetryPolicy::new(0)).unwrap(),
            kms: None,
            identity: None,
            credentials: Credentials::default(),
            health_timeout: Duration::from_secs(1),
        })
    }
}
