//! TLS: demo CA chains, leaf certificates, TLS 1.3-only rustls configs and certificate reload.
//!
//! - [`ca`]: generate a CA chain (default Root → Policy → Issuing, EC P-256), issue server and
//!   client leaves, write the demo PKI layout ([`init_demo_ca`]) and issue more leaves later
//!   ([`issue_leaf`]).
//! - [`pem`]: load chains, keys ([`load_certified_key`]) and trust anchors
//!   ([`load_trust_anchors`]); key files are written with mode 0600 from creation on.
//! - [`config`]: [`server_config`] and [`client_config`], TLS 1.3 only, aws-lc-rs
//!   ([`provider()`](provider::provider), the one crypto provider).
//! - [`module`]: [`CryptoModule`] (AWS-LC or AWS-LC FIPS, its version, FIPS mode, the TLS
//!   policy) and [`require_fips_mode`](module::require_fips_mode), the FIPS build's start-up check.
//! - [`reload`]: [`ReloadableCert`], the server's swappable certificate, and its file watcher.
//! - [`signer`]: [`SigningKeyProvider`], the extension point for keys the process cannot
//!   read (PKCS#11 plugs in there).
//!
//! See `crates/tls/README.md` for the file layout and the decisions.

pub mod ca;
pub mod config;
pub mod error;
pub mod info;
pub mod module;
pub mod names;
pub mod pem;
pub mod provider;
pub mod reload;
pub mod signer;

pub use ca::{
    CaChain, CaOptions, CaPaths, DemoCa, DemoCaOptions, DemoLeaf, IssuedLeaf, KeyAlgorithm,
    LeafKind, LeafPaths, demo_ca_is_complete, init_demo_ca, issue_leaf,
};
pub use config::{
    ClientAuth, ClientIdentity, TrustConfig, client_config, client_config_from_ca_file,
    server_config,
};
pub use error::{Result, TlsError};
pub use info::CertInfo;
pub use module::CryptoModule;
pub use names::validate_fqdn;
pub use pem::{load_cert_chain, load_certified_key, load_private_key, load_trust_anchors};
pub use reload::{ReloadableCert, WatcherHandle};
pub use signer::{
    InMemoryEcdsaKey, ProviderSigningKey, SigningKeyProvider, certified_key_with_provider,
};

/// Re-exported so users name the same rustls, rcgen-free types this crate uses.
pub use rustls;
pub use rustls_pki_types;
pub use time::Duration;
