//! Authentication (SPEC §3.6): HTTP Basic against the realms in the configured order (file → db
//! by default), the verified-credential cache, bearer tokens of trusted issuers ([`federation`],
//! SPEC §5), the tenant from the credential (`X-Tenant-ID` chooses among the principal's own
//! tenants), and one audit event per decision.
//!
//! The result is a [`Principal`] in the request's extensions; the key service checks each
//! operation's fine scope. No credential or a bad one is 401 with `WWW-Authenticate`; a valid
//! credential that may not act in the requested tenant is 403. Unknown users, wrong passwords and
//! disabled users get the same answer at the same cost (PBKDF2 runs either way).
//!
//! Bearer tokens are refused the RFC 6750 way: 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"` and a problem body whose `error` is the SPEC §5 code (`token_expired`,
//! `token_revoked`, `invalid_issuer`, `invalid_audience`, `invalid_signature`, `invalid_token`);
//! 403 `insufficient_scope` naming the scope the route needs (checked before any revocation
//! check); 403 `invalid_tenant` for a valid token without a usable tenant (no tenant claim and
//! no fixed mapping, or a tenant this KMS does not know); 503 `temporarily_unavailable` when the
//! issuer's keys (past their cache) or its introspection endpoint cannot be reached.

mod db_realm;
pub mod federation;
mod federation_settings;
pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cryptoutil_realm::{CacheConfig, CredentialCache, FileRealm, Outcome, Realm, RealmUser};
use cryptoutil_server::{ClientCertificate, Problem};

pub use db_realm::{DB_REALM, DbRealm, realm_user};
pub use federation::Federation;
pub use settings::{AuthSettings, AuthSource};

use cryptoutil_realm::bearer::{BearerError, Scheme, TokenDigest};

use crate::audit::{AuditEvent, AuditSink, AuthMethod, Operation, Outcome as AuditOutcome};
use crate::ids::parse_uuid;
use crate::model::{Principal, TenantId};
use crate::repository::DirectoryStore;

