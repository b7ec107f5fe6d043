//! Telemetry end to end: an in-process OTLP receiver (OTLP/HTTP protobuf and OTLP/gRPC, over
//! TLS 1.3 with a demo CA of its own) receives the traces, metrics and logs of real `cryptoutil`
//! processes, and the tests check names, attributes, resources and trace linkage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use std::collections::HashMap;
use std::convert::Infallible;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::StreamBody;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, span::SpanKind};
use prost::Message;
use serde_json::Value;

use common::{ServerProcess, cryptoutil, https_client, start_server_with_env, wait_for_exit};

// ---------------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------------

/// What arrived, and over which transport (`http` or `grpc`).
#[derive(Default)]
struct Received {
    traces: Vec<ResourceSpans>,
    metrics: Vec<ResourceMetrics>,
    logs: Vec<ResourceLogs>,
    transports: Vec<&'static str>,
}

type Shared = Arc<Mutex<Received>>;

/// An OTLP collector stand-in on a free port, over HTTPS with its own demo CA.
struct Receiver {
    url: String,
    ca: PathBuf,
    data: Shared,
    runtime: tokio::runtime::Runtime,
    server: Option<cryptoutil_server::RunningServer>,
    _tls: cryptoutil_server::TlsRuntime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data = Shared::default();
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        let ca = pki.root();
        let mut settings = cryptoutil_server::ServerSettings::default();
        settings.tls.watch = Some(false);
        pki.apply(&mut settings, "rs");
        let tls = cryptoutil_server::tls_setup::build(&settings, true, Some(pki)).unwrap();
        let router = Router::new()
            .route("/v1/traces", post(http_traces))
            .route("/v1/metrics", post(http_metrics))
            .route("/v1/logs", post(http_logs))
            .route(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                post(grpc_traces),
            )
            .route(
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                post(grpc_metrics),
            )
            .route(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                post(grpc_logs),
            )
            .with_state(data.clone());
        let spec = cryptoutil_server::ServerSpec {
            name: "otlp-receiver",
            settings,
            public: router,
            admin_extra: Router::new(),
            checks: Vec::new(),
            tls: tls.setup.clone(),
        };
        let server = runtime.block_on(cryptoutil_server::start(spec)).unwrap();
        Self {
            url: format!("https://127.0.0.1:{}", server.public_addr.port()),
            ca,
            data,
            runtime,
            server: Some(server),
            _tls: tls,
        }
    }

    fn take(&self) -> Received {
        std::mem::take(&mut *self.data.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            self.runtime.block_on(server.wait());
        }
    }
}

fn decode<M: Message + Default>(body: &[u8]) -> Result<M, StatusCode> {
    M::decode(body).map_err(|_| StatusCode::BAD_REQUEST)
}

fn http_ok() -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response()
}

async fn http_traces(State(data): State<Shared>, body: Bytes) -> Result<Response, StatusCode> {
    let request: ExportTraceServiceRequest = decode(&body)?;
    let mut data = data.lock().unwrap();
    data.traces.extend(request.resource_spans);
    data.transports.push("http");
    Ok(http_ok())
}

async fn http_metrics(State(data): State<Shared>, body: Bytes) -> Result<Response, StatusCode> {
    let request: ExportMetricsServiceRequest = decode(&body)?;
    let mut data = data.lock().unwrap();
    data.metrics.extend(request.resource_metrics);
    data.transports.push("http");
    Ok(http_ok())
}

async fn http_logs(State(data): State<Shared>, body: Bytes) -> Result<Response, StatusCode> {
    let request: ExportLogsServiceRequest = decode(&body)?;
    let mut data = data.lock().unwrap();
    data.logs.extend(request.resource_logs);
    data.transports.push("http");
    Ok(http_ok())
}

