//! Layered configuration: YAML files (later wins), then `CRYPTOUTIL_<PRODUCT>__…` environment
//! variables (never secrets), then command-line flags; strict at every layer.
//!
//! Each layer is first checked on its own against the settings type, so an unknown key or a bad
//! value is reported with the file, line and key it came from. The layers are then merged over the
//! product's defaults and deserialized once more, and [`Settings::validate`] checks what types
//! cannot express. Secrets (`file:///…` or inline) are refused from the environment and flags.

mod duration;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod secret;
mod telemetry;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

pub use duration::HumanDuration;
pub use secret::{MAX_SECRET_FILE_BYTES, SECRET_SCHEMA_MARKER, Secret, serialize_database_url};
pub use telemetry::{OtlpProtocol, TelemetrySettings, check_endpoint};
pub use types::{
    AdminSettings, BrowserSettings, LimitSettings, ListenerSettings, LogFormat, LoggingSettings,
    RateLimitSettings, ServerSettings, SurfaceSettings, SurfacesSettings, TlsSettings,
    is_plain_https_origin,
};

/// Largest configuration file accepted (bounded like every other input).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A product's settings type.
pub trait Settings: DeserializeOwned + Serialize + JsonSchema + Default {
    /// Environment prefix after `CRYPTOUTIL_`, e.g. `KMS` for `CRYPTOUTIL_KMS__SERVER__PUBLIC__PORT`.
    const ENV_PREFIX: &'static str;
    /// File name looked up in the standard directories, e.g. `kms.yml`.
    const FILE_NAME: &'static str;

    /// Load-time checks of values (ranges, combinations, URL schemes).
    fn validate(&self, v: &mut Validator);
}

/// Collects validation problems so the user sees all of them at once.
#[derive(Debug, Default)]
pub struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    /// Records a problem with `key` unless `ok`.
    pub fn check(&mut self, key: &str, ok: bool, message: &str) {
        if !ok {
            self.problem(key, message);
        }
    }

    /// Records a problem with `key`.
    pub fn problem(&mut self, key: &str, message: &str) {
        self.problems.push(Problem {
            origin: key.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Turns the collected problems into a result.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// One configuration problem and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, an environment variable, a flag, or a settings key.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

/// The configuration could not be loaded; every problem found is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    fn one(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                origin: origin.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.origin, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// YAML files, in order; later files win.
    pub files: Vec<PathBuf>,
    /// Environment variables as `(name, value)`; only `CRYPTOUTIL_<PREFIX>__…` ones are used.
    pub env: Vec<(String, String)>,
    /// Flag overrides as `(dotted.key, value)`, applied last.
    pub overrides: Vec<(String, Value)>,
}

impl ConfigSources {
    /// The sources of a command line: the given files, or else the standard files that exist
    /// (`/etc/cryptoutil/<file>`, then `~/.config/cryptoutil/<file>`); the process environment;
    /// and the flag overrides.
    pub fn from_process(
        files: Vec<PathBuf>,
        file_name: &str,
        overrides: Vec<(String, Value)>,
    ) -> Self {
        let files = if files.is_empty() {
            standard_paths(file_name)
                .into_iter()
                .filter(|p| p.is_file())
                .collect()
        } else {
            files
        };
        Self {
            files,
            env: std::env::vars().collect(),
            overrides,
        }
    }
}

/// The standard configuration paths for `file_name`, system first.
pub fn standard_paths(file_name: &str) -> Vec<PathBuf> {
    let mut paths = vec![Path::new("/etc/cryptoutil").join(file_name)];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        paths.push(Path::new(&home).join(".config/cryptoutil").join(file_name));
    }
    paths
}

/// The JSON Schema of a settings type, as shipped under `deployments/`.
pub fn json_schema<T: Settings>() -> Json {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Json::Null)
}

/// Checks that the schema file shipped at `path` is the one generated from `T`; with the
/// environment variable `CRYPTOUTIL_UPDATE_SCHEMAS` set, rewrites it first (`cargo xtask schemas`).
/// For the products' tests.
pub fn check_shipped_schema<T: Settings>(path: &Path) -> Result<(), String> {
    let generated = canonical(json_schema::<T>());
    if std::env::var_os("CRYPTOUTIL_UPDATE_SCHEMAS").is_some() {
        let text = serde_json::to_string_pretty(&generated)
            .map_err(|e| format!("cannot render the schema: {e}"))?
            + "\n";
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let shipped: Json = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Json::Null);
    // Compared as JSON values: key order depends on serde_json features chosen by the build.
    if shipped == generated {
        Ok(())
    } else {
        Err(format!(
            "{} is out of date: run `cargo xtask schemas`",
            path.display()
        ))
    }
}

