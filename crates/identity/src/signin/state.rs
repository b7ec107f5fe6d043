//! The sign-in state machine of a browser session:
//!
//! ```text
//! Anonymous ──password──▶ PasswordVerified ──policy──▶ SignedIn
//!                                  │                      ▲
//!                                  └──▶ SecondFactorRequired ──second factor──┘
//! Anonymous ──passkey (passwordless)──────────────────────────────────────▶ SignedIn
//! ```
//!
//! [`PasswordVerified`] lives only within the request that checked the password: the same
//! request decides ([`PasswordVerified::conclude`]) whether a second factor is required, so a
//! stored session is always [`SignInState::Anonymous`], [`SignInState::SecondFactorRequired`]
//! or [`SignInState::SignedIn`]. Each step records the methods used (the `amr` values of
//! RFC 8176) and the final one the authentication time (`auth_time`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A way the user proved who they are: the `amr` values of RFC 8176.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethod {
    /// A password (`pwd`).
    #[serde(rename = "pwd")]
    Password,
    /// A one-time password (`otp`).
    #[serde(rename = "otp")]
    OneTimePassword,
    /// A device-bound key: a security key or a passkey that cannot leave its device (`hwk`).
    #[serde(rename = "hwk")]
    HardwareKey,
    /// A synced passkey: backup eligible, its key leaves the device (`swk`).
    #[serde(rename = "swk")]
    SoftwareKey,
    /// The authenticator tested the user's presence (`user`).
    #[serde(rename = "user")]
    UserPresence,
    /// One method proved two factors by itself: a passkey with user verification (`mfa`).
    #[serde(rename = "mfa")]
    MultiFactor,
}

impl AuthMethod {
    /// The `amr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::OneTimePassword => "otp",
            Self::HardwareKey => "hwk",
            Self::SoftwareKey => "swk",
            Self::UserPresence => "user",
            Self::MultiFactor => "mfa",
        }
    }

    /// Parses an `amr` value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pwd" => Some(Self::Password),
            "otp" => Some(Self::OneTimePassword),
            "hwk" => Some(Self::HardwareKey),
            "swk" => Some(Self::SoftwareKey),
            "user" => Some(Self::UserPresence),
            "mfa" => Some(Self::MultiFactor),
            _ => None,
        }
    }
}

/// Whether a second factor is required after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorPolicy {
    /// The password alone signs in (a user without a second factor, under the `optional`
    /// policy).
    NotRequired,
    /// A second factor must follow the password.
    Required,
}

/// The sign-in state a session stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInState {
    /// Nobody has signed in.
    Anonymous,
    /// The password was right; a second factor must follow before the user is signed in.
    SecondFactorRequired {
        /// The user.
        user_id: String,
        /// The methods used so far.
        methods: Vec<AuthMethod>,
    },
    /// Signed in.
    SignedIn {
        /// The user (`sub`).
        user_id: String,
        /// When the sign-in completed (`auth_time`).
        auth_time: OffsetDateTime,
        /// The methods used (`amr`).
        methods: Vec<AuthMethod>,
    },
}

/// A step that does not apply to the session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this sign-in step does not apply to the session's state")]
pub struct OutOfOrder;

/// The password was just verified (within the current request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordVerified {
    /// The user.
    pub user_id: String,
    /// When the password was verified.
    pub at: OffsetDateTime,
}

impl PasswordVerified {
    /// The state the session moves to: signed in with the password alone, or waiting for a
    /// second factor.
    pub fn conclude(self, policy: SecondFactorPolicy) -> SignInState {
        match policy {
            SecondFactorPolicy::NotRequired => SignInState::SignedIn {
                user_id: self.user_id,
                auth_time: self.at,
                methods: vec![AuthMethod::Password],
            },
            SecondFactorPolicy::Required => SignInState::SecondFactorRequired {
                user_id: self.user_id,
                methods: vec![AuthMethod::Password],
            },
        }
    }
}

impl SignInState {
    /// The signed-in user and when they signed in, if signed in.
    pub fn signed_in(&self) -> Option<(&str, OffsetDateTime)> {
        match self {
            Self::SignedIn {
                user_id, auth_time, ..
            } => Some((user_id, *auth_time)),
            _ => None,
        }
    }

