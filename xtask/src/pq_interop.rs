//! The post-quantum half of `cargo xtask interop`: ML-DSA JWS and ML-KEM JWE
//! (draft-ietf-jose-pqc-kem-05) between our JOSE layer (`crates/jose/examples/pq_interop.rs`) and
//! `interop/python/pq_interop.py` on PyPI `cryptography` (OpenSSL's ML-DSA/ML-KEM, not aws-lc)
//! and `pycryptodome` (KMAC256), both directions, in a venv the project installs itself from
//! `interop/python/requirements.txt` (exact versions and hashes) under `<target>/interop/venv`;
//! then `interop/node/pq.mjs` on npm `@noble/post-quantum` (pure JavaScript; installed by the Node
//! step's `npm ci`), both directions.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{capture, cargo, root, run};

const PYTHON: &str = "python3.11";

/// The summary lines: rust → python, python → rust, rust → noble, noble → rust.
pub struct Summary {
    /// Python's counts of our vectors.
    pub rust_python: String,
    /// Our counts of Python's vectors.
    pub python_rust: String,
    /// noble's counts of our vectors.
    pub rust_noble: String,
    /// Our counts of noble's vectors.
    pub noble_rust: String,
}

/// Runs the steps in `dir`.
pub fn run_pq(dir: &Path) -> Result<Summary, String> {
    let py_dir = root().join("interop").join("python");
    let python = ensure_venv(&py_dir.join("requirements.txt"))?;
    let script = py_dir.join("pq_interop.py");
    let keys = dir.join("python-kem-keys.json");
    let ours = dir.join("cryptoutil-jose-pq.json");
    let theirs = dir.join("python-pq.json");
    let py = |args: &[&Path], command: &str| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(command).args(args);
        cmd
    };
    let example = |command: &str, a: &Path, b: &Path| {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--quiet",
            "--locked",
            "-p",
            "cryptoutil-jose",
            "--example",
            "pq_interop",
            "--",
            command,
        ])
        .arg(a)
        .arg(b);
        cmd
    };
    run("python makes ML-KEM keys", &mut py(&[&keys], "keys"))?;
    run(
        "rust produces PQ vectors",
        &mut example("produce", &keys, &ours),
    )?;
    let python_checked = capture(
        "python checks rust's PQ vectors",
        &mut py(&[&keys, &ours], "check"),
    )?;
    run(
        "python produces PQ vectors",
        &mut py(&[&ours, &theirs], "produce"),
    )?;
    let rust_checked = capture(
        "rust checks python's PQ vectors",
        &mut example("check", &ours, &theirs),
    )?;
    let node_dir = root().join("interop").join("node");
    let noble_file = dir.join("noble-pq.json");
    let node = |args: &[&Path], command: &str| {
        let mut cmd = Command::new("node");
        cmd.current_dir(&node_dir)
            .arg("pq.mjs")
            .arg(command)
            .args(args);
        cmd
    };
    let noble_checked = capture(
        "noble checks rust's PQ vectors",
        &mut node(&[&ours], "check"),
    )?;
    run(
        "noble produces PQ vectors",
        &mut node(&[&ours, &noble_file], "produce"),
    )?;
    let rust_checked_noble = capture(
        "rust checks noble's PQ vectors",
        &mut example("check", &ours, &noble_file),
    )?;
    let counts = |out: &str| {
        let line = out.lines().next().unwrap_or_default();
        line.split_once(": ").map_or(line, |(_, c)| c).to_owned()
    };
    Ok(Summary {
        rust_python: counts(&python_checked),
        python_rust: counts(&rust_checked),
        rust_noble: counts(&noble_checked),
        noble_rust: counts(&rust_checked_noble),
    })
}

/// The venv's python, (re)created when the requirements changed (their text is kept in the venv
/// as a stamp) or when it no longer runs.
pub(crate) fn ensure_venv(requirements: &Path) -> Result<PathBuf, String> {
    let wanted = std::fs::read_to_string(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let venv = crate::target_dir()?.join("interop").join("venv");
    let stamp = venv.join("cryptoutil-requirements.txt");
    let python = venv.join("bin").join("python");
    let runs = || {
        Command::new(&python)
            .args(["-c", "import cryptography, Crypto"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) && runs() {
        println!("==> python interop venv up to date ({})", venv.display());
        return Ok(python);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the old venv {}: {e}", venv.display()))?;
    }
    let found = Command::new(PYTHON)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        return Err(format!(
            "interop needs `{PYTHON}` on PATH (the pinned wheels are for CPython 3.11)"
        ));
    }
    run(
        "python venv for the PQ interop",
        Command::new(PYTHON).args(["-m", "venv"]).arg(&venv),
    )?;
    run(
        "pip install cryptography, pycryptodome (pinned, hashes required)",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--require-hashes",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-r",
            ])
            .arg(requirements),
    )?;
    run(
        "pip check (every dependency is pinned)",
        Command::new(&python).args(["-m", "pip", "check", "--disable-pip-version-check"]),
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(python)
}