/// The same JSON with object keys in sorted order, so written files are stable.
fn canonical(value: Json) -> Json {
    match value {
        Json::Object(map) => {
            let sorted: std::collections::BTreeMap<String, Json> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Loads, merges and validates settings from `sources`.
pub fn load<T: Settings>(sources: &ConfigSources) -> Result<T, ConfigError> {
    let layers = sources.files.iter().map(|path| read_layer::<T>(path));
    load_layers(layers, sources)
}

/// Loads and validates settings from one YAML document held in memory, as [`load`] does for a
/// file (`origin` names it in errors), without environment variables or flags. The file loader
/// runs every document through the same code; the fuzz targets call this.
///
/// # Errors
/// Every problem found, as [`load`] reports it.
pub fn load_yaml<T: Settings>(origin: &str, text: &str) -> Result<T, ConfigError> {
    load_layers(
        std::iter::once(parse_layer::<T>(origin, text)),
        &ConfigSources::default(),
    )
}

/// Merges `layers` (parsed files, in order) over the defaults, then the environment and flags
/// of `sources`, and validates.
fn load_layers<T: Settings>(
    layers: impl Iterator<Item = Result<Value, ConfigError>>,
    sources: &ConfigSources,
) -> Result<T, ConfigError> {
    let defaults = serde_yaml_ng::to_value(T::default())
        .map_err(|e| ConfigError::one("defaults", e.to_string()))?;
    let mut merged = defaults;
    let mut problems = Vec::new();

    for layer in layers {
        match layer {
            Ok(layer) => merge(&mut merged, layer),
            Err(e) => problems.extend(e.problems),
        }
    }

    // Built only when an environment variable or flag needs it (it is the costly part).
    let mut schema = None;
    let env_prefix = format!("CRYPTOUTIL_{}__", T::ENV_PREFIX);
    let mut env_entries: Vec<_> = sources
        .env
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&env_prefix).map(|rest| (k, rest, v)))
        .collect();
    env_entries.sort();
    for (name, rest, raw) in env_entries {
        let key = rest
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        let schema = schema.get_or_insert_with(json_schema::<T>);
        match override_layer::<T>(schema, &key, OverrideValue::Raw(raw)) {
            Ok(layer) => merge(&mut merged, layer),
            Err(message) => problems.push(Problem {
                origin: format!("environment variable {name}"),
                message,
            }),
        }
    }

    for (key, value) in &sources.overrides {
        let schema = schema.get_or_insert_with(json_schema::<T>);
        match override_layer::<T>(schema, key, OverrideValue::Typed(value)) {
            Ok(layer) => merge(&mut merged, layer),
            Err(message) => problems.push(Problem {
                origin: format!("command-line flag for {key}"),
                message,
            }),
        }
    }

    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let settings: T = serde_yaml_ng::from_value(merged)
        .map_err(|e| ConfigError::one("merged configuration", e.to_string()))?;
    let mut v = Validator::default();
    settings.validate(&mut v);
    v.finish()?;
    Ok(settings)
}

/// Reads one YAML file, checks it strictly against `T`, and returns it as a YAML tree.
fn read_layer<T: Settings>(path: &Path) -> Result<Value, ConfigError> {
    let origin = path.display().to_string();
    let text =
        read_bounded(path, MAX_FILE_BYTES).map_err(|e| ConfigError::one(&origin, e.to_string()))?;
    parse_layer::<T>(&origin, &text)
}

/// Why [`read_bounded`] refused a file.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// A device, FIFO or directory.
    NotRegular,
    /// Longer than the bound (in bytes).
    TooLarge(u64),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the file: {e}"),
            Self::NotRegular => f.write_str("not a regular file"),
            Self::TooLarge(max) => write!(f, "larger than {max} bytes"),
        }
    }
}

/// Reads a regular file (or a link to one) of at most `max` bytes as UTF-8. Device files, FIFOs
/// and larger files are refused without reading them whole (`/dev/zero` would never end).
///
/// # Errors
/// [`ReadError`]; the caller names the file.
pub fn read_bounded(path: &Path, max: u64) -> Result<String, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut text = String::new();
    file.take(max.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(ReadError::Io)?;
    if text.len() as u64 > max {
        zeroize::Zeroize::zeroize(&mut text);
        return Err(ReadError::TooLarge(max));
    }
    Ok(text)
}

