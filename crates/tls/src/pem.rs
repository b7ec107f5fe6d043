//! PEM files: atomic writes with explicit modes, and loading of chains, keys and trust anchors.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{Result, TlsError};
use crate::info::CertInfo;

/// Mode of private key files: owner read/write only.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Mode of certificate files: world readable.
pub const CERT_FILE_MODE: u32 = 0o644;

/// Writes `contents` to `path` atomically with the given Unix `mode`.
///
/// The data goes to a new temporary file in the same directory, created with `mode` (so a
/// key is never readable by others, not even for a moment), synced, then renamed over `path`.
/// Parent directories are created. A watcher sees one rename, never a half-written file.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| TlsError::io(&dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| {
        TlsError::io(
            path,
            std::io::Error::other("random number generator failed"),
        )
    })?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{file_name}.{nonce}.tmp"));

    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(TlsError::io(path, e));
    }
    Ok(())
}

/// Writes a private key file (mode 0600 from creation on).
pub(crate) fn write_key(path: &Path, pem: &str) -> Result<()> {
    write_atomic(path, pem.as_bytes(), KEY_FILE_MODE)
}

/// Writes a certificate file (mode 0644).
pub(crate) fn write_cert(path: &Path, pem: &str) -> Result<()> {
    write_atomic(path, pem.as_bytes(), CERT_FILE_MODE)
}

/// PEM-encodes certificates, in order.
pub fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
        .collect()
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| TlsError::io(path, e))
}

/// Loads all certificates of a PEM file, in file order (a chain: leaf first).
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let data = read_file(path)?;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(&data) {
        let (kind, der) = item.map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let key = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            _ => {
                // Not a key: wipe it anyway, it may be anything.
                drop(Zeroizing::new(der));
                continue;
            }
        };
        return Ok(key);
    }
    Err(TlsError::NoPrivateKey {
        path: path.to_path_buf(),
    })
}

/// Loads a certificate chain and its private key and checks that they belong together.
///
/// Checks: both files parse, the chain is not empty, the key matches the leaf's public key
/// (rustls [`CertifiedKey::keys_match`]), and the leaf is valid now (not expired, not yet
/// valid). Used at start-up and by [`crate::ReloadableCert::reload`].
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>> {
    let chain = load_cert_chain(cert_path)?;
    let key = load_private_key(key_path)?;
    leaf_info_checked(cert_path, &chain)?;
    let provider = crate::provider::provider();
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::KeyMismatch {
                cert_path: cert_path.to_path_buf(),
                key_path: key_path.to_path_buf(),
                reason: format!("unusable private key: {e}"),
            })?;
    let ck = CertifiedKey::new(chain, signing_key);
    ck.keys_match().map_err(|e| TlsError::KeyMismatch {
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(ck))
}

/// Parses the leaf of `chain` and checks it is valid now.
pub(crate) fn leaf_info_checked(path: &Path, chain: &[CertificateDer<'_>]) -> Result<CertInfo> {
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: path.to_path_buf(),
    })?;
    let info = CertInfo::from_der(leaf).map_err(|reason| TlsError::InvalidCertificate {
        path: path.to_path_buf(),
        reason,
    })?;
    let now = time::OffsetDateTime::now_utc();
    if now > info.not_after {
        return Err(TlsError::NotValidNow {
            path: path.to_path_buf(),
            reason: format!("expired at {}", info.not_after),
        });
    }
    if now < info.not_before {
        return Err(TlsError::NotValidNow {
            path: path.to_path_buf(),
            reason: format!("not valid before {}", info.not_before),
        });
    }
    Ok(info)
}

/// Loads trust anchors from one or more PEM files (each may hold several certificates).
///
/// Fails if a file is unreadable, holds no certificate, or a certificate is not usable as a
/// trust anchor. The result is the only trust the rustls configs of this crate use (unless the
/// system store is explicitly enabled, see [`crate::TrustConfig::with_system_roots`]).
pub fn load_trust_anchors<P: AsRef<Path>>(paths: &[P]) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for path in paths {
        let path = path.as_ref();
        for cert in load_cert_chain(path)? {
            store.add(cert).map_err(|e| TlsError::InvalidCertificate {
                path: path.to_path_buf(),
                reason: format!("not usable as a trust anchor: {e}"),
            })?;
        }
    }
    if store.is_empty() {
        return Err(TlsError::NoTrustAnchors(
            "no trust anchor file was given".to_owned(),
        ));
    }
    Ok(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn key_written_with_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/key.pem");
        write_key(&p, "x").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Overwriting keeps 0600 (new file renamed over the old one).
        write_key(&p, "y").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&p).unwrap(), "y");
    }

    #[test]
    fn missing_files_name_the_path() {
        let e = load_cert_chain(Path::new("/nonexistent/cert.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        fs::write(&p, "nothing").unwrap();
        let e = load_private_key(&p).unwrap_err();
        assert!(matches!(e, TlsError::NoPrivateKey { .. }), "{e}");
        let e = load_cert_chain(&p).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
    }
}
