//! Client authentication at the token, introspection, revocation and PAR endpoints (RFC 6749
//! §2.3, RFC 7521/7523, OpenID Connect Core §9).
//!
//! - Exactly one method per request; the client's registered method must be the one used.
//! - Unknown, disabled or mismatched clients are `invalid_client` with one generic description
//!   (the reason goes to the debug log). When a secret was presented, such failures still spend
//!   one PBKDF2 so they cost what a wrong secret does.
//! - `invalid_client` is 401 with `WWW-Authenticate: Basic` when the client used the
//!   `Authorization` header, 400 otherwise (RFC 6749 §5.2).
//! - A failing [`ClientDirectory`] is `temporarily_unavailable` (503).
//! - Secret guessing backs off per `client_id` and per client address ([`crate::throttle`]):
//!   while locked, a presented secret is refused unchecked with 429, `Retry-After` and
//!   `invalid_client`. Assertions and public clients carry no guessable secret and are not
//!   throttled.
//!
//! Secrets are verified through the verified-credential cache, which stores the hash a secret
//! matched; a hit counts only while that hash is still one of the client's unexpired secrets, so
//! an expiring rotation secret stops working on time even while cached. Call
//! [`ClientAuthenticator::invalidate_client`] on every secret change anyway. Assertion `jti`s
//! are remembered through [`ClientDirectory::remember_assertion`] until `exp` + skew.

pub(crate) mod assertion;
pub(crate) mod presented;
mod secret;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cryptoutil_realm::CacheConfig;
use time::OffsetDateTime;

use crate::model::{Client, ClientAuthMethod};
use crate::oauth::error::OAuthError;
use crate::oauth::form::FormParams;
use crate::throttle::{Throttle, ThrottlePolicy};

pub use assertion::MAX_JTI_LEN;
pub use cryptoutil_realm::BoxFuture;
pub use presented::{JWT_BEARER_ASSERTION_TYPE, MAX_CLIENT_ID_LEN};

use presented::Presented;
use secret::SecretVerifier;

/// The client store could not answer (database down …). The message is logged, never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client directory unavailable: {0}")]
pub struct DirectoryError(pub String);

/// Where clients come from, and where used assertion `jti`s are remembered.
pub trait ClientDirectory: Send + Sync {
    /// The client with this exact `client_id` (enabled or not), if any.
    fn client<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<Client>>, DirectoryError>>;

    /// Records that `client_id` used assertion `jti`, until `expires_at`. `true` the first time,
    /// `false` when already recorded (a replay). Must be atomic across instances.
    fn remember_assertion<'a>(
        &'a self,
        client_id: &'a str,
        jti: &'a str,
        expires_at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>>;
}

/// Settings of [`ClientAuthenticator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAuthConfig {
    /// The verified-secret cache (default: 5 minutes, 10,000 entries).
    pub cache: CacheConfig,
    /// Longest an assertion's `exp` may lie ahead (default 5 minutes).
    pub max_assertion_lifetime: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 60 seconds).
    pub clock_skew: Duration,
    /// Backoff after failed secrets.
    pub throttle: ThrottlePolicy,
}

