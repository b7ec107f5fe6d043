//! Shared HTTP plumbing for every cryptoutil server: configuration loading, HTTPS listeners,
//! the admin API, RFC 7807 problem responses, security middleware, logging and telemetry.
//!
//! A product builds its public [`Router`], its readiness checks and its TLS material, and calls
//! [`start`]; it gets back a [`RunningServer`] with the bound addresses.

pub mod admin;
pub mod audit;
pub mod config;
pub mod health;
pub mod logging;
pub mod middleware;
pub mod problem;
mod serve;
pub mod surface;
pub mod swagger;
pub mod telemetry;
pub mod tls_setup;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use admin::ReloadFn;
pub use config::ServerSettings;
pub use health::{CheckResult, ReadinessCheck};
pub use problem::{ApiJson, Problem};
pub use serve::ClientCertificate;
pub use surface::{browser_surface, service_surface};
pub use swagger::swagger_router;
pub use tls_setup::{DevPki, TlsRuntime};

/// Most simultaneous connections per listener; further clients wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 4096;

/// TLS material for the two listeners.
#[derive(Clone)]
pub struct TlsSetup {
    /// rustls configuration of the public listener (TLS 1.3 only).
    pub public: Arc<rustls::ServerConfig>,
    /// rustls configuration of the admin listener (may require client certificates).
    pub admin: Arc<rustls::ServerConfig>,
    /// Reloads the certificate from its files (admin API and SIGHUP).
    pub reload: Option<ReloadFn>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("reloadable", &self.reload.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything needed to start one server.
#[derive(Debug)]
pub struct ServerSpec {
    /// Product name for logs, e.g. `kms`.
    pub name: &'static str,
    /// Listener settings and limits.
    pub settings: ServerSettings,
    /// The product's public routes.
    pub public: Router,
    /// Product-specific admin routes, merged into the standard admin router.
    pub admin_extra: Router,
    /// Readiness checks run by `/admin/v1/readyz`.
    pub checks: Vec<ReadinessCheck>,
    /// TLS configuration.
    pub tls: TlsSetup,
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind (port in use, address not available, permission).
    #[error("cannot listen on {addr} for the {listener} listener: {source}")]
    Bind {
        /// `public` or `admin`.
        listener: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The bound address could not be read back.
    #[error("cannot read the bound address: {0}")]
    LocalAddr(std::io::Error),
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound public address (the real port when 0 was asked for).
    pub public_addr: SocketAddr,
    /// The bound admin address.
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    reload: Option<ReloadFnDebug>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone)]
struct ReloadFnDebug(ReloadFn);

impl std::fmt::Debug for ReloadFnDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReloadFn")
    }
}

/// Binds both listeners and starts serving. Returns once both are accepting connections.
pub async fn start(spec: ServerSpec) -> Result<RunningServer, StartError> {
    let settings = &spec.settings;
    let limits = &settings.limits;
    let public_listener = serve::bind(
        "public",
        SocketAddr::new(settings.public.address, settings.public.port),
    )
    .await?;
    let admin_listener = serve::bind(
        "admin",
        SocketAddr::new(settings.admin.address, settings.admin.port),
    )
    .await?;
    let public_addr = public_listener
        .local_addr()
        .map_err(StartError::LocalAddr)?;
    let admin_addr = admin_listener.local_addr().map_err(StartError::LocalAddr)?;

    let shutdown = CancellationToken::new();
    let options = serve::ServeOptions {
        handshake_timeout: limits.handshake_timeout.get(),
        drain_timeout: limits.drain_timeout.get(),
        max_connections: MAX_CONNECTIONS,
    };
    let public_router = middleware::common_layers(
        spec.public
            .fallback(problem::not_found)
            .method_not_allowed_fallback(problem::method_not_allowed),
        spec.name,
        limits.max_body_bytes,
        limits.request_timeout.get(),
    );
    let admin_router = middleware::common_layers(
        admin::router(
            spec.checks
                .into_iter()
                .chain(telemetry::readiness_check())
                .collect(),
            shutdown.clone(),
            spec.tls.reload.clone(),
            spec.admin_extra,
        )
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed),
        spec.name,
        64 * 1024,
        limits.request_timeout.get(),
    );

    let tasks = vec![
        tokio::spawn(serve::serve_tls(
            "public",
            public_listener,
            TlsAcceptor::from(spec.tls.public.clone()),
            public_router,
            shutdown.clone(),
            options,
        )),
        tokio::spawn(serve::serve_tls(
            "admin",
            admin_listener,
            TlsAcceptor::from(spec.tls.admin.clone()),
            admin_router,
            shutdown.clone(),
            options,
        )),
    ];
    tracing::info!(
        server = spec.name,
        public = %public_addr,
        admin = %admin_addr,
        "listening (HTTPS, TLS 1.3)"
    );
    Ok(RunningServer {
        public_addr,
        admin_addr,
        shutdown,
        reload: spec.tls.reload.map(ReloadFnDebug),
        tasks,
    })
}

impl RunningServer {
    /// A token that stops the server when cancelled (shared with `POST /admin/v1/shutdown`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts a graceful shutdown: stop accepting, drain in-flight requests.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until both listeners have stopped and drained.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Runs until SIGTERM, SIGINT or the admin shutdown route, reloading certificates on SIGHUP;
    /// then drains, flushes telemetry and returns.
    pub async fn run_until_signal(self) {
        let token = self.shutdown.clone();
        let reload = self.reload.clone();
        let signals = tokio::spawn(async move {
            wait_for_signals(token.clone(), reload).await;
            token.cancel();
        });
        self.shutdown.cancelled().await;
        signals.abort();
        tracing::info!("shutting down: draining in-flight requests");
        self.wait().await;
        telemetry::flush().await;
    }
}

#[cfg(unix)]
async fn wait_for_signals(token: CancellationToken, reload: Option<ReloadFnDebug>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers; use the admin API to stop the server");
        token.cancelled().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); return; }
            _ = int.recv() => { tracing::info!("SIGINT received"); return; }
            () = token.cancelled() => return,
            _ = hup.recv() => {
                match &reload {
                    Some(ReloadFnDebug(reload)) => {
                        let reload = reload.clone();
                        match tokio::task::spawn_blocking(move || reload()).await {
                            Ok(Ok(cert)) => tracing::info!(certificate = %cert, "SIGHUP: certificate reloaded"),
                            Ok(Err(e)) => tracing::error!(error = %e, "SIGHUP: certificate reload refused; the previous certificate stays in use"),
                            Err(e) => tracing::error!(error = %e, "SIGHUP: certificate reload task failed"),
                        }
                    }
                    None => tracing::warn!("SIGHUP: this server has no reloadable certificate"),
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(token: CancellationToken, _reload: Option<ReloadFnDebug>) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = token.cancelled() => {}
    }
}
