//! Authentication, tenants and scopes over HTTPS (SPEC §3.6–3.7): 401 vs 403, tenant isolation,
//! `X-Tenant-ID`, every route's scope, disabled users and demo seeding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Kms, Surface, TestUser, test_password};
use cryptoutil_kms::api::ROUTE_SCOPES;
use cryptoutil_kms::keys::scopes;
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
    kms.stop().await;
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
    let kms = Kms::dev().await;
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
        let without: Vec<&str> = scopes::ALL.iter().copied().filter(|s| s != scope).collect();
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
async fn demo_seeding_creates_the_canonical_data_and_the_demo_users_work() {
    let kms = Kms::dev_seeded(Some(Seeding::Demo)).await;
    let user = |username: &str| TestUser {
        username: username.to_owned(),
        password: format!("{username}-password"),
        tenants: Vec::new(),
    };
    let demo_user = kms.api_as(Surface::Service, Some(&user("demo-user"))).await;
    let keys = demo_user.get("/elastickeys?sort=name").await.json();
    assert_eq!(keys["total"], 5);
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
            "demo-signing-ec256",
            "demo-signing-ed25519",
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
    assert_eq!(readonly.get("/elastickeys").await.json()["total"], 5);
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
