//! The device authorization grant as a service, free of HTTP types: the device authorization
//! request (RFC 8628 §3.1–3.2), the user-code entry with its brute-force limits and the user's
//! decision (§3.3), and the token endpoint's polling (§3.4–3.5).

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::authorization::{DeviceAuthorization, DeviceState, PollResult};
use super::user_code::UserCode;
use crate::mfa::policy;
use crate::model::{Client, Grant, GrantType};
use crate::oauth::scope::Scopes;
use crate::oauth::{ErrorCode, FormParams, OAuthError, resource};
use crate::paths;
use crate::services::clients::ClientRegistry;
use crate::services::issuer::IssuerCell;
use crate::signin::state::AuthMethod;
use crate::storage::{Store, StoreError};
use crate::throttle::{Locked, Throttle, ThrottlePolicy};
use crate::tokens;

/// How often a new pair of codes is drawn when one collides with a stored one.
const INSERT_ATTEMPTS: usize = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorizationResponse {
    /// The device code the client polls with (32 random bytes, base64url; only its hash is
    /// stored).
    pub device_code: String,
    /// The code the user types, as `XXXX-XXXX`.
    pub user_code: String,
    /// The entry page.
    pub verification_uri: String,
    /// The entry page with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds the client waits between polls.
    pub interval: i64,
}

/// The service's settings (`device:` in `identity.yml`).
#[derive(Debug, Clone, Copy)]
pub struct DeviceConfig {
    /// How long the codes live.
    pub code_lifetime: time::Duration,
    /// The polling interval in seconds.
    pub interval_secs: i64,
    /// The backoff of the user-code entry: the "account" is the browser session.
    pub entry_throttle: ThrottlePolicy,
}

/// Why a typed user code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// No live code like it (also malformed input): counted as a failure.
    Wrong,
    /// The code expired: counted as a failure.
    Expired,
    /// The code was already approved or denied: counted as a failure.
    AlreadyUsed,
    /// Too many failures for this session or address: refused unchecked.
    Locked(Locked),
    /// The database is unavailable.
    Unavailable,
}

/// A pending device authorization and its client, for the consent page.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    /// The authorization.
    pub authorization: DeviceAuthorization,
    /// The client that asked.
    pub client: Arc<Client>,
}

/// How the user's decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// Approved: the device's next poll gets the tokens.
    Approved,
    /// Denied: the device's next poll gets `access_denied`.
    Denied,
    /// The code expired or was decided meanwhile: nothing changed.
    NoLongerPending,
}

/// The device authorization grant.
#[derive(Debug)]
pub struct DeviceService {
    store: Store,
    clients: Arc<ClientRegistry>,
    issuer: IssuerCell,
    config: DeviceConfig,
    entry: Throttle,
}

impl DeviceService {
    /// The grant over `store`, its clients from `clients`.
    pub fn new(
        store: Store,
        clients: Arc<ClientRegistry>,
        issuer: IssuerCell,
        config: DeviceConfig,
    ) -> Self {
        Self {
            store,
            clients,
            issuer,
            entry: Throttle::new(config.entry_throttle),
            config,
        }
    }

