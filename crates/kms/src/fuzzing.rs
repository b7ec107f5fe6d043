//! Fuzzing entry points (feature `fuzzing`): what the `config` fuzz target and this crate's
//! `fuzz_corpus` test feed untrusted bytes to. A failed invariant panics on purpose (that is how
//! libFuzzer reports it); nothing in the product calls this module.
#![allow(clippy::panic, clippy::expect_used)]

use std::path::Path;

use cryptoutil_realm::file_realm::FileRealm;
use cryptoutil_server::config::fuzzing::{check_settings_round_trip, config_input};

use crate::config::KmsSettings;
use crate::seed::Seed;

/// The KMS's configuration loaders on one input (see
/// [`cryptoutil_server::config::fuzzing::CONFIG_LOADERS`]: the KMS takes 0–2). Inputs for
/// Identity's loaders are ignored here.
pub fn config(data: &[u8]) {
    let Some((which, text)) = config_input(data) else {
        return;
    };
    match which {
        0 => {
            if let Some(mut settings) = check_settings_round_trip::<KmsSettings>("kms.yml", text) {
                let _ = settings.check_unseal_fits_database();
                settings.apply_dev();
                assert!(
                    settings.check_unseal_fits_database().is_ok(),
                    "--dev must fit"
                );
            }
        }
        1 => {
            if let Ok(realm) = FileRealm::from_yaml(text, "realms.yml", &crate::scopes::VOCABULARY)
            {
                for user in realm.users() {
                    let found = realm.user(&user.user.username).expect("listed user found");
                    assert_eq!(found.user.username, user.user.username);
                }
            }
        }
        2 => {
            let _ = Seed::parse(text, Path::new("demo-seed.yml"));
        }
        _ => {}
    }
}
