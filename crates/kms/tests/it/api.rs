//! The KMS over HTTPS: a real server on free ports with the demo CA, driven through both API
//! surfaces, on SQLite and (where the environment provides it) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Kms, Surface, postgres_url, shares};
use std::time::Duration;

use cryptoutil_jose::{ContentEncryption, JweAlgorithm, Jwk, jwe};
use serde_json::{Value, json};
use uuid::Uuid;

fn name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

/// Every operation of SPEC §3.2 on one surface, in the order a user would try them.
async fn lifecycle(kms: &Kms, surface: Surface) {
    let api = kms.api(surface).await;

    // Create with the default algorithm, then read it back.
    let key_name = name("lifecycle");
    let created = api
        .post_json(
            "/elastickey",
            &json!({"name": key_name, "description": "d1"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.json();
    assert_eq!(key["algorithm"], "A256GCM/A256KW");
    assert_eq!(key["status"], "active");
    assert_eq!(key["versioning_allowed"], true);
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    assert!(
        created
            .location
            .as_deref()
            .unwrap()
            .ends_with(&format!("elastickey/{id}"))
    );
    let got = api.get(&format!("/elastickey/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], key_name.as_str());

    // List: filter by name finds exactly it; paging reports totals.
    let listed = api
        .get(&format!("/elastickeys?names={key_name}&size=5"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let list = listed.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["size"], 5);
    assert_eq!(list["items"][0]["elastic_key_id"], id.as_str());

    // Encrypt / decrypt, with and without context.
    let jwe_text = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"hello kms")
        .await;
    assert_eq!(jwe_text.status, 200, "{}", jwe_text.text);
    assert_eq!(jwe_text.content_type.as_deref(), Some("application/jose"));
    assert_eq!(jwe_text.text.split('.').count(), 5);
    let clear = api
        .post_bytes(
            &format!("/elastickey/{id}/decrypt"),
            jwe_text.text.as_bytes(),
        )
        .await;
    assert_eq!(clear.status, 200, "{}", clear.text);
    assert_eq!(clear.body, b"hello kms");

    let bound = api
        .post_bytes(
            &format!("/elastickey/{id}/encrypt?context=order%3D42"),
            b"ctx",
        )
        .await;
    assert_eq!(bound.status, 200);
    let ok = api
        .post_bytes(
            &format!("/elastickey/{id}/decrypt?context=order%3D42"),
            bound.text.as_bytes(),
        )
        .await;
    assert_eq!(ok.body, b"ctx");
    for wrong in ["", "?context=order%3D43"] {
        let refused = api
            .post_bytes(
                &format!("/elastickey/{id}/decrypt{wrong}"),
                bound.text.as_bytes(),
            )
            .await;
        refused.assert_problem(400, "context");
    }

    // Rotate: a new version encrypts; the old ciphertext still decrypts.
    let rotated = api
        .post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let material = rotated.json();
    let new_mid = material["material_key_id"].as_str().unwrap().to_owned();
    assert!(
        material.get("public_jwk").is_none(),
        "symmetric keys have no public JWK"
    );
    let newer = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"v2")
        .await;
    let header = jwe::peek_header(&newer.text).unwrap();
    assert_eq!(header.kid(), Some(new_mid.as_str()));
    let old = api
        .post_bytes(
            &format!("/elastickey/{id}/decrypt"),
            jwe_text.text.as_bytes(),
        )
        .await;
    assert_eq!(old.body, b"hello kms");

    // Material key reads: two versions, newest first, never secret material.
    let materials = api.get(&format!("/elastickey/{id}/materialkeys")).await;
    let materials = materials.json();
    assert_eq!(materials["total"], 2);
    assert_eq!(materials["items"][0]["material_key_id"], new_mid.as_str());
    let one = api
        .get(&format!("/elastickey/{id}/materialkey/{new_mid}"))
        .await;
    assert_eq!(one.status, 200);
    assert!(
        !one.text.contains("\"k\""),
        "no secret material in {}",
        one.text
    );
    let all = api.get("/materialkeys?size=1000").await;
    assert!(all.json()["total"].as_u64().unwrap() >= 2);

    // Update: description, then disable — decrypt still works, encrypt does not.
    let updated = api
        .put_json(
            &format!("/elastickey/{id}"),
            &json!({"description": "d2", "status": "disabled"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["description"], "d2");
    assert_eq!(updated.json()["status"], "disabled");
    api.post_bytes(&format!("/elastickey/{id}/encrypt"), b"x")
        .await
        .assert_problem(409, "disabled");
    api.post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
        .await
        .assert_problem(409, "disabled");
    let still = api
        .post_bytes(&format!("/elastickey/{id}/decrypt"), newer.text.as_bytes())
        .await;
    assert_eq!(still.body, b"v2");

    // Delete schedules a purge; no crypto until restored; restore with PUT.
    let deleted = api.delete(&format!("/elastickey/{id}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json()["status"], "pending_delete");
    assert!(deleted.json()["purge_after"].is_string());
    api.post_bytes(&format!("/elastickey/{id}/decrypt"), newer.text.as_bytes())
        .await
        .assert_problem(409, "pending_delete");
    let restored = api
        .put_json(&format!("/elastickey/{id}"), &json!({"status": "active"}))
        .await;
    assert_eq!(restored.json()["status"], "active");
    assert!(restored.json().get("purge_after").is_none());
    let again = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"back")
        .await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn every_operation_works_on_the_service_surface() {
    let kms = Kms::dev().await;
    lifecycle(&kms, Surface::Service).await;
    kms.stop().await;
}

#[tokio::test]
async fn every_operation_works_on_the_browser_surface_with_a_csrf_token() {
    let kms = Kms::dev().await;
    lifecycle(&kms, Surface::Browser).await;
    kms.stop().await;
}

#[tokio::test]
async fn signing_keys_sign_and_verify_and_refuse_tampering() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    for alg in ["ES256", "RS256", "EdDSA", "HS384", "PS384"] {
        let created = api
            .post_json("/elastickey", &json!({"name": name(alg), "algorithm": alg}))
            .await;
        assert_eq!(created.status, 201, "{alg}: {}", created.text);
        let id = created.json()["elastic_key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let jws = api
            .post_bytes(&format!("/elastickey/{id}/sign"), b"payload")
            .await;
        assert_eq!(jws.status, 200, "{alg}: {}", jws.text);
        let verified = api
            .post_bytes(&format!("/elastickey/{id}/verify"), jws.text.as_bytes())
            .await;
        assert_eq!(verified.status, 200, "{alg}: {}", verified.text);
        assert_eq!(verified.body, b"payload");
        let mut tampered = jws.text.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        api.post_bytes(&format!("/elastickey/{id}/verify"), &tampered)
            .await
            .assert_problem(400, "invalid_signature");
        // Wrong purpose.
        api.post_bytes(&format!("/elastickey/{id}/encrypt"), b"x")
            .await
            .assert_problem(409, "signing");
        if alg != "HS384" {
            let materials = api
                .get(&format!("/elastickey/{id}/materialkeys"))
                .await
                .json();
            let public = &materials["items"][0]["public_jwk"];
            assert!(
                public.is_object(),
                "{alg}: asymmetric keys show their public JWK"
            );
            assert!(public.get("d").is_none(), "{alg}: never the private part");
        }
    }
    kms.stop().await;
}

#[tokio::test]
async fn data_keys_are_generated_under_the_elastic_key_and_imports_are_used() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let created = api
        .post_json(
            "/elastickey",
            &json!({"name": name("dk"), "algorithm": "A256GCM/dir", "import_allowed": true}),
        )
        .await;
    let id = created.json()["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let generated = api
        .post_bytes(
            &format!("/elastickey/{id}/generate?alg=EC/P384&include_plaintext=true&context=app"),
            b"",
        )
        .await;
    assert_eq!(generated.status, 200, "{}", generated.text);
    let body = generated.json();
    assert_eq!(body["jwk"]["crv"], "P-384");
    let clear = api
        .post_bytes(
            &format!("/elastickey/{id}/decrypt?context=app"),
            body["encrypted_jwk"].as_str().unwrap().as_bytes(),
        )
        .await;
    assert_eq!(clear.status, 200, "{}", clear.text);
    let unwrapped: Value = serde_json::from_slice(&clear.body).unwrap();
    assert_eq!(unwrapped, body["jwk"]);
    let without = api
        .post_bytes(&format!("/elastickey/{id}/generate?alg=oct/256"), b"")
        .await
        .json();
    assert!(without.get("jwk").is_none());
    api.post_bytes(&format!("/elastickey/{id}/generate?alg=oct/64"), b"")
        .await
        .assert_problem(400, "oct/256");
    api.post_bytes(&format!("/elastickey/{id}/generate"), b"")
        .await
        .assert_problem(400, "alg");

    // Import a caller's AES-256 key: new encryptions use it, so the caller can decrypt locally.
    let mine = Jwk::generate_oct(32).unwrap();
    let imported = api
        .post_bytes(
            &format!("/elastickey/{id}/import"),
            mine.to_json(true).as_bytes(),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    assert!(imported.json()["import_date"].is_string());
    let token = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"mine")
        .await
        .text;
    let out = jwe::decrypt(&mine, JweAlgorithm::Dir, ContentEncryption::A256GCM, &token).unwrap();
    assert_eq!(out.plaintext, b"mine");
    // A key that does not fit the algorithm, or a public-only key, is refused.
    let small = Jwk::generate_oct(16).unwrap();
    api.post_bytes(
        &format!("/elastickey/{id}/import"),
        small.to_json(true).as_bytes(),
    )
    .await
    .assert_problem(400, "JWK");
    let no_import = api
        .post_json("/elastickey", &json!({"name": name("noimport")}))
        .await
        .json();
    let no_import = no_import["elastic_key_id"].as_str().unwrap();
    api.post_bytes(
        &format!("/elastickey/{no_import}/import"),
        mine.to_json(true).as_bytes(),
    )
    .await
    .assert_problem(409, "import");
    kms.stop().await;
}

#[tokio::test]
async fn bad_input_gets_problem_json_and_changes_nothing() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let a = api
        .post_json("/elastickey", &json!({"name": name("a")}))
        .await
        .json();
    let a = a["elastic_key_id"].as_str().unwrap().to_owned();
    let b = api
        .post_json("/elastickey", &json!({"name": name("b")}))
        .await
        .json();
    let b = b["elastic_key_id"].as_str().unwrap().to_owned();
    let before = api.get("/elastickeys?size=1000").await.json()["total"].clone();

    api.post_raw("/elastickey", "application/json", b"{not json")
        .await
        .assert_problem(400, "");
    api.post_json("/elastickey", &json!({"name": name("x"), "colour": "red"}))
        .await
        .assert_problem(400, "colour");
    api.post_json(
        "/elastickey",
        &json!({"name": name("x"), "algorithm": "RSA1_5"}),
    )
    .await
    .assert_problem(400, "RSA1_5");
    api.post_json("/elastickey", &json!({"name": ""}))
        .await
        .assert_problem(400, "name");
    let dup = api.get(&format!("/elastickey/{a}")).await.json()["name"].clone();
    api.post_json("/elastickey", &json!({"name": dup}))
        .await
        .assert_problem(409, "");
    api.post_bytes(
        &format!("/elastickey/{a}/encrypt"),
        &vec![0u8; 2 * 1024 * 1024 + 1],
    )
    .await
    .assert_problem(413, "");
    api.get("/elastickey/not-a-uuid")
        .await
        .assert_problem(400, "UUID");
    api.get(&format!(
        "/elastickey/{}",
        Uuid::now_v7().to_string().to_uppercase()
    ))
    .await
    .assert_problem(400, "UUID");
    api.get(&format!("/elastickey/{}", Uuid::now_v7()))
        .await
        .assert_problem(404, "");
    for query in [
        "size=0",
        "size=1001",
        "page=-1",
        "sort=secret",
        "sort=name:sideways",
        "bogus=1",
    ] {
        api.get(&format!("/elastickeys?{query}"))
            .await
            .assert_problem(400, "");
    }
    // A JWE for another key, a tampered one, and garbage.
    let for_b = api
        .post_bytes(&format!("/elastickey/{b}/encrypt"), b"for b")
        .await
        .text;
    api.post_bytes(&format!("/elastickey/{a}/decrypt"), for_b.as_bytes())
        .await
        .assert_problem(400, "kid");
    let for_a = api
        .post_bytes(&format!("/elastickey/{a}/encrypt"), b"for a")
        .await
        .text;
    let mut parts: Vec<String> = for_a.split('.').map(str::to_owned).collect();
    parts[3] = if parts[3].starts_with('A') {
        format!("B{}", &parts[3][1..])
    } else {
        format!("A{}", &parts[3][1..])
    };
    api.post_bytes(
        &format!("/elastickey/{a}/decrypt"),
        parts.join(".").as_bytes(),
    )
    .await
    .assert_problem(400, "");
    api.post_bytes(&format!("/elastickey/{a}/decrypt"), b"garbage")
        .await
        .assert_problem(400, "JWE");
    api.post_bytes(&format!("/elastickey/{a}/decrypt"), &[0xff, 0xfe])
        .await
        .assert_problem(400, "UTF-8");
    api.put_json(&format!("/elastickey/{a}"), &json!({"status": "deleted"}))
        .await
        .assert_problem(400, "DELETE");
    api.post_bytes(&format!("/elastickey/{a}/sign"), b"x")
        .await
        .assert_problem(409, "encryption");
    api.get("/no/such/route").await.assert_problem(404, "");
    api.put_json("/elastickeys", &json!({}))
        .await
        .assert_problem(405, "");

    let after = api.get("/elastickeys?size=1000").await.json()["total"].clone();
    assert_eq!(before, after, "bad requests created nothing");
    let still = api
        .post_bytes(&format!("/elastickey/{a}/decrypt"), for_a.as_bytes())
        .await;
    assert_eq!(still.body, b"for a");
    kms.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_swagger_ui_is_served_offline() {
    let kms = Kms::dev().await;
    let doc = kms.get_public("/ui/swagger/doc.json").await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let spec_routes = [
        ("post", "/elastickey"),
        ("get", "/elastickey/{id}"),
        ("get", "/elastickeys"),
        ("put", "/elastickey/{id}"),
        ("delete", "/elastickey/{id}"),
        ("post", "/elastickey/{id}/materialkey"),
        ("post", "/elastickey/{id}/import"),
        ("get", "/elastickey/{id}/materialkey/{mid}"),
        ("get", "/elastickey/{id}/materialkeys"),
        ("get", "/materialkeys"),
        ("post", "/elastickey/{id}/encrypt"),
        ("post", "/elastickey/{id}/decrypt"),
        ("post", "/elastickey/{id}/sign"),
        ("post", "/elastickey/{id}/verify"),
        ("post", "/elastickey/{id}/generate"),
    ];
    let mut documented = 0;
    for prefix in ["/service/api/v1", "/browser/api/v1"] {
        for (method, path) in spec_routes {
            let full = format!("{prefix}{path}");
            assert!(
                paths.get(&full).and_then(|p| p.get(method)).is_some(),
                "{method} {full} is documented"
            );
        }
    }
    // And every documented operation is really served (not 404/405) — the router and the
    // document come from the same handlers.
    let api = kms.api(Surface::Service).await;
    let browser = kms.api(Surface::Browser).await;
    let some_id = Uuid::now_v7().to_string();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            documented += 1;
            let concrete = path.replace("{id}", &some_id).replace("{mid}", &some_id);
            let client = if concrete.starts_with("/browser") {
                &browser
            } else {
                &api
            };
            let relative = concrete
                .trim_start_matches("/service/api/v1")
                .trim_start_matches("/browser/api/v1");
            let response = client.request(method, relative).await;
            assert!(
                response.status != 405
                    && !(response.status == 404 && response.text.contains("no such resource")),
                "{method} {path} is served: {} {}",
                response.status,
                response.text
            );
        }
    }
    assert!(documented >= 2 * spec_routes.len());
    let ui = kms.get_public("/ui/swagger/").await;
    assert_eq!(ui.status, 200);
    assert!(ui.text.contains("swagger"), "{}", ui.text);
    kms.stop().await;
}

/// The statuses the document declares for `method path` (a path of the served document).
fn documented_statuses(doc: &Value, method: &str, path: &str) -> Vec<String> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .keys()
        .cloned()
        .collect()
}

/// What `cargo xtask api-fuzz` (schemathesis) found: answers the document did not declare. Every
/// operation of both surfaces may answer 400, 401, 403, 429 and 503 (and 404 with a path
/// parameter, 413 with a body, 415 with a JSON body), always as problem+json of the `Problem`
/// schema; and each status below is really given and declared.
#[tokio::test]
async fn the_openapi_document_declares_every_answer_the_api_gives() {
    let kms = Kms::dev().await;
    let doc = kms.get_public("/ui/swagger/doc.json").await.json();
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{problem}"
        );
    }
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_none() {
                continue; // GET /browser/api/v1/csrf-token: no authentication, no input
            }
            operations += 1;
            let mut expected = vec!["400", "401", "403", "429", "503"];
            if path.contains('{') {
                expected.push("404");
            }
            if let Some(body) = op.get("requestBody") {
                expected.push("413");
                if body["content"].get("application/json").is_some() {
                    expected.push("415");
                }
            }
            for status in expected {
                let response = &op["responses"][status];
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} declares {status} as a problem: {response}"
                );
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]
                            .get("application/problem+json")
                            .is_some(),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
        }
    }
    assert!(operations >= 30, "{operations}");

    // Raw bodies are strings of octets, compact JOSE a dotted string: not JSON arrays.
    let encrypt = &doc["paths"]["/service/api/v1/elastickey/{id}/encrypt"]["post"];
    let plaintext = &encrypt["requestBody"]["content"]["application/octet-stream"]["schema"];
    assert_eq!(plaintext["type"], "string", "{plaintext}");
    assert_eq!(plaintext["format"], "binary", "{plaintext}");
    let jwe_schema = &encrypt["responses"]["200"]["content"]["application/jose"]["schema"];
    assert_eq!(jwe_schema["type"], "string", "{jwe_schema}");
    let size = doc["paths"]["/service/api/v1/elastickeys"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "size")
        .unwrap()
        .clone();
    assert_eq!(size["schema"]["maximum"], 1000, "{size}");
    assert_eq!(size["schema"]["minimum"], 1, "{size}");

    // A signing key asked to decrypt and an encryption key asked to verify: 409, declared.
    for surface in [Surface::Service, Surface::Browser] {
        let api = kms.api(surface).await;
        let prefix = match surface {
            Surface::Service => "/service/api/v1",
            Surface::Browser => "/browser/api/v1",
        };
        let create = |algorithm: &'static str| {
            let api = &api;
            async move {
                let key = api
                    .post_json(
                        "/elastickey",
                        &json!({"name": name("kind"), "algorithm": algorithm}),
                    )
                    .await;
                assert_eq!(key.status, 201, "{}", key.text);
                key.json()["elastic_key_id"].as_str().unwrap().to_owned()
            }
        };
        let signing = create("ES256").await;
        let encryption = create("A256GCM/A256KW").await;
        let jws = api
            .post_bytes(&format!("/elastickey/{signing}/sign"), b"x")
            .await
            .text;
        let jwe = api
            .post_bytes(&format!("/elastickey/{encryption}/encrypt"), b"x")
            .await
            .text;
        for token in [&jws, &jwe] {
            let segments = token.split('.').count();
            assert!(segments == 3 || segments == 5, "{token}");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{token}"
            );
        }
        api.post_raw(
            &format!("/elastickey/{signing}/decrypt"),
            "application/jose",
            jwe.as_bytes(),
        )
        .await
        .assert_problem(409, "signing");
        api.post_raw(
            &format!("/elastickey/{encryption}/verify"),
            "application/jose",
            jws.as_bytes(),
        )
        .await
        .assert_problem(409, "encryption");
        for operation in ["decrypt", "verify"] {
            let path = format!("{prefix}/elastickey/{{id}}/{operation}");
            let statuses = documented_statuses(&doc, "post", &path);
            assert!(statuses.contains(&"409".to_owned()), "{path}: {statuses:?}");
        }
    }
    for (method, path) in [
        ("put", "/service/api/v1/admin/realm-users/{username}"),
        (
            "put",
            "/service/api/v1/admin/realm-users/{username}/password",
        ),
    ] {
        let statuses = documented_statuses(&doc, method, path);
        assert!(statuses.contains(&"409".to_owned()), "{path}: {statuses:?}");
    }
    kms.stop().await;
}

