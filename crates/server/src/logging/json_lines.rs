//! The JSON line format of the logs: one object per event with `timestamp`, `level`, the
//! event's fields (`message` first when there is one), `target`, and `span`: the fields of the
//! innermost span (the request's `request_id`, `method`, `path`) with its `name`.
//!
//! The same shape as `tracing_subscriber`'s JSON format with `flatten_event(true)`,
//! `with_current_span(true)` and `with_span_list(false)`, written directly: that format parses
//! the span's stored JSON back into a tree and serializes it again for every event, which was
//! ≈ 10 % of a KMS encrypt request's instructions (docs/benchmarks.md). Here the span's fields,
//! already JSON (recorded by [`JsonFields`]), are copied as they are; `Display`/`Debug` values
//! are escaped as they are formatted (no intermediate `String`); and the timestamp's date and
//! time of day are formatted once per second per thread.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
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
        push_timestamp(&mut line, SystemTime::now());
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
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
            return;
        }
        self.key(field);
        self.line.push('"');
        let _ = write!(JsonEscaped(&mut self.line), "{value:?}");
        self.line.push('"');
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
    push_escaped(out, text);
    out.push('"');
}

/// A `fmt::Write` that appends what is written to it JSON-escaped (without the quotes).
struct JsonEscaped<'a>(&'a mut String);

impl fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        push_escaped(self.0, text);
        Ok(())
    }
}

/// Appends `text` with the escapes of a JSON string's contents. Every byte that needs an escape
/// is ASCII, and no byte of a multi-byte UTF-8 sequence is, so the text is scanned as bytes and
/// copied in runs.
fn push_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Appends `at` as RFC 3339 UTC with microseconds (`2026-12-06T03:34:51.727906Z`, the shape
/// `tracing_subscriber` writes). The part up to the second is cached per thread: it changes once
/// a second, and formatting a civil date costs more than the rest of a log line's fields.
fn push_timestamp(out: &mut String, at: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            push_date_time(&mut cached.1, secs);
            cached.0 = secs;
        }
        out.push_str(&cached.1);
    });
    let _ = write!(out, ".{:06}Z", since.subsec_micros());
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time in seconds (proleptic Gregorian, UTC).
fn push_date_time(out: &mut String, unix_secs: u64) {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(i64::MAX);
    let of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// Year, month, day of the day `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn timestamps_match_a_reference_formatter() {
        // Days around leap years, century rules, month ends and the far future.
        for secs in [
            0_u64,
            59,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            951_868_800,   // 2000-03-01
            1_709_164_800, // 2024-02-29
            1_735_689_599, // 2024-12-31T23:59:59
            1_796_527_658,
            4_102_444_800,   // 2100-01-01
            4_107_542_400,   // 2100-03-01 (2100 is not a leap year)
            253_402_300_799, // 9999-12-31T23:59:59
        ] {
            for micros in [0_u32, 7, 999_999] {
                let at = UNIX_EPOCH
                    + std::time::Duration::from_secs(secs)
                    + std::time::Duration::from_micros(u64::from(micros));
                let mut ours = String::new();
                push_timestamp(&mut ours, at);
                // Twice: the second comes from the per-thread cache.
                let mut again = String::new();
                push_timestamp(&mut again, at);
                assert_eq!(ours, again);
                let reference = humantime::format_rfc3339_micros(at).to_string();
                assert_eq!(ours, reference, "{secs}.{micros}");
            }
        }
    }

    #[test]
    fn display_values_are_escaped_as_they_are_written() {
        struct Tricky;
        impl fmt::Display for Tricky {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a\"b")?;
                f.write_str("\\c\n")?;
                f.write_char('\u{7}')
            }
        }
        let out = lines(|| tracing::info!(value = %Tricky, debug = ?"q\"", "m"));
        assert_eq!(out[0].0["value"], "a\"b\\c\n\u{7}");
        assert_eq!(out[0].0["debug"], "\"q\\\"\"");
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
