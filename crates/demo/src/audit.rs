//! The KMS's audit trail as the demo reads it: `GET /admin/v1/audit` on the KMS admin listener
//! (the same for an in-process KMS and a running one; a running one's admin listener normally
//! wants the demo client certificate, `--client-cert`/`--client-key`).

use cryptoutil_server::config::LoggingSettings;
use cryptoutil_server::telemetry::Telemetry;
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;
use url::Url;

use crate::http::Http;
use crate::step_error::StepError;

/// Events asked for per request.
const PAGE: usize = 1000;
/// Pages read at most (a busy server's trail is bounded anyway).
const MAX_PAGES: usize = 16;

/// One audit event (SPEC: never a credential).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditEvent {
    /// Position in the server's trail.
    pub seq: u64,
    fields: Map<String, Value>,
}

impl AuditEvent {
    /// A text field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    events: Vec<AuditEvent>,
    next_after: u64,
    truncated: bool,
    latest: u64,
}

/// Makes this process keep the audit events of the servers it runs in-process (the demo prints
/// no logs of its own, so this is its only subscriber), and export spans and events over OTLP
/// when the demo has `telemetry` (its in-process servers share it). False when another
/// subscriber was installed first.
pub fn keep_in_process_events(telemetry: Option<&Telemetry>) -> bool {
    let filter = cryptoutil_server::logging::filter(&LoggingSettings::default());
    let subscriber = tracing_subscriber::registry()
        .with(cryptoutil_server::audit::layer())
        .with(telemetry.map(|t| t.layers(filter)));
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

/// The newest position in the trail of the server at `admin`: events after it are this run's.
pub async fn position(http: &Http, admin: &Url) -> Result<u64, StepError> {
    Ok(page(http, admin, 0, 0).await?.latest)
}

/// The events recorded after position `after`, oldest first. Fails when the trail already
/// dropped some of them (a busy server) rather than judging an incomplete record.
pub async fn since(http: &Http, admin: &Url, after: u64) -> Result<Vec<AuditEvent>, StepError> {
    let mut events = Vec::new();
    let mut position = after;
    for _ in 0..MAX_PAGES {
        let page = page(http, admin, position, PAGE).await?;
        if page.truncated {
            return Err(StepError::new(format!(
                "the KMS's audit trail no longer holds the events after position {after} (it \
                 keeps the most recent ones only); read its log stream instead"
            )));
        }
        let done = page.events.len() < PAGE;
        position = page.next_after;
        events.extend(page.events);
        if done {
            return Ok(events);
        }
    }
    Err(StepError::new(format!(
        "more than {} audit events since this run started; read the KMS's log stream instead",
        PAGE * MAX_PAGES
    )))
}

async fn page(http: &Http, admin: &Url, after: u64, limit: usize) -> Result<Page, StepError> {
    let mut url = admin
        .join("/admin/v1/audit")
        .map_err(|e| StepError::with_cause("bad admin URL", e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("after", &after.to_string())
        .append_pair("limit", &limit.to_string());
    http.send_with(http.admin(), &format!("GET {url}"), |client| {
        client.get(url.clone())
    })
    .await?
    .expect(200)
    .map_err(|e| e.context("the KMS's admin listener did not return its audit events"))?
    .json()
}
