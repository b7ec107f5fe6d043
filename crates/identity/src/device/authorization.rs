//! A device authorization (RFC 8628 §3.1–3.5) as stored, and what a poll of it answers.

use time::OffsetDateTime;

use super::user_code::UserCode;

/// RFC 8628 §3.5: each `slow_down` adds this many seconds to the polling interval, for that
/// and every later request.
pub const SLOW_DOWN_STEP_SECS: i64 = 5;

/// Where the user's decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Waiting for the user to enter the code and decide.
    Pending,
    /// The user approved: the next poll redeems it (once).
    Approved,
    /// The user denied.
    Denied,
}

impl DeviceState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// One device authorization request, keyed by the SHA-256 of its device code (the code itself
/// is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// base64url(SHA-256(device_code)).
    pub device_code_hash: String,
    /// The user code, normal form (unique while the row exists).
    pub user_code: UserCode,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for (already narrowed to the client's).
    pub scopes: Vec<String>,
    /// `resource` values (RFC 8707), each one of the client's audiences.
    pub resources: Vec<String>,
    /// The DPoP key of the device authorization request's proof: polls must prove it too.
    pub dpop_jkt: Option<String>,
    /// The decision so far.
    pub state: DeviceState,
    /// The user who decided.
    pub user_id: Option<String>,
    /// The grant recorded when the user approved.
    pub grant_id: Option<String>,
    /// The least number of seconds between polls (grows by 5 with each `slow_down`).
    pub interval_secs: i64,
    /// The last poll that was answered `authorization_pending` or `slow_down`.
    pub last_poll_at: Option<OffsetDateTime>,
    /// When the request was made.
    pub created_at: OffsetDateTime,
    /// After this instant the codes are dead (`expired_token`).
    pub expires_at: OffsetDateTime,
    /// When the approved authorization was redeemed for tokens (single use).
    pub used_at: Option<OffsetDateTime>,
}

/// What a poll of the token endpoint found, after the store's atomic transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollResult {
    /// No such device code (or another client's): `invalid_grant`.
    Unknown,
    /// Still waiting, polled no faster than the interval: `authorization_pending`.
    Pending,
    /// Still waiting, polled too fast: `slow_down`; the interval is now this many seconds.
    SlowDown {
        /// The new interval.
        interval_secs: i64,
    },
    /// The user denied: `access_denied`.
    Denied,
    /// The codes expired before tokens were issued: `expired_token`.
    Expired,
    /// Tokens were already issued for this code: `invalid_grant`.
    Used,
    /// Approved, and this poll won the single redemption: issue the tokens.
    Redeemed(Box<DeviceAuthorization>),
}

/// What a poll answers for an authorization in this state that none of the atomic transitions
/// (pending → polled, pending → slowed down, approved → redeemed) applied to.
pub fn settled(found: Option<&DeviceAuthorization>, now: OffsetDateTime) -> PollResult {
    match found {
        None => PollResult::Unknown,
        Some(a) if a.used_at.is_some() => PollResult::Used,
        Some(a) if a.expires_at < now => PollResult::Expired,
        Some(a) if a.state == DeviceState::Denied => PollResult::Denied,
        // A pending or approved row the transitions did not take changed under us (another
        // poll won the redemption an instant ago): tell this poller it is spent.
        Some(_) => PollResult::Used,
    }
}

/// Whether a poll at `now` comes sooner than `interval_secs` after `last_poll_at`.
pub fn too_fast(
    last_poll_at: Option<OffsetDateTime>,
    interval_secs: i64,
    now: OffsetDateTime,
) -> bool {
    last_poll_at.is_some_and(|last| now < last + time::Duration::seconds(interval_secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn record(now: OffsetDateTime) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code_hash: "h".to_owned(),
            user_code: UserCode::parse("BCDF-GHJK").unwrap(),
            client_id: "c".to_owned(),
            scopes: Vec::new(),
            resources: Vec::new(),
            dpop_jkt: None,
            state: DeviceState::Pending,
            user_id: None,
            grant_id: None,
            interval_secs: 5,
            last_poll_at: None,
            created_at: now,
            expires_at: now + time::Duration::minutes(10),
            used_at: None,
        }
    }

    #[test]
    fn states_round_trip() {
        for s in [
            DeviceState::Pending,
            DeviceState::Approved,
            DeviceState::Denied,
        ] {
            assert_eq!(DeviceState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeviceState::parse("used"), None);
    }

    #[test]
    fn settled_answers_in_rfc_order() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(settled(None, now), PollResult::Unknown);
        let mut r = record(now);
        r.state = DeviceState::Denied;
        assert_eq!(settled(Some(&r), now), PollResult::Denied);
        r.expires_at = now - time::Duration::SECOND;
        assert_eq!(settled(Some(&r), now), PollResult::Expired);
        r.used_at = Some(now);
        assert_eq!(settled(Some(&r), now), PollResult::Used);
    }

    #[test]
    fn too_fast_is_within_the_interval() {
        let now = OffsetDateTime::now_utc();
        assert!(!too_fast(None, 5, now));
        assert!(too_fast(Some(now - time::Duration::seconds(4)), 5, now));
        assert!(!too_fast(Some(now - time::Duration::seconds(5)), 5, now));
    }
}
