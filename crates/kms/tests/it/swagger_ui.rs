//! Swagger UI "Try it out" against the real KMS, in headless Chromium, as the demo user.
//!
//! A KMS started like `cryptoutil kms server start --dev --demo` serves `/ui/swagger/` over
//! HTTPS with a certificate from a fresh demo CA, which the browser trusts through its own NSS
//! database (never by skipping certificate checks). The test drives the real page over the
//! Chrome DevTools Protocol, acting on Swagger UI's DOM as a person does: on the browser surface,
//! "Try it out" of create without authorizing (401), after Authorize with a wrong password (401)
//! and with `demo-user` / `demo-user-password` (201), then encrypt with the new key (200, compact
//! JWE). The service surface then confirms, as demo-user, that the key exists once and that the
//! JWE decrypts to the plaintext.
//!
//! On the browser surface the KMS answers script requests' 401s with an `X-Basic` challenge, so the
//! browser does not open its own login dialog (which it does for `Basic`, and then replays what was
//! typed on later requests); the test counts such dialogs (cancelling any, as a person would) and
//! requires none.
//!
//! Needs `/usr/bin/chromium` and `certutil` (`cargo xtask setup-browser`; `cargo xtask test`
//! installs them first). Without them the test prints a loud SKIPPED line and passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cryptoutil_kms::config::KmsSettings;
use cryptoutil_kms::server::Seeding;
use cryptoutil_server::DevPki;
use cryptoutil_tls::{TrustConfig, client_config};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// demo-user's password from the shipped seed file (`kms:read`, `kms:write` in demo-tenant).
const DEMO_PASSWORD: &str = "demo-user-password";
/// Hang guard for the whole browser session (not an assertion about speed).
const BROWSER_GUARD: Duration = Duration::from_secs(180);

fn tool_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Creates `$HOME/.pki/nssdb` trusting `ca` as the one TLS anchor.
fn trust_ca(home: &Path, ca: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db_arg = format!("sql:{}", db.display());
    let status = Command::new("certutil")
        .args(["-N", "--empty-password", "-d", &db_arg])
        .status()
        .unwrap();
    assert!(status.success(), "certutil -N failed");
    let status = Command::new("certutil")
        .args(["-A", "-n", "demo-ca", "-t", "C,,", "-d", &db_arg, "-i"])
        .arg(ca)
        .status()
        .unwrap();
    assert!(status.success(), "certutil -A failed");
}

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client (RFC 6455, client side, text frames) for the Chrome DevTools
// Protocol on 127.0.0.1. Enough for CDP; not a general-purpose implementation.

struct WebSocket {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl WebSocket {
    fn connect(port: u16, path: &str, deadline: Instant) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now())))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        // The key is RFC 6455's sample nonce: DevTools on loopback needs no fresh one.
        write!(
            writer,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(
            status.starts_with("HTTP/1.1 101"),
            "DevTools refused the WebSocket upgrade: {status}"
        );
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Self { reader, writer }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mask = *uuid::Uuid::new_v4().as_bytes();
        let mask = [mask[0], mask[1], mask[2], mask[3]];
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | u8::try_from(n).unwrap()),
            n if n <= usize::from(u16::MAX) => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&u64::try_from(n).unwrap().to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame).unwrap();
    }

    /// The next complete text message.
    fn receive(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head).unwrap();
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0f;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.reader.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.reader.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut mask = None;
            if head[1] & 0x80 != 0 {
                let mut m = [0u8; 4];
                self.reader.read_exact(&mut m).unwrap();
                mask = Some(m);
            }
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            self.reader.read_exact(&mut payload).unwrap();
            if let Some(m) = mask {
                payload
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b ^= m[i % 4]);
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).unwrap();
                    }
                }
                0x8 => panic!("DevTools closed the connection"),
                _ => {} // ping / pong: Chromium does not send them to clients
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium driven over the DevTools protocol.

/// Kills the browser if the test fails before closing it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Browser {
    child: ChildGuard,
    socket: WebSocket,
    session: String,
    next_id: u64,
    deadline: Instant,
    /// HTTP authentication challenges the browser met (each cancelled).
    challenges: usize,
}

