//! Servers started in-process for a demo: `--dev --demo` (in-memory SQLite, dev unseal, demo
//! data), free ports, and one demo CA in a temporary directory shared by every server, so the
//! client trusts a single root. They start concurrently (seeding hashes passwords with PBKDF2,
//! the bulk of the start-up time) and stop when the demo ends.

use cryptoutil_identity::config::IdentitySettings;
use cryptoutil_identity::server::Identity;
use cryptoutil_kms::auth::settings::DEMO_INTROSPECTION_SECRET;
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_kms::server::Kms;
use cryptoutil_server::DevPki;
use cryptoutil_server::config::{Secret, ServerSettings};
use url::Url;

/// Which servers to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Products {
    /// The KMS.
    pub kms: bool,
    /// Identity.
    pub identity: bool,
    /// The KMS trusts Identity's tokens (`demo all`). Identity then starts first: the KMS needs
    /// its issuer URL, known once its port is bound.
    pub federated: bool,
}

/// An embedded server's listeners.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `https://127.0.0.1:<port>`.
    pub public_url: Url,
    /// `https://127.0.0.1:<port>` of the admin listener.
    pub admin_url: Url,
}

/// The running embedded servers and their CA. Dropping it without [`Embedded::stop`] aborts
/// them with the runtime; `stop` drains them.
#[derive(Debug)]
pub struct Embedded {
    pki: DevPki,
    kms: Option<Result<Kms, String>>,
    identity: Option<Result<Identity, String>>,
}

impl Embedded {
    /// Generates the demo CA and starts the requested servers concurrently. A server that fails
    /// to start is reported by [`Self::kms`] / [`Self::identity`] (the demo's steps then fail
    /// with the reason); only a CA that cannot be made is an error here.
    pub async fn start(products: Products) -> Result<Self, String> {
        let pki = DevPki::generate()?;
        let kms = |issuer: Option<String>| async {
            if !products.kms {
                return None;
            }
            let mut settings = KmsSettings::default();
            prepare(&mut settings.server, &pki, "kms");
            if let Some(issuer) = issuer {
                // DPoP proofs name the KMS's URL (`htu`), so the KMS must know it before it
                // listens: a port chosen now, not by the listener.
                match free_port() {
                    Ok(port) => {
                        settings.server.public.port = port;
                        settings.auth.federation.resource =
                            Some(format!("https://127.0.0.1:{port}"));
                    }
                    Err(e) => return Some(Err(format!("no free port for the KMS: {e}"))),
                }
                settings.trust_issuer(
                    &issuer,
                    Some(pki.root()),
                    Secret::new(DEMO_INTROSPECTION_SECRET),
                );
            }
            Some(
                cryptoutil_kms::server::start(
                    settings,
                    true,
                    None,
                    Some(cryptoutil_kms::server::Seeding::Demo),
                )
                .await
                .map_err(|e| e.to_string()),
            )
        };
        let identity = async {
            if !products.identity {
                return None;
            }
            let mut settings = IdentitySettings::default();
            prepare(&mut settings.server, &pki, "identity");
            // The device grant's polling interval of the in-process demo server: 1 s instead of
            // RFC 8628's 5 s default, so the demo shows a device honouring the interval without
            // waiting five seconds for it (a running server's `device.interval` is its own).
            settings.device.interval = cryptoutil_server::config::HumanDuration::from_secs(1);
            Some(
                cryptoutil_identity::server::start(
                    settings,
                    true,
                    None,
                    Some(cryptoutil_identity::server::Seeding::Demo),
                )
                .await
                .map_err(|e| e.to_string()),
            )
        };
        let (kms, identity) = if products.federated {
            let identity = identity.await;
            let issuer = match &identity {
                Some(Ok(identity)) => Some(identity.issuer()),
                _ => None,
            };
            (kms(issuer).await, identity)
        } else {
            tokio::join!(kms(None), identity)
        };
        Ok(Self { pki, kms, identity })
    }

    /// The CA certificate every embedded server chains to.
    pub fn ca_cert(&self) -> std::path::PathBuf {
        self.pki.root()
    }

    /// The KMS's listeners, or why it did not start (`None`: not requested).
    pub fn kms(&self) -> Option<Result<Endpoints, String>> {
        self.kms.as_ref().map(|started| {
            started.as_ref().map_err(Clone::clone).and_then(|kms| {
                endpoints(kms.server.public_addr.port(), kms.server.admin_addr.port())
            })
        })
    }

    /// Identity's listeners, or why it did not start (`None`: not requested).
    pub fn identity(&self) -> Option<Result<Endpoints, String>> {
        self.identity.as_ref().map(|started| {
            started.as_ref().map_err(Clone::clone).and_then(|identity| {
                endpoints(
                    identity.server.public_addr.port(),
                    identity.server.admin_addr.port(),
                )
            })
        })
    }

    /// Stops every server (concurrently) and removes the CA directory.
    pub async fn stop(self) {
        let kms = async {
            if let Some(Ok(kms)) = self.kms {
                kms.stop().await;
            }
        };
        let identity = async {
            if let Some(Ok(identity)) = self.identity {
                identity.stop().await;
            }
        };
        tokio::join!(kms, identity);
        drop(self.pki);
    }
}

/// A port free on 127.0.0.1 now (the OS's choice; another process could take it before the
/// server binds it, which start-up then reports).
fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()
        .map(|a| a.port())
}

/// Free ports, the shared demo CA, no certificate watcher (the files never change).
fn prepare(settings: &mut ServerSettings, pki: &DevPki, service: &str) {
    settings.public.port = 0;
    settings.admin.port = 0;
    settings.tls.watch = Some(false);
    pki.apply(settings, service);
}

fn endpoints(public: u16, admin: u16) -> Result<Endpoints, String> {
    let url =
        |port: u16| Url::parse(&format!("https://127.0.0.1:{port}")).map_err(|e| e.to_string());
    Ok(Endpoints {
        public_url: url(public)?,
        admin_url: url(admin)?,
    })
}
