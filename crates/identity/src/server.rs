//! Assembles a running Identity server: storage, signing keys, clients, the flow services, the
//! public and admin routes, readiness checks and the background upkeep (revocation sync, key
//! rotation, purge of expired records).

use std::sync::Arc;
use std::time::Duration;

use cryptoutil_server::{DevPki, ReadinessCheck, RunningServer, ServerSpec, TlsRuntime};
use time::OffsetDateTime;

use crate::account::AccountService;
use crate::api::{self, AppState};
use crate::config::IdentitySettings;
use crate::device::service::{DeviceConfig, DeviceService};
use crate::dpop::DpopGuard;
use crate::dpop::replay::StoreReplayCache;
use crate::metadata_document::MetadataDocuments;
use crate::mfa::passkeys::PasskeyService;
use crate::mfa::seal::SecretSealer;
use crate::mfa::totp_service::TotpService;
use crate::oauth::client_auth::ClientAuthConfig;
use crate::registration::{RegistrationPolicy, RegistrationService};
use crate::revocation::RevocationList;
use crate::seed::Seed;
use crate::services::{
    AuthorizationService, ClientRegistry, ClientService, InspectionService, IssuerCell, Lifetimes,
    SigningKeyService, TokenExchange, TokenMinter, TokenService,
};
use crate::signin::SignInService;
use crate::signing::{KeyEncryptionKey, KeyManager, RotationPolicy};
use crate::storage::Store;

/// How often revocations made at other instances are read.
const REVOCATION_SYNC: Duration = Duration::from_secs(1);
/// How often the signing keys are re-read (rotation by this or another instance).
const KEY_REFRESH: Duration = Duration::from_secs(60);
/// How often expired codes, tokens, sessions … are deleted.
const PURGE: Duration = Duration::from_secs(300);

/// `--demo` / `--reset-demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Create the demo users and clients that are missing.
    Demo,
    /// Delete the demo users and clients, then create them again.
    ResetDemo,
}

/// Why Identity could not start. Each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// The database could not be opened, migrated or seeded.
    #[error("database: {0}")]
    Database(String),
    /// The database's schema is newer than this binary (an older release pointed at a newer
    /// database): a deployment error.
    #[error("database: {0}")]
    NewerSchema(String),
    /// The signing keys could not be opened or created.
    #[error("signing keys: {0}")]
    Keys(String),
    /// The listeners could not start.
    #[error("{0}")]
    Server(String),
}

impl StartError {
    /// A store failure at start-up: [`StartError::NewerSchema`] when the database is newer than
    /// this binary, [`StartError::Database`] otherwise.
    fn from_store(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::NewerSchema(m) => Self::NewerSchema(m),
            other => Self::Database(other.to_string()),
        }
    }
}

/// A running Identity server.
#[derive(Debug)]
pub struct Identity {
    /// The listeners.
    pub server: RunningServer,
    /// The services behind the handlers, for in-process callers.
    pub services: AppState,
    core: Core,
    tls: TlsRuntime,
    upkeep: tokio::task::JoinHandle<()>,
}

/// What the services share and the background upkeep keeps current: the storage, the keys
/// and the revocation list.
#[derive(Debug, Clone)]
struct Core {
    store: Store,
    keys: Arc<KeyManager>,
    revocations: Arc<RevocationList>,
}

impl Identity {
    /// The demo CA certificate clients should trust, when `--dev` generated the PKI.
    pub fn ca_cert(&self) -> Option<&std::path::Path> {
        self.tls.ca_cert.as_deref()
    }

