//! Replays the stored `config`, `oauth_forms` and `dpop` fuzz corpora and regression inputs through
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

#[test]
fn client_metadata_corpus() {
    replay_corpus(
        "client_metadata",
        cryptoutil_identity::fuzzing::client_metadata,
    );
}

#[test]
fn dpop_corpus() {
    replay_corpus("dpop", cryptoutil_identity::fuzzing::dpop);
}

#[test]
fn client_metadata_document_corpus() {
    replay_corpus(
        "client_metadata_document",
        cryptoutil_identity::fuzzing::client_metadata_document,
    );
}

/// The `client_metadata_document` seeds: the first four are accepted, the rest refused.
#[test]
fn client_metadata_document_seeds_are_judged() {
    use cryptoutil_identity::fuzzing::{DOCUMENT_CLIENT_ID, client_metadata_document_seeds};
    use cryptoutil_identity::metadata_document::document::{DocumentPolicy, parse};
    let allowed = ["openid".to_owned()];
    let policy = DocumentPolicy {
        allowed_scopes: &allowed,
        audiences: &[],
    };
    let judged: Vec<bool> = client_metadata_document_seeds()
        .iter()
        .map(|seed| {
            parse(
                seed,
                DOCUMENT_CLIENT_ID,
                policy,
                time::OffsetDateTime::UNIX_EPOCH,
            )
            .is_ok()
        })
        .collect();
    assert_eq!(judged, [true, true, true, true, false, false, false]);
}

/// The `dpop` seeds' valid proofs are accepted (so the corpus starts past every check).
#[test]
fn dpop_seeds_reach_acceptance() {
    use cryptoutil_identity::dpop::{DpopSettings, ProofRequest, verify};
    use cryptoutil_identity::fuzzing::{DPOP_ACCESS_TOKEN, DPOP_URI, NOW_UNIX};
    let uri = url::Url::parse(DPOP_URI).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(NOW_UNIX).unwrap();
    let seeds = cryptoutil_identity::fuzzing::dpop_seeds();
    let accepted = |proof: &[u8], access_token| {
        let request = ProofRequest {
            method: "POST",
            uri: &uri,
            now,
            nonce: None,
            access_token,
        };
        verify(
            std::str::from_utf8(proof).unwrap(),
            &request,
            &DpopSettings::default(),
        )
        .is_ok()
    };
    assert!(accepted(&seeds[0], None) && accepted(&seeds[1], None));
    assert!(accepted(&seeds[2], Some(DPOP_ACCESS_TOKEN)));
    // `HTTPS://Issuer.Example:443/...?x=1` normalises to the request's URI (RFC 9449 §4.3).
    assert!(accepted(&seeds[3], None));
    assert!(!accepted(&seeds[4], None), "an hour-old proof");
}

/// Writes the `oauth_forms` and `dpop` seeds into `fuzz/corpus/<target>/` (named by content
/// hash): `cargo test -p cryptoutil-identity --test it fuzz_corpus:: -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    let targets = [
        ("oauth_forms", cryptoutil_identity::fuzzing::seeds()),
        ("dpop", cryptoutil_identity::fuzzing::dpop_seeds()),
        (
            "client_metadata_document",
            cryptoutil_identity::fuzzing::client_metadata_document_seeds(),
        ),
        (
            "client_metadata",
            cryptoutil_identity::fuzzing::client_metadata_seeds(),
        ),
    ];
    for (target, seeds) in targets {
        let dir = cryptoutil_jose::fuzzing::fuzz_dir()
            .join("corpus")
            .join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for bytes in seeds {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
            let name: String = digest.as_ref()[..20]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(dir.join(name), &bytes).unwrap();
        }
    }
}
