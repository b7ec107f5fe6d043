//! CA chains and leaf certificates: generation, issuance and the on-disk layout.
//!
//! Layout written by [`init_demo_ca`] (SPEC §8):
//!
//! ```text
//! DIR/ca/root.pem            trust anchor (self-signed root CA certificate)
//! DIR/ca/policy.pem          intermediate CA(s) between root and issuing CA
//! DIR/ca/issuing.pem         the issuing CA certificate (signs the leaves)
//! DIR/ca/issuing-key.pem     the issuing CA private key, PKCS#8, mode 0600
//! DIR/ca/intermediates.pem   all non-root CA certificates, issuing CA first
//! DIR/<service>/cert.pem     leaf + chain up to, not including, the root
//! DIR/<service>/key.pem      the leaf private key, PKCS#8, mode 0600
//! ```
//!
//! The root and policy CA private keys are **not** kept: once the chain is built they are only
//! needed to issue a new issuing CA, which for a demo CA is done by generating a new demo CA.
//! Dropping them means a leaked demo directory can never mint a new intermediate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::error::{Result, TlsError};
use crate::names::validate_fqdn;
use crate::pem::{certs_to_pem, load_cert_chain, write_cert, write_key};

/// Default CA chain length: Root → Policy → Issuing.
pub const DEFAULT_CHAIN_LENGTH: usize = 3;
/// Longest CA chain accepted.
pub const MAX_CHAIN_LENGTH: usize = 8;
/// Default CA validity: 10 years.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::days(3652);
/// Default leaf validity: 397 days.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::days(397);
/// Longest leaf validity accepted: 398 days (CA/Browser Forum baseline).
pub const MAX_LEAF_VALIDITY: Duration = Duration::days(398);
/// Names every server leaf carries in addition to the requested ones (SPEC §2).
pub const ALWAYS_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The demo services and their FQDNs (SPEC §2), as `(directory, fqdn)`.
pub const DEMO_SERVICES: [(&str, &str); 3] = [
    ("kms", "kms.cryptoutil.demo.local"),
    ("identity", "identity.cryptoutil.demo.local"),
    ("rs", "rs.cryptoutil.demo.local"),
];
/// The demo client certificate's directory and common name.
pub const DEMO_CLIENT: &str = "demo";

/// How far back `notBefore` is set, to tolerate small clock differences.
const BACKDATE: Duration = Duration::minutes(5);

/// Key algorithm of a CA chain and of the leaves it issues (all FIPS 140-3 approved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (default).
    #[default]
    EcP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcP384,
    /// ECDSA on NIST P-521 with SHA-512.
    EcP521,
}

impl KeyAlgorithm {
    /// Short name: `P-256`, `P-384` or `P-521`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcP256 => "P-256",
            Self::EcP384 => "P-384",
            Self::EcP521 => "P-521",
        }
    }

    /// Parses `P-256`/`p256`/`ec-p256` style names (for CLI and config).
    pub fn from_name(s: &str) -> Result<Self> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match norm.trim_start_matches("ec") {
            "p256" | "secp256r1" | "prime256v1" => Ok(Self::EcP256),
            "p384" | "secp384r1" => Ok(Self::EcP384),
            "p521" | "secp521r1" => Ok(Self::EcP521),
            _ => Err(TlsError::UnsupportedKey(format!(
                "unknown key algorithm {s:?} (expected P-256, P-384 or P-521)"
            ))),
        }
    }

    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::EcP521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        }
    }

    /// The aws-lc-rs ASN.1 (DER signature) signing algorithm.
    pub(crate) fn aws_signing(self) -> &'static aws_lc_rs::signature::EcdsaSigningAlgorithm {
        match self {
            Self::EcP256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Self::EcP384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Self::EcP521 => &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        }
    }

    /// The TLS 1.3 signature scheme for this key.
    pub fn tls_scheme(self) -> rustls::SignatureScheme {
        match self {
            Self::EcP256 => rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
            Self::EcP384 => rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
            Self::EcP521 => rustls::SignatureScheme::ECDSA_NISTP521_SHA512,
        }
    }

    /// Detects the curve of an EC SubjectPublicKeyInfo inside a certificate.
    pub(crate) fn of_certificate(der: &CertificateDer<'_>) -> std::result::Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| format!("cannot parse certificate: {e}"))?;
        let spki = &cert.tbs_certificate.subject_pki;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string())
            .unwrap_or_default();
        match curve.as_str() {
            "1.2.840.10045.3.1.7" => Ok(Self::EcP256),
            "1.3.132.0.34" => Ok(Self::EcP384),
            "1.3.132.0.35" => Ok(Self::EcP521),
            other => Err(format!(
                "CA key is not an EC P-256/P-384/P-521 key (curve OID {other:?})"
            )),
        }
    }
}

