//! The crypto policy of every TLS listener and client of the workspace, as one rustls
//! [`CryptoProvider`] on aws-lc-rs.
//!
//! | | Offered, in preference order |
//! |---|---|
//! | Protocol | TLS 1.3 only |
//! | Cipher suites | `TLS_AES_256_GCM_SHA384`, `TLS_AES_128_GCM_SHA256` |
//! | Key exchange | `X25519MLKEM768`, `SecP256r1MLKEM768` (hybrid ML-KEM), `secp256r1`, `secp384r1` |
//!
//! Plain X25519, ChaCha20-Poly1305, the pure ML-KEM groups and every TLS 1.2 suite are left out.
//! Because the provider itself carries only TLS 1.3 suites, a configuration built from it cannot
//! negotiate TLS 1.2 even if a caller asks for it: [`crate::server_config`] and
//! [`crate::client_config`] use it, and so must anything else that builds a rustls configuration
//! (call [`provider()`] there, never `rustls::crypto::aws_lc_rs::default_provider()`).
//!
//! With the cargo feature `fips` the base is `rustls::crypto::default_fips_provider()` (aws-lc-rs
//! on the AWS-LC FIPS module) with the same filtering, and a group or suite is kept only if it
//! reports itself FIPS-approved in that build (`fips()`); see `docs/security.md` for the status
//! of each. Should the module not be in FIPS mode, nothing is approved, the provider offers
//! nothing and every configuration built from it fails: closed, never a silent non-FIPS build.
//!
//! The policy is also data ([`protocol_version_names`], [`cipher_suite_names`],
//! [`kx_group_names`], [`is_fips`]) for `version --verbose` and the admin API to print.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{CipherSuite, NamedGroup, SupportedCipherSuite};

/// The cipher suites of the policy, in the servers' order of preference (servers choose by their
/// own order, not the client's).
pub static CIPHER_SUITES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
];

/// The key exchange groups of the policy, in the clients' order of preference: hybrid ML-KEM
/// first, then the NIST curves. Our clients send a key share for the first one only.
pub static KX_GROUPS: &[&dyn SupportedKxGroup] = &[
    kx_group::X25519MLKEM768,
    kx_group::SECP256R1MLKEM768,
    kx_group::SECP256R1,
    kx_group::SECP384R1,
];

/// The crypto provider of every TLS configuration: the policy above on aws-lc-rs (the AWS-LC
/// FIPS module with the `fips` feature).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(policy_provider())
}

/// The base provider of this build: aws-lc-rs, or its FIPS module with the `fips` feature.
#[cfg(not(feature = "fips"))]
fn base_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// The base provider of this build: aws-lc-rs, or its FIPS module with the `fips` feature.
#[cfg(feature = "fips")]
fn base_provider() -> CryptoProvider {
    rustls::crypto::default_fips_provider()
}

/// Whether an algorithm may be offered in this build: always in the default build; in the `fips`
/// build only what the module reports as approved.
#[cfg(not(feature = "fips"))]
fn allowed(_fips: bool) -> bool {
    true
}

/// Whether an algorithm may be offered in this build: always in the default build; in the `fips`
/// build only what the module reports as approved.
#[cfg(feature = "fips")]
fn allowed(fips: bool) -> bool {
    fips
}

fn policy_provider() -> CryptoProvider {
    let base = base_provider();
    CryptoProvider {
        cipher_suites: CIPHER_SUITES
            .iter()
            .copied()
            .filter(|suite| allowed(suite.fips()))
            .collect(),
        kx_groups: KX_GROUPS
            .iter()
            .copied()
            .filter(|group| allowed(group.fips()))
            .collect(),
        ..base
    }
}

/// Installs the policy as the process-wide default provider, for libraries that build their
/// own rustls configuration from it (`ClientConfig::builder()`). Succeeds when the policy is
/// already installed; fails if another provider was installed first.
pub fn install_default() -> Result<(), String> {
    match policy_provider().install_default() {
        Ok(()) => Ok(()),
        Err(_) => {
            let installed = CryptoProvider::get_default()
                .ok_or("no process-wide crypto provider after installing one")?;
            let ours = policy_provider();
            let same = names(&installed.cipher_suites, |s| s.suite(), suite_name)
                == names(&ours.cipher_suites, |s| s.suite(), suite_name)
                && names(&installed.kx_groups, |g| g.name(), group_name)
                    == names(&ours.kx_groups, |g| g.name(), group_name);
            if same {
                Ok(())
            } else {
                Err(
                    "another rustls crypto provider was installed as the process default \
                     before the crypto policy"
                        .to_owned(),
                )
            }
        }
    }
}

