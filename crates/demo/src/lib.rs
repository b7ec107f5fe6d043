//! Demo orchestration: `cryptoutil demo kms|identity|all` (SPEC §6).
//!
//! A demo is a list of [`runner::Step`]s run in order against one [`context::RunContext`]: the
//! servers (started in-process by [`embedded`], or running elsewhere), an HTTPS client that
//! trusts only the demo CA and retries transient failures ([`http`]), the [`credentials`], and
//! each demo's state. A step that fails says why with a [`step_error::StepError`]. [`run`] starts
//! what is needed, runs the steps, stops the servers and reports through [`output`].
//!
//! Adding a demo: write a module with `pub const STEPS: &[Step]` (unique step names; `needs`
//! lists earlier steps whose results a step uses) and a state struct (its `state` module) in
//! [`context::RunContext`], then add a [`DemoKind`] variant naming its products and steps.

pub mod audit;
pub mod context;
pub mod credentials;
mod dpop;
pub mod embedded;
pub mod federation_demo;
pub mod html;
pub mod http;
pub mod identity_demo;
pub mod kms_demo;
pub mod output;
pub mod runner;
pub mod step_error;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cryptoutil_server::config::{TelemetrySettings, Validator};
use tracing::Instrument;
use url::Url;

pub use credentials::{Credentials, Secret};
pub use embedded::Products;
pub use output::{Format, Output, Verbosity};
pub use runner::{Report, Step};

use crate::context::{Env, RunContext, Target};
use crate::embedded::{Embedded, Endpoints};
use crate::http::{Http, RetryPolicy};
use crate::runner::RunOptions;

/// The demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoKind {
    /// `demo kms`.
    Kms,
    /// `demo identity`.
    Identity,
    /// `demo all`: the KMS federated to Identity.
    All,
}

impl DemoKind {
    /// `kms`, `identity`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kms => "kms",
            Self::Identity => "identity",
            Self::All => "all",
        }
    }

    /// The servers the demo needs.
    pub fn products(self) -> Products {
        match self {
            Self::Kms => Products {
                kms: true,
                ..Products::default()
            },
            Self::Identity => Products {
                identity: true,
                ..Products::default()
            },
            Self::All => Products {
                kms: true,
                identity: true,
                federated: true,
            },
        }
    }

    /// Its steps, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Self::Kms => kms_demo::STEPS,
            Self::Identity => identity_demo::STEPS,
            Self::All => federation_demo::STEPS,
        }
    }
}

/// Everything a run needs (the CLI's flags, parsed).
#[derive(Debug, Clone)]
pub struct Options {
    /// Which demo.
    pub kind: DemoKind,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Retries of transient failures per request.
    pub retries: u32,
    /// How long to wait for each server to become healthy.
    pub health_timeout: Duration,
    /// A running KMS instead of an in-process one.
    pub kms_url: Option<Url>,
    /// A running Identity server instead of an in-process one.
    pub identity_url: Option<Url>,
    /// The running KMS's admin listener (readiness and the audit trail), with `kms_url`.
    pub kms_admin_url: Option<Url>,
    /// The CA certificate of the running servers.
    pub ca_cert: Vec<PathBuf>,
    /// Client certificate and key presented to admin listeners of running servers.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Credentials (default: the canonical demo data).
    pub credentials: Credentials,
    /// OTLP export of the demo's traces, metrics and logs, and those of its in-process servers
    /// (off unless an endpoint is set).
    pub telemetry: TelemetrySettings,
}

impl Options {
    /// The defaults of SPEC §6 for `kind`: embedded servers, retry 3, 30 s health timeout.
    pub fn new(kind: DemoKind) -> Self {
        Self {
            kind,
            fail_fast: false,
            retries: 3,
            health_timeout: Duration::from_secs(30),
            kms_url: None,
            identity_url: None,
            kms_admin_url: None,
            ca_cert: Vec::new(),
            client_cert: None,
            credentials: Credentials::default(),
            telemetry: TelemetrySettings::default(),
        }
    }

