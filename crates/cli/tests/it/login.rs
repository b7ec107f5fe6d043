//! `cryptoutil identity login | token | logout` and `kms inventory --login`, the real binary
//! against a small RFC 8628 authorization server written here (axum over TLS 1.3 with its own
//! demo CA) that answers discovery, device authorization, the token endpoint (as scripted),
//! revocation and the KMS's inventory route, and records what it was sent.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::common::{cryptoutil, stderr, stdout};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_CODE: &str = "dc-secret-device-code";
const USER_CODE: &str = "BCDF-GHJK";

type Form = Vec<(String, String)>;

/// What the server answers and what it saw.
#[derive(Default)]
struct Seen {
    issuer: String,
    /// Overrides the metadata's `issuer` (a server naming another issuer).
    metadata_issuer: Option<String>,
    /// The answers to the device-code token requests, in order ("ok" issues tokens).
    script: VecDeque<&'static str>,
    /// `expires_in` of the tokens of the device grant and of refreshes.
    device_expires_in: u64,
    refresh_expires_in: u64,
    /// Revocation answers 503.
    revocation_down: bool,
    device_requests: Vec<Form>,
    /// When each device-code token request came.
    polls: Vec<Instant>,
    device_authorized_at: Option<Instant>,
    refreshes: Vec<Form>,
    revocations: Vec<Form>,
    inventory_auth: Vec<String>,
    issued: u32,
    refresh_token: Option<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn value(form: &Form, name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn parse_form(body: &[u8]) -> Form {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": code, "error_description": format!("test server: {code}")})),
    )
        .into_response()
}

fn issue(seen: &mut Seen, expires_in: u64) -> Response {
    seen.issued += 1;
    let n = seen.issued;
    seen.refresh_token = Some(format!("rt-{n}"));
    axum::Json(json!({
        "access_token": format!("at-{n}"),
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": format!("rt-{n}"),
        "scope": "openid offline_access kms:admin",
    }))
    .into_response()
}

async fn metadata(State(seen): State<Shared>) -> Response {
    let seen = seen.lock().unwrap();
    let base = &seen.issuer;
    axum::Json(json!({
        "issuer": seen.metadata_issuer.clone().unwrap_or_else(|| base.clone()),
        "token_endpoint": format!("{base}/oauth2/v1/token"),
        "device_authorization_endpoint": format!("{base}/oauth2/v1/device_authorization"),
        "revocation_endpoint": format!("{base}/oauth2/v1/revoke"),
        "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
    }))
    .into_response()
}

async fn device_authorization(State(seen): State<Shared>, body: Bytes) -> Response {
    let mut seen = seen.lock().unwrap();
    let form = parse_form(&body);
    if value(&form, "client_id").as_deref() != Some("demo-cli") {
        return oauth_error("invalid_client");
    }
    seen.device_requests.push(form);
    seen.device_authorized_at = Some(Instant::now());
    let uri = format!("{}/oidc/v1/device", seen.issuer);
    axum::Json(json!({
        "device_code": DEVICE_CODE,
        "user_code": USER_CODE,
        "verification_uri": uri,
        "verification_uri_complete": format!("{uri}?user_code={USER_CODE}"),
        "expires_in": 600,
        "interval": 1,
    }))
    .into_response()
}

async fn token(State(seen): State<Shared>, body: Bytes) -> Response {
    let mut seen = seen.lock().unwrap();
    let form = parse_form(&body);
    if value(&form, "client_id").as_deref() != Some("demo-cli") {
        return oauth_error("invalid_client");
    }
    match value(&form, "grant_type").as_deref() {
        Some(DEVICE_GRANT) => {
            if value(&form, "device_code").as_deref() != Some(DEVICE_CODE) {
                return oauth_error("invalid_grant");
            }
            seen.polls.push(Instant::now());
            match seen.script.pop_front().unwrap_or("authorization_pending") {
                "ok" => {
                    let expires_in = seen.device_expires_in;
                    issue(&mut seen, expires_in)
                }
                code => oauth_error(code),
            }
        }
        Some("refresh_token") => {
            let given = value(&form, "refresh_token");
            seen.refreshes.push(form);
            if given.is_none() || given != seen.refresh_token {
                return oauth_error("invalid_grant");
            }
            let expires_in = seen.refresh_expires_in;
            issue(&mut seen, expires_in)
        }
        _ => oauth_error("unsupported_grant_type"),
    }
}

async fn revoke(State(seen): State<Shared>, body: Bytes) -> Response {
    let mut seen = seen.lock().unwrap();
    seen.revocations.push(parse_form(&body));
    if seen.revocation_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    StatusCode::OK.into_response()
}

async fn inventory(State(seen): State<Shared>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().inventory_auth.push(auth);
    axum::Json(json!({
        "keys": [],
        "totals": {"keys": 0, "deleted": 0, "quantum_vulnerable": 0, "quantum_resistant": 0,
                   "quantum_unknown": 0, "by_algorithm": []},
    }))
    .into_response()
}

/// The authorization server (and KMS inventory route) on a free port.
struct AuthServer {
    url: String,
    ca: PathBuf,
    seen: Shared,
    runtime: tokio::runtime::Runtime,
    server: Option<cryptoutil_server::RunningServer>,
    _tls: cryptoutil_server::TlsRuntime,
}

impl AuthServer {
    fn start(script: &[&'static str]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Shared::default();
        {
            let mut s = seen.lock().unwrap();
            s.script = script.iter().copied().collect();
            s.device_expires_in = 3600;
            s.refresh_expires_in = 3600;
        }
        let pki = cryptoutil_server::DevPki::generate().unwrap();
        let ca = pki.root();
        let mut settings = cryptoutil_server::ServerSettings::with_ports(0, 0);
        settings.tls.watch = Some(false);
        pki.apply(&mut settings, "rs");
        let tls = cryptoutil_server::tls_setup::build(&settings, true, Some(pki)).unwrap();
        let router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route(
                "/oauth2/v1/device_authorization",
                post(device_authorization),
            )
            .route("/oauth2/v1/token", post(token))
            .route("/oauth2/v1/revoke", post(revoke))
            .route("/service/api/v1/crypto-inventory", get(inventory))
            .with_state(seen.clone());
        let spec = cryptoutil_server::ServerSpec {
            name: "test-authorization-server",
            settings,
            public: router,
            admin_extra: Router::new(),
            checks: Vec::new(),
            tls: tls.setup.clone(),
        };
        let server = runtime.block_on(cryptoutil_server::start(spec)).unwrap();
        let url = format!("https://127.0.0.1:{}", server.public_addr.port());
        seen.lock().unwrap().issuer = url.clone();
        Self {
            url,
            ca,
            seen,
            runtime,
            server: Some(server),
            _tls: tls,
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    fn ca(&self) -> &str {
        self.ca.to_str().unwrap()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            self.runtime.block_on(server.wait());
        }
    }
}

/// Runs the binary with its token store in `config`.
fn run_in(config: &Path, args: &[&str]) -> Output {
    cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", config)
        .args(args)
        .output()
        .unwrap()
}

fn login(server: &AuthServer, config: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "identity",
        "login",
        "--issuer",
        &server.url,
        "--client-id",
        "demo-cli",
        "--ca-cert",
        server.ca(),
    ];
    args.extend_from_slice(extra);
    run_in(config, &args)
}

fn stored(config: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(config.join("tokens.json")).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_polls_as_told_stores_privately_refreshes_feeds_the_kms_and_logs_out() {
    let server = AuthServer::start(&["authorization_pending", "slow_down", "ok"]);
    // The first access token expires within the refresh margin: `identity token` refreshes it.
    server.seen().device_expires_in = 10;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config").join("cryptoutil");

    let out = login(
        &server,
        &config,
        &[
            "--scope",
            "openid offline_access",
            "--scope",
            "kms:admin",
            "--resource",
            "https://kms.example",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let uri = format!("{}/oidc/v1/device", server.url);
    assert!(text.contains(&format!("\n    {uri}\n")), "{text}");
    assert!(text.contains(&format!("\n    {USER_CODE}\n")), "{text}");
    assert!(
        text.contains(&format!("{uri}?user_code={USER_CODE}")),
        "{text}"
    );
    assert!(text.contains("Signed in to"), "{text}");
    // Not a terminal: no QR code. Never a token or the device code.
    assert!(!text.contains('█'), "{text}");
    for secret in [DEVICE_CODE, "at-1", "rt-1"] {
        assert!(
            !text.contains(secret) && !stderr(&out).contains(secret),
            "{secret}"
        );
    }

    {
        let seen = server.seen();
        let request = &seen.device_requests[0];
        assert_eq!(
            value(request, "scope").as_deref(),
            Some("openid offline_access kms:admin")
        );
        assert_eq!(
            value(request, "resource").as_deref(),
            Some("https://kms.example")
        );
        // interval 1: pending after 1 s, slow_down after 1 s more, then 1 + 5 = 6 s.
        let start = seen.device_authorized_at.unwrap();
        let polls = &seen.polls;
        assert_eq!(polls.len(), 3);
        let gaps = [polls[0] - start, polls[1] - polls[0], polls[2] - polls[1]];
        assert!(gaps[0] >= Duration::from_millis(950), "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(950), "{gaps:?}");
        assert!(gaps[1] < Duration::from_secs(4), "{gaps:?}");
        assert!(gaps[2] >= Duration::from_millis(5950), "{gaps:?}");
    }

    // The store: 0600 in a 0700 directory, the tokens and what refreshing and revoking need.
    #[cfg(unix)]
    {
        assert_eq!(mode(&config.join("tokens.json")), 0o600);
        assert_eq!(mode(&config), 0o700);
    }
    let store = stored(&config);
    let entry = &store["logins"][0];
    assert_eq!(entry["issuer"], server.url.as_str());
    assert_eq!(entry["client_id"], "demo-cli");
    assert_eq!(entry["access_token"], "at-1");
    assert_eq!(entry["refresh_token"], "rt-1");
    assert_eq!(entry["scope"], "openid offline_access kms:admin");
    assert_eq!(
        entry["token_endpoint"],
        format!("{}/oauth2/v1/token", server.url)
    );
    assert_eq!(
        entry["revocation_endpoint"],
        format!("{}/oauth2/v1/revoke", server.url)
    );
    assert_eq!(
        entry["ca_certs"][0].as_str().map(PathBuf::from),
        Some(std::fs::canonicalize(&server.ca).unwrap())
    );
    let expires_at = entry["expires_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now..=now + 11).contains(&expires_at),
        "{expires_at} vs {now}"
    );

    // `identity token`: the access token expires within 30 s, so it is refreshed and stored.
    let out = run_in(&config, &["identity", "token"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "at-2\n");
    {
        let seen = server.seen();
        assert_eq!(seen.refreshes.len(), 1);
        assert_eq!(
            value(&seen.refreshes[0], "refresh_token").as_deref(),
            Some("rt-1")
        );
        assert_eq!(
            value(&seen.refreshes[0], "client_id").as_deref(),
            Some("demo-cli")
        );
    }
    let entry = &stored(&config)["logins"][0];
    assert_eq!(entry["access_token"], "at-2");
    assert_eq!(entry["refresh_token"], "rt-2");
    #[cfg(unix)]
    assert_eq!(mode(&config.join("tokens.json")), 0o600);
    // Valid for an hour now: printed as it is, no refresh.
    let out = run_in(&config, &["identity", "token", "--issuer", &server.url]);
    assert_eq!(stdout(&out), "at-2\n", "{}", stderr(&out));
    assert_eq!(server.seen().refreshes.len(), 1);

    // `kms inventory --login` sends the stored token.
    let out = run_in(
        &config,
        &[
            "kms",
            "inventory",
            "--url",
            &server.url,
            "--ca-cert",
            server.ca(),
            "--login",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_in(
        &config,
        &[
            "kms",
            "inventory",
            "--url",
            &server.url,
            "--ca-cert",
            server.ca(),
            "--login",
            &server.url,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.seen().inventory_auth, ["Bearer at-2", "Bearer at-2"]);
    let out = run_in(
        &config,
        &[
            "kms",
            "inventory",
            "--url",
            &server.url,
            "--ca-cert",
            server.ca(),
            "--login",
            "https://other.example",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not signed in to https://other.example"),
        "{}",
        stderr(&out)
    );

    // `identity logout`: both tokens revoked as a public client, then deleted.
    let out = run_in(&config, &["identity", "logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("revoked and deleted"),
        "{}",
        stdout(&out)
    );
    {
        let seen = server.seen();
        let hints: Vec<(Option<String>, Option<String>, Option<String>)> = seen
            .revocations
            .iter()
            .map(|f| {
                (
                    value(f, "token"),
                    value(f, "token_type_hint"),
                    value(f, "client_id"),
                )
            })
            .collect();
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            hints,
            [
                (some("rt-2"), some("refresh_token"), some("demo-cli")),
                (some("at-2"), some("access_token"), some("demo-cli")),
            ]
        );
    }
    assert!(!config.join("tokens.json").exists());
    let out = run_in(&config, &["identity", "token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not signed in"), "{}", stderr(&out));
}

#[test]
fn denied_expired_and_cancelled_sign_ins_exit_1_and_store_nothing() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("cryptoutil");

    let server = AuthServer::start(&["authorization_pending", "access_denied"]);
    let out = login(&server, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    assert!(!config.join("tokens.json").exists());
    // No scope flag: no scope parameter (the client's default).
    assert_eq!(value(&server.seen().device_requests[0], "scope"), None);

    server.seen().script = VecDeque::from(["expired_token"]);
    let out = login(&server, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(!config.join("tokens.json").exists());

    // Ctrl-C while waiting: stops at once, says so, stores nothing.
    server.seen().script.clear();
    let polls = server.seen().polls.len();
    let child = cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .args([
            "identity",
            "login",
            "--issuer",
            &server.url,
            "--client-id",
            "demo-cli",
        ])
        .args(["--ca-cert", server.ca()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.seen().polls.len() == polls {
        assert!(Instant::now() < deadline, "no poll within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    assert!(!config.join("tokens.json").exists());
}

#[test]
fn logout_deletes_the_tokens_even_when_revocation_fails_and_says_so() {
    let server = AuthServer::start(&["ok"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("cryptoutil");
    let out = login(&server, &config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    server.seen().revocation_down = true;
    let out = run_in(&config, &["identity", "logout", "--issuer", &server.url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("deleted") && err.contains("not revoked"),
        "{err}"
    );
    assert!(err.contains("503"), "{err}");
    assert!(!err.contains("at-1") && !err.contains("rt-1"), "{err}");
    assert_eq!(server.seen().revocations.len(), 2);
    assert!(!config.join("tokens.json").exists());
}

#[test]
fn a_server_naming_another_issuer_or_a_bad_command_line_is_refused() {
    let server = AuthServer::start(&["ok"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("cryptoutil");
    server.seen().metadata_issuer = Some("https://evil.example".to_owned());
    let out = login(&server, &config, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("evil.example"), "{}", stderr(&out));
    assert!(server.seen().device_requests.is_empty());
    assert!(!config.join("tokens.json").exists());

    // Usage errors: exit 2 before any request.
    for args in [
        vec![
            "identity",
            "login",
            "--issuer",
            &server.url,
            "--client-id",
            "demo-cli",
        ],
        vec![
            "identity",
            "login",
            "--issuer",
            "http://id.example",
            "--client-id",
            "demo-cli",
            "--system-roots",
        ],
        vec![
            "identity",
            "login",
            "--issuer",
            &server.url,
            "--client-id",
            "demo-cli",
            "--system-roots",
            "--scope",
            "a\"b",
        ],
        vec![
            "identity",
            "login",
            "--issuer",
            &server.url,
            "--client-id",
            "demo-cli",
            "--system-roots",
            "--resource",
            "https://kms#x",
        ],
    ] {
        let out = run_in(&config, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert!(server.seen().device_requests.is_empty());
}

#[test]
fn on_a_terminal_login_shows_a_qr_code_of_the_complete_uri() {
    // `script` (util-linux) runs the command on a pseudo-terminal.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` command to run the binary on a terminal");
        return;
    }
    let server = AuthServer::start(&["ok"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("cryptoutil");
    let command = format!(
        "'{}' identity login --issuer '{}' --client-id demo-cli --ca-cert '{}'",
        env!("CARGO_BIN_EXE_cryptoutil"),
        server.url,
        server.ca()
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .env("HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let qr_lines = text.lines().filter(|l| l.contains('█')).count();
    assert!(qr_lines >= 15, "{text}");
    assert!(text.contains("Signed in to"), "{text}");
    assert!(config.join("tokens.json").exists());
}

#[test]
fn a_refresh_token_the_server_no_longer_takes_asks_to_sign_in_again() {
    let server = AuthServer::start(&["ok"]);
    server.seen().device_expires_in = 5;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("cryptoutil");
    let out = login(&server, &config, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The grant ended at the server (e.g. revoked elsewhere): the refresh is invalid_grant.
    server.seen().refresh_token = None;
    let out = run_in(&config, &["identity", "token"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("invalid_grant") && err.contains("identity login"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    // The stored tokens are unchanged (logout can still revoke them).
    assert_eq!(stored(&config)["logins"][0]["access_token"], "at-1");
}
