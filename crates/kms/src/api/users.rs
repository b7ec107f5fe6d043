//! `kms:admin` user administration of the database realm, on the service surface only.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cryptoutil_server::{ApiJson, Problem};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

use super::Caller;
use super::dto::List;
use super::query::Params;
use crate::model::RealmUserRecord;
use crate::storage::Store;
use crate::users::{NewUser, UserAdmin, UserChange};

/// Handler state.
pub type Users = Arc<UserAdmin<Store>>;

const TAG: &str = "realm users";

/// Body of `POST /admin/realm-users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1–256 characters, no `:`.
    #[schema(min_length = 1, max_length = 256)]
    pub username: String,
    /// 12–1024 characters; stored only as a PBKDF2 hash.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// Scope names (`kms:read`, `kms:write`, `kms:encrypt`, …).
    pub roles: Vec<String>,
    /// Existing tenant names, each one of yours; the first is the user's default.
    pub tenants: Vec<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// TLS client certificate subject that logs in as this user.
    pub certificate_subject: Option<String>,
}

fn yes() -> bool {
    true
}

/// Body of `PUT /admin/realm-users/{username}`: fields left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New roles.
    pub roles: Option<Vec<String>>,
    /// New tenants.
    pub tenants: Option<Vec<String>>,
    /// `false` disables the user at once (cached credentials are dropped).
    pub enabled: Option<bool>,
    /// New metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// New certificate subject; an empty string removes it.
    pub certificate_subject: Option<String>,
}

/// Body of `PUT /admin/realm-users/{username}/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// 12–1024 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// A realm user (never the password or its hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    /// Username.
    pub username: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenant names.
    pub tenants: Vec<String>,
    /// Whether the user may log in.
    pub enabled: bool,
    /// Metadata object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// TLS client certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_subject: Option<String>,
    /// Changes so far.
    pub version: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<RealmUserRecord> for UserView {
    fn from(u: RealmUserRecord) -> Self {
        Self {
            username: u.username,
            roles: u.roles,
            tenants: u.tenants,
            enabled: u.enabled,
            metadata: serde_json::from_str(&u.metadata).unwrap_or_else(|_| serde_json::json!({})),
            certificate_subject: u.certificate_subject,
            version: u.version,
            created_at: u.created_at.format(&Rfc3339).unwrap_or_default(),
            updated_at: u.updated_at.format(&Rfc3339).unwrap_or_default(),
        }
    }
}

fn metadata_text(value: Option<serde_json::Value>) -> String {
    value.map_or_else(|| "{}".to_owned(), |v| v.to_string())
}

/// Create a database-realm user.
#[utoipa::path(post, path = "/admin/realm-users", tag = TAG, request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 400, description = "Invalid input"),
              (status = 409, description = "Username or certificate subject taken")))]
pub async fn create_user(
    State(users): State<Users>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response, Problem> {
    let user = users
        .create(
            &who,
            NewUser {
                username: body.username,
                password: Zeroizing::new(body.password),
                roles: body.roles,
                tenants: body.tenants,
                enabled: body.enabled,
                metadata: metadata_text(body.metadata),
                certificate_subject: body.certificate_subject,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(user))).into_response())
}

/// List the users you administer.
#[utoipa::path(get, path = "/admin/realm-users", tag = TAG,
    params(("page" = Option<u32>, Query, minimum = 0, description = "0-based page"),
           ("size" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 25")),
    responses((status = 200, body = List<UserView>)))]
pub async fn list_users(
    State(users): State<Users>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<ApiJson<List<UserView>>, Problem> {
    let page = Params::parse(query.as_deref(), &["page", "size"])?.page()?;
    Ok(ApiJson(List::from_page(users.list(&who, page).await?)))
}

/// Read a user.
#[utoipa::path(get, path = "/admin/realm-users/{username}", tag = TAG,
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserView), (status = 404, description = "Not found")))]
pub async fn get_user(
    State(users): State<Users>,
    Caller(who): Caller,
    Path(username): Path<String>,
) -> Result<ApiJson<UserView>, Problem> {
    Ok(ApiJson(users.get(&who, &username).await?.into()))
}

/// Change roles, tenants, enabled (disable), metadata or certificate subject.
#[utoipa::path(put, path = "/admin/realm-users/{username}", tag = TAG, request_body = UpdateUser,
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserView), (status = 404, description = "Not found"),
              (status = 409, description = "Certificate subject taken, or the user changed meanwhile")))]
pub async fn update_user(
    State(users): State<Users>,
    Caller(who): Caller,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<ApiJson<UserView>, Problem> {
    let change = UserChange {
        roles: body.roles,
        tenants: body.tenants,
        enabled: body.enabled,
        metadata: body.metadata.map(|m| m.to_string()),
        certificate_subject: body
            .certificate_subject
            .map(|s| (!s.is_empty()).then_some(s)),
    };
    Ok(ApiJson(users.update(&who, &username, change).await?.into()))
}

/// Set a user's password (cached credentials are dropped at once).
#[utoipa::path(put, path = "/admin/realm-users/{username}/password", tag = TAG, request_body = SetPassword,
    params(("username" = String, Path, description = "Username")),
    responses((status = 204, description = "Changed"), (status = 404, description = "Not found"),
              (status = 409, description = "The user changed meanwhile")))]
pub async fn set_password(
    State(users): State<Users>,
    Caller(who): Caller,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let body: SetPassword = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?;
    users
        .set_password(&who, &username, Zeroizing::new(body.password))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user.
#[utoipa::path(delete, path = "/admin/realm-users/{username}", tag = TAG,
    params(("username" = String, Path, description = "Username")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
pub async fn delete_user(
    State(users): State<Users>,
    Caller(who): Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, Problem> {
    users.delete(&who, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user administration routes (relative to the service surface) and their OpenAPI paths.
pub fn router(users: Users) -> (Router, OpenApi) {
    let (router, mut api) = OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
        .with_state(users)
        .split_for_parts();
    super::document_scopes(&mut api, |_, _| Some(crate::scopes::ADMIN));
    super::problems::document_problems(&mut api);
    (router, api)
}