    /// A device authorization request (RFC 8628 §3.1) of an authenticated client: the client
    /// must be registered for the device grant; `scope` (default: all the client's scopes)
    /// and `resource` (RFC 8707) are checked as at the authorization endpoint. `dpop_jkt`, the
    /// key of the request's DPoP proof, binds the device code: polls must prove the same key.
    pub async fn authorize(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        if !client.allows_grant(GrantType::DeviceCode) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use the device authorization grant",
            ));
        }
        let scopes = match form.get("scope") {
            Some(requested) => Scopes::parse(requested)?
                .narrow(&client.metadata.scope)?
                .into_vec(),
            None => client.metadata.scope.clone(),
        };
        let resources = resource::parse(&form.get_all("resource"))?;
        resource::allowed(client, &resources)?;
        let issuer = self.issuer.get()?;
        for _ in 0..INSERT_ATTEMPTS {
            let device_code = tokens::opaque_secret().map_err(|e| internal("random", e))?;
            let user_code = UserCode::generate().map_err(|e| internal("random", e))?;
            let record = DeviceAuthorization {
                device_code_hash: tokens::secret_hash(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id.clone(),
                scopes: scopes.clone(),
                resources: resources.clone(),
                dpop_jkt: dpop_jkt.map(str::to_owned),
                state: DeviceState::Pending,
                user_id: None,
                grant_id: None,
                interval_secs: self.config.interval_secs,
                last_poll_at: None,
                created_at: now,
                expires_at: now + self.config.code_lifetime,
                used_at: None,
            };
            match self.store.insert_device_authorization(&record).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(storage(e)),
            }
            let verification_uri = issuer.endpoint(paths::DEVICE);
            let shown = user_code.display();
            return Ok(DeviceAuthorizationResponse {
                device_code,
                verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                user_code: shown,
                verification_uri,
                expires_in: self.config.code_lifetime.whole_seconds(),
                interval: self.config.interval_secs,
            });
        }
        Err(internal("drawing device codes", "every attempt collided"))
    }

    /// One poll of the token endpoint (RFC 8628 §3.4–3.5) with `device_code` by `client`:
    /// the approved authorization, spent (single use), or the RFC's error: `invalid_grant`
    /// (unknown, another client's, already used), `authorization_pending`, `slow_down`,
    /// `access_denied`, `expired_token`. A code bound to a DPoP key needs a proof of that key
    /// (checked before anything changes, so a refused poll spends nothing).
    pub async fn redeem(
        &self,
        client: &Client,
        device_code: &str,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<DeviceAuthorization, OAuthError> {
        if device_code.is_empty() || device_code.len() > 256 {
            return Err(invalid_grant("the device code is invalid"));
        }
        let hash = tokens::secret_hash(device_code);
        let found = self
            .store
            .device_authorization(&hash)
            .await
            .map_err(storage)?
            .filter(|d| d.client_id == client.client_id)
            .ok_or_else(|| invalid_grant("the device code is invalid"))?;
        if let Some(bound) = &found.dpop_jkt
            && dpop_jkt != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the device code is bound to a DPoP key: send a proof of that key",
            ));
        }
        let result = self
            .store
            .poll_device_authorization(&hash, &client.client_id, now)
            .await
            .map_err(storage)?;
        match result {
            PollResult::Redeemed(record) => Ok(*record),
            PollResult::Pending => Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not decided yet",
            )),
            PollResult::SlowDown { interval_secs } => Err(OAuthError::new(
                ErrorCode::SlowDown,
                format!("polling too fast: wait {interval_secs} seconds between polls"),
            )),
            // RFC 8628 §3.5 answers at the token endpoint with 400 (RFC 6749 §5.2), not the
            // 403 this code has at other endpoints.
            PollResult::Denied => Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            )
            .with_status(400)),
            PollResult::Expired => Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code expired",
            )),
            PollResult::Used => Err(invalid_grant("the device code was already used")),
            PollResult::Unknown => Err(invalid_grant("the device code is invalid")),
        }
    }

    /// The key a browser session is counted under at the entry page.
    fn session_key(session_key: &str) -> String {
        format!("device-session:{session_key}")
    }

    /// Checks a user code typed on the entry page from `source` in the session named by
    /// `session_key`: refused unchecked while the session or the address backs off; a wrong,
    /// expired or used code counts as a failure of both.
    pub async fn enter(
        &self,
        typed: &str,
        session_key: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<PendingDevice, EntryProblem> {
        let account = Self::session_key(session_key);
        self.entry
            .check(&account, source)
            .map_err(EntryProblem::Locked)?;
        let found = match UserCode::parse(typed) {
            Some(code) => self.pending(&code, now).await,
            None => Err(EntryProblem::Wrong),
        };
        match found {
            Ok(pending) => {
                self.entry.succeeded(&account, source);
                Ok(pending)
            }
            Err(EntryProblem::Unavailable) => Err(EntryProblem::Unavailable),
            Err(problem) => match self.entry.failed(&account, source) {
                Ok(()) => Err(problem),
                Err(locked) => Err(EntryProblem::Locked(locked)),
            },
        }
    }

    /// The live, pending authorization of `code` and its (enabled) client.
    pub async fn pending(
        &self,
        code: &UserCode,
        now: OffsetDateTime,
    ) -> Result<PendingDevice, EntryProblem> {
        let authorization = self
            .store
            .device_authorization_by_user_code(code)
            .await
            .map_err(|_| EntryProblem::Unavailable)?
            .ok_or(EntryProblem::Wrong)?;
        if authorization.expires_at < now {
            return Err(EntryProblem::Expired);
        }
        if authorization.state != DeviceState::Pending {
            return Err(EntryProblem::AlreadyUsed);
        }
        let client = match self.clients.get(&authorization.client_id).await {
            Ok(Some(client)) if client.enabled => client,
            Ok(_) => return Err(EntryProblem::Wrong),
            Err(_) => return Err(EntryProblem::Unavailable),
        };
        Ok(PendingDevice {
            authorization,
            client,
        })
    }

    /// The signed-in user's decision on `code`: approving records a grant (the user, the
    /// scopes, `auth_time`, the sign-in's `amr` and `acr`) for the device's next poll; denying makes it `access_denied`.
    pub async fn decide(
        &self,
        code: &UserCode,
        user_id: &str,
        auth_time: OffsetDateTime,
        methods: &[AuthMethod],
        allow: bool,
        now: OffsetDateTime,
    ) -> Result<DecisionOutcome, StoreError> {
        let Some(authorization) = self.store.device_authorization_by_user_code(code).await? else {
            return Ok(DecisionOutcome::NoLongerPending);
        };
        if !allow {
            return Ok(
                if self
                    .store
                    .deny_device_authorization(code, user_id, now)
                    .await?
                {
                    DecisionOutcome::Denied
                } else {
                    DecisionOutcome::NoLongerPending
                },
            );
        }
        let (amr, acr) = policy::grant_context(methods);
        let grant = Grant {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: authorization.client_id.clone(),
            user_id: user_id.to_owned(),
            scopes: authorization.scopes.clone(),
            auth_time,
            amr,
            acr: Some(acr),
            created_at: now,
            revoked_at: None,
        };
        Ok(
            if self
                .store
                .approve_device_authorization(code, &grant, now)
                .await?
            {
                DecisionOutcome::Approved
            } else {
                DecisionOutcome::NoLongerPending
            },
        )
    }
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

/// A storage failure: 503 when the database is unreachable, else a logged 500.
fn storage(e: StoreError) -> OAuthError {
    match e {
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            OAuthError::temporarily_unavailable()
        }
        other => internal("storage", other),
    }
}

