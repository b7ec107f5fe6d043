//! `cryptoutil kms server start`, `identity server start`, `identity rs start`: settings from
//! files, environment and flags, the `--dev` PKI, the product's start, the ready file, then
//! serving until a signal or `POST /admin/v1/shutdown`.

use std::path::Path;

use cryptoutil_identity::config::{IdentitySettings, ResourceServerSettings};
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_server::DevPki;
use cryptoutil_server::config::{
    ConfigSources, LoggingSettings, ServerSettings, Settings, TelemetrySettings, Validator,
};
use cryptoutil_server::telemetry::Telemetry;
use serde_yaml_ng::Value;

use super::config::load;
use crate::Failure;
use crate::cli::ServerStartArgs;

pub fn start_kms(args: &ServerStartArgs) -> Result<(), Failure> {
    let mut settings: KmsSettings = load_for_start(args)?;
    let runtime = runtime()?;
    let telemetry = observability(
        &runtime,
        &settings.telemetry,
        &settings.logging,
        "cryptoutil-kms",
    )?;
    let outcome = (|| {
        trust_issuer_flags(args, &mut settings)?;
        if args.dev {
            cryptoutil_kms::server::dev_resource(&mut settings).map_err(Failure::Runtime)?;
        }
        let dev_pki = dev_pki_for(args, &mut settings.server, "kms")?;
        runtime.block_on(run_kms(args, settings, dev_pki))
    })();
    finish(&runtime, telemetry, outcome)
}

async fn run_kms(
    args: &ServerStartArgs,
    settings: KmsSettings,
    dev_pki: Option<DevPki>,
) -> Result<(), Failure> {
    let seeding = if args.reset_demo {
        Some(cryptoutil_kms::server::Seeding::ResetDemo)
    } else if args.demo {
        Some(cryptoutil_kms::server::Seeding::Demo)
    } else {
        None
    };
    let kms = cryptoutil_kms::server::start(settings, args.dev, dev_pki, seeding)
        .await
        .map_err(|e| match e {
            cryptoutil_kms::server::StartError::Config(m) => Failure::Usage(m),
            cryptoutil_kms::server::StartError::NewerSchema(m) => newer_schema(&m),
            other => Failure::Runtime(other.to_string()),
        })?;
    let ca_cert = kms.ca_cert().map(Path::to_path_buf);
    if let Err(failure) = write_ready_file(
        args,
        kms.server.public_addr,
        kms.server.admin_addr,
        ca_cert.as_deref(),
    ) {
        kms.stop().await;
        return Err(failure);
    }
    kms.run_until_signal().await;
    Ok(())
}

/// A database schema newer than this binary: exit 2 (the deployment points an old release at a
/// newer database: a configuration error, SPEC §8). Other database failures exit 1.
fn newer_schema(message: &str) -> Failure {
    Failure::Usage(format!("database: {message}"))
}

/// `--trust-issuer URL [--trust-issuer-ca FILE]` (SPEC §8). The KMS introspects as
/// `kms-introspection-client`; its secret is the demo's public one only with `--demo`,
/// `--reset-demo` or `--dev`, otherwise the Docker secret
/// `/run/secrets/kms-introspection-client-secret`.
fn trust_issuer_flags(args: &ServerStartArgs, settings: &mut KmsSettings) -> Result<(), Failure> {
    use cryptoutil_kms::auth::settings::{DEMO_INTROSPECTION_SECRET, SECRET_FILE_INTROSPECTION};
    use cryptoutil_server::config::Secret;
    let Some(issuer) = &args.trust_issuer else {
        return Ok(());
    };
    let demo = args.demo || args.reset_demo || args.dev;
    let secret = if demo {
        tracing::warn!(
            "--trust-issuer with --demo/--dev: introspecting with the demo's public \
             kms-introspection-client secret (DEMO ONLY)"
        );
        Secret::new(DEMO_INTROSPECTION_SECRET)
    } else {
        Secret::parse(SECRET_FILE_INTROSPECTION).map_err(|e| {
            Failure::Usage(format!(
                "--trust-issuer: the introspection secret of kms-introspection-client: {e} \
                 (outside --demo/--dev it comes from that Docker secret file, or configure \
                 auth.federation.issuers)"
            ))
        })?
    };
    settings.trust_issuer(issuer, args.trust_issuer_ca.clone(), secret);
    let mut v = Validator::default();
    settings.validate(&mut v);
    v.finish().map_err(|e| Failure::Usage(e.to_string()))
}

