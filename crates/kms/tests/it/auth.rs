//! Authentication, tenants and scopes over HTTPS (SPEC §3.6–3.7): 401 vs 403, tenant isolation,
//! `X-Tenant-ID`, every route's scope, disabled users and demo seeding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Kms, Surface, TestUser, test_password};
use cryptoutil_kms::repository::DirectoryStore;
use cryptoutil_kms::scopes::{self, ROUTE_SCOPES};
use cryptoutil_kms::server::Seeding;
use serde_json::json;
use uuid::Uuid;

fn name(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401_with_a_challenge_and_look_alike() {
    let kms = Kms::dev().await;
    let anonymous = kms.api_as(Surface::Service, None).await;
    let reply = anonymous.get("/elastickeys").await;
    reply.assert_problem(401, "authentication is required");

    let wrong = TestUser {
        password: "not-the-password".to_owned(),
        ..kms.user.clone()
    };
    let unknown = TestUser {
        username: name("nobody"),
        ..kms.user.clone()
    };
    let disabled = kms
        .add_user(&["kms:admin"], &[&kms.user.tenants[0]], false)
        .await;
    let mut bodies = Vec::new();
    for user in [&wrong, &unknown, &disabled] {
        let reply = kms
            .api_as(Surface::Service, Some(user))
            .await
            .get("/elastickeys")
            .await;
        reply.assert_problem(401, "invalid credentials");
        bodies.push(reply.json());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "no user enumeration: {bodies:?}"
    );
    // The browser surface answers the same.
    kms.api_as(Surface::Browser, Some(&wrong))
        .await
        .get("/elastickeys")
        .await
        .assert_problem(401, "invalid");
    kms.stop().await;
}

#[tokio::test]
async fn tenants_cannot_see_use_or_detect_each_others_keys() {
    let kms = Kms::dev().await;
    isolation(&kms).await;
    kms.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated_on_postgresql_too() {
    let Some(db) = common::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = common::shares(dir.path(), "iso", 2);
    let kms = Kms::with_shares(&db.url, 1, &files).await.unwrap();
    isolation(&kms).await;
    kms.stop().await;
    db.drop().await;
}

/// Tenant B cannot list, read, use or detect tenant A's keys: by id, by name, or through a JWE
/// whose `kid` names them.
async fn isolation(kms: &Kms) {
    let alice = kms.api(Surface::Service).await;
    let key_name = name("secret");
    let key = alice
        .post_json("/elastickey", &json!({"name": key_name}))
        .await
        .json();
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    let jwe = alice
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"alice's")
        .await
        .text;

    let other_tenant = name("tenant");
    let bob_user = kms.add_user(&["kms:admin"], &[&other_tenant], true).await;
    let bob = kms.api_as(Surface::Service, Some(&bob_user)).await;
    let random = Uuid::now_v7();
    // By id: exactly the answer for a key that does not exist.
    let by_id = bob.get(&format!("/elastickey/{id}")).await;
    let none = bob.get(&format!("/elastickey/{random}")).await;
    by_id.assert_problem(404, "no such elastic key");
    assert_eq!(by_id.json()["detail"], none.json()["detail"]);
    // By name and in lists.
    assert_eq!(
        bob.get(&format!("/elastickeys?names={key_name}"))
            .await
            .json()["total"],
        0
    );
    assert_eq!(bob.get("/materialkeys").await.json()["total"], 0);
    // By a JWE whose kid names Alice's material key, presented to Bob's own key.
    let mine = bob
        .post_json("/elastickey", &json!({"name": key_name}))
        .await;
    assert_eq!(mine.status, 201, "the same name is free in another tenant");
    let mine = mine.json()["elastic_key_id"].as_str().unwrap().to_owned();
    bob.post_bytes(&format!("/elastickey/{mine}/decrypt"), jwe.as_bytes())
        .await
        .assert_problem(400, "no usable material key");
    bob.post_bytes(&format!("/elastickey/{id}/decrypt"), jwe.as_bytes())
        .await
        .assert_problem(404, "no such elastic key");
    // Bob cannot pick Alice's tenant either.
    let alice_tenant = kms.tenant_id(&kms.user.tenants[0]).await;
    bob.in_tenant(&alice_tenant.to_string())
        .get(&format!("/elastickey/{id}"))
        .await
        .assert_problem(403, "not one of your tenants");
    // Alice still reads her own.
    assert_eq!(
        alice
            .post_bytes(&format!("/elastickey/{id}/decrypt"), jwe.as_bytes())
            .await
            .body,
        b"alice's"
    );
}

#[tokio::test]
async fn x_tenant_id_selects_among_the_principals_own_tenants() {
    let kms = Kms::dev().await;
    let (first, second) = (name("first"), name("second"));
    let user = kms
        .add_user(&["kms:read", "kms:write"], &[&first, &second], true)
        .await;
    let second_id = kms.tenant_id(&second).await.to_string();
    let default = kms.api_as(Surface::Service, Some(&user)).await;
    let chosen = kms
        .api_as(Surface::Service, Some(&user))
        .await
        .in_tenant(&second_id);
    let key_name = name("k");
    assert_eq!(
        chosen
            .post_json("/elastickey", &json!({"name": key_name}))
            .await
            .status,
        201
    );
    assert_eq!(
        chosen
            .get(&format!("/elastickeys?names={key_name}"))
            .await
            .json()["total"],
        1
    );
    assert_eq!(
        default
            .get(&format!("/elastickeys?names={key_name}"))
            .await
            .json()["total"],
        0,
        "the first tenant is the default"
    );
    let bad = kms
        .api_as(Surface::Service, Some(&user))
        .await
        .in_tenant("not-a-uuid");
    bad.get("/elastickeys")
        .await
        .assert_problem(403, "X-Tenant-ID");
    kms.stop().await;
}

/// A request with a body the route accepts, so the only reason for 403 is the scope.
fn body_for(path: &str) -> Vec<u8> {
    if path == "/elastickey" {
        json!({"name": name("scoped")}).to_string().into_bytes()
    } else if path.ends_with("/import") || path.ends_with("/decrypt") || path.ends_with("/verify") {
        b"x".to_vec()
    } else if path == "/elastickey/{id}" {
        b"{}".to_vec()
    } else {
        b"payload".to_vec()
    }
}

#[tokio::test]
async fn every_route_enforces_exactly_its_scope() {
    // The benchmark echo route is in the table too.
    let kms = Kms::dev_with(|s| s.benchmark.echo = true).await;
    let tenant = kms.user.tenants[0].clone();
    let admin = kms.api(Surface::Service).await;
    let key = admin
        .post_json("/elastickey", &json!({"name": name("target")}))
        .await
        .json();
    let id = key["elastic_key_id"].as_str().unwrap().to_owned();
    let material = admin
        .get(&format!("/elastickey/{id}/materialkeys"))
        .await
        .json()["items"][0]["material_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path, scope) in ROUTE_SCOPES {
        let without: Vec<&str> = scopes::OPERATION_SCOPES
            .iter()
            .copied()
            .filter(|s| s != scope)
            .collect();
        let user = kms.add_user(&without, &[&tenant], true).await;
        let api = kms.api_as(Surface::Service, Some(&user)).await;
        let concrete = path.replace("{id}", &id).replace("{mid}", &material);
        let query = if path.ends_with("/generate") {
            "?alg=oct/256"
        } else {
            ""
        };
        let reply = match *method {
            "get" => api.get(&concrete).await,
            "delete" => api.delete(&concrete).await,
            "put" => api.put_json(&concrete, &json!({})).await,
            _ => {
                api.post_raw(
                    &format!("{concrete}{query}"),
                    "application/json",
                    &body_for(path),
                )
                .await
            }
        };
        reply.assert_problem(403, scope);
        assert_eq!(reply.json()["scope"], *scope, "{method} {path}");
    }
    // Coarse scopes: kms:read cannot write, kms:write cannot read pools.
    let reader = kms.add_user(&["kms:read"], &[&tenant], true).await;
    let reader = kms.api_as(Surface::Service, Some(&reader)).await;
    assert_eq!(reader.get(&format!("/elastickey/{id}")).await.status, 200);
    reader
        .post_bytes(&format!("/elastickey/{id}/encrypt"), b"x")
        .await
        .assert_problem(403, "kms:encrypt");
    kms.stop().await;
}

#[tokio::test]
async fn the_benchmark_echo_route_is_off_by_default_and_authenticated_when_on() {
    let off = Kms::dev().await;
    off.api(Surface::Service)
        .await
        .post_bytes("/echo", b"hello")
        .await
        .assert_problem(404, "");
    off.stop().await;

    let kms = Kms::dev_with(|s| s.benchmark.echo = true).await;
    let reply = kms
        .api(Surface::Service)
        .await
        .post_bytes("/echo", b"hello")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello");
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/octet-stream")
    );
    kms.api_as(Surface::Service, None)
        .await
        .post_bytes("/echo", b"hello")
        .await
        .assert_problem(401, "authentication");
    // Service surface only.
    kms.api(Surface::Browser)
        .await
        .post_bytes("/echo", b"hello")
        .await
        .assert_problem(404, "");
    kms.stop().await;
}

