//! The release `cryptoutil` binary started as a child process (`--dev --demo`, free ports,
//! `--ready-file`, SPEC §8), and HTTPS clients that trust its demo CA. Shared by
//! `cargo xtask oidc`, `cargo xtask load` and `cargo xtask browser`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, run};

/// How long a server may take to write its ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful shutdown may take before the process is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a server writes to its `--ready-file`.
#[derive(Debug, Clone)]
pub struct Ready {
    /// `https://127.0.0.1:PORT` of the public listener (the issuer, for Identity).
    pub public_url: String,
    /// `https://127.0.0.1:PORT` of the admin listener.
    pub admin_url: String,
    /// The CA certificate (PEM) that clients must trust.
    pub ca_cert: PathBuf,
}

impl Ready {
    /// Parses the ready file's JSON `{"public_url","admin_url","ca_cert"}`; `ca_cert` is the CA
    /// to trust when the server reports none (configured certificates rather than `--dev`'s
    /// generated PKI: `"ca_cert": null`).
    pub fn parse_with_ca(text: &str, ca_cert: Option<&Path>) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("ready file is not JSON: {e}"))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("ready file lacks the string \"{name}\": {text}"))
        };
        let ca_cert = match (value.get("ca_cert"), ca_cert) {
            (Some(serde_json::Value::Null) | None, Some(given)) => given.to_path_buf(),
            _ => PathBuf::from(field("ca_cert")?),
        };
        Ok(Self {
            public_url: field("public_url")?.trim_end_matches('/').to_owned(),
            admin_url: field("admin_url")?.trim_end_matches('/').to_owned(),
            ca_cert,
        })
    }
}

/// Builds `target/release/cryptoutil` and returns its path.
pub fn build_release() -> Result<PathBuf, String> {
    run(
        "build the release binary (cryptoutil)",
        cargo().args(["build", "--release", "--locked", "-p", "cryptoutil"]),
    )?;
    let target = crate::target_dir()?;
    let binary = target.join("release").join("cryptoutil");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("{} was not built", binary.display()))
    }
}

/// A `cryptoutil <product> server start --dev --demo` child process; killed on drop if it
/// is still running.
pub struct ServerProcess {
    child: Child,
    /// The addresses and CA the server reported.
    pub ready: Ready,
    /// From spawning the process to its ready file (polled every few milliseconds).
    pub started_in: Duration,
    dir: PathBuf,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `binary <product> server start --dev --demo` on free ports and waits for its
    /// ready file. The server's output goes to a log file, shown when something fails.
    pub fn start(binary: &Path, product: &str) -> Result<Self, String> {
        Self::start_command(
            binary,
            product,
            &[
                product,
                "server",
                "start",
                "--dev",
                "--demo",
                "--public-port",
                "0",
                "--admin-port",
                "0",
            ],
        )
    }

    /// [`Self::start`] with extra environment variables (configuration overrides such as
    /// `CRYPTOUTIL_KMS__AUTH__REALMS_FILE`).
    pub fn start_with_env(
        binary: &Path,
        product: &str,
        env: &[(&str, PathBuf)],
    ) -> Result<Self, String> {
        Self::spawn(
            binary,
            product,
            &[
                product,
                "server",
                "start",
                "--dev",
                "--demo",
                "--public-port",
                "0",
                "--admin-port",
                "0",
            ],
            None,
            env,
        )
    }

    /// [`Self::start`] with the load-test configuration (`xtask/bench/<product>.yml`: rate
    /// limits raised for one loopback client, the KMS's echo route on).
    pub fn start_for_load(binary: &Path, product: &str) -> Result<Self, String> {
        Self::load_server(None, binary, product)
    }

    /// [`Self::start_for_load`] under `valgrind <valgrind_args>` (`cargo xtask profile`).
    pub fn start_for_load_under(
        binary: &Path,
        product: &str,
        valgrind_args: &[&str],
    ) -> Result<Self, String> {
        Self::load_server(Some(("valgrind", valgrind_args)), binary, product)
    }

    fn load_server(
        wrapper: Option<(&str, &[&str])>,
        binary: &Path,
        product: &str,
    ) -> Result<Self, String> {
        let config = bench_config(product);
        let config = config.to_string_lossy();
        Self::spawn_with(
            wrapper,
            binary,
            product,
            &[
                product,
                "server",
                "start",
                "--dev",
                "--demo",
                "--config",
                &config,
                "--public-port",
                "0",
                "--admin-port",
                "0",
            ],
            None,
            &[],
        )
    }

