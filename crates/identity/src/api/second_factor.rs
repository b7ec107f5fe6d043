//! The second-factor page (`/oidc/v1/login/second-factor`): after the password, a session
//! waiting for a second factor proves it with a TOTP code, a recovery code or a passkey
//! (helper pages of [`crate::mfa::totp_service`]; the passkey button runs the passkey script).
//! A right code completes the sign-in in a new session (the session id rotates again) and the
//! pending interaction continues.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use time::OffsetDateTime;

use super::extract::OAuthForm;
use super::html::{SCRIPT_TAG, error_page, escape, page, passkey_button};
use super::interaction::{checked_form, continue_in_new_session, pending_interaction, unavailable};
use super::state::ClientAddr;
use crate::mfa::totp_service::{CodeFailure, TotpService};
use crate::model::FactorSummary;
use crate::oauth::OAuthError;
use crate::paths;
use crate::services::AuthorizationService;
use crate::signin::{AuthMethod, BrowserSession, PendingInteraction, SignInService, SignInState};

/// Which form was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Totp,
    Recovery,
}

impl Method {
    fn field_id(self) -> &'static str {
        match self {
            Self::Totp => "totp-code",
            Self::Recovery => "recovery-code",
        }
    }
}

/// What went wrong with the submitted code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeProblem {
    Missing,
    Malformed,
    Wrong,
    Locked { retry_after_secs: u64 },
    NotEnrolled,
}

impl CodeProblem {
    pub(super) fn from_failure(failure: CodeFailure) -> Option<Self> {
        match failure {
            CodeFailure::Malformed => Some(Self::Malformed),
            CodeFailure::Wrong => Some(Self::Wrong),
            CodeFailure::Locked(locked) => Some(Self::Locked {
                retry_after_secs: locked.retry_after_secs,
            }),
            CodeFailure::NotEnrolled => Some(Self::NotEnrolled),
            CodeFailure::Unavailable => None,
        }
    }

    pub(super) fn message(self, recovery: bool) -> String {
        match (self, recovery) {
            (Self::Missing, false) => "Enter the code from your authenticator app.".to_owned(),
            (Self::Missing, true) => "Enter one of your recovery codes.".to_owned(),
            (Self::Malformed, false) => {
                "Enter the code from your authenticator app: digits only.".to_owned()
            }
            (Self::Malformed, true) => {
                "Enter a recovery code as it was shown: four groups of four characters.".to_owned()
            }
            (Self::Wrong, false) => {
                "The code is incorrect or was already used. Wait for the next code and try \
                 again."
                    .to_owned()
            }
            (Self::Wrong, true) => "The recovery code is incorrect or was already used.".to_owned(),
            (Self::Locked { retry_after_secs }, _) => {
                format!("Too many incorrect codes. Try again in {retry_after_secs} seconds.")
            }
            (Self::NotEnrolled, false) => {
                "No authenticator app is set up for this account.".to_owned()
            }
            (Self::NotEnrolled, true) => "No recovery codes are left for this account.".to_owned(),
        }
    }

