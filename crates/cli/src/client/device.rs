//! The device authorization grant from the device's side (RFC 8628): ask for a code
//! (§3.1–3.2), then poll the token endpoint (§3.4–3.5) until the user approved or denied, or
//! the code expired.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use super::http::{self, https_endpoint};
use super::token::{self, Tokens};
use super::{Error, OAuthError, token_ok};

/// The grant type of the token requests (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The polling interval when the server gives none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Never poll more often than this, whatever the server says.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval (a server asking for more gets polled this often; the code expires anyway).
pub const MAX_INTERVAL: Duration = Duration::from_secs(300);
/// Longest code lifetime believed.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Consecutive failed requests (no answer, or a broken one) before giving up.
pub const MAX_TRANSPORT_FAILURES: u32 = 3;
/// Longest device code kept.
const MAX_DEVICE_CODE: usize = 1024;
/// Longest user code shown.
const MAX_USER_CODE: usize = 64;
/// Longest verification URI shown.
const MAX_URI: usize = 2048;

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
pub struct DeviceAuthorization {
    /// The device code (a secret: polled with, never shown).
    pub device_code: Zeroizing<String>,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: url::Url,
    /// The same with the code in it, if the server gives one.
    pub verification_uri_complete: Option<url::Url>,
    /// How long the codes are good for.
    pub expires_in: Duration,
    /// The polling interval, bounded to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub interval: Duration,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"<redacted>")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// What a device authorization request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The (public) client.
    pub client_id: &'a str,
    /// The scope, space-separated, or none (the client's default).
    pub scope: Option<&'a str>,
    /// RFC 8707 resource indicators.
    pub resources: &'a [String],
}

/// `POST device_authorization_endpoint` (RFC 8628 §3.1).
pub async fn authorize(
    client: &reqwest::Client,
    endpoint: &url::Url,
    request: Request<'_>,
) -> Result<DeviceAuthorization, Error> {
    let mut form = vec![("client_id", request.client_id)];
    if let Some(scope) = request.scope {
        form.push(("scope", scope));
    }
    for resource in request.resources {
        form.push(("resource", resource));
    }
    let answer = http::post_form(client, endpoint, &form).await?;
    if answer.status != 200 {
        return Err(http::refused("POST", endpoint, &answer));
    }
    parse_authorization(&answer.body).map_err(|e| Error::Http(format!("POST {endpoint}: {e}")))
}

/// Checks the device authorization response (RFC 8628 §3.2).
pub fn parse_authorization(body: &[u8]) -> Result<DeviceAuthorization, String> {
    let document: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON")?;
    let text = |name: &str| document.get(name).and_then(Value::as_str);
    let device_code = text("device_code").ok_or("the answer has no device_code")?;
    if !token_ok(device_code, MAX_DEVICE_CODE) {
        return Err("the device_code is malformed or too long".to_owned());
    }
    let user_code = text("user_code").ok_or("the answer has no user_code")?;
    if user_code.is_empty()
        || user_code.len() > MAX_USER_CODE
        || user_code.chars().any(char::is_control)
    {
        return Err("the user_code is malformed or too long".to_owned());
    }
    let uri = |name: &str| -> Result<Option<url::Url>, String> {
        match document.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_URI => https_endpoint(s)
                .map(Some)
                .ok_or_else(|| format!("{name} is not an https URL")),
            Some(_) => Err(format!("{name} is malformed or too long")),
        }
    };
    let verification_uri = uri("verification_uri")?.ok_or("the answer has no verification_uri")?;
    let verification_uri_complete = uri("verification_uri_complete")?;
    let seconds = |name: &str| -> Result<Option<u64>, String> {
        match document.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{name} is not a number of seconds")),
        }
    };
    let expires_in = match seconds("expires_in")? {
        Some(s) if s > 0 => Duration::from_secs(s).min(MAX_LIFETIME),
        _ => return Err("the answer has no positive expires_in".to_owned()),
    };
    let interval = seconds("interval")?
        .map_or(DEFAULT_INTERVAL, Duration::from_secs)
        .clamp(MIN_INTERVAL, MAX_INTERVAL);
    Ok(DeviceAuthorization {
        device_code: Zeroizing::new(device_code.to_owned()),
        user_code: user_code.to_owned(),
        verification_uri,
        verification_uri_complete,
        expires_in,
        interval,
    })
}

