//! Per-client-IP token buckets in bounded memory.
//!
//! At most `max_tracked` clients have a bucket of their own. When the table is full, idle
//! buckets (refilled to `burst`, so indistinguishable from a fresh one) are swept out, at most
//! once per refill period; if it is still full, new clients share one overflow bucket with the
//! same rate. An attacker with many addresses can therefore degrade service for new clients but
//! cannot grow memory or escape the limit.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::RateLimitSettings;
use crate::problem::Problem;

/// Most clients tracked with a bucket of their own, per surface.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    /// Refused; a token is available again after this many whole seconds (at least 1).
    Deny {
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }

    fn take(&mut self, rate: f64) -> Decision {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Decision::Allow
        } else {
            let wait = ((1.0 - self.tokens) / rate).ceil();
            // `wait` is finite and small: rate >= 1 and tokens in [0, 1).
            Decision::Deny {
                retry_after_secs: (wait as u64).max(1),
            }
        }
    }
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    overflow: Bucket,
    last_sweep: Option<Instant>,
}

/// A bounded set of per-client token buckets.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    max_tracked: usize,
    /// How long an empty bucket takes to refill: the least time between two sweeps.
    refill_period: Duration,
    table: Mutex<Table>,
}

impl RateLimiter {
    pub(crate) fn new(settings: &RateLimitSettings, max_tracked: usize) -> Self {
        let rate = f64::from(settings.per_second.max(1));
        let burst = f64::from(settings.burst.max(1));
        let now = Instant::now();
        Self {
            rate,
            burst,
            max_tracked: max_tracked.max(1),
            refill_period: Duration::from_secs_f64(burst / rate),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: Bucket::full(burst, now),
                last_sweep: None,
            }),
        }
    }

    /// Takes one token for `client` (or from the overflow bucket when the client is unknown
    /// or the table is full).
    pub(crate) fn check_at(&self, client: Option<IpAddr>, now: Instant) -> Decision {
        let (rate, burst) = (self.rate, self.burst);
        let mut guard = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let table = &mut *guard;
        let Some(key) = client.map(bucket_key) else {
            table.overflow.refill(rate, burst, now);
            return table.overflow.take(rate);
        };
        if !table.buckets.contains_key(&key) && table.buckets.len() >= self.max_tracked {
            self.sweep(table, now);
        }
        let bucket = if let Some(bucket) = table.buckets.get_mut(&key) {
            bucket
        } else if table.buckets.len() < self.max_tracked {
            table.buckets.entry(key).or_insert(Bucket::full(burst, now))
        } else {
            &mut table.overflow
        };
        bucket.refill(rate, burst, now);
        bucket.take(rate)
    }

    /// Drops buckets that have refilled completely, at most once per refill period.
    fn sweep(&self, table: &mut Table, now: Instant) {
        if let Some(last) = table.last_sweep
            && now.saturating_duration_since(last) < self.refill_period
        {
            return;
        }
        table.last_sweep = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        table.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

/// The bucket key of a client: IPv4 (also when IPv4-mapped) as is; IPv6 by its /64, since one
/// host or subscriber normally holds a whole /64.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// The response to a refused request, given the whole seconds until a token is available.
/// `Retry-After` is added by the middleware.
pub type Refusal = fn(u64) -> Response;

/// The default refusal: a 429 problem with `error: rate_limited`.
pub fn problem_refusal(_retry_after_secs: u64) -> Response {
    Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .with_detail("too many requests from this client; retry later")
        .with_extension("error", "rate_limited")
        .into_response()
}

/// A limiter and how it refuses, the state of [`rate_limit`].
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) refuse: Refusal,
}

/// Middleware: the refusal with status 429 and `Retry-After` once the client's bucket is empty.
pub(crate) async fn rate_limit(
    State(limit): State<Limit>,
    request: Request,
    next: Next,
) -> Response {
    match limit
        .limiter
        .check_at(super::client_ip(&request), Instant::now())
    {
        Decision::Allow => next.run(request).await,
        Decision::Deny { retry_after_secs } => {
            let mut response = (limit.refuse)(retry_after_secs);
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32, max: usize) -> RateLimiter {
        RateLimiter::new(&RateLimitSettings { per_second, burst }, max)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn burst_then_refused_then_refilled() {
        let l = limiter(2, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check_at(ip("192.0.2.1"), t0), Decision::Allow);
        }
        assert_eq!(
            l.check_at(ip("192.0.2.1"), t0),
            Decision::Deny {
                retry_after_secs: 1
            }
        );
        // Another client has its own bucket.
        assert_eq!(l.check_at(ip("192.0.2.2"), t0), Decision::Allow);
        // Half a second at 2/s gives one token back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check_at(ip("192.0.2.1"), t1), Decision::Allow);
        assert!(matches!(
            l.check_at(ip("192.0.2.1"), t1),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn retry_after_reflects_the_rate() {
        let l = limiter(1, 1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check_at(ip("192.0.2.1"), t0), Decision::Allow);
        assert_eq!(
            l.check_at(ip("192.0.2.1"), t0),
            Decision::Deny {
                retry_after_secs: 1
            }
        );
    }

    #[test]
    fn ipv4_mapped_and_same_slash64_share_a_bucket() {
        let l = limiter(1, 1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check_at(ip("192.0.2.7"), t0), Decision::Allow);
        assert!(matches!(
            l.check_at(ip("::ffff:192.0.2.7"), t0),
            Decision::Deny { .. }
        ));
        assert_eq!(l.check_at(ip("2001:db8:1:2::1"), t0), Decision::Allow);
        assert!(matches!(
            l.check_at(ip("2001:db8:1:2:ffff::9"), t0),
            Decision::Deny { .. }
        ));
        assert_eq!(l.check_at(ip("2001:db8:1:3::1"), t0), Decision::Allow);
    }

    #[test]
    fn memory_is_bounded_and_idle_buckets_are_evicted() {
        let l = limiter(1, 2, 3);
        let t0 = Instant::now();
        for i in 1..=3 {
            assert_eq!(
                l.check_at(ip(&format!("198.51.100.{i}")), t0),
                Decision::Allow
            );
        }
        assert_eq!(l.tracked(), 3);
        // Table full of active clients: newcomers share the overflow bucket (burst 2).
        for i in 10..12 {
            assert_eq!(
                l.check_at(ip(&format!("198.51.100.{i}")), t0),
                Decision::Allow
            );
        }
        assert!(matches!(
            l.check_at(ip("198.51.100.12"), t0),
            Decision::Deny { .. }
        ));
        assert_eq!(l.tracked(), 3, "the table never grows past its cap");
        // Once the tracked clients have been idle long enough to refill, they are swept out and
        // a newcomer gets a bucket of its own again.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(l.check_at(ip("198.51.100.20"), later), Decision::Allow);
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn unknown_clients_share_the_overflow_bucket() {
        let l = limiter(1, 1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check_at(None, t0), Decision::Allow);
        assert!(matches!(l.check_at(None, t0), Decision::Deny { .. }));
        assert_eq!(l.tracked(), 0);
    }
}
