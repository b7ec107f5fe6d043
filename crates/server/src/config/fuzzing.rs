//! Fuzzing support (feature `fuzzing`), shared by the KMS's and Identity's `config` fuzz entry
//! points. A failed invariant panics on purpose: that is how libFuzzer reports it.
#![allow(clippy::panic, clippy::expect_used)]

use super::{ConfigError, Settings, load_yaml};

/// How an input of the `config` fuzz target picks its loader: byte 0 modulo this. The KMS takes
/// 0–2 (`kms.yml`, `realms.yml`, the KMS seed), Identity 3–5 (`identity.yml`, `rs.yml`, the
/// Identity seed). Seeds start with the ASCII digit (`'0'` is 0).
pub const CONFIG_LOADERS: u8 = 6;

/// Splits a `config` fuzz input into its loader number (`0..CONFIG_LOADERS`) and the YAML
/// document; `None` for an empty input or a document that is not UTF-8.
pub fn config_input(data: &[u8]) -> Option<(u8, &str)> {
    let (&which, rest) = data.split_first()?;
    Some((which % CONFIG_LOADERS, std::str::from_utf8(rest).ok()?))
}

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
