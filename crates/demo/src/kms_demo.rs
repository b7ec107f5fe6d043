//! `cryptoutil demo kms` (SPEC §6): wait for health → verify the seeded data → create an
//! elastic key → rotate it → encrypt "Hello World!" → decrypt and compare → sign → verify →
//! generate a data key → post-quantum sign/verify (ML-DSA) and encrypt/decrypt (ML-KEM) →
//! tenant isolation. Every step talks to the KMS's service API
//! (`/service/api/v1`) as the demo users over verified TLS.

use cryptoutil_jose::{Jwk, JwsAlgorithm, b64, jws};
use futures::future::join_all;
use reqwest::Client;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::{RunContext, Target};
use crate::credentials::Secret;
use crate::http::{Http, Reply};
use crate::runner::{Step, StepFuture};
use crate::step_error::StepError;

mod post_quantum;
pub(crate) mod state;

use state::KeyRef;
pub use state::KmsState;

/// The service surface.
const API: &str = "/service/api/v1";
/// What the demo encrypts.
const PLAINTEXT: &[u8] = b"Hello World!";
/// Algorithm of the demo's encryption key (the KMS default, SPEC §3.3).
const ENCRYPTION_ALG: &str = "A256GCM/A256KW";
/// Algorithm of the demo's signing key.
const SIGNING_ALG: &str = "ES256";

/// The steps of `demo kms`, in order.
pub const STEPS: &[Step] = &[
    Step {
        name: "kms-health",
        description: "Wait for the KMS to be healthy",
        phase: "health",
        needs: &[],
        run: health,
    },
    Step {
        name: "kms-seeded-data",
        description: "Verify the seeded demo data (users sign in, tenants, elastic keys and versions)",
        phase: "seed",
        needs: &["kms-health"],
        run: seeded_data,
    },
    Step {
        name: "kms-create-key",
        description: "Create elastic keys (A256GCM/A256KW for encryption, ES256 for signing)",
        phase: "lifecycle",
        needs: &["kms-health"],
        run: create_keys,
    },
    Step {
        name: "kms-rotate-key",
        description: "Rotate the encryption key (a second material key version)",
        phase: "lifecycle",
        needs: &["kms-create-key"],
        run: rotate_key,
    },
    Step {
        name: "kms-encrypt",
        description: "Encrypt \"Hello World!\" (JWE under the newest version)",
        phase: "crypto",
        needs: &["kms-rotate-key"],
        run: encrypt,
    },
    Step {
        name: "kms-decrypt",
        description: "Decrypt it and compare; a tampered JWE is refused",
        phase: "crypto",
        needs: &["kms-encrypt"],
        run: decrypt,
    },
    Step {
        name: "kms-sign",
        description: "Sign \"Hello World!\" (JWS ES256)",
        phase: "crypto",
        needs: &["kms-create-key"],
        run: sign,
    },
    Step {
        name: "kms-verify",
        description: "Verify the signature (at the KMS and locally with its public JWK); a tampered JWS is refused",
        phase: "crypto",
        needs: &["kms-sign"],
        run: verify,
    },
    Step {
        name: "kms-generate-data-key",
        description: "Generate a data key (oct/256, wrapped under the elastic key) and unwrap it",
        phase: "crypto",
        needs: &["kms-create-key"],
        run: generate_data_key,
    },
    Step {
        name: "kms-pq-sign-verify",
        description: "Post-quantum signing: an ML-DSA-65 key signs \"Hello World!\" (JWS, RFC 9964); verified at the KMS and locally",
        phase: "post-quantum",
        needs: &["kms-health"],
        run: post_quantum::sign_verify,
    },
    Step {
        name: "kms-pq-encrypt-decrypt",
        description: "Post-quantum encryption: an A256GCM/ML-KEM-768 key encrypts \"Hello World!\" (JWE, draft-ietf-jose-pqc-kem) and decrypts it",
        phase: "post-quantum",
        needs: &["kms-health"],
        run: post_quantum::encrypt_decrypt,
    },
    Step {
        name: "kms-tenant-isolation",
        description: "Tenant isolation: demo-user-2 can neither see nor use demo-tenant keys",
        phase: "isolation",
        needs: &["kms-create-key", "kms-encrypt", "kms-sign"],
        run: tenant_isolation,
    },
];

