//! The audit trail: every `tracing` event of target [`TARGET`] (the KMS writes one per
//! authentication decision, key operation and barrier rotation; never a credential) is kept in a
//! bounded, process-wide ring of the most recent [`CAPACITY`] events and served to operators on
//! the admin listener as `GET /admin/v1/audit` (mTLS outside `--dev`, like every admin route).
//!
//! The ring is what an operator or the demo reads to see what happened just now; the durable
//! record is the log stream (stderr JSON lines, or OTLP) that carries the same events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, Filtered, filter_fn};
use tracing_subscriber::layer::Context;

/// The `tracing` target of audit events.
pub const TARGET: &str = "audit";
/// Most events kept; the oldest go first.
pub const CAPACITY: usize = 4096;
/// Most events one read returns.
pub const MAX_PAGE: usize = 1000;
/// Longest text value kept per field (longer values are cut, marked with `…`).
const MAX_VALUE_CHARS: usize = 512;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Position in this process's trail, from 1, without gaps.
    pub seq: u64,
    /// When it was recorded, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The event's fields (`event`, `outcome`, `method`, `subject`, `reason`, …).
    pub fields: BTreeMap<&'static str, serde_json::Value>,
}

impl AuditEvent {
    /// A text field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(serde_json::Value::as_str)
    }
}

/// One read of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPage {
    /// Events after the requested position, oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass this as `after` to read on.
    pub next_after: u64,
    /// True when events after the requested position were already dropped from the ring.
    pub truncated: bool,
    /// The newest position recorded so far (a reader that wants only what happens from now on
    /// reads with `limit=0` and keeps this).
    pub latest: u64,
}

/// An event as the ring keeps it: its time is formatted when it is read, not on the request path.
struct Recorded {
    seq: u64,
    at: SystemTime,
    fields: BTreeMap<&'static str, serde_json::Value>,
}

impl Recorded {
    fn to_event(&self) -> AuditEvent {
        AuditEvent {
            seq: self.seq,
            time: humantime::format_rfc3339_millis(self.at).to_string(),
            fields: self.fields.clone(),
        }
    }
}

struct Trail {
    events: VecDeque<Recorded>,
    last_seq: u64,
}

static TRAIL: Mutex<Trail> = Mutex::new(Trail {
    events: VecDeque::new(),
    last_seq: 0,
});

/// The events recorded after position `after` (0 = from the oldest kept), at most `limit`
/// (capped at [`MAX_PAGE`]).
pub fn read(after: u64, limit: usize) -> AuditPage {
    let trail = TRAIL.lock().unwrap_or_else(PoisonError::into_inner);
    let oldest = trail.events.front().map_or(trail.last_seq + 1, |e| e.seq);
    let skip = usize::try_from(after.saturating_sub(oldest - 1)).unwrap_or(usize::MAX);
    let events: Vec<AuditEvent> = trail
        .events
        .iter()
        .skip(skip)
        .take(limit.min(MAX_PAGE))
        .map(Recorded::to_event)
        .collect();
    AuditPage {
        next_after: events.last().map_or(after.max(oldest - 1), |e| e.seq),
        truncated: after.saturating_add(1) < oldest,
        latest: trail.last_seq,
        events,
    }
}

fn record(fields: BTreeMap<&'static str, serde_json::Value>) {
    let at = SystemTime::now();
    let mut trail = TRAIL.lock().unwrap_or_else(PoisonError::into_inner);
    trail.last_seq += 1;
    let seq = trail.last_seq;
    // The evicted event is dropped after the lock is released.
    let evicted = if trail.events.len() == CAPACITY {
        trail.events.pop_front()
    } else {
        None
    };
    trail.events.push_back(Recorded { seq, at, fields });
    drop(trail);
    drop(evicted);
}

/// The `tracing` layer that records audit events into the trail (and sees nothing else, whatever
/// the log level): [`crate::logging::init`] installs it; a process that embeds servers without
/// their logging (the demo) installs it itself.
pub fn layer<S: Subscriber>() -> Filtered<AuditLayer, FilterFn, S> {
    AuditLayer.with_filter(filter_fn(|metadata| metadata.target() == TARGET))
}

/// See [`layer`].
#[derive(Debug, Clone, Copy)]
pub struct AuditLayer;

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        record(fields.0);
    }
}

struct Fields(BTreeMap<&'static str, serde_json::Value>);

impl Fields {
    fn text(&mut self, field: &Field, mut value: String) {
        // A value of at most MAX_VALUE_CHARS bytes has at most as many characters.
        if value.len() > MAX_VALUE_CHARS
            && let Some((cut, _)) = value.char_indices().nth(MAX_VALUE_CHARS)
        {
            value.truncate(cut);
            value.push('…');
        }
        self.0
            .insert(field.name(), serde_json::Value::String(value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// The ring is process-wide: these tests take turns so one's filling cannot evict another's.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Every event still in the ring with this marker (reading every page: another test may
    /// have filled the ring, and the newest events come last).
    fn marker_events(marker: &str) -> Vec<AuditEvent> {
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = read(after, MAX_PAGE);
            if page.events.is_empty() {
                return found;
            }
            after = page.next_after;
            found.extend(
                page.events
                    .into_iter()
                    .filter(|e| e.field("marker") == Some(marker)),
            );
        }
    }

    #[test]
    fn audit_events_are_kept_with_typed_fields_and_others_are_not() {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let subscriber = tracing_subscriber::registry().with(layer());
        let marker = uuid::Uuid::now_v7().to_string();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "audit", marker = %marker, outcome = "ok", count = 3_u64, fine = true);
            tracing::info!(target: "not_audit", marker = %marker, "ignored");
            tracing::debug!(target: "audit", marker = %marker, long = %"x".repeat(2000));
        });
        let events = marker_events(&marker);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].field("outcome"), Some("ok"));
        assert_eq!(events[0].fields["count"], 3);
        assert_eq!(events[0].fields["fine"], true);
        assert!(events[0].time.ends_with('Z'), "{}", events[0].time);
        assert_eq!(events[1].seq, events[0].seq + 1);
        let long = events[1].field("long").unwrap();
        assert_eq!(long.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn reads_page_on_and_report_what_the_ring_dropped() {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let subscriber = tracing_subscriber::registry().with(layer());
        let marker = uuid::Uuid::now_v7().to_string();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..5_u64 {
                tracing::info!(target: "audit", marker = %marker, i);
            }
        });
        let first = marker_events(&marker)[0].seq;
        let page = read(first - 1, 2);
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.events[0].seq, first);
        assert_eq!(page.next_after, first + 1);
        assert!(!page.truncated);
        assert!(page.latest >= first + 4);
        let rest = read(page.next_after, MAX_PAGE);
        assert!(rest.events.iter().any(|e| e.seq == first + 4));
        assert_eq!(rest.events[0].seq, first + 2);

        // Past the newest: nothing, and the position does not move backwards.
        let end = read(u64::MAX - 1, 10);
        assert!(end.events.is_empty());
        assert_eq!(end.next_after, u64::MAX - 1);

        // Filling the ring drops the oldest, and a reader that fell behind is told.
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer()), || {
            for _ in 0..CAPACITY {
                tracing::info!(target: "audit", filler = true);
            }
        });
        let behind = read(first - 1, 1);
        assert!(behind.truncated);
        assert!(behind.events[0].seq > first + 4);
    }
}
