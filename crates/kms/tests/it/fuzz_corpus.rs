//! Replays the stored `config` fuzz corpus and regression inputs through the KMS's entry point
//! (the one the `cargo fuzz` target calls), so CI checks them on stable without libFuzzer.
//! Identity's loaders replay the same corpus in `crates/identity/tests/it/fuzz_corpus.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cryptoutil_jose::fuzzing::replay_corpus;

#[test]
fn config_corpus() {
    replay_corpus("config", cryptoutil_kms::fuzzing::config);
}
