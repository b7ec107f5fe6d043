//! OTLP exporters over our own TLS: rustls 1.3-only client configurations from
//! `cryptoutil_tls` (aws-lc-rs), never the exporters' built-in TLS stacks.
//!
//! The SDK's batch processors and metric reader export from their own threads, outside the Tokio
//! runtime. The HTTP client therefore hands each request to the runtime it was created on, and
//! the gRPC channel (created inside the runtime) runs its connection there too.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::logs::{BatchConfigBuilder as LogBatchConfig, BatchLogProcessor};
use opentelemetry_sdk::metrics::PeriodicReader;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};
use tokio::net::TcpStream;

use crate::config::OtlpProtocol;

/// Builds the three exporters for one endpoint.
pub(super) enum Exporters {
    /// OTLP/HTTP: one client, a URL per signal.
    Http {
        client: RuntimeClient,
        base: String,
        timeout: Duration,
    },
    /// OTLP/gRPC: one channel shared by the three signals.
    Grpc {
        channel: tonic::transport::Channel,
        timeout: Duration,
    },
}

impl Exporters {
    pub(super) fn new(
        endpoint: &url::Url,
        protocol: OtlpProtocol,
        ca_file: &Path,
        timeout: Duration,
    ) -> Result<(Self, Probe), String> {
        let trust = cryptoutil_tls::TrustConfig::from_ca_files(&[ca_file.to_path_buf()])
            .map_err(|e| format!("telemetry.ca_file {}: {e}", ca_file.display()))?;
        let mut tls = cryptoutil_tls::client_config(trust, None)
            .map_err(|e| format!("telemetry: cannot build the TLS client: {e}"))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "telemetry: set up outside the async runtime".to_owned())?;
        let probe = Probe {
            connector: TlsConnector(tokio_rustls::TlsConnector::from(Arc::new(tls.clone()))),
            uri: endpoint
                .as_str()
                .parse()
                .map_err(|e| format!("telemetry.endpoint {endpoint}: {e}"))?,
        };
        match protocol {
            OtlpProtocol::HttpProtobuf => {
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(tls)
                    .https_only(true)
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .build()
                    .map_err(|e| format!("telemetry: HTTP client: {e}"))?;
                let exporters = Self::Http {
                    client: RuntimeClient { client, runtime },
                    base: endpoint.as_str().trim_end_matches('/').to_owned(),
                    timeout,
                };
                Ok((exporters, probe))
            }
            OtlpProtocol::Grpc => {
                tls.alpn_protocols = vec![b"h2".to_vec()];
                let connector = TlsConnector(tokio_rustls::TlsConnector::from(Arc::new(tls)));
                let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
                    .map_err(|e| format!("telemetry.endpoint {endpoint}: {e}"))?
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .connect_with_connector_lazy(connector);
                Ok((Self::Grpc { channel, timeout }, probe))
            }
        }
    }

    fn url(base: &str, signal: &str) -> String {
        format!("{base}/v1/{signal}")
    }

    pub(super) fn spans(&self) -> Result<SpanExporter, String> {
        match self {
            Self::Http {
                client,
                base,
                timeout,
            } => SpanExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(Self::url(base, "traces"))
                .with_timeout(*timeout)
                .build(),
            Self::Grpc { channel, timeout } => SpanExporter::builder()
                .with_tonic()
                .with_channel(channel.clone())
                .with_timeout(*timeout)
                .build(),
        }
        .map_err(|e| format!("telemetry: trace exporter: {e}"))
    }

    pub(super) fn metrics(&self) -> Result<MetricExporter, String> {
        match self {
            Self::Http {
                client,
                base,
                timeout,
            } => MetricExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(Self::url(base, "metrics"))
                .with_timeout(*timeout)
                .build(),
            Self::Grpc { channel, timeout } => MetricExporter::builder()
                .with_tonic()
                .with_channel(channel.clone())
                .with_timeout(*timeout)
                .build(),
        }
        .map_err(|e| format!("telemetry: metric exporter: {e}"))
    }

    pub(super) fn logs(&self) -> Result<LogExporter, String> {
        match self {
            Self::Http {
                client,
                base,
                timeout,
            } => LogExporter::builder()
                .with_http()
                .with_http_client(client.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(Self::url(base, "logs"))
                .with_timeout(*timeout)
                .build(),
            Self::Grpc { channel, timeout } => LogExporter::builder()
                .with_tonic()
                .with_channel(channel.clone())
                .with_timeout(*timeout)
                .build(),
        }
        .map_err(|e| format!("telemetry: log exporter: {e}"))
    }
}

/// Spans leave in batches at least every `interval`.
pub(super) fn span_processor(exporter: SpanExporter, interval: Duration) -> BatchSpanProcessor {
    BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(interval)
                .build(),
        )
        .build()
}

/// Metrics are collected and exported every `interval` (and at shutdown).
pub(super) fn metric_reader(
    exporter: MetricExporter,
    interval: Duration,
) -> PeriodicReader<MetricExporter> {
    PeriodicReader::builder(exporter)
        .with_interval(interval)
        .build()
}

/// Logs leave in batches at least every `interval`.
pub(super) fn log_processor(exporter: LogExporter, interval: Duration) -> BatchLogProcessor {
    BatchLogProcessor::builder(exporter)
        .with_batch_config(
            LogBatchConfig::default()
                .with_scheduled_delay(interval)
                .build(),
        )
        .build()
}

/// The workspace's async reqwest client, driven on the runtime it was made on (the SDK calls it
/// from its own threads).
#[derive(Debug, Clone)]
pub(super) struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

/// A TLS handshake with the collector, for the optional readiness check.
#[derive(Clone)]
pub(super) struct Probe {
    connector: TlsConnector,
    uri: http::Uri,
}

impl Probe {
    /// Connects and completes a TLS 1.3 handshake (certificate verified), then hangs up.
    pub(super) async fn handshake(mut self) -> Result<(), String> {
        use tower::Service;
        self.connector
            .call(self.uri)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// TCP + TLS 1.3 to the collector with our rustls configuration (ALPN h2 for gRPC).
#[derive(Clone)]
struct TlsConnector(tokio_rustls::TlsConnector);

type TlsIo = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsIo, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
            let host = uri
                .host()
                .ok_or_else(|| invalid("the endpoint has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|_| invalid("the endpoint's host is not a valid server name"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = tls.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}