#[tokio::test]
async fn barrier_rotation_through_the_admin_api_keeps_old_ciphertexts_readable() {
    let kms = Kms::dev().await;
    let api = kms.api(Surface::Service).await;
    let key = api
        .post_json("/elastickey", &json!({"name": name("rot")}))
        .await
        .json();
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    let before = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"before")
        .await
        .text;
    let root = kms.post_admin("/admin/v1/barrier/rotate-root").await;
    assert_eq!(root.status, 200, "{}", root.text);
    let inter = kms
        .post_admin("/admin/v1/barrier/rotate-intermediate")
        .await;
    assert_eq!(inter.status, 200, "{}", inter.text);
    let key2 = api
        .post_json("/elastickey", &json!({"name": name("rot2")}))
        .await
        .json();
    let id2 = key2["elastic_key_id"].as_str().unwrap().to_owned();
    let after = api
        .post_bytes(&format!("/elastickey/{id2}/encrypt"), b"after")
        .await
        .text;
    assert_eq!(
        api.post_bytes(&format!("/elastickey/{id}/decrypt"), before.as_bytes())
            .await
            .body,
        b"before"
    );
    assert_eq!(
        api.post_bytes(&format!("/elastickey/{id2}/decrypt"), after.as_bytes())
            .await
            .body,
        b"after"
    );
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    kms.stop().await;
}