    /// Starts `binary <args> --ready-file …` (any `… start` command) and waits for its ready
    /// file; `label` names it in messages and its temporary directory.
    pub fn start_command(binary: &Path, label: &str, args: &[&str]) -> Result<Self, String> {
        Self::start_command_trusting(binary, label, args, None)
    }

    /// [`Self::start_command`] for a server with configured certificates, whose ready file names
    /// no CA: clients trust `ca_cert`.
    pub fn start_command_trusting(
        binary: &Path,
        label: &str,
        args: &[&str],
        ca_cert: Option<&Path>,
    ) -> Result<Self, String> {
        Self::spawn(binary, label, args, ca_cert, &[])
    }

    /// [`Self::start_command`] with extra environment variables (configuration overrides such
    /// as `CRYPTOUTIL_RS__RESOURCE__IDENTIFIER`).
    pub fn start_command_with_env(
        binary: &Path,
        label: &str,
        args: &[&str],
        env: &[(&str, PathBuf)],
    ) -> Result<Self, String> {
        Self::spawn(binary, label, args, None, env)
    }

    fn spawn(
        binary: &Path,
        label: &str,
        args: &[&str],
        ca_cert: Option<&Path>,
        env: &[(&str, PathBuf)],
    ) -> Result<Self, String> {
        Self::spawn_with(None, binary, label, args, ca_cert, env)
    }

    /// [`Self::spawn`], optionally as `wrapper_program <wrapper_args> binary <args>`.
    fn spawn_with(
        wrapper: Option<(&str, &[&str])>,
        binary: &Path,
        label: &str,
        args: &[&str],
        ca_cert: Option<&Path>,
        env: &[(&str, PathBuf)],
    ) -> Result<Self, String> {
        let product = label;
        let dir = unique_temp_dir(&format!("cryptoutil-{label}"))?;
        let ready_file = dir.join("ready.json");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        println!(
            "==> starting `cryptoutil {}`, log {}",
            args.join(" "),
            log.display()
        );
        let mut command = match wrapper {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(args)
            .arg("--ready-file")
            .arg(&ready_file)
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                let started_in = started.elapsed();
                match Ready::parse_with_ca(&text, ca_cert) {
                    Ok(ready) => {
                        println!(
                            "==> {product} ready in {started_in:.1?}: public {}, admin {}",
                            ready.public_url, ready.admin_url
                        );
                        return Ok(Self {
                            child,
                            ready,
                            started_in,
                            dir,
                            log,
                        });
                    }
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(e);
                    }
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the {product} server exited before it was ready ({status}); its log:\n{}",
                    tail(&log)
                ));
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the {product} server was not ready within {READY_TIMEOUT:?}; its log:\n{}",
                    tail(&log)
                ));
            }
            // Short: start-up time is measured with this loop (`cargo xtask bench-load`).
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The child's process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Asks for a graceful shutdown (`POST /admin/v1/shutdown`), waits for the process to exit,
    /// and kills it if it does not. Keeps the log directory only when something went wrong.
    pub async fn shutdown(mut self) -> Result<(), String> {
        let asked = match https_client(&self.ready.ca_cert, Protocol::Auto) {
            Ok(client) => client
                .post(format!("{}/admin/v1/shutdown", self.ready.admin_url))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| format!("shutdown request failed: {e}"))
                .and_then(|r| {
                    if r.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("shutdown request answered {}", r.status()))
                    }
                }),
            Err(e) => Err(e),
        };
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let exited = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => break None,
            }
        };
        match (asked, exited) {
            (Ok(()), Some(status)) if status.success() => {
                let _ = std::fs::remove_dir_all(&self.dir);
                println!("==> server stopped");
                Ok(())
            }
            (asked, exited) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(format!(
                    "the server did not shut down cleanly (request: {}, exit: {}); killed; log kept in {}",
                    asked.err().unwrap_or_else(|| "ok".to_owned()),
                    exited.map_or_else(
                        || format!("none within {SHUTDOWN_TIMEOUT:?}"),
                        |s| s.to_string()
                    ),
                    self.log.display()
                ))
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The load-test configuration of a product (`xtask/bench/<product>.yml`).
pub fn bench_config(product: &str) -> PathBuf {
    crate::root()
        .join("xtask")
        .join("bench")
        .join(format!("{product}.yml"))
}

/// The last 40 lines (at most 16 KiB) of a log file.
fn tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A new directory under the system's temporary directory.
pub fn unique_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Which HTTP version a client speaks (offered by ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only.
    Http2,
    /// Whatever the server prefers (h2, then http/1.1).
    Auto,
}

impl Protocol {
    /// `HTTP/1.1` or `HTTP/2` (or `auto`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
            Self::Auto => "auto",
        }
    }
}

