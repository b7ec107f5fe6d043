//! Domain types shared by the barrier, the storage and the key service.
//!
//! Nothing here knows about HTTP or SQL. Identifiers are UUIDs: tenants UUIDv4 (external, unguessable),
//! everything else UUIDv7 (time-ordered, so "newest" is "largest").

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A tenant: the unit of isolation. Its keys live in their own PostgreSQL schema or SQLite database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// The 32 lowercase hex digits of the id, used to name the tenant's schema (`tenant_<hex>`) or
    /// database file. Safe to splice into SQL: it is derived from a UUID, never from request text.
    pub fn hex(&self) -> String {
        self.0.simple().to_string()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who is calling: the tenant comes from the credential, never from the URL (SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every operation of this request acts in.
    pub tenant: TenantId,
    /// A stable name for the audit log (realm user, token subject, certificate subject).
    pub subject: String,
    /// Fine-grained scopes the principal holds (already expanded from coarse ones).
    pub scopes: Vec<String>,
    /// Every tenant the principal may act in (`tenant` is one of them); bounds what a `kms:admin`
    /// may manage.
    pub tenants: Vec<TenantId>,
    /// The request this principal acts in (`X-Request-ID`), for the audit trail; `None` outside
    /// a request (the system, seeding, in-process callers).
    pub request_id: Option<String>,
    /// For a delegated token (RFC 8693 `act`), who acts for `subject`: the actor chain, current
    /// actor first (`rs-client via gateway`); audited with every operation. `None` otherwise.
    pub actor: Option<String>,
}

/// Lifecycle of an elastic key (SPEC §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Every operation.
    Active,
    /// Decrypt and verify only.
    Disabled,
    /// Scheduled for purge; can be restored to `active` or `disabled` until then. No crypto.
    PendingDelete,
    /// Purged: metadata kept as a tombstone, key material destroyed.
    Deleted,
}

impl KeyStatus {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::PendingDelete => "pending_delete",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored or serialized name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "pending_delete" => Some(Self::PendingDelete),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// An elastic key: a named pool of versioned material keys with one algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticKey {
    /// UUIDv7.
    pub id: Uuid,
    /// Unique within the tenant.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Canonical algorithm: a JWS `alg` (`ES256`) or a JWE `enc/alg` pair (`A256GCM/A256KW`).
    pub algorithm: String,
    /// New material key versions may be added.
    pub versioning_allowed: bool,
    /// Caller-supplied material may be imported.
    pub import_allowed: bool,
    /// Material may be exported (reserved; reads never return secret material).
    pub export_allowed: bool,
    /// Lifecycle status.
    pub status: KeyStatus,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When a `pending_delete` key becomes due for purge.
    pub purge_after: Option<OffsetDateTime>,
}

/// One version of an elastic key's key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialKey {
    /// UUIDv7; also the `kid` of JWEs and JWSs made with it.
    pub id: Uuid,
    /// Owning elastic key.
    pub elastic_key_id: Uuid,
    /// When generated (for imported keys: when imported).
    pub generate_date: OffsetDateTime,
    /// Set when the material was imported.
    pub import_date: Option<OffsetDateTime>,
    /// Set when revoked: no longer used for any operation.
    pub revocation_date: Option<OffsetDateTime>,
    /// Public JWK (JSON text) for asymmetric algorithms.
    pub public_jwk: Option<String>,
    /// The private or secret JWK, sealed by the barrier (compact JWE under a content key).
    pub sealed_jwk: String,
}

/// Filters for listing elastic keys; empty lists and `None` match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElasticKeyFilter {
    /// Any of these ids.
    pub ids: Vec<Uuid>,
    /// Any of these exact names.
    pub names: Vec<String>,
    /// Any of these algorithms.
    pub algorithms: Vec<String>,
    /// Any of these statuses.
    pub statuses: Vec<KeyStatus>,
    /// Flag filters.
    pub versioning_allowed: Option<bool>,
    /// Flag filters.
    pub import_allowed: Option<bool>,
    /// Flag filters.
    pub export_allowed: Option<bool>,
}

