//! Secret configuration values: given inline or, preferably, as `file:///path` (Docker secrets).

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// The JSON Schema extension key that marks a secret setting. The environment layer refuses to set
/// any setting carrying it, so secrets never come from environment variables.
pub const SECRET_SCHEMA_MARKER: &str = "x-cryptoutil-secret";

/// Largest secret file read, in bytes (passwords, client secrets and database URLs are far
/// smaller; the bound keeps a mistaken path such as `/dev/zero` from exhausting memory).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A secret value (password, client secret, database URL with credentials).
///
/// In YAML it is either the value itself or `file:///absolute/path`, in which case the file is read
/// when the configuration is loaded (one trailing newline is removed). `Debug` and `Serialize`
/// never reveal the value; memory is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: Zeroizing<String>,
    source: Option<PathBuf>,
}

impl Secret {
    /// A secret held in memory (for values computed by the program, and tests).
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: Zeroizing::new(value.into()),
            source: None,
        }
    }

    /// Reads a secret from a file, removing one trailing newline. Only a regular file (or a
    /// link to one) of at most [`MAX_SECRET_FILE_BYTES`] is read: `file:///dev/zero`, a FIFO or
    /// a huge file is refused instead of hanging or exhausting memory.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut text = super::read_bounded(path, MAX_SECRET_FILE_BYTES).map_err(|e| match e {
            super::ReadError::Io(e) => format!("cannot read secret file {}: {e}", path.display()),
            e => format!("secret file {} is {e}", path.display()),
        })?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        if text.is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        Ok(Self {
            value: Zeroizing::new(text),
            source: Some(path.to_path_buf()),
        })
    }

    /// Parses the YAML form: `file:///path` or an inline value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.strip_prefix("file://") {
            Some(rest) => {
                if !rest.starts_with('/') {
                    return Err(format!(
                        "secret reference {raw:?} must be an absolute file URL such as file:///run/secrets/name"
                    ));
                }
                Self::from_file(Path::new(rest))
            }
            None if raw.is_empty() => Err("secret value is empty".to_owned()),
            None => Ok(Self::new(raw)),
        }
    }

    /// The secret itself. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The file the secret was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(path) => write!(f, "Secret(from {})", path.display()),
            None => f.write_str("Secret(<redacted>)"),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Zeroizing::new(String::deserialize(deserializer)?);
        Secret::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.source {
            Some(path) => serializer.serialize_str(&format!("file://{}", path.display())),
            None => serializer.serialize_str("<redacted>"),
        }
    }
}

/// `serialize_with` for database URL secrets: a SQLite URL holds only a path and is shown as it
/// is (so a schema default such as `sqlite://kms.db` reads back, and the configuration loader's
/// serialized defaults load again); anything else is serialized as a [`Secret`] (redacted, or its
/// file).
pub fn serialize_database_url<S: serde::Serializer>(
    url: &Secret,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if url.source().is_none() && url.expose().starts_with("sqlite:") {
        serializer.serialize_str(url.expose())
    } else {
        url.serialize(serializer)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A secret: `file:///path` (Docker secret, preferred) or the value itself. Never from environment variables.",
            SECRET_SCHEMA_MARKER: true,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_file_and_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\n").unwrap();
        let secret = Secret::parse(&format!("file://{}", path.display())).unwrap();
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(secret.source(), Some(path.as_path()));
    }

    #[test]
    fn device_files_and_oversized_files_are_refused() {
        // Found while writing the config fuzz target: `file:///dev/zero` read until memory ran out.
        let err = Secret::parse("file:///dev/zero").unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        assert!(Secret::from_file(&big).unwrap_err().contains("larger than"));
        let max = dir.path().join("max");
        std::fs::write(&max, vec![b'x'; MAX_SECRET_FILE_BYTES as usize]).unwrap();
        assert_eq!(
            Secret::from_file(&max).unwrap().expose().len(),
            MAX_SECRET_FILE_BYTES as usize
        );
    }

    #[test]
    fn debug_and_serialize_never_reveal() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("hunter2"));
    }

    #[test]
    fn missing_file_relative_url_and_empty_values_are_errors() {
        let err = Secret::parse("file:///nonexistent/cryptoutil-secret").unwrap_err();
        assert!(err.contains("/nonexistent/cryptoutil-secret"), "{err}");
        assert!(Secret::parse("file://relative/path").is_err());
        assert!(Secret::parse("").is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(Secret::from_file(&empty).unwrap_err().contains("empty"));
    }
}
