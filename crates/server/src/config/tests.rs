#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde::Deserialize;

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Sample {
    server: ServerSettings,
    logging: LoggingSettings,
    name: String,
    password: Option<Secret>,
    issuer: Option<url::Url>,
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(8081, 9081),
            logging: LoggingSettings::default(),
            name: "sample".to_owned(),
            password: None,
            issuer: None,
        }
    }
}

impl Settings for Sample {
    const ENV_PREFIX: &'static str = "SAMPLE";
    const FILE_NAME: &'static str = "sample.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
        if let Some(issuer) = &self.issuer {
            v.check(
                "issuer",
                issuer.scheme() == "https",
                "must be an https:// URL",
            );
        }
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn sources(files: Vec<PathBuf>) -> ConfigSources {
    ConfigSources {
        files,
        ..ConfigSources::default()
    }
}

#[test]
fn defaults_apply_when_nothing_is_given() {
    let s: Sample = load(&ConfigSources::default()).unwrap();
    assert_eq!(s.server.public.port, 8081);
    assert_eq!(s.server.admin.port, 9081);
    assert_eq!(s.server.limits.max_body_bytes, 2 * 1024 * 1024);
}

#[test]
fn later_files_win_and_nested_defaults_survive() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        &dir,
        "a.yml",
        "server:\n  public:\n    port: 1111\nname: first\n",
    );
    let b = write(
        &dir,
        "b.yml",
        "server:\n  public:\n    address: 127.0.0.1\nname: second\n",
    );
    let s: Sample = load(&sources(vec![a, b])).unwrap();
    assert_eq!(s.server.public.port, 1111);
    assert_eq!(s.server.public.address.to_string(), "127.0.0.1");
    assert_eq!(
        s.server.admin.port, 9081,
        "a partial file keeps the product defaults"
    );
    assert_eq!(s.name, "second");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "bad.yml",
        "name: x\nserver:\n  public:\n    prot: 1\n",
    );
    let err = load::<Sample>(&sources(vec![f.clone()])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("{}:4:", f.display())), "{text}");
    assert!(text.contains("prot"), "{text}");
}

