//! JOSE: JWK, JWS, JWE and JWA on aws-lc-rs primitives. No HTTP, no database.
//!
//! * [`jwk`] — keys (`oct`, `RSA`, `EC`, `OKP`, `AKP` via [`akp`]), parsing, serialization, generation, RFC 7638 thumbprints.
//! * [`jws`] — JWS compact serialization (RFC 7515).
//! * [`jwe`] — JWE compact and general JSON serialization (RFC 7516).
//! * [`jwa`] — algorithm identifiers (RFC 7518), restricted to FIPS 140-3 approved algorithms.
//! * [`policy`] — the FIPS build's approved table, enforced at every entry point.
//!
//! Every failure is a typed [`JoseError`]; nothing in this crate panics on untrusted input.

pub mod akp;
pub mod b64;
mod der;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod jwa;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod kmac;
pub mod limits;
pub mod policy;

pub use error::{JoseError, Result};
pub use header::Header;
pub use jwa::{ContentEncryption, EcCurve, JweAlgorithm, JwsAlgorithm, KeyAlgorithm, OkpCurve};
pub use jwk::Jwk;