    pub(super) fn status(self) -> StatusCode {
        match self {
            Self::Missing | Self::Malformed | Self::NotEnrolled => StatusCode::BAD_REQUEST,
            Self::Wrong => StatusCode::UNAUTHORIZED,
            Self::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Adds `Retry-After` to a lock-out's response.
    pub(super) fn decorate(self, mut response: Response) -> Response {
        if let Self::Locked { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// The error summary above a form (`role=alert`), or nothing.
pub(super) fn error_summary(message: Option<&str>) -> String {
    message
        .map(|m| {
            format!(
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(m)
            )
        })
        .unwrap_or_default()
}

/// A labelled one-time code input; `error` is shown between the label and the input, which
/// points at it with `aria-describedby` and carries `aria-invalid`.
pub(super) fn code_field(
    id: &str,
    label: &str,
    numeric: bool,
    hint: &str,
    error: Option<&str>,
    autofocus: bool,
) -> String {
    let hint_id = format!("{id}-hint");
    let (message, described) = match error {
        Some(text) => (
            format!(
                "<p class=\"field-error\" id=\"{id}-error\">{}</p>",
                escape(text)
            ),
            format!(" aria-invalid=\"true\" aria-describedby=\"{id}-error {hint_id}\""),
        ),
        None => (String::new(), format!(" aria-describedby=\"{hint_id}\"")),
    };
    let kind = if numeric {
        " inputmode=\"numeric\" autocomplete=\"one-time-code\""
    } else {
        " autocomplete=\"off\" autocapitalize=\"none\" spellcheck=\"false\""
    };
    format!(
        "<label for=\"{id}\">{label}</label><p class=\"muted\" id=\"{hint_id}\">{hint}</p>\
         {message}<input type=\"text\" id=\"{id}\" name=\"code\"{kind} maxlength=\"64\" \
         required{described}{focus}>",
        label = escape(label),
        hint = escape(hint),
        focus = if autofocus { " autofocus" } else { "" },
    )
}

/// The factors that can still add to the session's sign-in: a step-up that already used a code
/// (`otp`) needs a passkey, one that used a passkey needs a code.
fn still_useful(session: &BrowserSession, factors: FactorSummary) -> FactorSummary {
    let used = session.state.methods();
    let code_used = used.contains(&AuthMethod::OneTimePassword);
    let key_used =
        used.contains(&AuthMethod::HardwareKey) || used.contains(&AuthMethod::SoftwareKey);
    FactorSummary {
        totp: factors.totp && !code_used,
        passkeys: if key_used { 0 } else { factors.passkeys },
        recovery_codes_left: if code_used {
            0
        } else {
            factors.recovery_codes_left
        },
    }
}

/// The page: a TOTP form when the user has an authenticator, a recovery-code form when codes
/// are left, the passkey button when they have passkeys (each only when it adds a method the
/// session has not used yet).
fn second_factor_html(
    session: &BrowserSession,
    factors: FactorSummary,
    failed: Option<(Method, CodeProblem)>,
) -> Response {
    let factors = still_useful(session, factors);
    let csrf = escape(&session.csrf_token);
    let message = failed.map(|(method, problem)| problem.message(method == Method::Recovery));
    let error_for = |method: Method| match failed {
        Some((m, _)) if m == method => message.as_deref(),
        _ => None,
    };
    let focus = failed.map_or(
        if factors.totp {
            Method::Totp
        } else {
            Method::Recovery
        },
        |(m, _)| m,
    );
    let mut body = error_summary(message.as_deref());
    if factors.totp {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" novalidate>\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"method\" value=\"totp\">{field}\
             <div class=\"actions\"><button type=\"submit\" class=\"primary\">Verify</button>\
             </div></form>",
            action = paths::LOGIN_SECOND_FACTOR,
            field = code_field(
                Method::Totp.field_id(),
                "Authentication code",
                true,
                "The code your authenticator app shows for this account.",
                error_for(Method::Totp),
                focus == Method::Totp,
            ),
        ));
    }
    if factors.passkeys > 0 {
        body.push_str(&format!(
            "<div class=\"actions\">{button}</div>{script}",
            button = passkey_button("sign-in", "Use a passkey", &session.csrf_token, false),
            script = SCRIPT_TAG,
        ));
    }
    if factors.recovery_codes_left > 0 {
        let field = code_field(
            Method::Recovery.field_id(),
            "Recovery code",
            false,
            "Lost your authenticator? Each recovery code works once.",
            error_for(Method::Recovery),
            focus == Method::Recovery,
        );
        body.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" novalidate>\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"method\" value=\"recovery\">{field}\
             <div class=\"actions\"><button type=\"submit\" class=\"secondary\">\
             Use recovery code</button></div></form>",
            action = paths::LOGIN_SECOND_FACTOR,
        ));
    }
    if !factors.totp && factors.passkeys == 0 && factors.recovery_codes_left == 0 {
        body.push_str(
            "<p>No second factor is available for this account any more. Please contact your \
             administrator.</p>",
        );
    }
    let response = page(
        failed.map_or(StatusCode::OK, |(_, p)| p.status()),
        "Verify it's you",
        failed.is_some(),
        &body,
    );
    match failed {
        Some((_, problem)) => problem.decorate(response),
        None => response,
    }
}

/// The page for a session with no second factor owed.
fn nothing_to_verify() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "There is no sign-in in progress. Please start again from the application.",
    )
}

/// The session waiting for a second factor, its pending interaction and its user.
async fn waiting(
    sign_in: &SignInService,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(BrowserSession, PendingInteraction, String), Response> {
    let (session, interaction) = pending_interaction(sign_in, headers, now).await?;
    match &session.state {
        SignInState::SecondFactorRequired { user_id, .. } => {
            let user_id = user_id.clone();
            Ok((session, interaction, user_id))
        }
        _ => Err(nothing_to_verify()),
    }
}

/// `GET /oidc/v1/login/second-factor`.
pub async fn second_factor_page(
    State(sign_in): State<Arc<SignInService>>,
    State(totp): State<Arc<TotpService>>,
    headers: HeaderMap,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, _, user_id) = match waiting(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match totp.factors(&user_id).await {
        Ok(factors) => second_factor_html(&session, factors, None),
        Err(_) => unavailable(),
    }
}

/// `POST /oidc/v1/login/second-factor`: `method=totp|recovery`, `code`, `csrf_token`. A right
/// code completes the sign-in in a new session; a wrong one shows the page again with the
/// error next to the field (401), a locked one 429 with `Retry-After`.
pub async fn second_factor_submit(
    State(authorization): State<Arc<AuthorizationService>>,
    State(sign_in): State<Arc<SignInService>>,
    State(totp): State<Arc<TotpService>>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let (session, interaction, user_id) = match waiting(&sign_in, &headers, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = match checked_form("verification", &session, form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let method = match form.get("method") {
        Some("totp") => Method::Totp,
        Some("recovery") => Method::Recovery,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The verification form was malformed.",
            );
        }
    };
    let code = form.get("code").unwrap_or_default();
    let result = if code.trim().is_empty() {
        Err(Some(CodeProblem::Missing))
    } else {
        let checked = match method {
            Method::Totp => totp.verify_sign_in(&user_id, code, source, now).await,
            Method::Recovery => totp
                .verify_recovery_code(&user_id, code, source, now)
                .await
                .map(drop),
        };
        checked.map_err(CodeProblem::from_failure)
    };
    match result {
        Ok(()) => {}
        Err(None) => return unavailable(),
        Err(Some(problem)) => {
            return match totp.factors(&user_id).await {
                Ok(factors) => second_factor_html(&session, factors, Some((method, problem))),
                Err(_) => unavailable(),
            };
        }
    }
    let Ok(state) = session
        .state
        .clone()
        .second_factor_verified(AuthMethod::OneTimePassword, now)
    else {
        return nothing_to_verify();
    };
    // A new session id for the completed sign-in, as after the password.
    let Ok(started) = sign_in.after_sign_in_step(session, state, now).await else {
        return unavailable();
    };
    continue_in_new_session(
        &sign_in,
        &authorization,
        started,
        interaction,
        &headers,
        now,
    )
    .await
}
