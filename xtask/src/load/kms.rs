//! The KMS scenarios: crypto operations on the seeded demo keys as `demo-user` (HTTP Basic, so
//! the credential cache answers after the first request), and the authenticated echo route
//! (`benchmark.echo: true`) as their ceiling. Every response is checked: an encrypt returns a
//! compact JWE, a decrypt the original plaintext, a sign a compact JWS, a verify 200 with the
//! payload, a generate a JSON object with an encrypted JWK, the echo its body.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::{Check, RequestSpec, Scenario, Target, expect_json, send, truncate};

/// The demo user (SPEC §3.7; demo only): `kms:read kms:write` in `demo-tenant`.
const DEMO_USER: (&str, &str) = ("demo-user", "demo-user-password");
/// The service surface.
const SERVICE: &str = "/service/api/v1";

/// What one KMS scenario does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Echo,
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Generate,
}

/// `(scenario, operation, seeded key name, payload bytes)`.
const KMS: &[(&str, Operation, &str, usize)] = &[
    ("kms-echo", Operation::Echo, "", 64),
    ("kms-encrypt-dir-64", Operation::Encrypt, DIR, 64),
    ("kms-encrypt-dir-16k", Operation::Encrypt, DIR, 16 * 1024),
    ("kms-encrypt-kw-64", Operation::Encrypt, KW, 64),
    ("kms-encrypt-kw-16k", Operation::Encrypt, KW, 16 * 1024),
    ("kms-decrypt-dir-64", Operation::Decrypt, DIR, 64),
    ("kms-decrypt-dir-16k", Operation::Decrypt, DIR, 16 * 1024),
    ("kms-decrypt-kw-64", Operation::Decrypt, KW, 64),
    ("kms-decrypt-kw-16k", Operation::Decrypt, KW, 16 * 1024),
    ("kms-sign-es256", Operation::Sign, ES256, 64),
    ("kms-sign-eddsa", Operation::Sign, EDDSA, 64),
    ("kms-sign-rs256", Operation::Sign, RS256, 64),
    ("kms-verify-es256", Operation::Verify, ES256, 64),
    ("kms-verify-eddsa", Operation::Verify, EDDSA, 64),
    ("kms-verify-rs256", Operation::Verify, RS256, 64),
    ("kms-sign-mldsa65", Operation::Sign, MLDSA65, 64),
    ("kms-verify-mldsa65", Operation::Verify, MLDSA65, 64),
    ("kms-encrypt-mlkem768-64", Operation::Encrypt, MLKEM768, 64),
    ("kms-decrypt-mlkem768-64", Operation::Decrypt, MLKEM768, 64),
    ("kms-generate", Operation::Generate, DIR, 0),
];

const DIR: &str = "demo-encryption-aes256";
const KW: &str = "demo-wrapping-aes256kw";
const ES256: &str = "demo-signing-ec256";
const EDDSA: &str = "demo-signing-ed25519";
const RS256: &str = "demo-signing-rsa2048";
/// Post-quantum signing (FIPS 204, RFC 9964).
const MLDSA65: &str = "demo-signing-mldsa65";
/// Post-quantum encryption (FIPS 203, draft-ietf-jose-pqc-kem): `A256GCM/ML-KEM-768`.
const MLKEM768: &str = "demo-encryption-mlkem768";

/// Name and description of every KMS scenario, for the scenario table.
pub fn scenarios() -> impl Iterator<Item = (&'static str, String)> {
    KMS.iter().map(|(name, op, key, size)| {
        let what = match op {
            Operation::Echo => format!(
                "POST /echo ({size} B; benchmark.echo: true): authenticated like an operation, no crypto; the ceiling"
            ),
            Operation::Encrypt => format!("POST encrypt {size} B with {key}; 200 with a compact JWE"),
            Operation::Decrypt => {
                format!("POST decrypt of a {size} B JWE of {key}; 200 with the plaintext")
            }
            Operation::Sign => format!("POST sign {size} B with {key}; 200 with a compact JWS"),
            Operation::Verify => format!("POST verify a JWS of {key}; 200 with the payload"),
            Operation::Generate => {
                format!("POST generate?alg=oct/256 under {key}; 200 with an encrypted JWK")
            }
        };
        (*name, what)
    })
}

/// Whether `name` is a KMS scenario.
pub fn is_kms(name: &str) -> bool {
    KMS.iter().any(|(n, ..)| *n == name)
}

