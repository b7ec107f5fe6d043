//! Multi-factor and passwordless sign-in: what a user proves beyond the password, and what a
//! deployment, a client or a request demands of it. Free of HTTP and database types.
//!
//! - [`policy`]: the MFA policy (`optional | required | passkey_required`) and the
//!   authentication context classes (`acr`) a sign-in reaches, from its `amr` methods.
//! - [`settings`]: the `mfa:` section of `identity.yml`.
//! - [`passkeys`]: the passkey ceremonies (options, finishing them, a user's credentials).
//! - [`webauthn`]: the WebAuthn relying-party checks (registration and assertion verification).
//! - [`totp`]: HOTP/TOTP codes, base32 secrets and the `otpauth://` URI.
//! - [`qr`]: the enrolment QR code as inline SVG.
//! - [`recovery`]: recovery code generation and parsing.
//! - [`seal`]: TOTP secrets sealed at rest under a key derived from the key-encryption key.
//! - [`totp_service`]: enrolment, sign-in checks, recovery codes and removal, for the pages.

pub mod passkeys;
pub mod policy;
pub mod qr;
pub mod recovery;
pub mod seal;
pub mod settings;
pub mod totp;
pub mod totp_service;
pub mod webauthn;

pub use policy::{Acr, MfaPolicy};
pub use settings::{AttestationPolicy, MfaSettings, TotpAlgorithm, TotpSettings, WebAuthnSettings};
