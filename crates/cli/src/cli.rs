//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// cryptoutil: a multi-tenant KMS and an OAuth 2.1 / OpenID Connect identity server.
#[derive(Debug, Parser)]
#[command(
    name = "cryptoutil",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The key management service.
    Kms {
        #[command(subcommand)]
        command: KmsCommand,
    },
    /// The OAuth 2.1 authorization server and OpenID provider, and the sample resource server.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// One-command, fully verified demos.
    Demo {
        #[command(subcommand)]
        demo: DemoCommand,
    },
    /// Demo certificate authority and certificates.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Configuration: JSON Schemas and validation of configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Health probe for containers: GET an HTTPS URL (TLS 1.3, certificate verified against
    /// --ca-cert); exit 0 on a 2xx answer, 1 otherwise with the reason on stderr.
    Health(HealthArgs),
    /// The version; with --verbose also the cryptographic module (AWS-LC or AWS-LC FIPS), its
    /// version, whether FIPS mode is on, and the TLS policy.
    Version(VersionArgs),
}

/// Flags of `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Also the cryptographic module, FIPS mode and the TLS policy.
    #[arg(long)]
    pub verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VersionFormat::Human)]
    pub output: VersionFormat,
}

/// Output formats of `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionFormat {
    /// Aligned lines.
    Human,
    /// One JSON document on stdout.
    Json,
}

/// Flags of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The URL to GET, e.g. https://127.0.0.1:9081/admin/v1/livez.
    #[arg(value_name = "URL")]
    pub url: String,
    /// CA certificate(s) that sign the server's certificate (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE", required = true)]
    pub ca_cert: Vec<PathBuf>,
    /// Client certificate chain to present (admin listeners require one outside --dev).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Give up after this long (e.g. 5s).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub timeout: String,
}

/// `cryptoutil kms …`
#[derive(Debug, Subcommand)]
pub enum KmsCommand {
    /// The KMS server.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// Barrier tools.
    Barrier {
        #[command(subcommand)]
        command: BarrierCommand,
    },
    /// The cryptographic inventory of a running KMS: every elastic key with its algorithm, key
    /// size, versions, rotation policy, last use and whether a quantum computer breaks it, with
    /// totals per algorithm (a table, JSON, or a CycloneDX 1.6 CBOM).
    Inventory(InventoryArgs),
}

/// Output formats of `kms inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// One row per key, then the totals.
    Table,
    /// The KMS's JSON inventory.
    Json,
    /// A CycloneDX 1.6 CBOM (JSON).
    Cyclonedx,
}

/// Flags of `kms inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The KMS's public listener, https://host:port (with --admin: its admin listener).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate(s) that sign the KMS's certificate (repeatable).
    #[arg(long = "ca-cert", value_name = "FILE", required = true)]
    pub ca_cert: Vec<PathBuf>,
    /// A KMS realm user with kms:admin in its tenant (HTTP Basic); its tenant's keys are listed.
    #[arg(
        long,
        value_name = "NAME",
        requires = "password_file",
        conflicts_with = "token_file"
    )]
    pub username: Option<String>,
    /// A file holding that user's password (its first line).
    #[arg(long, value_name = "FILE", requires = "username")]
    pub password_file: Option<PathBuf>,
    /// A file holding an access token with kms:admin (sent as a Bearer token).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Use the access token of `cryptoutil identity login` (refreshed when it is about to
    /// expire) as the Bearer token; ISSUER picks the sign-in when there are several.
    #[arg(
        long,
        value_name = "ISSUER",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with_all = ["username", "token_file", "admin"]
    )]
    pub login: Option<String>,
    /// Every tenant's keys, from the admin listener (--url names it; outside --dev it requires
    /// --client-cert and --client-key). Needs no user.
    #[arg(long, conflicts_with_all = ["username", "token_file"])]
    pub admin: bool,
    /// Client certificate (PEM, leaf first) for the admin listener.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Table)]
    pub format: InventoryFormat,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up after this long (e.g. 30s).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
}

/// `cryptoutil kms barrier …`
#[derive(Debug, Subcommand)]
pub enum BarrierCommand {
    /// Write N fresh unseal share files (`share-1` … `share-N`, mode 0600) for
    /// `barrier.unseal.mode: shares`.
    GenerateShares(GenerateSharesArgs),
}