    /// Usage errors: URLs for servers the demo does not use, non-HTTPS URLs, a running server
    /// without `--ca-cert`, or `--ca-cert` without one.
    pub fn validate(&self) -> Result<(), String> {
        let products = self.kind.products();
        let demo = self.kind.name();
        for (flag, url, used) in [
            ("--kms-url", &self.kms_url, products.kms),
            ("--identity-url", &self.identity_url, products.identity),
            ("--kms-admin-url", &self.kms_admin_url, products.kms),
        ] {
            let Some(url) = url else { continue };
            if !used {
                return Err(format!("{flag} does not apply to `demo {demo}`"));
            }
            if url.scheme() != "https" || url.host().is_none() {
                return Err(format!("{flag} must be an https:// URL, not {url}"));
            }
            if url.path() != "/" || url.query().is_some() {
                return Err(format!(
                    "{flag} is the server's base URL (https://host:port), not {url}"
                ));
            }
        }
        if products.federated && self.kms_url.is_some() != self.identity_url.is_some() {
            return Err(format!(
                "`demo {demo}` takes both --kms-url and --identity-url or neither: the KMS must \
                 trust the Identity server the demo talks to"
            ));
        }
        if self.kms_admin_url.is_some() && self.kms_url.is_none() {
            return Err(
                "--kms-admin-url goes with --kms-url (a running KMS); an in-process KMS's admin \
                 listener is known to the demo"
                    .to_owned(),
            );
        }
        let mut v = Validator::default();
        self.telemetry.validate(&mut v);
        self.telemetry.validate_files(&mut v);
        v.finish().map_err(|e| e.to_string())?;
        let external = self.kms_url.is_some() || self.identity_url.is_some();
        if let Some((cert, key)) = &self.client_cert {
            if !external {
                return Err(
                    "--client-cert applies to running servers' admin listeners (--kms-admin-url)"
                        .to_owned(),
                );
            }
            http::check_readable(cert, "cannot read --client-cert")?;
            http::check_readable(key, "cannot read --client-key")?;
        }
        match (self.ca_cert.as_slice(), external) {
            ([], true) => Err(
                "--ca-cert is required with --kms-url or --identity-url: the demo trusts only \
                 the CA you name (e.g. the demo CA's ca/root.pem)"
                    .to_owned(),
            ),
            ([_, ..], false) => Err(
                "--ca-cert applies to running servers (--kms-url, --identity-url); in-process \
                 servers use a demo CA of their own"
                    .to_owned(),
            ),
            (files, true) => files
                .iter()
                .try_for_each(|ca| http::check_readable(ca, "cannot read --ca-cert")),
            ([], false) => Ok(()),
        }
    }
}

/// Runs the demo: starts the in-process servers it needs, runs every step, stops the servers,
/// and writes the report through `output`. `Err` is a usage or set-up error (nothing ran).
///
/// With telemetry configured, the whole run is one trace (`demo <kind>`, a child span per step)
/// whose context every request carries, and everything is exported before this returns.
pub async fn run(options: &Options, output: &mut Output) -> Result<Report, String> {
    options.validate()?;
    let telemetry = cryptoutil_server::telemetry::init(&options.telemetry, "cryptoutil-demo")?;
    let products = options.kind.products();
    let audited = products.kms && products.federated && options.kms_url.is_none();
    if audited || telemetry.is_some() {
        // The KMS's audit events are checked by the last step of `demo all`.
        audit::keep_in_process_events(telemetry.as_ref());
    }
    if let Some(t) = &telemetry {
        output.note(&format!("telemetry: {}", t.description));
    }
    let span = if telemetry.is_some() {
        tracing::info_span!("demo", otel.name = %format!("demo {}", options.kind.name()))
    } else {
        tracing::Span::none()
    };
    let report = run_demo(options, output).instrument(span).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    report
}

async fn run_demo(options: &Options, output: &mut Output) -> Result<Report, String> {
    let started = Instant::now();
    let admin_identity = match &options.client_cert {
        Some((cert, key)) => Some(
            cryptoutil_tls::ClientIdentity::load(cert, key)
                .map_err(|e| format!("cannot use --client-cert/--client-key: {e}"))?,
        ),
        None => None,
    };
    let products = options.kind.products();
    let embed = Products {
        kms: products.kms && options.kms_url.is_none(),
        identity: products.identity && options.identity_url.is_none(),
        federated: products.federated,
    };
    let embedded = if embed.kms || embed.identity {
        output.preparing(&format!(
            "Starting {} in-process (SQLite in memory, demo CA in a temporary directory, free ports)",
            match (embed.kms, embed.identity) {
                (true, true) => "the KMS and Identity",
                (true, false) => "the KMS",
                _ => "Identity",
            }
        ));
        let starting = Instant::now();
        let embedded = Embedded::start(embed).await?;
        output.note(&format!(
            "in-process servers started in {}",
            http::humanize(starting.elapsed())
        ));
        Some(embedded)
    } else {
        None
    };
    let mut ca_files: Vec<PathBuf> = options.ca_cert.clone();
    ca_files.extend(embedded.as_ref().map(Embedded::ca_cert));
    let http = match Http::new(&ca_files, admin_identity, RetryPolicy::new(options.retries)) {
        Ok(http) => http,
        Err(e) => {
            if let Some(embedded) = embedded {
                embedded.stop().await;
            }
            return Err(e);
        }
    };
    let targets = (|| {
        let kms = products
            .kms
            .then(|| {
                target(
                    "KMS",
                    options.kms_url.as_ref(),
                    options.kms_admin_url.as_ref(),
                    embedded.as_ref().and_then(Embedded::kms),
                )
            })
            .transpose()?;
        let identity = products
            .identity
            .then(|| {
                target(
                    "Identity server",
                    options.identity_url.as_ref(),
                    None,
                    embedded.as_ref().and_then(Embedded::identity),
                )
            })
            .transpose()?;
        Ok::<_, String>((kms, identity))
    })();
    let (kms, identity) = match targets {
        Ok(targets) => targets,
        Err(e) => {
            if let Some(embedded) = embedded {
                embedded.stop().await;
            }
            return Err(e);
        }
    };
    for target in kms.iter().chain(identity.iter()) {
        let how = if target.unavailable.is_some() {
            "failed to start"
        } else if target.in_process {
            "in-process"
        } else {
            "running"
        };
        output.note(&format!("{}: {} ({how})", target.label, target.public_url));
    }
    if let Some(embedded) = &embedded {
        output.note(&format!("demo CA: {}", embedded.ca_cert().display()));
    }
    let mut ctx = RunContext::new(Env {
        http,
        kms,
        identity,
        credentials: options.credentials.clone(),
        health_timeout: options.health_timeout,
    });
    let mut report = runner::run(
        options.kind.name(),
        options.kind.steps(),
        &mut ctx,
        RunOptions {
            fail_fast: options.fail_fast,
        },
        output,
        started,
    )
    .await;
    // Close the demo's connections before the servers drain.
    drop(ctx);
    if let Some(embedded) = embedded {
        embedded.stop().await;
    }
    report.duration = started.elapsed();
    output.finish(&report);
    Ok(report)
}

