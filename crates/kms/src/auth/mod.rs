//! Authentication (SPEC §3.6): HTTP Basic against the realms in the configured order (file → db
//! by default), the verified-credential cache, the tenant from the credential (`X-Tenant-ID`
//! chooses among the principal's own tenants), and one audit event per decision.
//!
//! The result is a [`Principal`] in the request's extensions; the key service checks each
//! operation's fine scope. No credential or a bad one is 401 with `WWW-Authenticate`; a valid
//! credential that may not act in the requested tenant is 403. Unknown users, wrong passwords and
//! disabled users get the same answer at the same cost (PBKDF2 runs either way).

mod db_realm;
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
pub use settings::{AuthSettings, AuthSource};

use crate::ids::parse_uuid;
use crate::model::{Principal, TenantId};
use crate::store::DirectoryStore;

/// The header that picks one of the principal's tenants.
pub const TENANT_HEADER: &str = "x-tenant-id";
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
            AuthFailure::Tenant(detail) => Problem::new(StatusCode::FORBIDDEN).with_detail(detail),
            AuthFailure::Unavailable => {
                Problem::unavailable("the user directory is unavailable, try again later")
            }
        }
    }
}

/// Authenticates requests and resolves their tenant.
pub struct Authenticator<S> {
    realms: Vec<Arc<dyn Realm>>,
    cache: CredentialCache,
    store: Arc<S>,
    tenants: Mutex<HashMap<String, TenantId>>,
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
    /// Builds the realm chain from the settings (loading `realms.yml` when configured).
    pub fn new(settings: &AuthSettings, store: Arc<S>) -> Result<Self, String> {
        let mut realms: Vec<Arc<dyn Realm>> = Vec::new();
        for source in &settings.order {
            match source {
                AuthSource::File => {
                    if let Some(path) = &settings.realms_file {
                        let realm = FileRealm::load(path).map_err(|e| e.to_string())?;
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
        })
    }

    /// The verified-credential cache (the user admin API invalidates it).
    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }

    /// Authenticates one request from its headers, or (without an `Authorization` header) from
    /// the TLS client certificate the listener verified, mapped to a realm user by subject.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        client_certificate: Option<&ClientCertificate>,
    ) -> Result<Principal, AuthFailure> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match client_certificate.and_then(|c| c.0.first()) {
                Some(leaf) => self.authenticate_certificate(leaf, headers).await,
                None => Err(AuthFailure::Missing),
            };
        };
        let bytes = value.as_bytes();
        if bytes.len() >= 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
            return Err(AuthFailure::BearerNotAccepted);
        }
        let credentials =
            cryptoutil_realm::basic::parse(bytes).map_err(|_| AuthFailure::Invalid("malformed"))?;
        let outcome = cryptoutil_realm::verify_basic(&self.realms, &credentials, &self.cache)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        let user = authenticated(outcome, &credentials.username)?;
        self.principal(&user, headers, "basic").await
    }

    async fn authenticate_certificate(
        &self,
        leaf: &cryptoutil_tls::rustls_pki_types::CertificateDer<'static>,
        headers: &HeaderMap,
    ) -> Result<Principal, AuthFailure> {
        let subject = cryptoutil_tls::CertInfo::from_der(leaf)
            .map_err(|_| AuthFailure::Invalid("unreadable client certificate"))?
            .subject;
        let outcome = cryptoutil_realm::verify_certificate(&self.realms, &subject)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        let user = authenticated(outcome, &subject)?;
        self.principal(&user, headers, "certificate").await
    }

    /// The principal of an authenticated user in the tenant this request selects; audited.
    async fn principal(
        &self,
        user: &RealmUser,
        headers: &HeaderMap,
        method: &'static str,
    ) -> Result<Principal, AuthFailure> {
        let (tenant, tenants) = match self.tenant_for(user, headers).await {
            Ok(t) => t,
            Err(f) => return Err(audited(&user.username, f)),
        };
        tracing::info!(target: "audit", event = "authentication", outcome = "success",
            method, realm = %user.realm, subject = %user.username, tenant = %tenant);
        Ok(Principal {
            tenant,
            subject: format!("{}:{}", user.realm, user.username),
            scopes: user.scopes.iter().cloned().collect(),
            tenants,
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
}

/// The user of a successful outcome; every other outcome is the same 401 (audited with its reason).
fn authenticated(outcome: Outcome, subject: &str) -> Result<Arc<RealmUser>, AuthFailure> {
    let reason = match outcome {
        Outcome::Authenticated { user, .. } => return Ok(user),
        Outcome::Disabled { .. } => "disabled",
        Outcome::WrongPassword { .. } => "wrong password",
        Outcome::UnknownUser => "unknown user",
    };
    Err(audited(subject, AuthFailure::Invalid(reason)))
}

fn audited(subject: &str, failure: AuthFailure) -> AuthFailure {
    let reason = match &failure {
        AuthFailure::Invalid(reason) => *reason,
        AuthFailure::Tenant(_) => "tenant not allowed",
        _ => "other",
    };
    tracing::info!(target: "audit", event = "authentication", outcome = "failure",
        subject = %subject.chars().take(256).collect::<String>(), reason);
    failure
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
    match auth
        .authenticate(request.headers(), certificate.as_ref())
        .await
    {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(failure) => Problem::from(failure).into_response(),
    }
}