/// Checks one YAML document strictly against `T` and returns it as a YAML tree; `origin` (a
/// file name) prefixes the line and column of errors.
fn parse_layer<T: Settings>(origin: &str, text: &str) -> Result<Value, ConfigError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::one(
            origin,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    if text.trim().is_empty() {
        return Ok(Value::Mapping(Mapping::new()));
    }
    if let Err(e) = serde_yaml_ng::from_str::<T>(text) {
        let at = e
            .location()
            .map(|l| format!("{origin}:{}:{}", l.line(), l.column()))
            .unwrap_or_else(|| origin.to_owned());
        return Err(ConfigError::one(at, strip_location(&e.to_string())));
    }
    let value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::one(origin, e.to_string()))?;
    if !value.is_mapping() {
        return Err(ConfigError::one(
            origin,
            "the top level must be a mapping of settings",
        ));
    }
    Ok(value)
}

/// serde_yaml_ng appends " at line L column C"; the origin already says where.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

enum OverrideValue<'a> {
    /// A string from the environment, typed by the schema of its key.
    Raw(&'a str),
    /// A value already typed by the flag parser.
    Typed(&'a Value),
}

/// Builds the layer `{a: {b: value}}` for key `a.b`, refusing unknown keys and secrets.
fn override_layer<T: Settings>(
    schema: &Json,
    key: &str,
    value: OverrideValue<'_>,
) -> Result<Value, String> {
    let segments: Vec<&str> = key.split('.').collect();
    let target = schema_at(schema, &segments)?;
    if target.get(SECRET_SCHEMA_MARKER).is_some() {
        return Err(format!(
            "{key} is a secret; give it in a YAML file, as file:///path to a secret file"
        ));
    }
    let leaf = match value {
        OverrideValue::Typed(v) => v.clone(),
        OverrideValue::Raw(raw) if accepts_only_strings(schema, target) => {
            Value::String(raw.to_owned())
        }
        OverrideValue::Raw(raw) => {
            serde_yaml_ng::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
    };
    let mut layer = leaf;
    for segment in segments.iter().rev() {
        let mut map = Mapping::new();
        map.insert(Value::String((*segment).to_owned()), layer);
        layer = Value::Mapping(map);
    }
    serde_yaml_ng::from_value::<T>(layer.clone()).map_err(|e| format!("{key}: {e}"))?;
    Ok(layer)
}

/// Follows `$ref`s and optional wrappers (`anyOf` with `null`) to the schema that describes values.
fn resolve<'a>(root: &'a Json, mut node: &'a Json) -> &'a Json {
    for _ in 0..32 {
        if let Some(reference) = node.get("$ref").and_then(Json::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(next) => node = next,
                None => return node,
            }
        } else if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Json::as_array)
        {
            match branches
                .iter()
                .find(|b| b.get("type").and_then(Json::as_str) != Some("null"))
            {
                Some(next) => node = next,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

/// The schema of the setting at `segments`, or an error naming the first unknown segment.
fn schema_at<'a>(root: &'a Json, segments: &[&str]) -> Result<&'a Json, String> {
    let mut node = resolve(root, root);
    for (i, segment) in segments.iter().enumerate() {
        let here = segments[..i].join(".");
        let properties = node.get("properties").and_then(Json::as_object);
        match properties.and_then(|p| p.get(*segment)) {
            Some(next) => node = resolve(root, next),
            None => match node.get("additionalProperties") {
                Some(extra) if extra.is_object() => node = resolve(root, extra),
                _ => {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let place = if here.is_empty() {
                        "the top level".to_owned()
                    } else {
                        here
                    };
                    return Err(if known.is_empty() {
                        format!("unknown key {segment:?}: {place} takes no nested keys")
                    } else {
                        format!(
                            "unknown key {segment:?} under {place}; known keys: {}",
                            known.join(", ")
                        )
                    });
                }
            },
        }
    }
    Ok(node)
}

fn accepts_only_strings(root: &Json, node: &Json) -> bool {
    let node = resolve(root, node);
    match node.get("type") {
        Some(Json::String(t)) => t == "string",
        Some(Json::Array(types)) => types
            .iter()
            .all(|t| t.as_str() == Some("string") || t.as_str() == Some("null")),
        _ => false,
    }
}

/// Deep merge: mappings merge key by key; anything else in `layer` replaces what is in `base`.
fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Mapping(base), Value::Mapping(layer)) => {
            for (k, v) in layer {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

#[cfg(test)]
mod tests;