/// Flags of `kms barrier generate-shares`.
#[derive(Debug, Args)]
pub struct GenerateSharesArgs {
    /// Output directory (created if missing; existing share files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How many shares (N).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub count: usize,
    /// Bytes per share (32–64).
    #[arg(long, default_value_t = 32, value_name = "BYTES")]
    pub bytes: usize,
}

/// `cryptoutil identity …`
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// The Identity server (authorization server and login/consent pages).
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// The sample resource server and single-page client.
    Rs {
        #[command(subcommand)]
        command: RsCommand,
    },
    /// Sign in from this terminal with the device authorization grant (RFC 8628): prints a code
    /// and an address to open in a browser (and a QR code on a terminal), waits for the approval,
    /// and stores the tokens in the user's configuration directory (tokens.json, mode 0600).
    Login(LoginArgs),
    /// Print a valid access token of a stored sign-in (refreshed first when it expires within
    /// 30 seconds), for scripts: `curl -H "Authorization: Bearer $(cryptoutil identity token)"`.
    Token(StoredLoginArgs),
    /// Revoke a stored sign-in's tokens at the issuer (RFC 7009) and delete them; exit 1 if the
    /// revocation failed (they are deleted all the same).
    Logout(StoredLoginArgs),
}

/// Flags of `identity login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The authorization server's issuer identifier (https URL); its RFC 8414 metadata must
    /// name exactly this issuer.
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The public client to sign in as (registered for the device grant), e.g. demo-cli.
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// Scopes to ask for (repeatable, or several separated by spaces); none: the client's
    /// default.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scope: Vec<String>,
    /// RFC 8707 resource indicator: the API the tokens are for (repeatable).
    #[arg(long = "resource", value_name = "URL")]
    pub resource: Vec<String>,
    /// CA certificate(s) that sign the issuer's certificate (repeatable); remembered for
    /// `identity token`, `identity logout` and `--login`.
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Also trust the operating system's trust store (for an issuer with a public certificate).
    /// Without --ca-cert this is required.
    #[arg(long)]
    pub system_roots: bool,
}

/// Flags that pick a stored sign-in (needed only when there are several).
#[derive(Debug, Args)]
pub struct StoredLoginArgs {
    /// The issuer of the sign-in.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The client of the sign-in.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
}

/// `… server …`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Start the server and run until SIGTERM, SIGINT or `POST /admin/v1/shutdown`.
    Start(ServerStartArgs),
}

/// `cryptoutil identity rs …`
#[derive(Debug, Subcommand)]
pub enum RsCommand {
    /// Start the sample resource server.
    Start(ServerStartArgs),
}

/// Flags shared by every `… start` command (SPEC §8).
#[derive(Debug, Args)]
pub struct ServerStartArgs {
    /// Configuration file (YAML); repeat to layer files, later ones win. Without it the standard
    /// files are read if present: /etc/cryptoutil/<product>.yml, ~/.config/cryptoutil/<product>.yml.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Development mode: in-memory SQLite, dev unseal, a fresh demo CA in a temporary directory.
    /// Never for production.
    #[arg(long)]
    pub dev: bool,
    /// Seed the demo data (idempotent).
    #[arg(long)]
    pub demo: bool,
    /// Delete the demo data and seed it again.
    #[arg(long)]
    pub reset_demo: bool,
    /// Public listener port (0 = a free port).
    #[arg(long, value_name = "N")]
    pub public_port: Option<u16>,
    /// Admin listener port (0 = a free port).
    #[arg(long, value_name = "N")]
    pub admin_port: Option<u16>,
    /// Once ready, write {"public_url", "admin_url", "ca_cert"} to this file.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// `kms server start` and `identity rs start`: trust access tokens from this Identity issuer
    /// (HTTPS URL).
    #[arg(long, value_name = "URL")]
    pub trust_issuer: Option<String>,
    /// `kms server start` and `identity rs start`: the CA certificate that signs the issuer's TLS
    /// certificate (for fetching its keys).
    #[arg(long, value_name = "FILE", requires = "trust_issuer")]
    pub trust_issuer_ca: Option<PathBuf>,
}

