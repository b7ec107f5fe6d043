//! The WebAuthn step of `cargo xtask interop`: `interop/python/webauthn_authenticator.py` (an
//! independent software authenticator on PyPI `fido2` and `cryptography`, in the pinned venv of
//! [`crate::pq_interop`]) makes fresh registration and assertion responses with new random keys,
//! and Identity's relying-party checks verify every one (the unit test
//! `mfa::webauthn::vectors::fido2_fixtures`, pointed at them instead of the committed fixtures).

use std::path::Path;
use std::process::Command;

use crate::{cargo, pq_interop, root, run};

/// Generates the fixtures into `dir/webauthn-fido2` and verifies them; returns a summary line.
pub fn run_webauthn(dir: &Path) -> Result<String, String> {
    let py_dir = root().join("interop").join("python");
    let python = pq_interop::ensure_venv(&py_dir.join("requirements.txt"))?;
    let out = dir.join("webauthn-fido2");
    run(
        "python (fido2) makes WebAuthn registrations and assertions",
        Command::new(&python)
            .arg(py_dir.join("webauthn_authenticator.py"))
            .arg(&out),
    )?;
    let count = std::fs::read_dir(&out)
        .map_err(|e| format!("cannot read {}: {e}", out.display()))?
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    run(
        "rust checks fido2's WebAuthn responses",
        cargo()
            .args([
                "test",
                "--quiet",
                "--locked",
                "-p",
                "cryptoutil-identity",
                "--lib",
                "mfa::webauthn::vectors::fido2_fixtures",
            ])
            .env("CRYPTOUTIL_WEBAUTHN_FIDO2_FIXTURES", &out),
    )?;
    Ok(format!(
        "{count} fixtures (ES256, ES384, RS256, PS256, EdDSA × none, packed self, packed x5c; bad x5c leaves refused)"
    ))
}
