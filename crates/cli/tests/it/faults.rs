//! Faults against the real binary (issue 13): `kill -9` of a KMS in the middle of a load of
//! creates, rotations and encryptions (SQLite file, and PostgreSQL when
//! `CRYPTOUTIL_TEST_POSTGRES_URL` is set), and a KMS whose SQLite directory runs out of space or
//! turns read-only while it serves.
//!
//! The load is bounded (a few hundred requests at most) and the kill comes after a number of
//! acknowledged operations, never after a sleep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ServerProcess, generate_shares, init_demo_ca, run, start_server, stderr, unique};
use cryptoutil_testkit::postgres::TestDatabase;
use serde_json::{Value, json};

const USER: &str = "demo-user";
const PASSWORD: &str = "demo-user-password";

/// A KMS deployment on disk: demo CA, three share files (threshold 2), a config file.
struct Deployment {
    dir: tempfile::TempDir,
    ca: PathBuf,
    config: PathBuf,
}

impl Deployment {
    /// `database_url` may name a file under [`Deployment::data`] (use `{data}` in it).
    fn new(database_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shares = dir.path().join("shares");
        let shares = generate_shares(&shares);
        let pki = dir.path().join("pki");
        init_demo_ca(&pki);
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let list: String = shares
            .iter()
            .map(|share| format!("      - {}\n", share.display()))
            .collect();
        let config = dir.path().join("kms.yml");
        std::fs::write(
            &config,
            format!(
                "server:\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/kms/cert.pem\n    key_file: {p}/kms/key.pem\n    watch: false\n\
                 database:\n  url: \"{url}\"\n  acquire_timeout: 2s\nbarrier:\n  unseal:\n    mode: shares\n    threshold: 2\n    files:\n{list}",
                p = pki.display(),
                url = database_url.replace("{data}", &data.display().to_string()),
            ),
        )
        .unwrap();
        Self {
            ca: pki.join("ca/root.pem"),
            config,
            dir,
        }
    }

    /// Where the SQLite files live.
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&self, demo: bool) -> ServerProcess {
        let mut args = vec![
            "kms",
            "server",
            "start",
            "--config",
            self.config.to_str().unwrap(),
        ];
        if demo {
            args.push("--demo");
        }
        start_server(&args, self.dir.path())
    }
}

/// A blocking client of one server's service API as the demo user.
struct Api {
    http: reqwest::blocking::Client,
    base: String,
}

/// One answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn read(response: reqwest::blocking::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Self {
            status,
            content_type,
            body: response.bytes().unwrap().to_vec(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A problem+json document with this status, never a bare 500.
    fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.content_type,
            "application/problem+json",
            "{}",
            self.text()
        );
        assert_eq!(self.json()["status"], status);
    }
}

impl Api {
    fn new(server: &ServerProcess, ca: &Path) -> Self {
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(
                cryptoutil_tls::client_config(
                    cryptoutil_tls::TrustConfig::from_ca_files(&[ca]).unwrap(),
                    None,
                )
                .unwrap(),
            )
            // Never a hang: every answer, even a failure, comes well within this.
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            http,
            base: format!("{}/service/api/v1", server.url("public_url")),
        }
    }

    /// `Err` for a transport failure (the server is gone).
    fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(USER, Some(PASSWORD));
        if let Some(body) = body {
            let json = body.first() == Some(&b'{');
            request = request
                .header(
                    "content-type",
                    if json {
                        "application/json"
                    } else {
                        "application/octet-stream"
                    },
                )
                .body(body);
        }
        let response = request.send().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().map_err(|e| e.to_string())?.to_vec();
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        self.send(method, path, body).unwrap()
    }

    fn create(&self, name: &str) -> Result<Answer, String> {
        self.send(
            "POST",
            "/elastickey",
            Some(json!({ "name": name }).to_string().into_bytes()),
        )
    }

    /// Encrypts then decrypts a fresh plaintext with the key's newest material.
    fn round_trip(&self, id: &str) {
        let clear = unique("round-trip");
        let jwe = self.call(
            "POST",
            &format!("/elastickey/{id}/encrypt"),
            Some(clear.clone().into_bytes()),
        );
        assert_eq!(jwe.status, 200, "{}", jwe.text());
        let out = self.call("POST", &format!("/elastickey/{id}/decrypt"), Some(jwe.body));
        assert_eq!(out.status, 200, "{}", out.text());
        assert_eq!(out.body, clear.as_bytes());
    }
}

/// What the load saw acknowledged (2xx), and what it only attempted.
#[derive(Default)]
struct Ledger {
    /// Names sent in a create, acknowledged or not.
    attempted: Vec<String>,
    /// Acknowledged keys: (id, name).
    keys: Vec<(String, String)>,
    /// Acknowledged rotations: (key id, material id).
    materials: Vec<(String, String)>,
    /// Acknowledged encryptions: (key id, plaintext, JWE).
    ciphertexts: Vec<(String, String, Vec<u8>)>,
}

