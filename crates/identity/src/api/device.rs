//! The device authorization grant over HTTP (RFC 8628): the device authorization endpoint
//! (`POST /oauth2/v1/device_authorization`, JSON) and the verification pages at
//! `/oidc/v1/device` (HTML): enter the user code, sign in through the login page if needed,
//! then approve or deny. The logic is [`crate::device`].
//!
//! One path serves the whole browser side, so the `verification_uri` a device shows is the
//! only address a user needs: `GET` shows the entry form (prefilled from `?user_code=`), or
//! the consent step when the session holds an entered code and is signed in; `POST` with
//! `user_code` checks a code, `POST` with `decision=allow|deny` (the consent page's names)
//! decides. Every form carries the session's CSRF token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::consent::describe_scope;
use super::extract::{OAuthForm, OAuthQuery};
use super::html::{error_page, escape, page};
use super::interaction::{checked_form, see_other, unavailable};
use super::protocol::{authenticate, dpop_fields, no_store_json, with_dpop_nonce};
use super::session_cookie;
use super::state::ClientAddr;
use crate::device::service::{DecisionOutcome, DeviceService, EntryProblem, PendingDevice};
use crate::device::user_code::{MAX_INPUT_LEN, UserCode};
use crate::dpop::DpopGuard;
use crate::mfa::policy::Requirement;
use crate::oauth::OAuthError;
use crate::paths;
use crate::services::ClientService;
use crate::signin::{
    BrowserSession, DeviceApproval, PendingInteraction, SignInService, SignInState,
};

/// `POST /oauth2/v1/device_authorization` (RFC 8628 §3.1): client authentication as at the
/// token endpoint (a public client names itself with `client_id`); a `DPoP` proof binds the
/// device code to its key. 200 with the codes (§3.2), or an RFC 6749 error.
pub async fn device_authorization(
    State(clients): State<Arc<ClientService>>,
    State(device): State<Arc<DeviceService>>,
    State(dpop): State<Arc<DpopGuard>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let fields = dpop_fields(&headers);
    let result = async {
        let client = authenticate(
            &clients,
            &headers,
            &form,
            paths::DEVICE_AUTHORIZATION,
            source,
        )
        .await?;
        if form
            .get("client_id")
            .is_some_and(|id| id != client.client.client_id)
        {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        let proof = dpop
            .check(&fields, paths::DEVICE_AUTHORIZATION, now)
            .await?;
        device
            .authorize(
                &client.client,
                &form,
                proof.as_ref().map(|p| p.jkt.as_str()),
                now,
            )
            .await
    }
    .await;
    let error = result.as_ref().err().map(|e| e.code);
    let response = match result {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    };
    with_dpop_nonce(response, &dpop, !fields.is_empty(), error, now)
}

/// What went wrong with a typed code, shown next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Missing,
    Entry(EntryProblem),
}

