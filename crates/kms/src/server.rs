//! Assembles a running KMS: storage, barrier, key service, both API surfaces, Swagger UI, the
//! admin routes ([`crate::api::admin`], [`crate::api::inventory`]), readiness checks and the
//! background tasks (one [`TaskSet`]: the purge task, following other instances' changes, and
//! the last-use flush).

use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::Router;
use cryptoutil_server::{
    DevPki, ReadinessCheck, RunningServer, ServerSpec, TlsRuntime, surface, swagger,
};

use crate::api::{self, ApiState, BROWSER_PREFIX, Keys, SERVICE_PREFIX};
use crate::auth::{
    Authenticator, DB_REALM, Federation, require_authentication, require_browser_authentication,
};
use crate::barrier::{Barrier, UnsealKeys};
use crate::config::KmsSettings;
use crate::keys::{KeyService, KeyServiceOptions};
use crate::repository::{DirectoryStore, KeyStore};
use crate::seed::Seed;
use crate::storage::Store;
use crate::tasks::TaskSet;
use crate::users::UserAdmin;

/// Why the KMS could not start. Each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(String),
    /// The database's schema is newer than this binary (an older release pointed at a newer
    /// database): a deployment error.
    #[error("database: {0}")]
    NewerSchema(String),
    /// The barrier could not be unsealed (wrong shares, unreadable files).
    #[error("barrier: {0}")]
    Barrier(String),
    /// The listeners could not start.
    #[error("{0}")]
    Server(String),
}

impl StartError {
    /// A store failure at start-up: [`StartError::NewerSchema`] when the database is newer than
    /// this binary, [`StartError::Database`] otherwise.
    fn from_store(e: crate::repository::StoreError) -> Self {
        match e {
            crate::repository::StoreError::NewerSchema(m) => Self::NewerSchema(m),
            other => Self::Database(other.to_string()),
        }
    }
}

/// A running KMS.
#[derive(Debug)]
pub struct Kms {
    /// The listeners.
    pub server: RunningServer,
    /// The key service, for in-process callers and tests.
    pub keys: Arc<Keys>,
    tls: TlsRuntime,
    tasks: TaskSet,
}

impl Kms {
    /// The demo CA certificate clients should trust, when `--dev` generated the PKI.
    pub fn ca_cert(&self) -> Option<&std::path::Path> {
        self.tls.ca_cert.as_deref()
    }

    /// The background tasks and their states.
    pub fn tasks(&self) -> Vec<(&'static str, crate::tasks::TaskState)> {
        self.tasks.report()
    }

    /// Stops the listeners and background tasks and waits for them; closes the pool.
    pub async fn stop(self) {
        self.server.shutdown();
        self.tasks.stop().await;
        self.server.wait().await;
        flush_last_use(&self.keys).await;
        self.keys.store().close().await;
    }

    /// Serves until SIGTERM/SIGINT or `POST /admin/v1/shutdown`, then drains; the background
    /// tasks run until then.
    pub async fn run_until_signal(self) {
        self.server.run_until_signal().await;
        self.tasks.stop().await;
        flush_last_use(&self.keys).await;
        self.keys.store().close().await;
        drop(self.tls);
    }
}

/// Writes the last-use times still in memory before the pool closes.
async fn flush_last_use(keys: &Keys) {
    if let Err(e) = crate::inventory::flush_last_use(keys.store().as_ref(), keys.last_use()).await {
        tracing::warn!(error = %e, "could not record elastic keys' last use at shutdown");
    }
}