#[derive(Debug, Deserialize)]
struct ElasticKeyView {
    elastic_key_id: String,
    name: String,
    algorithm: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct MaterialKeyView {
    material_key_id: String,
    elastic_key_id: String,
    #[serde(default)]
    public_jwk: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    items: Vec<T>,
    total: u64,
}

#[derive(Debug, Deserialize)]
struct GeneratedKeyView {
    encrypted_jwk: String,
    #[serde(default)]
    jwk: Option<Value>,
}

/// A realm user's credentials.
#[derive(Debug, Clone)]
pub(crate) struct User {
    name: String,
    password: Secret,
}

/// How a demo request authenticates to the KMS.
pub(crate) enum Caller {
    /// HTTP Basic as a realm user.
    User(User),
    /// `Authorization: Bearer` with an access token of a trusted issuer.
    Bearer(Secret),
    /// `Authorization: DPoP` with a DPoP-bound access token and a fresh proof of `key` per
    /// request (RFC 9449 §7).
    Dpop(Secret, std::sync::Arc<crate::dpop::DpopKey>),
    /// No credentials.
    Anonymous,
}

/// Requests to the KMS as one caller.
pub(crate) struct Kms<'a> {
    http: &'a Http,
    target: &'a Target,
    caller: Caller,
}

impl<'a> Kms<'a> {
    /// Requests as `caller` to the run's KMS.
    pub(crate) fn new(ctx: &'a RunContext, caller: Caller) -> Result<Self, StepError> {
        Ok(Self {
            http: &ctx.env.http,
            target: ctx.env.kms()?,
            caller,
        })
    }

    fn user_name(&self) -> &str {
        match &self.caller {
            Caller::User(user) => &user.name,
            Caller::Bearer(_) | Caller::Dpop(..) => "the token holder",
            Caller::Anonymous => "an anonymous caller",
        }
    }
}

impl Kms<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Reply, StepError> {
        let url = self.target.url(&format!("{API}{path}"))?;
        let what = format!("{method} {}", url.path());
        let caller = &self.caller;
        self.http
            .send(&what, |client: &Client| {
                let request = client.request(method.clone(), url.clone());
                let request = match caller {
                    Caller::User(user) => {
                        request.basic_auth(&user.name, Some(user.password.expose()))
                    }
                    Caller::Bearer(token) => request.bearer_auth(token.expose()),
                    Caller::Dpop(token, key) => {
                        let request = request.header(
                            reqwest::header::AUTHORIZATION,
                            format!("DPoP {}", token.expose()),
                        );
                        // A new proof per attempt: a retried request must not replay one. A
                        // proof that cannot be signed is left out; the KMS then says why.
                        match key.proof(method.as_str(), &url, None, Some(token.expose())) {
                            Ok(proof) => request.header("DPoP", proof),
                            Err(_) => request,
                        }
                    }
                    Caller::Anonymous => request,
                };
                match &body {
                    Some(Body::Json(value)) => request.json(value),
                    Some(Body::Bytes(bytes, content_type)) => request
                        .header(reqwest::header::CONTENT_TYPE, *content_type)
                        .body(bytes.clone()),
                    None => request,
                }
            })
            .await
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Reply, StepError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Body) -> Result<Reply, StepError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

pub(crate) enum Body {
    Json(Value),
    Bytes(Vec<u8>, &'static str),
}

pub(crate) fn octets(bytes: &[u8]) -> Body {
    Body::Bytes(bytes.to_vec(), "application/octet-stream")
}

pub(crate) fn jose(token: &str) -> Body {
    Body::Bytes(token.as_bytes().to_vec(), "application/jose")
}

fn as_main_user(ctx: &RunContext) -> Result<Kms<'_>, StepError> {
    let credentials = &ctx.env.credentials;
    Kms::new(
        ctx,
        Caller::User(User {
            name: credentials.username.clone(),
            password: credentials.password.clone(),
        }),
    )
}

fn as_second_user(ctx: &RunContext) -> Result<Kms<'_>, StepError> {
    let credentials = &ctx.env.credentials;
    Kms::new(
        ctx,
        Caller::User(User {
            name: credentials.second_username.clone(),
            password: credentials.second_password.clone(),
        }),
    )
}

