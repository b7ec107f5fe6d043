//! An authorization request through the sign-in: sign in (unless the session's sign-in is
//! recent enough for the request), consent (unless remembered), then the code. The HTTP layer
//! shows the page or follows the redirect this decides.

use time::OffsetDateTime;

use super::pending::PendingInteraction;
use super::service::SignInService;
use super::session::BrowserSession;
use crate::oauth::{ErrorCode, OAuthError};
use crate::services::authorization::{AuthorizationRequest, AuthorizationService, Prompt};

/// What the browser should see next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send it here (the client's redirect URI with a code or an error).
    Redirect(String),
    /// The login page (the request is kept in the session).
    Login,
    /// The consent page (the request is kept in the session).
    Consent,
}

/// The service cannot answer now (database, randomness, issuer not known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sign-in cannot continue now")]
pub struct Unavailable;

/// The user's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allow: remember the consent and issue the code.
    Allow,
    /// Deny: `access_denied` to the client.
    Deny,
}

/// Runs authorization requests through the sign-in.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationFlow<'a> {
    sign_in: &'a SignInService,
    authorization: &'a AuthorizationService,
}

impl<'a> AuthorizationFlow<'a> {
    /// The flow over these services.
    pub fn new(sign_in: &'a SignInService, authorization: &'a AuthorizationService) -> Self {
        Self {
            sign_in,
            authorization,
        }
    }

    /// Continues `request` in `session`: sign-in, then consent, then the code. A user who just
    /// signed in (`just_signed_in`) is not asked again whatever `prompt` and `max_age` say.
    pub async fn resume(
        &self,
        mut session: BrowserSession,
        request: AuthorizationRequest,
        just_signed_in: bool,
        now: OffsetDateTime,
    ) -> Result<Next, Unavailable> {
        // `max_age=0` always asks again (OIDC Core §3.1.2.1: like `prompt=login`).
        let fresh_enough = |auth_time: OffsetDateTime| {
            request
                .max_age
                .is_none_or(|max| max > 0 && (now - auth_time).whole_seconds() <= max)
        };
        let user = match session.state.signed_in() {
            Some((user_id, auth_time))
                if just_signed_in
                    || (!request.prompt.contains(&Prompt::Login) && fresh_enough(auth_time)) =>
            {
                match self.sign_in.user(user_id).await {
                    Ok(Some(user)) if user.enabled => Some((user, auth_time)),
                    Ok(_) => None,
                    Err(_) => return Err(Unavailable),
                }
            }
            _ => None,
        };
        let Some((user, auth_time)) = user else {
            if request.prompt.contains(&Prompt::None) {
                return self.fail(
                    &request,
                    OAuthError::new(ErrorCode::LoginRequired, "the user is not signed in"),
                );
            }
            return self.park(session, request, Next::Login).await;
        };
        let remembered = self
            .authorization
            .remembered_consent(&user.id, &request.client_id)
            .await
            .map_err(|_| Unavailable)?;
        let covered = request.scopes.iter().all(|s| remembered.contains(s));
        if !covered || request.prompt.contains(&Prompt::Consent) {
            if request.prompt.contains(&Prompt::None) {
                return self.fail(
                    &request,
                    OAuthError::new(ErrorCode::ConsentRequired, "consent is required"),
                );
            }
            return self.park(session, request, Next::Consent).await;
        }
        let location = self
            .authorization
            .issue_code(&request, &user.id, auth_time, now)
            .await
            .map_err(|_| Unavailable)?;
        session.pending = None;
        self.sign_in.save(&session).await.map_err(|_| Unavailable)?;
        Ok(Next::Redirect(location))
    }

    /// The consent page's answer for the session's pending `request`; the login page when the
    /// session is not signed in.
    pub async fn decide(
        &self,
        mut session: BrowserSession,
        request: &AuthorizationRequest,
        decision: Decision,
        now: OffsetDateTime,
    ) -> Result<Next, Unavailable> {
        let Some((user_id, auth_time)) = session.state.signed_in() else {
            return Ok(Next::Login);
        };
        let location = match decision {
            Decision::Allow => {
                self.authorization
                    .remember_consent(user_id, request)
                    .await
                    .map_err(|_| Unavailable)?;
                self.authorization
                    .issue_code(request, user_id, auth_time, now)
                    .await
                    .map_err(|_| Unavailable)?
            }
            Decision::Deny => {
                let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
                self.authorization
                    .error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
                    .map_err(|_| Unavailable)?
            }
        };
        session.pending = None;
        self.sign_in.save(&session).await.map_err(|_| Unavailable)?;
        Ok(Next::Redirect(location))
    }

    /// The error back to the client's redirect URI.
    fn fail(&self, request: &AuthorizationRequest, error: OAuthError) -> Result<Next, Unavailable> {
        self.authorization
            .error_redirect(&request.redirect_uri, request.state.as_deref(), &error)
            .map(Next::Redirect)
            .map_err(|_| Unavailable)
    }

    /// Keeps the request in the session for the page `next` shows.
    async fn park(
        &self,
        mut session: BrowserSession,
        request: AuthorizationRequest,
        next: Next,
    ) -> Result<Next, Unavailable> {
        session.pending = Some(PendingInteraction::Authorization(request));
        self.sign_in.save(&session).await.map_err(|_| Unavailable)?;
        Ok(next)
    }
}
