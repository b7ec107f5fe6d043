//! The run context: what every step of a demo run works with — the servers under test, the
//! HTTP client, the credentials, and each demo's state (results earlier steps hand to later
//! ones). Not a browser session: the Identity demo's browser sessions are cookie jars of its own.

use std::time::Duration;

use url::Url;

use crate::credentials::Credentials;
use crate::federation_demo::state::FederationState;
use crate::http::Http;
use crate::identity_demo::state::IdentityState;
use crate::kms_demo::state::KmsState;
use crate::step_error::StepError;

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

/// Everything the steps of one run share. Each demo keeps what its later steps need in its own
/// state.
#[derive(Debug)]
pub struct RunContext {
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

impl RunContext {
    /// A run context over `env` with empty demo states.
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

    /// A run context without servers, for unit tests of the runner.
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub fn for_tests() -> Self {
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        Self::new(Env {
            http: Http::new(&[pki.root()], None, crate::http::RetryPolicy::new(0)).unwrap(),
            kms: None,
            identity: None,
            credentials: Credentials::default(),
            health_timeout: Duration::from_secs(1),
        })
    }
}