    /// The issuer URL.
    pub fn issuer(&self) -> String {
        self.services
            .issuer
            .url()
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// The storage (for in-process callers and tests).
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// The signing keys (for in-process callers and tests).
    pub fn keys(&self) -> &Arc<KeyManager> {
        &self.core.keys
    }

    /// Stops the listeners and background tasks and waits for them; closes the pool.
    pub async fn stop(self) {
        self.server.shutdown();
        self.upkeep.abort();
        self.server.wait().await;
        self.core.store.close().await;
    }

    /// Serves until SIGTERM/SIGINT or `POST /admin/v1/shutdown`, then drains.
    pub async fn run_until_signal(self) {
        self.server.run_until_signal().await;
        self.upkeep.abort();
        self.core.store.close().await;
        drop(self.tls);
    }
}

/// The key that seals signing keys: configured, or generated for an in-memory database.
fn key_encryption_key(settings: &IdentitySettings) -> Result<KeyEncryptionKey, StartError> {
    match &settings.keys.encryption_key {
        Some(secret) => KeyEncryptionKey::from_base64url(secret.expose().trim())
            .map_err(|e| StartError::Config(format!("keys.encryption_key: {e}"))),
        None if settings.database.is_in_memory() => {
            KeyEncryptionKey::generate().map_err(|e| StartError::Keys(e.to_string()))
        }
        None => Err(StartError::Config(
            "keys.encryption_key is required with a persistent database: 32 random bytes, \
             base64url, e.g. `file:///run/secrets/identity-key-encryption-key` (generate with \
             `openssl rand 32 | basenc --base64url | tr -d =`)"
                .to_owned(),
        )),
    }
}

/// Client ID metadata documents when configured, or with `--demo` (which turns them on with the
/// configured, safe, settings: private addresses stay refused unless configured).
fn metadata_documents(
    settings: &IdentitySettings,
    demo: bool,
) -> Result<Option<MetadataDocuments>, StartError> {
    let documents = &settings.client_id_metadata_documents;
    if !(documents.enabled || demo) {
        return Ok(None);
    }
    let resolver = MetadataDocuments::new(documents).map_err(StartError::Config)?;
    tracing::info!(
        allow_private_addresses = documents.allow_private_addresses,
        "client ID metadata documents: https client ids are fetched"
    );
    Ok(Some(resolver))
}

/// Opens storage and keys, seeds when asked, and starts both listeners.
pub async fn start(
    mut settings: IdentitySettings,
    dev: bool,
    dev_pki: Option<DevPki>,
    seeding: Option<Seeding>,
) -> Result<Identity, StartError> {
    if dev {
        settings.apply_dev();
        tracing::warn!("--dev: in-memory database; nothing survives a restart");
    }
    let kek = key_encryption_key(&settings)?;
    // Every instance shares the key-encryption key, so every instance derives the same nonce key.
    let dpop_nonce_key = kek.derive(b"cryptoutil-identity dpop-nonce key v1");
    // TOTP secrets are sealed under a key of the same hierarchy, derived before the KEK moves.
    let totp_sealer = SecretSealer::new(&kek.derive(crate::mfa::seal::KEY_LABEL)[..])
        .map_err(|e| StartError::Config(e.to_string()))?;
    let tls = cryptoutil_server::tls_setup::build(&settings.server, dev, dev_pki)
        .map_err(StartError::Config)?;
    let store = Store::connect(&settings.database)
        .await
        .map_err(StartError::from_store)?;
    let mut cors_origins = settings.cors.allowed_origins.clone();
    if let Some(seeding) = seeding {
        let seed = Seed::demo().map_err(|e| StartError::Config(e.to_string()))?;
        let report = seed
            .apply(&store, seeding == Seeding::ResetDemo, &totp_sealer)
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        tracing::info!(?report, "demo data seeded");
        for origin in seed.redirect_origins() {
            if !cors_origins.contains(&origin) {
                cors_origins.push(origin);
            }
        }
    }
    if !cors_origins.is_empty() {
        let listed: Vec<&str> = cors_origins.iter().map(url::Url::as_str).collect();
        tracing::info!(origins = ?listed, "cross-origin access (no credentials) allowed");
    }
    let lifetimes = Lifetimes::from_settings(&settings);
    let policy = RotationPolicy::new(
        settings.keys.algorithm,
        time::Duration::try_from(settings.keys.rotation_period.get())
            .map_err(|_| StartError::Config("keys.rotation_period is too large".to_owned()))?,
        lifetimes.longest_signed() + time::Duration::minutes(5),
    )
    .with_activation_delay(
        time::Duration::try_from(settings.keys.activation_delay.get())
            .map_err(|_| StartError::Config("keys.activation_delay is too large".to_owned()))?,
    );
    let now = OffsetDateTime::now_utc();
    let keys = Arc::new(
        KeyManager::start(kek, policy, &store, now)
            .await
            .map_err(|e| StartError::Keys(e.to_string()))?,
    );
    let grace = time::Duration::try_from(settings.clients.secret_rotation_grace.get())
        .unwrap_or(time::Duration::DAY);
    let mut registry = ClientRegistry::new(store.clone(), grace);
    if let Some(documents) = metadata_documents(&settings, seeding.is_some())? {
        registry = registry.with_metadata_documents(Arc::new(documents));
    }
    let clients = Arc::new(registry);
    let auth = ClientAuthConfig {
        cache: cryptoutil_realm::CacheConfig {
            ttl: settings.clients.credential_cache_ttl.get(),
            capacity: settings.clients.credential_cache_capacity,
        },
        throttle: settings.brute_force.policy(),
        ..ClientAuthConfig::default()
    };
    let issuer = IssuerCell::new();
    let revocations = Arc::new(RevocationList::new());
    revocations
        .sync(&store, now)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let inspection = Arc::new(InspectionService::new(
        store.clone(),
        keys.clone(),
        issuer.clone(),
        revocations.clone(),
    ));
    let exchange = TokenExchange::new(store.clone(), inspection.clone(), clients.clone());
    let client_service = Arc::new(
        ClientService::new(clients.clone(), auth, issuer.clone())
            .map_err(|e| StartError::Config(e.safe_description()))?,
    );
    let registration_policy =
        RegistrationPolicy::from_settings(&settings.registration, seeding.is_some())
            .map_err(StartError::Config)?;
    if registration_policy.enabled && registration_policy.open {
        tracing::warn!("open dynamic client registration: anyone may register a client");
    }
    let registration = Arc::new(RegistrationService::new(
        store.clone(),
        client_service.clone(),
        registration_policy,
        issuer.clone(),
        time::Duration::try_from(
            settings
                .registration
                .max_initial_access_token_lifetime
                .get(),
        )
        .map_err(|_| {
            StartError::Config(
                "registration.max_initial_access_token_lifetime is too large".to_owned(),
            )
        })?,
    ));
    let device = Arc::new(DeviceService::new(
        store.clone(),
        clients.clone(),
        issuer.clone(),
        device_config(&settings)?,
    ));
    let sign_in = Arc::new(
        SignInService::new(store.clone(), auth.throttle, lifetimes.session)
            .with_mfa_policy(settings.mfa.policy),
    );
    let account = Arc::new(AccountService::new(
        store.clone(),
        sign_in.clone(),
        reauthentication_window(&settings)?,
    ));
    let services = AppState {
        issuer: issuer.clone(),
        authorization: Arc::new(AuthorizationService::new(
            store.clone(),
            clients.clone(),
            issuer.clone(),
            lifetimes.code,
            lifetimes.pushed_request,
        )),
        sign_in: sign_in.clone(),
        tokens: Arc::new(
            TokenService::new(
                store.clone(),
                TokenMinter::new(
                    keys.clone(),
                    issuer.clone(),
                    lifetimes.access_token,
                    lifetimes.id_token,
                ),
                revocations.clone(),
                lifetimes.refresh_token,
            )
            .with_exchange(exchange)
            .with_device(device.clone()),
        ),
        inspection,
        clients: client_service,
        signing_keys: Arc::new(SigningKeyService::new(store.clone(), keys.clone())),
        dpop: Arc::new(DpopGuard::new(
            &settings.dpop,
            &dpop_nonce_key[..],
            Arc::new(StoreReplayCache::new(store.clone())),
            issuer.clone(),
        )),
        registration,
        device,
        account,
        passkeys: Arc::new(PasskeyService::new(
            store.clone(),
            issuer.clone(),
            &settings.mfa,
        )),
        totp: Arc::new(TotpService::new(
            store.clone(),
            totp_sealer,
            settings.mfa.clone(),
            auth.throttle,
        )),
    };
    let core = Core {
        store: store.clone(),
        keys,
        revocations,
    };

    let db_store = store.clone();
    let checks = vec![ReadinessCheck::required("database", move || {
        let store = db_store.clone();
        async move {
            store
                .ping()
                .await
                .map(|()| "reachable".to_owned())
                .map_err(|e| e.to_string())
        }
    })];
    let server = cryptoutil_server::start(ServerSpec {
        name: "identity",
        settings: settings.server.clone(),
        public: api::router(services.clone(), &settings.rate_limits, &cors_origins),
        admin_extra: api::admin::router(services.clone()),
        checks,
        tls: tls.setup.clone(),
    })
    .await
    .map_err(|e| StartError::Server(e.to_string()))?;
    let issuer_url = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("https://127.0.0.1:{}", server.public_addr.port()));
    tracing::info!(issuer = %issuer_url, "issuer");
    services.issuer.set(issuer_url);
    let upkeep = tokio::spawn(upkeep(core.clone()));
    Ok(Identity {
        server,
        services,
        core,
        tls,
        upkeep,
    })
}

