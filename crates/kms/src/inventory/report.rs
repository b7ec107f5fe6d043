//! The inventory document: one entry per elastic key and the totals.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::classify::{Classification, KeyPurpose, QuantumStatus, classify};
use super::last_use::LastUse;
use crate::model::{KeyInventoryRecord, KeyStatus, TenantId};

/// Whose keys an inventory lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The caller's tenant.
    Tenant,
    /// Every tenant (admin listener).
    System,
}

/// The rotation policy of a key that may take new versions: the KMS has no scheduled rotation,
/// a caller (or an operator's scheduler) rotates with `POST …/materialkey`.
pub const ROTATION_MANUAL: &str = "manual";
/// The rotation policy of a key created with `versioning_allowed: false`: it keeps its one
/// version.
pub const ROTATION_NONE: &str = "none";

/// One elastic key in the inventory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InventoryKey {
    /// The elastic key id.
    pub elastic_key_id: Uuid,
    /// Its name (unique in its tenant).
    pub name: String,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The tenant's name (absent for a tenant without one).
    pub tenant_name: Option<String>,
    /// The algorithm as stored (`ES256`, `A256GCM/A256KW`).
    pub algorithm: String,
    /// `signing`, `encryption` or `unknown`.
    pub purpose: KeyPurpose,
    /// JWK key type of the key's material (`oct`, `RSA`, `EC`, `OKP`, `AKP`, `unknown`).
    pub key_type: &'static str,
    /// Key size in bits (RSA modulus, curve size, symmetric key length); absent for
    /// parameter-set algorithms (ML-DSA, ML-KEM) and unknown ones.
    pub key_size_bits: Option<u32>,
    /// Parameter set (`256`, `65`, `768`).
    pub parameter_set: Option<&'static str>,
    /// Elliptic curve (`secp256r1`, `Ed25519`).
    pub curve: Option<&'static str>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Material key versions (none once purged).
    pub versions: u64,
    /// `manual` (new versions by request) or `none` (`versioning_allowed: false`).
    pub rotation_policy: &'static str,
    /// `active`, `disabled`, `pending_delete` or `deleted`.
    pub status: &'static str,
    /// The last successful encrypt, decrypt, sign, verify or data key generation, to the minute
    /// (RFC 3339); absent when never used. Approximate across instances (see the README).
    pub last_used_at: Option<String>,
    /// Whether a quantum computer breaks the key (`null`: unknown algorithm, review it).
    pub quantum_vulnerable: Option<bool>,
    /// `vulnerable`, `resistant` or `unknown`.
    pub quantum_status: QuantumStatus,
    /// NIST post-quantum security category of the key's algorithm (0: broken).
    pub nist_quantum_security_level: Option<u8>,
    /// Whether this build's JOSE layer knows the algorithm.
    pub recognized: bool,
    /// Why it is classified so, when that needs saying.
    pub notes: Vec<&'static str>,
    /// The full classification (for the CBOM).
    #[serde(skip)]
    #[schema(ignore)]
    pub classification: Classification,
    /// Creation time, typed (for the CBOM).
    #[serde(skip)]
    #[schema(ignore)]
    pub created: OffsetDateTime,
    /// Status, typed.
    #[serde(skip)]
    #[schema(ignore)]
    pub key_status: KeyStatus,
}

/// Keys of one algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlgorithmTotal {
    /// The algorithm as stored.
    pub algorithm: String,
    /// Keys with it (purged keys not counted).
    pub keys: u64,
    /// Whether it is quantum-vulnerable (`null`: unknown).
    pub quantum_vulnerable: Option<bool>,
}

/// Counts over the keys that still have material (purged keys are counted apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Keys listed, purged ones included.
    pub keys: u64,
    /// Keys purged (tombstones: no material left).
    pub deleted: u64,
    /// Keys not purged whose algorithm a quantum computer breaks.
    pub quantum_vulnerable: u64,
    /// Keys not purged whose algorithm resists.
    pub quantum_resistant: u64,
    /// Keys not purged with an unknown algorithm.
    pub quantum_unknown: u64,
    /// Per algorithm, by name.
    pub by_algorithm: Vec<AlgorithmTotal>,
}

