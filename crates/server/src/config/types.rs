//! Settings every server shares: listeners, TLS files, limits, logging.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HumanDuration, Validator};

/// One HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerSettings {
    /// IP address to bind (`0.0.0.0` for all interfaces, `127.0.0.1` for loopback only).
    pub address: IpAddr,
    /// TCP port; `0` asks the operating system for a free port.
    pub port: u16,
    /// Ask clients for a TLS certificate (optional for them; verified against
    /// `tls.client_ca_file` when sent), so a product can log them in by certificate subject.
    pub request_client_cert: bool,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self::loopback(0)
    }
}

impl ListenerSettings {
    /// A loopback listener on `port`.
    pub const fn loopback(port: u16) -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            request_client_cert: false,
        }
    }
}

/// The admin listener: health, readiness, shutdown and certificate reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// IP address to bind; loopback by default.
    pub address: IpAddr,
    /// TCP port; `0` asks for a free port.
    pub port: u16,
    /// Require a client certificate issued by `tls.client_ca_file` (mTLS). Unset means: required
    /// except in `--dev` mode.
    pub require_client_cert: Option<bool>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            require_client_cert: None,
        }
    }
}

/// Certificate files. When `cert_file`/`key_file` are unset, `--dev` generates a fresh demo CA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the server certificate followed by its chain (not the root).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the server's PKCS#8 private key (mode 0600).
    pub key_file: Option<PathBuf>,
    /// PEM bundle of CAs whose client certificates the admin listener accepts (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// PEM bundle of CAs this server trusts for its own outbound HTTPS calls.
    pub ca_file: Option<PathBuf>,
    /// Reload the certificate when its files change (in addition to SIGHUP and the admin API).
    pub watch: Option<bool>,
}

/// Limits applied to every request on the public listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Maximum request body size in bytes (default 2 MiB).
    pub max_body_bytes: usize,
    /// Time allowed for one request, from headers received to response (default 30s).
    pub request_timeout: HumanDuration,
    /// Time allowed for a TLS handshake (default 10s).
    pub handshake_timeout: HumanDuration,
    /// Time in-flight requests get to finish during shutdown (default 30s).
    pub drain_timeout: HumanDuration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: HumanDuration::from_secs(30),
            handshake_timeout: HumanDuration::from_secs(10),
            drain_timeout: HumanDuration::from_secs(30),
        }
    }
}

/// The listeners, TLS and limits of one server. Each product sets its own default ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// The public HTTPS listener.
    pub public: ListenerSettings,
    /// The admin HTTPS listener.
    pub admin: AdminSettings,
    /// Certificate files.
    pub tls: TlsSettings,
    /// Request limits.
    pub limits: LimitSettings,
}

impl ServerSettings {
    /// Defaults for a product: its public port on all interfaces, its admin port on loopback.
    pub fn with_ports(public_port: u16, admin_port: u16) -> Self {
        Self {
            public: ListenerSettings {
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: public_port,
                request_client_cert: false,
            },
            admin: AdminSettings {
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: admin_port,
                require_client_cert: None,
            },
            tls: TlsSettings::default(),
            limits: LimitSettings::default(),
        }
    }

    /// Load-time checks of values that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let l = &self.limits;
        v.check(
            "server.limits.max_body_bytes",
            (1024..=64 * 1024 * 1024).contains(&l.max_body_bytes),
            "must be between 1024 and 67108864 bytes",
        );
        for (key, d) in [
            ("server.limits.request_timeout", l.request_timeout),
            ("server.limits.handshake_timeout", l.handshake_timeout),
            ("server.limits.drain_timeout", l.drain_timeout),
        ] {
            v.check(
                key,
                d.get() >= std::time::Duration::from_millis(100) && d.get().as_secs() <= 3600,
                "must be between 100ms and 1h",
            );
        }
        if self.public.port != 0 && self.public.port == self.admin.port {
            v.problem("server.admin.port", "must differ from server.public.port");
        }
        let t = &self.tls;
        if t.cert_file.is_some() != t.key_file.is_some() {
            v.problem(
                "server.tls",
                "cert_file and key_file must be given together",
            );
        }
        for (key, path) in [
            ("server.tls.cert_file", &t.cert_file),
            ("server.tls.key_file", &t.key_file),
            ("server.tls.client_ca_file", &t.client_ca_file),
            ("server.tls.ca_file", &t.ca_file),
        ] {
            if let Some(path) = path {
                v.check(key, !path.as_os_str().is_empty(), "must not be empty");
            }
        }
    }

    /// Start-up checks: files named by the settings exist and are readable.
    pub fn validate_files(&self, v: &mut Validator) {
        let t = &self.tls;
        for (key, path) in [
            ("server.tls.cert_file", &t.cert_file),
            ("server.tls.key_file", &t.key_file),
            ("server.tls.client_ca_file", &t.client_ca_file),
            ("server.tls.ca_file", &t.ca_file),
        ] {
            if let Some(path) = path
                && let Err(e) = std::fs::File::open(path)
            {
                v.problem(key, &format!("cannot read {}: {e}", path.display()));
            }
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default: machines read logs).
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// A `tracing` filter such as `info` or `info,cryptoutil_kms=debug`.
    pub level: String,
    /// `json` (default) or `text`.
    pub format: LogFormat,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Json,
        }
    }
}

