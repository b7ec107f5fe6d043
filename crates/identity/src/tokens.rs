//! Tokens: JWT access tokens (RFC 9068), OpenID Connect ID tokens, and opaque secrets (codes,
//! refresh tokens) that are stored only as hashes.
//!
//! Issuance writes the claims straight into the base64url signing input (no intermediate JSON
//! buffer; the JOSE header is prebuilt per key ring), so one token costs the output string, the
//! signature and the claim values the caller already built.

use std::io;

use aws_lc_rs::digest;
use cryptoutil_jose::header::{Header, check_crit};
use cryptoutil_jose::{b64, jws};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::signing::{KeyRing, SigningAlgorithm};

/// The longest token [`KeyRing::verify_access_token`] looks at, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest protected header accepted, in base64url characters.
const MAX_HEADER_B64_LEN: usize = 1024;

/// Tolerated clock difference for `exp` and `iat`, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// Why a token could not be issued or was refused. Messages never contain the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("the token is too long")]
    TooLarge,
    /// Not a compact JWS, bad base64url, bad header JSON, `crit`/`b64`/`zip` present.
    #[error("the token is malformed")]
    Malformed,
    /// The header `typ` is not the expected one (`at+jwt` for access tokens, `JWT` for ID
    /// tokens).
    #[error("the token has the wrong type")]
    WrongType,
    /// The header `alg` is not one of the ring's, or not the algorithm of the key named by `kid`.
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// No published key has the header `kid` (or there is none).
    #[error("the token's key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    InvalidSignature,
    /// The payload is not the expected claim set.
    #[error("the token's claims are invalid")]
    InvalidClaims,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `iat` lies in the future.
    #[error("the token is not yet valid")]
    NotYetValid,
    /// The ring has no signing key.
    #[error("no signing key is available")]
    NoSigningKey,
    /// The cryptographic library failed (RNG, signing).
    #[error("token cryptography failed: {0}")]
    Crypto(&'static str),
}

/// The `aud` claim: one audience (serialized as a string) or several (an array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// One audience when `list` has exactly one entry, otherwise an array.
    #[must_use]
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1
            && let Some(one) = list.pop()
        {
            return Self::One(one);
        }
        Self::Many(list)
    }

    /// True when `aud` is one of the audiences.
    #[must_use]
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(list) => list.iter().any(|a| a == aud),
        }
    }

    /// The audiences.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Self::One(a) => core::slice::from_ref(a),
            Self::Many(list) => list,
        };
        slice.iter().map(String::as_str)
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2). Times are seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The subject: the user's id, or the `client_id` for `client_credentials`.
    pub sub: String,
    /// The audience(s).
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// A unique id (UUIDv7, [`AccessTokenClaims::new_jti`]).
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// The tenant of the client or user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// When the user authenticated (user tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The user's authentication context class (`acr`, RFC 9068 §2.2.1; user grants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How the user authenticated (`amr`, RFC 8176; user grants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The user's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The key the token is bound to (RFC 9449 §6.1: `cnf.jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The actor of a delegated token (RFC 8693 §4.1), nested for chains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The confirmation claim of a sender-constrained token (RFC 7800 §3.1, RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the DPoP key, base64url.
    pub jkt: String,
}

/// The `act` claim (RFC 8693 §4.1): who acts for the subject; `act` inside it is the actor
/// before it in a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's subject.
    pub sub: String,
    /// The actor's client, when the actor is a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The previous actor of the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl AccessTokenClaims {
    /// A fresh `jti` (UUIDv7).
    #[must_use]
    pub fn new_jti() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// True when `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// The claims of an OpenID Connect ID token (OIDC Core §2, §3.1.3.6). Times are seconds since
/// the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The client (`client_id`).
    pub aud: String,
    /// The authorized party (the same `client_id`).
    pub azp: String,
    /// The `nonce` of the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The authentication context class reached (`acr`, OpenID Connect Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How the user authenticated (`amr`, RFC 8176 values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// [`at_hash`] of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// `profile`: full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `profile`: given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// `profile`: family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// `profile`: the login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `email`: address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email`: whether the address was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// Appends the base64url encoding of everything written to it to a `String`, in chunks (a
