//! Fuzzing support (feature `fuzzing`), shared by the KMS's and Identity's `config` fuzz entry
//! points. A failed invariant panics on purpose: that is how libFuzzer reports it.
#![allow(clippy::panic, clippy::expect_used)]

use super::{ConfigError, Settings, load_yaml};

/// Loads settings from `text` the way `cryptoutil config check` does, and checks that what it
/// prints loads back to the same settings (unless it had to redact an inline secret, which then
/// reads back as the literal `<redacted>` and may fail validation). Returns what loaded.
pub fn check_settings_round_trip<T: Settings>(origin: &str, text: &str) -> Option<T> {
    let settings = load_yaml::<T>(origin, text).ok()?;
    let printed = serde_yaml_ng::to_string(&settings).expect("loaded settings serialize");
    let again: Result<T, ConfigError> = load_yaml(origin, &printed);
    match again {
        Ok(again) => {
            let reprinted = serde_yaml_ng::to_string(&again).expect("reloaded settings serialize");
            assert_eq!(
                reprinted, printed,
                "config check output does not load back the same"
            );
        }
        Err(e) => assert!(
            printed.contains("<redacted>"),
            "config check output does not load again: {e}\n{printed}"
        ),
    }
    Some(settings)
}
