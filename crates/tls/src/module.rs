//! The cryptographic module this build runs on, and the start-up check of its FIPS mode.
//!
//! [`CryptoModule::current`] reads what the linked AWS-LC says about itself at run time (its
//! version string, its FIPS module version, whether it is in FIPS mode) and the TLS policy of
//! [`provider()`](crate::provider::provider). `cryptoutil version --verbose` prints it and the
//! KMS admin listener serves it (`GET /admin/v1/crypto`). [`require_fips_mode`] is what a FIPS
//! build runs before anything else: no server starts on a module that is not in FIPS mode or
//! fails its self-tests.

use serde::Serialize;

/// Whether this binary was built with the cargo feature `fips`.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// The cryptographic module and the TLS policy built on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CryptoModule {
    /// `AWS-LC` or `AWS-LC FIPS` (the FIPS module of `aws-lc-fips-sys`).
    pub module: &'static str,
    /// The linked AWS-LC's version, as the library reports it at run time (e.g. `4.2.0`).
    pub version: String,
    /// The FIPS module version (a number per FIPS branch, e.g. 4), when the library is a FIPS
    /// module build; `None` otherwise.
    pub fips_module_version: Option<u32>,
    /// Built with the cargo feature `fips`.
    pub fips_build: bool,
    /// The module reports that it runs in FIPS mode (`FIPS_mode() == 1`).
    pub fips_mode: bool,
    /// What every TLS listener and client of the process negotiates.
    pub tls: TlsPolicy,
}

/// The TLS policy of [`provider()`](crate::provider::provider), by IANA names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsPolicy {
    /// Protocol versions (TLS 1.3 only).
    pub versions: Vec<&'static str>,
    /// Cipher suites, in order of preference.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups, in order of preference.
    pub kx_groups: Vec<String>,
    /// rustls says every suite, group and primitive of the provider is FIPS-approved
    /// (`CryptoProvider::fips()`).
    pub fips: bool,
}

impl CryptoModule {
    /// What the running process uses.
    #[must_use]
    pub fn current() -> Self {
        let fips_module_version = aws_lc_rs::fips_version();
        Self {
            module: if fips_module_version.is_some() {
                "AWS-LC FIPS"
            } else {
                "AWS-LC"
            },
            version: aws_lc_rs::awslc_version().to_owned(),
            fips_module_version,
            fips_build: FIPS_BUILD,
            fips_mode: aws_lc_rs::try_fips_mode().is_ok(),
            tls: TlsPolicy::current(),
        }
    }

    /// `AWS-LC FIPS 4.2.0 (FIPS module version 4)` or `AWS-LC 5.1.0`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.fips_module_version {
            Some(v) => format!("{} {} (FIPS module version {v})", self.module, self.version),
            None => format!("{} {}", self.module, self.version),
        }
    }
}

impl TlsPolicy {
    /// The policy of the one crypto provider.
    #[must_use]
    pub fn current() -> Self {
        let provider = crate::provider::provider();
        Self {
            versions: vec!["TLSv1.3"],
            // The configurations are TLS 1.3 only: a TLS 1.2 suite of the provider is never used.
            cipher_suites: provider
                .cipher_suites
                .iter()
                .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
                .map(|s| name_of(s.suite().as_str(), s.suite()))
                .collect(),
            kx_groups: provider
                .kx_groups
                .iter()
                .map(|g| name_of(g.name().as_str(), g.name()))
                .collect(),
            fips: provider.fips(),
        }
    }
}

/// The registered name, or the debug form of an unnamed code point.
fn name_of(name: Option<&'static str>, value: impl core::fmt::Debug) -> String {
    name.map_or_else(|| format!("{value:?}"), str::to_owned)
}

/// The start-up check of a FIPS build: the module must say it is in FIPS mode and pass its
/// known-answer self-tests on demand. Outside a FIPS build there is nothing to check.
///
/// # Errors
/// Why the process must not start (the message names the failed check).
pub fn require_fips_mode() -> Result<(), String> {
    if !FIPS_BUILD {
        return Ok(());
    }
    check_fips(aws_lc_rs::try_fips_mode(), || {
        aws_lc_rs::try_fips_self_test().map_err(|_| "a known-answer self-test failed")
    })
}

/// The decision of [`require_fips_mode`], apart from the module so its refusals can be tested.
fn check_fips(
    mode: Result<(), &'static str>,
    self_test: impl FnOnce() -> Result<(), &'static str>,
) -> Result<(), String> {
    mode.map_err(|e| {
        format!(
            "this is a FIPS build but the AWS-LC FIPS module is not in FIPS mode ({e}); refusing \
             to start"
        )
    })?;
    self_test().map_err(|e| {
        format!("the AWS-LC FIPS module failed its self-tests ({e}); refusing to start")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_module_describes_itself_truthfully() {
        let m = CryptoModule::current();
        assert!(!m.version.is_empty());
        assert_eq!(m.fips_build, cfg!(feature = "fips"));
        // The FIPS module is linked exactly in the FIPS build, and it is then in FIPS mode.
        assert_eq!(m.fips_module_version.is_some(), cfg!(feature = "fips"));
        assert_eq!(m.fips_mode, cfg!(feature = "fips"));
        assert_eq!(
            m.module,
            if cfg!(feature = "fips") {
                "AWS-LC FIPS"
            } else {
                "AWS-LC"
            }
        );
        assert!(m.describe().starts_with(m.module));
        // The TLS policy is the provider's, by name.
        let provider = crate::provider::provider();
        assert!(!m.tls.cipher_suites.is_empty());
        assert_eq!(m.tls.kx_groups.len(), provider.kx_groups.len());
        assert!(m.tls.cipher_suites.iter().all(|s| s.starts_with("TLS13_")));
        assert_eq!(m.tls.fips, provider.fips());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["fips_mode"], m.fips_mode);
        assert!(json["tls"]["kx_groups"].is_array());
    }

    #[test]
    fn the_start_up_check_passes_here_and_refuses_a_module_out_of_fips_mode() {
        require_fips_mode().unwrap();
        let refused = check_fips(Err("FIPS mode not enabled!"), || Ok(())).unwrap_err();
        assert!(refused.contains("not in FIPS mode"), "{refused}");
        assert!(refused.contains("refusing to start"), "{refused}");
        let refused = check_fips(Ok(()), || Err("a known-answer self-test failed")).unwrap_err();
        assert!(refused.contains("self-tests"), "{refused}");
        check_fips(Ok(()), || Ok(())).unwrap();
        // A self-test is not even run when the mode check fails.
        check_fips(Err("x"), || {
            panic!("self-test run after a failed mode check")
        })
        .unwrap_err();
    }
}
