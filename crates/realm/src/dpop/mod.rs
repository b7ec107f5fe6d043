//! DPoP proof verification (RFC 9449 §4.2–4.3), free of HTTP types.
//!
//! [`verify`] checks one `DPoP` header value against the request it came with (method, target
//! URI, time, the server nonce it expects, and the access token it accompanies) and returns the
//! [`VerifiedProof`] with the key's RFC 7638 thumbprint (`jkt`), or a [`DpopError`] naming the
//! check that failed.
//!
//! It lives in the realm crate because both sides need it: Identity's token endpoint and every
//! resource server (the KMS, the sample resource server).
//!
//! Replay is **not** checked by [`verify`]: the caller checks the returned proof against a
//! [`ReplayCache`] (see [`replay`]) that keeps it for at least the `iat` window.
//!
//! The HTTP layer must refuse a request that carries more than one `DPoP` header field; a value
//! with a `,` (two fields joined) is refused here.

pub mod htu;
pub mod memory;
pub mod replay;

pub use memory::MemoryReplayCache;
pub use replay::{ReplayCache, ReplayError};

use aws_lc_rs::digest;
use cryptoutil_jose::header::parse_object;
use cryptoutil_jose::jwk::KeyMaterial;
use cryptoutil_jose::{JoseError, Jwk, JwsAlgorithm, OkpCurve, b64, jws};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use url::Url;

/// Largest accepted `DPoP` header value, in bytes.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest accepted `jti`, in bytes.
pub const MAX_JTI_LEN: usize = 256;
/// The `typ` a DPoP proof carries (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";
/// The asymmetric algorithms a proof may use, whatever the settings say: never `none` (which
/// does not parse) nor HMAC.
pub const SUPPORTED_ALGORITHMS: &[JwsAlgorithm] = &[
    JwsAlgorithm::ES256,
    JwsAlgorithm::ES384,
    JwsAlgorithm::PS256,
    JwsAlgorithm::EdDSA,
];
/// RFC 9864's fully-specified name for EdDSA over Ed25519, which some clients (openid-client)
/// put in a proof's `alg`: accepted as [`JwsAlgorithm::EdDSA`] with an Ed25519 key.
pub const ED25519: &str = "Ed25519";
/// JWK members that only private or symmetric keys have.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// Accepted `alg` values; only those also in [`SUPPORTED_ALGORITHMS`] are ever accepted.
    pub algorithms: Vec<JwsAlgorithm>,
    /// Oldest accepted `iat`: `now - max_age - leeway`.
    pub max_age: Duration,
    /// Clock skew allowed either way (an `iat` up to `now + leeway` is accepted).
    pub leeway: Duration,
}

impl Default for DpopSettings {
    /// Every supported algorithm, a 60 s window and 5 s leeway.
    fn default() -> Self {
        Self {
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
            max_age: Duration::seconds(60),
            leeway: Duration::seconds(5),
        }
    }
}

