//! The port-0 recipe: listeners on free ports with a certificate of a demo CA, and clients that
//! trust that CA (never an "accept invalid certificates" switch).

use cryptoutil_server::{DevPki, ServerSettings};
use cryptoutil_tls::{TrustConfig, client_config};

/// Both listeners on free ports, no client certificate on the admin listener, no certificate
/// watcher, and the certificate of `service` (`kms`, `identity`, `rs`) from `pki`.
pub fn free_ports(server: &mut ServerSettings, pki: &DevPki, service: &str) {
    server.public.port = 0;
    server.admin.port = 0;
    server.admin.require_client_cert = Some(false);
    server.tls.watch = Some(false);
    pki.apply(server, service);
}

/// A new demo CA in a temporary directory (removed when dropped).
pub fn demo_pki() -> DevPki {
    DevPki::generate().unwrap_or_else(|e| panic!("cannot generate a demo CA: {e}"))
}

/// An HTTP client builder that trusts `pki`'s root and nothing else.
pub fn client_builder(pki: &DevPki) -> reqwest::ClientBuilder {
    let trust = TrustConfig::from_ca_files(&[pki.root()])
        .unwrap_or_else(|e| panic!("cannot read the demo CA's root: {e}"));
    let config = client_config(trust, None)
        .unwrap_or_else(|e| panic!("cannot build a TLS client configuration: {e}"));
    reqwest::Client::builder().use_preconfigured_tls(config)
}