/// The `realm` of every challenge.
pub const REALM: &str = "cryptoutil-kms";
/// The header that picks one of the principal's tenants.
pub const TENANT_HEADER: &str = "x-tenant-id";
/// The Bearer challenge (without an error) offered beside Basic when federation is on.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"cryptoutil-kms\"";
/// Base of the problem `type` URIs of authentication failures.
const TYPE_BASE: &str = "https://cryptoutil.dev/problems/";
/// The Basic challenge of every 401.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"cryptoutil-kms\", charset=\"UTF-8\"";
/// The challenge on the browser surface for script requests: browsers show their own login
/// dialog for a `Basic` challenge (and then replay what was typed on every later request), so
/// pages like Swagger UI get the same information under a scheme browsers leave to the page.
pub const BROWSER_CHALLENGE: &str = "X-Basic realm=\"cryptoutil-kms\", charset=\"UTF-8\"";

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// No `Authorization` header, and bearer tokens are accepted too (`missing_token`).
    MissingAny,
    /// A bearer token that is refused or cannot be checked.
    Bearer(BearerError),
    /// A bearer token without the scope the route needs.
    InsufficientScope(&'static str),
    /// A user token whose sign-in is too weak or too old for the route (RFC 9470).
    InsufficientUserAuthentication(federation::StepUpRequired),
    /// A valid bearer token without a usable tenant (403 `invalid_tenant`).
    TokenTenant(String),
    /// Malformed, unknown, wrong or disabled credentials (one answer for all: no enumeration).
    Invalid(&'static str),
    /// A bearer token, which needs federation (not configured).
    BearerNotAccepted,
    /// Authenticated, but not allowed in the requested tenant (or has none).
    Tenant(String),
    /// A realm's store is unavailable.
    Unavailable,
}

impl From<AuthFailure> for Problem {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Missing => Problem::new(StatusCode::UNAUTHORIZED)
                .with_detail("authentication is required (HTTP Basic)")
                .with_www_authenticate(BASIC_CHALLENGE),
            AuthFailure::Invalid(_) => Problem::new(StatusCode::UNAUTHORIZED)
                .with_detail("invalid credentials")
                .with_www_authenticate(BASIC_CHALLENGE),
            AuthFailure::BearerNotAccepted => Problem::new(StatusCode::UNAUTHORIZED)
                .with_detail("bearer tokens are not accepted: federation to an Identity issuer is not configured")
                .with_extension("error", "invalid_token")
                .with_www_authenticate(
                    "Bearer realm=\"cryptoutil-kms\", error=\"invalid_token\", error_description=\"federation is not configured\"",
                ),
            AuthFailure::MissingAny => Problem::new(StatusCode::UNAUTHORIZED)
                .with_detail("authentication is required (HTTP Basic or a bearer token)")
                .with_extension("error", "missing_token")
                .with_www_authenticate(format!("{BASIC_CHALLENGE}, {BEARER_CHALLENGE}")),
            AuthFailure::Bearer(e) => bearer_problem(&e),
            AuthFailure::InsufficientScope(scope) => Problem::new(StatusCode::FORBIDDEN)
                .with_type(format!("{TYPE_BASE}insufficient_scope"))
                .with_title("insufficient_scope")
                .with_detail(format!("this operation needs the scope {scope}"))
                .with_extension("error", "insufficient_scope")
                .with_extension("scope", scope)
                .with_www_authenticate(format!(
                    "Bearer realm=\"cryptoutil-kms\", error=\"insufficient_scope\", \
                     error_description=\"this operation needs the scope {scope}\", scope=\"{scope}\""
                )),
            AuthFailure::InsufficientUserAuthentication(required) => {
                let description = required.shortfall.description();
                let mut problem = Problem::new(StatusCode::FORBIDDEN)
                    .with_type(format!("{TYPE_BASE}insufficient_user_authentication"))
                    .with_title("insufficient_user_authentication")
                    .with_detail(description)
                    .with_extension("error", "insufficient_user_authentication")
                    .with_extension("acr_values", required.policy.acr_values.join(" "));
                if let Some(max_age) = required.policy.max_age {
                    problem = problem.with_extension("max_age", max_age);
                }
                problem.with_www_authenticate(format!(
                    "Bearer realm=\"cryptoutil-kms\", {}",
                    required.policy.challenge_params(required.shortfall)
                ))
            }
            AuthFailure::TokenTenant(detail) => Problem::new(StatusCode::FORBIDDEN)
                .with_type(format!("{TYPE_BASE}invalid_tenant"))
                .with_title("invalid_tenant")
                .with_detail(detail)
                .with_extension("error", "invalid_tenant"),
            AuthFailure::Tenant(detail) => Problem::new(StatusCode::FORBIDDEN).with_detail(detail),
            AuthFailure::Unavailable => {
                Problem::unavailable("the user directory is unavailable, try again later")
            }
        }
    }
}

/// The problem of a refused bearer token: 401 `invalid_token` (with the SPEC §5 code in the
/// body), or 503 when it could not be checked.
fn bearer_problem(e: &BearerError) -> Problem {
    let code = e.code();
    if e.is_unavailable() {
        return Problem::unavailable(
            "the token's issuer cannot be reached to check it; try again later",
        )
        .with_extension("error", code);
    }
    // The description is fixed text from the error (no token content), safe in a header.
    let description = e.to_string().replace(['"', '\\'], "'");
    Problem::new(StatusCode::UNAUTHORIZED)
        .with_type(format!("{TYPE_BASE}{code}"))
        .with_title(code)
        .with_detail(description.clone())
        .with_extension("error", code)
        .with_www_authenticate(format!(
            "Bearer realm=\"cryptoutil-kms\", error=\"invalid_token\", error_description=\"{description}\""
        ))
}

/// Authenticates requests and resolves their tenant.
pub struct Authenticator<S> {
    realms: Vec<Arc<dyn Realm>>,
    cache: CredentialCache,
    store: Arc<S>,
    tenants: Mutex<HashMap<String, TenantId>>,
    federation: Option<Arc<Federation>>,
    audit: Arc<dyn AuditSink>,
}

impl<S> std::fmt::Debug for Authenticator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.realms.iter().map(|r| r.name()).collect();
        f.debug_struct("Authenticator")
            .field("realms", &names)
            .finish_non_exhaustive()
    }
}

impl<S: DirectoryStore> Authenticator<S> {
    /// Builds the realm chain from the settings (loading `realms.yml` when configured) and the
    /// federation (issuers' TLS trust: their `ca_file` only; see [`Self::with_federation`]).
    pub fn new(settings: &AuthSettings, store: Arc<S>) -> Result<Self, String> {
        let federation = Federation::from_settings(&settings.federation, None)?;
        Self::with_federation(settings, store, federation)
    }