/// Whitelisted sort fields for elastic keys (request text never reaches SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElasticKeySortField {
    /// `name`
    Name,
    /// `algorithm`
    Algorithm,
    /// `status`
    Status,
    /// `created_at` (default)
    #[default]
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
}

/// A sort order: field and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort<F> {
    /// Field.
    pub field: F,
    /// Descending when true.
    pub descending: bool,
}

/// Smallest and largest page size, and the default (SPEC §3.2).
pub const PAGE_SIZE_MIN: u32 = 1;
/// Largest page size.
pub const PAGE_SIZE_MAX: u32 = 1000;
/// Default page size.
pub const PAGE_SIZE_DEFAULT: u32 = 25;

/// A validated page request: `page` is 0-based, `size` within 1..=1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 0-based page number.
    pub page: u32,
    /// Items per page.
    pub size: u32,
}

impl PageRequest {
    /// Checks the bounds; `None` when out of range.
    pub fn new(page: u32, size: u32) -> Option<Self> {
        (PAGE_SIZE_MIN..=PAGE_SIZE_MAX)
            .contains(&size)
            .then_some(Self { page, size })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page) * u64::from(self.size)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 0,
            size: PAGE_SIZE_DEFAULT,
        }
    }
}

/// One page of results and the total count across pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// 0-based page number.
    pub page: u32,
    /// Requested page size.
    pub size: u32,
    /// Matching items across all pages.
    pub total: u64,
}

/// Which barrier layer a wrapped key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarrierLayer {
    /// Wrapped for every unseal key (JWE JSON general serialization, one recipient per unseal key).
    Root,
    /// Per tenant, wrapped under a root key.
    Intermediate,
    /// Per elastic key, wrapped under the tenant's intermediate key; wraps material keys.
    Content,
}

/// A barrier key as stored: only ever encrypted under its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// UUIDv7 `kid` of this key.
    pub kid: Uuid,
    /// `kid` of the wrapping key (for root keys: `None`, the JWE names each unseal key per recipient).
    pub parent_kid: Option<Uuid>,
    /// For content keys: the elastic key they protect.
    pub owner: Option<Uuid>,
    /// The JWE (compact, or JSON general serialization for root keys).
    pub jwe: String,
    /// Creation time; the newest key of a layer is the current one.
    pub created_at: OffsetDateTime,
}

/// A tenant as the directory knows it: an unguessable id and a unique, human name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// UUIDv4.
    pub id: TenantId,
    /// Unique across the KMS, 1–128 characters (`demo-tenant`).
    pub name: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A user of the database realm (table `kms_realm_users`, SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmUserRecord {
    /// Unique, 1–256 characters.
    pub username: String,
    /// Canonical PBKDF2 hash (`pbkdf2-sha256$…`); never a plaintext password.
    pub password_hash: String,
    /// Role or scope names.
    pub roles: Vec<String>,
    /// Tenant names the user may act in (the first is the default).
    pub tenants: Vec<String>,
    /// Disabled users never authenticate.
    pub enabled: bool,
    /// Free JSON object (text), for operators.
    pub metadata: String,
    /// TLS client certificate subject that logs in as this user, if any.
    pub certificate_subject: Option<String>,
    /// Bumped by every change, so cached verifications of an older version are ignored.
    pub version: i64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An elastic key as the cryptographic inventory sees it: the key, how many material key
/// versions it has, and when it was last used (as flushed to the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInventoryRecord {
    /// The elastic key.
    pub key: ElasticKey,
    /// Material key versions (revoked ones included; none once purged).
    pub versions: u64,
    /// The last successful crypto operation, to the minute, as last flushed (see
    /// `inventory::last_use`); `None` when never used (or never flushed).
    pub last_used_at: Option<OffsetDateTime>,
}