/// multiple of 3 bytes, so chunk encodings concatenate), without an intermediate buffer on the
/// heap.
struct Base64UrlWriter<'a> {
    out: &'a mut String,
    buf: [u8; 768],
    len: usize,
}

impl<'a> Base64UrlWriter<'a> {
    fn new(out: &'a mut String) -> Self {
        Self {
            out,
            buf: [0; 768],
            len: 0,
        }
    }

    fn finish(self) {
        b64::encode_into(&self.buf[..self.len], self.out);
    }
}

impl io::Write for Base64UrlWriter<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            let n = (self.buf.len() - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == self.buf.len() {
                b64::encode_into(&self.buf, self.out);
                self.len = 0;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Room reserved for the encoded claims (typical access tokens need 300–600 bytes).
const CLAIMS_B64_RESERVE: usize = 1024;

impl KeyRing {
    /// Signs an access token (`typ: at+jwt`, `alg` and `kid` of the signing key).
    ///
    /// # Errors
    /// [`TokenError::NoSigningKey`], or [`TokenError::Crypto`] when signing fails.
    pub fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        self.sign_jwt(true, claims)
    }

    /// Signs an ID token (`typ: JWT`, `alg` and `kid` of the signing key).
    ///
    /// # Errors
    /// [`TokenError::NoSigningKey`], or [`TokenError::Crypto`] when signing fails.
    pub fn sign_id_token(&self, claims: &IdTokenClaims) -> Result<String, TokenError> {
        self.sign_jwt(false, claims)
    }

    fn sign_jwt<T: Serialize>(&self, access: bool, claims: &T) -> Result<String, TokenError> {
        let signer = self.signer.as_ref().ok_or(TokenError::NoSigningKey)?;
        let header = if access {
            &signer.access_header
        } else {
            &signer.id_header
        };
        let key = &signer.key;
        let sig_b64_len = match key.alg() {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => b64::encoded_len(512),
            SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => b64::encoded_len(64),
        };
        let mut out = String::with_capacity(header.len() + CLAIMS_B64_RESERVE + sig_b64_len + 2);
        out.push_str(header);
        out.push('.');
        let mut w = Base64UrlWriter::new(&mut out);
        serde_json::to_writer(&mut w, claims).map_err(|_| TokenError::Crypto("claims encoding"))?;
        w.finish();
        let sig = {
            let alg = key.alg().jws();
            let _span = cryptoutil_telemetry::crypto_span("identity", "sign", alg.name()).entered();
            jws::sign_raw(key.jwk(), alg, out.as_bytes())
        }
        .map_err(|_| TokenError::Crypto("signing"))?;
        out.push('.');
        b64::encode_into(&sig, &mut out);
        Ok(out)
    }

    /// Verifies an access token issued with this ring: size, structure, `typ` `at+jwt` (or
    /// `application/at+jwt`), `alg` one of the ring's and the one of the key named by `kid`,
    /// the signature, then `exp` and `iat` against `now` with [`CLOCK_SKEW_SECONDS`]. The
    /// issuer and audience are the caller's to check.
    ///
    /// # Errors
    /// The first failed check, as a [`TokenError`].
    pub fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, TokenError> {
        let claims: AccessTokenClaims = self.verify_jwt(token, |typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        })?;
        let now = now.unix_timestamp();
        if now >= claims.exp.saturating_add(CLOCK_SKEW_SECONDS) {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.saturating_add(CLOCK_SKEW_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// Verifies an ID token issued with this ring (`typ: JWT`, `alg`, `kid`, signature) without
    /// checking its times: for `id_token_hint` at logout, where an expired ID token is still a
    /// valid hint (OpenID RP-Initiated Logout §2).
    ///
    /// # Errors
    /// The first failed check, as a [`TokenError`].
    pub fn verify_id_token_hint(&self, token: &str) -> Result<IdTokenClaims, TokenError> {
        self.verify_jwt(token, |typ| typ.eq_ignore_ascii_case("JWT"))
    }

    fn verify_jwt<T: DeserializeOwned>(
        &self,
        token: &str,
        typ_ok: impl Fn(&str) -> bool,
    ) -> Result<T, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let (h, rest) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let (p, s) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        if s.contains('.') || h.len() > MAX_HEADER_B64_LEN {
            return Err(TokenError::Malformed);
        }
        let header = b64::decode(h.as_bytes(), "header")
            .ok()
            .and_then(|json| Header::parse(&json).ok())
            .ok_or(TokenError::Malformed)?;
        if check_crit(header.members(), &[]).is_err()
            || header.get("b64").is_some()
            || header.get("zip").is_some()
        {
            return Err(TokenError::Malformed);
        }
        if !header.typ().is_some_and(typ_ok) {
            return Err(TokenError::WrongType);
        }
        let alg = header
            .alg()
            .and_then(SigningAlgorithm::parse)
            .filter(|a| self.algorithms().contains(a))
            .ok_or(TokenError::UnsupportedAlgorithm)?;
        let key = header
            .kid()
            .and_then(|kid| self.verification_key(kid))
            .ok_or(TokenError::UnknownKey)?;
        if key.alg != alg {
            return Err(TokenError::UnsupportedAlgorithm);
        }
        let sig = b64::decode(s.as_bytes(), "signature").map_err(|_| TokenError::Malformed)?;
        jws::verify_raw(
            &key.jwk,
            alg.jws(),
            &token.as_bytes()[..h.len() + 1 + p.len()],
            &sig,
        )
        .map_err(|_| TokenError::InvalidSignature)?;
        let payload = b64::decode(p.as_bytes(), "payload").map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidClaims)
    }
}

/// The OpenID Connect `at_hash` of `access_token` for an ID token signed with `alg`: the
/// base64url left half of the token's hash (OIDC Core §3.1.3.6). ES256, RS256 and PS256 hash
/// with SHA-256; EdDSA (Ed25519) with SHA-512, as OpenID Connect Core errata set 2 and the
/// OpenID conformance suite specify (the hash Ed25519 uses internally).
#[must_use]
pub fn at_hash(alg: SigningAlgorithm, access_token: &str) -> String {
    let hash = match alg {
        SigningAlgorithm::ES256 | SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
            &digest::SHA256
        }
        SigningAlgorithm::EdDSA => &digest::SHA512,
    };
    let d = digest::digest(hash, access_token.as_bytes());
    let d = d.as_ref();
    b64::encode(&d[..d.len() / 2])
}