/// Background upkeep until aborted. Failures are logged and retried on the next tick.
async fn upkeep(core: Core) {
    let mut sync = tokio::time::interval(REVOCATION_SYNC);
    let mut refresh = tokio::time::interval(KEY_REFRESH);
    let mut purge = tokio::time::interval(PURGE);
    for interval in [&mut sync, &mut refresh, &mut purge] {
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    // Not before this instant may a key refresh for the ring's next change run again (a
    // failing store is retried once a second, not in a loop).
    let mut key_backoff = tokio::time::Instant::now();
    loop {
        let now = OffsetDateTime::now_utc();
        // A key activates or leaves the JWKS at the ring's next change: rebuild the ring then,
        // not at the next periodic refresh. An absolute deadline, so the other branches
        // waking the loop do not postpone it.
        let change = core.keys.ring().next_change().map(|t| {
            let wait = Duration::try_from(t - now).unwrap_or(Duration::ZERO);
            (tokio::time::Instant::now() + wait + Duration::from_millis(10)).max(key_backoff)
        });
        tokio::select! {
            () = tokio::time::sleep_until(change.unwrap_or(key_backoff)), if change.is_some() => {
                key_backoff = tokio::time::Instant::now() + Duration::from_secs(1);
                if let Err(e) = core.keys.refresh(&core.store, OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "signing key refresh failed");
                }
            }
            _ = sync.tick() => {
                if let Err(e) = core.revocations.sync(&core.store, now).await {
                    tracing::warn!(error = %e, "revocation sync failed");
                }
            }
            _ = refresh.tick() => {
                if let Err(e) = core.keys.refresh(&core.store, now).await {
                    tracing::warn!(error = %e, "signing key refresh failed");
                }
            }
            _ = purge.tick() => {
                match core.store.purge_expired(now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "purged expired records"),
                    Err(e) => tracing::warn!(error = %e, "purge failed"),
                }
            }
        }
    }
}

/// How recent a sign-in must be for the account page's changes (`mfa.reauthentication_window`).
fn reauthentication_window(settings: &IdentitySettings) -> Result<time::Duration, StartError> {
    time::Duration::try_from(settings.mfa.reauthentication_window.get())
        .map_err(|_| StartError::Config("mfa.reauthentication_window is too large".to_owned()))
}

/// The device grant's settings: `device:`, with the waits of `brute_force:` for the user-code
/// entry page and its own free failures per session and per address.
fn device_config(settings: &IdentitySettings) -> Result<DeviceConfig, StartError> {
    let device = &settings.device;
    let code_lifetime = time::Duration::try_from(device.code_lifetime.get())
        .map_err(|_| StartError::Config("device.code_lifetime is too large".to_owned()))?;
    let interval_secs = i64::try_from(device.interval.get().as_secs())
        .map_err(|_| StartError::Config("device.interval is too large".to_owned()))?;
    let mut entry_throttle = settings.brute_force.policy();
    entry_throttle.account_free_failures = device.user_code_failures_per_session;
    entry_throttle.address_free_failures = device.user_code_failures_per_address;
    Ok(DeviceConfig {
        code_lifetime,
        interval_secs,
        entry_throttle,
    })
}
