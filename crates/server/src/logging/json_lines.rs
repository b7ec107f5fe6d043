//! The JSON line format of the logs: one object per event with `timestamp`, `level`, the
//! event's fields (`message` first when there is one), `target`, and `span`: the fields of the
//! innermost span (the request's `request_id`, `method`, `path`) with its `name`.
//!
//! The same shape as `tracing_subscriber`'s JSON format with `flatten_event(true)`,
//! `with_current_span(true)` and `with_span_list(false)`, written directly: that format parses
//! the span's stored JSON back into a tree and serializes it again for every event, which was
//! ≈ 10 % of a KMS encrypt request's instructions (docs/benchmarks.md). Here the span's fields,
//! already JSON (recorded by [`JsonFields`]), are copied as they are.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter; spans' fields must be recorded with [`JsonFields`].
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldWriter {
            line: String::with_capacity(256),
            message: None,
        };
        event.record(&mut fields);
        let mut line = String::with_capacity(fields.line.len() + 256);
        line.push_str("{\"timestamp\":\"");
        SystemTime.format_time(&mut Writer::new(&mut line))?;
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        if let Some(message) = &fields.message {
            line.push_str(",\"message\":");
            push_json_string(&mut line, message);
        }
        line.push_str(&fields.line);
        line.push_str(",\"target\":");
        push_json_string(&mut line, event.metadata().target());
        if let Some(span) = ctx.lookup_current() {
            let extensions = span.extensions();
            line.push_str(",\"span\":{");
            if let Some(stored) = extensions.get::<FormattedFields<N>>() {
                // A JSON object's text (JsonFields), or empty when the span has no fields.
                let inner = stored
                    .fields
                    .trim()
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .unwrap_or("");
                if !inner.is_empty() {
                    line.push_str(inner);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            push_json_string(&mut line, span.name());
            line.push('}');
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// Writes an event's fields as `,"name":value` pairs; keeps `message` aside.
struct FieldWriter {
    line: String,
    message: Option<String>,
}

impl FieldWriter {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_json_string(&mut self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for FieldWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
            return;
        }
        self.key(field);
        push_json_string(&mut self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
            return;
        }
        self.key(field);
        push_json_string(&mut self.line, &text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        push_json_string(&mut self.line, &value.to_string());
    }
}

/// Appends `text` as a JSON string (RFC 8259 escaping; control characters as `\u00XX`).
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escaped);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// The field recorder spans need for [`JsonLines`].
pub fn span_fields() -> JsonFields {
    JsonFields::new()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(emit: impl FnOnce()) -> Vec<(Value, String)> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(span_fields())
                .event_format(JsonLines)
                .with_writer(captured.clone()),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                let value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                (value, l.to_owned())
            })
            .collect()
    }

    #[test]
    fn events_are_json_objects_with_their_span_fields() {
        let out = lines(|| {
            let span = tracing::info_span!("request", request_id = "r-1", method = %"POST", empty = tracing::field::Empty);
            let _entered = span.enter();
            tracing::info!(target: "audit", tenant = %"t \"quoted\"\n", count = 3_u64, delta = -2_i64, ok = true, ratio = 0.5, "done {}", 7);
        });
        assert_eq!(out.len(), 1);
        let (line, text) = &out[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "audit");
        assert_eq!(line["message"], "done 7");
        assert_eq!(line["tenant"], "t \"quoted\"\n");
        assert_eq!(line["count"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["span"]["name"], "request");
        assert_eq!(line["span"]["request_id"], "r-1");
        assert_eq!(line["span"]["method"], "POST");
        assert!(line["span"].get("empty").is_none());
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(timestamp).is_ok(), "{timestamp}");
        // Key order as tracing_subscriber's: timestamp, level, message, fields, target, span.
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        let order = ["timestamp", "level", "message", "tenant", "target", "span"].map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn events_outside_spans_and_control_characters() {
        let out = lines(|| {
            tracing::warn!(weird = "a\u{1}b\\c\td", "no span");
            let span = tracing::info_span!("bare");
            let _entered = span.enter();
            tracing::error!(code = 7_i64);
        });
        let out: Vec<Value> = out.into_iter().map(|(v, _)| v).collect();
        assert_eq!(out[0]["weird"], "a\u{1}b\\c\td");
        assert_eq!(out[0]["message"], "no span");
        assert!(out[0].get("span").is_none());
        assert_eq!(out[1]["level"], "ERROR");
        assert_eq!(out[1]["code"], 7);
        assert_eq!(out[1]["span"]["name"], "bare");
        assert!(out[1].get("message").is_none());
    }
}
