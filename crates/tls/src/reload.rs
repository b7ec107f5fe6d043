//! A server certificate that can be replaced without a restart.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::{Result, TlsError};
use crate::info::CertInfo;
use crate::pem::{leaf_info_checked, load_cert_chain, load_certified_key};
use crate::signer::{SigningKeyProvider, certified_key_with_provider};

/// How long the watcher waits for file events to settle before reloading.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(250);

#[derive(Debug)]
enum KeySource {
    File(PathBuf),
    Provider(Arc<dyn SigningKeyProvider>),
}

struct Loaded {
    key: Arc<CertifiedKey>,
    info: Arc<CertInfo>,
}

/// The server certificate, swappable at run time.
///
/// Implements [`ResolvesServerCert`]: every new handshake takes the current certificate; a
/// connection already established keeps the one it was made with. [`ReloadableCert::reload`]
/// (called by the file watcher, SIGHUP and `POST /admin/v1/reload-certs`) re-reads the files
/// and swaps atomically, or keeps the current certificate if the new one is unusable.
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_source: KeySource,
    current: ArcSwap<CertifiedKey>,
    info: ArcSwap<CertInfo>,
    reload_lock: Mutex<()>,
}

impl std::fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("cert_path", &self.cert_path)
            .field("key_source", &self.key_source)
            .field("current", &self.info.load().to_string())
            .finish()
    }
}

