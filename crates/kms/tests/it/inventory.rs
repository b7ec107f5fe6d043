//! The cryptographic inventory over HTTPS: the tenant's (both surfaces, `kms:admin` only, no
//! other tenant's keys), the admin listener's (every tenant), last use, and the CycloneDX 1.6
//! CBOM validated against the official schema (tests/data/cyclonedx, from
//! github.com/CycloneDX/specification).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{self, Kms, Surface};

fn name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

async fn create(api: &common::Api, algorithm: &str, versioning: bool) -> String {
    let created = api
        .post_json(
            "/elastickey",
            &json!({"name": name("inv"), "algorithm": algorithm, "versioning_allowed": versioning}),
        )
        .await;
    assert_eq!(created.status, 201, "{algorithm}: {}", created.text);
    created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn key<'a>(inventory: &'a Value, id: &str) -> &'a Value {
    inventory["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["elastic_key_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {inventory}"))
}

fn ids(inventory: &Value) -> Vec<String> {
    inventory["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["elastic_key_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_tenant_inventory_lists_every_key_with_its_quantum_status_on_both_surfaces() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let es256 = create(&api, "ES256", true).await;
    let aes = create(&api, "A256GCM/A256KW", true).await;
    let rsa = create(&api, "RS256", true).await;
    let aes128 = create(&api, "A128GCM/dir", true).await;
    let hmac = create(&api, "HS256", false).await;
    let rotated = api
        .post_bytes(&format!("/elastickey/{es256}/materialkey"), b"")
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let before = time::OffsetDateTime::now_utc();
    let used = api
        .post_bytes(&format!("/elastickey/{aes}/encrypt"), b"x")
        .await;
    assert_eq!(used.status, 200, "{}", used.text);

    for surface in [Surface::Service, Surface::Browser] {
        let client = kms.api(surface).await;
        let reply = client.get("/crypto-inventory").await;
        assert_eq!(reply.status, 200, "{surface:?}: {}", reply.text);
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        let inventory = reply.json();
        assert_eq!(inventory["scope"], "tenant");
        assert_eq!(
            inventory["keys"].as_array().unwrap().len(),
            5,
            "{inventory}"
        );

        let ec = key(&inventory, &es256);
        assert_eq!(ec["algorithm"], "ES256");
        assert_eq!(ec["purpose"], "signing");
        assert_eq!(ec["key_type"], "EC");
        assert_eq!(ec["key_size_bits"], 256);
        assert_eq!(ec["curve"], "secp256r1");
        assert_eq!(ec["versions"], 2);
        assert_eq!(ec["rotation_policy"], "manual");
        assert_eq!(ec["status"], "active");
        assert_eq!(ec["quantum_vulnerable"], true);
        assert_eq!(ec["quantum_status"], "vulnerable");
        assert_eq!(ec["nist_quantum_security_level"], 0);
        assert_eq!(ec["tenant_name"], kms.user.tenants[0].as_str());
        assert_eq!(ec["last_used_at"], Value::Null, "never used");
        assert!(ec["created_at"].as_str().unwrap().contains('T'));

        let sym = key(&inventory, &aes);
        assert_eq!(sym["quantum_vulnerable"], false);
        assert_eq!(sym["key_type"], "oct");
        assert_eq!(sym["key_size_bits"], 256);
        assert_eq!(sym["versions"], 1);
        assert_eq!(sym["purpose"], "encryption");
        let last = time::OffsetDateTime::parse(
            sym["last_used_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(
            last <= before && before - last < time::Duration::minutes(1),
            "last use {last} is the minute of the encrypt ({before})"
        );

        assert_eq!(key(&inventory, &rsa)["quantum_vulnerable"], true);
        assert_eq!(key(&inventory, &rsa)["key_size_bits"], 2048);
        let small = key(&inventory, &aes128);
        assert_eq!(small["quantum_vulnerable"], false);
        assert!(
            small["notes"][0].as_str().unwrap().contains("Grover"),
            "{small}"
        );
        assert_eq!(key(&inventory, &hmac)["rotation_policy"], "none");

        let totals = &inventory["totals"];
        assert_eq!(totals["keys"], 5);
        assert_eq!(totals["quantum_vulnerable"], 2);
        assert_eq!(totals["quantum_resistant"], 3);
        assert_eq!(totals["quantum_unknown"], 0);
        assert_eq!(
            totals["by_algorithm"],
            json!([
                {"algorithm": "A128GCM/dir", "keys": 1, "quantum_vulnerable": false},
                {"algorithm": "A256GCM/A256KW", "keys": 1, "quantum_vulnerable": false},
                {"algorithm": "ES256", "keys": 1, "quantum_vulnerable": true},
                {"algorithm": "HS256", "keys": 1, "quantum_vulnerable": false},
                {"algorithm": "RS256", "keys": 1, "quantum_vulnerable": true},
            ])
        );
    }

    // The last use reaches the database with the flush (what the background task and a stop do).
    let written = cryptoutil_kms::inventory::flush_last_use(kms.store(), kms.keys().last_use())
        .await
        .unwrap();
    assert_eq!(written, 1);
    assert_eq!(kms.keys().last_use().pending(), 0);
    let after = api.get("/crypto-inventory").await.json();
    assert!(key(&after, &aes)["last_used_at"].is_string(), "{after}");
    kms.stop().await;
}

#[tokio::test]
async fn the_inventory_needs_kms_admin_and_never_shows_another_tenant() {
    let kms = Kms::dev().await;
    let tenant = kms.user.tenants[0].clone();
    let mine = create(&kms.api(Surface::Service).await, "ES384", true).await;

    // Every scope but kms:admin (all fine scopes and both coarse ones): refused, naming it.
    let mut almost: Vec<&str> = cryptoutil_kms::scopes::ALL
        .iter()
        .copied()
        .filter(|s| *s != cryptoutil_kms::scopes::ADMIN)
        .collect();
    almost.sort_unstable();
    let writer = kms.add_user(&almost, &[&tenant], true).await;
    for surface in [Surface::Service, Surface::Browser] {
        let reply = kms
            .api_as(surface, Some(&writer))
            .await
            .get("/crypto-inventory")
            .await;
        reply.assert_problem(403, "kms:admin");
        assert_eq!(reply.json()["scope"], "kms:admin");
    }
    let anonymous = kms
        .api_as(Surface::Service, None)
        .await
        .get("/crypto-inventory")
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);

    // An admin of another tenant sees only that tenant's keys, and the first admin only theirs.
    let other_tenant = name("other-tenant");
    let other = kms.add_user(&["kms:admin"], &[&other_tenant], true).await;
    let other_api = kms.api_as(Surface::Service, Some(&other)).await;
    let theirs = create(&other_api, "A256GCM/dir", true).await;
    let seen_by_other = other_api.get("/crypto-inventory").await.json();
    assert_eq!(ids(&seen_by_other), vec![theirs.clone()]);
    assert_eq!(
        seen_by_other["keys"][0]["tenant_name"],
        other_tenant.as_str()
    );
    let seen_by_me = kms
        .api(Surface::Service)
        .await
        .get("/crypto-inventory")
        .await
        .json();
    assert_eq!(ids(&seen_by_me), vec![mine.clone()]);

    // A query parameter it does not know, or an unknown format: 400.
    let api = kms.api(Surface::Service).await;
    api.get("/crypto-inventory?format=xml")
        .await
        .assert_problem(400, "format");
    api.get("/crypto-inventory?size=3")
        .await
        .assert_problem(400, "size");

    // The admin listener lists both tenants, each key naming its tenant.
    let system = kms.get_admin("/admin/v1/crypto-inventory").await;
    assert_eq!(system.status, 200, "{}", system.text);
    let system = system.json();
    assert_eq!(system["scope"], "system");
    let all = ids(&system);
    assert!(all.contains(&mine) && all.contains(&theirs), "{system}");
    assert_eq!(key(&system, &mine)["tenant_name"], tenant.as_str());
    assert_eq!(key(&system, &theirs)["tenant_name"], other_tenant.as_str());
    assert_eq!(
        key(&system, &theirs)["tenant_id"],
        kms.tenant_id(&other_tenant).await.0.to_string().as_str()
    );
    assert!(system["totals"]["quantum_vulnerable"].as_u64().unwrap() >= 1);
    kms.get_admin("/admin/v1/crypto-inventory?format=nope")
        .await
        .assert_problem(400, "format");
    kms.stop().await;
}

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cyclonedx")
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The official CycloneDX 1.6 JSON schema with the two schemas it references, offline, with
/// format checks (`date-time`, …) on.
fn cyclonedx_validator() -> jsonschema::Validator {
    let dir = schema_dir();
    let bom = read_json(dir.join("bom-1.6.schema.json"));
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            read_json(dir.join("spdx.schema.json")),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            read_json(dir.join("jsf-0.82.schema.json")),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(&bom)
        .unwrap()
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_cbom_is_valid_cyclonedx_1_6_and_the_check_can_fail() {
    let validator = cyclonedx_validator();
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let mut created = Vec::new();
    for algorithm in [
        "ES256",
        "EdDSA",
        "PS384",
        "HS512",
        "A256GCM/A256KW",
        "A128CBC-HS256/dir",
        "A256GCM/ECDH-ES+A256KW",
        "A192GCM/A192GCMKW",
    ] {
        created.push((algorithm, create(&api, algorithm, true).await));
    }
    // A disabled key is "suspended".
    let disabled = &created[0].1;
    let put = api
        .put_json(
            &format!("/elastickey/{disabled}"),
            &json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);

    let by_query = api.get("/crypto-inventory?format=cyclonedx").await;
    assert_eq!(by_query.status, 200, "{}", by_query.text);
    assert_eq!(
        by_query.content_type.as_deref(),
        Some("application/vnd.cyclonedx+json; version=1.6")
    );
    let bom = by_query.json();
    let found = errors(&validator, &bom);
    assert!(found.is_empty(), "{found:#?}\n{bom:#}");

    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && Uuid::parse_str(&serial[9..]).is_ok(),
        "{serial}"
    );
    assert!(bom["metadata"]["timestamp"].is_string());
    assert_eq!(
        bom["metadata"]["tools"]["components"][0]["name"],
        "cryptoutil"
    );
    let components = bom["components"].as_array().unwrap();
    assert!(
        components
            .iter()
            .all(|c| c["type"] == "cryptographic-asset")
    );
    let keys: Vec<&Value> = components
        .iter()
        .filter(|c| c["cryptoProperties"]["assetType"] == "related-crypto-material")
        .collect();
    assert_eq!(keys.len(), created.len());
    let refs: Vec<&str> = components
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    for (algorithm, id) in &created {
        let component = keys
            .iter()
            .find(|c| c["cryptoProperties"]["relatedCryptoMaterialProperties"]["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{algorithm} {id}"));
        let material = &component["cryptoProperties"]["relatedCryptoMaterialProperties"];
        let algorithm_ref = material["algorithmRef"].as_str().unwrap();
        assert!(
            refs.contains(&algorithm_ref),
            "{algorithm}: {algorithm_ref}"
        );
        assert!(material["creationDate"].is_string());
        let expected_type = if [
            "HS512",
            "A256GCM/A256KW",
            "A128CBC-HS256/dir",
            "A192GCM/A192GCMKW",
        ]
        .contains(algorithm)
        {
            "secret-key"
        } else {
            "private-key"
        };
        assert_eq!(material["type"], expected_type, "{algorithm}");
        let expected_state = if id == disabled {
            "suspended"
        } else {
            "active"
        };
        assert_eq!(material["state"], expected_state, "{algorithm}");
    }
    let algorithm = |name: &str| {
        components
            .iter()
            .find(|c| c["bom-ref"] == format!("crypto/algorithm/{name}"))
            .unwrap_or_else(|| panic!("algorithm {name} in the CBOM"))
            .clone()
    };
    let es256 = algorithm("ES256");
    let props = &es256["cryptoProperties"]["algorithmProperties"];
    assert_eq!(props["primitive"], "signature");
    assert_eq!(props["curve"], "secp256r1");
    assert_eq!(props["nistQuantumSecurityLevel"], 0);
    assert_eq!(props["executionEnvironment"], "software-plain-ram");
    assert_eq!(
        props["cryptoFunctions"],
        json!(["keygen", "sign", "verify"])
    );
    assert_eq!(es256["cryptoProperties"]["oid"], "1.2.840.10045.4.3.2");
    let a256kw = algorithm("A256KW");
    assert_eq!(
        a256kw["cryptoProperties"]["algorithmProperties"]["nistQuantumSecurityLevel"],
        5
    );
    assert_eq!(
        a256kw["cryptoProperties"]["algorithmProperties"]["parameterSetIdentifier"],
        "256"
    );
    // JWE keys name both algorithms: key management and content encryption.
    algorithm("A256GCM");
    algorithm("A128CBC-HS256");

    // The Accept header chooses the CBOM too, on the browser surface and the admin listener.
    let accept = kms
        .http()
        .get(kms.public_url("/service/api/v1/crypto-inventory"))
        .basic_auth(&kms.user.username, Some(&kms.user.password))
        .header("accept", "application/vnd.cyclonedx+json")
        .send()
        .await
        .unwrap();
    assert_eq!(accept.status(), 200);
    let by_accept: Value = accept.json().await.unwrap();
    assert_eq!(by_accept["specVersion"], "1.6");
    assert_ne!(
        by_accept["serialNumber"], bom["serialNumber"],
        "a serial per document"
    );
    let system = kms
        .get_admin("/admin/v1/crypto-inventory?format=cyclonedx")
        .await;
    assert_eq!(system.status, 200, "{}", system.text);
    let system = system.json();
    let found = errors(&validator, &system);
    assert!(found.is_empty(), "{found:#?}");

    // The check can fail: documents that break the schema in different places are refused.
    let mut broken = Vec::new();
    let mut bad = bom.clone();
    bad["specVersion"] = json!(1.6);
    broken.push(("specVersion as a number", bad));
    let mut bad = bom.clone();
    bad["serialNumber"] = json!("not-a-urn");
    broken.push(("serial number", bad));
    let mut bad = bom.clone();
    bad["components"][0]["cryptoProperties"]["assetType"] = json!("key");
    broken.push(("asset type", bad));
    let mut bad = bom.clone();
    let last = components.len() - 1;
    bad["components"][last]["cryptoProperties"]["relatedCryptoMaterialProperties"]["state"] =
        json!("on");
    broken.push(("key state", bad));
    let mut bad = bom.clone();
    bad["components"][last]["cryptoProperties"]["relatedCryptoMaterialProperties"]["creationDate"] =
        json!("yesterday");
    broken.push(("creation date format", bad));
    let mut bad = bom.clone();
    bad["components"][0]["cryptoProperties"]["algorithmProperties"]["nistQuantumSecurityLevel"] =
        json!(7);
    broken.push(("quantum level out of range", bad));
    let mut bad = bom.clone();
    bad["components"][0]["cryptoProperties"]["surprise"] = json!(true);
    broken.push(("unknown member", bad));
    for (what, doc) in broken {
        assert!(!errors(&validator, &doc).is_empty(), "{what} was accepted");
    }
    kms.stop().await;
}