/// The protocol versions of the policy (`["TLSv1.3"]`).
pub fn protocol_version_names() -> Vec<&'static str> {
    vec!["TLSv1.3"]
}

/// The cipher suites this build offers, in preference order, by their IANA names (RFC 8446
/// §B.4: `TLS_AES_256_GCM_SHA384`, …), as `openssl s_client` prints them.
pub fn cipher_suite_names() -> Vec<&'static str> {
    names(&policy_provider().cipher_suites, |s| s.suite(), suite_name)
}

/// The key exchange groups this build offers, in preference order, by their IANA TLS Supported
/// Groups names (`X25519MLKEM768`, `SecP256r1MLKEM768`, `secp256r1`, `secp384r1`).
pub fn kx_group_names() -> Vec<&'static str> {
    names(&policy_provider().kx_groups, |g| g.name(), group_name)
}

/// Whether every algorithm of the policy runs in an approved mode of a FIPS module
/// (`CryptoProvider::fips()`: suites, groups, signature verification, random, key loading). Only
/// ever true in the `fips` build, with the module in FIPS mode.
pub fn is_fips() -> bool {
    policy_provider().fips()
}

fn names<T, N: Copy>(
    items: &[T],
    id: impl Fn(&T) -> N,
    name: impl Fn(N) -> &'static str,
) -> Vec<&'static str> {
    items.iter().map(|item| name(id(item))).collect()
}

/// The IANA name of a TLS 1.3 cipher suite.
fn suite_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        other => other.as_str().unwrap_or("unknown"),
    }
}

/// The IANA name of a TLS supported group.
fn group_name(group: NamedGroup) -> &'static str {
    match group {
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768",
        NamedGroup::secp256r1MLKEM768 => "SecP256r1MLKEM768",
        NamedGroup::secp256r1 => "secp256r1",
        NamedGroup::secp384r1 => "secp384r1",
        NamedGroup::X25519 => "x25519",
        other => other.as_str().unwrap_or("unknown"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[cfg(not(feature = "fips"))]
    #[test]
    fn the_policy_in_the_default_build() {
        assert_eq!(
            cipher_suite_names(),
            ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            kx_group_names(),
            [
                "X25519MLKEM768",
                "SecP256r1MLKEM768",
                "secp256r1",
                "secp384r1"
            ]
        );
        assert_eq!(protocol_version_names(), ["TLSv1.3"]);
        // The non-validated module is never reported as FIPS.
        assert!(!is_fips());
    }

    #[cfg(feature = "fips")]
    #[test]
    fn the_policy_in_the_fips_build() {
        // Every group and suite of the policy is approved in the FIPS module (see
        // docs/security.md), so nothing is filtered out, and the whole provider reports FIPS.
        assert_eq!(
            cipher_suite_names(),
            ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            kx_group_names(),
            [
                "X25519MLKEM768",
                "SecP256r1MLKEM768",
                "secp256r1",
                "secp384r1"
            ]
        );
        assert!(is_fips());
    }

    #[test]
    fn tls13_suites_only_and_no_x25519_or_chacha() {
        let p = provider();
        assert!(
            p.cipher_suites
                .iter()
                .all(|s| s.version() == &rustls::version::TLS13)
        );
        assert!(
            p.cipher_suites
                .iter()
                .all(|s| s.suite() != CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
        );
        assert!(p.kx_groups.iter().all(|g| g.name() != NamedGroup::X25519));
    }

    #[test]
    fn installing_the_policy_twice_is_fine() {
        install_default().unwrap();
        install_default().unwrap();
        let installed = CryptoProvider::get_default().unwrap();
        assert_eq!(installed.kx_groups.len(), provider().kx_groups.len());
    }
}
