//! Token responses (RFC 6749 §5.1) and the refresh grant (§6).

use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use super::http::{self, Answer};
use super::{Error, token_ok};

/// Longest access token kept (a JWT with many scopes and audiences stays far below).
pub const MAX_ACCESS_TOKEN: usize = 16 * 1024;
/// Longest refresh token kept.
pub const MAX_REFRESH_TOKEN: usize = 4 * 1024;
/// Longest `scope` kept.
const MAX_SCOPE: usize = 4 * 1024;
/// Longest lifetime believed (a larger `expires_in` is taken as this).
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// A successful token response.
pub struct Tokens {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// The refresh token, if one was issued.
    pub refresh_token: Option<Zeroizing<String>>,
    /// `expires_in`, if given.
    pub expires_in: Option<Duration>,
    /// The granted `scope`, if given.
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Reads a token endpoint's answer: the tokens of a 200, the OAuth error otherwise.
pub fn parse(url: &url::Url, answer: &Answer) -> Result<Tokens, Error> {
    if answer.status != 200 {
        return Err(http::refused("POST", url, answer));
    }
    let bad = |what: &str| Error::Http(format!("POST {url}: {what}"));
    let document: Value =
        serde_json::from_slice(&answer.body).map_err(|_| bad("the answer is not JSON"))?;
    let access = document
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the answer has no access_token"))?;
    if !token_ok(access, MAX_ACCESS_TOKEN) {
        return Err(bad("the access_token is malformed or too long"));
    }
    // A DPoP-bound token is useless without its key; this client asks for bearer tokens only.
    let token_type = document.get("token_type").and_then(Value::as_str);
    if !token_type.is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err(bad("the token_type is not Bearer"));
    }
    let refresh = match document.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if token_ok(r, MAX_REFRESH_TOKEN) => Some(Zeroizing::new(r.clone())),
        Some(_) => return Err(bad("the refresh_token is malformed or too long")),
    };
    let expires_in = match document.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .map(|s| Duration::from_secs(s).min(MAX_LIFETIME))
                .ok_or_else(|| bad("expires_in is not a number of seconds"))?,
        ),
    };
    let scope = match document.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_SCOPE && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Some(_) => return Err(bad("the scope is malformed or too long")),
    };
    Ok(Tokens {
        access_token: Zeroizing::new(access.to_owned()),
        refresh_token: refresh,
        expires_in,
        scope,
    })
}

/// The refresh grant for a public client (RFC 6749 §6): `client_id` in the form.
pub async fn refresh(
    client: &reqwest::Client,
    token_endpoint: &url::Url,
    client_id: &str,
    refresh_token: &str,
) -> Result<Tokens, Error> {
    let answer = http::post_form(
        client,
        token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await?;
    parse(token_endpoint, &answer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn answer(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn token_responses_are_checked() {
        let url = url::Url::parse("https://id.example/token").unwrap();
        let ok = parse(
            &url,
            &answer(
                200,
                serde_json::json!({"access_token": "at", "token_type": "bearer",
                                   "expires_in": 300, "refresh_token": "rt", "scope": "openid"}),
            ),
        )
        .unwrap();
        assert_eq!(ok.access_token.as_str(), "at");
        assert_eq!(ok.refresh_token.as_deref().map(String::as_str), Some("rt"));
        assert_eq!(ok.expires_in, Some(Duration::from_secs(300)));
        assert!(!format!("{ok:?}").contains("\"at\""));

        for bad in [
            serde_json::json!({"token_type": "Bearer"}),
            serde_json::json!({"access_token": "at", "token_type": "DPoP"}),
            serde_json::json!({"access_token": "a t", "token_type": "Bearer"}),
            serde_json::json!({"access_token": "at", "token_type": "Bearer", "expires_in": -1}),
            serde_json::json!({"access_token": "at", "token_type": "Bearer", "refresh_token": 5}),
        ] {
            assert!(matches!(
                parse(&url, &answer(200, bad)),
                Err(Error::Http(_))
            ));
        }
        let denied = parse(
            &url,
            &answer(400, serde_json::json!({"error": "invalid_grant"})),
        );
        assert!(matches!(denied, Err(Error::OAuth(e)) if e.code == "invalid_grant"));
        let broken = parse(&url, &answer(502, serde_json::json!("upstream")));
        assert!(matches!(broken, Err(Error::Http(m)) if m.contains("502")));
    }
}