pub fn start_identity(args: &ServerStartArgs) -> Result<(), Failure> {
    refuse_kms_only_flags(args, "identity server start")?;
    let mut settings: IdentitySettings = load_for_start(args)?;
    let runtime = runtime()?;
    let telemetry = observability(
        &runtime,
        &settings.telemetry,
        &settings.logging,
        "cryptoutil-identity",
    )?;
    let outcome = dev_pki_for(args, &mut settings.server, "identity")
        .and_then(|dev_pki| runtime.block_on(run_identity(args, settings, dev_pki)));
    finish(&runtime, telemetry, outcome)
}

async fn run_identity(
    args: &ServerStartArgs,
    settings: IdentitySettings,
    dev_pki: Option<DevPki>,
) -> Result<(), Failure> {
    use cryptoutil_identity::server::{Seeding, StartError};
    let seeding = if args.reset_demo {
        Some(Seeding::ResetDemo)
    } else if args.demo {
        Some(Seeding::Demo)
    } else {
        None
    };
    let identity = cryptoutil_identity::server::start(settings, args.dev, dev_pki, seeding)
        .await
        .map_err(|e| match e {
            StartError::Config(m) => Failure::Usage(m),
            StartError::NewerSchema(m) => newer_schema(&m),
            other => Failure::Runtime(other.to_string()),
        })?;
    let ca_cert = identity.ca_cert().map(Path::to_path_buf);
    if let Err(failure) = write_ready_file(
        args,
        identity.server.public_addr,
        identity.server.admin_addr,
        ca_cert.as_deref(),
    ) {
        identity.stop().await;
        return Err(failure);
    }
    identity.run_until_signal().await;
    Ok(())
}

pub fn start_rs(args: &ServerStartArgs) -> Result<(), Failure> {
    use cryptoutil_identity::resource_server::ISSUER_REQUIRED;
    let mut settings: ResourceServerSettings = load_for_start(args)?;
    if settings.identity.issuer.is_none() {
        return Err(Failure::Usage(ISSUER_REQUIRED.to_owned()));
    }
    let runtime = runtime()?;
    let telemetry = observability(
        &runtime,
        &settings.telemetry,
        &settings.logging,
        "cryptoutil-rs",
    )?;
    let outcome = dev_pki_for(args, &mut settings.server, "rs")
        .and_then(|dev_pki| runtime.block_on(run_rs(args, settings, dev_pki)));
    finish(&runtime, telemetry, outcome)
}

async fn run_rs(
    args: &ServerStartArgs,
    settings: ResourceServerSettings,
    dev_pki: Option<DevPki>,
) -> Result<(), Failure> {
    use cryptoutil_identity::resource_server::StartError;
    let rs = cryptoutil_identity::resource_server::start(settings, args.dev, dev_pki)
        .await
        .map_err(|e| match e {
            StartError::Config(m) | StartError::Server(m) => Failure::Usage(m),
        })?;
    let ca_cert = rs.ca_cert().map(Path::to_path_buf);
    if let Err(failure) = write_ready_file(
        args,
        rs.server.public_addr,
        rs.server.admin_addr,
        ca_cert.as_deref(),
    ) {
        rs.stop().await;
        return Err(failure);
    }
    rs.run_until_signal().await;
    Ok(())
}

/// Telemetry (when `telemetry.endpoint` is set) and logging for a server command; inside the
/// runtime, since the exporters' connections live on it.
fn observability(
    runtime: &tokio::runtime::Runtime,
    telemetry: &TelemetrySettings,
    logging: &LoggingSettings,
    service: &str,
) -> Result<Option<Telemetry>, Failure> {
    let mut v = Validator::default();
    telemetry.validate_files(&mut v);
    v.finish().map_err(|e| Failure::Usage(e.to_string()))?;
    let _entered = runtime.enter();
    let telemetry =
        cryptoutil_server::telemetry::init(telemetry, service).map_err(Failure::Usage)?;
    cryptoutil_server::logging::init_with_telemetry(logging, telemetry.as_ref());
    if let Some(t) = &telemetry {
        tracing::info!(telemetry = %t.description, "telemetry export on");
    }
    Ok(telemetry)
}

