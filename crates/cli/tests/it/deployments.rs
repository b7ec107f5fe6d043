//! The compose files under `deployments/`, checked without a Docker engine (none runs on the
//! build machines; docs/deployment.md):
//!
//! - every compose file validates against the Compose Specification schema
//!   (`deployments/compose-spec.json`);
//! - every config, secret, volume, network and dependency a service names is defined, and every
//!   file behind a config or secret exists;
//! - every server command parses with the real command line, and the config files it names load
//!   through the product's real loader with the Docker secrets they reference (`/run/secrets/NAME`
//!   is the compose file's secret file, as Docker mounts it); the KMS's unseal shares unseal and
//!   Identity's key-encryption key parses;
//! - published ports, health-check URLs and certificate paths match what the servers are
//!   configured to serve and what the one-shot `tls init-demo-ca` writes;
//! - every demo command parses with the real `demo` flags and its URLs name servers it can reach
//!   (a network alias on a shared network, the configured port).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The real command line, so the commands in the compose files are parsed exactly as the binary
/// parses them.
#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

use cryptoutil_identity::config::IdentitySettings;
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_server::config::{ConfigSources, ServerSettings, Settings, load};

/// Every compose file: the products, their demos, the integration demo, and the shared ones.
const COMPOSE_FILES: [&str; 7] = [
    "pki/compose.yml",
    "telemetry/compose.yml",
    "kms/compose.yml",
    "kms/compose.demo.yml",
    "identity/compose.yml",
    "identity/compose.demo.yml",
    "integration/compose.yml",
];
/// Where the one-shot service writes the demo CA in the containers.
const CERTS: &str = "/var/lib/cryptoutil/certs";
/// The admin liveness route every server serves.
const LIVEZ: &str = "/admin/v1/livez";

fn deployments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployments")
}

/// A compose file as Compose reads it: YAML with merge keys (`<<: *anchor`) applied.
fn read_compose(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    yaml.apply_merge().unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// One service, with the directory its relative paths start from.
struct Service {
    name: String,
    spec: Value,
    dir: PathBuf,
}

/// A compose file with everything it includes: services and the top-level resources, with the
/// files behind configs and secrets as absolute paths.
#[derive(Default)]
struct Project {
    file: String,
    services: Vec<Service>,
    configs: BTreeMap<String, PathBuf>,
    secrets: BTreeMap<String, PathBuf>,
    volumes: BTreeSet<String>,
    networks: BTreeSet<String>,
}

impl Project {
    fn load(file: &str) -> Self {
        let mut project = Project {
            file: file.to_owned(),
            ..Project::default()
        };
        project.add(&deployments().join(file));
        project
    }

    fn add(&mut self, path: &Path) {
        let doc = read_compose(path);
        let dir = path.parent().unwrap().to_path_buf();
        for include in doc["include"].as_array().into_iter().flatten() {
            let included = include["path"].as_str().or(include.as_str()).unwrap();
            self.add(&dir.join(included));
        }
        for (name, spec) in doc["services"].as_object().into_iter().flatten() {
            self.services.push(Service {
                name: name.clone(),
                spec: spec.clone(),
                dir: dir.clone(),
            });
        }
        for (kind, files) in [
            ("configs", &mut self.configs),
            ("secrets", &mut self.secrets),
        ] {
            for (name, spec) in doc[kind].as_object().into_iter().flatten() {
                let file = spec["file"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{kind}.{name}: only `file:` sources are used"));
                files.insert(name.clone(), dir.join(file));
            }
        }
        for (kind, names) in [
            ("volumes", &mut self.volumes),
            ("networks", &mut self.networks),
        ] {
            names.extend(
                doc[kind]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, _)| n.clone()),
            );
        }
    }

    fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{}: no service {name}", self.file))
    }
}

impl Service {
    /// The command, which must be in list form (no shell in the image).
    fn command(&self) -> Vec<String> {
        strings(&self.spec["command"])
    }

