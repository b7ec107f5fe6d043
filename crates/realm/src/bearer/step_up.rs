//! Step-up authentication for resources (RFC 9470): a resource may demand that the user behind
//! a token signed in with a given authentication context class (`acr`) and recently enough
//! (`auth_time` within `max_age`). A token that falls short is refused with 403 and a
//! `WWW-Authenticate: Bearer error="insufficient_user_authentication"` challenge naming the
//! `acr_values` (and `max_age`) the client should ask its authorization server for.
//!
//! Only user tokens are concerned: a token without a user sign-in (client credentials: no
//! `auth_time`, `sub` the client itself) has no user to step up and is not affected.

use super::AccessToken;

/// The RFC 9470 error code.
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// What a resource demands of the user's sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpPolicy {
    /// Accepted `acr` values: the token's `acr` must be one of them.
    pub acr_values: Vec<String>,
    /// Oldest accepted sign-in, in seconds before now (`auth_time`); `None`: any age.
    pub max_age: Option<u64>,
}

/// Why a user token falls short of a [`StepUpPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpShortfall {
    /// The token's `acr` is missing or not an accepted one.
    Acr,
    /// The sign-in is older than `max_age` (or its time is unknown).
    TooOld,
}

impl StepUpShortfall {
    /// The challenge's `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::Acr => "this operation needs a stronger sign-in",
            Self::TooOld => "this operation needs a more recent sign-in",
        }
    }
}

/// Whether `token` was issued for a user sign-in: it has `auth_time`, or a subject other than
/// its client (a client-credentials token's `sub` is its `client_id`).
pub fn is_user_token(token: &AccessToken) -> bool {
    token.auth_time.is_some() || token.client_id.as_deref() != Some(token.subject.as_str())
}

impl StepUpPolicy {
    /// Checks a user's sign-in (`acr`, `auth_time`) at `now` (seconds since the epoch).
    ///
    /// # Errors
    /// What falls short: the class first, then the age.
    pub fn check(
        &self,
        acr: Option<&str>,
        auth_time: Option<u64>,
        now: u64,
    ) -> Result<(), StepUpShortfall> {
        if !acr.is_some_and(|acr| self.acr_values.iter().any(|a| a == acr)) {
            return Err(StepUpShortfall::Acr);
        }
        if let Some(max_age) = self.max_age
            && auth_time.is_none_or(|at| now.saturating_sub(at) > max_age)
        {
            return Err(StepUpShortfall::TooOld);
        }
        Ok(())
    }

    /// The RFC 9470 §3 challenge parameters after `Bearer realm=…`: `error`,
    /// `error_description`, `acr_values` (space-separated) and `max_age` when set.
    pub fn challenge_params(&self, shortfall: StepUpShortfall) -> String {
        let clean = |s: &str| s.replace(['"', '\\'], "'");
        let mut out = format!(
            "error=\"{INSUFFICIENT_USER_AUTHENTICATION}\", error_description=\"{}\", \
             acr_values=\"{}\"",
            shortfall.description(),
            clean(&self.acr_values.join(" "))
        );
        if let Some(max_age) = self.max_age {
            out.push_str(&format!(", max_age=\"{max_age}\""));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const MFA: &str = "urn:cryptoutil:acr:mfa";

    fn policy(max_age: Option<u64>) -> StepUpPolicy {
        StepUpPolicy {
            acr_values: vec![MFA.to_owned(), "phr".to_owned()],
            max_age,
        }
    }

    #[test]
    fn the_class_must_be_one_of_the_accepted() {
        let p = policy(None);
        assert_eq!(p.check(Some(MFA), Some(0), 10_000), Ok(()));
        assert_eq!(p.check(Some("phr"), None, 10_000), Ok(()));
        assert_eq!(
            p.check(Some("urn:cryptoutil:acr:sfa"), Some(0), 10_000),
            Err(StepUpShortfall::Acr)
        );
        assert_eq!(p.check(None, Some(0), 10_000), Err(StepUpShortfall::Acr));
    }

    #[test]
    fn max_age_bounds_the_sign_in() {
        let p = policy(Some(300));
        assert_eq!(p.check(Some(MFA), Some(9_700), 10_000), Ok(()));
        assert_eq!(
            p.check(Some(MFA), Some(9_699), 10_000),
            Err(StepUpShortfall::TooOld)
        );
        assert_eq!(
            p.check(Some(MFA), None, 10_000),
            Err(StepUpShortfall::TooOld)
        );
        // A sign-in "in the future" (clock skew) is recent.
        assert_eq!(p.check(Some(MFA), Some(10_005), 10_000), Ok(()));
    }

    #[test]
    fn the_challenge_names_what_to_ask_for() {
        assert_eq!(
            policy(Some(300)).challenge_params(StepUpShortfall::Acr),
            "error=\"insufficient_user_authentication\", error_description=\"this operation \
             needs a stronger sign-in\", acr_values=\"urn:cryptoutil:acr:mfa phr\", \
             max_age=\"300\""
        );
        assert!(
            !policy(None)
                .challenge_params(StepUpShortfall::TooOld)
                .contains("max_age")
        );
    }
}
