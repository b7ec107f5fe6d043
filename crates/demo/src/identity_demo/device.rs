//! The no-administrator steps of `demo identity`: a command-line client registers itself
//! (RFC 7591) and reads its registration back (RFC 7592), signs the demo user in with the device
//! authorization grant (RFC 8628: the demo plays the device that polls and the user's browser
//! that enters the code, signs in and approves), and finally deletes its own registration.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::state::{DeviceAuthorization, Registered};
use super::{check_token_response, discovered, missing};
use crate::context::RunContext;
use crate::credentials::{Credentials, Secret};
use crate::html;
use crate::http::{Http, Reply};
use crate::runner::StepFuture;
use crate::step_error::StepError;

/// RFC 8628's grant type.
pub(super) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What the device asks for.
const DEVICE_SCOPE: &str = "openid profile offline_access";
/// The user-code alphabet (RFC 8628 §6.1: base-20, no vowels).
const USER_CODE_ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";
/// Pages followed from the verification URI to the "return to your device" page.
const MAX_PAGES: usize = 10;
/// Polls of the token endpoint after approval before the demo gives up.
const MAX_POLLS: usize = 5;

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    registration_access_token: String,
    registration_client_uri: Url,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

#[derive(Deserialize)]
struct DeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: Url,
    #[serde(default)]
    verification_uri_complete: Option<Url>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

fn registered(ctx: &RunContext) -> Result<&Registered, StepError> {
    ctx.identity
        .registered
        .as_ref()
        .ok_or_else(|| missing("the dynamically registered client"))
}

/// The endpoint the discovery document names, or a clear error.
fn advertised(endpoint: Option<&Url>, what: &str) -> Result<Url, StepError> {
    endpoint.cloned().ok_or_else(|| {
        StepError::new(format!(
            "the discovery document has no {what} (is it enabled in the server's settings?)"
        ))
    })
}

/// `XXXX-XXXX` from the RFC 8628 §6.1 alphabet.
fn is_user_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 9
        && bytes[4] == b'-'
        && code
            .chars()
            .enumerate()
            .all(|(i, c)| i == 4 || USER_CODE_ALPHABET.contains(c))
}

/// The OAuth `error` of a refusal, if the body is one.
fn oauth_error(reply: &Reply) -> Option<String> {
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
}

/// `identity-register`: RFC 7591 open registration of a native, public client that may use
/// the device grant, then RFC 7592 read with its registration access token.
pub(super) fn register(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let endpoint = advertised(
            discovery.registration_endpoint.as_ref(),
            "registration_endpoint",
        )?;
        let name = format!("cryptoutil demo CLI {}", uuid::Uuid::now_v7());
        let metadata = json!({
            "client_name": name,
            "application_type": "native",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "response_types": [],
            "token_endpoint_auth_method": "none",
            "scope": DEVICE_SCOPE,
        });
        let http = &ctx.env.http;
        let reply = http
            .send(&format!("POST {}", endpoint.path()), |c| {
                c.post(endpoint.clone()).json(&metadata)
            })
            .await?
            .expect(201)?;
        let answer: RegistrationResponse = reply.json()?;
        if !answer.grant_types.iter().any(|g| g == DEVICE_GRANT) {
            return Err(StepError::new(format!(
                "the registration did not keep the device grant: {:?}",
                answer.grant_types
            )));
        }
        if answer.token_endpoint_auth_method.as_deref() != Some("none")
            || answer.client_secret.is_some()
        {
            return Err(StepError::new(
                "a public client (token_endpoint_auth_method none) was registered with a secret",
            ));
        }
        let token = Secret::new(answer.registration_access_token);
        let uri = answer.registration_client_uri;
        let read = http
            .send(&format!("GET {}", uri.path()), |c| {
                c.get(uri.clone()).bearer_auth(token.expose())
            })
            .await?
            .expect(200)?;
        let read: Value = read.json()?;
        if read["client_id"].as_str() != Some(answer.client_id.as_str()) {
            return Err(StepError::new(format!(
                "RFC 7592 read returned client_id {}, not {}",
                read["client_id"], answer.client_id
            )));
        }
        let details = vec![
            format!("registered {} as client_id {}", name, answer.client_id),
            "public native client: device grant and refresh tokens, no secret".to_owned(),
            format!(
                "RFC 7592 read of {} with its registration access token: 200",
                uri.path()
            ),
        ];
        ctx.identity.registered = Some(Registered {
            client_id: answer.client_id,
            registration_access_token: token,
            registration_client_uri: uri,
        });
        Ok(details)
    })
}

