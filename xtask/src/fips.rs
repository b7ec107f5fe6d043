//! The FIPS build (cargo feature `fips`, docs/security.md "FIPS build").
//!
//! `cargo xtask setup-fips` installs what `aws-lc-fips-sys` needs to build the AWS-LC FIPS module
//! from source: CMake and Go (hard requirements of the FIPS build: Go runs the module's
//! `delocate` and hash-injection tools), Perl and a C/C++ compiler, all from Debian's packages.
//!
//! `cargo xtask ci` runs [`stage`]: one build of every test binary of the JOSE, TLS and KMS
//! crates and of the `cryptoutil` binary with `--features fips` (one feature set, so one build in
//! the shared target directory: only aws-lc-rs and what depends on it are built again), then
//! each binary with the tests that matter for the FIPS build: all of JOSE and TLS, the KMS's
//! unit tests (key service, barrier) and its key lifecycle and crypto tests over HTTPS, and the
//! CLI's `version` command and start-up check.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Debian packages the AWS-LC FIPS build needs (bookworm has Go 1.19; AWS-LC needs ≥ 1.17.13).
const PACKAGES: [&str; 5] = ["cmake", "golang-go", "perl", "gcc", "g++"];

/// The crates built and tested with `--features fips`.
const CRATES: [&str; 4] = [
    "cryptoutil-jose",
    "cryptoutil-tls",
    "cryptoutil-kms",
    "cryptoutil",
];

/// Which tests of each test binary run: `(package, target, filters)`; an empty filter list runs
/// all of them, a `None` target matches every target of the package.
const SELECTION: &[(&str, Option<&str>, &[&str])] = &[
    ("cryptoutil-jose", None, &[]),
    ("cryptoutil-tls", None, &[]),
    // The key service, barrier and JOSE use of the KMS, without a server.
    ("cryptoutil-kms", Some("cryptoutil_kms"), &[]),
    // Over HTTPS: every key operation of SPEC §3.2 on SQLite, barrier rotation, the crypto report.
    (
        "cryptoutil-kms",
        Some("it"),
        &[
            "api::lifecycle",
            "api::barrier_rotation",
            "crypto_module::",
            "barrier::",
        ],
    ),
    ("cryptoutil", Some("cryptoutil"), &[]),
    ("cryptoutil", Some("it"), &["version::"]),
];

/// Installs the build tools unless `cmake` and `go` are already on PATH.
pub fn setup_fips() -> Result<(), String> {
    let present = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if present("cmake", "--version") && present("go", "version") && present("perl", "-v") {
        println!("==> setup-fips: cmake, go and perl present");
        return Ok(());
    }
    println!(
        "==> installing {} from Debian's packages (the AWS-LC FIPS module build)",
        PACKAGES.join(" ")
    );
    let install = || {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(PACKAGES);
        crate::browser::apt_get(&args)
    };
    if !install() {
        // A fresh machine may not have package lists yet.
        crate::browser::apt_get(&["update"]);
        if !install() {
            return Err(format!(
                "cannot install {0}; install them (apt-get install --no-install-recommends {0}) and retry",
                PACKAGES.join(" ")
            ));
        }
    }
    Ok(())
}

/// A test binary cargo built.
struct TestBinary {
    package: String,
    target: String,
    executable: PathBuf,
    dir: PathBuf,
}

/// `cargo test` with the FIPS feature set, always the same (so nothing is rebuilt between steps).
fn cargo_fips_test() -> Command {
    let mut cmd = crate::cargo();
    cmd.args(["test", "--locked", "--features", "fips"]);
    for c in CRATES {
        cmd.args(["-p", c]);
    }
    // Never pick up a system AWS-LC: the module is built from the crate's own sources.
    cmd.env("AWS_LC_FIPS_SYS_USE_SYSTEM", "0");
    cmd
}

