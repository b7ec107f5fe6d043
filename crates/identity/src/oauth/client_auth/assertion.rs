//! `private_key_jwt` assertions (RFC 7523 §3, OpenID Connect Core §9).
//!
//! - The header `alg` must be an asymmetric FIPS algorithm (no `HS*`, never `none`) and the
//!   key must accept it; the key is chosen by `kid`, or is the client's only key; `oct` keys are
//!   never used.
//! - `iss` = `sub` = the client id; `aud` (string or array) contains an accepted audience (the
//!   issuer or the endpoint URL); `exp` is required, not past (with skew) and at most the
//!   configured lifetime (+ skew) ahead; `nbf`/`iat`, when present, not in the future (with
//!   skew); `jti` is required (single use is the caller's part, through the directory).

use std::time::Duration;

use cryptoutil_jose::header::parse_object;
use cryptoutil_jose::jwk::{JwkSet, KeyMaterial};
use cryptoutil_jose::{JwsAlgorithm, b64, jws};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::model::Client;

/// Longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;
/// Most `aud` entries read.
const MAX_AUDIENCES: usize = 16;

/// Why an assertion was refused (logged at debug level; the client sees `invalid_client`).
pub(crate) type Refusal = &'static str;

/// What a valid assertion yields.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The `jti`.
    pub(crate) jti: String,
    /// The `exp`.
    pub(crate) expires_at: OffsetDateTime,
}

/// Time rules for assertions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeRules {
    pub(crate) now: OffsetDateTime,
    pub(crate) skew: Duration,
    pub(crate) max_lifetime: Duration,
}

/// The client id an assertion names (`sub`, else `iss`), read *without* verification, for the
/// lookup only.
pub(crate) fn claimed_client_id(assertion: &str) -> Result<String, Refusal> {
    let payload = assertion.split('.').nth(1).ok_or("not a compact JWS")?;
    let bytes =
        b64::decode(payload.as_bytes(), "payload").map_err(|_| "payload is not base64url")?;
    let claims = parse_object(&bytes, "claims").map_err(|_| "payload is not a JSON object")?;
    ["sub", "iss"]
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str))
        .map(str::to_owned)
        .ok_or("no sub or iss")
}

/// Verifies `assertion` for `client`.
pub(crate) fn verify(
    client: &Client,
    assertion: &str,
    audiences: &[&str],
    rules: TimeRules,
) -> Result<Accepted, Refusal> {
    let header = jws::peek_header(assertion).map_err(|_| "malformed JWS")?;
    let alg: JwsAlgorithm = header
        .alg()
        .ok_or("no alg")?
        .parse()
        .map_err(|_| "unsupported alg")?;
    if matches!(
        alg,
        JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512
    ) {
        return Err("symmetric alg");
    }
    let jwks = client
        .metadata
        .jwks
        .as_deref()
        .ok_or("client has no JWKS")?;
    let jwks = JwkSet::from_json(jwks).map_err(|_| "client JWKS is invalid")?;
    let key = match header.kid() {
        Some(kid) => jwks.find(kid).ok_or("unknown kid")?,
        None => match jwks.keys.as_slice() {
            [only] => only,
            _ => return Err("no kid and more than one key"),
        },
    };
    if matches!(key.material(), KeyMaterial::Oct(_)) {
        return Err("symmetric key");
    }
    let verified = jws::verify(key, alg, assertion).map_err(|_| "signature or key mismatch")?;
    let claims =
        parse_object(&verified.payload, "claims").map_err(|_| "payload is not a JSON object")?;
    check_claims(&claims, &client.client_id, audiences, rules)
}

fn check_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    audiences: &[&str],
    rules: TimeRules,
) -> Result<Accepted, Refusal> {
    let text = |name| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err("iss or sub is not the client id");
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(&aud.as_str()),
        Some(Value::Array(list)) if list.len() <= MAX_AUDIENCES => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => false,
    };
    if !aud_ok {
        return Err("aud does not name this server");
    }
    let now = rules.now.unix_timestamp();
    let skew = secs(rules.skew);
    let exp = numeric_date(claims, "exp")?.ok_or("no exp")?;
    if exp.saturating_add(skew) <= now {
        return Err("expired");
    }
    if exp
        > now
            .saturating_add(secs(rules.max_lifetime))
            .saturating_add(skew)
    {
        return Err("exp too far in the future");
    }
    for name in ["nbf", "iat"] {
        if numeric_date(claims, name)?.is_some_and(|t| t > now.saturating_add(skew)) {
            return Err("nbf or iat in the future");
        }
    }
    let jti = text("jti").ok_or("no jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err("jti is empty or too long");
    }
    let expires_at = OffsetDateTime::from_unix_timestamp(exp).map_err(|_| "exp out of range")?;
    Ok(Accepted {
        jti: jti.to_owned(),
        expires_at,
    })
}

/// A NumericDate claim in whole seconds (fractions are dropped); an error when not a number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => {
            if let Some(i) = v.as_i64() {
                return Ok(Some(i));
            }
            match v.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                _ => Err("a time claim is not a number"),
            }
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