#[tokio::test]
async fn demo_seeding_creates_the_canonical_data_and_the_demo_users_work() {
    let kms = Kms::dev_seeded(Some(Seeding::Demo)).await;
    let user = |username: &str| TestUser {
        username: username.to_owned(),
        password: format!("{username}-password"),
        tenants: Vec::new(),
    };
    let demo_user = kms.api_as(Surface::Service, Some(&user("demo-user"))).await;
    let keys = demo_user.get("/elastickeys?sort=name").await.json();
    assert_eq!(keys["total"], 7);
    let names: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "demo-encryption-aes256",
            "demo-encryption-mlkem768",
            "demo-signing-ec256",
            "demo-signing-ed25519",
            "demo-signing-mldsa65",
            "demo-signing-rsa2048",
            "demo-wrapping-aes256kw"
        ]
    );
    let aes = keys["items"][0]["elastic_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        demo_user
            .get(&format!("/elastickey/{aes}/materialkeys"))
            .await
            .json()["total"],
        3
    );
    let jwe = demo_user
        .post_bytes(&format!("/elastickey/{aes}/encrypt"), b"demo")
        .await;
    assert_eq!(jwe.status, 200, "{}", jwe.text);

    let readonly = kms
        .api_as(Surface::Service, Some(&user("demo-readonly")))
        .await;
    assert_eq!(readonly.get("/elastickeys").await.json()["total"], 7);
    readonly
        .post_json("/elastickey", &json!({"name": name("nope")}))
        .await
        .assert_problem(403, "kms:pool:create");
    let other = kms
        .api_as(Surface::Service, Some(&user("demo-user-2")))
        .await;
    assert_eq!(
        other.get("/elastickeys").await.json()["total"],
        0,
        "demo-tenant-2 sees nothing of demo-tenant"
    );
    other
        .post_bytes(&format!("/elastickey/{aes}/decrypt"), jwe.text.as_bytes())
        .await
        .assert_problem(404, "");
    let wrong = TestUser {
        password: test_password().0.clone(),
        ..user("demo-user")
    };
    kms.api_as(Surface::Service, Some(&wrong))
        .await
        .get("/elastickeys")
        .await
        .assert_problem(401, "invalid");
    kms.stop().await;
}

