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

/// What a signed-in session still needs before a request may continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The sign-in is strong enough.
    Met,
    /// The user has a factor that reaches the class needed: ask for it (step-up).
    StepUp,
    /// The deployment or the client requires a class no factor of the user reaches: the user
    /// enrols one first (signed in with what they have).
    SetUp,
}

/// What a sign-in that `reached` a class needs for a request. `enforced` is the class the
/// deployment's and the client's policies require; `requested` the weakest known class of the
/// request's `acr_values`; `reachable` the strongest class the user's factors can reach.
///
/// An enforced class is never waived: a user who cannot reach it sets up a factor. A requested
/// class is voluntary (OpenID Connect Core §3.1.2.1): the user steps up as far as their factors
/// go, and the tokens then say the class reached.
pub fn requirement(
    reached: Acr,
    enforced: Acr,
    requested: Option<Acr>,
    reachable: Acr,
) -> Requirement {
    if reached < enforced && reachable < enforced {
        return Requirement::SetUp;
    }
    let wanted = enforced.max(requested.unwrap_or(Acr::SingleFactor).min(reachable));
    if reached < wanted {
        Requirement::StepUp
    } else {
        Requirement::Met
    }
}

/// The class the deployment's policy and a client's (if it has one) require together.
pub fn enforced(deployment: MfaPolicy, client: Option<MfaPolicy>) -> Acr {
    deployment
        .minimum_acr()
        .max(client.map_or(Acr::SingleFactor, MfaPolicy::minimum_acr))
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
    fn an_enforced_class_out_of_reach_sends_the_user_to_set_up_a_factor() {
        use Acr::*;
        // Required, no factor: set up (whatever was asked).
        assert_eq!(
            requirement(SingleFactor, MultiFactor, None, SingleFactor),
            Requirement::SetUp
        );
        // Passkey required, only TOTP: set up a passkey, even after the TOTP.
        assert_eq!(
            requirement(MultiFactor, PhishingResistant, None, MultiFactor),
            Requirement::SetUp
        );
        // Required and within reach: step up.
        assert_eq!(
            requirement(SingleFactor, MultiFactor, None, MultiFactor),
            Requirement::StepUp
        );
        assert_eq!(
            requirement(SingleFactor, PhishingResistant, None, PhishingResistant),
            Requirement::StepUp
        );
        // Reached: met, even when the user could go further.
        assert_eq!(
            requirement(MultiFactor, MultiFactor, None, PhishingResistant),
            Requirement::Met
        );
    }

    #[test]
    fn a_requested_class_steps_up_as_far_as_the_factors_go() {
        use Acr::*;
        assert_eq!(
            requirement(SingleFactor, SingleFactor, Some(MultiFactor), MultiFactor),
            Requirement::StepUp
        );
        // Asked phr, only TOTP: step up to mfa, then it is met.
        assert_eq!(
            requirement(
                SingleFactor,
                SingleFactor,
                Some(PhishingResistant),
                MultiFactor
            ),
            Requirement::StepUp
        );
        assert_eq!(
            requirement(
                MultiFactor,
                SingleFactor,
                Some(PhishingResistant),
                MultiFactor
            ),
            Requirement::Met
        );
        // Asked mfa, no factor at all: not forced.
        assert_eq!(
            requirement(SingleFactor, SingleFactor, Some(MultiFactor), SingleFactor),
            Requirement::Met
        );
        assert_eq!(
            requirement(SingleFactor, SingleFactor, None, PhishingResistant),
            Requirement::Met
        );
    }

    #[test]
    fn the_client_can_only_raise_the_deployment_policy() {
        use MfaPolicy::*;
        assert_eq!(enforced(Optional, None), Acr::SingleFactor);
        assert_eq!(enforced(Optional, Some(Required)), Acr::MultiFactor);
        assert_eq!(enforced(Required, Some(Optional)), Acr::MultiFactor);
        assert_eq!(
            enforced(Required, Some(PasskeyRequired)),
            Acr::PhishingResistant
        );
    }

    #[test]
    fn a_grant_records_amr_and_acr() {
        let (amr, acr) = grant_context(&[Password, OneTimePassword]);
        assert_eq!(amr, ["pwd", "otp", "mfa"]);
        assert_eq!(acr, "urn:cryptoutil:acr:mfa");
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
