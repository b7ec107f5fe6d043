//! The interactive sign-in, free of HTTP types: browser sessions with an explicit sign-in
//! state (anonymous → password verified → second factor required → signed in, recording the
//! `amr` methods and `auth_time`), the interaction they hold while the user is on the pages
//! (an authorization request, a device-code approval, an account action), and the
//! authorization request's way through sign-in and consent.
//!
//! - [`state`]: the state machine and the `amr` methods.
//! - [`pending`]: the pending interaction.
//! - [`session`]: the browser session and its stored form.
//! - [`service`]: sessions and the password check (brute-force backoff).
//! - [`flow`]: sign-in, consent and code for an authorization request.

pub mod flow;
pub mod pending;
pub mod service;
pub mod session;
pub mod state;

pub use flow::{AuthorizationFlow, Decision, Next, Unavailable};
pub use pending::{AccountAction, DeviceApproval, PendingInteraction};
pub use service::{SessionError, SignInFailure, SignInService, StartedSession};
pub use session::{BrowserSession, MAX_USER_AGENT_CHARS, SessionListing};
pub use state::{AuthMethod, OutOfOrder, PasswordVerified, SecondFactorPolicy, SignInState};