/// A TLS client configuration trusting exactly `ca_cert` (TLS 1.3, full validation, the crypto
/// policy of `cryptoutil_tls::provider`), offering `protocol` by ALPN. The policy is also
/// installed as the process default for anything else.
pub fn client_tls(ca_cert: &Path, protocol: Protocol) -> Result<rustls::ClientConfig, String> {
    cryptoutil_tls::provider::install_default()?;
    let mut tls = cryptoutil_tls::client_config_from_ca_file(ca_cert)
        .map_err(|e| format!("cannot trust {}: {e}", ca_cert.display()))?;
    tls.alpn_protocols = match protocol {
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Ok(tls)
}

/// An HTTPS client trusting exactly `ca_cert` (TLS 1.3, full validation), with one idle
/// connection kept per host.
pub fn https_client(ca_cert: &Path, protocol: Protocol) -> Result<reqwest::Client, String> {
    // reqwest is built with `rustls-no-provider`: the preconfigured TLS carries its own provider.
    let tls = client_tls(ca_cert, protocol)?;
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30));
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
        Protocol::Auto => builder,
    };
    builder
        .build()
        .map_err(|e| format!("cannot build an HTTPS client: {e}"))
}

/// What a run against Identity and the resource server ended with, the resource server (when it
/// started) handed back: stops it, then Identity, whatever the run's outcome. The run's outcome
/// and the first shutdown failure, kept apart so that the caller reports the outcome first.
pub fn stop_identity_and_rs<O>(
    identity: ServerProcess,
    run: Result<(Result<O, String>, ServerProcess), String>,
) -> (Result<O, String>, Result<(), String>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        // The servers are killed when dropped.
        Err(e) => {
            return (
                run.and_then(|(outcome, _)| outcome),
                Err(format!("cannot start a runtime: {e}")),
            );
        }
    };
    let (outcome, stopped_rs) = match run {
        Ok((outcome, rs)) => (outcome, runtime.block_on(rs.shutdown())),
        Err(e) => (Err(e), Ok(())),
    };
    let stopped_identity = runtime.block_on(identity.shutdown());
    (outcome, stopped_rs.and(stopped_identity))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ready_file_is_parsed_and_urls_lose_a_trailing_slash() {
        let ready = Ready::parse_with_ca(
            r#"{"public_url":"https://127.0.0.1:4431/","admin_url":"https://127.0.0.1:4432","ca_cert":"/tmp/x/ca/root.pem"}"#,
            None,
        )
        .unwrap();
        assert_eq!(ready.public_url, "https://127.0.0.1:4431");
        assert_eq!(ready.admin_url, "https://127.0.0.1:4432");
        assert_eq!(ready.ca_cert, PathBuf::from("/tmp/x/ca/root.pem"));
        let no_ca = r#"{"public_url":"x","admin_url":"y","ca_cert":null}"#;
        assert!(Ready::parse_with_ca(no_ca, None).is_err());
        let given = Ready::parse_with_ca(no_ca, Some(Path::new("/pki/ca/root.pem"))).unwrap();
        assert_eq!(given.ca_cert, PathBuf::from("/pki/ca/root.pem"));
        let reported = Ready::parse_with_ca(
            r#"{"public_url":"x","admin_url":"y","ca_cert":"/dev/ca.pem"}"#,
            Some(Path::new("/pki/ca/root.pem")),
        )
        .unwrap();
        assert_eq!(reported.ca_cert, PathBuf::from("/dev/ca.pem"));
        for product in ["kms", "identity"] {
            assert!(bench_config(product).is_file(), "{product}");
        }
        assert!(Ready::parse_with_ca("not json", None).is_err());
    }
}
