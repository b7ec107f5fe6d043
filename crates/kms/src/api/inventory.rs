//! The cryptographic inventory over HTTP: `GET /crypto-inventory` on both surfaces (the caller's
//! tenant, `kms:admin`), and `GET /admin/v1/crypto-inventory` on the admin listener (every tenant).
//! JSON by default; a CycloneDX 1.6 CBOM with `?format=cyclonedx` or
//! `Accept: application/vnd.cyclonedx+json`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cryptoutil_server::{ApiJson, Problem};

use super::query::Params;
use super::{ApiState, Caller, Keys};
use crate::inventory::{self, Inventory, InventoryError, cbom};
use crate::keys::KeyError;

/// Path of the system-wide inventory on the admin listener.
pub const ADMIN_INVENTORY_PATH: &str = "/admin/v1/crypto-inventory";

const TAG: &str = "inventory";

/// The two representations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    CycloneDx,
}

/// `?format=` wins; otherwise `Accept` naming the CycloneDX media type asks for the CBOM.
fn format(query: Option<&str>, headers: &HeaderMap) -> Result<Format, Problem> {
    let params = Params::parse(query, &["format"])?;
    match params.one("format")? {
        Some("json") => return Ok(Format::Json),
        Some("cyclonedx") => return Ok(Format::CycloneDx),
        Some(_) => {
            return Err(Problem::bad_request("format must be json or cyclonedx"));
        }
        None => {}
    }
    let wants_cbom = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(cbom::MEDIA_TYPE))
        });
    Ok(if wants_cbom {
        Format::CycloneDx
    } else {
        Format::Json
    })
}

fn respond(inventory: Inventory, format: Format) -> Response {
    match format {
        Format::Json => ApiJson(inventory).into_response(),
        Format::CycloneDx => {
            let document = cbom::cbom(&inventory, uuid::Uuid::new_v4());
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/vnd.cyclonedx+json; version=1.6"),
                )],
                document.to_string(),
            )
                .into_response()
        }
    }
}

fn problem(e: InventoryError) -> Problem {
    match e {
        InventoryError::InsufficientScope(scope) => KeyError::InsufficientScope(scope).into(),
        InventoryError::Unavailable => KeyError::Unavailable.into(),
        InventoryError::Internal(m) => KeyError::Internal(format!("inventory: {m}")).into(),
    }
}

/// The caller's tenant's cryptographic inventory: every elastic key with its algorithm, key
/// size, versions, rotation policy, status, last use and quantum vulnerability, and totals.
#[utoipa::path(get, path = "/crypto-inventory", tag = TAG,
    params(("format" = Option<String>, Query, pattern = "^(json|cyclonedx)$",
            description = "json (default) or cyclonedx (a CycloneDX 1.6 CBOM; also chosen by \
                           Accept: application/vnd.cyclonedx+json)")),
    responses((status = 200, description = "The inventory",
               content((Inventory = "application/json"),
                       (Object = "application/vnd.cyclonedx+json")))))]
pub async fn tenant_inventory(
    State(state): State<ApiState>,
    Caller(who): Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let format = format(query.as_deref(), &headers)?;
    let keys = &state.keys;
    let inventory = inventory::tenant_inventory(keys.store().as_ref(), keys.last_use(), &who)
        .await
        .map_err(problem)?;
    Ok(respond(inventory, format))
}

/// The admin listener's route: every tenant's keys, each naming its tenant.
pub fn admin_router(keys: Arc<Keys>) -> Router {
    Router::new()
        .route(ADMIN_INVENTORY_PATH, get(system_inventory))
        .with_state(keys)
}

async fn system_inventory(
    State(keys): State<Arc<Keys>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let format = format(query.as_deref(), &headers)?;
    let inventory = inventory::system_inventory(keys.store().as_ref(), keys.last_use())
        .await
        .map_err(problem)?;
    Ok(respond(inventory, format))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_query_then_accept() {
        let none = HeaderMap::new();
        let mut cbom_accept = HeaderMap::new();
        cbom_accept.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Application/Vnd.CycloneDX+JSON; version=1.6"),
        );
        assert_eq!(format(None, &none).unwrap(), Format::Json);
        assert_eq!(format(None, &cbom_accept).unwrap(), Format::CycloneDx);
        assert_eq!(
            format(Some("format=json"), &cbom_accept).unwrap(),
            Format::Json
        );
        assert_eq!(
            format(Some("format=cyclonedx"), &none).unwrap(),
            Format::CycloneDx
        );
        assert!(format(Some("format=xml"), &none).is_err());
        assert!(format(Some("size=3"), &none).is_err());
    }
}