impl LoggingSettings {
    /// Load-time checks.
    pub fn validate(&self, v: &mut Validator) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            v.problem(
                "logging.level",
                &format!("invalid filter {:?}: {e}", self.level),
            );
        }
    }
}

/// A per-client-IP token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second per client IP (IPv6: per /64).
    pub per_second: u32,
    /// Requests a client may send at once before the rate applies.
    pub burst: u32,
}

impl RateLimitSettings {
    /// The default of the service surface: 1000/s, burst 1000.
    pub const SERVICE: Self = Self {
        per_second: 1000,
        burst: 1000,
    };
    /// The default of the browser surface: 100/s, burst 100.
    pub const BROWSER: Self = Self {
        per_second: 100,
        burst: 100,
    };

    /// Load-time checks; `key` is where these settings sit, e.g. `api.browser.rate_limit`.
    pub fn validate(&self, key: &str, v: &mut Validator) {
        for (name, value) in [("per_second", self.per_second), ("burst", self.burst)] {
            v.check(
                &format!("{key}.{name}"),
                (1..=1_000_000).contains(&value),
                "must be between 1 and 1000000",
            );
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self::SERVICE
    }
}

/// The service API surface (`/service/api/v1`): no cookies, no CSRF, no CORS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SurfaceSettings {
    /// Per-client-IP rate limit (default 1000/s, burst 1000).
    pub rate_limit: RateLimitSettings,
    /// Client addresses or CIDR ranges allowed to call this surface; empty allows every address.
    #[schemars(with = "Vec<String>")]
    pub allowed_ips: Vec<ipnet::IpNet>,
}

impl Default for SurfaceSettings {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitSettings::SERVICE,
            allowed_ips: Vec::new(),
        }
    }
}

impl SurfaceSettings {
    /// Load-time checks; `key` is where these settings sit, e.g. `api.service`.
    pub fn validate(&self, key: &str, v: &mut Validator) {
        self.rate_limit.validate(&format!("{key}.rate_limit"), v);
    }
}

/// The browser API surface (`/browser/api/v1`): CORS for listed origins, double-submit CSRF,
/// strict security headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserSettings {
    /// Per-client-IP rate limit (default 100/s, burst 100).
    pub rate_limit: RateLimitSettings,
    /// Client addresses or CIDR ranges allowed to call this surface; empty allows every address.
    #[schemars(with = "Vec<String>")]
    pub allowed_ips: Vec<ipnet::IpNet>,
    /// Exact `https://` origins (scheme, host, port; no path) that may call this surface
    /// cross-origin with credentials. Empty: same-origin pages only.
    pub cors_origins: Vec<url::Url>,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitSettings::BROWSER,
            allowed_ips: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

impl BrowserSettings {
    /// Load-time checks; `key` is where these settings sit, e.g. `api.browser`.
    pub fn validate(&self, key: &str, v: &mut Validator) {
        self.rate_limit.validate(&format!("{key}.rate_limit"), v);
        for (i, origin) in self.cors_origins.iter().enumerate() {
            v.check(
                &format!("{key}.cors_origins[{i}]"),
                is_plain_https_origin(origin),
                "must be an https origin such as https://app.example.com (no path, query, fragment or user)",
            );
        }
    }
}

/// `https://host[:port]` and nothing else (the URL parser adds the `/` path).
pub fn is_plain_https_origin(url: &url::Url) -> bool {
    url.scheme() == "https"
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
}

/// Both API surfaces of a product, for its settings file (e.g. under `api:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SurfacesSettings {
    /// `/service/api/v1`.
    pub service: SurfaceSettings,
    /// `/browser/api/v1`.
    pub browser: BrowserSettings,
}

impl SurfacesSettings {
    /// Load-time checks; `key` is where these settings sit, e.g. `api`.
    pub fn validate(&self, key: &str, v: &mut Validator) {
        self.service.validate(&format!("{key}.service"), v);
        self.browser.validate(&format!("{key}.browser"), v);
    }
}