/// The CI stage: tools, one build, the selected tests.
pub fn stage() -> Result<(), String> {
    let started = Instant::now();
    setup_fips()?;
    let binaries = build()?;
    let mut ran = 0;
    for (package, target, filters) in SELECTION {
        let selected = binaries
            .iter()
            .filter(|b| b.package == *package && target.is_none_or(|t| b.target == t));
        for binary in selected {
            let mut cmd = Command::new(&binary.executable);
            cmd.current_dir(&binary.dir).args(*filters);
            crate::run(
                &format!(
                    "fips: {} {} {}",
                    binary.package,
                    binary.target,
                    filters.join(" ")
                ),
                &mut cmd,
            )?;
            ran += 1;
        }
    }
    if ran == 0 {
        return Err("fips: no test binary was selected".to_owned());
    }
    println!(
        "==> fips stage passed in {:.0?} ({ran} test binaries)",
        started.elapsed()
    );
    Ok(())
}

/// Builds every test binary of [`CRATES`] with `--features fips` and returns them.
fn build() -> Result<Vec<TestBinary>, String> {
    let started = Instant::now();
    println!(
        "==> fips: building {} with --features fips",
        CRATES.join(", ")
    );
    let output = cargo_fips_test()
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("fips build failed ({})", output.status));
    }
    let binaries = test_binaries(&String::from_utf8_lossy(&output.stdout));
    println!(
        "==> fips: built {} test binaries in {:.0?}",
        binaries.len(),
        started.elapsed()
    );
    Ok(binaries)
}

/// The test executables in cargo's JSON messages.
fn test_binaries(messages: &str) -> Vec<TestBinary> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter_map(|m| {
            let executable = m["executable"].as_str()?;
            let manifest = Path::new(m["manifest_path"].as_str()?);
            // "path+file:///…/crates/kms#cryptoutil-kms@0.1.0" → "cryptoutil-kms"
            let id = m["package_id"].as_str()?;
            let package = id.rsplit_once('#')?.1.split('@').next()?.to_owned();
            Some(TestBinary {
                package,
                target: m["target"]["name"].as_str()?.to_owned(),
                executable: PathBuf::from(executable),
                dir: manifest.parent()?.to_path_buf(),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_are_read_from_cargo_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/kms#cryptoutil-kms@0.1.0","manifest_path":"/w/crates/kms/Cargo.toml","target":{"name":"it"},"profile":{"test":true},"executable":"/w/target/debug/deps/it-1"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/kms#cryptoutil-kms@0.1.0","manifest_path":"/w/crates/kms/Cargo.toml","target":{"name":"cryptoutil_kms"},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json",
        ]
        .join("\n");
        let found = test_binaries(&messages);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].package, "cryptoutil-kms");
        assert_eq!(found[0].target, "it");
        assert_eq!(found[0].dir, Path::new("/w/crates/kms"));
        assert_eq!(found[0].executable, Path::new("/w/target/debug/deps/it-1"));
    }

    #[test]
    fn every_selected_package_is_built() {
        for (package, _, _) in SELECTION {
            assert!(CRATES.contains(package), "{package}");
        }
    }

    /// The FIPS module's bindings are made by bindgen, which feeds its `syn` to prettyplease
    /// (held at 0.2.37, on syn 2): `cargo add` of an unrelated crate once re-resolved bindgen
    /// onto syn 3 and only this stage's build noticed. Cargo.lock must keep the two on one syn.
    #[test]
    fn bindgen_and_prettyplease_share_one_syn() {
        let lock = std::fs::read_to_string(crate::root().join("Cargo.lock")).unwrap();
        let syn_of = |package: &str| {
            let block = lock
                .split("[[package]]")
                .find(|b| b.contains(&format!("name = \"{package}\"\n")))
                .unwrap_or_else(|| panic!("{package} is not in Cargo.lock"));
            block
                .lines()
                .find(|l| l.trim_start().starts_with("\"syn"))
                .map(|l| l.trim().trim_end_matches(',').to_owned())
                .unwrap_or_else(|| "\"syn\"".to_owned())
        };
        let (bindgen, prettyplease) = (syn_of("bindgen"), syn_of("prettyplease"));
        assert_eq!(
            bindgen, prettyplease,
            "bindgen and prettyplease on different syn"
        );
    }
}
