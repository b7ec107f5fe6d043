//! Identity and the sample resource server, started in-process on free ports over real TLS with
//! a demo CA of their own.

use cryptoutil_identity::config::{IdentitySettings, ResourceServerSettings};
use cryptoutil_identity::server::{Identity, Seeding, StartError};
use cryptoutil_server::DevPki;

use crate::{logs, tls};

/// Default Identity settings with [`tls::free_ports`] for `pki`'s `identity` certificate (and
/// test logging installed).
pub fn settings(pki: &DevPki) -> IdentitySettings {
    logs::init();
    let mut settings = IdentitySettings::default();
    tls::free_ports(&mut settings.server, pki, "identity");
    settings
}

/// Resource server settings on free ports with `pki`'s `rs` certificate, trusting `issuer`
/// (whose certificate `pki` issued).
pub fn resource_server_settings(pki: &DevPki, issuer: &str) -> ResourceServerSettings {
    logs::init();
    let mut settings = ResourceServerSettings::default();
    tls::free_ports(&mut settings.server, pki, "rs");
    settings.identity.issuer = Some(issuer.to_owned());
    settings.identity.ca_file = Some(pki.root());
    settings
}

/// A running Identity server and the demo CA its certificate comes from.
#[derive(Debug)]
pub struct IdentityServer {
    /// The server.
    pub identity: Identity,
    /// Its issuer URL (the public listener).
    pub issuer: String,
    /// The base URL of its admin listener.
    pub admin: String,
    pki: DevPki,
}

impl IdentityServer {
    /// Starts a `--dev` Identity server on [`settings`] after a last `change`.
    pub async fn start(
        seeding: Option<Seeding>,
        change: impl FnOnce(&mut IdentitySettings),
    ) -> Result<Self, StartError> {
        let pki = tls::demo_pki();
        let mut settings = settings(&pki);
        change(&mut settings);
        let identity = cryptoutil_identity::server::start(settings, true, None, seeding).await?;
        Ok(Self {
            issuer: identity.issuer(),
            admin: format!("https://127.0.0.1:{}", identity.server.admin_addr.port()),
            identity,
            pki,
        })
    }

    /// A `--dev --demo` server.
    pub async fn demo() -> Self {
        Self::demo_with(|_| {}).await
    }

    /// A `--dev --demo` server with changed settings.
    pub async fn demo_with(change: impl FnOnce(&mut IdentitySettings)) -> Self {
        Self::start(Some(Seeding::Demo), change)
            .await
            .unwrap_or_else(|e| panic!("the --dev --demo Identity server did not start: {e}"))
    }

    /// The demo CA of the server's certificate (it also holds an `rs` certificate).
    pub fn pki(&self) -> &DevPki {
        &self.pki
    }

    /// The server, its issuer and admin URLs, and its demo CA (keep it alive as long as the
    /// server runs).
    pub fn into_parts(self) -> (Identity, String, String, DevPki) {
        (self.identity, self.issuer, self.admin, self.pki)
    }

    /// An HTTP client builder that trusts the server's CA.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        tls::client_builder(&self.pki)
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.identity.stop().await;
    }
}