/// The request a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method (`htm`), compared exactly.
    pub method: &'a str,
    /// The target URI as the server is configured to see it (`htu`).
    pub uri: &'a Url,
    /// The current time.
    pub now: OffsetDateTime,
    /// The server nonce the proof must carry, when the server requires one.
    pub nonce: Option<&'a str>,
    /// The access token the proof accompanies (checked through `ath`), at a resource server.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's `jwk`, base64url (`cnf.jkt`).
    pub jkt: String,
    /// `jti`: the caller must check it against a replay cache.
    pub jti: String,
    /// `iat`.
    pub iat: OffsetDateTime,
    /// `htm`.
    pub htm: String,
    /// `htu` as the proof states it.
    pub htu: String,
    /// The signing algorithm.
    pub alg: JwsAlgorithm,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The header value exceeds [`MAX_PROOF_LEN`].
    #[error("DPoP proof exceeds {MAX_PROOF_LEN} bytes")]
    TooLarge,
    /// Not exactly one compact JWS of strict base64url and JSON.
    #[error("malformed DPoP proof: {0}")]
    Malformed(String),
    /// `typ` is not `dpop+jwt`.
    #[error("DPoP proof typ is not dpop+jwt")]
    Typ,
    /// `alg` is missing, unknown, symmetric or not allowed.
    #[error("DPoP proof alg not allowed")]
    Algorithm,
    /// `jwk` is missing, not a public asymmetric key, or does not fit `alg`.
    #[error("DPoP proof jwk: {0}")]
    Jwk(&'static str),
    /// The signature does not verify with `jwk`.
    #[error("DPoP proof signature does not verify")]
    Signature,
    /// `jti` is missing, empty, not a string or longer than [`MAX_JTI_LEN`].
    #[error("DPoP proof jti missing or invalid")]
    Jti,
    /// `htm` is missing or differs from the request's method.
    #[error("DPoP proof htm does not match the request method")]
    Htm,
    /// `htu` is missing or differs from the request's URI (RFC 9449 §4.3).
    #[error("DPoP proof htu does not match the request URI")]
    Htu,
    /// `iat` is missing or not an integer.
    #[error("DPoP proof iat missing or invalid")]
    Iat,
    /// `iat` is older than the window.
    #[error("DPoP proof is too old")]
    Expired,
    /// `iat` is further in the future than the leeway.
    #[error("DPoP proof iat is in the future")]
    NotYetValid,
    /// The server requires a nonce and the proof's is missing or differs
    /// (answered with `use_dpop_nonce`).
    #[error("DPoP proof nonce missing or stale")]
    UseNonce,
    /// `ath` is missing or is not the hash of the access token.
    #[error("DPoP proof ath does not match the access token")]
    Ath,
}

impl DpopError {
    /// The OAuth error code for this failure (RFC 9449 §12.2): `use_dpop_nonce` or
    /// `invalid_dpop_proof`.
    #[must_use]
    pub fn error_code(&self) -> &'static str {
        match self {
            DpopError::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }
}

/// `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
#[must_use]
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

fn malformed(e: &JoseError) -> DpopError {
    DpopError::Malformed(e.to_string())
}

/// Verifies a `DPoP` header value against `request` (RFC 9449 §4.3, every check but replay).
///
/// # Errors
/// The [`DpopError`] of the first failed check; nonce is checked last, after the proof is
/// otherwise valid.
pub fn verify(
    proof: &str,
    request: &ProofRequest<'_>,
    settings: &DpopSettings,
) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::TooLarge);
    }
    if !proof
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        || proof.bytes().filter(|c| *c == b'.').count() != 2
    {
        return Err(DpopError::Malformed(
            "not exactly one compact JWS".to_owned(),
        ));
    }
    let header = jws::peek_header(proof).map_err(|e| malformed(&e))?;
    if !header.typ().is_some_and(|t| t.eq_ignore_ascii_case(TYP)) {
        return Err(DpopError::Typ);
    }
    let alg_name = header.alg().ok_or(DpopError::Algorithm)?;
    let fully_specified = alg_name == ED25519;
    let alg: JwsAlgorithm = if fully_specified {
        JwsAlgorithm::EdDSA
    } else {
        alg_name.parse().map_err(|_| DpopError::Algorithm)?
    };
    if !SUPPORTED_ALGORITHMS.contains(&alg) || !settings.algorithms.contains(&alg) {
        return Err(DpopError::Algorithm);
    }
    let jwk = public_jwk(header.get("jwk"))?;
    let signature_error = |e: JoseError| match e {
        JoseError::InvalidSignature => DpopError::Signature,
        JoseError::KeyMismatch(_) | JoseError::AlgorithmMismatch { .. } => {
            DpopError::Jwk("does not fit alg")
        }
        other => malformed(&other),
    };
    let payload = if fully_specified {
        verify_ed25519(&jwk, &header, proof, signature_error)?
    } else {
        jws::verify(&jwk, alg, proof)
            .map_err(signature_error)?
            .payload
    };
    let claims = parse_object(&payload, "claims").map_err(|e| malformed(&e))?;

    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_JTI_LEN => j.clone(),
        _ => return Err(DpopError::Jti),
    };
    let htm = match claims.get("htm") {
        Some(Value::String(m)) if m == request.method => m.clone(),
        _ => return Err(DpopError::Htm),
    };
    let htu = match claims.get("htu") {
        Some(Value::String(u)) => u.clone(),
        _ => return Err(DpopError::Htu),
    };
    match (htu::normalise_str(&htu), htu::normalise(request.uri)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(DpopError::Htu),
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or(DpopError::Iat)?;
    if iat < request.now - settings.max_age - settings.leeway {
        return Err(DpopError::Expired);
    }
    if iat > request.now + settings.leeway {
        return Err(DpopError::NotYetValid);
    }
    if let Some(token) = request.access_token {
        let expected = access_token_hash(token);
        match claims.get("ath") {
            Some(Value::String(a)) if bool::from(a.as_bytes().ct_eq(expected.as_bytes())) => {}
            _ => return Err(DpopError::Ath),
        }
    }
    if let Some(nonce) = request.nonce {
        match claims.get("nonce") {
            Some(Value::String(n)) if n == nonce => {}
            _ => return Err(DpopError::UseNonce),
        }
    }
    Ok(VerifiedProof {
        jkt: jwk.thumbprint(),
        jti,
        iat,
        htm,
        htu,
        alg,
    })
}

