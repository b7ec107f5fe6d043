//! Telemetry settings: where OTLP traces, metrics and logs go. Off unless `endpoint` is set.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, Validator};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (the collector's port 4317).
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies to `<endpoint>/v1/traces`, `/v1/metrics`, `/v1/logs` (the
    /// collector's port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The protocol for `endpoint` when none is configured: gRPC on port 4317, HTTP otherwise.
    pub fn for_endpoint(endpoint: &url::Url) -> Self {
        if endpoint.port_or_known_default() == Some(4317) {
            Self::Grpc
        } else {
            Self::HttpProtobuf
        }
    }

    /// `grpc` or `http/protobuf`, as in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// OpenTelemetry export over OTLP (TLS 1.3, the collector's certificate verified against
/// `ca_file`). With no `endpoint` nothing is exported and instrumentation costs nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP endpoint, `https://host:port[/path]`, e.g.
    /// `https://otel-collector:4317` (gRPC) or `https://otel-collector:4318` (HTTP). Unset: off.
    pub endpoint: Option<url::Url>,
    /// `grpc` or `http/protobuf`. Unset: `grpc` when the endpoint's port is 4317, otherwise
    /// `http/protobuf`.
    pub protocol: Option<OtlpProtocol>,
    /// PEM bundle of the CAs that issue the collector's certificate (required with `endpoint`).
    pub ca_file: Option<PathBuf>,
    /// Resource attribute `service.name`. Unset: the product's (`cryptoutil-kms`,
    /// `cryptoutil-identity`, `cryptoutil-rs`, `cryptoutil-demo`).
    pub service_name: Option<String>,
    /// Resource attribute `service.instance.id`, e.g. the container or host name. Unset: a new
    /// UUIDv7 per process.
    pub instance_id: Option<String>,
    /// How often metrics are exported, and the longest spans and logs wait in their batch
    /// (default 10s).
    pub export_interval: HumanDuration,
    /// Time allowed for one export request (default 10s).
    pub export_timeout: HumanDuration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            protocol: None,
            ca_file: None,
            service_name: None,
            instance_id: None,
            export_interval: HumanDuration::from_secs(10),
            export_timeout: HumanDuration::from_secs(10),
        }
    }
}

impl TelemetrySettings {
    /// The protocol in effect (configured, or chosen by the endpoint's port).
    pub fn effective_protocol(&self) -> Option<OtlpProtocol> {
        let endpoint = self.endpoint.as_ref()?;
        Some(
            self.protocol
                .unwrap_or_else(|| OtlpProtocol::for_endpoint(endpoint)),
        )
    }

    /// Load-time checks.
    pub fn validate(&self, v: &mut Validator) {
        for (key, d) in [
            ("telemetry.export_interval", self.export_interval),
            ("telemetry.export_timeout", self.export_timeout),
        ] {
            v.check(
                key,
                d.get() >= std::time::Duration::from_millis(100) && d.get().as_secs() <= 3600,
                "must be between 100ms and 1h",
            );
        }
        for (key, value) in [
            ("telemetry.service_name", &self.service_name),
            ("telemetry.instance_id", &self.instance_id),
        ] {
            if let Some(value) = value {
                v.check(
                    key,
                    (1..=255).contains(&value.len()) && !value.chars().any(char::is_control),
                    "must be 1 to 255 characters without control characters",
                );
            }
        }
        let Some(endpoint) = &self.endpoint else {
            if self.protocol.is_some() || self.ca_file.is_some() {
                v.problem(
                    "telemetry.endpoint",
                    "is required when telemetry.protocol or telemetry.ca_file is set",
                );
            }
            return;
        };
        if let Err(why) = check_endpoint(endpoint, self.effective_protocol()) {
            v.problem("telemetry.endpoint", &why);
        }
        match &self.ca_file {
            None => v.problem(
                "telemetry.ca_file",
                "is required with telemetry.endpoint: the CA bundle that issued the collector's \
                 certificate (TLS is always verified)",
            ),
            Some(path) => v.check(
                "telemetry.ca_file",
                !path.as_os_str().is_empty(),
                "must not be empty",
            ),
        }
    }

    /// Start-up checks: the CA file is readable.
    pub fn validate_files(&self, v: &mut Validator) {
        if let Some(path) = &self.ca_file
            && let Err(e) = std::fs::File::open(path)
        {
            v.problem(
                "telemetry.ca_file",
                &format!("cannot read {}: {e}", path.display()),
            );
        }
    }
}

