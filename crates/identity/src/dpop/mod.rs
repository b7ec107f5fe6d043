//! DPoP (RFC 9449) at Identity: the proof verifier and replay-cache contract are shared with the
//! resource servers and live in [`cryptoutil_realm::dpop`]; they are re-exported here.

pub use cryptoutil_realm::dpop::*;
