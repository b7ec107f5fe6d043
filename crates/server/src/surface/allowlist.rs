//! IP/CIDR allowlist: 403 problem for clients outside the configured ranges.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::problem::Problem;

/// The ranges a surface accepts; empty accepts every client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allowlist(Arc<[IpNet]>);

impl Allowlist {
    pub(crate) fn new(nets: &[IpNet]) -> Self {
        Self(nets.iter().map(IpNet::trunc).collect())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `client` may call. An unknown client address is refused unless the list is empty.
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as a dual-stack listener reports IPv4
    /// clients) match IPv4 ranges, and the IPv6 form matches ranges written that way.
    pub(crate) fn allows(&self, client: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(ip) = client else {
            return false;
        };
        let canonical = ip.to_canonical();
        self.0
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

/// Middleware: 403 problem when the client address is not allowed.
pub(crate) async fn allowlist(
    State(list): State<Allowlist>,
    request: Request,
    next: Next,
) -> Response {
    if list.allows(super::client_ip(&request)) {
        next.run(request).await
    } else {
        Problem::new(StatusCode::FORBIDDEN)
            .with_detail("this client address may not call this API")
            .with_extension("error", "ip_not_allowed")
            .into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn list(nets: &[&str]) -> Allowlist {
        let nets: Vec<IpNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
        Allowlist::new(&nets)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn empty_allows_everyone_even_unknown() {
        let l = list(&[]);
        assert!(l.is_empty());
        assert!(l.allows(ip("203.0.113.9")));
        assert!(l.allows(None));
    }

    #[test]
    fn cidr_and_single_addresses() {
        let l = list(&["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(l.allows(ip("10.200.3.4")));
        assert!(l.allows(ip("192.0.2.7")));
        assert!(!l.allows(ip("192.0.2.8")));
        assert!(l.allows(ip("2001:db8:ffff::1")));
        assert!(!l.allows(ip("2001:db9::1")));
        assert!(!l.allows(None), "an unknown address is refused");
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_both_forms() {
        let v4 = list(&["127.0.0.0/8"]);
        assert!(v4.allows(ip("::ffff:127.0.0.1")));
        assert!(!v4.allows(ip("::ffff:128.0.0.1")));
        let mapped = list(&["::ffff:10.0.0.0/104"]);
        assert!(mapped.allows(ip("::ffff:10.1.2.3")));
        assert!(!mapped.allows(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn host_bits_in_a_range_are_ignored() {
        let l = list(&["10.1.2.3/8"]);
        assert!(l.allows(ip("10.9.9.9")));
    }
}
