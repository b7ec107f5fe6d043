//! How long a fetched document may be reused, from its HTTP caching headers (RFC 9111:
//! `Cache-Control` `max-age` / `no-store` / `no-cache`, else `Expires` against `Date`), then
//! clamped by configuration.

use std::time::{Duration, SystemTime};

/// What the response's headers say about reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `no-store` or `no-cache`: do not reuse (the configured minimum still applies).
    DoNotReuse,
    /// Fresh for this long.
    For(Duration),
    /// The headers say nothing.
    Unspecified,
}

/// Reads the `Cache-Control` values, `Expires` and `Date` of a response received at `now`.
/// `max-age` wins over `Expires` (RFC 9111 §5.3); an unreadable `Expires` means "already
/// expired"; an unreadable `max-age` is ignored.
pub fn freshness(
    cache_control: &[&str],
    expires: Option<&str>,
    date: Option<&str>,
    now: SystemTime,
) -> Freshness {
    let mut max_age = None;
    for directive in cache_control.iter().flat_map(|v| v.split(',')) {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Freshness::DoNotReuse;
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(seconds) = value.and_then(parse_seconds)
        {
            max_age = Some(max_age.map_or(seconds, |m: u64| m.min(seconds)));
        }
    }
    if let Some(seconds) = max_age {
        return Freshness::For(Duration::from_secs(seconds));
    }
    let Some(expires) = expires else {
        return Freshness::Unspecified;
    };
    let Ok(expires) = httpdate::parse_http_date(expires.trim()) else {
        return Freshness::For(Duration::ZERO);
    };
    let base = date
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or(now);
    Freshness::For(expires.duration_since(base).unwrap_or(Duration::ZERO))
}

/// Delta-seconds (RFC 9111 §1.2.2): digits only; too large saturates.
fn parse_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// The lifetime to cache for: the headers' freshness within `[min, max]` (`min` when the
/// headers forbid reuse or say nothing, so a client id cannot make this server fetch on every
/// request).
pub fn lifetime(freshness: Freshness, min: Duration, max: Duration) -> Duration {
    match freshness {
        Freshness::For(d) => d.clamp(min, max.max(min)),
        Freshness::DoNotReuse | Freshness::Unspecified => min,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        httpdate::parse_http_date(text).unwrap()
    }

    const NOW: &str = "Mon, 07 Dec 2026 12:00:00 GMT";

    #[test]
    fn max_age_wins_and_no_store_forbids_reuse() {
        let now = at(NOW);
        let f = |cc: &[&str]| freshness(cc, Some("Mon, 07 Dec 2026 13:00:00 GMT"), None, now);
        assert_eq!(
            f(&["max-age=600"]),
            Freshness::For(Duration::from_secs(600))
        );
        assert_eq!(
            f(&["public, max-age=\"60\""]),
            Freshness::For(Duration::from_secs(60))
        );
        assert_eq!(
            f(&["max-age=600", "max-age=30"]),
            Freshness::For(Duration::from_secs(30))
        );
        assert_eq!(f(&["max-age=600, no-store"]), Freshness::DoNotReuse);
        assert_eq!(f(&["No-Cache"]), Freshness::DoNotReuse);
        assert_eq!(
            f(&["max-age=99999999999999999999999"]),
            Freshness::For(Duration::from_secs(u64::MAX))
        );
        // A bad max-age is ignored: Expires decides.
        assert_eq!(
            f(&["max-age=-1"]),
            Freshness::For(Duration::from_secs(3600))
        );
        assert_eq!(
            f(&["max-age=1h"]),
            Freshness::For(Duration::from_secs(3600))
        );
    }

    #[test]
    fn expires_counts_from_date_or_now() {
        let now = at(NOW);
        assert_eq!(
            freshness(&[], Some("Mon, 07 Dec 2026 12:10:00 GMT"), None, now),
            Freshness::For(Duration::from_secs(600))
        );
        assert_eq!(
            freshness(
                &[],
                Some("Mon, 07 Dec 2026 12:10:00 GMT"),
                Some("Mon, 07 Dec 2026 12:05:00 GMT"),
                now
            ),
            Freshness::For(Duration::from_secs(300))
        );
        assert_eq!(
            freshness(&[], Some("Sun, 06 Dec 2026 12:00:00 GMT"), None, now),
            Freshness::For(Duration::ZERO)
        );
        assert_eq!(
            freshness(&[], Some("0"), None, now),
            Freshness::For(Duration::ZERO)
        );
        assert_eq!(freshness(&[], None, None, now), Freshness::Unspecified);
    }

    #[test]
    fn lifetimes_are_clamped() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(86_400));
        let life = |f| lifetime(f, min, max);
        assert_eq!(life(Freshness::For(Duration::from_secs(5))), min);
        assert_eq!(
            life(Freshness::For(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
        assert_eq!(life(Freshness::For(Duration::from_secs(u64::MAX))), max);
        assert_eq!(life(Freshness::DoNotReuse), min);
        assert_eq!(life(Freshness::Unspecified), min);
    }
}
