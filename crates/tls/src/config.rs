//! rustls server and client configurations: the crypto policy of [`crate::provider`] (TLS 1.3
//! only, AES-GCM suites, hybrid ML-KEM then P-256/P-384 key exchange), explicit trust anchors.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, TlsError};
use crate::pem::{load_cert_chain, load_private_key, load_trust_anchors};
use crate::reload::ReloadableCert;

/// ALPN protocols the servers offer, in preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider used everywhere, the crypto policy (re-exported here, where the
/// configurations use it).
pub use crate::provider::provider;

/// The only protocol version accepted: TLS 1.3.
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Client certificate policy of a server.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// No client certificate is requested.
    #[default]
    None,
    /// A client certificate chaining to `trust` is required; handshakes without one fail.
    Required {
        /// The CAs client certificates must chain to (usually the demo root).
        trust: RootCertStore,
    },
    /// A client certificate is requested and, when sent, must chain to `trust`; clients without
    /// one still connect (and authenticate some other way).
    Optional {
        /// The CAs client certificates must chain to.
        trust: RootCertStore,
    },
}

impl ClientAuth {
    /// `Optional` with the trust anchors of the given PEM files.
    pub fn optional_from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        Ok(Self::Optional {
            trust: load_trust_anchors(paths)?,
        })
    }

    /// `Required` with the trust anchors of the given PEM files.
    pub fn required_from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        Ok(Self::Required {
            trust: load_trust_anchors(paths)?,
        })
    }
}

/// Builds a TLS 1.3-only server config on the crypto policy ([`provider()`]) that takes its
/// certificate from `cert_resolver` (so [`ReloadableCert::reload`] affects every new handshake)
/// and offers ALPN `h2`, `http/1.1`. The cipher suite is chosen by the policy's order
/// (`TLS_AES_256_GCM_SHA384` first), not the client's.
pub fn server_config(
    cert_resolver: Arc<ReloadableCert>,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError::rustls("server protocol versions", e))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required { trust } => {
            if trust.is_empty() {
                return Err(TlsError::NoTrustAnchors(
                    "client authentication requires at least one trust anchor".to_owned(),
                ));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(trust), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::Optional { trust } => {
            if trust.is_empty() {
                return Err(TlsError::NoTrustAnchors(
                    "client authentication requires at least one trust anchor".to_owned(),
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(trust), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert_resolver);
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// What a client trusts.
///
/// By default only the given anchors (the demo CA or a configured PEM bundle). The operating
/// system's trust store is added only when [`TrustConfig::with_system_roots`] is set to `true`
/// (default off).
#[derive(Debug, Clone)]
pub struct TrustConfig {
    anchors: RootCertStore,
    system_roots: bool,
}

impl TrustConfig {
    /// Trust exactly these anchors.
    pub fn from_roots(anchors: RootCertStore) -> Self {
        Self {
            anchors,
            system_roots: false,
        }
    }

    /// Trust the certificates in these PEM files (e.g. `DIR/ca/root.pem`).
    pub fn from_ca_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        Ok(Self::from_roots(load_trust_anchors(paths)?))
    }

    /// Also trust the operating system's trust store (default: off). Only for talking to
    /// servers outside the suite; the suite's own servers chain to the demo or configured CA.
    pub fn with_system_roots(mut self, enabled: bool) -> Self {
        self.system_roots = enabled;
        self
    }

    /// Whether the system trust store is included.
    pub fn system_roots(&self) -> bool {
        self.system_roots
    }

    /// The explicitly configured anchors.
    pub fn anchors(&self) -> &RootCertStore {
        &self.anchors
    }

    /// The final store: the anchors, plus the system store if enabled.
    pub fn into_root_store(self) -> Result<RootCertStore> {
        let mut store = self.anchors;
        if self.system_roots {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "problem while loading the system trust store");
            }
            let (added, ignored) = store.add_parsable_certificates(native.certs);
            tracing::info!(
                added,
                ignored,
                "system trust store added to the trust anchors"
            );
            if added == 0 {
                return Err(TlsError::SystemRoots(format!(
                    "no usable certificate in the system trust store ({} errors)",
                    native.errors.len()
                )));
            }
        }
        if store.is_empty() {
            return Err(TlsError::NoTrustAnchors(
                "configure the CA certificate (e.g. DIR/ca/root.pem) to trust".to_owned(),
            ));
        }
        Ok(store)
    }
}

/// A client certificate chain and key, for mTLS.
pub struct ClientIdentity {
    /// Leaf first, then intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_chain_len", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientIdentity {
    /// Loads `cert.pem` and `key.pem` (e.g. `DIR/demo/`).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        // Validates the pair the same way servers do (parse, key match, validity).
        crate::pem::load_certified_key(cert_path, key_path)?;
        Ok(Self {
            cert_chain: load_cert_chain(cert_path)?,
            key: load_private_key(key_path)?,
        })
    }
}

/// Builds a TLS 1.3-only client config on the crypto policy ([`provider()`]: its first key share
/// is `X25519MLKEM768`) with full server verification against `trust`, and
/// optionally a client certificate. No ALPN is set (the HTTP client sets what it speaks; for
/// reqwest with HTTP/2 set `alpn_protocols` to [`ALPN_PROTOCOLS`]).
pub fn client_config(
    trust: TrustConfig,
    client_identity: Option<ClientIdentity>,
) -> Result<ClientConfig> {
    let roots = trust.into_root_store()?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError::rustls("client protocol versions", e))?
        .with_root_certificates(roots);
    match client_identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => builder
            .with_client_auth_cert(id.cert_chain, id.key)
            .map_err(|e| TlsError::rustls("client certificate", e)),
    }
}

/// The common case: a client that trusts exactly the CA certificate(s) in `ca_pem`.
pub fn client_config_from_ca_file(ca_pem: &Path) -> Result<ClientConfig> {
    client_config(TrustConfig::from_ca_files(&[ca_pem])?, None)
}
