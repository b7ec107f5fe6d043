//! Turns [`TlsSettings`](crate::config::TlsSettings) into the rustls configurations of the two
//! listeners, with a reloadable certificate (admin API, SIGHUP, file watcher).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoutil_tls::{
    ClientAuth, DemoCaOptions, ReloadableCert, WatcherHandle, init_demo_ca, server_config,
};

use crate::config::ServerSettings;
use crate::{ReloadFn, TlsSetup};

/// The TLS state of a running server. Keep it alive as long as the server runs (it owns the
/// file watcher and, in `--dev` mode, the temporary demo CA directory).
#[derive(Debug)]
pub struct TlsRuntime {
    /// The configurations handed to [`crate::start`].
    pub setup: TlsSetup,
    /// The server certificate, reloadable.
    pub cert: Arc<ReloadableCert>,
    /// The CA certificate clients must trust, when known (always in `--dev` mode).
    pub ca_cert: Option<PathBuf>,
    _watcher: Option<WatcherHandle>,
    _dev_dir: Option<tempfile::TempDir>,
}

/// A demo PKI written to a temporary directory for `--dev` mode: root, intermediates, and
/// certificates for every service and the `demo` client. Removed when dropped.
#[derive(Debug)]
pub struct DevPki {
    dir: tempfile::TempDir,
}

impl DevPki {
    /// Generates a fresh demo CA in a new temporary directory.
    pub fn generate() -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("cryptoutil-dev-ca-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory for the dev CA: {e}"))?;
        init_demo_ca(dir.path(), &DemoCaOptions::default())
            .map_err(|e| format!("cannot generate the dev CA: {e}"))?;
        Ok(Self { dir })
    }

    /// The directory (`ca/`, `kms/`, `identity/`, `rs/`, `demo/`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The trust anchor clients use.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("ca/root.pem")
    }

    /// Points `settings.tls` at this PKI's files for `service` (`kms`, `identity`, `rs`).
    pub fn apply(&self, settings: &mut ServerSettings, service: &str) {
        let tls = &mut settings.tls;
        tls.cert_file = Some(self.dir.path().join(service).join("cert.pem"));
        tls.key_file = Some(self.dir.path().join(service).join("key.pem"));
        tls.client_ca_file.get_or_insert_with(|| self.root());
        tls.ca_file.get_or_insert_with(|| self.root());
    }
}

/// Builds the TLS runtime. `dev` relaxes one thing only: the admin listener does not require a
/// client certificate unless `server.admin.require_client_cert` says so.
pub fn build(
    settings: &ServerSettings,
    dev: bool,
    dev_pki: Option<DevPki>,
) -> Result<TlsRuntime, String> {
    let tls = &settings.tls;
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(
            "server.tls.cert_file and server.tls.key_file are required (or start with --dev for a generated demo CA)"
                .to_owned(),
        );
    };
    let cert = Arc::new(ReloadableCert::load(cert_file, key_file).map_err(|e| e.to_string())?);

    let require_client_cert = settings.admin.require_client_cert.unwrap_or(!dev);
    let admin_auth = if require_client_cert {
        let Some(client_ca) = &tls.client_ca_file else {
            return Err("the admin listener requires client certificates (the default outside --dev), so server.tls.client_ca_file must name the CA bundle that issues them; or set server.admin.require_client_cert: false".to_owned());
        };
        ClientAuth::required_from_files(&[client_ca]).map_err(|e| e.to_string())?
    } else {
        ClientAuth::None
    };
    let public_auth = if settings.public.request_client_cert {
        let Some(client_ca) = &tls.client_ca_file else {
            return Err("server.public.request_client_cert needs server.tls.client_ca_file (the CA bundle that issues client certificates)".to_owned());
        };
        ClientAuth::optional_from_files(&[client_ca]).map_err(|e| e.to_string())?
    } else {
        ClientAuth::None
    };
    let public = server_config(cert.clone(), public_auth).map_err(|e| e.to_string())?;
    let admin = server_config(cert.clone(), admin_auth).map_err(|e| e.to_string())?;

    let watcher = if tls.watch.unwrap_or(true) {
        Some(cert.clone().spawn_watcher().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let reload_cert = cert.clone();
    let reload: ReloadFn = Arc::new(move || {
        reload_cert.reload().map_err(|e| e.to_string())?;
        let info = reload_cert.info();
        Ok(format!(
            "subject {}, serial {}, valid until {}",
            info.subject, info.serial, info.not_after
        ))
    });
    let ca_cert = dev_pki
        .as_ref()
        .map(DevPki::root)
        .or_else(|| tls.ca_file.clone());
    Ok(TlsRuntime {
        setup: TlsSetup {
            public,
            admin,
            reload: Some(reload),
        },
        cert,
        ca_cert,
        _watcher: watcher,
        _dev_dir: dev_pki.map(|p| p.dir),
    })
}
