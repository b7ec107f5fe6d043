//! The post-quantum steps of `demo kms` (issue 26): an ML-DSA-65 signing key (FIPS 204, JWS
//! per RFC 9964) and an ML-KEM-768 encryption key (FIPS 203, JWE per
//! draft-ietf-jose-pqc-kem), each used once and checked the way a relying party would.

use cryptoutil_jose::{JwsAlgorithm, b64};
use serde_json::Value;

use super::{
    PLAINTEXT, as_main_user, create_key, jose, missing, octets, protected_header, unique,
    verify_three_ways,
};
use crate::context::RunContext;
use crate::runner::StepFuture;
use crate::step_error::StepError;

/// Algorithm of the demo's post-quantum signing key.
pub(super) const PQ_SIGNING_ALG: &str = "ML-DSA-65";
/// Algorithm of the demo's post-quantum encryption key (`enc/alg`).
pub(super) const PQ_ENCRYPTION_ALG: &str = "A256GCM/ML-KEM-768";

/// Creates an ML-DSA-65 key, signs "Hello World!", verifies at the KMS and locally with the
/// version's public AKP JWK, and sees a tampered signature refused.
pub(super) fn sign_verify(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        let key = create_key(&kms, unique("demo-kms-mldsa"), PQ_SIGNING_ALG).await?;
        let signed = kms
            .post(&format!("/elastickey/{}/sign", key.id), octets(PLAINTEXT))
            .await?
            .expect(200)?
            .text()?;
        let header = protected_header(&signed, 3)?;
        if header["alg"] != PQ_SIGNING_ALG {
            return Err(StepError::new(format!(
                "JWS header alg {}: expected {PQ_SIGNING_ALG}",
                header["alg"]
            )));
        }
        let alg: JwsAlgorithm = PQ_SIGNING_ALG
            .parse()
            .map_err(|e: cryptoutil_jose::JoseError| StepError::new(e.to_string()))?;
        let checked = verify_three_ways(&kms, &key.id, &signed, alg).await?;
        let public = &checked.public_jwk;
        if public["kty"] != "AKP" {
            return Err(StepError::new(format!(
                "the public JWK is not an AKP key (kty {})",
                public["kty"]
            )));
        }
        let public_len = public["pub"].as_str().map_or(0, str::len);
        let signature_len = signed.rsplit('.').next().map_or(0, str::len);
        Ok(vec![
            format!("{} ({PQ_SIGNING_ALG}) id {}", key.name, key.id),
            format!(
                "compact JWS alg {PQ_SIGNING_ALG}, kid {}, signature {signature_len} base64url characters",
                checked.kid
            ),
            format!(
                "verified at the KMS and locally with the public AKP JWK ({public_len} base64url characters of pub)"
            ),
            format!("tampered signature refused: {}", checked.refused),
        ])
    })
}