fn missing(what: &str) -> StepError {
    StepError::new(format!(
        "{what} is missing (an earlier step did not record it)"
    ))
}

fn health(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let target = ctx.env.kms()?;
        let http = &ctx.env.http;
        let timeout = ctx.env.health_timeout;
        match &target.admin_url {
            Some(admin) => {
                let url = admin
                    .join("/admin/v1/readyz")
                    .map_err(|e| StepError::new(e.to_string()))?;
                let reply = http
                    .wait_healthy(http.admin(), "KMS", &url, timeout)
                    .await?;
                let report: Value = reply.json()?;
                if report["status"] != "ok" {
                    return Err(StepError::with_cause(
                        "the KMS reports itself not ready",
                        report.to_string(),
                    ));
                }
                let checks = report["checks"]
                    .as_object()
                    .map(|c| c.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                let audit_after = crate::audit::position(http, admin).await?;
                ctx.kms.audit_after = Some(audit_after);
                Ok(vec![
                    format!("readyz: ok (checks: {checks})"),
                    format!("KMS at {}", target.public_url),
                ])
            }
            None => {
                // A running deployment's admin listener is private: the public listener
                // serving its OpenAPI document shows the KMS is up.
                let url = target.url("/ui/swagger/doc.json")?;
                let reply = http.wait_healthy(http.api(), "KMS", &url, timeout).await?;
                let document: Value = reply.json()?;
                if document.get("openapi").is_none() {
                    return Err(StepError::new(format!(
                        "{} is not an OpenAPI document: is {} a cryptoutil KMS?",
                        url.path(),
                        target.public_url
                    )));
                }
                Ok(vec![format!("KMS at {} answers", target.public_url)])
            }
        }
    })
}

fn seeded_data(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let seed = cryptoutil_kms::seed::Seed::demo().map_err(StepError::new)?;
        let credentials = &ctx.env.credentials;
        let target = ctx.env.kms()?;
        let http = &ctx.env.http;
        // The seed's users, with the passwords given for the demo's two users.
        let users: Vec<(User, &[String])> = seed
            .users
            .iter()
            .map(|u| {
                let password = if u.username == credentials.username {
                    credentials.password.clone()
                } else if u.username == credentials.second_username {
                    credentials.second_password.clone()
                } else {
                    Secret::new(u.password.clone())
                };
                (
                    User {
                        name: u.username.clone(),
                        password,
                    },
                    u.tenants.as_slice(),
                )
            })
            .collect();
        let mut problems = Vec::new();
        let mut details = Vec::new();

        // Users: each signs in and acts in its default tenant (which therefore exists).
        let sign_ins = join_all(users.iter().map(|(user, _)| {
            let kms = Kms {
                http,
                target,
                caller: Caller::User(user.clone()),
            };
            async move {
                kms.get("/elastickeys?size=1")
                    .await
                    .and_then(|r| r.expect(200))
            }
        }))
        .await;
        let mut tenants_seen = Vec::new();
        let mut signed_in: Vec<&(User, &[String])> = Vec::new();
        for (entry, outcome) in users.iter().zip(sign_ins) {
            let (user, tenants) = entry;
            match outcome {
                Ok(_) => {
                    signed_in.push(entry);
                    if let Some(tenant) = tenants.first()
                        && !tenants_seen.contains(tenant)
                    {
                        tenants_seen.push(tenant.clone());
                    }
                }
                Err(e) => problems.push(format!("user {} cannot sign in: {e}", user.name)),
            }
        }
        details.push(format!(
            "{} of {} users sign in",
            signed_in.len(),
            users.len()
        ));
        for tenant in &seed.tenants {
            if !tenants_seen.contains(tenant) {
                problems.push(format!("tenant {tenant}: no seeded user could act in it"));
            }
        }
        details.push(format!("tenants: {}", tenants_seen.join(", ")));

        // Keys: each exists in its tenant, with its algorithm and versions.
        for key in &seed.elastic_keys {
            // Checked as a user of its tenant who signed in (the demo user first).
            let Some((user, _)) = signed_in
                .iter()
                .copied()
                .filter(|(_, tenants)| tenants.first() == Some(&key.tenant))
                .min_by_key(|(u, _)| u.name != credentials.username)
            else {
                problems.push(format!(
                    "key {}: no user of tenant {} could sign in to check it",
                    key.name, key.tenant
                ));
                continue;
            };
            let kms = Kms {
                http,
                target,
                caller: Caller::User(user.clone()),
            };
            match check_seeded_key(&kms, &key.name, &key.algorithm, key.versions).await {
                Ok(line) => details.push(line),
                Err(e) => problems.push(format!("key {}: {e}", key.name)),
            }
        }
        if problems.is_empty() {
            Ok(details)
        } else {
            Err(StepError::with_cause(
                format!("{} seeded entities missing or unusable", problems.len()),
                problems.join("; "),
            ))
        }
    })
}