#[tokio::test]
async fn admins_manage_their_tenants_users_and_every_change_takes_effect_at_once() {
    let kms = Kms::dev().await;
    user_administration(&kms).await;
    kms.stop().await;
}

#[tokio::test]
async fn user_administration_works_the_same_on_postgresql() {
    let Some(db) = common::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = common::shares(dir.path(), "users", 2);
    let kms = Kms::with_shares(&db.url, 1, &files).await.unwrap();
    user_administration(&kms).await;
    kms.stop().await;
    db.drop().await;
}

/// Create, read, update, disable, set password and delete through the admin API; each change
/// takes effect at once even for a cached credential; tenant admins stay in their tenants.
async fn user_administration(kms: &Kms) {
    let admin = kms.api(Surface::Service).await;
    let tenant = kms.user.tenants[0].clone();
    let username = name("managed");
    let password = "correct horse battery staple";
    let created = admin
        .post_json("/admin/realm-users", &json!({"username": username, "password": password, "roles": ["kms:read"], "tenants": [tenant]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        !created.text.contains(password) && !created.text.contains("pbkdf2"),
        "{}",
        created.text
    );
    let user = TestUser {
        username: username.clone(),
        password: password.to_owned(),
        tenants: vec![tenant.clone()],
    };
    let api = kms.api_as(Surface::Service, Some(&user)).await;
    assert_eq!(api.get("/elastickeys").await.status, 200);
    assert_eq!(api.get("/elastickeys").await.status, 200, "cached now");
    let path = format!("/admin/realm-users/{username}");

    // Disabling wins over the cached credential.
    assert_eq!(
        admin
            .put_json(&path, &json!({"enabled": false}))
            .await
            .status,
        200
    );
    api.get("/elastickeys")
        .await
        .assert_problem(401, "invalid credentials");
    assert_eq!(
        admin
            .put_json(&path, &json!({"enabled": true}))
            .await
            .status,
        200
    );
    assert_eq!(api.get("/elastickeys").await.status, 200);

    // Roles change at once too.
    api.post_json("/elastickey", &json!({"name": name("k")}))
        .await
        .assert_problem(403, "kms:pool:create");
    assert_eq!(
        admin
            .put_json(&path, &json!({"roles": ["kms:read", "kms:write"]}))
            .await
            .status,
        200
    );
    assert_eq!(
        api.post_json("/elastickey", &json!({"name": name("k")}))
            .await
            .status,
        201
    );

    // A new password: the old one (cached) stops working, the new one works.
    let new_password = "a different long password";
    let changed = admin
        .put_json(
            &format!("{path}/password"),
            &json!({"password": new_password}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    api.get("/elastickeys")
        .await
        .assert_problem(401, "invalid credentials");
    let renewed = TestUser {
        password: new_password.to_owned(),
        ..user.clone()
    };
    assert_eq!(
        kms.api_as(Surface::Service, Some(&renewed))
            .await
            .get("/elastickeys")
            .await
            .status,
        200
    );

    // Listing and reading show the user without secrets.
    let listed = admin.get("/admin/realm-users?size=1000").await;
    assert!(listed.text.contains(&username) && !listed.text.contains("pbkdf2"));
    assert_eq!(
        admin.get(&path).await.json()["roles"],
        json!(["kms:read", "kms:write"])
    );

    // Another tenant's admin can neither see nor create users here; non-admins get 403.
    let other = kms
        .add_user(&["kms:admin"], &[&name("elsewhere")], true)
        .await;
    let other = kms.api_as(Surface::Service, Some(&other)).await;
    other.get(&path).await.assert_problem(404, "no such user");
    let others_view = other.get("/admin/realm-users?size=1000").await.json();
    assert_eq!(
        others_view["total"], 1,
        "only itself; not even a count of other tenants' users"
    );
    assert!(!others_view.to_string().contains(&username));
    other
        .put_json(&path, &json!({"enabled": false}))
        .await
        .assert_problem(404, "no such user");
    other
        .post_json(
            "/admin/realm-users",
            &json!({"username": name("x"), "password": password, "roles": [], "tenants": [tenant]}),
        )
        .await
        .assert_problem(400, "not one of yours");
    kms.api_as(Surface::Service, Some(&renewed))
        .await
        .get("/admin/realm-users")
        .await
        .assert_problem(403, "kms:admin");

    // Bad input.
    for (body, needle) in [
        (
            json!({"username": name("x"), "password": "short", "roles": [], "tenants": [tenant]}),
            "password",
        ),
        (
            json!({"username": name("x"), "password": password, "roles": ["kms:everything"], "tenants": [tenant]}),
            "scope",
        ),
        (
            json!({"username": "a:b", "password": password, "roles": [], "tenants": [tenant]}),
            "username",
        ),
        (
            json!({"username": username, "password": password, "roles": [], "tenants": [tenant]}),
            "exists",
        ),
        (
            json!({"username": name("x"), "password": password, "roles": [], "tenants": [tenant], "colour": 1}),
            "colour",
        ),
    ] {
        let reply = admin.post_json("/admin/realm-users", &body).await;
        assert!(reply.status == 400 || reply.status == 409, "{}", reply.text);
        assert!(reply.text.contains(needle), "{needle}: {}", reply.text);
    }

    // Delete: the user is gone at once.
    assert_eq!(admin.delete(&path).await.status, 204);
    kms.api_as(Surface::Service, Some(&renewed))
        .await
        .get("/elastickeys")
        .await
        .assert_problem(401, "invalid");
    // Not on the browser surface.
    kms.api(Surface::Browser)
        .await
        .get("/admin/realm-users")
        .await
        .assert_problem(404, "");

    // Every decision left an audit event with a stable shape, and none carries a secret.
    let events = common::audit_events(|e| e.to_string().contains(&username));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "authentication" && e["outcome"] == "success")
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "authentication" && e["outcome"] == "refused")
    );
    for op in ["create", "update", "set-password", "delete"] {
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "user_admin" && e["operation"] == op),
            "{op}"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| !e.to_string().contains(password) && !e.to_string().contains(new_password))
    );
    let key_events =
        common::audit_events(|e| e["operation"] == "create" && e.get("elastic_key").is_some());
    assert!(!key_events.is_empty(), "key operations are audited too");

    // Operators read the same trail on the admin listener, page by page.
    let mut served = Vec::new();
    let mut after = 0;
    loop {
        let page = kms
            .get_admin(&format!("/admin/v1/audit?after={after}&limit=500"))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page: serde_json::Value = serde_json::from_str(&page.text).unwrap();
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 500);
        after = page["next_after"].as_u64().unwrap();
        served.extend(
            events
                .into_iter()
                .filter(|e| e["fields"].to_string().contains(&username)),
        );
    }
    assert!(
        served.len() >= events.len(),
        "{} < {}",
        served.len(),
        events.len()
    );
    assert!(
        served
            .iter()
            .all(|e| e["seq"].is_u64() && e["time"].is_string())
    );
    assert!(served.iter().any(|e| e["fields"]["event"] == "user_admin"));
    kms.get_admin("/admin/v1/audit?after=-1")
        .await
        .assert_problem(400, "");
    kms.get_admin("/admin/v1/audit?secret=1")
        .await
        .assert_problem(400, "");
}