/// A fresh opaque secret (authorization code, refresh token, session id): 32 random bytes,
/// base64url (43 characters).
///
/// # Errors
/// [`TokenError::Crypto`] when the system RNG fails.
pub fn opaque_secret() -> Result<String, TokenError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| TokenError::Crypto("RNG"))?;
    Ok(b64::encode(&bytes[..]))
}

/// How an opaque secret is stored and looked up: base64url(SHA-256(secret)).
#[must_use]
pub fn secret_hash(secret: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use cryptoutil_jose::Jwk;
    use serde_json::Value;
    use time::Duration;

    use super::*;
    use crate::signing::{RotationPolicy, SigningKey};

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000 + s).unwrap()
    }

    fn policy() -> RotationPolicy {
        RotationPolicy::new(
            SigningAlgorithm::ES256,
            Duration::days(30),
            Duration::hours(2),
        )
    }

    fn ring(alg: SigningAlgorithm) -> KeyRing {
        let key = Arc::new(SigningKey::generate(alg, t(0)).unwrap());
        KeyRing::new(&[key], t(0), &policy()).unwrap()
    }

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://localhost:8082".into(),
            sub: "0190a000-0000-7000-8000-000000000001".into(),
            aud: Audience::from_list(vec!["cryptoutil-kms".into()]),
            client_id: "demo-kms-client".into(),
            scope: "kms:read kms:write".into(),
            jti: AccessTokenClaims::new_jti(),
            iat: t(0).unix_timestamp(),
            exp: t(300).unix_timestamp(),
            tenant_id: Some("demo-tenant".into()),
            auth_time: None,
            acr: None,
            amr: None,
            roles: None,
            cnf: None,
            act: None,
        }
    }

    fn id_claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://localhost:8082".into(),
            sub: "u1".into(),
            aud: "demo-spa-client".into(),
            azp: "demo-spa-client".into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            auth_time: t(-5).unix_timestamp(),
            acr: Some("urn:cryptoutil:acr:mfa".into()),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            at_hash: Some("x".into()),
            iat: t(0).unix_timestamp(),
            exp: t(300).unix_timestamp(),
            name: Some("Demo \"User\" ü".into()),
            given_name: None,
            family_name: None,
            preferred_username: None,
            email: Some("demo@example.com".into()),
            email_verified: Some(true),
        }
    }

    fn header(token: &str) -> Value {
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(&b64::decode(h.as_bytes(), "h").unwrap()).unwrap()
    }

    fn payload(token: &str) -> Value {
        let p = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&b64::decode(p.as_bytes(), "p").unwrap()).unwrap()
    }

    /// Re-signs arbitrary header/payload JSON with the ring's key (to build hostile tokens).
    fn forge(ring: &KeyRing, header: &Value, payload: &Value) -> String {
        let key = ring.signing_key().unwrap();
        let mut input = b64::encode(header.to_string().as_bytes());
        input.push('.');
        input.push_str(&b64::encode(payload.to_string().as_bytes()));
        let sig = jws::sign_raw(key.jwk(), key.alg().jws(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(&sig))
    }

    #[test]
    fn access_token_round_trip_every_algorithm() {
        for alg in SigningAlgorithm::ALL {
            let ring = ring(alg);
            let c = claims();
            let token = ring.sign_access_token(&c).unwrap();
            let h = header(&token);
            assert_eq!(h["typ"], "at+jwt");
            assert_eq!(h["alg"], alg.name());
            assert_eq!(h["kid"], ring.signing_kid().unwrap());
            let p = payload(&token);
            assert_eq!(p["aud"], "cryptoutil-kms");
            assert_eq!(p["scope"], "kms:read kms:write");
            assert!(p.get("roles").is_none());
            assert_eq!(ring.verify_access_token(&token, t(10)).unwrap(), c);
            // Independently verifiable with the published JWK through the JOSE crate.
            let jwks: Value = serde_json::from_slice(&ring.jwks_json()).unwrap();
            let public = Jwk::from_value(jwks["keys"][0].clone()).unwrap();
            let verified = jws::verify(&public, alg.jws(), &token).unwrap();
            assert_eq!(
                serde_json::from_slice::<AccessTokenClaims>(&verified.payload).unwrap(),
                c
            );
        }
    }

    #[test]
    fn large_claims_cross_the_writer_chunk() {
        let ring = ring(SigningAlgorithm::ES256);
        for n in [0usize, 1, 2, 3, 100, 700, 767, 768, 769, 2000] {
            let mut c = claims();
            c.roles = Some(vec!["r".repeat(n), "é".into()]);
            c.aud = Audience::from_list(vec!["a".into(), "b".into()]);
            let token = ring.sign_access_token(&c).unwrap();
            assert_eq!(ring.verify_access_token(&token, t(1)).unwrap(), c, "{n}");
            assert_eq!(
                serde_json::to_vec(&c).unwrap(),
                b64::decode(token.split('.').nth(1).unwrap().as_bytes(), "p").unwrap()
            );
        }
    }

    #[test]
    fn id_token_round_trip() {
        let ring = ring(SigningAlgorithm::ES256);
        let token = ring.sign_id_token(&id_claims()).unwrap();
        assert_eq!(header(&token)["typ"], "JWT");
        assert_eq!(payload(&token)["aud"], "demo-spa-client");
        assert!(payload(&token).get("given_name").is_none());
        assert_eq!(ring.verify_id_token_hint(&token).unwrap(), id_claims());
        // An ID token is not an access token, and the reverse.
        assert_eq!(
            ring.verify_access_token(&token, t(1)),
            Err(TokenError::WrongType)
        );
        let at = ring.sign_access_token(&claims()).unwrap();
        assert_eq!(ring.verify_id_token_hint(&at), Err(TokenError::WrongType));
    }

    #[test]
    fn times_are_checked_with_skew() {
        let ring = ring(SigningAlgorithm::ES256);
        let token = ring.sign_access_token(&claims()).unwrap();
        assert!(ring.verify_access_token(&token, t(300 + 59)).is_ok());
        assert_eq!(
            ring.verify_access_token(&token, t(300 + 60)),
            Err(TokenError::Expired)
        );
        assert!(ring.verify_access_token(&token, t(-60)).is_ok());
        assert_eq!(
            ring.verify_access_token(&token, t(-61)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn hostile_tokens_refused() {
        let ring = ring(SigningAlgorithm::ES256);
        let kid = ring.signing_kid().unwrap().to_owned();
        let good_payload = serde_json::to_value(claims()).unwrap();
        let h = |v: Value| forge(&ring, &v, &good_payload);

        let ok = h(serde_json::json!({"alg":"ES256","kid":kid,"typ":"at+jwt"}));
        assert!(ring.verify_access_token(&ok, t(1)).is_ok());
        let ok = h(serde_json::json!({"alg":"ES256","kid":kid,"typ":"application/AT+JWT"}));
        assert!(ring.verify_access_token(&ok, t(1)).is_ok());

        let cases = [
            (
                serde_json::json!({"alg":"ES256","kid":kid,"typ":"JWT"}),
                TokenError::WrongType,
            ),
            (
                serde_json::json!({"alg":"ES256","kid":kid}),
                TokenError::WrongType,
            ),
            (
                serde_json::json!({"alg":"ES256","kid":"nope","typ":"at+jwt"}),
                TokenError::UnknownKey,
            ),
            (
                serde_json::json!({"alg":"ES256","typ":"at+jwt"}),
                TokenError::UnknownKey,
            ),
            (
                serde_json::json!({"alg":"RS256","kid":kid,"typ":"at+jwt"}),
                TokenError::UnsupportedAlgorithm,
            ),
            (
                serde_json::json!({"alg":"none","kid":kid,"typ":"at+jwt"}),
                TokenError::UnsupportedAlgorithm,
            ),
            (
                serde_json::json!({"alg":"HS256","kid":kid,"typ":"at+jwt"}),
                TokenError::UnsupportedAlgorithm,
            ),
            (
                serde_json::json!({"alg":"ES256","kid":kid,"typ":"at+jwt","crit":["x"],"x":1}),
                TokenError::Malformed,
            ),
            (
                serde_json::json!({"alg":"ES256","kid":kid,"typ":"at+jwt","zip":"DEF"}),
                TokenError::Malformed,
            ),
        ];
        for (header, expected) in cases {
            let token = h(header.clone());
            assert_eq!(
                ring.verify_access_token(&token, t(1)),
                Err(expected),
                "{header}"
            );
        }

        // Payload that is not an access token claim set.
        let bad = forge(
            &ring,
            &serde_json::json!({"alg":"ES256","kid":kid,"typ":"at+jwt"}),
            &serde_json::json!({"sub":"x"}),
        );
        assert_eq!(
            ring.verify_access_token(&bad, t(1)),
            Err(TokenError::InvalidClaims)
        );

        // Signature from another key with the same kid.
        let other = self::ring(SigningAlgorithm::ES256);
        let foreign = other.sign_access_token(&claims()).unwrap();
        let (hp, sig) = foreign.rsplit_once('.').unwrap();
        let (_, p) = hp.split_once('.').unwrap();
        let mine = ring.sign_access_token(&claims()).unwrap();
        let my_h = mine.split('.').next().unwrap();
        let spliced = format!("{my_h}.{p}.{sig}");
        assert_eq!(
            ring.verify_access_token(&spliced, t(1)),
            Err(TokenError::InvalidSignature)
        );
        assert_eq!(
            ring.verify_access_token(&foreign, t(1)),
            Err(TokenError::UnknownKey)
        );

        // Structure and size.
        for junk in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.e30.AA",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(ring.verify_access_token(junk, t(1)).is_err(), "{junk:.20}");
        }
        assert_eq!(
            ring.verify_access_token(&"a".repeat(MAX_TOKEN_LEN + 1), t(1)),
            Err(TokenError::TooLarge)
        );
        // Duplicate header members are refused, not last-wins.
        let dup = format!(
            "{}.{}",
            b64::encode(
                format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT","typ":"at+jwt"}}"#).as_bytes()
            ),
            mine.split_once('.').unwrap().1
        );
        assert_eq!(
            ring.verify_access_token(&dup, t(1)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn superseded_key_still_verifies_during_overlap() {
        let p = policy();
        let old = Arc::new(SigningKey::generate(SigningAlgorithm::RS256, t(0)).unwrap());
        let ring1 = KeyRing::new(&[Arc::clone(&old)], t(0), &p).unwrap();
        let token = ring1.sign_access_token(&claims()).unwrap();
        let new = Arc::new(SigningKey::generate(SigningAlgorithm::ES256, t(100)).unwrap());
        let keys = [Arc::clone(&old), Arc::clone(&new)];
        let ring2 = KeyRing::new(&keys, t(101), &p).unwrap();
        assert_eq!(ring2.signing_kid(), Some(new.kid()));
        assert!(ring2.verify_access_token(&token, t(101)).is_ok());
        let later = t(100) + p.overlap;
        let ring3 = KeyRing::new(&keys, later, &p).unwrap();
        assert_eq!(
            ring3.verify_access_token(&token, t(101)),
            Err(TokenError::UnsupportedAlgorithm),
            "RS256 is no longer among the ring's algorithms"
        );
    }

    #[test]
    fn empty_ring_cannot_sign() {
        let ring = KeyRing::empty(t(0));
        assert_eq!(
            ring.sign_access_token(&claims()),
            Err(TokenError::NoSigningKey)
        );
        assert_eq!(&ring.jwks_json()[..], br#"{"keys":[]}"#);
    }

    #[test]
    fn at_hash_vectors() {
        // OpenID Connect Core 1.0 Appendix A.3 (RS256).
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            at_hash(SigningAlgorithm::RS256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(SigningAlgorithm::ES256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(SigningAlgorithm::PS256, token),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // EdDSA: left half of SHA-512 (the value published for openid/connect issue 1125).
        assert_eq!(
            at_hash(SigningAlgorithm::EdDSA, "dNZX1hEZ9wBCzNL40Upu646bdzQA"),
            "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog"
        );
        // And independently: 32 bytes of SHA-512 → 43 characters.
        let d = digest::digest(&digest::SHA512, token.as_bytes());
        assert_eq!(
            at_hash(SigningAlgorithm::EdDSA, token),
            b64::encode(&d.as_ref()[..32])
        );
    }

    #[test]
    fn opaque_secrets_and_hashes() {
        let a = opaque_secret().unwrap();
        let b = opaque_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(b64::decode(a.as_bytes(), "s").unwrap().len(), 32);
        // SHA-256("abc"), base64url.
        assert_eq!(
            secret_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }

    #[test]
    fn audience_forms() {
        let one: Audience = serde_json::from_str(r#""x""#).unwrap();
        assert!(one.contains("x") && !one.contains("y"));
        let many: Audience = serde_json::from_str(r#"["x","y"]"#).unwrap();
        assert!(many.contains("y"));
        assert_eq!(many.iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(
            serde_json::to_string(&Audience::from_list(vec!["a".into()])).unwrap(),
            r#""a""#
        );
        assert_eq!(
            serde_json::to_string(&Audience::from_list(vec![])).unwrap(),
            "[]"
        );
        assert!(claims().has_scope("kms:write") && !claims().has_scope("kms"));
    }
}