/// One token request with the device code (RFC 8628 §3.4).
pub async fn ask(
    client: &reqwest::Client,
    token_endpoint: &url::Url,
    client_id: &str,
    device_code: &str,
) -> Result<Tokens, Error> {
    let answer = http::post_form(
        client,
        token_endpoint,
        &[
            ("grant_type", GRANT_TYPE),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
    )
    .await?;
    token::parse(token_endpoint, &answer)
}

/// How polling ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollError {
    /// The user denied the request (`access_denied`).
    Denied,
    /// The code expired (`expired_token`, or its lifetime passed here).
    Expired,
    /// Another OAuth error (e.g. `invalid_grant`, `invalid_client`).
    OAuth(OAuthError),
    /// The server could not be reached [`MAX_TRANSPORT_FAILURES`] times in a row, or answered
    /// something unusable.
    Http(String),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied => f.write_str("the sign-in was denied (access_denied)"),
            Self::Expired => f.write_str(
                "the code expired before the sign-in was approved (expired_token); run the \
                 command again",
            ),
            Self::OAuth(e) => write!(f, "the token endpoint answered {e}"),
            Self::Http(m) => f.write_str(m),
        }
    }
}

/// Polls until the user decides: waits `interval`, asks, and goes on while the answer is
/// `authorization_pending`; `slow_down` adds [`SLOW_DOWN_STEP`] to the interval for this and
/// every later request; a request without an answer doubles the interval (RFC 8628 §3.5) and
/// [`MAX_TRANSPORT_FAILURES`] in a row end it. The code's `lifetime` is counted in the waits
/// (the server's `expired_token` ends it too). `sleep` and `ask` are parameters so the rules
/// are tested without a clock or a server.
pub async fn poll<A, AF, S, SF>(
    interval: Duration,
    lifetime: Duration,
    mut ask: A,
    mut sleep: S,
) -> Result<Tokens, PollError>
where
    A: FnMut() -> AF,
    AF: Future<Output = Result<Tokens, Error>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let mut interval = interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
    let mut waited = Duration::ZERO;
    let mut failures = 0;
    loop {
        if waited + interval > lifetime {
            return Err(PollError::Expired);
        }
        sleep(interval).await;
        waited += interval;
        match ask().await {
            Ok(tokens) => return Ok(tokens),
            Err(Error::OAuth(e)) => {
                failures = 0;
                match e.code.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL),
                    "access_denied" => return Err(PollError::Denied),
                    "expired_token" => return Err(PollError::Expired),
                    _ => return Err(PollError::OAuth(e)),
                }
            }
            Err(Error::Http(message)) => {
                failures += 1;
                if failures >= MAX_TRANSPORT_FAILURES {
                    return Err(PollError::Http(message));
                }
                interval = (interval * 2).min(MAX_INTERVAL);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;

    fn oauth(code: &str) -> Result<Tokens, Error> {
        Err(Error::OAuth(OAuthError {
            code: code.to_owned(),
            description: None,
        }))
    }

    fn tokens() -> Result<Tokens, Error> {
        Ok(Tokens {
            access_token: Zeroizing::new("at".to_owned()),
            refresh_token: None,
            expires_in: None,
            scope: None,
        })
    }

    /// Runs [`poll`] against scripted answers; returns its outcome and the waits.
    fn run(
        interval: u64,
        lifetime: u64,
        answers: Vec<Result<Tokens, Error>>,
    ) -> (Result<Tokens, PollError>, Vec<u64>) {
        let answers = RefCell::new(VecDeque::from(answers));
        let waits = RefCell::new(Vec::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let outcome = runtime.block_on(poll(
            Duration::from_secs(interval),
            Duration::from_secs(lifetime),
            || {
                let next = answers.borrow_mut().pop_front().expect("asked too often");
                async move { next }
            },
            |d| {
                waits.borrow_mut().push(d.as_secs());
                async {}
            },
        ));
        (outcome, waits.into_inner())
    }

    #[test]
    fn pending_keeps_the_interval_and_slow_down_adds_five_seconds_for_good() {
        let (outcome, waits) = run(
            2,
            600,
            vec![
                oauth("authorization_pending"),
                oauth("slow_down"),
                oauth("authorization_pending"),
                oauth("slow_down"),
                tokens(),
            ],
        );
        assert_eq!(outcome.unwrap().access_token.as_str(), "at");
        assert_eq!(waits, [2, 2, 7, 7, 12]);
    }

    #[test]
    fn denied_expired_and_other_errors_end_polling() {
        let (outcome, _) = run(
            1,
            600,
            vec![oauth("authorization_pending"), oauth("access_denied")],
        );
        assert_eq!(outcome.unwrap_err(), PollError::Denied);
        let (outcome, _) = run(1, 600, vec![oauth("expired_token")]);
        assert_eq!(outcome.unwrap_err(), PollError::Expired);
        let (outcome, _) = run(1, 600, vec![oauth("invalid_grant")]);
        assert!(matches!(outcome.unwrap_err(), PollError::OAuth(e) if e.code == "invalid_grant"));
    }

    #[test]
    fn the_lifetime_ends_polling_here_too() {
        // 5 s interval, 12 s lifetime: polls at 5 and 10, then gives up without a third wait.
        let (outcome, waits) = run(
            5,
            12,
            vec![
                oauth("authorization_pending"),
                oauth("authorization_pending"),
            ],
        );
        assert_eq!(outcome.unwrap_err(), PollError::Expired);
        assert_eq!(waits, [5, 5]);
    }

    #[test]
    fn failed_requests_back_off_and_three_in_a_row_give_up() {
        let down = || Err(Error::Http("connection refused".to_owned()));
        let (outcome, waits) = run(
            1,
            600,
            vec![
                down(),
                oauth("authorization_pending"),
                down(),
                down(),
                down(),
            ],
        );
        assert_eq!(
            outcome.unwrap_err(),
            PollError::Http("connection refused".to_owned())
        );
        assert_eq!(waits, [1, 2, 2, 4, 8]);
        let (outcome, _) = run(1, 600, vec![down(), down(), tokens()]);
        assert!(outcome.is_ok());
    }

    #[test]
    fn the_interval_is_bounded() {
        let (_, waits) = run(0, 600, vec![tokens()]);
        assert_eq!(waits, [1]);
        let (_, waits) = run(299, 6000, vec![oauth("slow_down"), tokens()]);
        assert_eq!(waits, [299, 300]);
    }

    #[test]
    fn device_authorization_answers_are_checked() {
        let ok = parse_authorization(
            serde_json::json!({
                "device_code": "dc", "user_code": "BCDF-GHJK",
                "verification_uri": "https://id.example/oidc/v1/device",
                "verification_uri_complete": "https://id.example/oidc/v1/device?user_code=BCDF-GHJK",
                "expires_in": 600,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            ok.interval, DEFAULT_INTERVAL,
            "RFC 8628: 5 s when the server gives none"
        );
        assert_eq!(ok.expires_in, Duration::from_secs(600));
        assert!(!format!("{ok:?}").contains("\"dc\""));
        let base = serde_json::json!({
            "device_code": "dc", "user_code": "BCDF-GHJK",
            "verification_uri": "https://id.example/device", "expires_in": 600, "interval": 1,
        });
        assert_eq!(
            parse_authorization(base.to_string().as_bytes())
                .unwrap()
                .interval,
            Duration::from_secs(1)
        );
        for (field, value) in [
            ("verification_uri", serde_json::json!("javascript:alert(1)")),
            (
                "verification_uri",
                serde_json::json!("http://id.example/device"),
            ),
            (
                "verification_uri_complete",
                serde_json::json!("data:text/html,x"),
            ),
            ("user_code", serde_json::json!("AB\u{1b}[2J")),
            ("user_code", serde_json::json!("")),
            ("device_code", serde_json::json!("a b")),
            ("expires_in", serde_json::json!(0)),
            ("expires_in", serde_json::json!("600")),
            ("interval", serde_json::json!(-5)),
        ] {
            let mut doc = base.clone();
            doc[field] = value;
            assert!(
                parse_authorization(doc.to_string().as_bytes()).is_err(),
                "{field}: {doc}"
            );
        }
    }
}