/// Exports what telemetry still holds, writes the last log lines, then returns the command's outcome.
fn finish(
    runtime: &tokio::runtime::Runtime,
    telemetry: Option<Telemetry>,
    outcome: Result<(), Failure>,
) -> Result<(), Failure> {
    if let Some(telemetry) = telemetry {
        runtime.block_on(telemetry.shutdown());
    }
    cryptoutil_server::logging::flush();
    outcome
}

/// Loads the product's settings from files, environment and the port flags.
fn load_for_start<T: Settings>(args: &ServerStartArgs) -> Result<T, Failure> {
    if (args.demo || args.reset_demo) && T::ENV_PREFIX == "RS" {
        return Err(Failure::Usage(
            "the sample resource server has no demo data: --demo and --reset-demo apply to \
             `kms server start` and `identity server start`"
                .to_owned(),
        ));
    }
    let mut overrides = Vec::new();
    if T::ENV_PREFIX == "RS" {
        // The resource server trusts one issuer: the flags override `identity.*`.
        if let Some(issuer) = &args.trust_issuer {
            overrides.push(("identity.issuer".to_owned(), Value::from(issuer.as_str())));
        }
        if let Some(ca) = &args.trust_issuer_ca {
            overrides.push((
                "identity.ca_file".to_owned(),
                Value::from(ca.display().to_string()),
            ));
        }
    } else if args.trust_issuer.is_some() && T::ENV_PREFIX != "KMS" {
        return Err(Failure::Usage(
            "--trust-issuer applies to `kms server start` and `identity rs start`".to_owned(),
        ));
    }
    if let Some(port) = args.public_port {
        overrides.push(("server.public.port".to_owned(), Value::from(port)));
    }
    if let Some(port) = args.admin_port {
        overrides.push(("server.admin.port".to_owned(), Value::from(port)));
    }
    let sources = ConfigSources::from_process(args.config.clone(), T::FILE_NAME, overrides);
    load(&sources)
}

/// In `--dev` mode without configured certificates: a fresh demo PKI for this run. Then the
/// certificate files are checked (start-up validation).
fn dev_pki_for(
    args: &ServerStartArgs,
    settings: &mut ServerSettings,
    name: &str,
) -> Result<Option<DevPki>, Failure> {
    let dev_pki = if args.dev && settings.tls.cert_file.is_none() {
        let pki = DevPki::generate().map_err(Failure::Runtime)?;
        pki.apply(settings, name);
        Some(pki)
    } else {
        None
    };
    let mut v = Validator::default();
    settings.validate_files(&mut v);
    v.finish().map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(dev_pki)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Writes `{public_url, admin_url, ca_cert}` for scripts and tests (`--ready-file`).
fn write_ready_file(
    args: &ServerStartArgs,
    public: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    ca_cert: Option<&Path>,
) -> Result<(), Failure> {
    let Some(path) = &args.ready_file else {
        return Ok(());
    };
    let ready = serde_json::json!({
        "public_url": format!("https://127.0.0.1:{}", public.port()),
        "admin_url": format!("https://127.0.0.1:{}", admin.port()),
        "ca_cert": ca_cert.map(|p| p.display().to_string()),
    });
    write_atomically(path, &ready.to_string()).map_err(|e| {
        Failure::Runtime(format!(
            "cannot write the ready file {}: {e}",
            path.display()
        ))
    })
}

/// Writes via a temporary file and a rename, so readers never see a partial file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn refuse_kms_only_flags(args: &ServerStartArgs, command: &str) -> Result<(), Failure> {
    if args.trust_issuer.is_some() || args.trust_issuer_ca.is_some() {
        return Err(Failure::Usage(format!(
            "--trust-issuer and --trust-issuer-ca apply to `cryptoutil kms server start` and `cryptoutil identity rs start`, not `cryptoutil {command}`"
        )));
    }
    Ok(())
}
