//! Human-readable facts about a certificate, for logs, the admin API and the CLI.

use std::fmt;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The facts about a certificate that logs and operators care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject distinguished name (RFC 4514 form).
    pub subject: String,
    /// Issuer distinguished name (RFC 4514 form).
    pub issuer: String,
    /// Serial number, lowercase hex with `:` separators.
    pub serial: String,
    /// Start of the validity period.
    pub not_before: OffsetDateTime,
    /// End of the validity period.
    pub not_after: OffsetDateTime,
    /// DNS and IP subject alternative names, in certificate order.
    pub sans: Vec<String>,
}

impl CertInfo {
    /// Parses a DER certificate. The error is a human-readable reason.
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("cannot parse X.509 certificate: {e}"))?;
        let not_before =
            OffsetDateTime::from_unix_timestamp(cert.validity().not_before.timestamp())
                .map_err(|e| format!("bad notBefore: {e}"))?;
        let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|e| format!("bad notAfter: {e}"))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => {
                            let mut a = [0u8; 4];
                            a.copy_from_slice(ip);
                            sans.push(std::net::IpAddr::from(a).to_string());
                        }
                        16 => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(ip);
                            sans.push(std::net::IpAddr::from(a).to_string());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Ok(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before,
            not_after,
            sans,
        })
    }
}

impl fmt::Display for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject=\"{}\" serial={} notAfter={}",
            self.subject, self.serial, self.not_after
        )
    }
}