/// `identity-device-authorization`: the device asks for a user code, and a first poll says
/// `authorization_pending`.
pub(super) fn device_authorization(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let endpoint = advertised(
            discovery.device_authorization_endpoint.as_ref(),
            "device_authorization_endpoint",
        )?;
        let client_id = registered(ctx)?.client_id.clone();
        let http = &ctx.env.http;
        let form = [("client_id", client_id.as_str()), ("scope", DEVICE_SCOPE)];
        let reply = http
            .send(&format!("POST {}", endpoint.path()), |c| {
                c.post(endpoint.clone()).form(&form)
            })
            .await?
            .expect(200)?;
        let answer: DeviceAuthorizationResponse = reply.json()?;
        if !is_user_code(&answer.user_code) {
            return Err(StepError::new(format!(
                "the user code {:?} is not XXXX-XXXX from the base-20 alphabet",
                answer.user_code
            )));
        }
        if answer.device_code.len() < 32 || answer.expires_in == 0 {
            return Err(StepError::new(
                "the device code is short or already expired",
            ));
        }
        let interval = Duration::from_secs(answer.interval.unwrap_or(5));
        let device_code = Secret::new(answer.device_code);
        let poll = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code.expose()),
            ("client_id", client_id.as_str()),
        ];
        let endpoint = &discovery.token_endpoint;
        let pending = http
            .send(&format!("POST {}", endpoint.path()), |c| {
                c.post(endpoint.clone()).form(&poll)
            })
            .await?;
        let last_poll = Instant::now();
        if pending.status != 400
            || oauth_error(&pending).as_deref() != Some("authorization_pending")
        {
            return Err(StepError::with_cause(
                "polling before approval did not answer authorization_pending",
                pending.describe(),
            ));
        }
        let details = vec![
            format!(
                "user code {} at {}; expires in {} s, poll every {} s",
                answer.user_code,
                answer.verification_uri,
                answer.expires_in,
                interval.as_secs()
            ),
            match &answer.verification_uri_complete {
                Some(complete) => format!("verification_uri_complete {complete}"),
                None => "no verification_uri_complete".to_owned(),
            },
            "first poll: authorization_pending".to_owned(),
        ];
        ctx.identity.device = Some(DeviceAuthorization {
            device_code,
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            interval,
            last_poll,
        });
        Ok(details)
    })
}

/// `identity-device-approve`: the user's browser opens the verification URI, types the code
/// (in lower case, without the dash: entry is case- and dash-insensitive), signs in and approves.
pub(super) fn device_approve(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let device = ctx
            .identity
            .device
            .as_ref()
            .ok_or_else(|| missing("the device authorization"))?;
        approve_device(
            &ctx.env.http,
            &ctx.env.credentials,
            &device.verification_uri,
            &device.user_code,
        )
        .await
    })
}

/// The user's side of RFC 8628 in a fresh browser session: opens `verification_uri`, types
/// `user_code` (lower case, without the dash), signs in with `credentials` if asked and
/// approves, until Identity says "You may return to your device". What each page was.
pub async fn approve_device(
    http: &Http,
    credentials: &Credentials,
    verification_uri: &Url,
    user_code: &str,
) -> Result<Vec<String>, StepError> {
    let typed = user_code.replace('-', "").to_lowercase();
    let browser = http.browser()?;
    let mut details = Vec::new();
    let mut url = verification_uri.clone();
    let mut reply = http
        .send_with(&browser, &format!("GET {}", url.path()), |c| {
            c.get(url.clone())
        })
        .await?;
    for _ in 0..MAX_PAGES {
        if reply.status.is_redirection() {
            url = super::location(&reply, &url)?;
            reply = http
                .send_with(&browser, &format!("GET {}", url.path()), |c| {
                    c.get(url.clone())
                })
                .await?;
            continue;
        }
        let page = reply.clone().expect(200)?.text()?;
        if page.contains("return to your device") {
            details.push("\"You may return to your device.\"".to_owned());
            return Ok(details);
        }
        let forms = html::forms(&page);
        let Some((form, fields)) =
            super::fill_page(&forms, credentials, Some(&typed), &mut details)
        else {
            let said = html::error_message(&page)
                .unwrap_or_else(|| "no code entry, login or consent form".to_owned());
            return Err(StepError::with_cause(
                format!("GET {}: an unexpected page", url.path()),
                said,
            ));
        };
        let (action, answer) = super::submit(http, &browser, &url, form, &fields).await?;
        reply = answer;
        url = action;
    }
    Err(StepError::new(format!(
        "no \"return to your device\" page after {MAX_PAGES} pages"
    )))
}