/// An internal failure: logged, answered with a bare `server_error`.
fn internal(what: &str, e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "{what} failed");
    OAuthError::server_error()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::model::{ClientAuthMethod, ClientMetadata, User};
    use crate::storage::DatabaseSettings;

    struct World {
        device: DeviceService,
        store: Store,
        client: Client,
        user_id: String,
        now: OffsetDateTime,
    }

    async fn world(entry_throttle: ThrottlePolicy) -> World {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let client = Client {
            client_id: "cli".to_owned(),
            metadata: ClientMetadata {
                client_name: "CLI".to_owned(),
                token_endpoint_auth_method: ClientAuthMethod::None,
                jwks: None,
                grant_types: vec![GrantType::DeviceCode],
                redirect_uris: Vec::new(),
                post_logout_redirect_uris: Vec::new(),
                scope: vec!["openid".to_owned(), "kms:read".to_owned()],
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
            created_at: now,
        };
        store.insert_client(&client).await.unwrap();
        let user = store
            .upsert_user(&User {
                id: uuid::Uuid::now_v7().to_string(),
                username: "ada".to_owned(),
                password_hash: "pbkdf2-sha256$600000$c2FsdA$a2V5".to_owned(),
                enabled: true,
                roles: Vec::new(),
                tenant_id: None,
                name: None,
                given_name: None,
                family_name: None,
                email: None,
                email_verified: false,
                version: 1,
                created_at: now,
            })
            .await
            .unwrap();
        let issuer = IssuerCell::new();
        issuer.set("https://idp.example".to_owned());
        let clients = Arc::new(ClientRegistry::new(store.clone(), time::Duration::DAY));
        let device = DeviceService::new(
            store.clone(),
            clients,
            issuer,
            DeviceConfig {
                code_lifetime: time::Duration::minutes(10),
                interval_secs: 5,
                entry_throttle,
            },
        );
        World {
            device,
            store,
            client,
            user_id: user.id,
            now,
        }
    }

    fn form(pairs: &[(&str, &str)]) -> FormParams {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        FormParams::parse_default(body.as_bytes()).unwrap()
    }

    fn code(e: OAuthError) -> ErrorCode {
        e.code
    }

    #[tokio::test]
    async fn polling_slows_down_by_five_seconds_and_redeems_once() {
        let w = world(ThrottlePolicy::default()).await;
        let t0 = w.now;
        let started = w
            .device
            .authorize(&w.client, &form(&[("scope", "openid")]), None, t0)
            .await
            .unwrap();
        assert_eq!(started.interval, 5);
        assert_eq!(started.expires_in, 600);
        assert_eq!(
            started.verification_uri,
            "https://idp.example/oidc/v1/device"
        );
        let dc = started.device_code.as_str();
        let at = |secs: i64| t0 + time::Duration::seconds(secs);
        let poll = |secs: i64| w.device.redeem(&w.client, dc, None, at(secs));
        assert_eq!(
            code(poll(0).await.unwrap_err()),
            ErrorCode::AuthorizationPending
        );
        // 1 s later: too fast; the interval becomes 10 s, counted from this poll.
        let slow = poll(1).await.unwrap_err();
        assert_eq!(slow.code, ErrorCode::SlowDown);
        assert!(slow.description.contains("wait 10 seconds"));
        // 9 s after that: still too fast (15 s now).
        let slow = poll(10).await.unwrap_err();
        assert!(slow.description.contains("wait 15 seconds"), "{slow}");
        // 15 s after the last poll: pending again, the interval stays 15 s.
        assert_eq!(
            code(poll(25).await.unwrap_err()),
            ErrorCode::AuthorizationPending
        );
        assert_eq!(code(poll(39).await.unwrap_err()), ErrorCode::SlowDown);

        let user_code = UserCode::parse(&started.user_code).unwrap();
        let outcome = w
            .device
            .decide(
                &user_code,
                &w.user_id,
                at(40),
                &[AuthMethod::Password],
                true,
                at(40),
            )
            .await
            .unwrap();
        assert_eq!(outcome, DecisionOutcome::Approved);
        // Deciding again changes nothing.
        assert_eq!(
            w.device
                .decide(
                    &user_code,
                    &w.user_id,
                    at(40),
                    &[AuthMethod::Password],
                    false,
                    at(41)
                )
                .await
                .unwrap(),
            DecisionOutcome::NoLongerPending
        );
        // An approval is redeemed even by a fast poll, and only once.
        let approved = poll(41).await.unwrap();
        assert_eq!(approved.scopes, ["openid"]);
        let grant_id = approved.grant_id.unwrap();
        let grant = w.store.grant(&grant_id).await.unwrap().unwrap();
        assert_eq!(grant.user_id, w.user_id);
        assert_eq!(grant.client_id, "cli");
        assert_eq!(code(poll(50).await.unwrap_err()), ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn denied_expired_unknown_and_foreign_codes() {
        let w = world(ThrottlePolicy::default()).await;
        let t0 = w.now;
        let started = w
            .device
            .authorize(&w.client, &form(&[]), None, t0)
            .await
            .unwrap();
        let dc = started.device_code.as_str();
        let user_code = UserCode::parse(&started.user_code).unwrap();
        assert_eq!(
            w.device
                .decide(
                    &user_code,
                    &w.user_id,
                    t0,
                    &[AuthMethod::Password],
                    false,
                    t0
                )
                .await
                .unwrap(),
            DecisionOutcome::Denied
        );
        let denied = w.device.redeem(&w.client, dc, None, t0).await.unwrap_err();
        assert_eq!((denied.code, denied.status), (ErrorCode::AccessDenied, 400));

        let started = w
            .device
            .authorize(&w.client, &form(&[]), None, t0)
            .await
            .unwrap();
        let late = t0 + time::Duration::minutes(10) + time::Duration::SECOND;
        let expired = w
            .device
            .redeem(&w.client, &started.device_code, None, late)
            .await
            .unwrap_err();
        assert_eq!(expired.code, ErrorCode::ExpiredToken);
        let user_code = UserCode::parse(&started.user_code).unwrap();
        assert_eq!(
            w.device.pending(&user_code, late).await.unwrap_err(),
            EntryProblem::Expired
        );
        assert_eq!(
            w.device
                .decide(
                    &user_code,
                    &w.user_id,
                    late,
                    &[AuthMethod::Password],
                    true,
                    late
                )
                .await
                .unwrap(),
            DecisionOutcome::NoLongerPending
        );

        let unknown = w
            .device
            .redeem(&w.client, "nope", None, t0)
            .await
            .unwrap_err();
        assert_eq!(unknown.code, ErrorCode::InvalidGrant);
        let mut other = w.client.clone();
        other.client_id = "other".to_owned();
        let foreign = w
            .device
            .redeem(&other, &started.device_code, None, t0)
            .await
            .unwrap_err();
        assert_eq!(foreign.code, ErrorCode::InvalidGrant);
    }

    #[tokio::test]
    async fn scopes_narrow_and_the_grant_is_required() {
        let w = world(ThrottlePolicy::default()).await;
        let started = w
            .device
            .authorize(&w.client, &form(&[]), Some("jkt"), w.now)
            .await
            .unwrap();
        let stored = w
            .store
            .device_authorization(&tokens::secret_hash(&started.device_code))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.scopes, ["openid", "kms:read"]);
        assert_eq!(stored.dpop_jkt.as_deref(), Some("jkt"));
        let refused = w
            .device
            .authorize(&w.client, &form(&[("scope", "openid admin")]), None, w.now)
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidScope);
        let mut no_grant = w.client.clone();
        no_grant.metadata.grant_types = vec![GrantType::AuthorizationCode];
        let refused = w
            .device
            .authorize(&no_grant, &form(&[]), None, w.now)
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::UnauthorizedClient);
        // A bound device code needs a proof of its key, and a refused poll spends nothing.
        let bound = w
            .device
            .redeem(&w.client, &started.device_code, None, w.now)
            .await
            .unwrap_err();
        assert_eq!(bound.code, ErrorCode::InvalidDpopProof);
        let pending = w
            .device
            .redeem(&w.client, &started.device_code, Some("jkt"), w.now)
            .await
            .unwrap_err();
        assert_eq!(pending.code, ErrorCode::AuthorizationPending);
    }

    #[tokio::test]
    async fn wrong_entries_back_off_per_session() {
        let policy = ThrottlePolicy {
            account_free_failures: 2,
            address_free_failures: 100,
            base_delay: StdDuration::from_secs(60),
            ..ThrottlePolicy::default()
        };
        let w = world(policy).await;
        let started = w
            .device
            .authorize(&w.client, &form(&[]), None, w.now)
            .await
            .unwrap();
        let ip = Some("192.0.2.1".parse().unwrap());
        assert_eq!(
            w.device
                .enter("nonsense", "s1", ip, w.now)
                .await
                .unwrap_err(),
            EntryProblem::Wrong
        );
        // The second failure starts the backoff (as `brute_force:` counts).
        assert!(matches!(
            w.device.enter("BCDF-GHJK", "s1", ip, w.now).await,
            Err(EntryProblem::Locked(_))
        ));
        assert!(matches!(
            w.device.enter(&started.user_code, "s1", ip, w.now).await,
            Err(EntryProblem::Locked(_))
        ));
        let found = w
            .device
            .enter(&started.user_code.to_lowercase(), "s2", ip, w.now)
            .await
            .unwrap();
        assert_eq!(found.client.client_id, "cli");
        assert_eq!(found.authorization.user_code.display(), started.user_code);
    }
}