    /// [`Self::new`] with a federation built by the caller (`None`: bearer tokens refused).
    pub fn with_federation(
        settings: &AuthSettings,
        store: Arc<S>,
        federation: Option<Federation>,
    ) -> Result<Self, String> {
        let federation = federation
            .filter(|_| settings.order.contains(&AuthSource::Federation))
            .map(Arc::new);
        let mut realms: Vec<Arc<dyn Realm>> = Vec::new();
        for source in &settings.order {
            match source {
                AuthSource::File => {
                    if let Some(path) = &settings.realms_file {
                        let realm = FileRealm::load(path, &crate::scopes::VOCABULARY)
                            .map_err(|e| e.to_string())?;
                        realms.push(Arc::new(realm));
                    }
                }
                AuthSource::Db => realms.push(Arc::new(DbRealm::new(store.clone()))),
                AuthSource::Federation => {}
            }
        }
        let cache = CredentialCache::new(CacheConfig {
            ttl: settings.cache_ttl.get(),
            capacity: settings.cache_capacity,
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            realms,
            cache,
            store,
            tenants: Mutex::new(HashMap::new()),
            federation,
            audit: crate::audit::default_sink(),
        })
    }

    /// Writes the authentication decisions to `sink` instead of the default tracing sink.
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// The federation, when bearer tokens are accepted.
    pub fn federation(&self) -> Option<&Arc<Federation>> {
        self.federation.as_ref()
    }