/// Creates an ML-KEM-768 key, encrypts "Hello World!" to it, decrypts and compares, and sees a
/// tampered encapsulation refused.
pub(super) fn encrypt_decrypt(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let kms = as_main_user(ctx)?;
        if !cryptoutil_jose::policy::allows("ML-KEM-768") {
            return refused_in_the_fips_build(&kms).await;
        }
        let key = create_key(&kms, unique("demo-kms-mlkem"), PQ_ENCRYPTION_ALG).await?;
        let jwe = kms
            .post(
                &format!("/elastickey/{}/encrypt", key.id),
                octets(PLAINTEXT),
            )
            .await?
            .expect(200)?
            .text()?;
        let header = protected_header(&jwe, 5)?;
        let (enc, kem) = PQ_ENCRYPTION_ALG
            .split_once('/')
            .ok_or_else(|| missing("the enc/alg pair"))?;
        if header["alg"] != kem || header["enc"] != enc {
            return Err(StepError::new(format!(
                "JWE header alg {}, enc {}: expected {kem}, {enc}",
                header["alg"], header["enc"]
            )));
        }
        if jwe.contains("Hello") {
            return Err(StepError::new("the JWE contains the plaintext"));
        }
        let path = format!("/elastickey/{}/decrypt", key.id);
        let clear = kms.post(&path, jose(&jwe)).await?.expect(200)?;
        if clear.body != PLAINTEXT {
            return Err(StepError::new(format!(
                "decrypted {} bytes that differ from \"Hello World!\"",
                clear.body.len()
            )));
        }
        // The ML-KEM ciphertext travels in the protected header's `ek` (draft-ietf-jose-pqc-kem
        // §6, direct key agreement): another ciphertext decapsulates to another shared secret,
        // so the content no longer authenticates.
        let encapsulation_len = header["ek"].as_str().map_or(0, str::len);
        if encapsulation_len == 0 {
            return Err(StepError::new(format!(
                "the JWE header carries no ML-KEM ciphertext (ek): {header}"
            )));
        }
        let refused = kms.post(&path, jose(&with_other_ek(&jwe, &header))).await?;
        if refused.status != 400 {
            return Err(StepError::with_cause(
                "a JWE with a tampered ML-KEM ciphertext was not refused with 400",
                refused.describe(),
            ));
        }
        Ok(vec![
            format!("{} ({PQ_ENCRYPTION_ALG}) id {}", key.name, key.id),
            format!(
                "compact JWE alg {kem}, enc {enc}, {} characters ({encapsulation_len} of them the ML-KEM ciphertext, ek)",
                jwe.len()
            ),
            "decrypted to \"Hello World!\"".to_owned(),
            format!("tampered ML-KEM ciphertext refused: {}", refused.describe()),
        ])
    })
}

/// The FIPS build's version of the ML-KEM step: its KMAC256 key derivation is not a service of the
/// FIPS module, so the KMS must refuse to create the key, saying why (docs/security.md).
async fn refused_in_the_fips_build(kms: &super::Kms<'_>) -> Result<Vec<String>, StepError> {
    let refused = kms
        .post(
            "/elastickey",
            super::Body::Json(serde_json::json!({
                "name": unique("demo-kms-mlkem"),
                "algorithm": PQ_ENCRYPTION_ALG,
            })),
        )
        .await?;
    if refused.status != 400 || !String::from_utf8_lossy(&refused.body).contains("FIPS") {
        return Err(StepError::with_cause(
            "this FIPS build's KMS did not refuse an ML-KEM JWE key as not FIPS-approved",
            refused.describe(),
        ));
    }
    Ok(vec![format!(
        "FIPS build: {PQ_ENCRYPTION_ALG} refused as not FIPS-approved (KMAC256 is outside the module): {}",
        refused.describe()
    )])
}

/// `jwe` with one character of the header's `ek` (the ML-KEM ciphertext) changed, the header
/// re-encoded: what an attacker who swaps the encapsulation would send.
fn with_other_ek(jwe: &str, header: &Value) -> String {
    let mut header = header.clone();
    if let Some(ek) = header["ek"].as_str() {
        let mut changed = ek.to_owned();
        let replacement = if changed.starts_with('A') { "B" } else { "A" };
        changed.replace_range(..1, replacement);
        header["ek"] = Value::String(changed);
    }
    let encoded = b64::encode(header.to_string().as_bytes());
    match jwe.split_once('.') {
        Some((_, rest)) => format!("{encoded}.{rest}"),
        None => encoded,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn another_ek_changes_only_the_ciphertext_in_the_header() {
        let header = serde_json::json!({"alg": "ML-KEM-768", "enc": "A256GCM", "ek": "Axyz"});
        let jwe = format!("{}..iv.ct.tag", b64::encode(header.to_string().as_bytes()));
        let changed = with_other_ek(&jwe, &header);
        assert!(changed.ends_with("..iv.ct.tag"));
        let first = changed.split('.').next().unwrap();
        let decoded: Value =
            serde_json::from_slice(&b64::decode(first.as_bytes(), "header").unwrap()).unwrap();
        assert_eq!(decoded["ek"], "Bxyz");
        assert_eq!(decoded["alg"], "ML-KEM-768");
    }
}