/// One worker: create → rotate → encrypt, again and again, until `stop` or the server is gone.
/// A non-2xx answer while the server is up is a failure of the test.
fn worker(api: &Api, ledger: &Mutex<Ledger>, acked: &AtomicUsize, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let name = unique("killed");
        ledger.lock().unwrap().attempted.push(name.clone());
        let Ok(created) = api.create(&name) else {
            return;
        };
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["elastic_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        ledger.lock().unwrap().keys.push((id.clone(), name));
        acked.fetch_add(1, Ordering::SeqCst);

        let Ok(rotated) = api.send(
            "POST",
            &format!("/elastickey/{id}/materialkey"),
            Some(Vec::new()),
        ) else {
            return;
        };
        assert_eq!(rotated.status, 201, "{}", rotated.text());
        let mid = rotated.json()["material_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        ledger.lock().unwrap().materials.push((id.clone(), mid));
        acked.fetch_add(1, Ordering::SeqCst);

        for _ in 0..2 {
            let clear = unique("clear");
            let Ok(jwe) = api.send(
                "POST",
                &format!("/elastickey/{id}/encrypt"),
                Some(clear.clone().into_bytes()),
            ) else {
                return;
            };
            assert_eq!(jwe.status, 200, "{}", jwe.text());
            ledger
                .lock()
                .unwrap()
                .ciphertexts
                .push((id.clone(), clear, jwe.body));
            acked.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs `workers` load threads until `kill_after` operations are acknowledged, then SIGKILLs
/// the server (no graceful stop) and returns what was acknowledged.
fn load_then_kill(
    server: &mut ServerProcess,
    ca: &Path,
    workers: usize,
    kill_after: usize,
) -> Ledger {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let api = Api::new(server, ca);
            let (ledger, acked, stop) = (ledger.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || worker(&api, &ledger, &acked, &stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < kill_after {
        assert!(
            threads.iter().any(|t| !t.is_finished()),
            "every worker stopped before the kill"
        );
        assert!(Instant::now() < deadline, "the load made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGKILL (std's Child::kill), mid-load: requests are in flight.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join()
            .expect("a worker saw a non-2xx answer before the kill");
    }
    Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap()
}

/// Everything acknowledged is there after the restart; what was only attempted is either
/// absent or whole (usable material).
fn assert_nothing_lost(api: &Api, ledger: &Ledger) {
    for (id, name) in &ledger.keys {
        let got = api.call("GET", &format!("/elastickey/{id}"), None);
        assert_eq!(
            got.status,
            200,
            "acknowledged key {name} lost: {}",
            got.text()
        );
    }
    for (id, mid) in &ledger.materials {
        let got = api.call("GET", &format!("/elastickey/{id}/materialkey/{mid}"), None);
        assert_eq!(
            got.status,
            200,
            "acknowledged material {mid} lost: {}",
            got.text()
        );
    }
    for (id, clear, jwe) in &ledger.ciphertexts {
        let out = api.call(
            "POST",
            &format!("/elastickey/{id}/decrypt"),
            Some(jwe.clone()),
        );
        assert_eq!(out.status, 200, "{}", out.text());
        assert_eq!(out.body, clear.as_bytes());
    }
    let mut whole = 0;
    for name in &ledger.attempted {
        let found = api.call("GET", &format!("/elastickeys?names={name}"), None);
        assert_eq!(found.status, 200, "{}", found.text());
        let found = found.json();
        match found["total"].as_u64() {
            Some(0) => assert!(
                !ledger.keys.iter().any(|(_, n)| n == name),
                "acknowledged {name} missing"
            ),
            Some(1) => {
                // Present, acknowledged or not: its newest material must work (a key without
                // usable material, or a half-written rotation, fails here).
                let id = found["items"][0]["elastic_key_id"].as_str().unwrap();
                api.round_trip(id);
                whole += 1;
            }
            other => panic!("{name}: {other:?} keys"),
        }
    }
    let acknowledged = ledger
        .keys
        .iter()
        .filter(|(_, n)| ledger.attempted.contains(n))
        .count();
    assert!(whole >= acknowledged);
}

fn kill_during_load(database_url: &str) -> Deployment {
    let deployment = Deployment::new(database_url);
    let mut server = deployment.start(true);
    let ledger = load_then_kill(&mut server, &deployment.ca, 4, 60);
    assert!(ledger.keys.len() >= 10, "the load ran");
    eprintln!(
        "killed after {} keys, {} rotations, {} ciphertexts acknowledged ({} creates attempted)",
        ledger.keys.len(),
        ledger.materials.len(),
        ledger.ciphertexts.len(),
        ledger.attempted.len()
    );
    // Same shares, same database.
    let server = deployment.start(false);
    let api = Api::new(&server, &deployment.ca);
    assert_nothing_lost(&api, &ledger);
    drop(server);
    deployment
}

/// `PRAGMA integrity_check` on every SQLite file under `dir` (the main file and one per tenant).
fn assert_sqlite_intact(dir: &Path) {
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "db") {
            let result = integrity_check(&path);
            assert_eq!(result, "ok", "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 2, "the main file and a tenant file were checked");
}

fn integrity_check(path: &Path) -> String {
    use sqlx::Connection;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            let row: (String,) = sqlx::query_as("PRAGMA integrity_check")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            row.0
        })
}

#[test]
fn kill_9_during_load_on_sqlite_loses_nothing_acknowledged() {
    let deployment = kill_during_load("sqlite://{data}/kms.db");
    assert_sqlite_intact(&deployment.data());
}

#[test]
fn kill_9_during_load_on_postgres_loses_nothing_acknowledged() {
    let Some(db) = TestDatabase::create_blocking("cli_faults") else {
        return;
    };
    kill_during_load(&db.url);
}

/// A small tmpfs mounted over a test directory, unmounted on drop. Needs permission to mount
/// (root in CI and on the development machines); `None`, with a loud line, without it.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Self> {
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self {
                path: path.to_owned(),
            }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED (cannot mount a tmpfs: {}): disk-full test not run",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED (no mount command: {e}): disk-full test not run");
                None
            }
        }
    }

    /// Fills the file system with a filler file until it is full; returns the filler.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                    break;
                }
            }
        }
        // Whatever is left is smaller than a chunk: use it up too.
        let small = [0u8; 512];
        while file.write(&small).is_ok_and(|n| n > 0) {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_refuses_writes_with_503_keeps_reads_and_loses_nothing() {
    let deployment = Deployment::new("sqlite://{data}/kms.db");
    let Some(disk) = Tmpfs::mount(&deployment.data(), "16m") else {
        return;
    };
    let server = deployment.start(true);
    let api = Api::new(&server, &deployment.ca);
    let mut ledger = Ledger::default();
    let created = api.create(&unique("before")).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwe = api.call(
        "POST",
        &format!("/elastickey/{id}/encrypt"),
        Some(b"before".to_vec()),
    );
    assert_eq!(jwe.status, 200);
    ledger.keys.push((id.clone(), String::new()));
    ledger
        .ciphertexts
        .push((id.clone(), "before".to_owned(), jwe.body));

    let filler = disk.fill();
    // Writes: a clear problem, never a 500. Several, so the WAL has to grow.
    for _ in 0..5 {
        let name = unique("full");
        ledger.attempted.push(name.clone());
        let refused = api.create(&name).unwrap();
        refused.assert_problem(503);
        assert!(refused.text().contains("unavailable"), "{}", refused.text());
        let refused = api.call(
            "POST",
            &format!("/elastickey/{id}/materialkey"),
            Some(Vec::new()),
        );
        refused.assert_problem(503);
    }
    // Reads go on: the key, its materials, encryption and decryption.
    assert_eq!(
        api.call("GET", &format!("/elastickey/{id}"), None).status,
        200
    );
    assert_eq!(
        api.call("GET", &format!("/elastickey/{id}/materialkeys"), None)
            .status,
        200
    );
    api.round_trip(&id);
    let (_, clear, jwe) = &ledger.ciphertexts[0];
    let out = api.call(
        "POST",
        &format!("/elastickey/{id}/decrypt"),
        Some(jwe.clone()),
    );
    assert_eq!(out.body, clear.as_bytes());
    let ready = api
        .http
        .get(format!("{}/admin/v1/readyz", server.url("admin_url")))
        .send()
        .unwrap();
    assert!(ready.status().is_success() || ready.status() == 503);

    // Space again: writes succeed without a restart.
    std::fs::remove_file(filler).unwrap();
    let created = api.create(&unique("after")).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let after = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = api.call(
        "POST",
        &format!("/elastickey/{after}/materialkey"),
        Some(Vec::new()),
    );
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    ledger.keys.push((after.clone(), String::new()));
    ledger.materials.push((
        after.clone(),
        rotated.json()["material_key_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    api.round_trip(&after);

    // Stopped (killed) and started again: everything acknowledged is there, the files are
    // intact, and the refused creates left nothing behind.
    drop(server);
    assert_sqlite_intact(&deployment.data());
    let server = deployment.start(false);
    let api = Api::new(&server, &deployment.ca);
    assert_nothing_lost(&api, &ledger);
    drop(server);
    drop(disk);
}

#[test]
fn identity_on_a_full_disk_refuses_writes_with_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let out = run(&["tls", "init-demo-ca", "--out", pki.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let Some(disk) = Tmpfs::mount(&data, "16m") else {
        return;
    };
    let kek = dir.path().join("kek");
    std::fs::write(&kek, "u0cmvy1ZwjmzxNQ5wbBqYfJ1Nd7xXrHq9cWc0cDdEAM").unwrap();
    let config = dir.path().join("identity.yml");
    std::fs::write(
        &config,
        format!(
            "server:\n  admin:\n    require_client_cert: false\n  tls:\n    cert_file: {p}/identity/cert.pem\n    key_file: {p}/identity/key.pem\n    watch: false\n\
             database:\n  url: sqlite://{data}/identity.db\n  acquire_timeout: 2s\nkeys:\n  encryption_key: file://{kek}\n",
            p = pki.display(),
            data = data.display(),
            kek = kek.display(),
        ),
    )
    .unwrap();
    let start = || {
        start_server(
            &[
                "identity",
                "server",
                "start",
                "--config",
                config.to_str().unwrap(),
            ],
            dir.path(),
        )
    };
    let server = start();
    let http = common::https_client(&pki.join("ca/root.pem"), None);
    let register = |name: &str| {
        let response = http
            .post(format!("{}/admin/v1/clients", server.url("admin_url")))
            .json(&json!({
                "client_id": name,
                "name": "disk-full test client",
                "auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"],
                "scopes": ["read:resource"],
            }))
            .send()
            .unwrap();
        Answer::read(response)
    };
    let before = unique("before");
    assert_eq!(register(&before).status, 201);
    let filler = disk.fill();
    let rotate = || {
        let response = http
            .post(format!(
                "{}/admin/v1/signing-keys/rotate",
                server.url("admin_url")
            ))
            .send()
            .unwrap();
        Answer::read(response)
    };
    for _ in 0..5 {
        register(&unique("full")).assert_problem(503);
        // A write in a transaction (the conditional insert of a signing key).
        rotate().assert_problem(503);
    }
    // Reads go on: discovery and the JWKS.
    let jwks = http
        .get(format!("{}/oauth2/v1/jwks", server.url("public_url")))
        .send()
        .unwrap();
    assert_eq!(jwks.status(), 200);
    std::fs::remove_file(filler).unwrap();
    let after = unique("after");
    let created = register(&after);
    assert_eq!(created.status, 201, "{}", created.text());
    for _ in 0..3 {
        let rotated = rotate();
        assert_eq!(rotated.status, 200, "{}", rotated.text());
    }
    drop(server);
    assert_eq!(integrity_check(&data.join("identity.db")), "ok");
    let server = start();
    for (name, expected) in [(&before, 409), (&after, 409)] {
        let again = http
            .post(format!("{}/admin/v1/clients", server.url("admin_url")))
            .json(&json!({
                "client_id": name,
                "name": "again",
                "auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"],
                "scopes": ["read:resource"],
            }))
            .send()
            .unwrap();
        assert_eq!(again.status().as_u16(), expected, "{name} was kept");
    }
    drop(server);
    drop(disk);
}

#[test]
fn sqlite_files_locked_by_another_process_give_503_for_writes_and_recover() {
    use sqlx::Connection;
    let deployment = Deployment::new("sqlite://{data}/kms.db");
    let server = deployment.start(true);
    let api = Api::new(&server, &deployment.ca);
    let created = api.create(&unique("before")).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another process (a backup tool, an operator's sqlite3 shell) takes the write lock of
    // every database file and keeps it past the KMS's busy timeout (2 s here).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut holders = Vec::new();
    for entry in std::fs::read_dir(deployment.data()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "db") {
            holders.push(runtime.block_on(async {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn
            }));
        }
    }
    assert!(holders.len() >= 2);
    let name = unique("locked");
    api.create(&name).unwrap().assert_problem(503);
    api.call(
        "POST",
        &format!("/elastickey/{id}/materialkey"),
        Some(Vec::new()),
    )
    .assert_problem(503);
    // Reads go on (WAL readers do not wait for the writer's lock).
    assert_eq!(
        api.call("GET", &format!("/elastickey/{id}"), None).status,
        200
    );
    api.round_trip(&id);

    for mut conn in holders {
        runtime.block_on(async {
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        });
    }
    let created = api.create(&unique("after")).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let found = api.call("GET", &format!("/elastickeys?names={name}"), None);
    assert_eq!(found.json()["total"], 0, "the refused create left nothing");
    drop(server);
    assert_sqlite_intact(&deployment.data());
}
