//! Software statements (RFC 7591 §2.3): a JWS whose claims are client metadata, signed by a
//! party this server trusts. Verified against the configured public keys
//! (`registration.software_statement_jwks`); its claims then replace the request's values of
//! the same fields (§3.1.1: "the values in the software statement take precedence").
//!
//! - No trusted keys configured: `unapproved_software_statement` (this server approves none).
//! - Malformed, too large, a symmetric or unknown algorithm, an unknown `kid`, a bad signature,
//!   expired (`exp`) or not yet valid (`nbf`, `iat` in the future): `invalid_software_statement`.

use cryptoutil_jose::jwk::{JwkSet, KeyMaterial};
use cryptoutil_jose::{JwsAlgorithm, jws};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::error::MetadataError;
use super::metadata::{MAX_DEPTH, depth_within};

/// Longest accepted statement (compact JWS characters).
pub const MAX_STATEMENT_LEN: usize = 8 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const SKEW_SECS: i64 = 60;
/// JWT claims that describe the statement itself and are not client metadata.
const ENVELOPE: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];
/// Fields a statement may not set (the server's or the request's own).
const FORBIDDEN: [&str; 3] = ["software_statement", "client_id", "client_secret"];

/// Verifies `statement` with `keys` at `now` and returns the metadata claims it asserts.
pub fn verify(
    statement: &str,
    keys: Option<&JwkSet>,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, MetadataError> {
    let Some(keys) = keys else {
        return Err(MetadataError::unapproved(
            "this server approves no software statements",
        ));
    };
    if statement.len() > MAX_STATEMENT_LEN {
        return Err(MetadataError::statement(format!(
            "the software statement is longer than {MAX_STATEMENT_LEN} characters"
        )));
    }
    let invalid = |why: &str| MetadataError::statement(format!("the software statement {why}"));
    let header = jws::peek_header(statement).map_err(|_| invalid("is not a compact JWS"))?;
    let alg: JwsAlgorithm = header
        .alg()
        .ok_or_else(|| invalid("has no alg"))?
        .parse()
        .map_err(|_| invalid("uses an unsupported alg"))?;
    if matches!(
        alg,
        JwsAlgorithm::HS256 | JwsAlgorithm::HS384 | JwsAlgorithm::HS512
    ) {
        return Err(invalid("uses a symmetric alg"));
    }
    let key = match header.kid() {
        Some(kid) => keys
            .find(kid)
            .ok_or_else(|| invalid("names an unknown kid"))?,
        None => match keys.keys.as_slice() {
            [only] => only,
            _ => return Err(invalid("has no kid and several keys are trusted")),
        },
    };
    if matches!(key.material(), KeyMaterial::Oct(_)) {
        return Err(invalid("names a symmetric key"));
    }
    let verified =
        jws::verify(key, alg, statement).map_err(|_| invalid("signature does not verify"))?;
    if !depth_within(&verified.payload, MAX_DEPTH) {
        return Err(invalid("nests too deep"));
    }
    let Ok(Value::Object(mut claims)) = serde_json::from_slice::<Value>(&verified.payload) else {
        return Err(invalid("payload is not a JSON object"));
    };
    let now = now.unix_timestamp();
    let time = |name: &str| -> Result<Option<i64>, MetadataError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(&format!("has a non-numeric {name}"))),
        }
    };
    if time("exp")?.is_some_and(|exp| exp + SKEW_SECS <= now) {
        return Err(invalid("has expired"));
    }
    if time("nbf")?.is_some_and(|nbf| nbf - SKEW_SECS > now)
        || time("iat")?.is_some_and(|iat| iat - SKEW_SECS > now)
    {
        return Err(invalid("is not valid yet"));
    }
    for name in ENVELOPE {
        claims.remove(name);
    }
    if let Some(name) = FORBIDDEN.iter().find(|n| claims.contains_key(**n)) {
        return Err(invalid(&format!("must not set {name}")));
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use cryptoutil_jose::{EcCurve, Jwk};
    use serde_json::json;

    use super::*;
    use crate::registration::error::MetadataErrorCode;

    fn key() -> Jwk {
        let mut key = Jwk::generate_ec(EcCurve::P256).unwrap();
        key.set_kid(Some("ss1".to_owned()));
        key
    }

    fn sign(key: &Jwk, claims: &Value) -> String {
        let mut header = Map::new();
        header.insert("kid".into(), "ss1".into());
        jws::sign(
            key,
            JwsAlgorithm::ES256,
            claims.to_string().as_bytes(),
            Some(&header),
        )
        .unwrap()
    }

    fn trusted(key: &Jwk) -> JwkSet {
        JwkSet::from_json(&json!({"keys": [key.to_public().unwrap().to_value(false)]}).to_string())
            .unwrap()
    }

    #[test]
    fn a_trusted_statement_yields_its_claims() {
        let key = key();
        let now = OffsetDateTime::now_utc();
        let statement = sign(
            &key,
            &json!({"iss": "vendor", "software_id": "app", "client_name": "Signed",
                    "iat": now.unix_timestamp(), "exp": now.unix_timestamp() + 600}),
        );
        let claims = verify(&statement, Some(&trusted(&key)), now).unwrap();
        assert_eq!(claims["client_name"], "Signed");
        assert!(!claims.contains_key("iss") && !claims.contains_key("exp"));
    }

    #[test]
    fn bad_statements_are_refused_with_the_right_code() {
        let key = key();
        let now = OffsetDateTime::now_utc();
        let keys = trusted(&key);
        let code =
            |statement: &str, keys: Option<&JwkSet>| verify(statement, keys, now).unwrap_err().code;
        let good = sign(&key, &json!({"software_id": "app"}));
        assert_eq!(
            code(&good, None),
            MetadataErrorCode::UnapprovedSoftwareStatement
        );
        let other = sign(&self::key(), &json!({"software_id": "app"}));
        let expired = sign(&key, &json!({"exp": now.unix_timestamp() - 3600}));
        let future = sign(&key, &json!({"nbf": now.unix_timestamp() + 3600}));
        let sets_id = sign(&key, &json!({"client_id": "mine"}));
        let array = sign(&key, &json!([1, 2]));
        let long = "a".repeat(MAX_STATEMENT_LEN + 1);
        for bad in [
            other.as_str(),
            &expired,
            &future,
            &sets_id,
            &array,
            "not.a.jws",
            "",
            &long,
        ] {
            assert_eq!(
                code(bad, Some(&keys)),
                MetadataErrorCode::InvalidSoftwareStatement,
                "{bad}"
            );
        }
    }
}
