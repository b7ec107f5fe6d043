//! Replays the stored `config` and `oauth_forms` fuzz corpora and regression inputs through
//! Identity's entry points (the ones the `cargo fuzz` targets call), so CI checks them on stable
//! without libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cryptoutil_jose::fuzzing::replay_corpus;

#[test]
fn config_corpus() {
    replay_corpus("config", cryptoutil_identity::fuzzing::config);
}

#[test]
fn oauth_forms_corpus() {
    replay_corpus("oauth_forms", cryptoutil_identity::fuzzing::oauth_forms);
}

/// Writes the `oauth_forms` seeds into `fuzz/corpus/oauth_forms/` (named by content hash):
/// `cargo test -p cryptoutil-identity --test it fuzz_corpus:: -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    let dir = cryptoutil_jose::fuzzing::fuzz_dir().join("corpus/oauth_forms");
    std::fs::create_dir_all(&dir).unwrap();
    for bytes in cryptoutil_identity::fuzzing::seeds() {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let name: String = digest.as_ref()[..20]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(dir.join(name), &bytes).unwrap();
    }
}