impl Browser {
    fn launch(home: &Path) -> Self {
        let deadline = Instant::now() + BROWSER_GUARD;
        let profile = home.join("profile");
        let child = ChildGuard(
            Command::new(CHROMIUM)
                .env("HOME", home)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--remote-debugging-port=0",
                    "--window-size=1280,1000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let active = profile.join("DevToolsActivePort");
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active)
                && let Some((port, path)) = text.split_once('\n')
                && let Some(id) = path.trim().strip_prefix("/devtools/browser/")
                && uuid::Uuid::try_parse(id).is_ok()
            {
                break (port.parse::<u16>().unwrap(), path.trim().to_owned());
            }
            assert!(Instant::now() < deadline, "Chromium never opened DevTools");
            std::thread::sleep(Duration::from_millis(50));
        };
        let socket = WebSocket::connect(port, &path, deadline);
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            deadline,
            challenges: 0,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call(
            "Fetch.enable",
            json!({"handleAuthRequests": true, "patterns": [{"urlPattern": "*/api/v1/*"}]}),
        );
        browser
    }

    /// Sends one command (to the page session once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket.send(&command.to_string());
        loop {
            assert!(Instant::now() < self.deadline, "browser session hung");
            let message: Value = serde_json::from_str(&self.socket.receive()).unwrap();
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
            self.on_event(&message);
        }
    }

    /// Answers the events of `Fetch.enable`: paused requests continue unchanged, and an HTTP
    /// authentication challenge is cancelled, as a person dismissing the browser's login dialog.
    fn on_event(&mut self, message: &Value) {
        let session = message["sessionId"].clone();
        let reply = match message["method"].as_str() {
            Some("Fetch.requestPaused") => json!({
                "method": "Fetch.continueRequest",
                "params": {"requestId": message["params"]["requestId"]},
            }),
            Some("Fetch.authRequired") => {
                self.challenges += 1;
                json!({
                    "method": "Fetch.continueWithAuth",
                    "params": {
                        "requestId": message["params"]["requestId"],
                        "authChallengeResponse": {"response": "CancelAuth"},
                    },
                })
            }
            _ => return,
        };
        self.next_id += 1;
        let mut command = reply;
        command["id"] = json!(self.next_id);
        command["sessionId"] = session;
        self.socket.send(&command.to_string());
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its JSON value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("script failed: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy.
    fn wait_for(&mut self, expression: &str) -> Value {
        loop {
            let value = self.eval(expression);
            if !value.is_null() && value != json!(false) {
                return value;
            }
            assert!(
                Instant::now() < self.deadline,
                "the page never satisfied {expression}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn close(mut self) {
        self.session.clear();
        self.next_id += 1;
        let command = json!({"id": self.next_id, "method": "Browser.close", "params": {}});
        self.socket.send(&command.to_string());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Test-only helpers injected into the real `/ui/swagger/` page over DevTools. They act on
/// Swagger UI's DOM the way a person does: open an operation, "Try it out", type into the
/// fields, pick a file, press Execute and read the "Server response" table; and the Authorize
/// dialog for the `basic` scheme.
const HELPERS_JS: &str = r##"
(() => {
  if (window.__kms) return true;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  async function until(what, probe) {
    for (let i = 0; i < 1200; i++) {
      const found = probe();
      if (found) return found;
      await sleep(50);
    }
    throw new Error("Swagger UI never showed " + what);
  }
  function type(input, value) {
    const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(input), "value").set;
    setter.call(input, value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function operation(method, path) {
    return [...document.querySelectorAll(".opblock.opblock-" + method)].find((block) =>
      block.querySelector('.opblock-summary-path[data-path="' + path + '"]'));
  }
  async function tryOut(method, path) {
    const block = await until(method + " " + path, () => operation(method, path));
    if (!block.classList.contains("is-open")) {
      block.querySelector(".opblock-summary-control").click();
    }
    const button = await until("Try it out", () => block.querySelector(".try-out__btn"));
    if (!block.querySelector(".execute")) button.click();
    await until("Execute", () => block.querySelector(".execute"));
    return block;
  }
  async function execute(block) {
    const clear = block.querySelector(".btn-clear");
    if (clear) clear.click();
    await until("the previous response cleared", () => !block.querySelector(".live-responses-table"));
    block.querySelector(".execute").click();
    const status = await until("a server response",
      () => block.querySelector(".live-responses-table tbody .response .response-col_status"))
      .catch((error) => {
        const refused = block.querySelector(".validation-errors");
        throw new Error(error.message + (refused ? " (" + refused.textContent + ")" : ""));
      });
    // A body of a type Swagger UI does not know (application/jose) is read from a Blob first,
    // then shown "as text": wait for it.
    const body = await until("the response body",
      () => block.querySelector(".live-responses-table .response-col_description .highlight-code pre"));
    const curl = block.querySelector(".curl-command .curl");
    return {
      status: status.firstChild.textContent.trim(),
      body: body ? body.textContent : null,
      curl: curl ? curl.textContent : null,
    };
  }
  function button(root, label) {
    return [...root.querySelectorAll(".auth-btn-wrapper button")].find((b) => b.textContent.trim() === label);
  }
  window.__kms = {
    async authorize(username, password) {
      document.querySelector(".auth-wrapper .authorize").click();
      const modal = await until("the Authorize dialog", () => document.querySelector(".modal-ux"));
      const logout = button(modal, "Logout");
      if (logout) logout.click();
      type(await until("the username field", () => modal.querySelector("#auth-basic-username")), username);
      type(modal.querySelector("#auth-basic-password"), password);
      button(modal, "Authorize").click();
      await until("the Logout button", () => button(modal, "Logout"));
      button(modal, "Close").click();
      await until("the dialog closed", () => !document.querySelector(".modal-ux"));
      return true;
    },
    async create(name) {
      const block = await tryOut("post", "/browser/api/v1/elastickey");
      type(block.querySelector("textarea.body-param__text"),
        JSON.stringify({ name: name, description: "created through Swagger UI" }));
      return execute(block);
    },
    async encrypt(id, plaintext) {
      const path = "/browser/api/v1/elastickey/{id}/encrypt";
      const block = await tryOut("post", path);
      type(block.querySelector('tr[data-param-name="id"] input'), id);
      // The parameter field is debounced: wait until Swagger UI has taken the value.
      await until("the id parameter taken", () =>
        Object.values(window.ui.specSelectors.parameterValues([path, "post"]).toJS()).includes(id));
      const picker = block.querySelector('.opblock-section-request-body input[type="file"]');
      const files = new DataTransfer();
      files.items.add(new File([plaintext], "plaintext.txt", { type: "application/octet-stream" }));
      picker.files = files.files;
      picker.dispatchEvent(new Event("change", { bubbles: true }));
      return execute(block);
    },
  };
  return true;
})()
"##;

/// What the "Server response" table showed for one Execute.
#[derive(Debug)]
struct Shown {
    status: String,
    body: String,
    /// The request as Swagger UI's curl line shows it (the headers it sent).
    curl: String,
}

impl Shown {
    fn from(value: Value) -> Self {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        Self {
            status: text("status"),
            body: text("body"),
            curl: text("curl"),
        }
    }
}

/// Everything the browser session saw.
struct Session {
    anonymous: Shown,
    wrong_password: Shown,
    created: Shown,
    encrypted: Shown,
    challenges: usize,
}

fn js(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

/// One browser session against `base`: the same "Try it out" of create as anonymous, with a
/// wrong password and as the demo user, then encrypt with the new key.
fn browse(home: &Path, base: &str, key_name: &str, plaintext: &str, password: &str) -> Session {
    let mut browser = Browser::launch(home);
    browser.call(
        "Page.navigate",
        json!({"url": format!("{base}/ui/swagger/")}),
    );
    browser.wait_for("!!(window.ui && document.querySelector('.opblock-summary-path'))");
    assert_eq!(browser.eval(HELPERS_JS), json!(true));

    let anonymous = Shown::from(browser.eval(&format!("__kms.create({})", js(key_name))));
    browser.eval(&format!(
        "__kms.authorize('demo-user', {})",
        js(&format!("not-{password}"))
    ));
    let wrong_password = Shown::from(browser.eval(&format!("__kms.create({})", js(key_name))));
    browser.eval(&format!("__kms.authorize('demo-user', {})", js(password)));
    let created = Shown::from(browser.eval(&format!("__kms.create({})", js(key_name))));
    let id = serde_json::from_str::<Value>(&created.body)
        .ok()
        .and_then(|key| key["elastic_key_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("create did not show a key: {created:?}"));
    let encrypted =
        Shown::from(browser.eval(&format!("__kms.encrypt({}, {})", js(&id), js(plaintext))));
    let challenges = browser.challenges;
    browser.close();
    Session {
        anonymous,
        wrong_password,
        created,
        encrypted,
        challenges,
    }
}

fn settings(pki: &DevPki) -> KmsSettings {
    // Server logs go to the test's captured output (shown when a test fails).
    cryptoutil_testkit::kms::settings(pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_it_out_as_the_demo_user_creates_a_key_and_encrypts_on_the_browser_surface() {
    if !Path::new(CHROMIUM).exists() || !tool_available("certutil") {
        println!(
            "SKIPPED (run cargo xtask setup-browser): {CHROMIUM} or certutil is not installed"
        );
        return;
    }
    let pki = DevPki::generate().unwrap();
    let kms = cryptoutil_kms::server::start(settings(&pki), true, None, Some(Seeding::Demo))
        .await
        .unwrap();
    let base = format!("https://localhost:{}", kms.server.public_addr.port());
    let home = tempfile::Builder::new()
        .prefix("cryptoutil-chromium-")
        .tempdir()
        .unwrap();
    trust_ca(home.path(), &pki.root());

    let key_name = format!("swagger-{}", uuid::Uuid::now_v7());
    let plaintext = format!("hello from Swagger UI {}", uuid::Uuid::now_v7());
    let session = {
        let (home, base, key_name, plaintext) = (
            home.path().to_path_buf(),
            base.clone(),
            key_name.clone(),
            plaintext.clone(),
        );
        tokio::task::spawn_blocking(move || {
            browse(&home, &base, &key_name, &plaintext, DEMO_PASSWORD)
        })
        .await
        .unwrap()
    };
    assert_eq!(
        session.challenges, 0,
        "the browser surface must not make the browser open its own login dialog (a Basic \
         challenge does); Swagger UI shows the 401 itself"
    );

    // Not authorized: the KMS refuses, and Swagger UI shows it.
    let anonymous = &session.anonymous;
    assert_eq!(anonymous.status, "401", "{anonymous:?}");
    assert!(
        anonymous.body.contains("authentication is required"),
        "{anonymous:?}"
    );
    assert!(!anonymous.curl.contains("Authorization"), "{anonymous:?}");
    // The request really went out with Swagger UI's Basic header and the CSRF token: only the
    // password was wrong.
    let wrong = &session.wrong_password;
    assert_eq!(wrong.status, "401", "{wrong:?}");
    assert!(wrong.body.contains("invalid credentials"), "{wrong:?}");
    assert!(wrong.curl.contains("Authorization: Basic "), "{wrong:?}");
    assert!(wrong.curl.contains("X-CSRF-Token: "), "{wrong:?}");

    // Authorized as demo-user: 201 with the key, then 200 with a compact JWE.
    let created = &session.created;
    assert_eq!(created.status, "201", "{created:?}");
    assert!(
        created.curl.contains("Authorization: Basic "),
        "{created:?}"
    );
    assert!(created.curl.contains("X-CSRF-Token: "), "{created:?}");
    let key: Value = serde_json::from_str(&created.body).unwrap();
    assert_eq!(key["name"], key_name.as_str());
    assert_eq!(key["status"], "active");
    let id = key["elastic_key_id"].as_str().unwrap();
    let encrypted = &session.encrypted;
    assert_eq!(encrypted.status, "200", "{encrypted:?}");
    let jwe = encrypted.body.trim();
    assert_eq!(
        jwe.split('.').count(),
        5,
        "not a compact JWE: {encrypted:?}"
    );

    // Server side, through the service surface as demo-user: the key exists once (the refused
    // attempts created nothing) in demo-user's tenant, and the JWE decrypts to the plaintext.
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(
            client_config(TrustConfig::from_ca_files(&[pki.root()]).unwrap(), None).unwrap(),
        )
        .build()
        .unwrap();
    let listed = http
        .get(format!(
            "{base}/service/api/v1/elastickeys?names={key_name}"
        ))
        .basic_auth("demo-user", Some(DEMO_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["elastic_key_id"], id, "{listed}");
    let decrypted = http
        .post(format!("{base}/service/api/v1/elastickey/{id}/decrypt"))
        .basic_auth("demo-user", Some(DEMO_PASSWORD))
        .header("content-type", "application/jose")
        .body(jwe.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(decrypted.status(), 200);
    assert_eq!(decrypted.bytes().await.unwrap(), plaintext.as_bytes());

    kms.stop().await;
}