#[tokio::test]
async fn the_file_realm_comes_first_and_its_users_work() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = name("file-tenant");
    let shadowed = name("shadow");
    let file = dir.path().join("realms.yml");
    let hash = &test_password().1;
    std::fs::write(
        &file,
        format!(
            "users:\n  - username: {shadowed}\n    password_hash: \"{hash}\"\n    roles: [\"kms:read\"]\n    tenants: [{tenant}]\n"
        ),
    )
    .unwrap();
    let kms = Kms::dev_with(|s| s.auth.realms_file = Some(file.clone())).await;
    kms.store().ensure_named_tenant(&tenant).await.unwrap();
    let from_file = TestUser {
        username: shadowed.clone(),
        password: test_password().0.clone(),
        tenants: vec![tenant.clone()],
    };
    let api = kms.api_as(Surface::Service, Some(&from_file)).await;
    assert_eq!(api.get("/elastickeys").await.status, 200);
    // A database user of the same name cannot shadow the file user: the file realm decides.
    let admin = kms.api(Surface::Service).await;
    let other_password = "the database user's password";
    let created = admin
        .post_json("/admin/realm-users", &json!({"username": shadowed, "password": other_password, "roles": ["kms:admin"], "tenants": [kms.user.tenants[0]]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let via_db = TestUser {
        password: other_password.to_owned(),
        ..from_file.clone()
    };
    kms.api_as(Surface::Service, Some(&via_db))
        .await
        .get("/elastickeys")
        .await
        .assert_problem(401, "invalid");
    assert_eq!(api.get("/elastickeys").await.status, 200);
    kms.stop().await;
}

#[tokio::test]
async fn a_client_certificate_logs_in_as_the_realm_user_with_that_subject() {
    let kms = Kms::dev_with(|s| s.server.public.request_client_cert = true).await;
    let (client, subject) = kms.client_with_certificate();
    let url = kms.public_url("/service/api/v1/elastickeys");
    // Nobody has this subject yet.
    let unknown = client.get(&url).send().await.unwrap();
    assert_eq!(unknown.status(), 401);
    let admin = kms.api(Surface::Service).await;
    let username = name("by-certificate");
    let created = admin
        .post_json(
            "/admin/realm-users",
            &json!({"username": username, "password": "never used for this user", "roles": ["kms:read"],
                    "tenants": [kms.user.tenants[0]], "certificate_subject": subject}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let known = client.get(&url).send().await.unwrap();
    assert_eq!(known.status(), 200);
    let events =
        common::audit_events(|e| e["subject"] == username.as_str() && e["method"] == "certificate");
    assert!(!events.is_empty());
    // Disabled: refused at once. Clients without a certificate still use Basic.
    assert_eq!(
        admin
            .put_json(
                &format!("/admin/realm-users/{username}"),
                &json!({"enabled": false})
            )
            .await
            .status,
        200
    );
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(admin.get("/elastickeys").await.status, 200);
    kms.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn demo_seeding_is_idempotent_and_reset_demo_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("kms.db").display());
    let files = common::shares(dir.path(), "seed", 2);
    let demo_user = TestUser {
        username: "demo-user".to_owned(),
        password: "demo-user-password".to_owned(),
        tenants: Vec::new(),
    };
    let kms = Kms::with_shares_seeded(&db, 1, &files, Seeding::Demo)
        .await
        .unwrap();
    let api = kms.api_as(Surface::Service, Some(&demo_user)).await;
    assert_eq!(
        api.post_json("/elastickey", &json!({"name": name("extra")}))
            .await
            .status,
        201
    );
    assert_eq!(api.get("/elastickeys").await.json()["total"], 8);
    kms.stop().await;

    let again = Kms::with_shares_seeded(&db, 1, &files, Seeding::Demo)
        .await
        .unwrap();
    let api = again.api_as(Surface::Service, Some(&demo_user)).await;
    assert_eq!(
        api.get("/elastickeys").await.json()["total"],
        8,
        "nothing seeded twice, nothing lost"
    );
    again.stop().await;

    let reset = Kms::with_shares_seeded(&db, 1, &files, Seeding::ResetDemo)
        .await
        .unwrap();
    let api = reset.api_as(Surface::Service, Some(&demo_user)).await;
    assert_eq!(
        api.get("/elastickeys").await.json()["total"],
        7,
        "--reset-demo starts over"
    );
    reset.stop().await;
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_the_other_instances_credential_cache() {
    let Some(db) = common::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = common::shares(dir.path(), "multi", 2);
    let (one, two) = (
        Kms::with_shares(&db.url, 1, &files).await.unwrap(),
        Kms::with_shares(&db.url, 1, &files).await.unwrap(),
    );
    let admin = one.api(Surface::Service).await;
    let username = name("roaming");
    let password = "correct horse battery staple";
    let created = admin
        .post_json(
            "/admin/realm-users",
            &json!({"username": username, "password": password, "roles": ["kms:read"], "tenants": [one.user.tenants[0]]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let user = TestUser {
        username: username.clone(),
        password: password.to_owned(),
        tenants: Vec::new(),
    };
    let on_two = two.api_as(Surface::Service, Some(&user)).await;
    assert_eq!(on_two.get("/elastickeys").await.status, 200);
    assert_eq!(
        on_two.get("/elastickeys").await.status,
        200,
        "cached on instance two"
    );

    // Disabled through instance one: instance two refuses it as soon as the announcement
    // arrives (bounded wait for the notification, not a timing assertion).
    let disabled = admin
        .put_json(
            &format!("/admin/realm-users/{username}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200);
    let mut refused = false;
    for _ in 0..200 {
        if on_two.get("/elastickeys").await.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        refused,
        "instance two still accepted the disabled user's cached credential"
    );
    one.stop().await;
    two.stop().await;
    db.drop().await;
}
