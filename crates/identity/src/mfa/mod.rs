//! Multi-factor and passwordless sign-in: what a user proves beyond the password, and what a
//! deployment, a client or a request demands of it. Free of HTTP and database types.
//!
//! - [`policy`]: the MFA policy (`optional | required | passkey_required`) and the
//!   authentication context classes (`acr`) a sign-in reaches, from its `amr` methods.
//! - [`settings`]: the `mfa:` section of `identity.yml`.
//! - [`totp`]: HOTP/TOTP codes, base32 secrets and the `otpauth://` URI.
//! - [`qr`]: the enrolment QR code as inline SVG.
//! - [`recovery`]: recovery code generation and parsing.
//! - [`seal`]: TOTP secrets sealed at rest under a key derived from the key-encryption key.
//! - [`totp_service`]: enrolment, sign-in checks, recovery codes and removal, for the pages.

pub mod policy;
pub mod qr;
pub mod recovery;
pub mod seal;
pub mod settings;
pub mod totp;
pub mod totp_service;

pub use policy::{Acr, MfaPolicy};
pub use settings::{AttestationPolicy, MfaSettings, TotpAlgorithm, TotpSettings, WebAuthnSettings};