/// `cryptoutil demo …`
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// The KMS demo.
    Kms(Box<DemoArgs>),
    /// The Identity demo.
    Identity(Box<DemoArgs>),
    /// Both products, the KMS federated to Identity.
    All(Box<DemoArgs>),
}

/// Output formats of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Steps with a spinner on a terminal, plain lines otherwise.
    Human,
    /// One JSON document on stdout.
    Json,
    /// logfmt lines.
    Structured,
}

/// Flags of the demos (SPEC §6). With no URL flags the servers are started in-process.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Stop at the first failed step (default: continue and report).
    #[arg(long)]
    pub fail_fast: bool,
    /// Retries of a request that failed transiently (connection failures, HTTP 502/503/504),
    /// with exponential backoff; 0 to 10.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retry: u32,
    /// How long to wait for servers to become healthy (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub health_timeout: String,
    /// More detail per step (never secrets).
    #[arg(long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only the summary (and what failed).
    #[arg(long)]
    pub quiet: bool,
    /// No colour (also off when NO_COLOR is set, stdout is not a terminal, or under CI).
    #[arg(long)]
    pub no_color: bool,
    /// Use a running KMS (its base URL, https://host:port) instead of starting one in-process.
    #[arg(long, value_name = "URL")]
    pub kms_url: Option<String>,
    /// Use a running Identity server (its issuer URL) instead of starting one in-process.
    #[arg(long, value_name = "URL")]
    pub identity_url: Option<String>,
    /// CA certificate of the running servers (required with --kms-url / --identity-url; repeat
    /// when they chain to different CAs).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// The running KMS's admin listener (https://host:port): readiness is checked there and
    /// `demo all` reads the KMS's audit events from it.
    #[arg(long, value_name = "URL", requires = "kms_url")]
    pub kms_admin_url: Option<String>,
    /// Client certificate (PEM, leaf first) presented to admin listeners, which require one
    /// outside --dev (e.g. the demo CA's demo/cert.pem).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Export the demo's traces, metrics and logs (and those of its in-process servers) to this
    /// OTLP collector endpoint, https://host:port (gRPC on port 4317, HTTP/protobuf otherwise).
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The CA certificate that issued the collector's certificate (required with
    /// --otlp-endpoint).
    #[arg(long, value_name = "FILE", env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub otlp_ca_cert: Option<PathBuf>,
    /// The OTLP transport: grpc or http/protobuf (default: by the endpoint's port).
    #[arg(long, value_name = "PROTOCOL", env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// The demo user (KMS realm user in demo-tenant; the Identity user who signs in).
    #[arg(long, default_value = "demo-user", value_name = "NAME")]
    pub username: String,
    /// Its password (default: "<username>-password", the demo convention).
    #[arg(long, value_name = "PASSWORD", conflicts_with = "password_file")]
    pub password: Option<String>,
    /// A file holding its password (e.g. a Docker secret).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// A KMS user of another tenant, for the isolation check.
    #[arg(long, default_value = "demo-user-2", value_name = "NAME")]
    pub second_username: String,
    /// Its password (default: "<second-username>-password").
    #[arg(long, value_name = "PASSWORD", conflicts_with = "second_password_file")]
    pub second_password: Option<String>,
    /// A file holding its password.
    #[arg(long, value_name = "FILE")]
    pub second_password_file: Option<PathBuf>,
    /// The confidential OAuth client of the Identity demo.
    #[arg(long, default_value = "demo-confidential-client", value_name = "ID")]
    pub client_id: String,
    /// Its secret (default: "<client-id>-secret", the demo convention).
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_file")]
    pub client_secret: Option<String>,
    /// A file holding its secret (e.g. a Docker secret).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// A redirect URI registered for the client (the demo reads the redirect; nothing is served).
    #[arg(
        long,
        default_value = "https://localhost:8084/confidential/callback",
        value_name = "URL"
    )]
    pub redirect_uri: String,
    /// `demo all`: the machine client whose tokens the KMS accepts (kms:read kms:write).
    #[arg(long, default_value = "demo-kms-client", value_name = "ID")]
    pub kms_client_id: String,
    /// Its secret (default: "<kms-client-id>-secret").
    #[arg(long, value_name = "SECRET", conflicts_with = "kms_client_secret_file")]
    pub kms_client_secret: Option<String>,
    /// A file holding its secret.
    #[arg(long, value_name = "FILE")]
    pub kms_client_secret_file: Option<PathBuf>,
    /// `demo all`: a machine client with kms:read only (refused on encrypt).
    #[arg(long, default_value = "demo-kms-readonly-client", value_name = "ID")]
    pub readonly_client_id: String,
    /// Its secret (default: "<readonly-client-id>-secret").
    #[arg(
        long,
        value_name = "SECRET",
        conflicts_with = "readonly_client_secret_file"
    )]
    pub readonly_client_secret: Option<String>,
    /// A file holding its secret.
    #[arg(long, value_name = "FILE")]
    pub readonly_client_secret_file: Option<PathBuf>,
}

