//! Replays every stored fuzz corpus and regression input (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the entry points the `cargo fuzz` targets call, so
//! CI checks them on the stable toolchain without libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use cryptoutil_jose::fuzzing::{self, replay_corpus};

#[test]
fn jose_compact_corpus() {
    replay_corpus("jose_compact", fuzzing::jose_compact);
}

#[test]
fn jose_json_corpus() {
    replay_corpus("jose_json", fuzzing::jose_json);
}

#[test]
fn jwk_corpus() {
    replay_corpus("jwk", fuzzing::jwk);
}

/// Writes the seeds made with the fixed keys into `fuzz/corpus/` (named by content hash, so
/// rerunning adds nothing twice): `cargo test -p cryptoutil-jose --test it fuzz_corpus:: -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    for (target, bytes) in fuzzing::seeds() {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let name: String = digest.as_ref()[..20]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = fuzzing::fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &bytes).unwrap();
    }
}