/// An OTLP endpoint: `https` (TLS 1.3 everywhere, SPEC §1), a host, no credentials, query or
/// fragment; for gRPC no path either.
pub fn check_endpoint(endpoint: &url::Url, protocol: Option<OtlpProtocol>) -> Result<(), String> {
    if endpoint.scheme() != "https" {
        return Err(format!(
            "must be an https:// URL (telemetry is sent over TLS 1.3 only), not {endpoint}"
        ));
    }
    if endpoint.host().is_none()
        || !endpoint.username().is_empty()
        || endpoint.password().is_some()
        || endpoint.query().is_some()
        || endpoint.fragment().is_some()
    {
        return Err(format!(
            "must be https://host:port[/path] without credentials, query or fragment, not {endpoint}"
        ));
    }
    if protocol == Some(OtlpProtocol::Grpc) && endpoint.path() != "/" {
        return Err(format!(
            "an OTLP/gRPC endpoint has no path (https://host:4317), not {endpoint}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn problems(settings: &TelemetrySettings) -> Vec<String> {
        let mut v = Validator::default();
        settings.validate(&mut v);
        match v.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| format!("{}: {}", p.origin, p.message))
                .collect(),
        }
    }

    fn with_endpoint(url: &str) -> TelemetrySettings {
        TelemetrySettings {
            endpoint: Some(url::Url::parse(url).unwrap()),
            ca_file: Some(PathBuf::from("/etc/cryptoutil/collector-ca.pem")),
            ..TelemetrySettings::default()
        }
    }

    #[test]
    fn off_by_default_and_valid() {
        let settings = TelemetrySettings::default();
        assert_eq!(settings.effective_protocol(), None);
        assert!(problems(&settings).is_empty());
    }

    #[test]
    fn the_protocol_follows_the_port_unless_configured() {
        let grpc = with_endpoint("https://otel-collector:4317");
        assert_eq!(grpc.effective_protocol(), Some(OtlpProtocol::Grpc));
        let http = with_endpoint("https://otel-collector:4318");
        assert_eq!(http.effective_protocol(), Some(OtlpProtocol::HttpProtobuf));
        let other = with_endpoint("https://collector.example/otlp");
        assert_eq!(other.effective_protocol(), Some(OtlpProtocol::HttpProtobuf));
        let explicit = TelemetrySettings {
            protocol: Some(OtlpProtocol::Grpc),
            ..with_endpoint("https://collector.example:9000")
        };
        assert_eq!(explicit.effective_protocol(), Some(OtlpProtocol::Grpc));
        for settings in [grpc, http, other, explicit] {
            assert!(problems(&settings).is_empty(), "{settings:?}");
        }
    }

    #[test]
    fn plain_http_paths_for_grpc_and_missing_ca_are_refused() {
        let p = problems(&with_endpoint("http://otel-collector:4318"));
        assert!(p[0].contains("https://"), "{p:?}");
        let p = problems(&with_endpoint("https://otel-collector:4317/v1"));
        assert!(p[0].contains("no path"), "{p:?}");
        let p = problems(&with_endpoint("https://user:pw@otel-collector:4318"));
        assert!(p[0].contains("without credentials"), "{p:?}");
        let no_ca = TelemetrySettings {
            ca_file: None,
            ..with_endpoint("https://otel-collector:4318")
        };
        assert!(problems(&no_ca)[0].starts_with("telemetry.ca_file"));
        let no_endpoint = TelemetrySettings {
            protocol: Some(OtlpProtocol::Grpc),
            ..TelemetrySettings::default()
        };
        assert!(problems(&no_endpoint)[0].starts_with("telemetry.endpoint"));
        let bad = TelemetrySettings {
            export_interval: HumanDuration(std::time::Duration::from_millis(10)),
            instance_id: Some(String::new()),
            ..TelemetrySettings::default()
        };
        assert_eq!(problems(&bad).len(), 2);
    }

    #[test]
    fn the_yaml_names_are_the_otlp_ones() {
        let settings: TelemetrySettings = serde_yaml_ng::from_str(
            "endpoint: https://otel-collector:4318\nprotocol: http/protobuf\nca_file: /ca.pem\n",
        )
        .unwrap();
        assert_eq!(settings.protocol, Some(OtlpProtocol::HttpProtobuf));
        assert!(serde_yaml_ng::from_str::<TelemetrySettings>("protocol: http/json\n").is_err());
        assert!(serde_yaml_ng::from_str::<TelemetrySettings>("endpont: x\n").is_err());
    }
}