async fn check_seeded_key(
    kms: &Kms<'_>,
    name: &str,
    algorithm: &str,
    versions: u32,
) -> Result<String, StepError> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("names", name)
        .finish();
    let found: List<ElasticKeyView> = kms
        .get(&format!("/elastickeys?{query}"))
        .await?
        .expect(200)?
        .json()?;
    let key = match found.items.as_slice() {
        [key] if found.total == 1 => key,
        _ => {
            return Err(StepError::new(format!(
                "expected one key named {name}, found {}",
                found.total
            )));
        }
    };
    if key.algorithm != algorithm {
        return Err(StepError::new(format!(
            "algorithm {} instead of {algorithm}",
            key.algorithm
        )));
    }
    let materials: List<MaterialKeyView> = kms
        .get(&format!("/elastickey/{}/materialkeys", key.elastic_key_id))
        .await?
        .expect(200)?
        .json()?;
    if materials.total < u64::from(versions) {
        return Err(StepError::new(format!(
            "{} material key versions, expected {versions}",
            materials.total
        )));
    }
    Ok(format!(
        "{name}: {algorithm}, {} versions, {}",
        materials.total, key.status
    ))
}

async fn create_key(kms: &Kms<'_>, name: String, algorithm: &str) -> Result<KeyRef, StepError> {
    let created: ElasticKeyView = kms
        .post(
            "/elastickey",
            Body::Json(json!({
                "name": name,
                "description": "created by cryptoutil demo kms",
                "algorithm": algorithm,
                "versioning_allowed": true,
                "import_allowed": false,
                "export_allowed": false,
            })),
        )
        .await?
        .expect(201)?
        .json()?;
    if created.name != name || created.algorithm != algorithm || created.status != "active" {
        return Err(StepError::new(format!(
            "the KMS created {} ({}, {}) instead of {name} ({algorithm}, active)",
            created.name, created.algorithm, created.status
        )));
    }
    let materials = material_keys(kms, &created.elastic_key_id).await?;
    if materials.len() != 1 {
        return Err(StepError::new(format!(
            "a new key should have one material key, {name} has {}",
            materials.len()
        )));
    }
    Ok(KeyRef {
        id: created.elastic_key_id,
        name,
    })
}

async fn material_keys(kms: &Kms<'_>, id: &str) -> Result<Vec<MaterialKeyView>, StepError> {
    let list: List<MaterialKeyView> = kms
        .get(&format!("/elastickey/{id}/materialkeys?size=100"))
        .await?
        .expect(200)?
        .json()?;
    Ok(list.items)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

fn create_keys(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let encryption = create_key(&kms, unique("demo-kms-encryption"), ENCRYPTION_ALG).await?;
        let signing = create_key(&kms, unique("demo-kms-signing"), SIGNING_ALG).await?;
        let details = vec![
            format!(
                "{} ({ENCRYPTION_ALG}) id {}",
                encryption.name, encryption.id
            ),
            format!("{} ({SIGNING_ALG}) id {}", signing.name, signing.id),
        ];
        ctx.kms.encryption_key = Some(encryption);
        ctx.kms.signing_key = Some(signing);
        Ok(details)
    })
}

