//! The audit events of the servers the demo runs in-process: a `tracing` layer, installed as the
//! process's subscriber, that keeps the most recent events of target `audit` (the KMS writes one
//! per authentication decision, never a credential). The demo prints no logs of its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Most events kept (the oldest go first).
const CAPACITY: usize = 10_000;

/// One audit event: its fields as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent(BTreeMap<String, String>);

impl AuditEvent {
    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Log(Mutex<VecDeque<AuditEvent>>);

static LOG: OnceLock<Option<Log>> = OnceLock::new();

/// Installs the collecting subscriber once per process. False when another global subscriber
/// was installed first (then [`events`] has nothing).
pub fn attach() -> bool {
    LOG.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Collector);
        tracing::subscriber::set_global_default(subscriber)
            .ok()
            .map(|()| Log::default())
    })
    .is_some()
}

/// The events collected so far, oldest first; `None` when not attached.
pub fn events() -> Option<Vec<AuditEvent>> {
    let log = LOG.get()?.as_ref()?;
    let events = log.0.lock().unwrap_or_else(PoisonError::into_inner);
    Some(events.iter().cloned().collect())
}

struct Collector;

impl<S: Subscriber> Layer<S> for Collector {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let Some(Some(log)) = LOG.get() else { return };
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let mut events = log.0.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() == CAPACITY {
            events.pop_front();
        }
        events.push_back(AuditEvent(fields.0));
    }
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}