/// Verifies a proof whose `alg` is [`ED25519`] (which [`jws::verify`] does not take under that
/// name): no `crit` or `b64` (as [`jws::verify`] refuses them), an Ed25519 `jwk`, the signature
/// over the signing input; returns the payload.
fn verify_ed25519(
    jwk: &Jwk,
    header: &cryptoutil_jose::header::Header,
    proof: &str,
    signature_error: impl Fn(JoseError) -> DpopError,
) -> Result<Vec<u8>, DpopError> {
    if header.get("crit").is_some() || header.get("b64").is_some() {
        return Err(DpopError::Malformed(
            "crit and b64 are not accepted in a proof".to_owned(),
        ));
    }
    if !matches!(jwk.material(), KeyMaterial::Okp(k) if k.curve() == OkpCurve::Ed25519) {
        return Err(DpopError::Jwk("does not fit alg"));
    }
    let (signing_input, signature) = proof
        .rsplit_once('.')
        .ok_or_else(|| DpopError::Malformed("not a compact JWS".to_owned()))?;
    let (_, payload) = signing_input
        .split_once('.')
        .ok_or_else(|| DpopError::Malformed("not a compact JWS".to_owned()))?;
    let signature = b64::decode(signature.as_bytes(), "signature").map_err(|e| malformed(&e))?;
    jws::verify_raw(
        jwk,
        JwsAlgorithm::EdDSA,
        signing_input.as_bytes(),
        &signature,
    )
    .map_err(signature_error)?;
    b64::decode(payload.as_bytes(), "payload").map_err(|e| malformed(&e))
}

/// The header's `jwk`: present, an object, asymmetric, without private members.
fn public_jwk(value: Option<&Value>) -> Result<Jwk, DpopError> {
    let Some(Value::Object(m)) = value else {
        return Err(DpopError::Jwk("missing"));
    };
    check_public_members(m)?;
    Jwk::from_map(m).map_err(|_| DpopError::Jwk("invalid key"))
}

fn check_public_members(m: &Map<String, Value>) -> Result<(), DpopError> {
    if !matches!(m.get("kty"), Some(Value::String(k)) if matches!(k.as_str(), "EC" | "RSA" | "OKP"))
    {
        return Err(DpopError::Jwk("not an asymmetric key type"));
    }
    if PRIVATE_MEMBERS.iter().any(|p| m.contains_key(*p)) {
        return Err(DpopError::Jwk("not a public key"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