/// Opens storage and the barrier and starts both listeners.
///
/// `dev` is the CLI's `--dev`: a generated demo PKI when no certificate is configured, an
/// in-memory database and a random unseal key. `seeding` is `--demo` / `--reset-demo`.
pub async fn start(
    mut settings: KmsSettings,
    dev: bool,
    dev_pki: Option<DevPki>,
    seeding: Option<Seeding>,
) -> Result<Kms, StartError> {
    if dev {
        settings.apply_dev();
        tracing::warn!(
            "--dev: in-memory database and a random unseal key; nothing survives a restart"
        );
    }
    settings
        .check_unseal_fits_database()
        .map_err(StartError::Config)?;
    let tls = cryptoutil_server::tls_setup::build(&settings.server, dev, dev_pki)
        .map_err(StartError::Config)?;
    let store = Store::connect(&settings.database)
        .await
        .map_err(StartError::from_store)?;
    let store = Arc::new(store);
    let unseal =
        UnsealKeys::load(&settings.barrier).map_err(|e| StartError::Barrier(e.to_string()))?;
    let barrier = Barrier::open(store.clone(), unseal, settings.barrier.cache_capacity)
        .await
        .map_err(|e| StartError::Barrier(e.to_string()))?;
    let keys = Arc::new(KeyService::new(
        store.clone(),
        Arc::new(barrier),
        KeyServiceOptions {
            purge_delay: time::Duration::try_from(settings.keys.purge_delay.get())
                .map_err(|_| StartError::Config("keys.purge_delay is too large".to_owned()))?,
            material_cache_capacity: NonZeroUsize::new(settings.keys.material_cache_capacity)
                .unwrap_or(NonZeroUsize::MIN),
            metadata_cache_ttl: settings.keys.metadata_cache_ttl.get(),
        },
    ));
    if let Some(seeding) = seeding {
        seed(&store, &keys, seeding).await?;
    }
    let federation = Federation::from_settings(
        &settings.auth.federation,
        settings.server.tls.ca_file.as_deref(),
    )
    .map_err(StartError::Config)?;
    let auth = Arc::new(
        Authenticator::with_federation(&settings.auth, store.clone(), federation)
            .map_err(StartError::Config)?,
    );

    let state = ApiState { keys: keys.clone() };
    let users = Arc::new(UserAdmin::new(store.clone(), auth.clone()));
    let public = public_router(&settings, state, auth.clone(), users);
    let admin_extra =
        api::admin::router(keys.clone()).merge(api::inventory::admin_router(keys.clone()));
    let tasks = background_tasks(&settings, &store, &auth, &keys);
    let mut checks = readiness_checks(keys.clone());
    checks.push(tasks.readiness_check());
    if let Some(federation) = auth.federation() {
        checks.extend(federation.readiness_checks());
    }
    let server = cryptoutil_server::start(ServerSpec {
        name: "kms",
        settings: settings.server.clone(),
        public,
        admin_extra,
        checks,
        tls: tls.setup.clone(),
    })
    .await
    .map_err(|e| StartError::Server(e.to_string()))?;
    Ok(Kms {
        server,
        keys,
        tls,
        tasks,
    })
}

/// The background tasks: the purge task, and following the changes other instances announce
/// (user and elastic key changes on PostgreSQL; SQLite has none, so that task returns at once).
fn background_tasks(
    settings: &KmsSettings,
    store: &Arc<Store>,
    auth: &Arc<Authenticator<Store>>,
    keys: &Arc<Keys>,
) -> TaskSet {
    let mut tasks = TaskSet::new();
    tasks.spawn(
        "purge",
        purge_loop(
            keys.clone(),
            auth.federation().cloned(),
            settings.keys.purge_interval.get(),
        ),
    );
    tasks.spawn(
        "last use",
        crate::inventory::flush_loop(
            keys.store().clone(),
            keys.last_use().clone(),
            crate::inventory::last_use::FLUSH_INTERVAL,
        ),
    );
    let (store, auth, keys) = (store.clone(), auth.clone(), keys.clone());
    tasks.spawn("follow changes", async move {
        let users = store.follow_user_changes(|user| match user {
            Some(user) => auth.cache().invalidate_user(DB_REALM, user),
            None => auth.cache().invalidate_all(),
        });
        let elastic_keys = store.follow_key_changes(|key| keys.key_changed_elsewhere(key));
        tokio::join!(users, elastic_keys);
    });
    tasks
}

/// `--demo` / `--reset-demo` (SPEC §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Create the demo data that is missing.
    Demo,
    /// Delete the demo tenants' data, then seed again.
    ResetDemo,
}