impl ReloadableCert {
    /// Loads `cert_path` (chain, leaf first) and `key_path` (private key) and validates them
    /// like [`ReloadableCert::reload`] does.
    pub fn load(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Result<Self> {
        Self::new(cert_path.into(), KeySource::File(key_path.into()))
    }

    /// Like [`ReloadableCert::load`] with a leaf directory's `cert.pem` / `key.pem`.
    pub fn from_leaf_paths(paths: &crate::ca::LeafPaths) -> Result<Self> {
        Self::load(paths.cert.clone(), paths.key.clone())
    }

    /// A certificate whose private key is held by a [`SigningKeyProvider`] (e.g. an HSM).
    /// Reloading re-reads only `cert_path`; the new certificate must be for the same key.
    pub fn with_key_provider(
        cert_path: impl Into<PathBuf>,
        provider: Arc<dyn SigningKeyProvider>,
    ) -> Result<Self> {
        Self::new(cert_path.into(), KeySource::Provider(provider))
    }

    fn new(cert_path: PathBuf, key_source: KeySource) -> Result<Self> {
        let loaded = Self::read(&cert_path, &key_source)?;
        tracing::info!(
            cert = %cert_path.display(),
            subject = %loaded.info.subject,
            serial = %loaded.info.serial,
            not_after = %loaded.info.not_after,
            "TLS certificate loaded"
        );
        Ok(Self {
            cert_path,
            key_source,
            current: ArcSwap::new(loaded.key),
            info: ArcSwap::new(loaded.info),
            reload_lock: Mutex::new(()),
        })
    }

    fn read(cert_path: &Path, key_source: &KeySource) -> Result<Loaded> {
        let key = match key_source {
            KeySource::File(key_path) => load_certified_key(cert_path, key_path)?,
            KeySource::Provider(p) => {
                let chain = load_cert_chain(cert_path)?;
                leaf_info_checked(cert_path, &chain)?;
                certified_key_with_provider(chain, p.clone()).map_err(|e| {
                    TlsError::KeyMismatch {
                        cert_path: cert_path.to_path_buf(),
                        key_path: PathBuf::from("<signing key provider>"),
                        reason: e.to_string(),
                    }
                })?
            }
        };
        let info = leaf_info_checked(cert_path, &key.cert)?;
        check_server_leaf(cert_path, &key.cert)?;
        Ok(Loaded {
            key,
            info: Arc::new(info),
        })
    }

    /// Re-reads and validates the certificate and key; on success new handshakes use them.
    ///
    /// Validation: the files parse, the key matches the leaf's public key, the leaf is valid
    /// now. On failure the current certificate stays in service, an `error!` line names the
    /// file and the reason, and the error is returned (for the admin route / CLI to report).
    pub fn reload(&self) -> Result<()> {
        let _guard = self
            .reload_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match Self::read(&self.cert_path, &self.key_source) {
            Ok(loaded) => {
                let old = self.info.load_full();
                tracing::info!(
                    cert = %self.cert_path.display(),
                    subject = %loaded.info.subject,
                    serial = %loaded.info.serial,
                    not_after = %loaded.info.not_after,
                    previous_serial = %old.serial,
                    "TLS certificate reloaded; new connections use it"
                );
                self.current.store(loaded.key);
                self.info.store(loaded.info);
                Ok(())
            }
            Err(e) => {
                let old = self.info.load();
                tracing::error!(
                    cert = %self.cert_path.display(),
                    error = %e,
                    kept_subject = %old.subject,
                    kept_serial = %old.serial,
                    kept_not_after = %old.not_after,
                    "TLS certificate reload refused; keeping the current certificate"
                );
                Err(e)
            }
        }
    }

    /// The certificate and key new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Facts about the current certificate (subject, serial, validity, SANs).
    pub fn info(&self) -> Arc<CertInfo> {
        self.info.load_full()
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The key file, if the key comes from a file.
    pub fn key_path(&self) -> Option<&Path> {
        match &self.key_source {
            KeySource::File(p) => Some(p),
            KeySource::Provider(_) => None,
        }
    }

    /// Watches the certificate and key files and calls [`ReloadableCert::reload`] after they
    /// change (events debounced by [`WATCH_DEBOUNCE`]). The parent directories are watched, so
    /// atomic replacement by rename is seen. Stops when the handle is dropped.
    pub fn spawn_watcher(self: Arc<Self>) -> Result<WatcherHandle> {
        let mut files: Vec<PathBuf> = vec![self.cert_path.clone()];
        if let KeySource::File(k) = &self.key_source {
            files.push(k.clone());
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in &files {
            let dir = match f.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        let names: Vec<std::ffi::OsString> = files
            .iter()
            .filter_map(|f| f.file_name().map(ToOwned::to_owned))
            .collect();

        let (tx, rx) = channel::<notify::Result<Event>>();
        let mut watcher = notify::recommended_watcher(tx).map_err(|e| TlsError::Watch {
            path: self.cert_path.clone(),
            source: e,
        })?;
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| TlsError::Watch {
                    path: dir.clone(),
                    source: e,
                })?;
        }
        let relevant = move |ev: &Event| -> bool {
            let interesting_kind = match ev.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            };
            interesting_kind
                && ev.paths.iter().any(|p| {
                    p.file_name().is_some_and(|n| {
                        names.iter().any(|w| w == n) || n.to_string_lossy().starts_with("..")
                    })
                })
        };
        let this = self.clone();
        let thread = std::thread::Builder::new()
            .name("tls-cert-watcher".to_owned())
            .spawn(move || {
                loop {
                    match rx.recv() {
                        Ok(Ok(ev)) if relevant(&ev) => {}
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "certificate file watcher error");
                            continue;
                        }
                        Err(_) => return,
                    }
                    // Debounce: wait until no event for WATCH_DEBOUNCE.
                    loop {
                        match rx.recv_timeout(WATCH_DEBOUNCE) {
                            Ok(_) => continue,
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    tracing::info!(cert = %this.cert_path.display(), "certificate files changed; reloading");
                    // reload() logs success and failure itself.
                    let _ = this.reload();
                }
            })
            .map_err(|e| TlsError::io(&self.cert_path, e))?;
        tracing::info!(dirs = ?dirs, "watching TLS certificate files");
        Ok(WatcherHandle {
            watcher: Some(watcher),
            thread: Some(thread),
        })
    }
}

/// A server certificate must not be a CA and, if it has an EKU extension, must allow serverAuth.
fn check_server_leaf(
    cert_path: &Path,
    chain: &[rustls_pki_types::CertificateDer<'_>],
) -> Result<()> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let invalid = |reason: String| TlsError::InvalidCertificate {
        path: cert_path.to_path_buf(),
        reason,
    };
    let leaf = chain
        .first()
        .ok_or_else(|| invalid("empty chain".to_owned()))?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| invalid(e.to_string()))?;
    if cert.is_ca() {
        return Err(invalid(
            "the first certificate is a CA, not a server certificate".to_owned(),
        ));
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if !(eku.value.server_auth || eku.value.any) => Err(invalid(
            "extendedKeyUsage does not allow serverAuth".to_owned(),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(invalid(format!("bad extendedKeyUsage: {e}"))),
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Keeps a certificate watcher running; dropping it stops the watcher and its thread.
pub struct WatcherHandle {
    watcher: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatcherHandle")
            .field("running", &self.watcher.is_some())
            .finish()
    }
}

impl WatcherHandle {
    /// Stops the watcher and waits for its thread to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Dropping the watcher drops the channel sender, which ends the thread's loop.
        drop(self.watcher.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WatcherHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
