//! JSON representations of the API (snake_case, SPEC §3.2). Unknown request fields are refused.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::{ElasticKey, KeyStatus, MaterialKey, Page};

/// Body of `POST /elastickey`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateElasticKey {
    /// Unique in the tenant, 1–128 characters.
    #[schema(example = "payments-encryption", min_length = 1, max_length = 128)]
    pub name: String,
    /// Free text, up to 1024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: String,
    /// JWS `alg` or JWE `enc/alg`; default `A256GCM/A256KW`.
    #[schema(example = "A256GCM/A256KW")]
    pub algorithm: Option<String>,
    /// New material key versions may be added (default true).
    #[serde(default = "yes")]
    pub versioning_allowed: bool,
    /// Caller-supplied key material may be imported (default false).
    #[serde(default)]
    pub import_allowed: bool,
    /// Key material may be exported (default false; reads never return secret material).
    #[serde(default)]
    pub export_allowed: bool,
}

fn yes() -> bool {
    true
}

/// Body of `PUT /elastickey/{id}`: fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateElasticKey {
    /// New description (up to 1024 characters).
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// `active` or `disabled` (either restores a key pending deletion).
    pub status: Option<Status>,
}

/// Elastic key status.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every operation.
    Active,
    /// Decrypt and verify only.
    Disabled,
    /// Scheduled for purge; restorable until then.
    PendingDelete,
    /// Purged.
    Deleted,
}

impl From<KeyStatus> for Status {
    fn from(s: KeyStatus) -> Self {
        match s {
            KeyStatus::Active => Self::Active,
            KeyStatus::Disabled => Self::Disabled,
            KeyStatus::PendingDelete => Self::PendingDelete,
            KeyStatus::Deleted => Self::Deleted,
        }
    }
}

impl From<Status> for KeyStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => Self::Active,
            Status::Disabled => Self::Disabled,
            Status::PendingDelete => Self::PendingDelete,
            Status::Deleted => Self::Deleted,
        }
    }
}

/// An elastic key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElasticKeyView {
    /// UUIDv7.
    pub elastic_key_id: Uuid,
    /// Unique in the tenant.
    pub name: String,
    /// Free text.
    pub description: String,
    /// JWS `alg` or JWE `enc/alg`.
    pub algorithm: String,
    /// New versions may be added.
    pub versioning_allowed: bool,
    /// Imports allowed.
    pub import_allowed: bool,
    /// Export allowed.
    pub export_allowed: bool,
    /// Lifecycle status.
    pub status: Status,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339; when a `pending_delete` key will be purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<String>,
}

impl From<ElasticKey> for ElasticKeyView {
    fn from(k: ElasticKey) -> Self {
        Self {
            elastic_key_id: k.id,
            name: k.name,
            description: k.description,
            algorithm: k.algorithm,
            versioning_allowed: k.versioning_allowed,
            import_allowed: k.import_allowed,
            export_allowed: k.export_allowed,
            status: k.status.into(),
            created_at: rfc3339(k.created_at),
            updated_at: rfc3339(k.updated_at),
            purge_after: k.purge_after.map(rfc3339),
        }
    }
}

/// A material key: metadata and, for asymmetric algorithms, the public JWK. Never secret material.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialKeyView {
    /// UUIDv7; the `kid` of tokens made with it.
    pub material_key_id: Uuid,
    /// Owning elastic key.
    pub elastic_key_id: Uuid,
    /// RFC 3339.
    pub generate_date: String,
    /// RFC 3339, for imported material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_date: Option<String>,
    /// RFC 3339, when revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_date: Option<String>,
    /// Public JWK (asymmetric algorithms only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<serde_json::Value>,
}

impl From<MaterialKey> for MaterialKeyView {
    fn from(m: MaterialKey) -> Self {
        Self {
            material_key_id: m.id,
            elastic_key_id: m.elastic_key_id,
            generate_date: rfc3339(m.generate_date),
            import_date: m.import_date.map(rfc3339),
            revocation_date: m.revocation_date.map(rfc3339),
            public_jwk: m
                .public_jwk
                .and_then(|text| serde_json::from_str(&text).ok()),
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    /// This page's items.
    pub items: Vec<T>,
    /// 0-based page number.
    pub page: u32,
    /// Page size.
    pub size: u32,
    /// Matching items across all pages.
    pub total: u64,
}

impl<T: ToSchema> List<T> {
    /// Converts a storage page.
    pub fn from_page<U>(page: Page<U>) -> Self
    where
        T: From<U>,
    {
        Self {
            items: page.items.into_iter().map(T::from).collect(),
            page: page.page,
            size: page.size,
            total: page.total,
        }
    }
}

/// Result of `POST /elastickey/{id}/generate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedKeyView {
    /// The data key's private JWK encrypted under the elastic key (compact JWE, `cty: jwk+json`).
    pub encrypted_jwk: String,
    /// The clear private JWK, only with `include_plaintext=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwk: Option<serde_json::Value>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A body of raw octets (`application/octet-stream`): plaintexts and payloads. In the document a
/// `string` of binary format, not the JSON array of integers `Vec<u8>` would claim.
pub struct RawBytes;

impl utoipa::PartialSchema for RawBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .description(Some("Any octets"))
            .into()
    }
}

impl ToSchema for RawBytes {}

/// A compact JWS or JWE (`application/jose`): three or five base64url segments joined by dots.
pub struct CompactJose;

/// The shape of a compact serialization (RFC 7515 §7.1, RFC 7516 §7.1).
pub const COMPACT_JOSE_PATTERN: &str =
    r"^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){2}((\.[A-Za-z0-9_-]*){2})?$";

impl utoipa::PartialSchema for CompactJose {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(COMPACT_JOSE_PATTERN))
            .description(Some(
                "Compact serialization: header.payload.signature (JWS) or \
                 header.encrypted_key.iv.ciphertext.tag (JWE), base64url segments",
            ))
            .into()
    }
}

impl ToSchema for CompactJose {}
