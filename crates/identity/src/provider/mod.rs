//! The authorization server's domain logic, free of HTTP types: grants at the token endpoint,
//! introspection, revocation, userinfo, the authorization request and code issuance, client
//! registration. The `api` module turns HTTP requests into calls here.

pub mod authorize;
pub mod clients;
mod grants;
mod inspect;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use time::{Duration, OffsetDateTime};

use crate::config::IdentitySettings;
use crate::model::{Client, Grant};
use crate::oauth::client_auth::{AuthenticatedClient, ClientAuthConfig, ClientAuthenticator};
use crate::oauth::{ErrorCode, OAuthError};
use crate::revocation::RevocationList;
use crate::signing::{KeyManager, KeyRing};
use crate::storage::{Store, StoreError};
use crate::throttle::{Locked, Throttle};
use crate::tokens::{self, AccessTokenClaims, IdTokenClaims};

pub use authorize::{AuthorizationRequest, AuthorizeFailure, Prompt};
pub use clients::{ClientRegistration, ClientRegistry};
pub use grants::TokenResponse;
pub use inspect::{Introspection, UserInfo};

/// Token lifetimes and other knobs taken from the settings.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    /// Access tokens.
    pub access_token: Duration,
    /// ID tokens.
    pub id_token: Duration,
    /// Refresh tokens (the family's whole life).
    pub refresh_token: Duration,
    /// Authorization codes (10 minutes, SPEC §4).
    pub code: Duration,
    /// Pushed authorization requests (RFC 9126 suggests a short life).
    pub pushed_request: Duration,
    /// Login sessions.
    pub session: Duration,
}

impl Lifetimes {
    /// From `identity.yml`.
    pub fn from_settings(settings: &IdentitySettings) -> Self {
        let d = |h: &cryptoutil_server::config::HumanDuration| {
            Duration::try_from(h.get()).unwrap_or(Duration::MAX)
        };
        Self {
            access_token: d(&settings.tokens.access_token_lifetime),
            id_token: d(&settings.tokens.id_token_lifetime),
            refresh_token: d(&settings.tokens.refresh_token_lifetime),
            code: Duration::minutes(10),
            pushed_request: Duration::seconds(60),
            session: d(&settings.sessions.lifetime),
        }
    }

    /// The longest time a signed token stays valid: how long a superseded signing key must
    /// stay in the JWKS.
    pub fn longest_signed(&self) -> Duration {
        self.access_token.max(self.id_token)
    }
}

/// The issuer and its endpoint URLs, known once the public listener is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// `iss`, e.g. `https://identity.example.com`.
    pub url: String,
}

impl Issuer {
    /// The absolute URL of a path on this issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The token endpoint URL (an accepted `aud` of client assertions).
    pub fn token_endpoint(&self) -> String {
        self.endpoint(crate::api::paths::TOKEN)
    }
}

/// The authorization server.
#[derive(Debug)]
pub struct Provider {
    store: Store,
    keys: Arc<KeyManager>,
    clients: Arc<ClientRegistry>,
    authenticator: ClientAuthenticator,
    revocations: RevocationList,
    issuer: OnceLock<Issuer>,
    lifetimes: Lifetimes,
    sign_ins: Throttle,
}

/// Why a sign-in at the login form failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    /// Wrong username or password (one message for both).
    Wrong,
    /// Too many failures for the account or the address: refused without checking.
    Locked(Locked),
    /// The database is unavailable.
    Unavailable,
}

impl Provider {
    /// Assembles the provider. The issuer is set with [`Provider::set_issuer`] once known.
    /// `auth.throttle` governs both client secrets and the login form (separate counters).
    pub fn new(
        store: Store,
        keys: Arc<KeyManager>,
        clients: Arc<ClientRegistry>,
        auth: ClientAuthConfig,
        lifetimes: Lifetimes,
    ) -> Result<Self, OAuthError> {
        let authenticator = ClientAuthenticator::new(clients.clone(), auth)?;
        Ok(Self {
            sign_ins: Throttle::new(auth.throttle),
            store,
            keys,
            clients,
            authenticator,
            revocations: RevocationList::new(),
            issuer: OnceLock::new(),
            lifetimes,
        })
    }

    /// Fixes the issuer (first call wins).
    pub fn set_issuer(&self, url: String) {
        let _ = self.issuer.set(Issuer { url });
    }

    /// The issuer; `temporarily_unavailable` before the listener is bound.
    pub fn issuer(&self) -> Result<&Issuer, OAuthError> {
        self.issuer
            .get()
            .ok_or_else(OAuthError::temporarily_unavailable)
    }