#[test]
fn bad_values_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let port = write(&dir, "port.yml", "server:\n  public:\n    port: 70000\n");
    let text = load::<Sample>(&sources(vec![port]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("port.yml:3:"), "{text}");

    let duration = write(
        &dir,
        "d.yml",
        "server:\n  limits:\n    drain_timeout: soon\n",
    );
    let text = load::<Sample>(&sources(vec![duration]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("invalid duration"), "{text}");

    let url = write(&dir, "u.yml", "issuer: not a url\n");
    assert!(load::<Sample>(&sources(vec![url])).is_err());

    let scheme = write(&dir, "s.yml", "issuer: http://plain.example\n");
    let text = load::<Sample>(&sources(vec![scheme]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("issuer: must be an https:// URL"), "{text}");

    let broken = write(&dir, "broken.yml", "server: [unclosed\n");
    assert!(load::<Sample>(&sources(vec![broken])).is_err());

    let scalar = write(&dir, "scalar.yml", "just a string\n");
    assert!(load::<Sample>(&sources(vec![scalar])).is_err());

    let missing = dir.path().join("missing.yml");
    let text = load::<Sample>(&sources(vec![missing]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("missing.yml: cannot read the file"), "{text}");

    // A device file is refused without being read (`/dev/zero` would never end).
    let text = load::<Sample>(&sources(vec![PathBuf::from("/dev/zero")]))
        .unwrap_err()
        .to_string();
    assert!(text.contains("/dev/zero: not a regular file"), "{text}");
}

#[test]
fn load_yaml_reads_a_document_like_the_file_loader() {
    let sample: Sample = load_yaml("mem.yml", "issuer: https://issuer.example\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "f.yml", "issuer: https://issuer.example\n");
    let loaded: Sample = load(&sources(vec![file])).unwrap();
    assert_eq!(
        serde_yaml_ng::to_string(&sample).unwrap(),
        serde_yaml_ng::to_string(&loaded).unwrap()
    );
    let text = load_yaml::<Sample>("mem.yml", "issuer: http://plain.example\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("issuer: must be an https:// URL"), "{text}");
    let text = load_yaml::<Sample>("mem.yml", "nope: 1\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("mem.yml:1:1"), "{text}");
}

#[test]
fn all_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir, "a.yml", "nope: 1\n");
    let b = write(&dir, "b.yml", "also_nope: 1\n");
    let err = load::<Sample>(&sources(vec![a, b])).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
}

#[test]
fn environment_overrides_files_and_flags_override_environment() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "a.yml", "server:\n  public:\n    port: 1111\n");
    let mut src = sources(vec![f]);
    src.env = vec![
        (
            "CRYPTOUTIL_SAMPLE__SERVER__PUBLIC__PORT".into(),
            "2222".into(),
        ),
        ("CRYPTOUTIL_SAMPLE__NAME".into(), "12345".into()),
        ("CRYPTOUTIL_OTHER__WHATEVER".into(), "ignored".into()),
        ("PATH".into(), "/bin".into()),
    ];
    let s: Sample = load(&src).unwrap();
    assert_eq!(s.server.public.port, 2222);
    assert_eq!(s.name, "12345", "string settings keep numeric-looking text");

    src.overrides = vec![("server.public.port".into(), Value::from(0))];
    let s: Sample = load(&src).unwrap();
    assert_eq!(s.server.public.port, 0);
}

#[test]
fn environment_rejects_unknown_keys_bad_values_and_secrets() {
    let mut src = ConfigSources {
        env: vec![("CRYPTOUTIL_SAMPLE__SERVER__PUBLC__PORT".into(), "1".into())],
        ..ConfigSources::default()
    };
    let text = load::<Sample>(&src).unwrap_err().to_string();
    assert!(
        text.contains("CRYPTOUTIL_SAMPLE__SERVER__PUBLC__PORT"),
        "{text}"
    );
    assert!(text.contains("publc"), "{text}");

    src.env = vec![(
        "CRYPTOUTIL_SAMPLE__SERVER__PUBLIC__PORT".into(),
        "http".into(),
    )];
    assert!(load::<Sample>(&src).is_err());

    src.env = vec![("CRYPTOUTIL_SAMPLE__PASSWORD".into(), "hunter2".into())];
    let text = load::<Sample>(&src).unwrap_err().to_string();
    assert!(text.contains("is a secret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn secrets_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(&dir, "pw", "s3cret\n");
    let f = write(
        &dir,
        "a.yml",
        &format!("password: file://{}\n", secret.display()),
    );
    let s: Sample = load(&sources(vec![f])).unwrap();
    assert_eq!(s.password.unwrap().expose(), "s3cret");

    let f = write(
        &dir,
        "b.yml",
        "password: file:///nonexistent/cryptoutil/pw\n",
    );
    let text = load::<Sample>(&sources(vec![f])).unwrap_err().to_string();
    assert!(text.contains("b.yml:1:"), "{text}");
    assert!(
        text.contains("cannot read secret file /nonexistent/cryptoutil/pw"),
        "{text}"
    );
}

#[test]
fn load_time_validation_catches_combinations() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "a.yml",
        "server:\n  public: {port: 5000}\n  admin: {port: 5000}\n  tls: {cert_file: /x.pem}\nlogging: {level: 'info,=[bad'}\n",
    );
    let err = load::<Sample>(&sources(vec![f])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("server.admin.port"), "{text}");
    assert!(text.contains("server.tls"), "{text}");
    assert!(text.contains("logging.level"), "{text}");
}

#[test]
fn empty_file_is_an_empty_layer_and_oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "empty.yml", "\n");
    assert!(load::<Sample>(&sources(vec![empty])).is_ok());
    let big = write(&dir, "big.yml", &"#".repeat(2 * 1024 * 1024));
    assert!(load::<Sample>(&sources(vec![big])).is_err());
}

#[test]
fn schema_marks_secrets_and_lists_settings() {
    let schema = json_schema::<Sample>();
    let text = schema.to_string();
    assert!(text.contains(SECRET_SCHEMA_MARKER));
    assert!(schema_at(&schema, &["server", "public", "port"]).is_ok());
    assert!(schema_at(&schema, &["server", "nope"]).is_err());
}

#[test]
fn standard_paths_start_with_etc() {
    let paths = standard_paths("kms.yml");
    assert_eq!(paths[0], Path::new("/etc/cryptoutil/kms.yml"));
}

#[test]
fn start_up_checks_find_unreadable_files() {
    let mut settings = ServerSettings::with_ports(1, 2);
    settings.tls.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    let mut v = Validator::default();
    settings.validate_files(&mut v);
    let text = v.finish().unwrap_err().to_string();
    assert!(text.contains("/nonexistent/ca.pem"), "{text}");
}
