//! DPoP (RFC 9449) at Identity. The proof verifier and replay-cache contract are shared with the
//! resource servers and live in [`cryptoutil_realm::dpop`]; they are re-exported here.
//!
//! - [`guard`]: the checks at the token and PAR endpoints (one header, htu, nonce, replay).
//! - [`nonce`]: stateless rotating server nonces every instance accepts.
//! - [`replay`]: the replay cache on the shared database.

pub mod guard;
pub mod nonce;
pub mod replay;

pub use cryptoutil_realm::dpop::*;
pub use guard::DpopGuard;