/// Options for generating a CA chain.
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// Number of CA certificates, root included (≥ 1). 3 = Root → Policy → Issuing.
    pub chain_length: usize,
    /// Key algorithm of every CA and leaf.
    pub algorithm: KeyAlgorithm,
    /// Validity of each CA certificate.
    pub ca_validity: Duration,
    /// Prefix of the CA common names, e.g. `cryptoutil Demo` → `cryptoutil Demo Root CA`.
    pub name_prefix: String,
    /// Organization (O) put in every subject.
    pub organization: String,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            chain_length: DEFAULT_CHAIN_LENGTH,
            algorithm: KeyAlgorithm::default(),
            ca_validity: DEFAULT_CA_VALIDITY,
            name_prefix: "cryptoutil Demo".to_owned(),
            organization: "cryptoutil".to_owned(),
        }
    }
}

/// What kind of leaf to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafKind {
    /// A TLS server certificate: EKU serverAuth; SANs = `names` plus `localhost`, `127.0.0.1`
    /// and `::1`; CN = the first DNS name of `names` (or `localhost`). Entries of `names` that
    /// parse as IP addresses become IP SANs; all others must be valid FQDNs.
    Server {
        /// DNS names (and optionally IP addresses) to put in the certificate.
        names: Vec<String>,
    },
    /// A TLS client certificate: EKU clientAuth; CN = `name` (validated as an FQDN).
    Client {
        /// The client's name.
        name: String,
    },
}

/// A freshly issued leaf: its chain (leaf first, root excluded) and its private key.
pub struct IssuedLeaf {
    /// Leaf certificate followed by the intermediate CAs up to, not including, the root.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key, PKCS#8 DER.
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for IssuedLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLeaf")
            .field("cert_chain_len", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl IssuedLeaf {
    /// The chain as PEM (what goes into `cert.pem`).
    pub fn cert_pem(&self) -> String {
        certs_to_pem(&self.cert_chain)
    }

    /// The private key as PKCS#8 PEM (what goes into `key.pem`).
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::pem::pem_encode(
            "PRIVATE KEY",
            self.key.secret_pkcs8_der(),
        ))
    }

    /// The private key in the form rustls takes.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// Writes `dir/cert.pem` (0644) and `dir/key.pem` (0600 from creation on), creating `dir`.
    ///
    /// The key is written first so that a watcher that sees the new certificate finds the
    /// matching key already in place.
    pub fn write_to_dir(&self, dir: &Path) -> Result<LeafPaths> {
        let paths = LeafPaths::in_dir(dir);
        write_key(&paths.key, &self.key_pem())?;
        write_cert(&paths.cert, &self.cert_pem())?;
        Ok(paths)
    }
}

/// Where a leaf's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafPaths {
    /// `cert.pem`: leaf + chain without the root.
    pub cert: PathBuf,
    /// `key.pem`: PKCS#8 private key, mode 0600.
    pub key: PathBuf,
}

impl LeafPaths {
    /// `dir/cert.pem` and `dir/key.pem`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// The files of a CA directory (`DIR/ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPaths {
    /// The CA directory.
    pub dir: PathBuf,
    /// `root.pem`: the trust anchor.
    pub root: PathBuf,
    /// Intermediate CA certificates, one file each, root side first (e.g. `policy.pem`,
    /// `issuing.pem`). Empty for a chain of length 1.
    pub intermediates: Vec<PathBuf>,
    /// `issuing.pem`: the CA that signs leaves (same content as `root.pem` for length 1).
    pub issuing: PathBuf,
    /// `issuing-key.pem`: the issuing CA's private key, mode 0600.
    pub issuing_key: PathBuf,
    /// `intermediates.pem`: all non-root CA certificates, issuing CA first (the chain that
    /// follows a leaf in `cert.pem`; also fine as `openssl verify -untrusted`).
    pub intermediates_bundle: PathBuf,
}