    /// The command of a service running the cryptoutil image, parsed with the real command
    /// line; `None` for other images.
    fn cryptoutil_command(&self, project: &Project) -> Option<cli::Command> {
        let image = self.spec["image"].as_str().unwrap_or_default();
        if !image.contains("CRYPTOUTIL_IMAGE") {
            return None;
        }
        let argv = std::iter::once("cryptoutil".to_owned()).chain(self.command());
        let parsed = cli::Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{}/{}: {e}", project.file, self.name));
        Some(parsed.command)
    }

    fn secrets(&self) -> Vec<String> {
        strings(&self.spec["secrets"])
    }

    fn profiles(&self) -> Vec<String> {
        strings(&self.spec["profiles"])
    }

    /// `(source, target)` of each `volumes` entry (short syntax).
    fn mounts(&self) -> Vec<(String, String)> {
        strings(&self.spec["volumes"])
            .iter()
            .map(|m| {
                let mut parts = m.split(':');
                (
                    parts.next().unwrap().to_owned(),
                    parts
                        .next()
                        .unwrap_or_else(|| panic!("{m}: no target"))
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The networks it joins, with their aliases.
    fn networks(&self) -> BTreeMap<String, Vec<String>> {
        match &self.spec["networks"] {
            Value::Object(map) => map
                .iter()
                .map(|(n, spec)| (n.clone(), strings(&spec["aliases"])))
                .collect(),
            other => strings(other)
                .into_iter()
                .map(|n| (n, Vec::new()))
                .collect(),
        }
    }

    /// The names other services on a shared network reach it by.
    fn reachable_as(&self, from: &Service) -> BTreeSet<String> {
        let theirs = from.networks();
        let mut names = BTreeSet::new();
        for (network, aliases) in self.networks() {
            if theirs.contains_key(&network) {
                names.insert(self.name.clone());
                names.extend(aliases);
            }
        }
        names
    }

    /// Container ports it publishes (`[host_ip:]host_port:container_port`).
    fn published_container_ports(&self) -> Vec<u16> {
        strings(&self.spec["ports"])
            .iter()
            .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The host file behind the `/run/secrets/NAME` path inside this service's container.
    fn secret_file(&self, project: &Project, in_container: &str) -> PathBuf {
        let name = in_container
            .strip_prefix("/run/secrets/")
            .unwrap_or_else(|| panic!("{}: {in_container} is not a Docker secret", self.name));
        assert!(
            self.secrets().iter().any(|s| s == name),
            "{}/{}: uses secret {name} but does not list it",
            project.file,
            self.name
        );
        project.secrets[name].clone()
    }

    /// Asserts `path` is inside a volume mounted into this service.
    fn assert_mounted(&self, project: &Project, path: &str) {
        assert!(
            self.mounts()
                .iter()
                .any(|(_, target)| path.starts_with(&format!("{target}/"))),
            "{}/{}: {path} is on no mounted volume",
            project.file,
            self.name
        );
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{v} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("expected a list of strings, got {other}"),
    }
}

fn projects() -> Vec<Project> {
    COMPOSE_FILES.iter().map(|f| Project::load(f)).collect()
}

#[test]
fn every_compose_file_is_listed_here() {
    let mut found = BTreeSet::new();
    for dir in std::fs::read_dir(deployments()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("compose") && name.ends_with(".yml") {
                let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
                found.insert(format!("{dir_name}/{name}"));
            }
        }
    }
    let listed: BTreeSet<String> = COMPOSE_FILES.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(found, listed);
}

#[test]
fn compose_files_validate_against_the_compose_specification() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(deployments().join("compose-spec.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    for file in COMPOSE_FILES {
        let doc = read_compose(&deployments().join(file));
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}:\n{}", errors.join("\n"));
    }
    // The schema does reject what Compose rejects.
    let mut broken = read_compose(&deployments().join("kms/compose.yml"));
    broken["services"]["kms"]["healthchek"] = Value::from("typo");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn every_resource_a_service_names_is_defined() {
    for project in projects() {
        let at = |s: &Service| format!("{}/{}", project.file, s.name);
        let issued = issued_certificates(&project);
        for (name, path) in project.configs.iter().chain(&project.secrets) {
            assert!(
                path.is_file(),
                "{}: {name}: {} missing",
                project.file,
                path.display()
            );
        }
        for s in &project.services {
            assert!(
                !s.command().is_empty() || s.spec["image"].is_string(),
                "{}",
                at(s)
            );
            for secret in s.secrets() {
                assert!(
                    project.secrets.contains_key(&secret),
                    "{}: secret {secret}",
                    at(s)
                );
            }
            for config in s.spec["configs"].as_array().into_iter().flatten() {
                let source = config["source"].as_str().unwrap();
                assert!(
                    project.configs.contains_key(source),
                    "{}: config {source}",
                    at(s)
                );
                assert!(
                    config["target"].is_string(),
                    "{}: config {source} target",
                    at(s)
                );
            }
            for (source, _) in s.mounts() {
                if source.starts_with('.') {
                    assert!(
                        s.dir.join(&source).exists(),
                        "{}: bind mount {source}",
                        at(s)
                    );
                } else {
                    assert!(
                        project.volumes.contains(&source),
                        "{}: volume {source}",
                        at(s)
                    );
                }
            }
            for network in s.networks().keys() {
                assert!(
                    project.networks.contains(network),
                    "{}: network {network}",
                    at(s)
                );
            }
            for (dependency, condition) in s.spec["depends_on"].as_object().into_iter().flatten() {
                let target = project.service(dependency);
                let profiles = target.profiles();
                assert!(
                    profiles.is_empty() || s.profiles().iter().all(|p| profiles.contains(p)),
                    "{}: depends on {dependency}, which is not in its profiles",
                    at(s)
                );
                match condition["condition"].as_str().unwrap() {
                    "service_healthy" => assert!(
                        target.spec["healthcheck"]["test"].is_array(),
                        "{}: waits for {dependency} to be healthy, which has no health check",
                        at(s)
                    ),
                    "service_completed_successfully" => assert_eq!(
                        target.spec["restart"],
                        "no",
                        "{}: waits for {dependency} to complete",
                        at(s)
                    ),
                    _ => {}
                }
            }
            // Certificates: only ones the one-shot CA service writes, on the certs volume (in
            // the command, environment, health check and mounted config files alike).
            let mut text = s.spec.to_string();
            for config in s.spec["configs"].as_array().into_iter().flatten() {
                let source = config["source"].as_str().unwrap();
                text += &std::fs::read_to_string(&project.configs[source]).unwrap();
            }
            for dir in cert_dirs_named(&text) {
                assert!(issued.contains(&dir), "{}: init-ca issues no {dir}/", at(s));
                s.assert_mounted(&project, &format!("{CERTS}/{dir}/cert.pem"));
            }
            // Secrets are files, never environment values.
            for (key, _) in s.spec["environment"].as_object().into_iter().flatten() {
                let k = key.to_ascii_uppercase();
                assert!(
                    !(k.contains("PASSWORD") || k.contains("SECRET")) || k.ends_with("_FILE"),
                    "{}: {key} looks like a secret in the environment",
                    at(s)
                );
            }
            assert!(
                s.spec["deploy"]["resources"]["limits"]["memory"].is_string(),
                "{}: no memory limit",
                at(s)
            );
        }
    }
}

/// A server service's settings, loaded as the container would load them.
struct Server {
    settings: ServerSettings,
}

/// Parses a server command with the real command line and loads its config files through the
/// product's loader: each `--config` is the service's config file, with every
/// `/run/secrets/NAME` replaced by the compose file's secret file for NAME.
fn load_server<T: Settings>(
    project: &Project,
    service: &Service,
    args: &cli::ServerStartArgs,
    scratch: &Path,
) -> T {
    let mut files = Vec::new();
    for (i, path) in args.config.iter().enumerate() {
        let target = path.to_str().unwrap();
        let source = service.spec["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["target"] == target)
            .and_then(|c| c["source"].as_str())
            .unwrap_or_else(|| panic!("{}/{}: {target} is no config", project.file, service.name));
        let mut text = std::fs::read_to_string(&project.configs[source]).unwrap();
        for secret in service.secrets() {
            let in_container = format!("/run/secrets/{secret}");
            let file = service.secret_file(project, &in_container);
            text = text.replace(&in_container, file.to_str().unwrap());
        }
        let file = scratch.join(format!("{}-{i}-{source}.yml", service.name));
        std::fs::write(&file, text).unwrap();
        files.push(file);
    }
    // The service's environment too: the loader reads CRYPTOUTIL_<PRODUCT>__… variables.
    let env = service.spec["environment"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let sources = ConfigSources {
        files,
        env,
        ..ConfigSources::default()
    };
    load::<T>(&sources).unwrap_or_else(|e| panic!("{}/{}: {e}", project.file, service.name))
}

/// The server settings of every KMS and Identity service of a project, checked on the way:
/// the product's own rules, certificates, published ports and the health check.
fn servers(project: &Project, scratch: &Path) -> BTreeMap<String, Server> {
    let mut servers = BTreeMap::new();
    let issued = issued_certificates(project);
    for s in &project.services {
        let at = format!("{}/{}", project.file, s.name);
        let (settings, product) = match s.cryptoutil_command(project) {
            Some(cli::Command::Kms {
                command:
                    cli::KmsCommand::Server {
                        command: cli::ServerCommand::Start(args),
                    },
            }) => {
                let kms: KmsSettings = load_server(project, s, &args, scratch);
                check_kms(project, s, &kms);
                let t = &kms.telemetry;
                check_telemetry(project, s, t.endpoint.as_ref(), t.ca_file.as_deref());
                assert!(!args.dev, "{at}: --dev generates its own CA");
                (kms.server, "kms")
            }
            Some(cli::Command::Identity {
                command:
                    cli::IdentityCommand::Server {
                        command: cli::ServerCommand::Start(args),
                    },
            }) => {
                let identity: IdentitySettings = load_server(project, s, &args, scratch);
                check_identity(project, s, &identity);
                let t = &identity.telemetry;
                check_telemetry(project, s, t.endpoint.as_ref(), t.ca_file.as_deref());
                assert!(!args.dev, "{at}: --dev generates its own CA");
                (identity.server, "identity")
            }
            _ => continue,
        };
        // Certificates: the files the one-shot CA service writes, on the certs volume.
        let tls = &settings.tls;
        for (key, path, expected) in [
            (
                "cert_file",
                &tls.cert_file,
                format!("{CERTS}/{product}/cert.pem"),
            ),
            (
                "key_file",
                &tls.key_file,
                format!("{CERTS}/{product}/key.pem"),
            ),
            (
                "client_ca_file",
                &tls.client_ca_file,
                format!("{CERTS}/ca/root.pem"),
            ),
            ("ca_file", &tls.ca_file, format!("{CERTS}/ca/root.pem")),
        ] {
            assert_eq!(
                path.as_deref(),
                Some(Path::new(&expected)),
                "{at}: server.tls.{key}"
            );
            s.assert_mounted(project, &expected);
        }
        assert!(
            issued.contains(product),
            "{at}: init-ca issues no {product} certificate"
        );
        assert_eq!(
            settings.admin.require_client_cert, None,
            "{at}: admin mTLS stays required"
        );
        // Published ports are the public listener's.
        for port in s.published_container_ports() {
            assert_eq!(port, settings.public.port, "{at}: publishes {port}");
        }
        // The health check: `cryptoutil health` on the admin livez with the demo client cert.
        let test = strings(&s.spec["healthcheck"]["test"]);
        assert_eq!(test[..2], ["CMD", "/usr/local/bin/cryptoutil"], "{at}");
        let probe = cli::Cli::try_parse_from(&test[1..])
            .unwrap_or_else(|e| panic!("{at}: health check: {e}"));
        let cli::Command::Health(probe) = probe.command else {
            panic!("{at}: not `health`")
        };
        assert_eq!(
            probe.url,
            format!("https://127.0.0.1:{}{LIVEZ}", settings.admin.port),
            "{at}: health check URL"
        );
        assert_eq!(
            probe.ca_cert,
            [PathBuf::from(format!("{CERTS}/ca/root.pem"))],
            "{at}"
        );
        assert_eq!(
            probe.client_cert,
            Some(PathBuf::from(format!("{CERTS}/demo/cert.pem"))),
            "{at}"
        );
        assert_eq!(
            probe.client_key,
            Some(PathBuf::from(format!("{CERTS}/demo/key.pem"))),
            "{at}"
        );
        servers.insert(s.name.clone(), Server { settings });
    }
    servers
}

/// The directories under the certs volume that `text` names (`…/certs/<dir>/…`).
fn cert_dirs_named(text: &str) -> BTreeSet<String> {
    text.split(&format!("{CERTS}/"))
        .skip(1)
        .map(|rest| rest.split('/').next().unwrap().to_owned())
        .collect()
}

/// The service directories the project's `init-ca` command writes certificates to.
fn issued_certificates(project: &Project) -> BTreeSet<String> {
    let init = project.service("init-ca");
    let Some(cli::Command::Tls {
        command: cli::TlsCommand::InitDemoCa(args),
    }) = init.cryptoutil_command(project)
    else {
        panic!("init-ca does not run tls init-demo-ca")
    };
    assert!(
        args.if_missing,
        "init-ca must leave an existing CA alone on the next `up`"
    );
    assert_eq!(args.out, Path::new(CERTS));
    init.assert_mounted(project, &format!("{CERTS}/ca/root.pem"));
    let mut issued: BTreeSet<String> = cryptoutil_tls::ca::DEMO_SERVICES
        .iter()
        .map(|(service, _)| (*service).to_owned())
        .collect();
    issued.extend(args.sans.into_iter().map(|(service, _)| service));
    issued.insert(cryptoutil_tls::ca::DEMO_CLIENT.to_owned());
    issued.insert("ca".to_owned());
    issued
}

fn check_kms(project: &Project, service: &Service, kms: &KmsSettings) {
    let at = format!("{}/{}", project.file, service.name);
    kms.check_unseal_fits_database()
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    // The unseal files are the service's secrets and really unseal (all N present).
    if let cryptoutil_kms::barrier::UnsealSettings::Shares { files, .. } = &kms.barrier.unseal {
        for file in files {
            assert!(
                file.is_file(),
                "{at}: {} is not a secret file",
                file.display()
            );
        }
        let keys = cryptoutil_kms::barrier::UnsealKeys::load(&kms.barrier)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(keys.is_complete(), "{at}: initialising needs all shares");
    }
    check_database_url(project, service, kms.database.url.expose());
    for issuer in &kms.auth.federation.issuers {
        let url = url::Url::parse(&issuer.issuer).unwrap();
        let identity = project
            .services
            .iter()
            .find(|s| s.reachable_as(service).contains(url.host_str().unwrap()))
            .unwrap_or_else(|| panic!("{at}: no service answers as {}", issuer.issuer));
        assert!(
            identity.command().starts_with(&["identity".to_owned()]),
            "{at}"
        );
        let secret = issuer.introspection.client_secret.as_ref().unwrap();
        assert_eq!(
            secret.expose(),
            seeded_client_secret(&issuer.introspection.client_id),
            "{at}: the introspection secret is not the one Identity's demo seed registers"
        );
    }
}

fn check_identity(project: &Project, service: &Service, identity: &IdentitySettings) {
    let at = format!("{}/{}", project.file, service.name);
    let issuer = url::Url::parse(identity.issuer.as_deref().unwrap()).unwrap();
    assert!(
        service
            .reachable_as(service)
            .contains(issuer.host_str().unwrap()),
        "{at}: the issuer's host is not a name of the service"
    );
    assert_eq!(
        issuer.port(),
        Some(identity.server.public.port),
        "{at}: issuer port"
    );
    if !identity.database.is_in_memory() {
        let key = identity
            .keys
            .encryption_key
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: a persistent database needs keys.encryption_key"));
        cryptoutil_identity::signing::KeyEncryptionKey::from_base64url(key.expose())
            .unwrap_or_else(|e| panic!("{at}: keys.encryption_key: {e}"));
    }
    check_database_url(project, service, identity.database.url.expose());
}

/// A PostgreSQL URL names the project's PostgreSQL service, its password is that service's
/// password secret, and TLS is verified against the demo CA.
fn check_database_url(project: &Project, service: &Service, url: &str) {
    if !url.starts_with("postgres") {
        return;
    }
    let at = format!("{}/{}", project.file, service.name);
    let url = url::Url::parse(url).unwrap();
    let postgres = project.service(url.host_str().unwrap());
    assert!(
        !postgres.reachable_as(service).is_empty(),
        "{at}: PostgreSQL on no shared network"
    );
    let password_file = postgres.spec["environment"]["POSTGRES_PASSWORD_FILE"]
        .as_str()
        .unwrap();
    let password = std::fs::read_to_string(postgres.secret_file(project, password_file)).unwrap();
    assert_eq!(
        url.password(),
        Some(password.trim_end()),
        "{at}: database password"
    );
    assert_eq!(
        url.path(),
        format!(
            "/{}",
            postgres.spec["environment"]["POSTGRES_DB"]
                .as_str()
                .unwrap()
        )
    );
    let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["sslmode"], "verify-full", "{at}");
    assert_eq!(query["sslrootcert"], format!("{CERTS}/ca/root.pem"), "{at}");
    service.assert_mounted(project, &query["sslrootcert"]);
}

/// Telemetry is on in compose (SPEC §7), except in the `ci` profiles, which run without the
/// telemetry stack: OTLP to the Collector on a shared network, its certificate verified against
/// the demo CA.
fn check_telemetry(
    project: &Project,
    service: &Service,
    endpoint: Option<&url::Url>,
    ca: Option<&Path>,
) {
    let at = format!("{}/{}", project.file, service.name);
    if service.profiles().iter().any(|p| p == "ci") {
        assert!(
            endpoint.is_none(),
            "{at}: the ci profile runs without the Collector"
        );
        return;
    }
    let endpoint = endpoint.unwrap_or_else(|| panic!("{at}: telemetry is off"));
    check_collector_url(project, service, endpoint);
    let root = format!("{CERTS}/ca/root.pem");
    assert_eq!(ca, Some(Path::new(&root)), "{at}: telemetry CA");
    service.assert_mounted(project, &root);
}

/// `url` is the Collector's OTLP receiver, reachable from `service`.
fn check_collector_url(project: &Project, service: &Service, url: &url::Url) {
    let at = format!("{}/{}", project.file, service.name);
    let collector = project.service("otel-collector");
    assert_eq!(url.scheme(), "https", "{at}: {url}");
    assert!(
        collector
            .reachable_as(service)
            .contains(url.host_str().unwrap()),
        "{at}: {url} is not the Collector on a shared network"
    );
    let config = std::fs::read_to_string(&project.configs["otel-collector"]).unwrap();
    let port = url.port().unwrap();
    assert!(
        config.contains(&format!("endpoint: 0.0.0.0:{port}")) && [4317, 4318].contains(&port),
        "{at}: the Collector has no OTLP receiver on {port}"
    );
}

/// The client secret Identity's demo seed registers for `client_id`.
fn seeded_client_secret(client_id: &str) -> String {
    let seed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(cryptoutil_identity::seed::DEMO_SEED).unwrap();
    seed["clients"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["client_id"].as_str() == Some(client_id))
        .and_then(|c| c["secret"].as_str())
        .unwrap_or_else(|| panic!("the demo seed has no secret for {client_id}"))
        .to_owned()
}

#[test]
fn servers_load_their_configuration_and_serve_what_compose_expects() {
    let scratch = tempfile::tempdir().unwrap();
    let mut seen = BTreeSet::new();
    for project in projects() {
        for name in servers(&project, scratch.path()).keys() {
            seen.insert(format!("{}/{name}", project.file));
        }
    }
    // Not vacuous: every server of every file was checked.
    for expected in [
        "kms/compose.yml/kms",
        "kms/compose.yml/kms-ci",
        "kms/compose.yml/kms-1",
        "kms/compose.yml/kms-2",
        "kms/compose.demo.yml/kms",
        "identity/compose.yml/identity",
        "identity/compose.yml/identity-ci",
        "identity/compose.yml/identity-prod",
        "identity/compose.demo.yml/identity",
        "integration/compose.yml/kms",
        "integration/compose.yml/identity",
    ] {
        assert!(seen.contains(expected), "{expected} not checked: {seen:?}");
    }
}

#[test]
fn demo_commands_parse_and_reach_the_servers() {
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for project in projects() {
        let servers = servers(&project, scratch.path());
        for s in &project.services {
            let Some(cli::Command::Demo { demo }) = s.cryptoutil_command(&project) else {
                continue;
            };
            let at = format!("{}/{}", project.file, s.name);
            let (kind, args) = match demo {
                cli::DemoCommand::Kms(a) => ("kms", a),
                cli::DemoCommand::Identity(a) => ("identity", a),
                cli::DemoCommand::All(a) => ("all", a),
            };
            // Against the compose servers, never in-process ones.
            let urls = [
                ("--kms-url", &args.kms_url, kind != "identity", false),
                ("--identity-url", &args.identity_url, kind != "kms", false),
                ("--kms-admin-url", &args.kms_admin_url, kind == "all", true),
            ];
            for (flag, url, needed, admin) in urls {
                let Some(url) = url else {
                    assert!(!needed, "{at}: {flag} missing");
                    continue;
                };
                let url = url::Url::parse(url).unwrap();
                assert_eq!(url.scheme(), "https", "{at}: {flag}");
                let host = url.host_str().unwrap();
                let (name, server) = servers
                    .iter()
                    .find(|(name, _)| project.service(name).reachable_as(s).contains(host))
                    .unwrap_or_else(|| panic!("{at}: {flag}: no server answers as {host}"));
                let listener = if admin {
                    assert!(
                        server.settings.admin.address.is_unspecified(),
                        "{at}: {flag}: {name}'s admin listener is bound to loopback"
                    );
                    server.settings.admin.port
                } else {
                    server.settings.public.port
                };
                assert_eq!(url.port(), Some(listener), "{at}: {flag} port");
                checked += 1;
            }
            assert_eq!(
                args.ca_cert,
                [PathBuf::from(format!("{CERTS}/ca/root.pem"))],
                "{at}"
            );
            s.assert_mounted(&project, &format!("{CERTS}/ca/root.pem"));
            // Telemetry as the servers' (the demo's trace is the root of theirs).
            if s.profiles().iter().any(|p| p == "ci") {
                assert!(
                    args.otlp_endpoint.is_none(),
                    "{at}: ci runs without the Collector"
                );
            } else {
                let endpoint = args
                    .otlp_endpoint
                    .as_deref()
                    .unwrap_or_else(|| panic!("{at}: no --otlp-endpoint"));
                check_collector_url(&project, s, &url::Url::parse(endpoint).unwrap());
                let root = PathBuf::from(format!("{CERTS}/ca/root.pem"));
                assert_eq!(
                    args.otlp_ca_cert.as_ref(),
                    Some(&root),
                    "{at}: --otlp-ca-cert"
                );
            }
            if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
                assert_eq!(cert, Path::new(&format!("{CERTS}/demo/cert.pem")), "{at}");
                assert_eq!(key, Path::new(&format!("{CERTS}/demo/key.pem")), "{at}");
            }
            // Credential files are Docker secrets holding what the demo seeds register.
            let files = [
                (&args.password_file, format!("{}-password", args.username)),
                (
                    &args.second_password_file,
                    format!("{}-password", args.second_username),
                ),
                (
                    &args.client_secret_file,
                    seeded_client_secret(&args.client_id),
                ),
                (
                    &args.kms_client_secret_file,
                    seeded_client_secret(&args.kms_client_id),
                ),
                (
                    &args.readonly_client_secret_file,
                    seeded_client_secret(&args.readonly_client_id),
                ),
            ];
            for (file, expected) in files {
                if let Some(file) = file {
                    let host = s.secret_file(&project, file.to_str().unwrap());
                    let value = std::fs::read_to_string(host).unwrap();
                    assert_eq!(value.trim_end(), expected, "{at}: {}", file.display());
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} demo URLs checked");
}
