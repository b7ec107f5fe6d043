//! `cryptoutil demo kms|identity|all` (SPEC §6): flags → [`cryptoutil_demo::Options`], then the
//! run; the exit code comes from the report (0 all passed, 1 some failed, 2 nothing passed).

use std::path::Path;
use std::time::Duration;

use cryptoutil_demo::{Credentials, DemoKind, Format, Options, Output, Secret, Verbosity};
use cryptoutil_server::config::{OtlpProtocol, TelemetrySettings, check_endpoint};

use crate::Failure;
use crate::cli::{DemoArgs, DemoCommand, OutputFormat};

/// Largest secret file read.
const MAX_SECRET_FILE: u64 = 64 * 1024;
/// Longest `--health-timeout`.
const MAX_HEALTH_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(demo: DemoCommand) -> Result<(), Failure> {
    let (kind, args) = match demo {
        DemoCommand::Kms(args) => (DemoKind::Kms, args),
        DemoCommand::Identity(args) => (DemoKind::Identity, args),
        DemoCommand::All(args) => (DemoKind::All, args),
    };
    let options = options(kind, &args)?;
    options.validate().map_err(Failure::Usage)?;
    let format = match args.output {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
        OutputFormat::Structured => Format::Structured,
    };
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let mut output = Output::stdout(kind.name(), format, verbosity, args.no_color);
    // A set-up failure means no step ran: exit 2 like "nothing passed".
    let report = runtime
        .block_on(cryptoutil_demo::run(&options, &mut output))
        .map_err(Failure::Usage)?;
    match report.exit_code() {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}

fn options(kind: DemoKind, args: &DemoArgs) -> Result<Options, Failure> {
    let mut options = Options::new(kind);
    options.fail_fast = args.fail_fast;
    options.retries = args.retry;
    options.health_timeout = humantime::parse_duration(&args.health_timeout)
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_HEALTH_TIMEOUT)
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--health-timeout {:?}: give a duration from 1s to 1h, e.g. 30s",
                args.health_timeout
            ))
        })?;
    options.kms_url = url_flag("--kms-url", args.kms_url.as_deref())?;
    options.identity_url = url_flag("--identity-url", args.identity_url.as_deref())?;
    options.kms_admin_url = url_flag("--kms-admin-url", args.kms_admin_url.as_deref())?;
    options.ca_cert.clone_from(&args.ca_cert);
    options.client_cert = args.client_cert.clone().zip(args.client_key.clone());
    options.telemetry = telemetry(args)?;
    options.credentials = Credentials {
        password: secret(
            args.password.as_deref(),
            args.password_file.as_deref(),
            "--password-file",
            || format!("{}-password", args.username),
        )?,
        username: args.username.clone(),
        second_password: secret(
            args.second_password.as_deref(),
            args.second_password_file.as_deref(),
            "--second-password-file",
            || format!("{}-password", args.second_username),
        )?,
        second_username: args.second_username.clone(),
        client_secret: secret(
            args.client_secret.as_deref(),
            args.client_secret_file.as_deref(),
            "--client-secret-file",
            || format!("{}-secret", args.client_id),
        )?,
        client_id: args.client_id.clone(),
        redirect_uri: url_flag("--redirect-uri", Some(&args.redirect_uri))?
            .map(String::from)
            .unwrap_or_default(),
        kms_client_secret: secret(
            args.kms_client_secret.as_deref(),
            args.kms_client_secret_file.as_deref(),
            "--kms-client-secret-file",
            || format!("{}-secret", args.kms_client_id),
        )?,
        kms_client_id: args.kms_client_id.clone(),
        readonly_client_secret: secret(
            args.readonly_client_secret.as_deref(),
            args.readonly_client_secret_file.as_deref(),
            "--readonly-client-secret-file",
            || format!("{}-secret", args.readonly_client_id),
        )?,
        readonly_client_id: args.readonly_client_id.clone(),
        ..Credentials::default()
    };
    Ok(options)
}

/// `--otlp-endpoint`, `--otlp-ca-cert`, `--otlp-protocol` (or the standard `OTEL_EXPORTER_OTLP_*`
/// variables) as telemetry settings; errors name the flag.
fn telemetry(args: &DemoArgs) -> Result<TelemetrySettings, Failure> {
    let mut settings = TelemetrySettings::default();
    let Some(endpoint) = url_flag("--otlp-endpoint", args.otlp_endpoint.as_deref())? else {
        if args.otlp_ca_cert.is_some() || args.otlp_protocol.is_some() {
            return Err(Failure::Usage(
                "--otlp-ca-cert and --otlp-protocol apply with --otlp-endpoint (or \
                 OTEL_EXPORTER_OTLP_ENDPOINT)"
                    .to_owned(),
            ));
        }
        return Ok(settings);
    };
    settings.protocol = match args.otlp_protocol.as_deref() {
        None => None,
        Some("grpc") => Some(OtlpProtocol::Grpc),
        Some("http/protobuf") => Some(OtlpProtocol::HttpProtobuf),
        Some(other) => {
            return Err(Failure::Usage(format!(
                "--otlp-protocol {other:?}: give grpc or http/protobuf"
            )));
        }
    };
    let protocol = settings
        .protocol
        .unwrap_or_else(|| OtlpProtocol::for_endpoint(&endpoint));
    check_endpoint(&endpoint, Some(protocol))
        .map_err(|why| Failure::Usage(format!("--otlp-endpoint {why}")))?;
    let ca = args.otlp_ca_cert.clone().ok_or_else(|| {
        Failure::Usage(
            "--otlp-ca-cert is required with --otlp-endpoint: the CA certificate that issued \
             the collector's certificate (TLS is always verified)"
                .to_owned(),
        )
    })?;
    std::fs::File::open(&ca)
        .map_err(|e| Failure::Usage(format!("--otlp-ca-cert {}: {e}", ca.display())))?;
    settings.endpoint = Some(endpoint);
    settings.ca_file = Some(ca);
    Ok(settings)
}

fn url_flag(flag: &str, value: Option<&str>) -> Result<Option<url::Url>, Failure> {
    value
        .map(|v| url::Url::parse(v).map_err(|e| Failure::Usage(format!("{flag} {v:?}: {e}"))))
        .transpose()
}

/// A secret from its flag, its file, or the demo default.
fn secret(
    value: Option<&str>,
    file: Option<&Path>,
    file_flag: &str,
    default: impl FnOnce() -> String,
) -> Result<Secret, Failure> {
    if let Some(value) = value {
        return Ok(Secret::new(value));
    }
    let Some(path) = file else {
        return Ok(Secret::new(default()));
    };
    let fail = |why: String| Failure::Usage(format!("{file_flag} {}: {why}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if size > MAX_SECRET_FILE {
        return Err(fail(format!("larger than {MAX_SECRET_FILE} bytes")));
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
    // One trailing line break (as `echo` and editors write) is not part of the secret.
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        return Err(fail("the file is empty".to_owned()));
    }
    Ok(Secret::new(trimmed))
}