#[tokio::test]
async fn restart_with_the_same_shares_keeps_keys_and_wrong_shares_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("kms.db").display());
    let files = shares(dir.path(), "good", 3);
    let kms = Kms::with_shares(&db, 2, &files).await.unwrap();
    let api = kms.api(Surface::Service).await;
    let owner = kms.user.clone();
    let key = api
        .post_json("/elastickey", &json!({"name": name("persist")}))
        .await
        .json();
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    let token = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"kept")
        .await
        .text;
    kms.stop().await;

    // Any two of the three shares unseal.
    for pick in [[0usize, 1], [1, 2], [0, 2]] {
        let subset: Vec<_> = (0..3)
            .map(|i| {
                if pick.contains(&i) {
                    files[i].clone()
                } else {
                    dir.path().join("missing")
                }
            })
            .collect();
        let kms = Kms::with_shares(&db, 2, &subset).await.unwrap();
        let api = kms.api_as(Surface::Service, Some(&owner)).await;
        let out = api
            .post_bytes(&format!("/elastickey/{id}/decrypt"), token.as_bytes())
            .await;
        assert_eq!(out.body, b"kept", "shares {pick:?}");
        kms.stop().await;
    }

    let size_before = std::fs::metadata(dir.path().join("kms.db")).unwrap().len();
    let wrong = shares(dir.path(), "wrong", 3);
    let refused = Kms::with_shares(&db, 2, &wrong).await;
    let message = refused.err().unwrap();
    assert!(message.contains("unseal"), "{message}");
    assert_eq!(
        std::fs::metadata(dir.path().join("kms.db")).unwrap().len(),
        size_before
    );
}

