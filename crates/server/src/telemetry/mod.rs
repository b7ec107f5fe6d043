//! OpenTelemetry for the process: traces, metrics and logs exported over OTLP (gRPC or
//! HTTP/protobuf, TLS 1.3 verified against the configured CA) when `telemetry.endpoint` is set.
//!
//! The process owner (a server command, or the demo for itself and the servers it runs
//! in-process) calls [`init`] inside its Tokio runtime, hands [`Telemetry::layers`] to the
//! `tracing` subscriber ([`crate::logging::init_with_telemetry`]), and calls
//! [`Telemetry::shutdown`] before exiting. Servers flush on shutdown ([`flush`]). Instruments and
//! propagation live in `cryptoutil_telemetry`, which costs nothing until [`init`] activates it.

mod exporter;

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetrySettings;
use crate::health::ReadinessCheck;

/// Instrumentation scope of everything cryptoutil records.
const SCOPE: &str = "cryptoutil";

/// The installed providers, for [`flush`].
static INSTALLED: OnceLock<Providers> = OnceLock::new();

#[derive(Clone)]
struct Providers {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
    logger: SdkLoggerProvider,
}

/// The process's telemetry pipeline: hand its [`layers`](Self::layers) to the subscriber, and
/// [`shutdown`](Self::shutdown) it before the process exits.
pub struct Telemetry {
    providers: Providers,
    /// For messages: where the data goes.
    pub description: String,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Sets up export as `settings` say, or returns `Ok(None)` when no endpoint is configured.
/// `default_service` is the `service.name` unless the settings name one. Must run inside a Tokio
/// runtime (the exporters' connections live on it); once per process.
pub fn init(
    settings: &TelemetrySettings,
    default_service: &str,
) -> Result<Option<Telemetry>, String> {
    let (Some(endpoint), Some(protocol)) = (&settings.endpoint, settings.effective_protocol())
    else {
        return Ok(None);
    };
    if INSTALLED.get().is_some() {
        return Err("telemetry is already set up in this process".to_owned());
    }
    let ca_file = settings
        .ca_file
        .as_deref()
        .ok_or("telemetry.ca_file is required with telemetry.endpoint")?;
    let service = settings
        .service_name
        .clone()
        .unwrap_or_else(|| default_service.to_owned());
    let instance = settings
        .instance_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let resource = Resource::builder()
        .with_service_name(service.clone())
        .with_attributes([
            KeyValue::new("service.namespace", "cryptoutil"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance.clone()),
        ])
        .build();
    let (exporters, probe) =
        exporter::Exporters::new(endpoint, protocol, ca_file, settings.export_timeout.get())?;
    let interval = settings.export_interval.get();
    let providers = Providers {
        tracer: SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_processor(exporter::span_processor(exporters.spans()?, interval))
            .build(),
        meter: SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(exporter::metric_reader(exporters.metrics()?, interval))
            .build(),
        logger: SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(exporter::log_processor(exporters.logs()?, interval))
            .build(),
    };
    if INSTALLED.set(providers.clone()).is_err() {
        return Err("telemetry is already set up in this process".to_owned());
    }
    let _ = PROBE.set((probe, format!("OTLP {} to {endpoint}", protocol.as_str())));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(providers.tracer.clone());
    opentelemetry::global::set_meter_provider(providers.meter.clone());
    cryptoutil_telemetry::activate(&providers.meter.meter(SCOPE));
    Ok(Some(Telemetry {
        providers,
        description: format!(
            "OTLP {} to {endpoint} as service.name={service} service.instance.id={instance}",
            protocol.as_str()
        ),
    }))
}

impl Telemetry {
    /// The `tracing` layers that turn spans into OTLP traces (info and above) and events into
    /// OTLP logs (filtered by `log_filter`, like the JSON lines). Events of the exporters' own
    /// HTTP stack are never exported, so an export cannot feed itself.
    pub fn layers<S>(
        &self,
        log_filter: tracing_subscriber::EnvFilter,
    ) -> Vec<Box<dyn Layer<S> + Send + Sync>>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let traces = tracing_opentelemetry::layer()
            .with_tracer(self.providers.tracer.tracer(SCOPE))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(LevelFilter::INFO)
            .boxed();
        let logs = OpenTelemetryTracingBridge::new(&self.providers.logger)
            .with_filter(filter_fn(|meta| !is_export_machinery(meta.target())))
            .with_filter(log_filter)
            .boxed();
        vec![traces, logs]
    }

    /// Exports what is still buffered and stops the exporters (blocking work, done off the
    /// async threads). Errors are reported on stderr: the process is exiting anyway.
    pub async fn shutdown(self) {
        let providers = self.providers;
        let done = tokio::task::spawn_blocking(move || {
            [
                ("traces", providers.tracer.shutdown()),
                ("metrics", providers.meter.shutdown()),
                ("logs", providers.logger.shutdown()),
            ]
        })
        .await;
        if let Ok(results) = done {
            for (signal, result) in results {
                if let Err(e) = result {
                    tracing::warn!(signal, error = %e, "telemetry: final export failed");
                }
            }
        }
    }
}

/// Exports everything buffered so far (servers call it when they stop, SPEC §2); nothing when
/// telemetry is off.
pub async fn flush() {
    let Some(providers) = INSTALLED.get().cloned() else {
        return;
    };
    let _ = tokio::task::spawn_blocking(move || {
        let _ = providers.tracer.force_flush();
        let _ = providers.meter.force_flush();
        let _ = providers.logger.force_flush();
    })
    .await;
}

/// Whether telemetry export is set up in this process.
pub fn is_active() -> bool {
    INSTALLED.get().is_some()
}

/// The collector, for the readiness check, with a description of the export.
static PROBE: OnceLock<(exporter::Probe, String)> = OnceLock::new();

/// The optional readiness check `telemetry` (SPEC §2) when export is on: a TLS handshake with
/// the collector (reachable, certificate verified). Reported by `/admin/v1/readyz`, never making
/// the server unready.
pub fn readiness_check() -> Option<ReadinessCheck> {
    let (probe, description) = PROBE.get()?;
    Some(ReadinessCheck::optional("telemetry", move || {
        let probe = probe.clone();
        let description = description.clone();
        async move {
            probe
                .handshake()
                .await
                .map(|()| format!("{description}: collector reachable"))
                .map_err(|e| format!("{description}: {e}"))
        }
    }))
}

/// Targets whose events must not become OTLP logs: the exporter's own stack.
fn is_export_machinery(target: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "opentelemetry",
        "hyper",
        "h2",
        "tonic",
        "tower",
        "reqwest",
        "rustls",
        "tokio_rustls",
    ];
    PREFIXES.iter().any(|p| target.starts_with(p))
}