/// A target from a URL flag, or from an embedded server (started or not).
fn target(
    label: &'static str,
    url: Option<&Url>,
    admin_url: Option<&Url>,
    embedded: Option<Result<Endpoints, String>>,
) -> Result<Target, String> {
    Ok(match (url, embedded) {
        (Some(url), _) => Target {
            label,
            public_url: url.clone(),
            admin_url: admin_url.cloned(),
            in_process: false,
            unavailable: None,
        },
        (None, Some(Ok(endpoints))) => Target {
            label,
            public_url: endpoints.public_url,
            admin_url: Some(endpoints.admin_url),
            in_process: true,
            unavailable: None,
        },
        (None, Some(Err(why))) => Target {
            label,
            public_url: placeholder_url()?,
            admin_url: None,
            in_process: true,
            unavailable: Some(format!("the in-process {label} did not start: {why}")),
        },
        (None, None) => Target {
            label,
            public_url: placeholder_url()?,
            admin_url: None,
            in_process: true,
            unavailable: Some(format!("no {label} was started")),
        },
    })
}

/// The URL shown for a server that is not there (never contacted: its steps fail first).
fn placeholder_url() -> Result<Url, String> {
    Url::parse("https://unavailable.invalid/").map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Every demo has the SPEC §6 number of steps (`all`: SPEC's 13 and issue 24's DPoP and
    /// delegation steps; `identity`: SPEC's 10 and issue 27's registration and device grant),
    /// unique names, and needs only earlier steps.
    #[test]
    fn steps_follow_the_spec_and_depend_only_on_earlier_steps() {
        for (kind, count) in [
            (DemoKind::Kms, 12),
            (DemoKind::Identity, 16),
            (DemoKind::All, 20),
        ] {
            let names: Vec<&str> = kind.steps().iter().map(|s| s.name).collect();
            assert_eq!(names.len(), count, "{}", kind.name());
            for (i, step) in kind.steps().iter().enumerate() {
                assert!(!names[..i].contains(&step.name), "{} twice", step.name);
                for need in step.needs {
                    assert!(names[..i].contains(need), "{} needs {need}", step.name);
                }
            }
        }
    }

    #[test]
    fn usage_errors_are_caught_before_anything_starts() {
        let mut o = Options::new(DemoKind::Kms);
        assert!(o.validate().is_ok());
        o.identity_url = Some(Url::parse("https://127.0.0.1:8082").unwrap());
        assert!(
            o.validate()
                .unwrap_err()
                .contains("--identity-url does not apply")
        );
        o.identity_url = None;
        o.kms_url = Some(Url::parse("http://127.0.0.1:8081").unwrap());
        assert!(o.validate().unwrap_err().contains("https://"));
        o.kms_url = Some(Url::parse("https://127.0.0.1:8081").unwrap());
        assert!(o.validate().unwrap_err().contains("--ca-cert is required"));
        o.ca_cert = vec![PathBuf::from("/nonexistent/root.pem")];
        assert!(o.validate().unwrap_err().contains("/nonexistent/root.pem"));
        o.kms_url = None;
        assert!(o.validate().unwrap_err().contains("--ca-cert applies"));
        let mut o = Options::new(DemoKind::Identity);
        o.identity_url = Some(Url::parse("https://127.0.0.1:8082/oauth2").unwrap());
        assert!(o.validate().unwrap_err().contains("base URL"));
    }
}
