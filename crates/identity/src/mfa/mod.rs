//! Multi-factor and passwordless sign-in: what a user proves beyond the password, and what a
//! deployment, a client or a request demands of it. Free of HTTP and database types.
//!
//! - [`policy`]: the MFA policy (`optional | required | passkey_required`) and the
//!   authentication context classes (`acr`) a sign-in reaches, from its `amr` methods.
//! - [`settings`]: the `mfa:` section of `identity.yml`.
//! - [`passkeys`]: the passkey ceremonies (options, finishing them, a user's credentials).
//! - [`webauthn`]: the WebAuthn relying-party checks (registration and assertion verification).

pub mod passkeys;
pub mod policy;
pub mod settings;
pub mod webauthn;

pub use policy::{Acr, MfaPolicy};
pub use settings::{AttestationPolicy, MfaSettings, TotpAlgorithm, TotpSettings, WebAuthnSettings};