fn rotate_key(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .encryption_key
            .clone()
            .ok_or_else(|| missing("the encryption key"))?;
        let before = material_keys(&kms, &key.id).await?;
        let added: MaterialKeyView = kms
            .post(
                &format!("/elastickey/{}/materialkey", key.id),
                Body::Json(json!({})),
            )
            .await?
            .expect(201)?
            .json()?;
        if added.elastic_key_id != key.id {
            return Err(StepError::new(
                "the new material key belongs to another elastic key",
            ));
        }
        let after = material_keys(&kms, &key.id).await?;
        if after.len() != before.len() + 1
            || !after
                .iter()
                .any(|m| m.material_key_id == added.material_key_id)
        {
            return Err(StepError::new(format!(
                "after rotation the key lists {} versions (before: {}), the new one {}",
                after.len(),
                before.len(),
                if after
                    .iter()
                    .any(|m| m.material_key_id == added.material_key_id)
                {
                    "among them"
                } else {
                    "missing"
                }
            )));
        }
        let details = vec![format!(
            "{}: version {} added ({} versions)",
            key.name,
            added.material_key_id,
            after.len()
        )];
        ctx.kms.newest_version = Some(added.material_key_id);
        Ok(details)
    })
}

/// The protected header of a compact JWE or JWS (not verified: for `kid`, `alg`, `enc`).
fn protected_header(token: &str, parts: usize) -> Result<Value, StepError> {
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != parts {
        return Err(StepError::new(format!(
            "not a compact token of {parts} parts ({} parts)",
            segments.len()
        )));
    }
    let bytes = b64::decode(segments[0].as_bytes(), "protected header")
        .map_err(|e| StepError::with_cause("malformed protected header", e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StepError::with_cause("malformed protected header", e.to_string()))
}

fn encrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .encryption_key
            .clone()
            .ok_or_else(|| missing("the encryption key"))?;
        let newest = ctx
            .kms
            .newest_version
            .clone()
            .ok_or_else(|| missing("the new version"))?;
        let jwe = kms
            .post(
                &format!("/elastickey/{}/encrypt", key.id),
                octets(PLAINTEXT),
            )
            .await?
            .expect(200)?
            .text()?;
        let header = protected_header(&jwe, 5)?;
        let (alg, enc, kid) = (&header["alg"], &header["enc"], &header["kid"]);
        if alg != "A256KW" || enc != "A256GCM" {
            return Err(StepError::new(format!(
                "JWE header alg {alg}, enc {enc}: expected A256KW, A256GCM"
            )));
        }
        if kid.as_str() != Some(newest.as_str()) {
            return Err(StepError::new(format!(
                "JWE kid {kid} is not the newest material key {newest}"
            )));
        }
        if jwe.contains("Hello") {
            return Err(StepError::new("the JWE contains the plaintext"));
        }
        let details = vec![format!(
            "compact JWE, {} characters: alg A256KW, enc A256GCM, kid {newest} (the newest version)",
            jwe.len()
        )];
        ctx.kms.jwe = Some(jwe);
        Ok(details)
    })
}

/// `token` with one character of part `part` changed (still valid base64url).
fn tampered(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(segment) = parts.get_mut(part)
        && let Some(first) = segment.chars().next()
    {
        let replacement = if first == 'A' { 'B' } else { 'A' };
        segment.replace_range(..first.len_utf8(), &replacement.to_string());
    }
    parts.join(".")
}

fn decrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .encryption_key
            .clone()
            .ok_or_else(|| missing("the encryption key"))?;
        let jwe = ctx.kms.jwe.clone().ok_or_else(|| missing("the JWE"))?;
        let path = format!("/elastickey/{}/decrypt", key.id);
        let clear = kms.post(&path, jose(&jwe)).await?.expect(200)?;
        if clear.body != PLAINTEXT {
            return Err(StepError::new(format!(
                "decrypted {} bytes that differ from \"Hello World!\"",
                clear.body.len()
            )));
        }
        // Ciphertext (part 3) changed: authentication must fail.
        let refused = kms.post(&path, jose(&tampered(&jwe, 3))).await?;
        if refused.status != 400 {
            return Err(StepError::with_cause(
                "a tampered JWE was not refused with 400",
                refused.describe(),
            ));
        }
        Ok(vec![
            "decrypted to \"Hello World!\"".to_owned(),
            format!("tampered ciphertext refused: {}", refused.describe()),
        ])
    })
}

fn sign(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .signing_key
            .clone()
            .ok_or_else(|| missing("the signing key"))?;
        let jws = kms
            .post(&format!("/elastickey/{}/sign", key.id), octets(PLAINTEXT))
            .await?
            .expect(200)?
            .text()?;
        let header = protected_header(&jws, 3)?;
        if header["alg"] != SIGNING_ALG || !header["kid"].is_string() {
            return Err(StepError::new(format!(
                "JWS header {header}: expected alg ES256 and a kid"
            )));
        }
        let details = vec![format!(
            "compact JWS: alg ES256, kid {}",
            header["kid"].as_str().unwrap_or_default()
        )];
        ctx.kms.jws = Some(jws);
        Ok(details)
    })
}