    /// The user this session is about (signed in or part way), if any.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::SecondFactorRequired { user_id, .. } | Self::SignedIn { user_id, .. } => {
                Some(user_id)
            }
        }
    }

    /// The methods used so far (`amr`).
    pub fn methods(&self) -> &[AuthMethod] {
        match self {
            Self::Anonymous => &[],
            Self::SecondFactorRequired { methods, .. } | Self::SignedIn { methods, .. } => methods,
        }
    }

    /// Step-up: a signed-in session whose sign-in is too weak for a request goes back to
    /// waiting for a second factor, keeping the methods already used (the next factor adds to
    /// them and sets a new `auth_time`).
    pub fn step_up(self) -> Result<Self, OutOfOrder> {
        match self {
            Self::SignedIn {
                user_id, methods, ..
            } => Ok(Self::SecondFactorRequired { user_id, methods }),
            _ => Err(OutOfOrder),
        }
    }

    /// Completes a sign-in waiting for a second factor with `method`, verified at `now`.
    pub fn second_factor_verified(
        self,
        method: AuthMethod,
        now: OffsetDateTime,
    ) -> Result<Self, OutOfOrder> {
        match self {
            Self::SecondFactorRequired {
                user_id,
                mut methods,
            } if !methods.contains(&method) => {
                methods.push(method);
                Ok(Self::SignedIn {
                    user_id,
                    auth_time: now,
                    methods,
                })
            }
            _ => Err(OutOfOrder),
        }
    }

    /// Completes a sign-in with a passkey that proved `methods` for `user_id` (key method
    /// first, then `user`, `mfa`), verified at `now`: passwordless from a session nobody has
    /// signed in to, or as the second factor of a sign-in waiting for one for that same user
    /// (the first method completes it, the others are added).
    pub fn passkey_verified(
        self,
        user_id: &str,
        methods: &[AuthMethod],
        now: OffsetDateTime,
    ) -> Result<Self, OutOfOrder> {
        let (&key, others) = methods.split_first().ok_or(OutOfOrder)?;
        let state = match self {
            Self::Anonymous => Self::SignedIn {
                user_id: user_id.to_owned(),
                auth_time: now,
                methods: Vec::new(),
            },
            waiting @ Self::SecondFactorRequired { .. } if waiting.user_id() == Some(user_id) => {
                waiting.second_factor_verified(key, now)?
            }
            _ => return Err(OutOfOrder),
        };
        let Self::SignedIn {
            user_id,
            auth_time,
            methods: mut used,
        } = state
        else {
            return Err(OutOfOrder);
        };
        for &m in std::iter::once(&key).chain(others) {
            if !used.contains(&m) {
                used.push(m);
            }
        }
        Ok(Self::SignedIn {
            user_id,
            auth_time,
            methods: used,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn verified() -> PasswordVerified {
        PasswordVerified {
            user_id: "u".to_owned(),
            at: at(100),
        }
    }

    #[test]
    fn the_password_alone_signs_in_when_no_second_factor_is_required() {
        let state = verified().conclude(SecondFactorPolicy::NotRequired);
        assert_eq!(state.signed_in(), Some(("u", at(100))));
        assert_eq!(state.methods(), &[AuthMethod::Password]);
    }

    #[test]
    fn a_second_factor_completes_the_sign_in_and_is_recorded() {
        let waiting = verified().conclude(SecondFactorPolicy::Required);
        assert_eq!(waiting.signed_in(), None);
        assert_eq!(waiting.user_id(), Some("u"));
        let done = waiting
            .second_factor_verified(AuthMethod::OneTimePassword, at(130))
            .unwrap();
        assert_eq!(done.signed_in(), Some(("u", at(130))));
        let amr: Vec<&str> = done.methods().iter().map(|m| m.as_str()).collect();
        assert_eq!(amr, ["pwd", "otp"]);
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        assert_eq!(
            SignInState::Anonymous.second_factor_verified(AuthMethod::HardwareKey, at(1)),
            Err(OutOfOrder)
        );
        let signed_in = verified().conclude(SecondFactorPolicy::NotRequired);
        assert_eq!(
            signed_in.second_factor_verified(AuthMethod::OneTimePassword, at(1)),
            Err(OutOfOrder)
        );
        let waiting = verified().conclude(SecondFactorPolicy::Required);
        assert_eq!(
            waiting.second_factor_verified(AuthMethod::Password, at(1)),
            Err(OutOfOrder)
        );
    }

    #[test]
    fn a_step_up_keeps_the_methods_and_the_next_factor_adds_to_them() {
        let signed_in = verified().conclude(SecondFactorPolicy::NotRequired);
        let waiting = signed_in.step_up().unwrap();
        assert_eq!(waiting.signed_in(), None);
        let done = waiting
            .second_factor_verified(AuthMethod::OneTimePassword, at(500))
            .unwrap();
        assert_eq!(done.signed_in(), Some(("u", at(500))));
        assert_eq!(
            done.methods(),
            &[AuthMethod::Password, AuthMethod::OneTimePassword]
        );
        assert_eq!(SignInState::Anonymous.step_up(), Err(OutOfOrder));
    }

    #[test]
    fn a_passkey_signs_in_passwordless_or_completes_a_second_factor() {
        let proved = [
            AuthMethod::SoftwareKey,
            AuthMethod::UserPresence,
            AuthMethod::MultiFactor,
        ];
        let done = SignInState::Anonymous
            .passkey_verified("u", &proved, at(200))
            .unwrap();
        assert_eq!(done.signed_in(), Some(("u", at(200))));
        assert_eq!(done.methods(), &proved);

        let waiting = verified().conclude(SecondFactorPolicy::Required);
        let done = waiting
            .passkey_verified(
                "u",
                &[AuthMethod::HardwareKey, AuthMethod::UserPresence],
                at(300),
            )
            .unwrap();
        assert_eq!(done.signed_in(), Some(("u", at(300))));
        let amr: Vec<&str> = done.methods().iter().map(|m| m.as_str()).collect();
        assert_eq!(amr, ["pwd", "hwk", "user"]);
    }

    #[test]
    fn a_passkey_for_another_user_or_a_signed_in_session_is_out_of_order() {
        let proved = [AuthMethod::HardwareKey, AuthMethod::UserPresence];
        let waiting = verified().conclude(SecondFactorPolicy::Required);
        assert_eq!(
            waiting.passkey_verified("someone-else", &proved, at(1)),
            Err(OutOfOrder)
        );
        let signed_in = verified().conclude(SecondFactorPolicy::NotRequired);
        assert_eq!(
            signed_in.passkey_verified("u", &proved, at(1)),
            Err(OutOfOrder)
        );
        assert_eq!(
            SignInState::Anonymous.passkey_verified("u", &[], at(1)),
            Err(OutOfOrder)
        );
    }

    #[test]
    fn amr_values_round_trip() {
        for m in [
            AuthMethod::Password,
            AuthMethod::OneTimePassword,
            AuthMethod::HardwareKey,
            AuthMethod::SoftwareKey,
            AuthMethod::UserPresence,
            AuthMethod::MultiFactor,
        ] {
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(AuthMethod::parse("sms"), None);
    }
}