/// Prepares KMS scenario `name`: finds the seeded key, makes the token to decrypt or verify.
pub async fn prepare(
    name: &str,
    target: &Target,
    client: &reqwest::Client,
) -> Result<Scenario, String> {
    let &(name, operation, key_name, size) = KMS
        .iter()
        .find(|(n, ..)| *n == name)
        .ok_or_else(|| format!("unknown scenario {name:?}"))?;
    let api = format!("{}{SERVICE}", target.public_url);
    let payload = payload(size);
    let key = if key_name.is_empty() {
        String::new()
    } else {
        key_ids(client, &api)
            .await?
            .remove(key_name)
            .ok_or_else(|| format!("{key_name} is not seeded (start the KMS with --demo)"))?
    };
    let op_url = |op: &str| format!("{api}/elastickey/{key}/{op}");
    let (request, check): (RequestSpec, Check) = match operation {
        Operation::Echo => {
            let expected = payload.clone();
            (
                post(&format!("{api}/echo"), "application/octet-stream", payload),
                Box::new(move |status, body| same_body(status, body, &expected)),
            )
        }
        Operation::Encrypt => (
            post(&op_url("encrypt"), "application/octet-stream", payload),
            Box::new(|status, body| compact(status, body, 5)),
        ),
        Operation::Decrypt => {
            let encrypt = post(
                &op_url("encrypt"),
                "application/octet-stream",
                payload.clone(),
            );
            let token = obtain(client, &encrypt, 5).await?;
            (
                post(&op_url("decrypt"), "application/jose", token),
                Box::new(move |status, body| same_body(status, body, &payload)),
            )
        }
        Operation::Sign => (
            post(&op_url("sign"), "application/octet-stream", payload),
            Box::new(|status, body| compact(status, body, 3)),
        ),
        Operation::Verify => {
            let sign = post(&op_url("sign"), "application/octet-stream", payload.clone());
            let token = obtain(client, &sign, 3).await?;
            (
                post(&op_url("verify"), "application/jose", token),
                Box::new(move |status, body| same_body(status, body, &payload)),
            )
        }
        Operation::Generate => (
            post(
                &format!("{}?alg=oct/256", op_url("generate")),
                "application/json",
                Vec::new(),
            ),
            Box::new(|status, body| {
                let json = expect_json(status, body)?;
                match json
                    .get("encrypted_jwk")
                    .and_then(serde_json::Value::as_str)
                {
                    Some(jwe) if jwe.split('.').count() == 5 && json.get("jwk").is_none() => Ok(()),
                    _ => Err(format!("no encrypted_jwk: {}", truncate(body))),
                }
            }),
        ),
    };
    Ok(Scenario {
        name,
        request,
        check,
    })
}

/// `size` bytes of a fixed, non-trivial pattern.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// `Authorization: Basic` for a user (RFC 7617: the demo names need no escaping).
fn user_basic(user: (&str, &str)) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1))
    )
}

fn headers(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&user_basic(DEMO_USER)) {
        headers.insert(AUTHORIZATION, value);
    }
    headers
}

fn post(url: &str, content_type: &'static str, body: Vec<u8>) -> RequestSpec {
    RequestSpec {
        method: reqwest::Method::POST,
        url: url.to_owned(),
        headers: headers(content_type),
        body: Some(body),
    }
}

/// The seeded keys of `demo-tenant`, by name.
async fn key_ids(client: &reqwest::Client, api: &str) -> Result<HashMap<String, String>, String> {
    let mut list = RequestSpec::get(&format!("{api}/elastickeys?size=1000"));
    list.headers = headers("application/json");
    let (status, body) = send(client, &list).await?;
    let json = expect_json(status, &body).map_err(|e| format!("listing the demo keys: {e}"))?;
    Ok(json
        .get("items")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| {
            Some((
                k.get("name")?.as_str()?.to_owned(),
                k.get("elastic_key_id")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// Sends `request` once and returns its compact JOSE answer (`parts` parts).
async fn obtain(
    client: &reqwest::Client,
    request: &RequestSpec,
    parts: usize,
) -> Result<Vec<u8>, String> {
    let (status, body) = send(client, request).await?;
    compact(status, &body, parts).map_err(|e| format!("preparing {}: {e}", request.url))?;
    Ok(body)
}

/// 200 with a compact serialization of `parts` base64url parts.
fn compact(status: StatusCode, body: &[u8], parts: usize) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("status {status}: {}", truncate(body)));
    }
    let base64url = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if body.split(|b| *b == b'.').count() == parts && body.iter().all(base64url) {
        Ok(())
    } else {
        Err(format!(
            "not a {parts}-part compact token: {}",
            truncate(body)
        ))
    }
}

/// 200 with exactly `expected` as the body.
fn same_body(status: StatusCode, body: &[u8], expected: &[u8]) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("status {status}: {}", truncate(body)));
    }
    if body == expected {
        Ok(())
    } else {
        Err(format!(
            "the body ({} bytes) is not the expected {} bytes",
            body.len(),
            expected.len()
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn checks_accept_good_answers_and_refuse_wrong_ones() {
        assert!(compact(StatusCode::OK, b"a.b.c-_d.e.f", 5).is_ok());
        assert!(compact(StatusCode::OK, b"a.b.c", 5).is_err());
        assert!(compact(StatusCode::OK, b"a.b.c", 3).is_ok());
        assert!(compact(StatusCode::OK, b"a.b c.d", 3).is_err());
        assert!(compact(StatusCode::BAD_REQUEST, b"a.b.c", 3).is_err());
        assert!(same_body(StatusCode::OK, b"xyz", b"xyz").is_ok());
        assert!(same_body(StatusCode::OK, b"xy", b"xyz").is_err());
        assert!(same_body(StatusCode::CREATED, b"xyz", b"xyz").is_err());
        assert_eq!(payload(300).len(), 300);
        assert_eq!(
            user_basic(DEMO_USER),
            "Basic ZGVtby11c2VyOmRlbW8tdXNlci1wYXNzd29yZA=="
        );
        assert!(is_kms("kms-encrypt-dir-64") && !is_kms("identity-jwks"));
        assert_eq!(scenarios().count(), KMS.len());
    }
}