    /// The verified-credential cache (the user admin API invalidates it).
    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }

    /// Authenticates one request from its headers, or (without an `Authorization` header) from
    /// the TLS client certificate the listener verified, mapped to a realm user by subject. A
    /// bearer token is treated as if the route were unknown (sensitive, no scope pre-check); the
    /// middleware uses [`Self::authenticate_for`].
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<Principal, AuthFailure> {
        self.authenticate_for(headers, client_certificate, None)
            .await
    }

    /// [`Self::authenticate`] for a route that needs the scope `required` (`None`: unknown). A
    /// bearer token without that scope is refused here (403 with the Bearer challenge); the
    /// revocation mode uses it to decide whether the request is sensitive.
    pub async fn authenticate_for(
        &self,
        headers: &HeaderMap,
        client_certificate: Option<&ClientCertificate>,
        required: Option<&'static str>,
    ) -> Result<Principal, AuthFailure> {
        self.authenticate_request(headers, client_certificate, required, None, None)
            .await
    }

    /// [`Self::authenticate_for`] within the request `request_id` (`X-Request-ID`), which the
    /// audit events and the principal carry.
    ///
    /// `target` is the request's method and path, against which a DPoP proof is checked
    /// (`None`: DPoP-bound tokens are refused, their proofs cannot be checked).
    pub async fn authenticate_request(
        &self,
        headers: &HeaderMap,
        client_certificate: Option<&ClientCertificate>,
        required: Option<&'static str>,
        request_id: Option<&str>,
        target: Option<RequestTarget<'_>>,
    ) -> Result<Principal, AuthFailure> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match client_certificate.and_then(|c| c.0.first()) {
                Some(leaf) => {
                    self.authenticate_certificate(leaf, headers, request_id)
                        .await
                }
                None if self.federation.is_some() => Err(AuthFailure::MissingAny),
                None => Err(AuthFailure::Missing),
            };
        };
        let bytes = value.as_bytes();
        if is_bearer(bytes) {
            return match &self.federation {
                Some(federation) => {
                    self.authenticate_bearer(federation, headers, required, request_id, target)
                        .await
                }
                None => Err(AuthFailure::BearerNotAccepted),
            };
        }
        let credentials =
            cryptoutil_realm::basic::parse(bytes).map_err(|_| AuthFailure::Invalid("malformed"))?;
        let outcome = cryptoutil_realm::verify_basic(&self.realms, &credentials, &self.cache)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        let user = self.authenticated(
            outcome,
            &credentials.username,
            AuthMethod::Basic,
            request_id,
        )?;
        self.principal(&user, headers, AuthMethod::Basic, request_id)
            .await
    }

    async fn authenticate_certificate(
        &self,
        leaf: &cryptoutil_tls::rustls_pki_types::CertificateDer<'static>,
        headers: &HeaderMap,
        request_id: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let subject = cryptoutil_tls::CertInfo::from_der(leaf)
            .map_err(|_| AuthFailure::Invalid("unreadable client certificate"))?
            .subject;
        let outcome = cryptoutil_realm::verify_certificate(&self.realms, &subject)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        let user = self.authenticated(outcome, &subject, AuthMethod::Certificate, request_id)?;
        self.principal(&user, headers, AuthMethod::Certificate, request_id)
            .await
    }

    /// A bearer (or DPoP-bound) token: from the verified-token cache when warm (no I/O), else
    /// validated and mapped; then its binding (the DPoP proof), `X-Tenant-ID`, the route's
    /// scope, and the revocation check.
    async fn authenticate_bearer(
        &self,
        federation: &Federation,
        headers: &HeaderMap,
        required: Option<&'static str>,
        request_id: Option<&str>,
        target: Option<RequestTarget<'_>>,
    ) -> Result<Principal, AuthFailure> {
        let audited_bearer = |failure| self.refused_bearer(failure, request_id);
        let presented = cryptoutil_realm::bearer::presented(headers)
            .map_err(|e| audited_bearer(AuthFailure::Bearer(e)))?;
        let token = presented.token;
        let digest = TokenDigest::of(token);
        let verified = match federation.cached(&digest, federation::unix_now()) {
            Some(verified) => verified,
            None => {
                let (claims, issuer) = federation
                    .validate(token)
                    .await
                    .map_err(|e| audited_bearer(AuthFailure::Bearer(e)))?;
                let name = federation.tenant_name(&claims, issuer).map_err(|p| {
                    audited_bearer(AuthFailure::TokenTenant(match p {
                        federation::TenantProblem::None(m)
                        | federation::TenantProblem::Refused(m) => m,
                    }))
                })?;
                let tenant = self.token_tenant(name).await.map_err(audited_bearer)?;
                federation.remember(digest, &claims, issuer, tenant)
            }
        };
        let (method, path) = target.map_or(("", None), |t| (t.method, Some(t.path)));
        federation
            .check_binding(&presented, &verified, method, path)
            .await
            .map_err(|e| audited_bearer(AuthFailure::Bearer(e)))?;
        if let Some(value) = headers.get(TENANT_HEADER)
            && value.to_str().ok().and_then(parse_uuid).map(TenantId) != Some(verified.tenant)
        {
            return Err(audited_bearer(AuthFailure::Tenant(
                "X-Tenant-ID is not the token's tenant".to_owned(),
            )));
        }
        if let Some(scope) = required
            && !verified.grants(scope)
        {
            return Err(audited_bearer(AuthFailure::InsufficientScope(scope)));
        }
        federation
            .check_step_up(&verified, required, federation::unix_now())
            .map_err(|r| audited_bearer(AuthFailure::InsufficientUserAuthentication(r)))?;
        federation
            .check_revocation(&verified, token, &digest, required)
            .await
            .map_err(|e| audited_bearer(AuthFailure::Bearer(e)))?;
        let method = if presented.scheme == Scheme::DPoP {
            AuthMethod::Dpop
        } else {
            AuthMethod::Bearer
        };
        self.audit.record(
            &AuditEvent::new(
                Operation::Authenticate {
                    method,
                    realm: None,
                    client_id: verified.client_id.as_deref(),
                },
                AuditOutcome::Success,
            )
            .with_subject(Some(&verified.subject))
            .with_actor(verified.actor.as_deref())
            .with_tenant(Some(verified.tenant))
            .with_request_id(request_id),
        );
        Ok(Principal {
            tenant: verified.tenant,
            subject: verified.subject.clone(),
            scopes: verified.scopes.clone(),
            tenants: vec![verified.tenant],
            request_id: request_id.map(str::to_owned),
            actor: verified.actor.clone(),
        })
    }

    /// The tenant a token names, by name (or by id when it is a canonical UUID).
    async fn token_tenant(&self, name: &str) -> Result<TenantId, AuthFailure> {
        if let Some(id) = self.tenant_id(name).await? {
            return Ok(id);
        }
        if let Some(id) = parse_uuid(name).map(TenantId)
            && self
                .store
                .tenant_by_id(id)
                .await
                .map_err(|_| AuthFailure::Unavailable)?
                .is_some()
        {
            return Ok(id);
        }
        Err(AuthFailure::TokenTenant(
            "the token's tenant is not known to this KMS".to_owned(),
        ))
    }

    /// The principal of an authenticated user in the tenant this request selects; audited.
    async fn principal(
        &self,
        user: &RealmUser,
        headers: &HeaderMap,
        method: AuthMethod,
        request_id: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let (tenant, tenants) = match self.tenant_for(user, headers).await {
            Ok(t) => t,
            Err(f) => return Err(self.refused(&user.username, f, method, request_id)),
        };
        self.audit.record(
            &AuditEvent::new(
                Operation::Authenticate {
                    method,
                    realm: Some(&user.realm),
                    client_id: None,
                },
                AuditOutcome::Success,
            )
            .with_subject(Some(&user.username))
            .with_tenant(Some(tenant))
            .with_request_id(request_id),
        );
        Ok(Principal {
            tenant,
            subject: format!("{}:{}", user.realm, user.username),
            scopes: user.scopes.iter().cloned().collect(),
            tenants,
            request_id: request_id.map(str::to_owned),
            actor: None,
        })
    }

    /// The tenant of this request: `X-Tenant-ID` if it is one of the user's, else the user's first.
    async fn tenant_for(
        &self,
        user: &RealmUser,
        headers: &HeaderMap,
    ) -> Result<(TenantId, Vec<TenantId>), AuthFailure> {
        let mut own = Vec::with_capacity(user.tenants.len());
        for name in &user.tenants {
            if let Some(id) = self.tenant_id(name).await? {
                own.push(id);
            }
        }
        let chosen = match headers.get(TENANT_HEADER) {
            Some(value) => {
                let id = value
                    .to_str()
                    .ok()
                    .and_then(parse_uuid)
                    .map(TenantId)
                    .ok_or_else(|| {
                        AuthFailure::Tenant(
                            "X-Tenant-ID must be a canonical lowercase UUID".to_owned(),
                        )
                    })?;
                if own.contains(&id) {
                    Ok(id)
                } else {
                    Err(AuthFailure::Tenant(
                        "X-Tenant-ID is not one of your tenants".to_owned(),
                    ))
                }
            }
            None => own
                .first()
                .copied()
                .ok_or_else(|| AuthFailure::Tenant("this user has no tenant to act in".to_owned())),
        }?;
        Ok((chosen, own))
    }

    async fn tenant_id(&self, name: &str) -> Result<Option<TenantId>, AuthFailure> {
        if let Some(id) = self.tenants.lock().ok().and_then(|m| m.get(name).copied()) {
            return Ok(Some(id));
        }
        let tenant = self
            .store
            .tenant_by_name(name)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        if let (Some(t), Ok(mut map)) = (&tenant, self.tenants.lock()) {
            map.insert(name.to_owned(), t.id);
        }
        Ok(tenant.map(|t| t.id))
    }

    /// The user of a successful outcome; every other outcome is the same 401 (audited with its
    /// reason).
    fn authenticated(
        &self,
        outcome: Outcome,
        subject: &str,
        method: AuthMethod,
        request_id: Option<&str>,
    ) -> Result<Arc<RealmUser>, AuthFailure> {
        let reason = match outcome {
            Outcome::Authenticated { user, .. } => return Ok(user),
            Outcome::Disabled { .. } => "disabled",
            Outcome::WrongPassword { .. } => "wrong password",
            Outcome::UnknownUser => "unknown user",
        };
        Err(self.refused(subject, AuthFailure::Invalid(reason), method, request_id))
    }

    /// A refused bearer request, audited with its SPEC §5 code (never the token).
    fn refused_bearer(&self, failure: AuthFailure, request_id: Option<&str>) -> AuthFailure {
        let outcome = match &failure {
            AuthFailure::Bearer(e) if e.is_unavailable() => AuditOutcome::Failed(e.code()),
            AuthFailure::Bearer(e) => AuditOutcome::Refused(e.code()),
            AuthFailure::InsufficientScope(_) => AuditOutcome::Refused("insufficient_scope"),
            AuthFailure::InsufficientUserAuthentication(_) => {
                AuditOutcome::Refused("insufficient_user_authentication")
            }
            AuthFailure::TokenTenant(_) => AuditOutcome::Refused("invalid_tenant"),
            AuthFailure::Tenant(_) => AuditOutcome::Refused("tenant not allowed"),
            AuthFailure::Unavailable => AuditOutcome::Failed("unavailable"),
            _ => AuditOutcome::Refused("other"),
        };
        self.audit.record(
            &AuditEvent::new(
                Operation::Authenticate {
                    method: AuthMethod::Bearer,
                    realm: None,
                    client_id: None,
                },
                outcome,
            )
            .with_request_id(request_id),
        );
        failure
    }

    /// A refused realm user (or presented name), audited with the reason.
    fn refused(
        &self,
        subject: &str,
        failure: AuthFailure,
        method: AuthMethod,
        request_id: Option<&str>,
    ) -> AuthFailure {
        let reason = match &failure {
            AuthFailure::Invalid(reason) => reason,
            AuthFailure::Tenant(_) => "tenant not allowed",
            _ => "other",
        };
        let subject: String = subject.chars().take(256).collect();
        self.audit.record(
            &AuditEvent::new(
                Operation::Authenticate {
                    method,
                    realm: None,
                    client_id: None,
                },
                AuditOutcome::Refused(reason),
            )
            .with_subject(Some(&subject))
            .with_request_id(request_id),
        );
        failure
    }
}