fn verify(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .signing_key
            .clone()
            .ok_or_else(|| missing("the signing key"))?;
        let jws = ctx.kms.jws.clone().ok_or_else(|| missing("the JWS"))?;
        let checked = verify_three_ways(&kms, &key.id, &jws, JwsAlgorithm::ES256).await?;
        Ok(vec![
            "verified at the KMS: payload \"Hello World!\"".to_owned(),
            format!("verified locally with the public JWK of {}", checked.kid),
            format!("tampered signature refused: {}", checked.refused),
        ])
    })
}

/// What [`verify_three_ways`] saw.
struct Verified {
    /// The signing version (`kid`).
    kid: String,
    /// Its public JWK, as the KMS returned it.
    public_jwk: Value,
    /// How the KMS refused the tampered JWS.
    refused: String,
}

/// Verifies `jws`, made by elastic key `key_id`, three ways: at the KMS (payload "Hello World!"),
/// locally with the public JWK of the version its `kid` names (cryptoutil-jose, `alg`), and at
/// the KMS again with its signature changed, which must be refused as `invalid_signature`.
async fn verify_three_ways(
    kms: &Kms<'_>,
    key_id: &str,
    jws: &str,
    alg: JwsAlgorithm,
) -> Result<Verified, StepError> {
    let path = format!("/elastickey/{key_id}/verify");
    let verified = kms.post(&path, jose(jws)).await?.expect(200)?;
    if verified.body != PLAINTEXT {
        return Err(StepError::new("the KMS verified a different payload"));
    }
    let kid = protected_header(jws, 3)?["kid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| StepError::new("the JWS has no kid"))?;
    let material: MaterialKeyView = kms
        .get(&format!("/elastickey/{key_id}/materialkey/{kid}"))
        .await?
        .expect(200)?
        .json()?;
    let public_jwk = material
        .public_jwk
        .ok_or_else(|| StepError::new("the signing version has no public JWK"))?;
    let public = Jwk::from_value(public_jwk.clone())
        .map_err(|e| StepError::with_cause("the public JWK does not parse", e.to_string()))?;
    if public.is_private() {
        return Err(StepError::new("the KMS returned private key material"));
    }
    let local = jws::verify(&public, alg, jws)
        .map_err(|e| StepError::with_cause("local verification failed", e.to_string()))?;
    if local.payload != PLAINTEXT {
        return Err(StepError::new(
            "local verification gave a different payload",
        ));
    }
    // Signature (part 2) changed: refused as invalid_signature.
    let refused = kms.post(&path, jose(&tampered(jws, 2))).await?;
    let problem: Value = serde_json::from_slice(&refused.body).unwrap_or(Value::Null);
    if refused.status != 400 || !problem.to_string().contains("invalid_signature") {
        return Err(StepError::with_cause(
            "a tampered JWS was not refused as invalid_signature",
            refused.describe(),
        ));
    }
    Ok(Verified {
        kid,
        public_jwk,
        refused: refused.describe(),
    })
}

fn generate_data_key(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = ctx
            .kms
            .encryption_key
            .clone()
            .ok_or_else(|| missing("the encryption key"))?;
        let generated: GeneratedKeyView = kms
            .post(
                &format!(
                    "/elastickey/{}/generate?alg=oct/256&include_plaintext=true",
                    key.id
                ),
                Body::Json(json!({})),
            )
            .await?
            .expect(200)?
            .json()?;
        let clear = generated
            .jwk
            .ok_or_else(|| StepError::new("include_plaintext=true returned no clear JWK"))?;
        let bits = clear["k"]
            .as_str()
            .and_then(|k| b64::decode(k.as_bytes(), "k").ok())
            .map(|k| zeroize::Zeroizing::new(k).len() * 8);
        if clear["kty"] != "oct" || bits != Some(256) {
            return Err(StepError::new("the data key is not a 256-bit oct key"));
        }
        let clear = Jwk::from_value(clear)
            .map_err(|e| StepError::with_cause("the data key does not parse", e.to_string()))?;
        let header = protected_header(&generated.encrypted_jwk, 5)?;
        if header["cty"] != "jwk+json" {
            return Err(StepError::new(format!(
                "the wrapped data key has cty {}, expected jwk+json",
                header["cty"]
            )));
        }
        // Unwrapping it at the KMS gives the same key.
        let unwrapped = kms
            .post(
                &format!("/elastickey/{}/decrypt", key.id),
                jose(&generated.encrypted_jwk),
            )
            .await?
            .expect(200)?;
        let unwrapped = zeroize::Zeroizing::new(unwrapped.body);
        let unwrapped = std::str::from_utf8(&unwrapped)
            .ok()
            .and_then(|text| Jwk::from_json(text).ok())
            .ok_or_else(|| StepError::new("the unwrapped data key is not a JWK"))?;
        if unwrapped.thumbprint() != clear.thumbprint() || unwrapped.kid() != clear.kid() {
            return Err(StepError::new(
                "the unwrapped data key differs from the clear one",
            ));
        }
        Ok(vec![format!(
            "data key kid {} (oct, 256 bits), wrapped with kid {}; unwraps to the same key (RFC 7638 thumbprints match)",
            clear.kid().unwrap_or("-"),
            header["kid"].as_str().unwrap_or("-")
        )])
    })
}