#[tokio::test]
async fn two_instances_on_one_postgres_share_keys_across_restarts() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let files = shares(dir.path(), "pg", 3);
    // A fresh database per test: the two instances must agree on its one root key.
    let (one, two) = tokio::join!(
        Kms::with_shares(&url, 2, &files),
        Kms::with_shares(&url, 2, &files)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    let api1 = one.api(Surface::Service).await;
    let owner = one.user.clone();
    let key = api1
        .post_json("/elastickey", &json!({"name": name("pg")}))
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let id = key.json()["elastic_key_id"].as_str().unwrap().to_owned();
    let token = api1
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"shared")
        .await
        .text;
    // The user and tenant made through instance one are known to instance two (database realm).
    let api2 = two.api_as(Surface::Service, Some(&one.user)).await;
    let out = api2
        .post_bytes(&format!("/elastickey/{id}/decrypt"), token.as_bytes())
        .await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_eq!(out.body, b"shared");
    one.stop().await;
    two.stop().await;
    let again = Kms::with_shares(&url, 2, &files).await.unwrap();
    let api = again.api_as(Surface::Service, Some(&owner)).await;
    let out = api
        .post_bytes(&format!("/elastickey/{id}/decrypt"), token.as_bytes())
        .await;
    assert_eq!(out.body, b"shared");
    again.stop().await;
    db.drop().await;
}

