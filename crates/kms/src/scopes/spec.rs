//! Keeps the scope table true to SPEC §3.6 ("Roles map to scopes"). The specification lives
//! beside the repository (`../shared/SPEC.md` from its root, in CI too); without it the test says
//! SKIP loudly and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{ADMIN, READ, READ_SCOPES, WRITE, WRITE_SCOPES};

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/SPEC.md")
}

/// The scope names SPEC lists after "`<coarse>` ⊃ `", up to the closing backquote.
fn implied_by(spec: &str, coarse: &str) -> BTreeSet<String> {
    let marker = format!("`{coarse}` ⊃ `");
    let start = spec
        .find(&marker)
        .unwrap_or_else(|| panic!("SPEC.md no longer says {marker:?}"))
        + marker.len();
    let end = spec[start..].find('`').expect("closing backquote") + start;
    spec[start..end]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn set(scopes: &[&str]) -> BTreeSet<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_scope_table_is_specs() {
    let path = spec_path();
    let Ok(spec) = std::fs::read_to_string(&path) else {
        eprintln!(
            "\n*** SKIP the_scope_table_is_specs: {} is absent, so the KMS scope table was NOT \
             compared with SPEC §3.6 ***\n",
            path.display()
        );
        return;
    };
    assert!(
        spec.contains(&format!("`{ADMIN}` ⊃ everything")),
        "SPEC.md: {ADMIN} must imply everything"
    );
    assert_eq!(
        implied_by(&spec, WRITE),
        set(WRITE_SCOPES),
        "kms:write in SPEC.md vs the code"
    );
    assert_eq!(
        implied_by(&spec, READ),
        set(READ_SCOPES),
        "kms:read in SPEC.md vs the code"
    );
}

#[test]
fn the_parser_reads_specs_phrasing() {
    let text =
        "coarse `kms:admin` ⊃ everything; `kms:write` ⊃ `kms:a kms:b`;\n  `kms:read` ⊃ `kms:c`.";
    assert_eq!(implied_by(text, WRITE), set(&["kms:a", "kms:b"]));
    assert_eq!(implied_by(text, READ), set(&["kms:c"]));
}