/// The one message of a unary gRPC request: 1 byte "compressed" flag (must be 0), 4 bytes
/// big-endian length, the message.
fn grpc_message(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, StatusCode> {
    if headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|ct| !ct.as_bytes().starts_with(b"application/grpc"))
    {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let [0, a, b, c, d, rest @ ..] = body else {
        return Err(StatusCode::BAD_REQUEST);
    };
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    if rest.len() != len {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(rest.to_vec())
}

/// A unary gRPC success: an empty response message, then the `grpc-status: 0` trailer.
fn grpc_ok() -> Response {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = vec![
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
        Ok(Frame::trailers(trailers)),
    ];
    let mut response = Response::new(Body::new(StreamBody::new(futures::stream::iter(frames))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

async fn grpc_traces(
    State(data): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, StatusCode> {
    let request: ExportTraceServiceRequest = decode(&grpc_message(&headers, &body)?)?;
    let mut data = data.lock().unwrap();
    data.traces.extend(request.resource_spans);
    data.transports.push("grpc");
    Ok(grpc_ok())
}

async fn grpc_metrics(
    State(data): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, StatusCode> {
    let request: ExportMetricsServiceRequest = decode(&grpc_message(&headers, &body)?)?;
    let mut data = data.lock().unwrap();
    data.metrics.extend(request.resource_metrics);
    data.transports.push("grpc");
    Ok(grpc_ok())
}

async fn grpc_logs(
    State(data): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, StatusCode> {
    let request: ExportLogsServiceRequest = decode(&grpc_message(&headers, &body)?)?;
    let mut data = data.lock().unwrap();
    data.logs.extend(request.resource_logs);
    data.transports.push("grpc");
    Ok(grpc_ok())
}

// ---------------------------------------------------------------------------------------------
// Reading what arrived
// ---------------------------------------------------------------------------------------------

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref())?)))
        .collect()
}

/// One span as the tests look at it.
#[derive(Debug, Clone)]
struct SpanView {
    service: String,
    name: String,
    kind: i32,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_id: Vec<u8>,
    attributes: HashMap<String, String>,
}

fn resource_of(
    resource: Option<&opentelemetry_proto::tonic::resource::v1::Resource>,
) -> HashMap<String, String> {
    resource
        .map(|r| attributes(&r.attributes))
        .unwrap_or_default()
}

fn spans(received: &Received) -> Vec<SpanView> {
    let mut out = Vec::new();
    for rs in &received.traces {
        let resource = resource_of(rs.resource.as_ref());
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                out.push(SpanView {
                    service: service.clone(),
                    name: span.name.clone(),
                    kind: span.kind,
                    trace_id: span.trace_id.clone(),
                    span_id: span.span_id.clone(),
                    parent_id: span.parent_span_id.clone(),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    out
}

/// Every resource (its attributes) that sent anything, by `service.name`.
fn resources(received: &Received) -> HashMap<String, HashMap<String, String>> {
    let traces = received
        .traces
        .iter()
        .map(|r| resource_of(r.resource.as_ref()));
    let metrics = received
        .metrics
        .iter()
        .map(|r| resource_of(r.resource.as_ref()));
    let logs = received
        .logs
        .iter()
        .map(|r| resource_of(r.resource.as_ref()));
    traces
        .chain(metrics)
        .chain(logs)
        .filter_map(|attrs| Some((attrs.get("service.name")?.clone(), attrs)))
        .collect()
}

/// The data points of metric `name` from `service`: their attributes (and, for histograms and
/// sums, a positive count or value).
fn metric_points(received: &Received, service: &str, name: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    for rm in &received.metrics {
        if resource_of(rm.resource.as_ref())
            .get("service.name")
            .map(String::as_str)
            != Some(service)
        {
            continue;
        }
        for sm in &rm.scope_metrics {
            for m in sm.metrics.iter().filter(|m| m.name == name) {
                match &m.data {
                    Some(metric::Data::Histogram(h)) => {
                        out.extend(
                            h.data_points
                                .iter()
                                .filter(|p| p.count > 0)
                                .map(|p| attributes(&p.attributes)),
                        );
                    }
                    Some(metric::Data::Sum(s)) => {
                        out.extend(
                            s.data_points
                                .iter()
                                .filter(|p| {
                                    matches!(
                                        p.value,
                                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) if v > 0
                                    )
                                })
                                .map(|p| attributes(&p.attributes)),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// The log records of `service`: (body, attributes, trace id).
fn log_records(
    received: &Received,
    service: &str,
) -> Vec<(String, HashMap<String, String>, Vec<u8>)> {
    let mut out = Vec::new();
    for rl in &received.logs {
        if resource_of(rl.resource.as_ref())
            .get("service.name")
            .map(String::as_str)
            != Some(service)
        {
            continue;
        }
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                out.push((
                    text(record.body.as_ref()).unwrap_or_default(),
                    attributes(&record.attributes),
                    record.trace_id.clone(),
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// `POST /admin/v1/shutdown` (which flushes telemetry), then waits for the process to exit.
fn shut_down(mut server: ServerProcess) {
    let url = format!("{}/admin/v1/shutdown", server.url("admin_url"));
    let response = https_client(&server.ca_cert(), None)
        .post(url)
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let status = wait_for_exit(&mut server.child);
    assert!(status.success(), "server exited with {status}");
}

fn readyz(server: &ServerProcess) -> Value {
    let url = format!("{}/admin/v1/readyz", server.url("admin_url"));
    https_client(&server.ca_cert(), None)
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The settings of a server that exports to `receiver` (environment layer: nothing secret).
fn telemetry_env(product: &str, receiver: &Receiver, instance: &str) -> Vec<(String, String)> {
    let prefix = format!("CRYPTOUTIL_{product}__TELEMETRY__");
    vec![
        (format!("{prefix}ENDPOINT"), receiver.url.clone()),
        (
            format!("{prefix}CA_FILE"),
            receiver.ca.display().to_string(),
        ),
        (format!("{prefix}INSTANCE_ID"), instance.to_owned()),
    ]
}

fn run_demo(args: &[&str]) -> (i32, Value) {
    let out = cryptoutil()
        .args(args)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let document: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), document)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// `demo all` against an Identity server and a federated KMS in their own processes, all three
/// exporting over OTLP/HTTP: one trace runs from a demo step into both servers, and from the KMS
/// into Identity (JWKS, introspection); each process has its resource; metrics and logs arrive.
#[test]
fn one_trace_crosses_from_the_demo_into_both_servers_over_otlp_http() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::now_v7();
    let identity_instance = format!("identity-{run}");
    let kms_instance = format!("kms-{run}");
    let identity = start_server_with_env(
        &["identity", "server", "start", "--dev", "--demo"],
        &telemetry_env("IDENTITY", &receiver, &identity_instance),
        dir.path(),
    );
    let kms = start_server_with_env(
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--demo",
            "--trust-issuer",
            identity.url("public_url"),
            "--trust-issuer-ca",
            identity.ca_cert().to_str().unwrap(),
        ],
        &telemetry_env("KMS", &receiver, &kms_instance),
        dir.path(),
    );
    let (code, document) = run_demo(&[
        "demo",
        "all",
        "--kms-url",
        kms.url("public_url"),
        "--kms-admin-url",
        kms.url("admin_url"),
        "--identity-url",
        identity.url("public_url"),
        "--ca-cert",
        kms.ca_cert().to_str().unwrap(),
        "--ca-cert",
        identity.ca_cert().to_str().unwrap(),
        "--otlp-endpoint",
        &receiver.url,
        "--otlp-ca-cert",
        receiver.ca.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{document:#}");
    // Readiness reports the collector as an optional check.
    let readyz = readyz(&kms);
    assert_eq!(readyz["status"], "ok", "{readyz:#}");
    assert_eq!(readyz["checks"]["telemetry"]["status"], "ok", "{readyz:#}");
    assert_eq!(
        readyz["checks"]["telemetry"]["required"], false,
        "{readyz:#}"
    );
    shut_down(kms);
    shut_down(identity);
    // The demo exported before it exited, the servers when they shut down.
    let received = receiver.take();
    assert!(received.transports.iter().all(|t| *t == "http"));

    // Resources: service name, version and instance of each process.
    let resources = resources(&received);
    for (service, instance) in [
        ("cryptoutil-kms", Some(kms_instance.as_str())),
        ("cryptoutil-identity", Some(identity_instance.as_str())),
        ("cryptoutil-demo", None),
    ] {
        let attrs = resources
            .get(service)
            .unwrap_or_else(|| panic!("nothing from {service}: {:?}", resources.keys()));
        assert_eq!(attrs["service.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(attrs["service.namespace"], "cryptoutil");
        let id = &attrs["service.instance.id"];
        match instance {
            Some(instance) => assert_eq!(id, instance),
            None => assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7),
        }
    }

    // Traces: the demo's root span, a span per step, the servers' request spans below them.
    let spans = spans(&received);
    let by_id: HashMap<&[u8], &SpanView> =
        spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let root = spans
        .iter()
        .find(|s| s.service == "cryptoutil-demo" && s.name == "demo all")
        .expect("the demo's root span");
    assert!(root.parent_id.is_empty());
    let steps: Vec<&SpanView> = spans
        .iter()
        .filter(|s| s.service == "cryptoutil-demo" && s.name.starts_with("demo.step "))
        .collect();
    assert_eq!(steps.len(), 20, "a span per step");
    for step in &steps {
        assert_eq!(step.trace_id, root.trace_id);
        assert_eq!(step.parent_id, root.span_id);
        assert_eq!(
            step.name,
            format!("demo.step {}", step.attributes["demo.step.name"])
        );
    }
    let server_span = |service: &str| {
        spans
            .iter()
            .filter(|s| s.service == service && s.kind == SpanKind::Server as i32)
            .collect::<Vec<_>>()
    };
    // A KMS request made by a step: same trace, the step is its parent.
    let encrypt = server_span("cryptoutil-kms")
        .into_iter()
        .find(|s| {
            s.attributes.get("http.request.method").map(String::as_str) == Some("POST")
                && s.attributes
                    .get("http.route")
                    .is_some_and(|r| r.ends_with("/encrypt"))
        })
        .expect("the KMS server span of an encrypt request");
    assert_eq!(encrypt.trace_id, root.trace_id);
    let parent = by_id[encrypt.parent_id.as_slice()];
    assert!(
        parent.name.starts_with("demo.step federation-"),
        "{parent:?}"
    );
    assert_eq!(encrypt.attributes["http.response.status_code"], "200");
    assert_eq!(
        encrypt.name,
        format!("POST {}", encrypt.attributes["http.route"])
    );
    assert_eq!(encrypt.attributes["cryptoutil.server"], "kms");
    // Its crypto operation, with the algorithm.
    let crypto = spans
        .iter()
        .find(|s| s.name == "kms.encrypt" && s.trace_id == root.trace_id)
        .expect("the kms.encrypt span");
    assert_eq!(crypto.attributes["operation"], "encrypt");
    assert!(!crypto.attributes["algorithm"].is_empty());
    let mut ancestor = by_id.get(crypto.parent_id.as_slice()).copied();
    while let Some(span) = ancestor.filter(|s| s.span_id != encrypt.span_id) {
        ancestor = by_id.get(span.parent_id.as_slice()).copied();
    }
    assert!(
        ancestor.is_some(),
        "kms.encrypt runs inside the encrypt request"
    );
    // An Identity request made by a step (the token endpoint), and its token span.
    let token = server_span("cryptoutil-identity")
        .into_iter()
        .find(|s| {
            s.trace_id == root.trace_id
                && by_id
                    .get(s.parent_id.as_slice())
                    .is_some_and(|p| p.service == "cryptoutil-demo")
                && s.attributes
                    .get("http.route")
                    .is_some_and(|r| r.contains("token"))
        })
        .expect("an Identity token request made by a demo step");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "identity.token" && s.parent_id == token.span_id),
        "the token issuance span is a child of the token request"
    );
    // The KMS's own calls to Identity (discovery, JWKS, introspection) join the same trace, as
    // children of the KMS request that made them.
    let from_kms: Vec<(&str, &str)> = server_span("cryptoutil-identity")
        .into_iter()
        .filter(|s| s.trace_id == root.trace_id)
        .filter_map(|s| {
            let parent = by_id.get(s.parent_id.as_slice())?;
            (parent.service == "cryptoutil-kms").then_some((s.name.as_str(), parent.name.as_str()))
        })
        .collect();
    for (call, made_by) in [
        ("GET /oauth2/v1/jwks", None),
        ("GET /.well-known/openid-configuration", None),
        (
            "POST /oauth2/v1/introspect",
            Some("POST /service/api/v1/elastickey/{id}/encrypt"),
        ),
    ] {
        assert!(
            from_kms
                .iter()
                .any(|(c, p)| *c == call && made_by.is_none_or(|m| m == *p)),
            "{call} made by a KMS request ({made_by:?}) in the demo's trace: {from_kms:?}"
        );
    }

    // Metrics, with the names the dashboards use.
    let durations = metric_points(&received, "cryptoutil-kms", "http.server.request.duration");
    assert!(
        durations.iter().any(|a| {
            a.get("http.request.method").map(String::as_str) == Some("POST")
                && a.get("http.route").is_some_and(|r| r.ends_with("/encrypt"))
                && a.get("http.response.status_code").map(String::as_str) == Some("200")
        }),
        "{durations:?}"
    );
    assert!(
        durations
            .iter()
            .any(|a| a.get("http.response.status_code").map(String::as_str) == Some("401")),
        "the negative checks' 401s are measured too: {durations:?}"
    );
    let crypto_ops = metric_points(&received, "cryptoutil-kms", "cryptoutil.crypto.operations");
    for operation in ["encrypt", "decrypt", "sign", "verify", "unwrap"] {
        assert!(
            crypto_ops
                .iter()
                .any(|a| a["operation"] == operation && !a["algorithm"].is_empty()),
            "{operation}: {crypto_ops:?}"
        );
    }
    let barrier = metric_points(
        &received,
        "cryptoutil-kms",
        "cryptoutil.barrier.cache.lookups",
    );
    assert!(barrier.iter().any(|a| a["result"] == "hit"), "{barrier:?}");
    assert!(barrier.iter().any(|a| a["result"] == "miss"), "{barrier:?}");
    let credentials = metric_points(
        &received,
        "cryptoutil-kms",
        "cryptoutil.credential.cache.lookups",
    );
    assert!(
        credentials
            .iter()
            .any(|a| a["cache"] == "token" && (a["result"] == "hit" || a["result"] == "miss")),
        "{credentials:?}"
    );
    let identity_ops = metric_points(
        &received,
        "cryptoutil-identity",
        "cryptoutil.crypto.operations",
    );
    assert!(
        identity_ops.iter().any(|a| a["operation"] == "sign"),
        "{identity_ops:?}"
    );

    // Logs: the servers' events, correlated with the trace they happened in.
    let kms_logs = log_records(&received, "cryptoutil-kms");
    assert!(
        kms_logs
            .iter()
            .any(|(body, _, trace)| body == "request handled" && *trace == root.trace_id),
        "{} KMS log records",
        kms_logs.len()
    );
    assert!(
        kms_logs
            .iter()
            .any(|(body, _, _)| body.contains("listening")),
        "the start-up line is exported too"
    );
    assert!(!log_records(&received, "cryptoutil-identity").is_empty());
}

/// `demo kms` with its in-process KMS, exporting over OTLP/gRPC: the in-process server shares
/// the demo's telemetry, and its spans join the demo's trace.
#[test]
fn the_in_process_demo_exports_over_otlp_grpc() {
    let receiver = Receiver::start();
    let (code, document) = run_demo(&[
        "demo",
        "kms",
        "--otlp-endpoint",
        &receiver.url,
        "--otlp-protocol",
        "grpc",
        "--otlp-ca-cert",
        receiver.ca.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{document:#}");
    let received = receiver.take();
    assert!(!received.transports.is_empty());
    assert!(received.transports.iter().all(|t| *t == "grpc"));
    let spans = spans(&received);
    let root = spans
        .iter()
        .find(|s| s.name == "demo kms")
        .expect("the demo's root span");
    let by_id: HashMap<&[u8], &SpanView> =
        spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let requests: Vec<&SpanView> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            request.service, "cryptoutil-demo",
            "one process, one resource"
        );
        assert_eq!(request.attributes["cryptoutil.server"], "kms");
        assert_eq!(request.trace_id, root.trace_id, "{request:?}");
        assert!(
            by_id[request.parent_id.as_slice()]
                .name
                .starts_with("demo.step kms-"),
            "{request:?}"
        );
    }
    for (name, operation) in [
        ("kms.encrypt", "encrypt"),
        ("kms.decrypt", "decrypt"),
        ("kms.sign", "sign"),
        ("kms.verify", "verify"),
        ("kms.generate", "generate"),
    ] {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span"));
        assert_eq!(span.attributes["operation"], operation);
        assert_eq!(span.trace_id, root.trace_id);
    }
    let credentials = metric_points(
        &received,
        "cryptoutil-demo",
        "cryptoutil.credential.cache.lookups",
    );
    assert!(
        credentials.iter().any(|a| a["cache"] == "password"),
        "Basic credentials of `demo kms`: {credentials:?}"
    );
    assert!(!log_records(&received, "cryptoutil-demo").is_empty());
}

/// A collector that cannot be reached is reported by readiness, which stays ok (the check is
/// optional).
#[test]
fn an_unreachable_collector_is_an_optional_readiness_failure() {
    let receiver = Receiver::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("CRYPTOUTIL_KMS__TELEMETRY__ENDPOINT".to_owned(), url),
        (
            "CRYPTOUTIL_KMS__TELEMETRY__CA_FILE".to_owned(),
            receiver.ca.display().to_string(),
        ),
        (
            "CRYPTOUTIL_KMS__TELEMETRY__EXPORT_TIMEOUT".to_owned(),
            "1s".to_owned(),
        ),
    ];
    let kms = start_server_with_env(&["kms", "server", "start", "--dev"], &env, dir.path());
    let readyz = readyz(&kms);
    assert_eq!(readyz["status"], "ok", "{readyz:#}");
    let check = &readyz["checks"]["telemetry"];
    assert_eq!(check["status"], "fail", "{readyz:#}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("OTLP http/protobuf"),
        "{readyz:#}"
    );
}

/// Telemetry is refused at once when it could not be verified or is not TLS.
#[test]
fn bad_telemetry_settings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("missing.pem");
    for (args, says) in [
        (
            vec!["--otlp-endpoint", "http://127.0.0.1:4318"],
            "must be an https:// URL",
        ),
        (
            vec!["--otlp-endpoint", "https://127.0.0.1:4318"],
            "--otlp-ca-cert is required",
        ),
        (
            vec![
                "--otlp-endpoint",
                "https://127.0.0.1:4317/v1",
                "--otlp-ca-cert",
                "/dev/null",
            ],
            "no path",
        ),
        (
            vec![
                "--otlp-endpoint",
                "https://127.0.0.1:4318",
                "--otlp-ca-cert",
                ca.to_str().unwrap(),
            ],
            "missing.pem",
        ),
        (
            vec!["--otlp-ca-cert", "/dev/null"],
            "apply with --otlp-endpoint",
        ),
        (
            vec![
                "--otlp-endpoint",
                "https://127.0.0.1:4318",
                "--otlp-protocol",
                "http/json",
                "--otlp-ca-cert",
                "/dev/null",
            ],
            "grpc or http/protobuf",
        ),
    ] {
        let out = cryptoutil()
            .args(["demo", "kms"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A server refuses a plain-HTTP collector in its configuration.
    let out = cryptoutil()
        .args(["kms", "server", "start", "--dev"])
        .env(
            "CRYPTOUTIL_KMS__TELEMETRY__ENDPOINT",
            "http://127.0.0.1:4318",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("telemetry.endpoint"), "{stderr}");
    assert!(stderr.contains("telemetry.ca_file"), "{stderr}");
}