impl CaPaths {
    fn new(dir: &Path, chain_length: usize) -> Self {
        let intermediates = ca_labels(chain_length)
            .into_iter()
            .skip(1)
            .map(|l| dir.join(format!("{l}.pem")))
            .collect();
        Self::with_intermediates(dir, intermediates)
    }

    fn with_intermediates(dir: &Path, intermediates: Vec<PathBuf>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            root: dir.join("root.pem"),
            intermediates,
            issuing: dir.join("issuing.pem"),
            issuing_key: dir.join("issuing-key.pem"),
            intermediates_bundle: dir.join("intermediates.pem"),
        }
    }
}

/// File labels of the CAs, root first: `root`, `policy…`, `issuing`.
fn ca_labels(n: usize) -> Vec<String> {
    let mut labels = vec!["root".to_owned()];
    match n {
        0 | 1 => {}
        2 => labels.push("issuing".to_owned()),
        3 => {
            labels.push("policy".to_owned());
            labels.push("issuing".to_owned());
        }
        _ => {
            labels.extend((1..n - 1).map(|i| format!("policy-{i}")));
            labels.push("issuing".to_owned());
        }
    }
    labels
}

fn ca_common_name(prefix: &str, label: &str) -> String {
    let title = match label {
        "root" => "Root".to_owned(),
        "issuing" => "Issuing".to_owned(),
        "policy" => "Policy".to_owned(),
        other => other.replacen("policy-", "Policy ", 1),
    };
    format!("{prefix} {title} CA")
}

/// A CA chain held in memory, able to issue leaves from its issuing CA.
///
/// Built by [`CaChain::generate`] (new chain) or [`CaChain::load`] (from a CA directory).
pub struct CaChain {
    algorithm: KeyAlgorithm,
    organization: String,
    root: CertificateDer<'static>,
    /// Non-root CA certificates, root side first (policy…, issuing).
    intermediates: Vec<CertificateDer<'static>>,
    issuing_cert: CertificateDer<'static>,
    issuing_not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CaChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaChain")
            .field("algorithm", &self.algorithm)
            .field("length", &(self.intermediates.len() + 1))
            .finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| TlsError::Signing("random number generator failed".to_owned()))?;
    // Positive and exactly 16 bytes long (RFC 5280 §4.1.2.2: ≤ 20 octets, positive).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn dn(cn: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if !organization.is_empty() {
        dn.push(DnType::OrganizationName, organization);
    }
    dn
}

