//! The error responses every operation can give, written into the OpenAPI document so that it
//! tells the truth: authentication (401), scope, tenant or CSRF refusals (403), malformed input
//! (400), unknown resources (404, operations with a path parameter), body limits and media types
//! (413, 415), the surface's rate limit (429) and unavailable dependencies (503). All of them
//! are `application/problem+json` bodies of the [`PROBLEM_SCHEMA`] component.
//!
//! Handlers keep their own descriptions of the statuses they document; this adds the problem
//! content to those and the missing statuses. Checked against the running server by
//! `cargo xtask api-fuzz` (schemathesis' status code, content type and schema conformance).

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

use cryptoutil_server::problem::PROBLEM_JSON;

/// Name of the RFC 7807 problem schema in `components.schemas`.
pub const PROBLEM_SCHEMA: &str = "Problem";

/// A status every operation of a surface can answer with, and why.
struct Generic {
    status: &'static str,
    description: &'static str,
    applies: fn(&str, &Operation) -> bool,
}

fn always(_: &str, _: &Operation) -> bool {
    true
}

fn has_path_parameter(path: &str, _: &Operation) -> bool {
    path.contains('{')
}

fn has_body(_: &str, op: &Operation) -> bool {
    op.request_body.is_some()
}

fn has_json_body(_: &str, op: &Operation) -> bool {
    op.request_body.as_ref().is_some_and(|body| match body {
        RefOr::T(body) => body
            .content
            .keys()
            .any(|media| media.as_str() == "application/json"),
        RefOr::Ref(_) => false,
    })
}

const GENERIC: &[Generic] = &[
    Generic {
        status: "400",
        description: "Malformed input (path, query or body)",
        applies: always,
    },
    Generic {
        status: "401",
        description: "Authentication is required, or the credentials are wrong (`WWW-Authenticate` says how)",
        applies: always,
    },
    Generic {
        status: "403",
        description: "Missing scope, tenant not allowed, or (browser surface) missing or wrong CSRF token",
        applies: always,
    },
    Generic {
        status: "404",
        description: "No such resource in your tenant",
        applies: has_path_parameter,
    },
    Generic {
        status: "413",
        description: "The body is larger than the limit (2 MiB)",
        applies: has_body,
    },
    Generic {
        status: "415",
        description: "The body is not `application/json`",
        applies: has_json_body,
    },
    Generic {
        status: "429",
        description: "Rate limit of the surface reached for your address (`Retry-After` says when to retry)",
        applies: always,
    },
    Generic {
        status: "503",
        description: "A dependency (database, user directory, token issuer) is unavailable; retry later",
        applies: always,
    },
];

/// Adds the problem schema and, to every operation that has a security requirement (the
/// surfaces' operations), the generic error statuses with problem content.
pub fn document_problems(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(PROBLEM_SCHEMA.to_owned(), RefOr::T(problem_schema()));
    for (path, item) in api.paths.paths.iter_mut() {
        for (_, op) in super::operations_of(item) {
            if op.security.is_none() {
                continue;
            }
            for generic in GENERIC {
                if !(generic.applies)(path, op) {
                    continue;
                }
                op.responses
                    .responses
                    .entry(generic.status.to_owned())
                    .or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(generic.description)
                                .build(),
                        )
                    });
            }
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(response) = response
                    && is_error(status)
                {
                    add_problem_content(response);
                }
            }
        }
    }
}

fn is_error(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

/// Error responses are problem documents; a handler's own error content (none today) is kept.
fn add_problem_content(response: &mut Response) {
    if response.content.is_empty() {
        response.content.insert(
            PROBLEM_JSON.to_owned(),
            RefOr::T(
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(PROBLEM_SCHEMA)))
                    .build(),
            ),
        );
    }
}

/// RFC 7807: `type`, `title` and `status` always; `detail` and extension members (`error`,
/// `scope`, ...) when there is more to say.
fn problem_schema() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .description(Some("An RFC 7807 problem document"))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("URI identifying the problem type (`about:blank` when the status says it all)")),
            )
            .required("type")
            .property(
                "title",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("Short summary")),
            )
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599))
                    .description(Some("The HTTP status")),
            )
            .required("status")
            .property(
                "detail",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("What went wrong, for a person")),
            )
            .property(
                "error",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("A stable error code (`csrf_token_invalid`, `invalid_token`, `insufficient_scope`, ...)")),
            )
            .build(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_error_statuses_are_problems() {
        assert!(is_error("400") && is_error("503"));
        assert!(!is_error("200") && !is_error("201") && !is_error("204"));
    }
}