/// A cryptographic inventory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inventory {
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// `tenant` or `system`.
    pub scope: Scope,
    /// Every elastic key, by tenant, oldest first.
    pub keys: Vec<InventoryKey>,
    /// Totals.
    pub totals: Totals,
    /// When it was made, typed.
    #[serde(skip)]
    #[schema(ignore)]
    pub generated: OffsetDateTime,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Appends one tenant's keys, with the later of the stored and the pending last use.
pub(super) fn add_tenant(
    keys: &mut Vec<InventoryKey>,
    tenant: TenantId,
    tenant_name: Option<&str>,
    records: Vec<KeyInventoryRecord>,
    uses: &LastUse,
) {
    for record in records {
        let pending = uses.peek(tenant, record.key.id);
        let last_used = match (record.last_used_at, pending) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        keys.push(entry(tenant, tenant_name, record, last_used));
    }
}

fn entry(
    tenant: TenantId,
    tenant_name: Option<&str>,
    record: KeyInventoryRecord,
    last_used: Option<OffsetDateTime>,
) -> InventoryKey {
    let key = record.key;
    let classification = classify(&key.algorithm);
    let info = &classification.key;
    InventoryKey {
        elastic_key_id: key.id,
        name: key.name,
        tenant_id: tenant.0,
        tenant_name: tenant_name.map(str::to_owned),
        purpose: classification.purpose,
        key_type: info.key_type,
        key_size_bits: info.key_size_bits,
        parameter_set: info.parameter_set,
        curve: info.curve,
        created_at: rfc3339(key.created_at),
        versions: record.versions,
        rotation_policy: if key.versioning_allowed {
            ROTATION_MANUAL
        } else {
            ROTATION_NONE
        },
        status: key.status.as_str(),
        last_used_at: last_used.map(rfc3339),
        quantum_vulnerable: classification.quantum.vulnerable(),
        quantum_status: classification.quantum,
        nist_quantum_security_level: info.nist_quantum_security_level,
        recognized: classification.recognized,
        notes: classification.notes.clone(),
        algorithm: key.algorithm,
        created: key.created_at,
        key_status: key.status,
        classification,
    }
}

impl Inventory {
    /// The inventory of these keys, with its totals, made now.
    pub fn new(scope: Scope, keys: Vec<InventoryKey>) -> Self {
        let generated = OffsetDateTime::now_utc();
        Self {
            generated_at: rfc3339(generated),
            scope,
            totals: Totals::of(&keys),
            keys,
            generated,
        }
    }
}