/// Polls `attempt` until it gives `Some`, for at most ten seconds.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(found) = attempt().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within ten seconds");
}

#[tokio::test]
async fn key_changes_on_one_instance_reach_the_others_cached_metadata() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = shares(dir.path(), "notify", 2);
    // Cached metadata never expires here: only the other instance's announcement (NOTIFY) can
    // make instance two see a change.
    let forever = |s: &mut cryptoutil_kms::config::KmsSettings| {
        s.keys.metadata_cache_ttl =
            cryptoutil_server::config::HumanDuration(Duration::from_secs(3600));
    };
    let one = Kms::with_shares_and(&db.url, 1, &files, forever)
        .await
        .unwrap();
    let two = Kms::with_shares_and(&db.url, 1, &files, forever)
        .await
        .unwrap();
    let api1 = one.api(Surface::Service).await;
    let api2 = two.api_as(Surface::Service, Some(&one.user)).await;
    let key = api1
        .post_json(
            "/elastickey",
            &json!({"name": name("notify"), "algorithm": "A256GCM/dir"}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let id = key.json()["elastic_key_id"].as_str().unwrap().to_owned();
    let encrypt = format!("/elastickey/{id}/encrypt");
    let first = api2.post_bytes(&encrypt, b"v1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_kid = jwe::peek_header(&first.text)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();

    // A new version made on one: two encrypts with it once the announcement arrives.
    let rotated = api1
        .post_bytes(&format!("/elastickey/{id}/materialkey"), b"")
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    let new_kid = rotated.json()["material_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, first_kid);
    let second = eventually("instance two encrypting with the new version", || async {
        let out = api2.post_bytes(&encrypt, b"v2").await;
        assert_eq!(out.status, 200, "{}", out.text);
        let kid = jwe::peek_header(&out.text)
            .unwrap()
            .kid()
            .map(str::to_owned);
        (kid.as_deref() == Some(new_kid.as_str())).then_some(out.text)
    })
    .await;

    // Disabled on one: two refuses to encrypt, and both decrypt both versions.
    let disabled = api1
        .put_json(&format!("/elastickey/{id}"), &json!({"status": "disabled"}))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    eventually("instance two refusing a disabled key", || async {
        let out = api2.post_bytes(&encrypt, b"v3").await;
        assert!(out.status == 200 || out.status == 409, "{}", out.text);
        (out.status == 409).then_some(())
    })
    .await;
    for api in [&api1, &api2] {
        for (token, clear) in [(&first.text, &b"v1"[..]), (&second, &b"v2"[..])] {
            let out = api
                .post_bytes(&format!("/elastickey/{id}/decrypt"), token.as_bytes())
                .await;
            assert_eq!(out.body, clear, "{}", out.text);
        }
    }
    one.stop().await;
    two.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_database_outage_gives_503_and_degraded_readiness_and_recovers_by_itself() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let proxy = common::TcpProxy::start("127.0.0.1:5432").await;
    let through_proxy = db.url.replacen("127.0.0.1:5432", &proxy.address(), 1);
    let dir = tempfile::tempdir().unwrap();
    let files = shares(dir.path(), "outage", 2);
    let kms = Kms::with_shares_and(&through_proxy, 1, &files, |s| {
        s.database.acquire_timeout =
            cryptoutil_server::config::HumanDuration(std::time::Duration::from_millis(500));
        // Every operation reads the database (a cached key would keep encrypting for up to
        // keys.metadata_cache_ttl of an outage, which is not what this test is about).
        s.keys.metadata_cache_ttl = cryptoutil_server::config::HumanDuration(Duration::ZERO);
    })
    .await
    .unwrap();
    let api = kms.api(Surface::Service).await;
    let key = api
        .post_json("/elastickey", &json!({"name": name("outage")}))
        .await
        .json();
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    let before = api
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"up")
        .await;
    assert_eq!(before.status, 200);

    proxy.down();
    api.post_bytes(&format!("/elastickey/{id}/encrypt"), b"down")
        .await
        .assert_problem(503, "unavailable");
    api.post_json("/elastickey", &json!({"name": name("during")}))
        .await
        .assert_problem(503, "unavailable");
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json()["status"], "degraded");
    assert_eq!(ready.json()["checks"]["database"]["status"], "fail");

    proxy.up().await;
    let mut recovered = None;
    for _ in 0..100 {
        let attempt = api
            .post_bytes(&format!("/elastickey/{id}/decrypt"), before.text.as_bytes())
            .await;
        assert!(
            attempt.status == 200 || attempt.status == 503,
            "never a 500: {}",
            attempt.text
        );
        if attempt.status == 200 {
            recovered = Some(attempt.body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        recovered.as_deref(),
        Some(&b"up"[..]),
        "the pool reconnects by itself"
    );
    let ready = kms.get_admin("/admin/v1/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    kms.stop().await;
    proxy.down();
    db.drop().await;
}
