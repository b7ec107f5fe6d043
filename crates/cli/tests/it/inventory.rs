//! `cryptoutil kms inventory` against a real `--dev --demo` KMS in another process: the table,
//! the JSON and the CycloneDX CBOM, the tenant and the system-wide (admin listener) views, and
//! the refusals.

use serde_json::Value;

use crate::common::{run, start_server, stderr, stdout};

#[test]
fn kms_inventory_reports_the_demo_keys_as_a_table_json_and_a_cbom() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&["kms", "server", "start", "--dev", "--demo"], dir.path());
    let public = server.url("public_url").to_owned();
    let admin = server.url("admin_url").to_owned();
    let ca = server.ca_cert();
    let ca = ca.to_str().unwrap();
    let password = dir.path().join("admin-password");
    std::fs::write(&password, "demo-admin-password\n").unwrap();
    let password = password.to_str().unwrap();
    let as_admin = |extra: &[&str]| {
        let mut args: Vec<&str> = vec![
            "kms",
            "inventory",
            "--url",
            &public,
            "--ca-cert",
            ca,
            "--username",
            "demo-admin",
            "--password-file",
            password,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // JSON: the demo keys of demo-tenant (demo-admin's first tenant): the five classical ones,
    // and the post-quantum ones where the seed has them.
    let json = as_admin(&["--format", "json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let inventory: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let keys = inventory["keys"].as_array().unwrap();
    let n = keys.len();
    assert!(n >= 5, "{inventory}");
    assert!(keys.iter().all(|k| k["tenant_name"] == "demo-tenant"));
    let vulnerable: Vec<&str> = keys
        .iter()
        .filter(|k| k["quantum_vulnerable"] == true)
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(vulnerable, ["RS256", "ES256", "EdDSA"], "{inventory}");
    for key in keys {
        let algorithm = key["algorithm"].as_str().unwrap();
        if algorithm.contains("ML-") {
            assert_eq!(key["quantum_vulnerable"], false, "{key}");
        }
        assert_ne!(key["quantum_status"], "unknown", "{key}");
    }
    assert_eq!(inventory["totals"]["quantum_vulnerable"], 3);
    assert_eq!(inventory["totals"]["quantum_resistant"], n - 3);
    let aes = keys
        .iter()
        .find(|k| k["name"] == "demo-encryption-aes256")
        .unwrap();
    assert_eq!(aes["versions"], 3);
    assert_eq!(aes["key_size_bits"], 256);

    // The table (default format): a row per key and the totals.
    let table = as_admin(&[]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("TENANT"), "{text}");
    let rsa = text
        .lines()
        .find(|l| l.contains("demo-signing-rsa2048"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        rsa.contains("RS256") && rsa.contains("2048") && rsa.contains("VULNERABLE"),
        "{rsa}"
    );
    let summary = format!(
        "{n} keys (0 purged): 3 quantum-vulnerable, {} resistant, 0 unknown",
        n - 3
    );
    assert!(text.contains(&summary), "{text}");

    // The CBOM, to a file.
    let out = dir.path().join("cbom.json");
    let cbom = as_admin(&["--format", "cyclonedx", "--output", out.to_str().unwrap()]);
    assert!(cbom.status.success(), "{}", stderr(&cbom));
    assert!(stdout(&cbom).is_empty());
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    let materials = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cryptoProperties"]["assetType"] == "related-crypto-material")
        .count();
    assert_eq!(materials, n);

    // Every tenant from the admin listener (--dev: no client certificate needed).
    let system = run(&[
        "kms",
        "inventory",
        "--admin",
        "--url",
        &admin,
        "--ca-cert",
        ca,
        "--format",
        "json",
    ]);
    assert!(system.status.success(), "{}", stderr(&system));
    let system: Value = serde_json::from_str(&stdout(&system)).unwrap();
    assert_eq!(system["scope"], "system");
    assert!(system["keys"].as_array().unwrap().len() >= n, "{system}");

    // Refusals: a user without kms:admin (exit 1, naming the scope), a wrong password (401),
    // no credentials at all (usage, exit 2).
    let user_password = dir.path().join("user-password");
    std::fs::write(&user_password, "demo-user-password").unwrap();
    let user = run(&[
        "kms",
        "inventory",
        "--url",
        &public,
        "--ca-cert",
        ca,
        "--username",
        "demo-user",
        "--password-file",
        user_password.to_str().unwrap(),
    ]);
    assert_eq!(user.status.code(), Some(1), "{}", stderr(&user));
    assert!(
        stderr(&user).contains("403") && stderr(&user).contains("kms:admin"),
        "{}",
        stderr(&user)
    );
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let refused = run(&[
        "kms",
        "inventory",
        "--url",
        &public,
        "--ca-cert",
        ca,
        "--username",
        "demo-admin",
        "--password-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("401"), "{}", stderr(&refused));
    let nobody = run(&["kms", "inventory", "--url", &public, "--ca-cert", ca]);
    assert_eq!(nobody.status.code(), Some(2), "{}", stderr(&nobody));
    let http = run(&[
        "kms",
        "inventory",
        "--url",
        "http://localhost:1",
        "--ca-cert",
        ca,
        "--admin",
    ]);
    assert_eq!(http.status.code(), Some(2), "{}", stderr(&http));
}