/// `cryptoutil tls …`
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Write a demo CA (Root → Policy → Issuing) and certificates for every service.
    InitDemoCa(InitDemoCaArgs),
    /// Issue one more certificate from an existing CA directory.
    Issue(IssueArgs),
}

/// Key algorithms for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CurveArg {
    /// ECDSA P-256 with SHA-256 (default).
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
    /// ECDSA P-521 with SHA-512.
    P521,
}

/// Flags of `tls init-demo-ca`.
#[derive(Debug, Args)]
pub struct InitDemoCaArgs {
    /// Output directory (created if missing; must not already hold a CA unless --if-missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// When DIR already holds a complete, valid demo CA (every certificate present,
    /// matching its key, unexpired, with the --san names), leave it untouched and succeed; a
    /// partial or different one is an error, never replaced. For one-shot container services.
    #[arg(long)]
    pub if_missing: bool,
    /// One more server name, as SERVICE=NAME (repeatable): NAME is added to the certificate of
    /// kms, identity or rs; any other SERVICE gets its own server certificate in DIR/SERVICE/
    /// (e.g. --san kms=kms-1 --san postgres=postgres).
    #[arg(long = "san", value_name = "SERVICE=NAME", value_parser = parse_san)]
    pub sans: Vec<(String, String)>,
    /// Number of CA certificates in the chain, root included.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub chain_length: u8,
    /// Key algorithm of every certificate.
    #[arg(long, value_enum, default_value_t = CurveArg::P256)]
    pub curve: CurveArg,
}

/// `SERVICE=NAME` of `--san`.
fn parse_san(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((service, name)) if !service.is_empty() && !name.is_empty() => {
            Ok((service.to_owned(), name.to_owned()))
        }
        _ => Err(format!(
            "expected SERVICE=NAME, such as kms=kms-1, not {raw:?}"
        )),
    }
}

/// What kind of certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LeafKindArg {
    /// A server certificate (EKU serverAuth).
    Server,
    /// A client certificate (EKU clientAuth).
    Client,
}

/// Flags of `tls issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The CA directory written by `init-demo-ca` (its `ca/` subdirectory).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Where to write cert.pem and key.pem.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Server or client certificate.
    #[arg(long, value_enum, default_value_t = LeafKindArg::Server)]
    pub kind: LeafKindArg,
    /// DNS name (repeatable for servers; the first is the subject CN). For clients: the CN.
    #[arg(long = "name", value_name = "FQDN", required = true)]
    pub names: Vec<String>,
    /// Validity in days (at most 398).
    #[arg(long, default_value_t = 397, value_name = "DAYS")]
    pub days: u32,
}

/// Products with a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Product {
    /// The KMS (`kms.yml`).
    Kms,
    /// The Identity server (`identity.yml`).
    Identity,
    /// The sample resource server (`rs.yml`).
    Rs,
}

/// `cryptoutil config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of a product's configuration.
    Schema {
        /// The product.
        #[arg(value_enum)]
        product: Product,
    },
    /// Load and validate configuration files (and CRYPTOUTIL_<PRODUCT>__ variables) and print the
    /// effective configuration, secrets redacted.
    Check {
        /// The product.
        #[arg(value_enum)]
        product: Product,
        /// Configuration file; repeat to layer.
        #[arg(long = "config", value_name = "FILE")]
        config: Vec<PathBuf>,
    },
}
