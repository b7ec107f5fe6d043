//! The device authorization grant (RFC 8628), free of HTTP types: for clients that cannot
//! take a redirect (CLIs, TVs, agents). The device asks for a pair of codes, the user types
//! the short one at [`crate::paths::DEVICE`] in any browser, signs in and decides; meanwhile
//! the device polls the token endpoint with the long one.
//!
//! - [`user_code`]: the user code's alphabet, generation and normalisation.
//! - [`authorization`]: the stored request, its states and what a poll answers.
//! - [`service`]: the request, the entry with its brute-force limits, the decision, the poll.
//!
//! Storage is `crate::storage` (`device_authorizations`, migration 4); the pages and the
//! endpoint are `crate::api::device`.

pub mod authorization;
pub mod service;
pub mod user_code;

pub use authorization::{
    DeviceAuthorization, DeviceState, PollResult, SLOW_DOWN_STEP_SECS, settled, too_fast,
};
pub use service::{
    DecisionOutcome, DeviceAuthorizationResponse, DeviceConfig, DeviceService, EntryProblem,
    PendingDevice,
};
pub use user_code::UserCode;
