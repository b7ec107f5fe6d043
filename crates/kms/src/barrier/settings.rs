//! Barrier settings (`barrier:` in `kms.yml`). Secrets come from files only.

use std::collections::HashSet;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::Validator;

/// Default number of unwrapped intermediate and content keys kept in memory.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Largest allowed cache.
pub const MAX_CACHE_CAPACITY: usize = 1_000_000;
/// Most unseal keys (the root key JWE has one recipient per unseal key; the JOSE limit is 64).
pub const MAX_UNSEAL_KEYS: usize = cryptoutil_jose::limits::MAX_RECIPIENTS;

/// Where the unseal keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum UnsealSettings {
    /// One random key per process: only for in-memory databases (data is lost on exit). An
    /// empty struct variant so that unknown fields next to `mode: dev` are rejected too.
    Dev {},
    /// `threshold`-of-N share files: any `threshold` of them unseal. Each file holds one share as
    /// base64url text (no padding) decoding to 32–64 bytes. Initialising and rotating the root
    /// key need all N files.
    Shares {
        /// M: how many shares unseal.
        threshold: usize,
        /// The N share files, in index order (the order is part of the derivation).
        files: Vec<PathBuf>,
    },
    /// JWK files (one JWK or a JWK set each): 256-bit `oct` keys, each with a distinct `kid`.
    Jwk {
        /// The JWK files.
        files: Vec<PathBuf>,
    },
}

/// The barrier: unseal keys and the unwrapped-key cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BarrierSettings {
    /// Unseal key source.
    pub unseal: UnsealSettings,
    /// Most unwrapped intermediate and content keys kept in memory (default 10000).
    pub cache_capacity: usize,
}

impl Default for UnsealSettings {
    fn default() -> Self {
        Self::Dev {}
    }
}

impl Default for BarrierSettings {
    fn default() -> Self {
        Self {
            unseal: UnsealSettings::Dev {},
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

impl BarrierSettings {
    /// Load-time checks (keys are reported under `barrier.`). Whether `dev` is allowed depends on
    /// the database and is checked by the caller.
    pub fn validate(&self, v: &mut Validator) {
        v.check(
            "barrier.cache_capacity",
            (1..=MAX_CACHE_CAPACITY).contains(&self.cache_capacity),
            "must be between 1 and 1000000",
        );
        let files = match &self.unseal {
            UnsealSettings::Dev {} => return,
            UnsealSettings::Shares { threshold, files } => {
                let n = files.len();
                if n == 0 {
                    v.problem("barrier.unseal.files", "at least one share file is needed");
                } else if *threshold == 0 || *threshold > n {
                    v.problem(
                        "barrier.unseal.threshold",
                        &format!("must be between 1 and the number of files ({n})"),
                    );
                } else if binomial(n, *threshold) > MAX_UNSEAL_KEYS {
                    v.problem(
                        "barrier.unseal.threshold",
                        &format!(
                            "{threshold}-of-{n} gives {} combinations; at most {MAX_UNSEAL_KEYS} are supported",
                            binomial(n, *threshold)
                        ),
                    );
                }
                files
            }
            UnsealSettings::Jwk { files } => {
                v.check(
                    "barrier.unseal.files",
                    (1..=MAX_UNSEAL_KEYS).contains(&files.len()),
                    "between 1 and 64 JWK files are needed",
                );
                files
            }
        };
        let mut seen = HashSet::new();
        for path in files {
            if path.as_os_str().is_empty() {
                v.problem("barrier.unseal.files", "must not contain an empty path");
            } else if !seen.insert(path) {
                v.problem(
                    "barrier.unseal.files",
                    &format!("{} is listed twice", path.display()),
                );
            }
        }
    }
}

/// `n` choose `k`, saturating.
pub(crate) fn binomial(n: usize, k: usize) -> usize {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut r: usize = 1;
    for i in 0..k {
        // Exact at each step: r * (n - i) is divisible by (i + 1).
        r = r.saturating_mul(n - i) / (i + 1);
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn problems(s: &BarrierSettings) -> usize {
        let mut v = Validator::default();
        s.validate(&mut v);
        v.finish().map_or_else(|e| e.problems.len(), |()| 0)
    }

    #[test]
    fn parses_each_mode_strictly() {
        let s: BarrierSettings = serde_json::from_str(
            r#"{"unseal":{"mode":"shares","threshold":2,"files":["/a","/b","/c"]}}"#,
        )
        .unwrap();
        assert_eq!(s.cache_capacity, DEFAULT_CACHE_CAPACITY);
        assert!(matches!(
            s.unseal,
            UnsealSettings::Shares { threshold: 2, .. }
        ));
        assert_eq!(problems(&s), 0);

        let s: BarrierSettings = serde_json::from_str(
            r#"{"unseal":{"mode":"jwk","files":["/k.json"]},"cache_capacity":5}"#,
        )
        .unwrap();
        assert_eq!(s.cache_capacity, 5);
        assert_eq!(problems(&s), 0);

        let s: BarrierSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, BarrierSettings::default());
        let s: BarrierSettings = serde_json::from_str(r#"{"unseal":{"mode":"dev"}}"#).unwrap();
        assert_eq!(s.unseal, UnsealSettings::Dev {});
        let text = serde_json::to_string(&BarrierSettings::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<BarrierSettings>(&text).unwrap(),
            BarrierSettings::default()
        );

        for bad in [
            r#"{"unseal":{"mode":"shares","threshold":2,"files":[],"extra":1}}"#,
            r#"{"unseal":{"mode":"jwk","files":[],"threshold":1}}"#,
            r#"{"unseal":{"mode":"shamir"}}"#,
            r#"{"cache":1}"#,
            r#"{"unseal":{"mode":"dev","files":[]}}"#,
        ] {
            assert!(
                serde_json::from_str::<BarrierSettings>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn schema_generates() {
        let schema = serde_json::to_string(&schemars::schema_for!(BarrierSettings)).unwrap();
        for word in ["shares", "jwk", "dev", "threshold", "cache_capacity"] {
            assert!(schema.contains(word), "{word}");
        }
    }

    #[test]
    fn validation() {
        let shares = |threshold, n: usize| BarrierSettings {
            unseal: UnsealSettings::Shares {
                threshold,
                files: (0..n).map(|i| PathBuf::from(format!("/s{i}"))).collect(),
            },
            cache_capacity: 10,
        };
        assert_eq!(problems(&shares(3, 5)), 0);
        assert_eq!(problems(&shares(0, 5)), 1);
        assert_eq!(problems(&shares(6, 5)), 1);
        assert_eq!(problems(&shares(4, 8)), 1); // 70 combinations
        assert_eq!(problems(&shares(1, 0)), 1);
        let mut dup = shares(2, 3);
        if let UnsealSettings::Shares { files, .. } = &mut dup.unseal {
            files[2] = files[0].clone();
        }
        assert_eq!(problems(&dup), 1);
        let zero = BarrierSettings {
            cache_capacity: 0,
            ..BarrierSettings::default()
        };
        assert_eq!(problems(&zero), 1);
        let jwk = BarrierSettings {
            unseal: UnsealSettings::Jwk { files: vec![] },
            cache_capacity: 1,
        };
        assert_eq!(problems(&jwk), 1);
    }
}
