//! `identity login` end to end against the real servers: a `--dev --demo` Identity (the device
//! grant, client `demo-cli`) and a `--dev --demo` KMS that trusts it. The test plays the user's
//! browser (the demo's form follower); the CLI plays the device. Then `kms inventory --login`
//! uses the stored token at the KMS, and `identity logout` revokes it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use cryptoutil_demo::credentials::Credentials;
use cryptoutil_demo::http::{Http, RetryPolicy};
use cryptoutil_demo::identity_demo::approve_device;

use crate::common::{cryptoutil, start_server, stderr, stdout};

/// The user code and verification URI `identity login` printed.
fn read_prompt(lines: &mut impl Iterator<Item = String>) -> (String, url::Url) {
    let mut code = None;
    let mut uri: Option<url::Url> = None;
    for line in lines.by_ref() {
        for word in line.split_whitespace() {
            let bytes = word.as_bytes();
            if bytes.len() == 9
                && bytes[4] == b'-'
                && word.chars().all(|c| c == '-' || c.is_ascii_uppercase())
            {
                code = Some(word.to_owned());
            }
            if word.starts_with("https://") && !word.contains("user_code=") {
                uri = word.parse().ok();
            }
        }
        if let (Some(code), Some(uri)) = (&code, &uri) {
            return (code.clone(), uri.clone());
        }
    }
    panic!("identity login printed no user code and verification URI");
}

#[test]
fn a_user_signs_the_cli_in_with_the_device_grant_and_the_kms_takes_the_stored_token() {
    let dir = tempfile::tempdir().unwrap();
    let identity = start_server(
        &["identity", "server", "start", "--dev", "--demo"],
        dir.path(),
    );
    let issuer = identity.ready["public_url"].as_str().unwrap().to_owned();
    let identity_ca = identity.ready["ca_cert"].as_str().unwrap().to_owned();
    let kms = start_server(
        &[
            "kms",
            "server",
            "start",
            "--dev",
            "--demo",
            "--trust-issuer",
            &issuer,
            "--trust-issuer-ca",
            &identity_ca,
        ],
        dir.path(),
    );
    let kms_url = kms.ready["public_url"].as_str().unwrap().to_owned();
    let kms_ca = kms.ready["ca_cert"].as_str().unwrap().to_owned();
    let config = dir.path().join("config");

    let mut login = cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .args([
            "identity",
            "login",
            "--issuer",
            &issuer,
            "--client-id",
            "demo-cli",
        ])
        .args(["--ca-cert", &identity_ca])
        .args(["--scope", "openid offline_access kms:admin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let (code, verification_uri) = read_prompt(&mut lines);

    let http = Http::new(&[identity_ca.clone().into()], None, RetryPolicy::new(0)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pages = runtime
        .block_on(approve_device(
            &http,
            &Credentials::default(),
            &verification_uri,
            &code,
        ))
        .unwrap();
    assert!(pages.iter().any(|p| p.contains("login page")), "{pages:?}");

    let rest: Vec<String> = lines.collect();
    let status = crate::common::wait_for_exit(&mut login);
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut login.stderr.take().unwrap(), &mut errors).unwrap();
    assert!(status.success(), "{rest:?}\n{errors}");
    let store = config.join("tokens.json");
    assert!(store.exists(), "no token store: {rest:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let inventory = cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .args(["kms", "inventory", "--url", &kms_url, "--ca-cert", &kms_ca])
        .args(["--login", &issuer, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        inventory.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&inventory),
        stderr(&inventory)
    );
    assert!(
        stdout(&inventory).contains("demo-encryption-aes256"),
        "{}",
        stdout(&inventory)
    );

    let logout = cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .args(["identity", "logout", "--issuer", &issuer])
        .output()
        .unwrap();
    assert_eq!(logout.status.code(), Some(0), "{}", stderr(&logout));
    let after = cryptoutil()
        .env("CRYPTOUTIL_CONFIG_DIR", &config)
        .args(["kms", "inventory", "--url", &kms_url, "--ca-cert", &kms_ca])
        .args(["--login", &issuer])
        .output()
        .unwrap();
    assert_eq!(
        after.status.code(),
        Some(1),
        "signed out: {}",
        stdout(&after)
    );
}
