//! The KMS HTTP API (SPEC §3.1–3.2): the same operations on `/service/api/v1` and
//! `/browser/api/v1`, an OpenAPI 3.1 document generated from the handlers, and Swagger UI.
//!
//! The scope each route needs is in [`crate::scopes`] (the route → scope table).
//!
//! Handlers are thin: they parse, call [`crate::keys::KeyService`] with the caller's
//! [`Principal`], and shape the answer. Every error is `application/problem+json`.

pub mod admin;
mod dto;
pub mod echo;
mod errors;
pub mod handlers;
pub mod inventory;
pub mod problems;
pub mod query;
pub mod resource_metadata;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use cryptoutil_server::Problem;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::keys::KeyService;
use crate::model::Principal;
use crate::storage::Store;

pub use cryptoutil_server::surface::{BROWSER_PREFIX, SERVICE_PREFIX};

/// Name of the HTTP Basic security scheme in the OpenAPI document.
pub const BASIC_SCHEME: &str = "basic";
/// Name of the bearer-token (federation) security scheme in the OpenAPI document.
pub const BEARER_SCHEME: &str = "bearer";

/// The key service on the real store.
pub type Keys = KeyService<Store>;

/// Handler state: cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The business layer.
    pub keys: Arc<Keys>,
}

/// The authenticated caller, put into request extensions by the authentication layer.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Taken, not cloned: a handler has one `Caller`, and nothing reads the principal after it.
        parts
            .extensions
            .remove::<Principal>()
            .map(Caller)
            .ok_or_else(|| {
                Problem::new(StatusCode::UNAUTHORIZED)
                    .with_detail("authentication is required")
                    .with_www_authenticate(crate::auth::BASIC_CHALLENGE)
            })
    }
}

/// Every operation, with paths relative to a surface.
fn operations() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_elastic_key))
        .routes(routes!(
            handlers::get_elastic_key,
            handlers::update_elastic_key,
            handlers::delete_elastic_key
        ))
        .routes(routes!(handlers::list_elastic_keys))
        .routes(routes!(handlers::rotate_material_key))
        .routes(routes!(handlers::import_material_key))
        .routes(routes!(handlers::get_material_key))
        .routes(routes!(handlers::list_material_keys_of))
        .routes(routes!(handlers::list_material_keys))
        .routes(routes!(handlers::encrypt))
        .routes(routes!(handlers::decrypt))
        .routes(routes!(handlers::sign))
        .routes(routes!(handlers::verify))
        .routes(routes!(handlers::generate))
        .routes(routes!(inventory::tenant_inventory))
}

/// The operations' router (paths relative to a surface) and, for each surface prefix, the
/// OpenAPI paths under that prefix with operation ids and tags made unique per surface.
pub fn operations_and_document(state: ApiState, prefixes: &[&str]) -> (Router, OpenApi) {
    let (router, mut relative) = operations().with_state(state).split_for_parts();
    // Key operations from the table; the inventory's admin rule from `required_scope`.
    document_scopes(&mut relative, |method, path| {
        crate::scopes::route_scope(method, path)
            .or_else(|| crate::scopes::required_scope(method, path))
    });
    problems::document_problems(&mut relative);
    let mut document = document_base();
    for prefix in prefixes {
        let mut api = relative.clone();
        label_surface(&mut api, prefix);
        document.merge(api);
    }
    if prefixes.contains(&BROWSER_PREFIX) {
        document_csrf_route(&mut document);
    }
    (router, document)
}

/// The browser surface's own route (served by `cryptoutil_server::surface`).
fn document_csrf_route(document: &mut OpenApi) {
    use utoipa::openapi::ResponseBuilder;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    let operation = OperationBuilder::new()
        .operation_id(Some("browser_csrf_token"))
        .tag("browser: csrf")
        .summary(Some("Issue a CSRF token"))
        .description(Some(
            "Returns {\"csrf_token\": \"...\"} and sets the matching __Host-csrf cookie; send the \
             token in the X-CSRF-Token header on every POST, PUT, PATCH and DELETE of the browser \
             surface.",
        ))
        .response(
            "200",
            ResponseBuilder::new().description("The token").build(),
        )
        .build();
    document.paths.add_path_operation(
        format!(
            "{BROWSER_PREFIX}{}",
            cryptoutil_server::surface::CSRF_TOKEN_PATH
        ),
        vec![HttpMethod::Get],
        operation,
    );
}

/// Marks every operation of `api` with the scope `scope_of(method, path)` names (a Basic security
/// requirement and a line of its description) and declares the Basic scheme.
pub(crate) fn document_scopes<'s>(
    api: &mut OpenApi,
    scope_of: impl Fn(&str, &str) -> Option<&'s str>,
) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, op) in operations_of(item) {
            let Some(scope) = scope_of(method, path) else {
                continue;
            };
            // Either scheme (OpenAPI lists alternatives).
            op.security = Some(vec![
                SecurityRequirement::new(BASIC_SCHEME, [scope]),
                SecurityRequirement::new(BEARER_SCHEME, [scope]),
            ]);
            let line = format!("Requires the scope `{scope}` (or a coarser one that includes it).");
            op.description = Some(match op.description.take() {
                Some(d) => format!("{d}\n\n{line}"),
                None => line,
            });
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BASIC_SCHEME,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
    );
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".to_owned());
    bearer.description = Some(
        "An access token of a trusted issuer (when auth.federation is configured), carrying \
         the scope in its `scope` claim. A DPoP-bound token (`cnf.jkt`) is presented as \
         `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449) instead."
            .to_owned(),
    );
    components.add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(bearer));
}

/// Puts a surface prefix on every path and the surface name on operation ids and tags.
pub fn label_surface(api: &mut OpenApi, prefix: &str) {
    let label = prefix
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("api")
        .to_owned();
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (format!("{prefix}{path}"), item))
        .collect();
    for item in api.paths.paths.values_mut() {
        for (_, op) in operations_of(item) {
            if let Some(id) = &op.operation_id {
                op.operation_id = Some(format!("{label}_{id}"));
            }
            if let Some(tags) = &mut op.tags {
                for tag in tags.iter_mut() {
                    *tag = format!("{label}: {tag}");
                }
            }
        }
    }
}

/// Each operation of a path item with its lowercase method.
fn operations_of(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

/// The OpenAPI document's frame: title, version, description.
pub fn document_base() -> OpenApi {
    let mut api = OpenApi::new(
        utoipa::openapi::Info::new("cryptoutil KMS", env!("CARGO_PKG_VERSION")),
        utoipa::openapi::Paths::new(),
    );
    api.info.description = Some(
        "Elastic keys (key pools of versioned material keys): encrypt/decrypt (JWE), sign/verify \
         (JWS), data keys. The same operations are served for services under /service/api/v1 and \
         for browsers under /browser/api/v1 (CORS, CSRF double-submit token from \
         GET /browser/api/v1/csrf-token in the X-CSRF-Token header)."
            .to_owned(),
    );
    api
}