fn tenant_isolation(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let other = as_second_user(ctx)?;
        let key = ctx
            .kms
            .encryption_key
            .clone()
            .ok_or_else(|| missing("the encryption key"))?;
        let signing = ctx
            .kms
            .signing_key
            .clone()
            .ok_or_else(|| missing("the signing key"))?;
        let jwe = ctx.kms.jwe.clone().ok_or_else(|| missing("the JWE"))?;
        let jws = ctx.kms.jws.clone().ok_or_else(|| missing("the JWS"))?;
        let who = other.user_name().to_owned();
        // The other user's credential works (so the refusals below are not 401s).
        let own: List<ElasticKeyView> = other
            .get("/elastickeys?size=1000")
            .await?
            .expect(200)
            .map_err(|e| e.context(format!("{who} cannot use the KMS in its own tenant")))?
            .json()?;
        let mut leaks = Vec::new();
        for name in [
            key.name.as_str(),
            signing.name.as_str(),
            "demo-encryption-aes256",
        ] {
            if own.items.iter().any(|k| k.name == name) {
                leaks.push(format!("{who} lists {name}"));
            }
        }
        let checks: [(&str, &KeyRef, reqwest::Method, String, Option<Body>); 4] = [
            (
                "read",
                &key,
                reqwest::Method::GET,
                format!("/elastickey/{}", key.id),
                None,
            ),
            (
                "encrypt with",
                &key,
                reqwest::Method::POST,
                format!("/elastickey/{}/encrypt", key.id),
                Some(octets(PLAINTEXT)),
            ),
            (
                "decrypt with",
                &key,
                reqwest::Method::POST,
                format!("/elastickey/{}/decrypt", key.id),
                Some(jose(&jwe)),
            ),
            (
                "verify with",
                &signing,
                reqwest::Method::POST,
                format!("/elastickey/{}/verify", signing.id),
                Some(jose(&jws)),
            ),
        ];
        let mut details = vec![format!(
            "{who} sees {} keys in its own tenant, none of demo-tenant's",
            own.total
        )];
        for (action, target, method, path, body) in checks {
            let reply = other.call(method, &path, body).await?;
            if reply.status == 404 {
                details.push(format!(
                    "{who} cannot {action} {}: 404 like a key that does not exist",
                    target.name
                ));
            } else {
                leaks.push(format!(
                    "{who} could {action} the key: {}",
                    reply.describe()
                ));
            }
        }
        if leaks.is_empty() {
            Ok(details)
        } else {
            Err(StepError::with_cause(
                "tenant isolation does not hold",
                leaks.join("; "),
            ))
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tampering_changes_exactly_one_part() {
        let token = "aaa.bbb.ccc";
        assert_eq!(tampered(token, 2), "aaa.bbb.Acc");
        assert_eq!(tampered("aaa.bbb.Acc", 2), "aaa.bbb.Bcc");
    }
}