impl Default for ClientAuthConfig {
    fn default() -> Self {
        Self {
            cache: CacheConfig::default(),
            max_assertion_lifetime: Duration::from_secs(300),
            clock_skew: Duration::from_secs(60),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client, as the directory returned it.
    pub client: Arc<Client>,
    /// The method it used (its registered one).
    pub method: ClientAuthMethod,
    /// Whether the verified-secret cache answered (no PBKDF2 ran).
    pub cached: bool,
}

/// Authenticates clients against a [`ClientDirectory`].
pub struct ClientAuthenticator {
    directory: Arc<dyn ClientDirectory>,
    config: ClientAuthConfig,
    secrets: SecretVerifier,
    throttle: Throttle,
}

impl fmt::Debug for ClientAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuthenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientAuthenticator {
    /// An authenticator over `directory`.
    pub fn new(
        directory: Arc<dyn ClientDirectory>,
        config: ClientAuthConfig,
    ) -> Result<Self, OAuthError> {
        Ok(Self {
            directory,
            config,
            secrets: SecretVerifier::new(config.cache)?,
            throttle: Throttle::new(config.throttle),
        })
    }

    /// Drops the cached secrets of `client_id`; call on every secret change, disable or delete.
    pub fn invalidate_client(&self, client_id: &str) {
        self.secrets.invalidate_client(client_id);
    }

    /// Drops every cached secret.
    pub fn invalidate_all(&self) {
        self.secrets.invalidate_all();
    }

    /// [`Self::authenticate_from`] an unknown address.
    pub async fn authenticate(
        &self,
        authorization: &[&[u8]],
        form: &FormParams,
        audiences: &[&str],
    ) -> Result<AuthenticatedClient, OAuthError> {
        self.authenticate_from(authorization, form, audiences, None)
            .await
    }

    /// Authenticates the client of a request from `source` (the TCP peer), given the request's
    /// `Authorization` header values and form. `audiences` are the values an assertion's `aud`
    /// may carry (the issuer and this endpoint's URL).
    pub async fn authenticate_from(
        &self,
        authorization: &[&[u8]],
        form: &FormParams,
        audiences: &[&str],
        source: Option<IpAddr>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let presented = Presented::from_request(authorization, form)?;
        let method = presented.method();
        let fail = |client_id: &str, reason: &'static str| {
            tracing::debug!(
                client_id,
                reason,
                method = method.as_str(),
                "client authentication failed"
            );
            let error = OAuthError::invalid_client("client authentication failed");
            if method == ClientAuthMethod::ClientSecretBasic {
                error.with_basic_challenge()
            } else {
                error
            }
        };
        let now = OffsetDateTime::now_utc();
        match presented {
            Presented::Secret {
                client_id, secret, ..
            } => {
                if let Err(locked) = self.throttle.check(&client_id, source) {
                    tracing::debug!(client_id, "client authentication throttled");
                    return Err(OAuthError::client_auth_throttled(locked.retry_after_secs));
                }
                let ticket = self.secrets.ticket();
                let client = match self.usable(&client_id, method).await? {
                    Ok(client) => client,
                    Err(reason) => {
                        self.secrets.dummy(&secret).await?;
                        let _ = self.throttle.failed(&client_id, source);
                        return Err(fail(&client_id, reason));
                    }
                };
                match self.secrets.verify(ticket, &client, &secret, now).await? {
                    Some(cached) => {
                        self.throttle.succeeded(&client_id, source);
                        Ok(AuthenticatedClient {
                            client,
                            method,
                            cached,
                        })
                    }
                    None => {
                        let _ = self.throttle.failed(&client_id, source);
                        Err(fail(&client_id, "wrong or expired secret"))
                    }
                }
            }
            Presented::Assertion {
                client_id,
                assertion,
            } => {
                let claimed =
                    assertion::claimed_client_id(&assertion).map_err(|reason| fail("", reason))?;
                if client_id.as_ref().is_some_and(|id| *id != claimed) {
                    return Err(fail(&claimed, "client_id differs from the assertion"));
                }
                let client = self
                    .usable(&claimed, method)
                    .await?
                    .map_err(|reason| fail(&claimed, reason))?;
                let rules = assertion::TimeRules {
                    now,
                    skew: self.config.clock_skew,
                    max_lifetime: self.config.max_assertion_lifetime,
                };
                let accepted = assertion::verify(&client, &assertion, audiences, rules)
                    .map_err(|reason| fail(&claimed, reason))?;
                let keep_until = accepted.expires_at + self.config.clock_skew;
                let first = self
                    .directory
                    .remember_assertion(&client.client_id, &accepted.jti, keep_until)
                    .await
                    .map_err(unavailable)?;
                if !first {
                    return Err(fail(&claimed, "assertion jti replayed"));
                }
                Ok(AuthenticatedClient {
                    client,
                    method,
                    cached: false,
                })
            }
            Presented::Public { client_id } => {
                let client = self
                    .usable(&client_id, method)
                    .await?
                    .map_err(|reason| fail(&client_id, reason))?;
                Ok(AuthenticatedClient {
                    client,
                    method,
                    cached: false,
                })
            }
        }
    }

    /// The client, if it exists, is enabled and is registered for `method`; otherwise why not.
    async fn usable(
        &self,
        client_id: &str,
        method: ClientAuthMethod,
    ) -> Result<Result<Arc<Client>, &'static str>, OAuthError> {
        if client_id.len() > MAX_CLIENT_ID_LEN {
            return Ok(Err("client_id too long"));
        }
        let client = self
            .directory
            .client(client_id)
            .await
            .map_err(unavailable)?;
        Ok(match client {
            None => Err("unknown client"),
            Some(c) if !c.enabled => Err("client disabled"),
            Some(c) if c.metadata.token_endpoint_auth_method != method => {
                Err("not the registered method")
            }
            Some(c) => Ok(c),
        })
    }
}

fn unavailable(error: DirectoryError) -> OAuthError {
    tracing::error!(%error, "client lookup failed");
    OAuthError::temporarily_unavailable()
}

#[cfg(test)]
mod tests;
