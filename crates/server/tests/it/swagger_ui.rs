//! Swagger UI in a real browser: headless Chromium loads `/ui/swagger/` over HTTPS from a server
//! whose certificate chains to the demo CA, which the browser trusts through its own NSS
//! database (never by skipping certificate checks). The dumped DOM must show the rendered
//! document, which only happens when the vendored bundle and our initializer ran under the
//! page's CSP and fetched `doc.json`.
//!
//! Needs `/usr/bin/chromium` and `certutil` (`cargo xtask setup-browser`; `cargo xtask test`
//! installs them first). Without them the test prints a loud SKIPPED line and passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use cryptoutil_server::config::{BrowserSettings, ServerSettings};
use cryptoutil_server::swagger::SWAGGER_CSP;
use cryptoutil_server::{DevPki, ServerSpec, browser_surface, swagger_router};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium gets this long before it is killed (a hang guard, not an assertion).
const BROWSER_GUARD: Duration = Duration::from_secs(120);

fn tool_available(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn openapi(title: &str, path: &str) -> String {
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": {
            path: {
                "post": {
                    "summary": "Create a thing",
                    "operationId": "createThing",
                    "responses": {"200": {"description": "created"}}
                }
            }
        }
    })
    .to_string()
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

/// Runs headless Chromium with `--dump-dom` and returns the DOM and Chromium's log. Blocking:
/// call it off the runtime's worker threads.
fn dump_dom(home: &Path, url: &str, mode: &str) -> (String, String) {
    let profile = home.join("profile");
    let mut child = Command::new(CHROMIUM)
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
            "--enable-logging=stderr",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,1000", mode, url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + BROWSER_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = out.join().unwrap().unwrap();
    let log = String::from_utf8_lossy(&err.join().unwrap().unwrap()).into_owned();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    (String::from_utf8_lossy(&out).into_owned(), log)
}

/// A same-origin test page (not part of the product) that loads the real bundle and initializer
/// under the Swagger CSP, then sends one POST through Swagger UI's configured request
/// interceptor (which must fetch the CSRF token) and one POST without it, and writes both
/// statuses into the page.
const PROBE_JS: &str = r#"
window.addEventListener("load", function () {
  var path = document.body.getAttribute("data-path");
  var intercept = window.ui.getConfigs().requestInterceptor;
  Promise.resolve(intercept({ url: path, method: "POST", headers: {} }))
    .then(function (req) {
      return fetch(req.url, { method: req.method, headers: req.headers, credentials: req.credentials });
    })
    .then(function (res) { document.getElementById("with-token").textContent = "with-token:" + res.status; })
    .catch(function (e) { document.getElementById("with-token").textContent = "with-token-error:" + e; });
  fetch(path, { method: "POST", credentials: "same-origin" })
    .then(function (res) { document.getElementById("without-token").textContent = "without-token:" + res.status; });
});
"#;

fn probe_html(path: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><head><meta charset="UTF-8"><title>probe</title></head>
<body data-path="{path}"><div id="swagger-ui"></div><pre id="with-token"></pre><pre id="without-token"></pre>
<script src="/ui/swagger/swagger-ui-bundle.js"></script>
<script src="/ui/swagger/initializer.js"></script>
<script src="/test/probe.js"></script></body></html>"#
    )
}

fn probe_routes(path: &str, doc: String) -> Router {
    let html = probe_html(path);
    Router::new()
        .route(
            "/test/probe.html",
            get(move || async move {
                (
                    [(header::CONTENT_SECURITY_POLICY, SWAGGER_CSP)],
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    html,
                )
            }),
        )
        .route(
            "/test/probe.js",
            get(move || async move {
                (
                    [(header::CONTENT_SECURITY_POLICY, SWAGGER_CSP)],
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    PROBE_JS,
                )
            }),
        )
        .route(
            "/test/doc.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], doc) }),
        )
}

async fn in_browser(home: &Path, url: String, mode: &'static str) -> String {
    let home = home.to_path_buf();
    let (dom, log) = tokio::task::spawn_blocking(move || dump_dom(&home, &url, mode))
        .await
        .unwrap();
    if std::env::var_os("CRYPTOUTIL_TEST_SHOW_BROWSER_LOG").is_some() {
        println!("--- chromium log ---\n{log}\n--- output ---\n{dom}");
    }
    dom
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_document_and_try_it_out_sends_the_csrf_token() {
    if !Path::new(CHROMIUM).exists() || !tool_available("certutil") {
        println!(
            "SKIPPED (run cargo xtask setup-browser): {CHROMIUM} or certutil is not installed"
        );
        return;
    }
    let id = uuid::Uuid::now_v7().simple().to_string();
    let title = format!("Swagger test {id}");
    let path = format!("/browser/api/v1/things-{id}");
    let doc = openapi(&title, &path);

    let pki = DevPki::generate().unwrap();
    let mut settings = ServerSettings::with_ports(0, 0);
    settings.public.address = "127.0.0.1".parse().unwrap();
    settings.admin.require_client_cert = Some(false);
    settings.tls.watch = Some(false);
    pki.apply(&mut settings, "kms");
    let tls = cryptoutil_server::tls_setup::build(&settings, false, None).unwrap();
    let operations = Router::new().route(
        &format!("/things-{id}"),
        get(|| async { "[]" }).post(|| async { "created" }),
    );
    let public = swagger_router(doc.clone())
        .merge(browser_surface(operations, &BrowserSettings::default()))
        .merge(probe_routes(&path, doc));
    let server = cryptoutil_server::start(ServerSpec {
        name: "swagger-ui-test",
        settings,
        public,
        admin_extra: Router::new(),
        checks: Vec::new(),
        tls: tls.setup.clone(),
    })
    .await
    .unwrap();
    let base = format!("https://127.0.0.1:{}", server.public_addr.port());

    let home = tempfile::Builder::new()
        .prefix("cryptoutil-chromium-")
        .tempdir()
        .unwrap();
    trust_ca(home.path(), &pki.root());

    let dom = in_browser(home.path(), format!("{base}/ui/swagger/"), "--dump-dom").await;
    assert!(dom.contains("swagger-ui"), "the page did not load:\n{dom}");
    assert!(
        dom.contains(&title),
        "Swagger UI did not render the document title (JS, CSP or doc.json failed):\n{dom}"
    );
    assert!(
        dom.contains(&path),
        "Swagger UI did not render the operation path:\n{dom}"
    );
    assert!(
        dom.contains("opblock-post"),
        "the POST operation block is missing"
    );

    let probe = in_browser(home.path(), format!("{base}/test/probe.html"), "--dump-dom").await;
    assert!(
        probe.contains("without-token:403"),
        "a POST without the token must be refused:\n{probe}"
    );
    assert!(
        probe.contains("with-token:200"),
        "the request interceptor must fetch and send the CSRF token:\n{probe}"
    );

    // For a person to look at: CRYPTOUTIL_TEST_SCREENSHOT=/tmp/swagger.png.
    if let Some(png) = std::env::var_os("CRYPTOUTIL_TEST_SCREENSHOT") {
        let mode: &'static str = format!("--screenshot={}", Path::new(&png).display()).leak();
        in_browser(home.path(), format!("{base}/ui/swagger/"), mode).await;
    }
    server.shutdown();
}