impl CaChain {
    /// Generates a new chain: a self-signed root and `chain_length - 1` intermediates.
    ///
    /// Every CA has basicConstraints `CA:TRUE` (critical) with pathLen = number of CAs below
    /// it, keyUsage keyCertSign + cRLSign (critical), a SubjectKeyIdentifier and, below the
    /// root, an AuthorityKeyIdentifier. The last CA is the issuing CA.
    pub fn generate(opts: &CaOptions) -> Result<Self> {
        let n = opts.chain_length;
        if !(1..=MAX_CHAIN_LENGTH).contains(&n) {
            return Err(TlsError::InvalidChainLength(n));
        }
        if opts.ca_validity <= Duration::ZERO {
            return Err(TlsError::InvalidValidity(
                "CA validity must be positive".to_owned(),
            ));
        }
        let not_before = OffsetDateTime::now_utc() - BACKDATE;
        let not_after = not_before + opts.ca_validity;
        let labels = ca_labels(n);

        let mut parent: Option<Issuer<'static, KeyPair>> = None;
        let mut root = None;
        let mut intermediates = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let key = KeyPair::generate_for(opts.algorithm.rcgen())
                .map_err(|e| TlsError::generate(format!("{label} CA key"), e))?;
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(
                &ca_common_name(&opts.name_prefix, label),
                &opts.organization,
            );
            let path_len = u8::try_from(n - 1 - i).map_err(|_| TlsError::InvalidChainLength(n))?;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.not_before = not_before;
            params.not_after = not_after;
            params.serial_number = Some(random_serial()?);
            let cert = match &parent {
                None => params
                    .self_signed(&key)
                    .map_err(|e| TlsError::generate(format!("{label} CA certificate"), e))?,
                Some(p) => {
                    params.use_authority_key_identifier_extension = true;
                    params
                        .signed_by(&key, p)
                        .map_err(|e| TlsError::generate(format!("{label} CA certificate"), e))?
                }
            };
            let der = cert.der().clone();
            if i == 0 {
                root = Some(der.clone());
            } else {
                intermediates.push(der.clone());
            }
            parent = Some(Issuer::new(params, key));
        }
        let (Some(root), Some(issuer)) = (root, parent) else {
            return Err(TlsError::InvalidChainLength(n));
        };
        let issuing_cert = intermediates
            .last()
            .cloned()
            .unwrap_or_else(|| root.clone());
        Ok(Self {
            algorithm: opts.algorithm,
            organization: opts.organization.clone(),
            root,
            intermediates,
            issuing_cert,
            issuing_not_after: not_after,
            issuer,
        })
    }

    /// Loads a CA directory written by [`CaChain::write_to_dir`] / [`init_demo_ca`]:
    /// `root.pem`, `issuing.pem`, `issuing-key.pem` and `intermediates.pem`.
    pub fn load(ca_dir: &Path) -> Result<Self> {
        let paths = CaPaths::with_intermediates(ca_dir, Vec::new());
        let root = first_cert(&paths.root)?;
        let issuing_cert = first_cert(&paths.issuing)?;
        // intermediates.pem is issuing-first; keep root-side-first internally.
        let mut intermediates = if root == issuing_cert {
            Vec::new()
        } else {
            load_cert_chain(&paths.intermediates_bundle)?
        };
        intermediates.reverse();
        if !intermediates.is_empty() && intermediates.last() != Some(&issuing_cert) {
            return Err(TlsError::InvalidCertificate {
                path: paths.intermediates_bundle.clone(),
                reason: format!(
                    "the first certificate is not the issuing CA of {}",
                    paths.issuing.display()
                ),
            });
        }
        let algorithm = KeyAlgorithm::of_certificate(&issuing_cert).map_err(|reason| {
            TlsError::InvalidCertificate {
                path: paths.issuing.clone(),
                reason,
            }
        })?;
        let key_pem = Zeroizing::new(
            std::fs::read_to_string(&paths.issuing_key)
                .map_err(|e| TlsError::io(&paths.issuing_key, e))?,
        );
        let key =
            KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, algorithm.rcgen()).map_err(|e| {
                TlsError::KeyMismatch {
                    cert_path: paths.issuing.clone(),
                    key_path: paths.issuing_key.clone(),
                    reason: format!("cannot load the issuing CA key: {e}"),
                }
            })?;
        let info = crate::info::CertInfo::from_der(&issuing_cert).map_err(|reason| {
            TlsError::InvalidCertificate {
                path: paths.issuing.clone(),
                reason,
            }
        })?;
        // The key must belong to the issuing certificate.
        let organization = {
            use rcgen::PublicKeyData as _;
            let (_, parsed) = X509Certificate::from_der(issuing_cert.as_ref()).map_err(|e| {
                TlsError::InvalidCertificate {
                    path: paths.issuing.clone(),
                    reason: e.to_string(),
                }
            })?;
            if parsed.tbs_certificate.subject_pki.raw != key.subject_public_key_info().as_slice() {
                return Err(TlsError::KeyMismatch {
                    cert_path: paths.issuing.clone(),
                    key_path: paths.issuing_key.clone(),
                    reason: "the key's public key differs from the certificate's".to_owned(),
                });
            }
            parsed
                .subject()
                .iter_organization()
                .next()
                .and_then(|o| o.as_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let issuer = Issuer::from_ca_cert_der(&issuing_cert, key).map_err(|e| {
            TlsError::InvalidCertificate {
                path: paths.issuing.clone(),
                reason: format!("not usable as an issuer: {e}"),
            }
        })?;
        Ok(Self {
            algorithm,
            organization,
            root,
            intermediates,
            issuing_cert,
            issuing_not_after: info.not_after,
            issuer,
        })
    }

    /// The key algorithm of the chain.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The self-signed root certificate (the trust anchor).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// The issuing CA certificate (equals the root for a chain of length 1).
    pub fn issuing(&self) -> &CertificateDer<'static> {
        &self.issuing_cert
    }

    /// Non-root CA certificates, issuing CA first (the order they follow a leaf in a chain).
    pub fn chain_without_root(&self) -> Vec<CertificateDer<'static>> {
        self.intermediates.iter().rev().cloned().collect()
    }

    /// A rustls trust store holding only this chain's root.
    pub fn root_store(&self) -> Result<rustls::RootCertStore> {
        let mut store = rustls::RootCertStore::empty();
        store
            .add(self.root.clone())
            .map_err(|e| TlsError::rustls("adding the demo root", e))?;
        Ok(store)
    }

    /// Issues a leaf from the issuing CA.
    ///
    /// `validity` must be positive and at most [`MAX_LEAF_VALIDITY`] (398 days), and the leaf
    /// must not outlive the issuing CA. The leaf gets its own new key (same algorithm as the
    /// chain), basicConstraints `CA:FALSE`, keyUsage digitalSignature, the EKU of its kind,
    /// SKI and AKI. It is never self-signed.
    pub fn issue(&self, kind: &LeafKind, validity: Duration) -> Result<IssuedLeaf> {
        if validity <= Duration::ZERO {
            return Err(TlsError::InvalidValidity(
                "leaf validity must be positive".to_owned(),
            ));
        }
        if validity > MAX_LEAF_VALIDITY {
            return Err(TlsError::InvalidValidity(format!(
                "leaf validity of {} days exceeds the maximum of {} days",
                validity.whole_days(),
                MAX_LEAF_VALIDITY.whole_days()
            )));
        }
        let not_before = OffsetDateTime::now_utc() - BACKDATE;
        let not_after = not_before + validity;
        if not_after > self.issuing_not_after {
            return Err(TlsError::InvalidValidity(format!(
                "the leaf would expire ({not_after}) after its issuing CA ({})",
                self.issuing_not_after
            )));
        }

        let mut params = CertificateParams::default();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        match kind {
            LeafKind::Server { names } => {
                let (cn, sans) = server_names(names)?;
                params.distinguished_name = dn(&cn, &self.organization);
                params.subject_alt_names = sans;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            LeafKind::Client { name } => {
                validate_fqdn(name)?;
                params.distinguished_name = dn(name, &self.organization);
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let key = KeyPair::generate_for(self.algorithm.rcgen())
            .map_err(|e| TlsError::generate("leaf key", e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| TlsError::generate("leaf certificate", e))?;
        let mut cert_chain = vec![cert.der().clone()];
        cert_chain.extend(self.chain_without_root());
        let key = PrivatePkcs8KeyDer::from(key.serialize_der());
        Ok(IssuedLeaf { cert_chain, key })
    }

    /// Writes the CA files into `ca_dir` (see the module docs for the layout).
    pub fn write_to_dir(&self, ca_dir: &Path) -> Result<CaPaths> {
        let paths = CaPaths::new(ca_dir, self.intermediates.len() + 1);
        write_key(&paths.issuing_key, &self.issuer.key().serialize_pem())?;
        for (path, cert) in paths.intermediates.iter().zip(&self.intermediates) {
            write_cert(path, &certs_to_pem(std::slice::from_ref(cert)))?;
        }
        write_cert(
            &paths.issuing,
            &certs_to_pem(std::slice::from_ref(&self.issuing_cert)),
        )?;
        write_cert(
            &paths.intermediates_bundle,
            &certs_to_pem(&self.chain_without_root()),
        )?;
        write_cert(&paths.root, &certs_to_pem(std::slice::from_ref(&self.root)))?;
        Ok(paths)
    }
}

fn first_cert(path: &Path) -> Result<CertificateDer<'static>> {
    load_cert_chain(path)?
        .into_iter()
        .next()
        .ok_or_else(|| TlsError::NoCertificate {
            path: path.to_path_buf(),
        })
}

/// Validates server names and builds (CN, SANs). Adds the always-present names, dedupes.
fn server_names(names: &[String]) -> Result<(String, Vec<SanType>)> {
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let all = names
        .iter()
        .map(String::as_str)
        .chain(ALWAYS_SERVER_NAMES.iter().copied());
    for name in all {
        if let Ok(ip) = name.parse::<IpAddr>() {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
            continue;
        }
        validate_fqdn(name)?;
        let lower = name.to_ascii_lowercase();
        if !dns.contains(&lower) {
            dns.push(lower);
        }
    }
    let cn = dns
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".to_owned());
    let mut sans = Vec::with_capacity(dns.len() + ips.len());
    for d in dns {
        let ia5 = d.clone().try_into().map_err(|e| TlsError::InvalidName {
            name: d,
            reason: format!("not an IA5 string: {e}"),
        })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    Ok((cn, sans))
}

/// Options for [`init_demo_ca`].
#[derive(Debug, Clone)]
pub struct DemoCaOptions {
    /// The CA chain to generate.
    pub ca: CaOptions,
    /// Validity of the service and client leaves.
    pub leaf_validity: Duration,
    /// Replace an existing demo CA in the directory instead of failing.
    pub overwrite: bool,
    /// More server names, as `(service, name)`: a service of [`DEMO_SERVICES`] gets `name` in
    /// its certificate as well; any other service gets a server certificate of its own in
    /// `DIR/<service>/` (e.g. compose service names and a database).
    pub extra_names: Vec<(String, String)>,
}

impl Default for DemoCaOptions {
    fn default() -> Self {
        Self {
            ca: CaOptions::default(),
            leaf_validity: DEFAULT_LEAF_VALIDITY,
            overwrite: false,
            extra_names: Vec::new(),
        }
    }
}

/// One server leaf of a demo PKI: its directory name and the names it carries (first = CN).
struct PlannedLeaf {
    service: String,
    names: Vec<String>,
}

/// The server leaves [`init_demo_ca`] issues for `opts`: the [`DEMO_SERVICES`], then every other
/// service of `opts.extra_names` in order of first mention.
fn planned_server_leaves(opts: &DemoCaOptions) -> Result<Vec<PlannedLeaf>> {
    let mut leaves: Vec<PlannedLeaf> = DEMO_SERVICES
        .iter()
        .map(|(service, fqdn)| PlannedLeaf {
            service: (*service).to_owned(),
            names: vec![(*fqdn).to_owned()],
        })
        .collect();
    for (service, name) in &opts.extra_names {
        validate_service_dir(service)?;
        match leaves.iter_mut().find(|l| l.service == *service) {
            Some(leaf) => leaf.names.push(name.clone()),
            None => leaves.push(PlannedLeaf {
                service: service.clone(),
                names: vec![name.clone()],
            }),
        }
    }
    Ok(leaves)
}

/// A service name becomes a directory: one lowercase DNS label, not `ca` nor the client's.
fn validate_service_dir(service: &str) -> Result<()> {
    let ok = !service.is_empty()
        && service.len() <= crate::names::MAX_LABEL_LEN
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !service.starts_with('-')
        && !service.ends_with('-')
        && service != "ca"
        && service != DEMO_CLIENT;
    if ok {
        Ok(())
    } else {
        Err(TlsError::InvalidName {
            name: service.to_owned(),
            reason: format!(
                "a service is one lowercase label of letters, digits and hyphens, other than `ca` and `{DEMO_CLIENT}`"
            ),
        })
    }
}

/// A leaf written by [`init_demo_ca`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLeaf {
    /// Directory name under the output directory (`kms`, `identity`, `rs`, `demo`).
    pub name: String,
    /// The names a server leaf carries besides the local ones, comma-separated (the first is
    /// its CN), or the client's common name.
    pub subject_name: String,
    /// The leaf's files.
    pub paths: LeafPaths,
}

/// What [`init_demo_ca`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCa {
    /// The CA files; `ca.root` is the trust anchor clients use.
    pub ca: CaPaths,
    /// Server leaves, one per entry of [`DEMO_SERVICES`].
    pub services: Vec<DemoLeaf>,
    /// The `demo` client certificate.
    pub client: DemoLeaf,
}

impl DemoCa {
    /// The server leaf of a service (`kms`, `identity`, `rs`).
    pub fn service(&self, name: &str) -> Option<&DemoLeaf> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The trust anchor file (`DIR/ca/root.pem`).
    pub fn root_path(&self) -> &Path {
        &self.ca.root
    }
}

/// Writes a complete demo PKI into `out` (SPEC §8): the CA chain under `out/ca/`, a server leaf
/// for each of `kms`, `identity` and `rs` (FQDN `<svc>.cryptoutil.demo.local` plus the local
/// names, plus `opts.extra_names`), one for each other service of `opts.extra_names`, and a
/// `demo` client leaf. Fails if `out/ca/root.pem` exists, unless `overwrite`.
pub fn init_demo_ca(out: &Path, opts: &DemoCaOptions) -> Result<DemoCa> {
    let planned = planned_server_leaves(opts)?;
    let ca_dir = out.join("ca");
    let root_path = ca_dir.join("root.pem");
    if !opts.overwrite && root_path.exists() {
        return Err(TlsError::AlreadyExists { path: root_path });
    }
    let chain = CaChain::generate(&opts.ca)?;
    let mut services = Vec::new();
    let mut issued = Vec::new();
    for PlannedLeaf { service, names } in planned {
        let leaf = chain.issue(
            &LeafKind::Server {
                names: names.clone(),
            },
            opts.leaf_validity,
        )?;
        issued.push((service, names, leaf));
    }
    let client_leaf = chain.issue(
        &LeafKind::Client {
            name: DEMO_CLIENT.to_owned(),
        },
        opts.leaf_validity,
    )?;
    // Everything generated: now write (CA first, root last within it).
    let ca = chain.write_to_dir(&ca_dir)?;
    for (service, names, leaf) in issued {
        let paths = leaf.write_to_dir(&out.join(&service))?;
        services.push(DemoLeaf {
            name: service,
            subject_name: names.join(", "),
            paths,
        });
    }
    let client = DemoLeaf {
        name: DEMO_CLIENT.to_owned(),
        subject_name: DEMO_CLIENT.to_owned(),
        paths: client_leaf.write_to_dir(&out.join(DEMO_CLIENT))?,
    };
    tracing::info!(dir = %out.display(), algorithm = chain.algorithm().name(), "demo CA written");
    Ok(DemoCa {
        ca,
        services,
        client,
    })
}

/// Whether `out` already holds the demo PKI [`init_demo_ca`] would write with `opts`:
/// `Ok(false)` when there is no CA yet (`out/ca/root.pem` missing); `Ok(true)` when the CA
/// loads and every leaf is there, matches its key, is valid now and carries its names; an
/// [`TlsError::IncompleteDemoCa`] naming the first problem otherwise, so a partial or different
/// PKI is never silently used or replaced.
pub fn demo_ca_is_complete(out: &Path, opts: &DemoCaOptions) -> Result<bool> {
    if !out.join("ca/root.pem").exists() {
        return Ok(false);
    }
    let planned = planned_server_leaves(opts)?;
    let incomplete = |reason: String| TlsError::IncompleteDemoCa {
        dir: out.to_path_buf(),
        reason,
    };
    CaChain::load(&out.join("ca")).map_err(|e| incomplete(e.to_string()))?;
    let client = LeafPaths::in_dir(&out.join(DEMO_CLIENT));
    crate::pem::load_certified_key(&client.cert, &client.key)
        .map_err(|e| incomplete(e.to_string()))?;
    for leaf in planned {
        let paths = LeafPaths::in_dir(&out.join(&leaf.service));
        let certified = crate::pem::load_certified_key(&paths.cert, &paths.key)
            .map_err(|e| incomplete(e.to_string()))?;
        let info = certified
            .cert
            .first()
            .ok_or_else(|| incomplete(format!("no certificate in {}", paths.cert.display())))
            .and_then(|der| crate::info::CertInfo::from_der(der).map_err(&incomplete))?;
        for name in &leaf.names {
            let wanted = name
                .parse::<IpAddr>()
                .map_or_else(|_| name.to_ascii_lowercase(), |ip| ip.to_string());
            if !info
                .sans
                .iter()
                .any(|san| san.to_ascii_lowercase() == wanted)
            {
                return Err(incomplete(format!(
                    "{} does not carry the name {name}",
                    paths.cert.display()
                )));
            }
        }
    }
    Ok(true)
}

/// Issues one more leaf from an existing CA directory (as written by [`init_demo_ca`]) and
/// writes `out_dir/cert.pem` and `out_dir/key.pem`.
pub fn issue_leaf(
    ca_dir: &Path,
    out_dir: &Path,
    kind: &LeafKind,
    validity: Duration,
) -> Result<LeafPaths> {
    let chain = CaChain::load(ca_dir)?;
    let leaf = chain.issue(kind, validity)?;
    leaf.write_to_dir(out_dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(ca_labels(1), vec!["root"]);
        assert_eq!(ca_labels(2), vec!["root", "issuing"]);
        assert_eq!(ca_labels(3), vec!["root", "policy", "issuing"]);
        assert_eq!(
            ca_labels(5),
            vec!["root", "policy-1", "policy-2", "policy-3", "issuing"]
        );
        assert_eq!(ca_common_name("X", "policy-2"), "X Policy 2 CA");
    }

    #[test]
    fn key_algorithm_names() {
        assert_eq!(
            KeyAlgorithm::from_name("P-384").unwrap(),
            KeyAlgorithm::EcP384
        );
        assert_eq!(
            KeyAlgorithm::from_name("ec-p521").unwrap(),
            KeyAlgorithm::EcP521
        );
        assert_eq!(
            KeyAlgorithm::from_name("prime256v1").unwrap(),
            KeyAlgorithm::EcP256
        );
        assert!(KeyAlgorithm::from_name("rsa").is_err());
    }

    #[test]
    fn validity_limits() {
        let ca = CaChain::generate(&CaOptions {
            chain_length: 1,
            ..CaOptions::default()
        })
        .unwrap();
        let kind = LeafKind::Client {
            name: "demo".into(),
        };
        assert!(ca.issue(&kind, Duration::days(398)).is_ok());
        let e = ca.issue(&kind, Duration::days(399)).unwrap_err();
        assert!(e.to_string().contains("398"), "{e}");
        assert!(ca.issue(&kind, Duration::ZERO).is_err());
    }

    #[test]
    fn chain_length_limits() {
        for n in [0, MAX_CHAIN_LENGTH + 1] {
            let e = CaChain::generate(&CaOptions {
                chain_length: n,
                ..CaOptions::default()
            })
            .unwrap_err();
            assert!(matches!(e, TlsError::InvalidChainLength(_)));
        }
    }

    #[test]
    fn bad_server_name_is_refused() {
        let ca = CaChain::generate(&CaOptions {
            chain_length: 1,
            ..CaOptions::default()
        })
        .unwrap();
        let e = ca
            .issue(
                &LeafKind::Server {
                    names: vec!["bad_name.example".into()],
                },
                DEFAULT_LEAF_VALIDITY,
            )
            .unwrap_err();
        assert!(e.to_string().contains("bad_name.example"), "{e}");
    }

    #[test]
    fn server_names_always_include_local() {
        let (cn, sans) = server_names(&["KMS.example".into(), "10.0.0.1".into()]).unwrap();
        assert_eq!(cn, "kms.example");
        assert_eq!(sans.len(), 5);
        let (cn, sans) = server_names(&[]).unwrap();
        assert_eq!(cn, "localhost");
        assert_eq!(sans.len(), 3);
    }
}
