//! The claims of an RFC 9068 access token, checked after the signature.

use serde_json::{Map, Value};

use super::{BearerError, IssuerTrust};

/// A validated access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`: the user, or the client for client_credentials tokens.
    pub subject: String,
    /// `client_id`, when present.
    pub client_id: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `aud` as a list.
    pub audiences: Vec<String>,
    /// `tenant_id`, when present.
    pub tenant_id: Option<String>,
    /// `jti`, when present.
    pub jti: Option<String>,
    /// `exp` (seconds since the Unix epoch).
    pub expires_at: u64,
    /// `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the DPoP key the token is bound to. Such a
    /// token is only accepted with the `DPoP` scheme and a proof signed by that key.
    pub jkt: Option<String>,
    /// The `act` chain (RFC 8693 §4.1): the `sub` of the current actor first, then of the actors
    /// before it. Empty when the token was not issued by delegation.
    pub actors: Vec<String>,
    /// `auth_time` (RFC 9068 §2.2.1): when the user signed in; `None` in tokens without a
    /// user sign-in (client credentials).
    pub auth_time: Option<u64>,
    /// `acr`: the authentication context class the user's sign-in reached.
    pub acr: Option<String>,
    /// `amr` (RFC 8176): how the user signed in; empty when absent.
    pub amr: Vec<String>,
    /// Every claim, for what the fields above do not cover.
    pub claims: Map<String, Value>,
}

impl AccessToken {
    /// Whether the token grants `scope` exactly.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// `typ` of a JWT access token: `at+jwt` or `application/at+jwt` (RFC 9068 §2.1, RFC 7515 §4.1.9).
pub(super) fn is_access_token_type(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case("at+jwt")
}

/// The `iss` of a token whose signature has not been checked (only to choose a validator).
pub(super) fn unverified_issuer(token: &str) -> Result<String, BearerError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BearerError::Malformed("not a compact JWS"));
    };
    let bytes = cryptoutil_jose::b64::decode(payload.as_bytes(), "payload")
        .map_err(|_| BearerError::Malformed("payload is not base64url"))?;
    let claims = parse(&bytes)?;
    match claims.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        _ => Err(BearerError::InvalidIssuer),
    }
}

fn parse(payload: &[u8]) -> Result<Map<String, Value>, BearerError> {
    cryptoutil_jose::header::parse_object(payload, "claims")
        .map_err(|_| BearerError::Malformed("claims are not a JSON object"))
}

/// Checks the verified `payload` against `trust` as of `now`.
pub(super) fn check(
    payload: &[u8],
    trust: &IssuerTrust,
    now: u64,
) -> Result<AccessToken, BearerError> {
    let claims = parse(payload)?;
    let string = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(BearerError::Malformed(name)),
    };
    let time = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(BearerError::Malformed(name)),
        Some(_) => Err(BearerError::Malformed(name)),
    };
    let skew = trust.clock_skew.as_secs();
    if string("iss")?.as_deref() != Some(trust.issuer.as_str()) {
        return Err(BearerError::InvalidIssuer);
    }
    let expires_at = time("exp")?.ok_or(BearerError::Malformed("exp is missing"))?;
    if now >= expires_at.saturating_add(skew) {
        return Err(BearerError::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(BearerError::NotYetValid);
    }
    let audiences = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(BearerError::Malformed("aud"))?,
        None => Vec::new(),
        Some(_) => return Err(BearerError::Malformed("aud")),
    };
    if !audiences.iter().any(|a| trust.audiences.contains(a)) {
        return Err(BearerError::InvalidAudience);
    }
    let subject = string("sub")?
        .filter(|s| !s.is_empty())
        .ok_or(BearerError::Malformed("sub is missing"))?;
    let scopes = string("scope")?
        .map(|s| {
            s.split(' ')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(AccessToken {
        issuer: trust.issuer.clone(),
        subject,
        client_id: string("client_id")?,
        scopes,
        audiences,
        tenant_id: string("tenant_id")?,
        jti: string("jti")?,
        expires_at,
        jkt: confirmation(&claims)?,
        actors: actors(&claims)?,
        auth_time: time("auth_time")?,
        acr: string("acr")?.filter(|acr| acr.len() <= MAX_CLAIM_VALUE_LEN),
        amr: methods(&claims)?,
        claims,
    })
}

/// Most `amr` values accepted.
pub const MAX_AMR_VALUES: usize = 16;

/// Longest `acr` or `amr` value kept (a longer `acr` is treated as absent).
pub const MAX_CLAIM_VALUE_LEN: usize = 256;

/// `amr`: a list of strings (RFC 8176), bounded.
fn methods(claims: &Map<String, Value>) -> Result<Vec<String>, BearerError> {
    match claims.get("amr") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() <= MAX_AMR_VALUES => list
            .iter()
            .map(|m| {
                m.as_str()
                    .filter(|m| m.len() <= MAX_CLAIM_VALUE_LEN)
                    .map(str::to_owned)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(BearerError::Malformed("amr")),
        Some(_) => Err(BearerError::Malformed("amr")),
    }
}

/// Deepest `act` nesting accepted.
pub const MAX_ACTOR_DEPTH: usize = 8;

/// `cnf.jkt`; a `cnf` with another confirmation method only is refused (it cannot be checked
/// here, and accepting the token as a bearer token would drop its binding).
fn confirmation(claims: &Map<String, Value>) -> Result<Option<String>, BearerError> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if (1..=128).contains(&jkt.len()) => Ok(Some(jkt.clone())),
            None => Err(BearerError::Malformed(
                "cnf has no jkt (only DPoP binding is supported)",
            )),
            Some(_) => Err(BearerError::Malformed("cnf.jkt")),
        },
        Some(_) => Err(BearerError::Malformed("cnf")),
    }
}

/// The `sub` of each nested `act`, outermost (current actor) first.
fn actors(claims: &Map<String, Value>) -> Result<Vec<String>, BearerError> {
    let mut chain = Vec::new();
    let mut next = claims.get("act");
    while let Some(act) = next {
        let Value::Object(act) = act else {
            return Err(BearerError::Malformed("act"));
        };
        if chain.len() == MAX_ACTOR_DEPTH {
            return Err(BearerError::Malformed("act is nested too deeply"));
        }
        match act.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => chain.push(sub.clone()),
            _ => return Err(BearerError::Malformed("act.sub")),
        }
        next = act.get("act");
    }
    Ok(chain)
}