async fn seed(store: &Arc<Store>, keys: &Arc<Keys>, seeding: Seeding) -> Result<(), StartError> {
    let demo = Seed::demo().map_err(StartError::Config)?;
    let failed = |e: String| StartError::Database(format!("demo seeding: {e}"));
    // Not under the start-up lock: seeding creates keys, and the barrier takes that lock for a
    // tenant's first intermediate key. Seeding is idempotent by name and tolerates instances
    // racing (a name taken meanwhile is a conflict it skips).
    if seeding == Seeding::ResetDemo {
        for name in &demo.tenants {
            if let Some(tenant) = store
                .tenant_by_name(name)
                .await
                .map_err(|e| failed(e.to_string()))?
            {
                store
                    .drop_tenant(tenant.id)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        for user in &demo.users {
            store
                .delete_realm_user(&user.username)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    let report = demo
        .apply(store.as_ref(), keys, |p| {
            cryptoutil_realm::password::hash_password(p).map_err(|e| e.to_string())
        })
        .await
        .map_err(failed)?;
    tracing::warn!(
        tenants_created = report.tenants_created,
        users_created = report.users_created,
        keys_created = report.keys_created,
        "demo data seeded (DEMO ONLY: the demo users' passwords are public)"
    );
    Ok(())
}

/// The CLI's `--dev` with trusted issuers and no `auth.federation.resource`: the resource is
/// the URL the ready file reports, `https://127.0.0.1:<public port>`, so DPoP-bound tokens work
/// in development. A public port of 0 is chosen now (the OS's choice), since the URL must be
/// known before the listener starts. (Embedders set the resource themselves.)
///
/// # Errors
/// No free port.
pub fn dev_resource(settings: &mut KmsSettings) -> Result<(), String> {
    let federation = &settings.auth.federation;
    if federation.resource.is_some() || federation.issuers.is_empty() {
        return Ok(());
    }
    if settings.server.public.port == 0 {
        settings.server.public.port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port for the public listener: {e}"))?
            .port();
    }
    let resource = format!("https://127.0.0.1:{}", settings.server.public.port);
    tracing::info!(%resource, "--dev: the KMS's resource identifier (DPoP htu, RFC 9728)");
    settings.auth.federation.resource = Some(resource);
    Ok(())
}

/// Both surfaces, the OpenAPI document and Swagger UI.
fn public_router(
    settings: &KmsSettings,
    state: ApiState,
    auth: Arc<Authenticator<Store>>,
    users: Arc<UserAdmin<Store>>,
) -> Router {
    let (operations, mut document) =
        api::operations_and_document(state, &[SERVICE_PREFIX, BROWSER_PREFIX]);
    // User administration is for services (and operators' tools) only.
    let (user_admin, mut users_document) = api::users::router(users);
    api::label_surface(&mut users_document, SERVICE_PREFIX);
    document.merge(users_document);
    let metadata = auth
        .federation()
        .and_then(|f| f.metadata().cloned())
        .map(api::resource_metadata::router);
    if metadata.is_some() {
        api::resource_metadata::document_route(&mut document);
    }
    let document = document.to_json().unwrap_or_else(|_| "{}".to_owned());
    let browser_authenticate =
        axum::middleware::from_fn_with_state(auth.clone(), require_browser_authentication::<Store>);
    let authenticate = axum::middleware::from_fn_with_state(auth, require_authentication::<Store>);
    let mut service_operations = operations.clone().merge(user_admin);
    if settings.benchmark.echo {
        tracing::warn!(
            "benchmark.echo: POST {SERVICE_PREFIX}{} is mounted (a load-test aid)",
            crate::scopes::ECHO_PATH
        );
        service_operations = service_operations.merge(api::echo::router());
    }
    let service_operations = service_operations.layer(authenticate);
    let browser_operations = operations.layer(browser_authenticate);
    Router::new()
        .merge(surface::service_surface(
            service_operations,
            &settings.api.service,
        ))
        .merge(surface::browser_surface(
            browser_operations,
            &settings.api.browser,
        ))
        .merge(swagger::swagger_router(document))
        .merge(metadata.unwrap_or_default())
}

fn readiness_checks(keys: Arc<Keys>) -> Vec<ReadinessCheck> {
    let database = keys.clone();
    vec![
        ReadinessCheck::required("database", move || {
            let keys = database.clone();
            async move {
                keys.store()
                    .ping()
                    .await
                    .map(|()| "reachable".to_owned())
                    .map_err(|e| e.to_string())
            }
        }),
        ReadinessCheck::required("barrier", move || {
            let keys = keys.clone();
            async move {
                let status = keys.barrier().status();
                Ok(format!(
                    "unsealed; {} root key(s), current {}; {} of {} keys cached",
                    status.root_keys,
                    status.current_root_kid,
                    status.cached_keys,
                    status.cache_capacity
                ))
            }
        }),
    ]
}

/// Purges due elastic keys and forgets revocation answers of expired tokens.
async fn purge_loop(
    keys: Arc<Keys>,
    federation: Option<Arc<Federation>>,
    every: std::time::Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Some(federation) = &federation {
            federation.purge_expired();
        }
        match keys.purge_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged elastic keys past their deletion delay"),
            Err(e) => {
                tracing::warn!(error = %e, "purge of deleted elastic keys failed; will retry")
            }
        }
    }
}
