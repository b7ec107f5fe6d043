//! The MFA policy and the authentication context classes (`acr`, OpenID Connect Core §2) a
//! sign-in reaches.
//!
//! Three classes, each stronger than the one before:
//!
//! | `acr` | reached by |
//! |---|---|
//! | `urn:cryptoutil:acr:sfa` | one factor: the password |
//! | `urn:cryptoutil:acr:mfa` | two factors: password and TOTP or recovery code, or a passkey with user verification |
//! | `phr` | phishing-resistant (OpenID EAP ACR Values 1.0): a passkey, as the second factor or with user verification |

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::signin::AuthMethod;

/// What a deployment or a client demands of every sign-in (`mfa.policy`, a client's `mfa`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// Users who enrolled a second factor must use it; the others sign in with the password.
    #[default]
    Optional,
    /// Every sign-in needs two factors; a user without a second factor enrols one first.
    Required,
    /// Every sign-in needs a passkey (passwordless, or after the password).
    PasskeyRequired,
}

impl MfaPolicy {
    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
            Self::PasskeyRequired => "passkey_required",
        }
    }

    /// Parses the configured name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "optional" => Some(Self::Optional),
            "required" => Some(Self::Required),
            "passkey_required" => Some(Self::PasskeyRequired),
            _ => None,
        }
    }

    /// The least class a sign-in under this policy must reach.
    pub fn minimum_acr(self) -> Acr {
        match self {
            Self::Optional => Acr::SingleFactor,
            Self::Required => Acr::MultiFactor,
            Self::PasskeyRequired => Acr::PhishingResistant,
        }
    }
}

/// An authentication context class, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Acr {
    /// One factor (`urn:cryptoutil:acr:sfa`).
    SingleFactor,
    /// Two factors (`urn:cryptoutil:acr:mfa`).
    MultiFactor,
    /// Phishing-resistant: a passkey (`phr`).
    PhishingResistant,
}

impl Acr {
    /// Every class, weakest first: `acr_values_supported` in discovery.
    pub const ALL: [Acr; 3] = [
        Self::SingleFactor,
        Self::MultiFactor,
        Self::PhishingResistant,
    ];

    /// The `acr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleFactor => "urn:cryptoutil:acr:sfa",
            Self::MultiFactor => "urn:cryptoutil:acr:mfa",
            Self::PhishingResistant => "phr",
        }
    }

    /// Parses an `acr` value (`None`: not one of ours).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|acr| acr.as_str() == text)
    }

    /// The class a sign-in with these methods reached.
    pub fn of(methods: &[AuthMethod]) -> Self {
        let key = methods
            .iter()
            .any(|m| matches!(m, AuthMethod::HardwareKey | AuthMethod::SoftwareKey));
        if key && is_multi_factor(methods) {
            Self::PhishingResistant
        } else if is_multi_factor(methods) {
            Self::MultiFactor
        } else {
            Self::SingleFactor
        }
    }
}

/// True when the methods prove two factors: the password and a one-time code or a key, or a
/// key with user verification (`mfa` recorded by the passkey check).
pub fn is_multi_factor(methods: &[AuthMethod]) -> bool {
    let has = |m: AuthMethod| methods.contains(&m);
    has(AuthMethod::MultiFactor)
        || (has(AuthMethod::Password)
            && (has(AuthMethod::OneTimePassword)
                || has(AuthMethod::HardwareKey)
                || has(AuthMethod::SoftwareKey)))
}

/// The `amr` claim (RFC 8176) of a sign-in: its methods in the order used, plus `mfa` when
/// they prove two factors.
pub fn amr(methods: &[AuthMethod]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::with_capacity(methods.len() + 1);
    for m in methods {
        if !out.contains(&m.as_str()) {
            out.push(m.as_str());
        }
    }
    if is_multi_factor(methods) && !out.contains(&"mfa") {
        out.push("mfa");
    }
    out
}

/// What a grant records of a sign-in with these methods: its `amr` values and its `acr`.
pub fn grant_context(methods: &[AuthMethod]) -> (Vec<String>, String) {
    (
        amr(methods).into_iter().map(str::to_owned).collect(),
        Acr::of(methods).as_str().to_owned(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use AuthMethod::*;

    #[test]
    fn classes_follow_the_factors() {
        assert_eq!(Acr::of(&[Password]), Acr::SingleFactor);
        assert_eq!(Acr::of(&[Password, OneTimePassword]), Acr::MultiFactor);
        assert_eq!(
            Acr::of(&[Password, HardwareKey, UserPresence]),
            Acr::PhishingResistant
        );
        assert_eq!(
            Acr::of(&[SoftwareKey, UserPresence, MultiFactor]),
            Acr::PhishingResistant
        );
        assert_eq!(Acr::of(&[SoftwareKey, UserPresence]), Acr::SingleFactor);
        assert!(Acr::SingleFactor < Acr::MultiFactor && Acr::MultiFactor < Acr::PhishingResistant);
    }

    #[test]
    fn amr_adds_mfa_once() {
        assert_eq!(amr(&[Password]), ["pwd"]);
        assert_eq!(amr(&[Password, OneTimePassword]), ["pwd", "otp", "mfa"]);
        assert_eq!(
            amr(&[HardwareKey, UserPresence, MultiFactor]),
            ["hwk", "user", "mfa"]
        );
    }

    #[test]
    fn names_round_trip() {
        for acr in Acr::ALL {
            assert_eq!(Acr::parse(acr.as_str()), Some(acr));
        }
        assert_eq!(Acr::parse("urn:other"), None);
        for policy in [
            MfaPolicy::Optional,
            MfaPolicy::Required,
            MfaPolicy::PasskeyRequired,
        ] {
            assert_eq!(MfaPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(MfaPolicy::Required.minimum_acr(), Acr::MultiFactor);
    }
}
