//! What the end-to-end tests of the binary share: spawning `cryptoutil`, servers in other
//! processes (ready file, log kept at debug level), and HTTPS clients trusting the demo CA.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary, with the developer's own configuration and environment kept out.
pub fn cryptoutil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cryptoutil"));
    cmd.env(
        "HOME",
        std::env::temp_dir().join("cryptoutil-cli-test-home"),
    );
    for (key, _) in std::env::vars() {
        if key.starts_with("CRYPTOUTIL_") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    cryptoutil().args(args).output().unwrap()
}

/// Its standard output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Its standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A unique name for data a test creates (UUIDv7, so parallel runs never collide).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

/// `kms barrier generate-shares --out DIR --count 3` (must succeed); the three share files.
pub fn generate_shares(out: &Path) -> Vec<PathBuf> {
    let done = run(&[
        "kms",
        "barrier",
        "generate-shares",
        "--out",
        out.to_str().unwrap(),
        "--count",
        "3",
    ]);
    assert!(done.status.success(), "{}", stderr(&done));
    (1..=3).map(|i| out.join(format!("share-{i}"))).collect()
}

/// `tls init-demo-ca --out DIR` (must succeed).
pub fn init_demo_ca(out: &Path) {
    let done = run(&["tls", "init-demo-ca", "--out", out.to_str().unwrap()]);
    assert!(done.status.success(), "{}", stderr(&done));
}

/// A server process started with `--ready-file`, killed on drop if still running.
pub struct ServerProcess {
    pub child: Child,
    /// The ready file: `public_url`, `admin_url`, `ca_cert`.
    pub ready: Value,
    /// Everything it logged (stderr), at debug level.
    pub log: PathBuf,
}

impl ServerProcess {
    /// A URL of the ready file (`public_url`, `admin_url`).
    pub fn url(&self, which: &str) -> &str {
        self.ready[which].as_str().unwrap()
    }

    /// The CA certificate clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        PathBuf::from(self.ready["ca_cert"].as_str().unwrap())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cryptoutil ARGS` on free ports and waits for its ready file.
pub fn start_server(args: &[&str], dir: &Path) -> ServerProcess {
    start_server_with_env(args, &[], dir)
}

/// [`start_server`] with environment variables (e.g. `CRYPTOUTIL_KMS__…` settings).
pub fn start_server_with_env(args: &[&str], env: &[(String, String)], dir: &Path) -> ServerProcess {
    let id = uuid::Uuid::now_v7();
    let ready_file = dir.join(format!("ready-{id}.json"));
    let log = dir.join(format!("server-{id}.log"));
    let mut child = cryptoutil()
        .args(args)
        .args(["--public-port", "0", "--admin-port", "0", "--ready-file"])
        .arg(&ready_file)
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file) {
            let ready = serde_json::from_str(&text).unwrap();
            return ServerProcess { child, ready, log };
        }
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("server exited early with {status}: {log}");
        }
        assert!(Instant::now() < deadline, "server not ready within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A blocking HTTPS client trusting `ca`, presenting `identity` (cert, key) when given.
pub fn https_client(ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> reqwest::blocking::Client {
    let identity = identity.map(|(c, k)| cryptoutil_tls::ClientIdentity::load(&c, &k).unwrap());
    let config = cryptoutil_tls::client_config(
        cryptoutil_tls::TrustConfig::from_ca_files(&[ca]).unwrap(),
        identity,
    )
    .unwrap();
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

/// Waits (up to a minute) for the process to exit.
pub fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
