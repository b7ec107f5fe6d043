//! `cryptoutil version [--verbose] [--output json]`: the binary says which cryptographic module it
//! runs on, whether FIPS mode is on, and its TLS policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{run, stderr, stdout};
use serde_json::Value;

#[test]
fn version_prints_the_version_and_verbose_adds_the_crypto_module() {
    let out = run(&["version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("cryptoutil {}", env!("CARGO_PKG_VERSION"))
    );

    let out = run(&["version", "--verbose"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let module = if cfg!(feature = "fips") {
        "crypto module:     AWS-LC FIPS "
    } else {
        "crypto module:     AWS-LC "
    };
    assert!(text.contains(module), "{text}");
    let on = if cfg!(feature = "fips") { "on" } else { "off" };
    assert!(text.contains(&format!("FIPS mode:         {on}")), "{text}");
    assert!(text.contains("TLS versions:      TLSv1.3"), "{text}");
    assert!(text.contains("TLS cipher suites: TLS13_"), "{text}");
    assert!(text.contains("TLS key exchange:  "), "{text}");
}

#[test]
fn version_json_is_one_document_with_the_same_facts() {
    let out = run(&["version", "--verbose", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    let crypto = &doc["crypto"];
    assert_eq!(crypto["fips_build"], cfg!(feature = "fips"));
    assert_eq!(crypto["fips_mode"], cfg!(feature = "fips"));
    assert_eq!(
        crypto["fips_module_version"].is_u64(),
        cfg!(feature = "fips"),
        "{crypto}"
    );
    let version = crypto["version"].as_str().unwrap();
    assert!(
        version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{version}"
    );
    for list in ["cipher_suites", "kx_groups"] {
        let names = crypto["tls"][list].as_array().unwrap();
        assert!(!names.is_empty(), "{list}");
        assert!(names.iter().all(Value::is_string), "{list}");
    }
    // Without --verbose only the version.
    let out = run(&["version", "--output", "json"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(doc.get("crypto").is_none(), "{doc}");
    // A bad output format is a usage error.
    assert_eq!(run(&["version", "--output", "xml"]).status.code(), Some(2));
}

/// In the FIPS build every server command passes the start-up check (the module is in FIPS mode)
/// and goes on to its own checks: here, an unreadable configuration file (exit 2 for that reason,
/// not for FIPS).
#[test]
fn server_commands_pass_the_fips_start_up_check() {
    let out = run(&[
        "kms",
        "server",
        "start",
        "--config",
        "/nonexistent/cryptoutil-kms.yml",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("FIPS"), "{}", stderr(&out));
}