impl Totals {
    /// Counts `keys`.
    pub fn of(keys: &[InventoryKey]) -> Self {
        let mut totals = Totals {
            keys: keys.len() as u64,
            deleted: 0,
            quantum_vulnerable: 0,
            quantum_resistant: 0,
            quantum_unknown: 0,
            by_algorithm: Vec::new(),
        };
        let mut by_algorithm: BTreeMap<&str, AlgorithmTotal> = BTreeMap::new();
        for key in keys {
            if key.key_status == KeyStatus::Deleted {
                totals.deleted += 1;
                continue;
            }
            match key.quantum_status {
                QuantumStatus::Vulnerable => totals.quantum_vulnerable += 1,
                QuantumStatus::Resistant => totals.quantum_resistant += 1,
                QuantumStatus::Unknown => totals.quantum_unknown += 1,
            }
            by_algorithm
                .entry(key.algorithm.as_str())
                .or_insert_with(|| AlgorithmTotal {
                    algorithm: key.algorithm.clone(),
                    keys: 0,
                    quantum_vulnerable: key.quantum_vulnerable,
                })
                .keys += 1;
        }
        totals.by_algorithm = by_algorithm.into_values().collect();
        totals
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ElasticKey;

    fn record(algorithm: &str, status: KeyStatus, versioning: bool) -> KeyInventoryRecord {
        let now = OffsetDateTime::now_utc();
        KeyInventoryRecord {
            key: ElasticKey {
                id: Uuid::now_v7(),
                name: format!("k-{}", Uuid::now_v7()),
                description: String::new(),
                algorithm: algorithm.to_owned(),
                versioning_allowed: versioning,
                import_allowed: false,
                export_allowed: false,
                status,
                created_at: now,
                updated_at: now,
                purge_after: None,
            },
            versions: 2,
            last_used_at: None,
        }
    }

    #[test]
    fn totals_count_per_algorithm_and_leave_purged_keys_apart() {
        let tenant = TenantId(Uuid::new_v4());
        let uses = LastUse::new();
        let records = vec![
            record("ES256", KeyStatus::Active, true),
            record("ES256", KeyStatus::Disabled, true),
            record("A256GCM/A256KW", KeyStatus::Active, false),
            record("RS256", KeyStatus::Deleted, true),
            record("SLH-DSA-SHA2-128s", KeyStatus::Active, true),
        ];
        let mut keys = Vec::new();
        add_tenant(&mut keys, tenant, Some("t"), records, &uses);
        let inventory = Inventory::new(Scope::Tenant, keys);
        let t = &inventory.totals;
        assert_eq!((t.keys, t.deleted), (5, 1));
        assert_eq!(
            (t.quantum_vulnerable, t.quantum_resistant, t.quantum_unknown),
            (2, 1, 1)
        );
        let by: Vec<(&str, u64, Option<bool>)> = t
            .by_algorithm
            .iter()
            .map(|a| (a.algorithm.as_str(), a.keys, a.quantum_vulnerable))
            .collect();
        assert_eq!(
            by,
            [
                ("A256GCM/A256KW", 1, Some(false)),
                ("ES256", 2, Some(true)),
                ("SLH-DSA-SHA2-128s", 1, None)
            ]
        );
        assert_eq!(inventory.keys[2].rotation_policy, ROTATION_NONE);
        assert_eq!(inventory.keys[0].rotation_policy, ROTATION_MANUAL);
        let json = serde_json::to_value(&inventory).unwrap();
        assert_eq!(json["keys"][0]["quantum_vulnerable"], true);
        assert_eq!(json["keys"][0]["key_size_bits"], 256);
        assert_eq!(json["keys"][0]["curve"], "secp256r1");
        assert_eq!(
            json["keys"][4]["quantum_vulnerable"],
            serde_json::Value::Null
        );
        assert_eq!(json["keys"][4]["quantum_status"], "unknown");
        assert_eq!(json["keys"][0]["tenant_name"], "t");
        assert!(json["keys"][0].get("classification").is_none());
    }

    #[test]
    fn the_pending_last_use_wins_when_it_is_later() {
        let tenant = TenantId(Uuid::new_v4());
        let uses = LastUse::new();
        let mut stored = record("ES256", KeyStatus::Active, true);
        stored.last_used_at = Some(super::super::last_use::minute_to_time(1_000));
        let id = stored.key.id;
        let mut never = record("HS256", KeyStatus::Active, true);
        never.last_used_at = None;
        uses.touch_at(tenant, id, 2_000);
        let mut keys = Vec::new();
        add_tenant(&mut keys, tenant, None, vec![stored.clone(), never], &uses);
        assert_eq!(
            keys[0].last_used_at.as_deref(),
            Some(rfc3339(super::super::last_use::minute_to_time(2_000)).as_str())
        );
        assert_eq!(keys[1].last_used_at, None);
        let older = LastUse::new();
        older.touch_at(tenant, id, 10);
        let mut keys = Vec::new();
        add_tenant(&mut keys, tenant, None, vec![stored], &older);
        assert_eq!(
            keys[0].last_used_at.as_deref(),
            Some(rfc3339(super::super::last_use::minute_to_time(1_000)).as_str())
        );
    }
}