/// `identity-device-token`: the device polls (no sooner than the interval) and gets tokens for
/// the user; the access token is verified against the JWKS.
pub(super) fn device_token(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let discovery = discovered(ctx)?;
        let jwks = ctx
            .identity
            .jwks
            .clone()
            .ok_or_else(|| missing("the JWKS"))?;
        let client_id = registered(ctx)?.client_id.clone();
        let device = ctx
            .identity
            .device
            .as_mut()
            .ok_or_else(|| missing("the device authorization"))?;
        let http = &ctx.env.http;
        let endpoint = &discovery.token_endpoint;
        let mut waits = Vec::new();
        for _ in 0..MAX_POLLS {
            let wait = device.interval.saturating_sub(device.last_poll.elapsed());
            tokio::time::sleep(wait).await;
            waits.push(wait);
            let poll = [
                ("grant_type", DEVICE_GRANT),
                ("device_code", device.device_code.expose()),
                ("client_id", client_id.as_str()),
            ];
            let reply = http
                .send(&format!("POST {}", endpoint.path()), |c| {
                    c.post(endpoint.clone()).form(&poll)
                })
                .await?;
            device.last_poll = Instant::now();
            match oauth_error(&reply).as_deref() {
                Some("slow_down") => {
                    device.interval += Duration::from_secs(5);
                    continue;
                }
                Some("authorization_pending") => continue,
                _ => {}
            }
            let (tokens, claims) = check_token_response(reply, &jwks, &discovery, &client_id)?;
            if tokens.refresh_token.is_none() || tokens.id_token.is_none() {
                return Err(StepError::new(
                    "the device grant with openid and offline_access returned no ID or refresh token",
                ));
            }
            let waited: Duration = waits.iter().sum();
            return Ok(vec![
                format!(
                    "polled after waiting {:.1} s (the interval); tokens for sub {}",
                    waited.as_secs_f64(),
                    claims["sub"].as_str().unwrap_or("?")
                ),
                "access token (at+jwt, signature verified), ID token and refresh token".to_owned(),
            ]);
        }
        Err(StepError::new(format!(
            "still no tokens after {MAX_POLLS} polls"
        )))
    })
}

/// `identity-unregister`: the client deletes its own registration (RFC 7592); its registration
/// access token is refused afterwards.
pub(super) fn unregister(ctx: &mut RunContext) -> StepFuture<'_> {
    Box::pin(async move {
        let registered = registered(ctx)?;
        let uri = registered.registration_client_uri.clone();
        let token = registered.registration_access_token.clone();
        let http = &ctx.env.http;
        http.send(&format!("DELETE {}", uri.path()), |c| {
            c.delete(uri.clone()).bearer_auth(token.expose())
        })
        .await?
        .expect(204)?;
        let after = http
            .send(&format!("GET {}", uri.path()), |c| {
                c.get(uri.clone()).bearer_auth(token.expose())
            })
            .await?;
        if after.status != 401 {
            return Err(StepError::with_cause(
                "the deleted client's registration is still readable",
                after.describe(),
            ));
        }
        Ok(vec![
            format!("DELETE {}: 204", uri.path()),
            "its registration access token is refused afterwards: 401".to_owned(),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_recognised_as_rfc_8628_section_6_1_suggests() {
        assert!(is_user_code("WDJB-MJHT"));
        assert!(!is_user_code("WDJBMJHT"));
        assert!(!is_user_code("WDJA-MJHT"), "vowels are not in the alphabet");
        assert!(!is_user_code("wdjb-mjht"));
        assert!(!is_user_code("WDJB-MJH"));
    }
}