/// Whether an `Authorization` value names a token scheme (`Bearer` or `DPoP`).
fn is_bearer(value: &[u8]) -> bool {
    cryptoutil_realm::bearer::sender::is_token_scheme(value)
}

/// The method and path of a request, against which DPoP proofs are checked.
#[derive(Debug, Clone, Copy)]
pub struct RequestTarget<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path (without the query).
    pub path: &'a str,
}

impl<S> Authenticator<S> {
    /// The problem of `failure` with this KMS's challenges: Bearer and DPoP as configured, with
    /// the RFC 9728 `resource_metadata` parameter (RFC 9449 §7.1, RFC 9728 §5.1).
    pub fn problem(&self, failure: AuthFailure) -> Problem {
        let Some(challenge) = self.federation.as_ref().map(|f| f.challenge()) else {
            return Problem::from(failure);
        };
        let header = match &failure {
            AuthFailure::MissingAny => Some(format!(
                "{BASIC_CHALLENGE}, {}",
                challenge.header(None, false, None)
            )),
            AuthFailure::Bearer(e) if !e.is_unavailable() => Some(challenge.refusal(e)),
            AuthFailure::InsufficientScope(scope) => Some(challenge.header(
                Some((
                    "insufficient_scope",
                    &format!("this operation needs the scope {scope}"),
                )),
                false,
                Some(scope),
            )),
            _ => None,
        };
        let problem = Problem::from(failure);
        match header {
            Some(h) => problem.with_www_authenticate(h),
            None => problem,
        }
    }
}

