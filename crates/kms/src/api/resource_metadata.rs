//! `GET /.well-known/oauth-protected-resource` (RFC 9728): what a client needs to get a token
//! for this KMS: its resource identifier, the issuers it trusts, its scopes, and how tokens are
//! presented (the `Authorization` header; DPoP with these algorithms, or only DPoP).
//! Unauthenticated and cacheable; served on the public listener when `auth.federation.resource`
//! is set.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cryptoutil_realm::bearer::ProtectedResourceMetadata;
use utoipa::openapi::OpenApi;

/// The path of the document (RFC 9728 §3).
pub const PATH: &str = "/.well-known/oauth-protected-resource";
/// How long clients and caches may keep the document.
const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=3600");

/// The route serving `metadata`.
pub fn router(metadata: ProtectedResourceMetadata) -> Router {
    let body = axum::body::Bytes::from(serde_json::to_vec(&metadata).unwrap_or_default());
    Router::new().route(
        PATH,
        get(move || {
            let body = body.clone();
            async move { document(body) }
        }),
    )
}

fn document(body: axum::body::Bytes) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        body,
    )
        .into_response()
}

/// Adds the route to the OpenAPI document.
pub fn document_route(document: &mut OpenApi) {
    use utoipa::openapi::ResponseBuilder;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    let operation = OperationBuilder::new()
        .operation_id(Some("protected_resource_metadata"))
        .tag("metadata")
        .summary(Some("Protected resource metadata (RFC 9728)"))
        .description(Some(
            "Unauthenticated and cacheable. A JSON object with `resource` (the KMS's resource \
             identifier, auth.federation.resource: request tokens for it with the RFC 8707 \
             `resource` parameter), `authorization_servers` (the trusted issuers), \
             `scopes_supported` (the kms:* scopes), `bearer_methods_supported` ([\"header\"]), \
             `dpop_signing_alg_values_supported` and `dpop_bound_access_tokens_required`. \
             Every 401 names it in the `resource_metadata` parameter of `WWW-Authenticate`. \
             Served only when auth.federation.resource is set.",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The metadata document (application/json)")
                .build(),
        )
        .build();
    document
        .paths
        .add_path_operation(PATH, vec![HttpMethod::Get], operation);
}
