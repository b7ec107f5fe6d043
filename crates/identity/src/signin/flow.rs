//! An authorization request through the sign-in: sign in (unless the session's sign-in is
//! recent enough for the request), reach the class the deployment, the client and the
//! request's `acr_values` need (step-up, or setting up a factor), consent (unless remembered),
//! then the code. The HTTP layer shows the page or follows the redirect this decides.

use time::OffsetDateTime;

use super::pending::PendingInteraction;
use super::service::SignInService;
use super::session::BrowserSession;
use super::state::SignInState;
use crate::mfa::policy::Requirement;
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
    /// The second-factor page: the session stepped up and owes a second factor (the request
    /// is kept in the session).
    SecondFactor,
    /// The account page, to set up a factor the deployment or the client requires (the
    /// user is signed in with what they have; the request is kept in the session and
    /// continues through `POST /oidc/v1/login/continue`).
    SetUpSecondFactor,
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

    /// Continues `request` in `session`: sign-in, then the class the request needs, then
    /// consent, then the code. A user who just signed in (`just_signed_in`) is not asked for
    /// the password again whatever `prompt` and `max_age` say; a sign-in weaker than the
    /// request needs steps up to the second-factor page when the user has a factor that
    /// reaches it, or goes to the account page to set one up when the deployment or client
    /// requires it. With `prompt=none` either is `interaction_required`.
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
        let client_mfa = self
            .authorization
            .client(&request.client_id)
            .await
            .map_err(|_| Unavailable)?
            .and_then(|client| client.metadata.mfa);
        let requirement = self
            .sign_in
            .requirement(
                &user.id,
                session.state.methods(),
                client_mfa,
                request.requested_acr(),
            )
            .await
            .map_err(|_| Unavailable)?;
        let next = match requirement {
            Requirement::Met => None,
            Requirement::StepUp => Some(Next::SecondFactor),
            Requirement::SetUp => Some(Next::SetUpSecondFactor),
        };
        if let Some(next) = next {
            if request.prompt.contains(&Prompt::None) {
                return self.fail(
                    &request,
                    OAuthError::new(
                        ErrorCode::InteractionRequired,
                        "the sign-in needs another factor",
                    ),
                );
            }
            if next == Next::SecondFactor {
                session.state = std::mem::replace(&mut session.state, SignInState::Anonymous)
                    .step_up()
                    .map_err(|_| Unavailable)?;
            }
            return self.park(session, request, next).await;
        }
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
            .issue_code(&request, &user.id, auth_time, session.state.methods(), now)
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
                    .issue_code(request, user_id, auth_time, session.state.methods(), now)
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
        session.pending = Some(PendingInteraction::Authorization(Box::new(request)));
        self.sign_in.save(&session).await.map_err(|_| Unavailable)?;
        Ok(next)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::mfa::policy::MfaPolicy;
    use crate::model::{Client, ClientAuthMethod, ClientMetadata, GrantType, TotpFactor, User};
    use crate::services::{ClientRegistry, IssuerCell};
    use crate::signin::state::AuthMethod;
    use crate::signin::state::{PasswordVerified, SecondFactorPolicy, SignInState};
    use crate::storage::{DatabaseSettings, Store};
    use crate::throttle::ThrottlePolicy;

    const REDIRECT: &str = "https://app.example/cb";

    struct World {
        sign_in: SignInService,
        authorization: AuthorizationService,
        store: Store,
        user_id: String,
        now: OffsetDateTime,
    }

    async fn world() -> World {
        world_with(MfaPolicy::Optional, None).await
    }

    /// A world whose deployment policy is `deployment` and whose client's is `client_mfa`.
    async fn world_with(deployment: MfaPolicy, client_mfa: Option<MfaPolicy>) -> World {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        store
            .insert_client(&Client {
                client_id: "app".to_owned(),
                metadata: ClientMetadata {
                    client_name: "App".to_owned(),
                    token_endpoint_auth_method: ClientAuthMethod::None,
                    jwks: None,
                    grant_types: vec![GrantType::AuthorizationCode],
                    redirect_uris: vec![REDIRECT.to_owned()],
                    post_logout_redirect_uris: Vec::new(),
                    scope: vec!["openid".to_owned()],
                    audiences: Vec::new(),
                    tenant_id: None,
                    introspect_any: false,
                    dpop_bound_access_tokens: false,
                    may_act: Vec::new(),
                    impersonation: false,
                    mfa: client_mfa,
                },
                enabled: true,
                secrets: Vec::new(),
                created_at: now,
            })
            .await
            .unwrap();
        let user = store
            .upsert_user(&User {
                id: uuid::Uuid::now_v7().to_string(),
                username: "ada".to_owned(),
                password_hash: "pbkdf2-sha256$600000$c2FsdA$a2V5".to_owned(),
                enabled: true,
                roles: Vec::new(),
                tenant_id: None,
                name: None,
                given_name: None,
                family_name: None,
                email: None,
                email_verified: false,
                version: 1,
                created_at: now,
            })
            .await
            .unwrap();
        let issuer = IssuerCell::new();
        issuer.set("https://idp.example".to_owned());
        let clients = Arc::new(ClientRegistry::new(store.clone(), time::Duration::DAY));
        World {
            sign_in: SignInService::new(
                store.clone(),
                ThrottlePolicy::default(),
                time::Duration::hours(1),
            )
            .with_mfa_policy(deployment),
            authorization: AuthorizationService::new(
                store.clone(),
                clients,
                issuer,
                time::Duration::minutes(10),
                time::Duration::minutes(1),
            ),
            store,
            user_id: user.id,
            now,
        }
    }

    /// Gives the test user a confirmed TOTP authenticator (the secret is never read here).
    async fn enrol_totp(w: &World) {
        w.store
            .put_totp_factor(&TotpFactor {
                user_id: w.user_id.clone(),
                sealed_secret: "sealed".to_owned(),
                algorithm: "SHA1".to_owned(),
                digits: 6,
                period_secs: 30,
                confirmed_at: Some(w.now),
                last_used_step: None,
                created_at: w.now,
                last_used_at: None,
            })
            .await
            .unwrap();
    }

    /// A stored session signed in with `methods` a minute ago.
    async fn signed_in(w: &World, methods: Vec<AuthMethod>) -> BrowserSession {
        let mut started = w.sign_in.start(w.now).unwrap();
        started.session.state = SignInState::SignedIn {
            user_id: w.user_id.clone(),
            auth_time: w.now - time::Duration::minutes(1),
            methods,
        };
        w.sign_in.save(&started.session).await.unwrap();
        started.session
    }

    fn asking(acr_values: &[&str], prompt: Vec<Prompt>) -> AuthorizationRequest {
        AuthorizationRequest {
            acr_values: acr_values.iter().map(|v| (*v).to_owned()).collect(),
            ..request(prompt)
        }
    }

    async fn stored(w: &World, session: &BrowserSession) -> BrowserSession {
        w.store
            .session(&session.id_hash, w.now)
            .await
            .unwrap()
            .map(BrowserSession::from_record)
            .unwrap()
    }

    fn error_of(next: Next) -> String {
        let Next::Redirect(location) = next else {
            panic!("expected a redirect, got {next:?}");
        };
        query(&location)
            .into_iter()
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn acr_values_step_a_password_session_up_to_the_users_totp() {
        let w = world().await;
        enrol_totp(&w).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let wanted = asking(&["urn:cryptoutil:acr:mfa"], Vec::new());
        let next = flow
            .resume(session.clone(), wanted.clone(), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SecondFactor);
        let parked = stored(&w, &session).await;
        assert_eq!(
            parked.state,
            SignInState::SecondFactorRequired {
                user_id: w.user_id.clone(),
                methods: vec![AuthMethod::Password],
            }
        );
        assert_eq!(
            parked.pending.as_ref().and_then(|p| p.authorization()),
            Some(&wanted)
        );
        // The code: the step-up completes the sign-in, and the request continues to consent.
        let mut done = parked;
        done.state = done
            .state
            .second_factor_verified(AuthMethod::OneTimePassword, w.now)
            .unwrap();
        assert_eq!(
            flow.resume(done.clone(), wanted.clone(), true, w.now)
                .await
                .unwrap(),
            Next::Consent
        );
        let Next::Redirect(location) = flow
            .decide(done, &wanted, Decision::Allow, w.now)
            .await
            .unwrap()
        else {
            panic!("expected the code");
        };
        assert!(location.contains("code="), "{location}");
    }

    #[tokio::test]
    async fn a_needed_step_up_under_prompt_none_is_interaction_required() {
        let w = world().await;
        enrol_totp(&w).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let next = flow
            .resume(
                session.clone(),
                asking(&["urn:cryptoutil:acr:mfa"], vec![Prompt::None]),
                false,
                w.now,
            )
            .await
            .unwrap();
        assert_eq!(error_of(next), "interaction_required");
        assert!(
            stored(&w, &session).await.state.signed_in().is_some(),
            "the session keeps its sign-in"
        );
    }

    #[tokio::test]
    async fn acr_values_out_of_the_users_reach_are_not_forced() {
        let w = world().await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        // No factor at all: the password sign-in goes on (the tokens say `sfa`).
        let next = flow
            .resume(
                session,
                asking(&["phr", "urn:other"], Vec::new()),
                false,
                w.now,
            )
            .await
            .unwrap();
        assert_eq!(next, Next::Consent);
        // TOTP but `phr` asked: two factors are as far as the user can go.
        enrol_totp(&w).await;
        let session = signed_in(&w, vec![AuthMethod::Password, AuthMethod::OneTimePassword]).await;
        let next = flow
            .resume(session, asking(&["phr"], Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Consent);
        // Unknown values alone ask for nothing.
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let next = flow
            .resume(session, asking(&["urn:other"], Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Consent);
    }

    #[tokio::test]
    async fn a_client_requiring_mfa_sends_a_user_without_a_factor_to_set_one_up() {
        let w = world_with(MfaPolicy::Optional, Some(MfaPolicy::Required)).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let next = flow
            .resume(session.clone(), request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SetUpSecondFactor);
        let parked = stored(&w, &session).await;
        assert!(
            parked.state.signed_in().is_some(),
            "signed in with what they have"
        );
        assert_eq!(
            parked.pending.as_ref().and_then(|p| p.authorization()),
            Some(&request(Vec::new()))
        );
        // Under prompt=none: interaction_required.
        let next = flow
            .resume(parked.clone(), request(vec![Prompt::None]), false, w.now)
            .await
            .unwrap();
        assert_eq!(error_of(next), "interaction_required");
        // Once the user has a factor, continuing steps up to it.
        enrol_totp(&w).await;
        let next = flow
            .resume(parked, request(Vec::new()), true, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SecondFactor);
    }

    #[tokio::test]
    async fn the_deployment_policy_applies_to_every_client() {
        // `required` with a TOTP user signed in by password only (a session from before the
        // policy): step up.
        let w = world_with(MfaPolicy::Required, None).await;
        enrol_totp(&w).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let next = flow
            .resume(session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SecondFactor);
        // Two factors meet it.
        let session = signed_in(&w, vec![AuthMethod::Password, AuthMethod::OneTimePassword]).await;
        let next = flow
            .resume(session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Consent);

        // `passkey_required` with only TOTP: even two factors go to set up a passkey.
        let w = world_with(MfaPolicy::PasskeyRequired, None).await;
        enrol_totp(&w).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password, AuthMethod::OneTimePassword]).await;
        let next = flow
            .resume(session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SetUpSecondFactor);
        // A client asking for less cannot lower it.
        let w = world_with(MfaPolicy::Required, Some(MfaPolicy::Optional)).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password]).await;
        let next = flow
            .resume(session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::SetUpSecondFactor);
    }

    #[tokio::test]
    async fn max_age_still_forces_a_new_sign_in() {
        let w = world().await;
        enrol_totp(&w).await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let session = signed_in(&w, vec![AuthMethod::Password, AuthMethod::OneTimePassword]).await;
        let next = flow
            .resume(
                session,
                AuthorizationRequest {
                    max_age: Some(30),
                    ..request(Vec::new())
                },
                false,
                w.now,
            )
            .await
            .unwrap();
        assert_eq!(next, Next::Login);
    }

    fn request(prompt: Vec<Prompt>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".to_owned(),
            redirect_uri: REDIRECT.to_owned(),
            scopes: vec!["openid".to_owned()],
            state: Some("st".to_owned()),
            nonce: None,
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            prompt,
            max_age: None,
            dpop_jkt: None,
            resources: Vec::new(),
            acr_values: Vec::new(),
        }
    }

    fn query(location: &str) -> Vec<(String, String)> {
        let (_, query) = location.split_once('?').unwrap();
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[tokio::test]
    async fn a_request_goes_through_login_and_consent_to_a_code() {
        let w = world().await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let started = w.sign_in.start(w.now).unwrap();
        let next = flow
            .resume(started.session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Login);
        let parked = w
            .sign_in
            .load(&started.cookie_value, w.now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            parked.pending.as_ref().and_then(|p| p.authorization()),
            Some(&request(Vec::new()))
        );

        let verified = PasswordVerified {
            user_id: w.user_id.clone(),
            at: w.now,
        };
        let signed_in = w
            .sign_in
            .after_password(parked, verified, w.now)
            .await
            .unwrap();
        assert!(
            w.sign_in
                .load(&started.cookie_value, w.now)
                .await
                .unwrap()
                .is_none(),
            "the pre-login session is ended"
        );
        let next = flow
            .resume(signed_in.session, request(Vec::new()), true, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Consent);
        let session = w
            .sign_in
            .load(&signed_in.cookie_value, w.now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.state.signed_in(), Some((w.user_id.as_str(), w.now)));
        let amr: Vec<&str> = session.state.methods().iter().map(|m| m.as_str()).collect();
        assert_eq!(amr, ["pwd"]);

        let Next::Redirect(location) = flow
            .decide(session, &request(Vec::new()), Decision::Allow, w.now)
            .await
            .unwrap()
        else {
            panic!("expected a redirect");
        };
        let pairs = query(&location);
        assert!(pairs.iter().any(|(k, _)| k == "code"), "{location}");
        assert!(pairs.contains(&("state".to_owned(), "st".to_owned())));
        assert!(pairs.contains(&("iss".to_owned(), "https://idp.example".to_owned())));

        // Consent is remembered: the next request gets a code at once.
        let session = w
            .sign_in
            .load(&signed_in.cookie_value, w.now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.pending, None);
        let next = flow
            .resume(session, request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert!(matches!(next, Next::Redirect(l) if l.contains("code=")));
    }

    #[tokio::test]
    async fn prompt_none_without_a_sign_in_is_login_required() {
        let w = world().await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let started = w.sign_in.start(w.now).unwrap();
        let Next::Redirect(location) = flow
            .resume(started.session, request(vec![Prompt::None]), false, w.now)
            .await
            .unwrap()
        else {
            panic!("expected a redirect");
        };
        assert!(query(&location).contains(&("error".to_owned(), "login_required".to_owned())));
    }

    #[tokio::test]
    async fn a_session_owing_a_second_factor_is_not_signed_in() {
        let w = world().await;
        let flow = AuthorizationFlow::new(&w.sign_in, &w.authorization);
        let mut started = w.sign_in.start(w.now).unwrap();
        started.session.state = PasswordVerified {
            user_id: w.user_id.clone(),
            at: w.now,
        }
        .conclude(SecondFactorPolicy::Required);
        assert!(matches!(
            started.session.state,
            SignInState::SecondFactorRequired { .. }
        ));
        let next = flow
            .resume(started.session.clone(), request(Vec::new()), false, w.now)
            .await
            .unwrap();
        assert_eq!(next, Next::Login);
        assert_eq!(
            flow.decide(
                started.session,
                &request(Vec::new()),
                Decision::Allow,
                w.now
            )
            .await
            .unwrap(),
            Next::Login
        );
    }
}
