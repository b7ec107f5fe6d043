//! The sample resource server (`cryptoutil identity rs start`, SPEC §4): a protected API that
//! accepts Identity's access tokens (validated locally against the issuer's JWKS with
//! [`cryptoutil_realm::bearer`]) and the single-page sample client that signs in with
//! `demo-spa-client`.
//!
//! - [`api`]: `GET /api/v1/public/health`, `GET|POST /api/v1/protected/resource`, and
//!   `GET /.well-known/oauth-protected-resource` (RFC 9728) when `resource.identifier` is set.
//!   Bearer and DPoP-bound tokens (RFC 9449) are accepted as [`settings`] say.
//! - [`spa`]: `/`, `/callback` and the client's script, style and configuration.
//! - [`settings`]: the `resource:` section of `rs.yml`.
//! - [`notes`]: `POST /api/v1/protected/notes`: encrypts at the KMS for the caller through token
//!   exchange (RFC 8693).

pub mod api;
pub mod notes;
pub mod settings;
pub mod spa;

use std::path::PathBuf;
use std::sync::Arc;

use cryptoutil_realm::bearer::{
    BearerValidator, IssuerTrust, JwksSource, ProtectedResource, ProtectedResourceConfig,
    TrustedIssuers,
};
use cryptoutil_server::{DevPki, ReadinessCheck, RunningServer, ServerSpec, TlsRuntime};
use cryptoutil_tls::{TrustConfig, client_config};

use crate::config::ResourceServerSettings;

/// Why the resource server could not start. Each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is incomplete or inconsistent.
    #[error("{0}")]
    Config(String),
    /// The listeners could not start.
    #[error("{0}")]
    Server(String),
}

/// A running resource server.
#[derive(Debug)]
pub struct ResourceServer {
    /// The listeners.
    pub server: RunningServer,
    /// The validator of access tokens (shared with the handlers).
    pub validator: BearerValidator,
    tls: TlsRuntime,
}

impl ResourceServer {
    /// The demo CA certificate clients should trust, when `--dev` generated the PKI.
    pub fn ca_cert(&self) -> Option<&std::path::Path> {
        self.tls.ca_cert.as_deref()
    }

    /// Stops the listeners and waits for them to drain.
    pub async fn stop(self) {
        self.server.shutdown();
        self.server.wait().await;
    }

    /// Serves until SIGTERM/SIGINT or `POST /admin/v1/shutdown`, then drains.
    pub async fn run_until_signal(self) {
        self.server.run_until_signal().await;
        drop(self.tls);
    }
}

/// What to tell an operator who gave no issuer.
pub const ISSUER_REQUIRED: &str = "the resource server needs the Identity issuer whose tokens it \
     accepts: pass --trust-issuer URL (and --trust-issuer-ca FILE, the CA that signs Identity's \
     certificate), or set identity.issuer (and identity.ca_file) in rs.yml";

/// The issuer trust and the TLS client configuration for fetching its keys.
fn issuer_trust(
    settings: &ResourceServerSettings,
) -> Result<(IssuerTrust, Arc<cryptoutil_tls::rustls::ClientConfig>), StartError> {
    let identity = &settings.identity;
    let issuer = identity
        .issuer
        .clone()
        .ok_or_else(|| StartError::Config(ISSUER_REQUIRED.to_owned()))?;
    let ca_file: PathBuf = identity
        .ca_file
        .clone()
        .or_else(|| settings.server.tls.ca_file.clone())
        .ok_or_else(|| {
            StartError::Config(
                "identity.ca_file (or --trust-issuer-ca FILE) is required: the CA certificate \
                 that signs Identity's TLS certificate"
                    .to_owned(),
            )
        })?;
    let trust = TrustConfig::from_ca_files(&[&ca_file])
        .map_err(|e| StartError::Config(format!("identity.ca_file {}: {e}", ca_file.display())))?;
    let tls = client_config(trust, None)
        .map_err(|e| StartError::Config(format!("identity.ca_file {}: {e}", ca_file.display())))?;
    let audiences = std::iter::once(identity.audience.clone())
        .chain(settings.resource.identifier.clone())
        .collect();
    let mut trust = IssuerTrust::new(issuer, audiences);
    if let Some(url) = &identity.jwks_url {
        trust.jwks = JwksSource::Url(url.clone());
    }
    trust.algorithms = identity.algorithms.iter().map(|a| a.jws()).collect();
    trust.cache_ttl = identity.jwks_cache_ttl.get();
    trust.clock_skew = identity.clock_skew.get();
    Ok((trust, Arc::new(tls)))
}

/// Starts both listeners. `dev` relaxes the admin listener's client-certificate requirement;
/// `dev_pki` is the demo PKI `--dev` generated (already applied to `settings.server`).
pub async fn start(
    settings: ResourceServerSettings,
    dev: bool,
    dev_pki: Option<DevPki>,
) -> Result<ResourceServer, StartError> {
    let (trust, client_tls) = issuer_trust(&settings)?;
    let issuer = trust.issuer.clone();
    let validator = BearerValidator::over_https(trust, client_tls)
        .map_err(|e| StartError::Config(format!("identity: {e}")))?;
    let tls = cryptoutil_server::tls_setup::build(&settings.server, dev, dev_pki)
        .map_err(StartError::Config)?;
    let spa = spa::router(spa::SpaConfig {
        issuer: issuer.clone(),
        client_id: settings.spa.client_id.clone(),
        scopes: settings.spa.scopes.clone(),
    })
    .map_err(StartError::Config)?;
    let issuers = TrustedIssuers::new(vec![validator.clone()])
        .map_err(|e| StartError::Config(format!("identity: {e}")))?;
    let resource = &settings.resource;
    let protected = ProtectedResource::new(ProtectedResourceConfig {
        realm: api::REALM.to_owned(),
        resource: resource.identifier.clone(),
        issuers: vec![issuer.clone()],
        scopes: vec![api::READ_SCOPE.to_owned(), api::WRITE_SCOPE.to_owned()],
        replay_capacity: resource.dpop_replay_cache_capacity,
        proof_max_age: resource.dpop_proof_max_age.get(),
        dpop_required: resource.dpop_bound_access_tokens_required,
    })
    .map_err(|e| StartError::Config(format!("resource: {e}")))?;
    let kms = notes::NotesKms::from_settings(&settings, &issuer).map_err(StartError::Config)?;
    let resource_state = api::ResourceState::new(issuers.clone()).with_protection(protected);
    let notes = notes::NotesState::new(issuers, resource_state.protection(), kms);
    let public = api::router(resource_state)
        .merge(notes::router(notes))
        .merge(spa);
    let jwks = validator.clone();
    let checks = vec![ReadinessCheck::required("identity_jwks", move || {
        let jwks = jwks.clone();
        async move {
            jwks.check_jwks()
                .await
                .map(|n| format!("{n} signing key(s) available"))
                .map_err(|e| e.to_string())
        }
    })];
    let server = cryptoutil_server::start(ServerSpec {
        name: "rs",
        settings: settings.server.clone(),
        public,
        admin_extra: axum::Router::new(),
        checks,
        tls: tls.setup.clone(),
    })
    .await
    .map_err(|e| StartError::Server(e.to_string()))?;
    tracing::info!(%issuer, audience = %settings.identity.audience, "trusting access tokens");
    Ok(ResourceServer {
        server,
        validator,
        tls,
    })
}