    /// The storage.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<KeyManager> {
        &self.keys
    }

    /// The registered clients (cached) and client authentication.
    pub fn clients(&self) -> &Arc<ClientRegistry> {
        &self.clients
    }

    /// Authenticates the client of a request from `source` (the TCP peer) to the endpoint at
    /// `path` (token, introspection, revocation, PAR). Assertions may name the issuer, the
    /// token endpoint or this endpoint as audience. Secret guessing backs off (429).
    pub async fn authenticate_client(
        &self,
        headers: &axum::http::HeaderMap,
        form: &crate::oauth::FormParams,
        path: &str,
        source: Option<IpAddr>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let issuer = self.issuer()?;
        let token_endpoint = issuer.token_endpoint();
        let endpoint = issuer.endpoint(path);
        self.authenticator
            .authenticate_from(
                headers,
                form,
                &[&issuer.url, &token_endpoint, &endpoint],
                source,
            )
            .await
    }

    /// Drops cached verified secrets of a client (after rotation or deletion).
    pub fn forget_client(&self, client_id: &str) {
        self.clients.forget(client_id);
        self.authenticator.invalidate_client(client_id);
    }

    /// The revoked access tokens.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    /// Token and session lifetimes.
    pub fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.keys.ring()
    }

    /// Signs an access token for `subject` and returns it with its claims.
    fn mint_access_token(
        &self,
        client: &Client,
        subject: &str,
        scopes: &[String],
        tenant_id: Option<&str>,
        auth_time: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(String, AccessTokenClaims), OAuthError> {
        let issuer = self.issuer()?;
        let audience = if client.audiences.is_empty() {
            vec![issuer.url.clone()]
        } else {
            client.audiences.clone()
        };
        let claims = AccessTokenClaims {
            iss: issuer.url.clone(),
            sub: subject.to_owned(),
            aud: tokens::Audience::from_list(audience),
            client_id: client.client_id.clone(),
            scope: scopes.join(" "),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now.unix_timestamp(),
            exp: (now + self.lifetimes.access_token).unix_timestamp(),
            tenant_id: tenant_id.map(str::to_owned),
            auth_time: auth_time.map(OffsetDateTime::unix_timestamp),
            roles: None,
        };
        let token = self
            .ring()
            .sign_access_token(&claims)
            .map_err(|e| internal("signing an access token", e))?;
        Ok((token, claims))
    }

    /// Signs an ID token for a user grant.
    fn mint_id_token(
        &self,
        grant: &Grant,
        user: &crate::model::User,
        scopes: &[String],
        nonce: Option<String>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<String, OAuthError> {
        let issuer = self.issuer()?;
        let ring = self.ring();
        let alg = ring
            .signing_algorithm()
            .ok_or_else(|| internal("signing an ID token", "no signing key"))?;
        let profile = scopes.iter().any(|s| s == "profile");
        let email = scopes.iter().any(|s| s == "email");
        let claims = IdTokenClaims {
            iss: issuer.url.clone(),
            sub: user.id.clone(),
            aud: grant.client_id.clone(),
            azp: grant.client_id.clone(),
            nonce,
            auth_time: grant.auth_time.unix_timestamp(),
            at_hash: Some(tokens::at_hash(alg, access_token)),
            iat: now.unix_timestamp(),
            exp: (now + self.lifetimes.id_token).unix_timestamp(),
            name: user.name.clone().filter(|_| profile),
            given_name: user.given_name.clone().filter(|_| profile),
            family_name: user.family_name.clone().filter(|_| profile),
            preferred_username: profile.then(|| user.username.clone()),
            email: user.email.clone().filter(|_| email),
            email_verified: email.then_some(user.email_verified),
        };
        ring.sign_id_token(&claims)
            .map_err(|e| internal("signing an ID token", e))
    }

    /// Revokes a grant and everything issued under it, here and (through the database) at
    /// every instance.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), OAuthError> {
        let revoked = self
            .store
            .revoke_grant(grant_id, now)
            .await
            .map_err(storage)?;
        self.revocations.add(revoked);
        Ok(())
    }
}

impl Provider {
    /// Checks a user's password from `source` (the TCP peer): refused unchecked while the
    /// account or the address is backing off after failures; otherwise PBKDF2 off the async
    /// workers (unknown users cost the same). A failure that starts a backoff is reported as
    /// `Locked`.
    pub async fn verify_user_password(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<crate::model::User, SignInFailure> {
        if username.is_empty()
            || password.is_empty()
            || username.len() > 256
            || password.len() > 1024
        {
            return Err(SignInFailure::Wrong);
        }
        self.sign_ins
            .check(username, source)
            .map_err(SignInFailure::Locked)?;
        let user = self
            .store
            .user_by_username(username)
            .await
            .map_err(|_| SignInFailure::Unavailable)?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password = zeroize::Zeroizing::new(password.to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            match hash.as_deref().map(cryptoutil_realm::PasswordHash::parse) {
                Some(Ok(hash)) => hash.verify(&password),
                _ => {
                    cryptoutil_realm::password::dummy_verify(&password);
                    false
                }
            }
        })
        .await
        .map_err(|_| SignInFailure::Unavailable)?;
        match user {
            Some(user) if ok && user.enabled => {
                self.sign_ins.succeeded(username, source);
                Ok(user)
            }
            _ => match self.sign_ins.failed(username, source) {
                Ok(()) => Err(SignInFailure::Wrong),
                Err(locked) => Err(SignInFailure::Locked(locked)),
            },
        }
    }
}

/// A storage failure as a protocol error: 503 `temporarily_unavailable` when the database is
/// unreachable, else 500 `server_error` (logged, never shown).
pub(crate) fn storage(e: StoreError) -> OAuthError {
    match e {
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            OAuthError::temporarily_unavailable()
        }
        other => internal("storage", other),
    }
}

/// An internal failure: logged, answered with a bare `server_error`.
pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "{what} failed");
    OAuthError::server_error()
}

/// `invalid_grant` with a description.
pub(crate) fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}
