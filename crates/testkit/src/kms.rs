//! A KMS started in-process on free ports, over real TLS with a demo CA of its own.

use cryptoutil_kms::config::KmsSettings;
use cryptoutil_kms::server::{Kms, Seeding, StartError};
use cryptoutil_server::DevPki;

use crate::{logs, tls};

/// Default KMS settings with [`tls::free_ports`] for `pki`'s `kms` certificate (and test
/// logging installed).
pub fn settings(pki: &DevPki) -> KmsSettings {
    logs::init();
    let mut settings = KmsSettings::default();
    tls::free_ports(&mut settings.server, pki, "kms");
    settings
}

/// A running KMS and the demo CA its certificate comes from.
#[derive(Debug)]
pub struct KmsServer {
    /// The server.
    pub kms: Kms,
    pki: DevPki,
}

impl KmsServer {
    /// Starts a KMS (`dev`: in-memory SQLite and a random unseal key, as `--dev`) on
    /// [`settings`] after a last `change`.
    pub async fn start(
        dev: bool,
        seeding: Option<Seeding>,
        change: impl FnOnce(&mut KmsSettings),
    ) -> Result<Self, StartError> {
        let pki = tls::demo_pki();
        let mut settings = settings(&pki);
        change(&mut settings);
        let kms = cryptoutil_kms::server::start(settings, dev, None, seeding).await?;
        Ok(Self { kms, pki })
    }

    /// The demo CA of the server's certificate (it also holds a `demo` client certificate).
    pub fn pki(&self) -> &DevPki {
        &self.pki
    }

    /// The server and its demo CA, to keep alive as long as the server runs.
    pub fn into_parts(self) -> (Kms, DevPki) {
        (self.kms, self.pki)
    }

    /// The URL of `path` on the public listener.
    pub fn public_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.kms.server.public_addr.port()
        )
    }

    /// The URL of `path` on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.kms.server.admin_addr.port()
        )
    }

    /// An HTTP client builder that trusts the server's CA.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        tls::client_builder(&self.pki)
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.kms.stop().await;
    }
}