impl Problem {
    fn message(self) -> String {
        match self {
            Self::Missing => "Enter the code shown on your device.".to_owned(),
            Self::Entry(EntryProblem::Wrong) => {
                "That code is not valid. Check the code shown on your device and try again."
                    .to_owned()
            }
            Self::Entry(EntryProblem::Expired) => {
                "That code has expired. Start again on your device to get a new code.".to_owned()
            }
            Self::Entry(EntryProblem::AlreadyUsed) => {
                "That code was already used. Start again on your device to get a new code."
                    .to_owned()
            }
            Self::Entry(EntryProblem::Locked(locked)) => format!(
                "Too many wrong codes. Try again in {} seconds.",
                locked.retry_after_secs
            ),
            Self::Entry(EntryProblem::Unavailable) => {
                "The service is temporarily unavailable. Please try again.".to_owned()
            }
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Entry(EntryProblem::Locked(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Entry(EntryProblem::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The entry form: one labelled field, the error (if any) in an alert above the form and next
/// to the field, which points at it with `aria-describedby`.
fn entry_page(session: &BrowserSession, typed: &str, problem: Option<Problem>) -> Response {
    let message = problem.map(Problem::message);
    let (summary, field_error, aria) = match &message {
        Some(text) => (
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(text)
            ),
            format!(
                "<p class=\"field-error\" id=\"user_code-error\">{}</p>",
                escape(text)
            ),
            " aria-invalid=\"true\" aria-describedby=\"user_code-error\"",
        ),
        None => (
            String::new(),
            String::new(),
            " aria-describedby=\"user_code-hint\"",
        ),
    };
    let value = if typed.is_empty() || typed.len() > MAX_INPUT_LEN {
        String::new()
    } else {
        format!(" value=\"{}\"", escape(typed))
    };
    let body = format!(
        "{summary}<form method=\"post\" action=\"{action}\" novalidate>\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <label for=\"user_code\">Code</label>\
         <p class=\"muted\" id=\"user_code-hint\">Enter the code shown on your device, \
         for example BCDF-GHJK.</p>{field_error}\
         <input type=\"text\" id=\"user_code\" name=\"user_code\"{value} autocomplete=\"off\" \
         autocapitalize=\"characters\" spellcheck=\"false\" maxlength=\"{MAX_INPUT_LEN}\" \
         required autofocus{aria}>\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\">Continue</button>\
         </div></form>",
        action = paths::DEVICE,
        csrf = escape(&session.csrf_token),
    );
    let mut response = page(
        problem.map_or(StatusCode::OK, Problem::status),
        "Connect a device",
        problem.is_some(),
        &body,
    );
    if let Some(Problem::Entry(EntryProblem::Locked(locked))) = problem {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(locked.retry_after_secs),
        );
    }
    response
}

/// The consent step: the client (name and `client_id`), the scopes, the code to compare with
/// the device's, Allow and Deny (no autofocus, so a stray Enter does not approve).
fn consent_page(session: &BrowserSession, pending: &PendingDevice, username: &str) -> Response {
    let scopes: String = pending
        .authorization
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let scopes = if scopes.is_empty() {
        "<li>connect to your account (no further permissions)</li>".to_owned()
    } else {
        scopes
    };
    let body = format!(
        "<p id=\"consent-question\"><strong>{name}</strong> (client ID <code>{client_id}</code>) \
         asks to:</p><ul aria-labelledby=\"consent-question\">{scopes}</ul>\
         <p>Code: <strong>{code}</strong>. Only allow this if you started it on your own \
         device and it shows this code.</p>\
         <p class=\"muted\">Signed in as <strong>{user}</strong>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\">\
         <button type=\"submit\" class=\"primary\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button>\
         </div></form>",
        name = escape(&pending.client.metadata.client_name),
        client_id = escape(&pending.client.client_id),
        code = escape(&pending.authorization.user_code.display()),
        user = escape(username),
        action = paths::DEVICE,
        csrf = escape(&session.csrf_token),
    );
    page(StatusCode::OK, "Allow access on your device?", false, &body)
}

/// The last page after a decision.
fn outcome_page(outcome: DecisionOutcome) -> Response {
    match outcome {
        DecisionOutcome::Approved => page(
            StatusCode::OK,
            "Device connected",
            false,
            "<p role=\"status\">You may return to your device.</p>",
        ),
        DecisionOutcome::Denied => page(
            StatusCode::OK,
            "Access denied",
            false,
            "<p role=\"status\">Access denied. You may close this page.</p>",
        ),
        DecisionOutcome::NoLongerPending => error_page(
            StatusCode::BAD_REQUEST,
            "That code has expired or was already used. Start again on your device to get a \
             new code.",
        ),
    }
}

/// The code of the device approval the session holds, if any.
fn entered_code(session: &BrowserSession) -> Option<UserCode> {
    match &session.pending {
        Some(PendingInteraction::DeviceApproval { device_approval }) => {
            UserCode::parse(&device_approval.user_code)
        }
        _ => None,
    }
}

/// Adds `cookie` (a new session's) to `response`.
fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /oidc/v1/device[?user_code=…]`: the entry form (prefilled), or the consent step when
/// this session entered a code and is signed in. A browser without a session gets one (the
/// form's CSRF token lives in it).
pub async fn device_page(
    State(device): State<Arc<DeviceService>>,
    State(sign_in): State<Arc<SignInService>>,
    headers: HeaderMap,
    query: Result<OAuthQuery, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let typed = query
        .ok()
        .and_then(|OAuthQuery(q)| q.get("user_code").map(str::to_owned));
    let (mut session, cookie) = match session_cookie::load(&sign_in, &headers, now).await {
        Ok(Some(session)) => (session, None),
        Ok(None) => match sign_in.start(now) {
            Ok(started) => {
                if sign_in.save(&started.session).await.is_err() {
                    return unavailable();
                }
                (
                    started.session,
                    Some(session_cookie::set_cookie(&sign_in, &started.cookie_value)),
                )
            }
            Err(_) => return unavailable(),
        },
        Err(_) => return unavailable(),
    };
    if typed.is_none()
        && let Some(code) = entered_code(&session)
        && let Some((user_id, _)) = session.state.signed_in()
    {
        let user_id = user_id.to_owned();
        match device.pending(&code, now).await {
            Ok(pending) => {
                match mfa_detour(&sign_in, &mut session, &user_id, &pending).await {
                    Ok(None) => {}
                    Ok(Some(location)) => return see_other(location, cookie),
                    Err(()) => return unavailable(),
                }
                let username = match sign_in.user(&user_id).await {
                    Ok(Some(user)) => user.username,
                    Ok(None) => return see_other(paths::LOGIN, cookie),
                    Err(_) => return unavailable(),
                };
                return with_cookie(consent_page(&session, &pending, &username), cookie);
            }
            Err(EntryProblem::Unavailable) => return unavailable(),
            Err(problem) => {
                session.pending = None;
                if sign_in.save(&session).await.is_err() {
                    return unavailable();
                }
                return with_cookie(
                    entry_page(&session, "", Some(Problem::Entry(problem))),
                    cookie,
                );
            }
        }
    }
    with_cookie(
        entry_page(&session, typed.as_deref().unwrap_or_default(), None),
        cookie,
    )
}

/// Where a signed-in session must go before it may approve `pending` under the deployment's
/// and the device client's MFA policy: nowhere (`None`) when its sign-in reaches the class they
/// require; the second-factor page when the user has a factor that reaches it (the session
/// steps up and is saved); else the account page to set one up (the approval stays pending
/// in the session).
async fn mfa_detour(
    sign_in: &SignInService,
    session: &mut BrowserSession,
    user_id: &str,
    pending: &PendingDevice,
) -> Result<Option<&'static str>, ()> {
    let requirement = sign_in
        .requirement(
            user_id,
            session.state.methods(),
            pending.client.metadata.mfa,
            None,
        )
        .await
        .map_err(|_| ())?;
    match requirement {
        Requirement::Met => Ok(None),
        Requirement::SetUp => Ok(Some(paths::ACCOUNT)),
        Requirement::StepUp => {
            session.state = std::mem::replace(&mut session.state, SignInState::Anonymous)
                .step_up()
                .map_err(|_| ())?;
            sign_in.save(session).await.map_err(|_| ())?;
            Ok(Some(paths::LOGIN_SECOND_FACTOR))
        }
    }
}

/// `POST /oidc/v1/device`: `user_code` checks a typed code (brute-force limits per session
/// and per address), keeps it in the session and continues to the login page or the consent
/// step; `decision=allow|deny` finishes the consent step.
pub async fn device_submit(
    State(device): State<Arc<DeviceService>>,
    State(sign_in): State<Arc<SignInService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let mut session = match session_cookie::load(&sign_in, &headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Your session has expired or cookies are disabled. Please open the page again.",
            );
        }
        Err(_) => return unavailable(),
    };
    let form = match checked_form("device", &session, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    if let Some(decision) = form.get("decision") {
        let Some(code) = entered_code(&session) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "There is no device code to approve. Enter the code shown on your device.",
            );
        };
        let Some((user_id, auth_time)) = session.state.signed_in() else {
            return see_other(paths::LOGIN, None);
        };
        let allow = match decision {
            "allow" => true,
            "deny" => false,
            _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
        };
        let user_id = user_id.to_owned();
        if allow && let Ok(pending) = device.pending(&code, now).await {
            match mfa_detour(&sign_in, &mut session, &user_id, &pending).await {
                Ok(None) => {}
                Ok(Some(location)) => return see_other(location, None),
                Err(()) => return unavailable(),
            }
        }
        let methods = session.state.methods().to_vec();
        let outcome = match device
            .decide(&code, &user_id, auth_time, &methods, allow, now)
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => return unavailable(),
        };
        session.pending = None;
        if sign_in.save(&session).await.is_err() {
            return unavailable();
        }
        return outcome_page(outcome);
    }
    let typed = form.get("user_code").unwrap_or_default().trim();
    if typed.is_empty() {
        return entry_page(&session, "", Some(Problem::Missing));
    }
    let pending = match device.enter(typed, &session.id_hash, source, now).await {
        Ok(pending) => pending,
        Err(EntryProblem::Unavailable) => return unavailable(),
        Err(problem) => return entry_page(&session, typed, Some(Problem::Entry(problem))),
    };
    session.pending = Some(PendingInteraction::DeviceApproval {
        device_approval: DeviceApproval {
            user_code: pending.authorization.user_code.as_str().to_owned(),
        },
    });
    if sign_in.save(&session).await.is_err() {
        return unavailable();
    }
    if session.state.signed_in().is_some() {
        see_other(paths::DEVICE, None)
    } else {
        see_other(paths::LOGIN, None)
    }
}
