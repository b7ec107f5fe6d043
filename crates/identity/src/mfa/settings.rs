//! The `mfa:` section of `identity.yml`: the deployment's MFA policy, TOTP parameters,
//! recovery codes, WebAuthn relying-party settings and the re-authentication window of the
//! account page.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{HumanDuration, Validator};

use super::policy::MfaPolicy;

/// Multi-factor sign-in (`mfa:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MfaSettings {
    /// What every sign-in must reach (default `optional`: users who enrolled a second factor
    /// use it). A client's own `mfa` can only raise it.
    pub policy: MfaPolicy,
    /// TOTP authenticators (RFC 6238).
    pub totp: TotpSettings,
    /// Recovery codes per set (default 10; 5 to 20).
    pub recovery_codes: u32,
    /// Passkeys and security keys (WebAuthn).
    pub webauthn: WebAuthnSettings,
    /// How recent a sign-in must be for the account page to add or remove a factor or end
    /// other sessions without asking again (default 15m; 1m to 24h).
    pub reauthentication_window: HumanDuration,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            policy: MfaPolicy::Optional,
            totp: TotpSettings::default(),
            recovery_codes: 10,
            webauthn: WebAuthnSettings::default(),
            reauthentication_window: HumanDuration::from_secs(900),
        }
    }
}

/// The HMAC of TOTP codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1: what authenticator apps use (HMAC-SHA-1 remains approved for HMAC).
    #[default]
    SHA1,
    /// HMAC-SHA-256.
    SHA256,
}

impl TotpAlgorithm {
    /// The `algorithm` parameter of an `otpauth://` URI and the stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SHA1 => "SHA1",
            Self::SHA256 => "SHA256",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "SHA1" => Some(Self::SHA1),
            "SHA256" => Some(Self::SHA256),
            _ => None,
        }
    }
}

/// TOTP parameters for new enrolments (`mfa.totp`); an enrolled authenticator keeps its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TotpSettings {
    /// `SHA1` (default) or `SHA256`.
    pub algorithm: TotpAlgorithm,
    /// Digits per code: 6 (default) or 8.
    pub digits: u32,
    /// The time step (default 30s; 15s to 2m, whole seconds).
    pub period: HumanDuration,
    /// The issuer shown in authenticator apps (default "cryptoutil Identity").
    pub issuer_label: String,
}

impl Default for TotpSettings {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::SHA1,
            digits: 6,
            period: HumanDuration::from_secs(30),
            issuer_label: "cryptoutil Identity".to_owned(),
        }
    }
}

/// Which attestation statements a new credential may bring (`mfa.webauthn.attestation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestationPolicy {
    /// `none` or a verified `packed` statement (default; what passkeys send).
    #[default]
    NoneOrPacked,
    /// Only a verified `packed` statement (security keys that attest their model).
    PackedOnly,
}

/// The WebAuthn relying party (`mfa.webauthn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebAuthnSettings {
    /// The relying party id (default: the issuer's host). Credentials are bound to it: changing
    /// it makes every registered passkey unusable.
    pub rp_id: Option<String>,
    /// The name authenticators show (default "cryptoutil Identity").
    pub rp_name: String,
    /// The origins ceremonies may come from (default: the issuer's origin).
    pub origins: Vec<url::Url>,
    /// Attestation statements accepted at registration.
    pub attestation: AttestationPolicy,
    /// How long a ceremony's challenge lives (default 5m; 30s to 30m).
    pub challenge_lifetime: HumanDuration,
}

impl Default for WebAuthnSettings {
    fn default() -> Self {
        Self {
            rp_id: None,
            rp_name: "cryptoutil Identity".to_owned(),
            origins: Vec::new(),
            attestation: AttestationPolicy::NoneOrPacked,
            challenge_lifetime: HumanDuration::from_secs(300),
        }
    }
}

impl MfaSettings {
    /// Checks the ranges.
    pub fn validate(&self, v: &mut Validator) {
        v.check(
            "mfa.totp.digits",
            matches!(self.totp.digits, 6 | 8),
            "must be 6 or 8",
        );
        let period = self.totp.period.get();
        v.check(
            "mfa.totp.period",
            (15..=120).contains(&period.as_secs()) && period.subsec_nanos() == 0,
            "must be whole seconds between 15s and 2m",
        );
        v.check(
            "mfa.totp.issuer_label",
            !self.totp.issuer_label.trim().is_empty()
                && self.totp.issuer_label.len() <= 64
                && !self.totp.issuer_label.contains(':'),
            "must be 1 to 64 characters without ':'",
        );
        v.check(
            "mfa.recovery_codes",
            (5..=20).contains(&self.recovery_codes),
            "must be between 5 and 20",
        );
        v.check(
            "mfa.webauthn.rp_name",
            !self.webauthn.rp_name.trim().is_empty() && self.webauthn.rp_name.len() <= 64,
            "must be 1 to 64 characters",
        );
        v.check(
            "mfa.webauthn.rp_id",
            self.webauthn.rp_id.as_deref().is_none_or(|id| {
                !id.is_empty()
                    && id.len() <= 253
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            }),
            "must be a host name (no scheme, port or path)",
        );
        v.check(
            "mfa.webauthn.origins",
            self.webauthn.origins.iter().all(|o| {
                o.scheme() == "https"
                    && o.path() == "/"
                    && o.query().is_none()
                    && o.host().is_some()
            }),
            "must be https origins without a path",
        );
        let challenge = self.webauthn.challenge_lifetime.get();
        v.check(
            "mfa.webauthn.challenge_lifetime",
            (30..=1800).contains(&challenge.as_secs()),
            "must be between 30s and 30m",
        );
        let window = self.reauthentication_window.get();
        v.check(
            "mfa.reauthentication_window",
            (60..=86_400).contains(&window.as_secs()),
            "must be between 1m and 24h",
        );
    }
}