/// Middleware of the browser surface: [`require_authentication`], but a 401 for a script request
/// (`Sec-Fetch-Mode` other than `navigate`) carries [`BROWSER_CHALLENGE`] instead of `Basic`.
pub async fn require_browser_authentication<S: DirectoryStore>(
    state: State<Arc<Authenticator<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let script = request
        .headers()
        .get("sec-fetch-mode")
        .is_some_and(|mode| mode.as_bytes() != b"navigate");
    let mut response = require_authentication(state, request, next).await;
    if script
        && response.status() == StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .is_some_and(|v| v.as_bytes().starts_with(b"Basic"))
    {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(BROWSER_CHALLENGE),
        );
    }
    response
}

/// Middleware: authenticates the request and puts its [`Principal`] into the extensions.
pub async fn require_authentication<S: DirectoryStore>(
    State(auth): State<Arc<Authenticator<S>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let certificate = request.extensions().get::<ClientCertificate>().cloned();
    // Only a bearer token is checked against the route's scope here (a realm user's scopes are
    // checked by the key service), so only a bearer request pays for finding the route's scope.
    let required = if request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| is_bearer(v.as_bytes()))
    {
        crate::scopes::required_scope(request.method().as_str(), request.uri().path())
    } else {
        None
    };
    let request_id = request
        .extensions()
        .get::<cryptoutil_server::middleware::RequestId>()
        .and_then(|id| id.0.to_str().ok());
    // The surfaces are nested routers: the path they see lacks their prefix, the proof's
    // `htu` names the whole path.
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |o| o.0.path());
    let target = RequestTarget {
        method: request.method().as_str(),
        path,
    };
    match auth
        .authenticate_request(
            request.headers(),
            certificate.as_ref(),
            required,
            request_id,
            Some(target),
        )
        .await
    {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(failure) => auth.problem(failure).into_response(),
    }
}
