//! The inventory as a CycloneDX 1.6 cryptography bill of materials (CBOM): one `algorithm`
//! component per algorithm in use and one `related-crypto-material` component per elastic key,
//! pointing at its algorithm (`algorithmRef`). Validated against the official schema
//! (`bom-1.6.schema.json`) in `tests/it/inventory.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::classify::{AlgorithmInfo, MaterialType};
use super::report::{Inventory, InventoryKey};
use crate::model::KeyStatus;

/// The media type of a CycloneDX JSON document.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The CycloneDX version produced.
pub const SPEC_VERSION: &str = "1.6";

/// The `bom-ref` of an algorithm component.
pub fn algorithm_ref(name: &str) -> String {
    format!("crypto/algorithm/{name}")
}

/// The `bom-ref` of an elastic key's component.
pub fn key_ref(key: &InventoryKey) -> String {
    format!("crypto/key/{}/{}", key.tenant_id, key.elastic_key_id)
}

/// CycloneDX key states (NIST SP 800-57 lifecycle) for our statuses.
fn state(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        // Decrypt and verify only: no new protection.
        KeyStatus::Disabled => "suspended",
        KeyStatus::PendingDelete => "deactivated",
        KeyStatus::Deleted => "destroyed",
    }
}

fn material_type(material: MaterialType) -> &'static str {
    match material {
        MaterialType::SecretKey => "secret-key",
        MaterialType::PrivateKey => "private-key",
        MaterialType::Unknown => "unknown",
    }
}

fn algorithm_component(info: &AlgorithmInfo) -> Value {
    let mut properties = Map::new();
    properties.insert("primitive".to_owned(), json!(info.primitive));
    if let Some(set) = info.parameter_set {
        properties.insert("parameterSetIdentifier".to_owned(), json!(set));
    }
    if let Some(curve) = info.curve {
        properties.insert("curve".to_owned(), json!(curve));
    }
    properties.insert(
        "executionEnvironment".to_owned(),
        json!("software-plain-ram"),
    );
    properties.insert("implementationPlatform".to_owned(), json!("generic"));
    if let Some(mode) = info.mode {
        properties.insert("mode".to_owned(), json!(mode));
    }
    if let Some(padding) = info.padding {
        properties.insert("padding".to_owned(), json!(padding));
    }
    if !info.functions.is_empty() {
        properties.insert("cryptoFunctions".to_owned(), json!(info.functions));
    }
    if let Some(bits) = info.classical_security_bits {
        properties.insert("classicalSecurityLevel".to_owned(), json!(bits));
    }
    if let Some(level) = info.nist_quantum_security_level {
        properties.insert("nistQuantumSecurityLevel".to_owned(), json!(level));
    }
    let mut crypto = Map::new();
    crypto.insert("assetType".to_owned(), json!("algorithm"));
    crypto.insert("algorithmProperties".to_owned(), Value::Object(properties));
    if let Some(oid) = info.oid {
        crypto.insert("oid".to_owned(), json!(oid));
    }
    let mut component = json!({
        "type": "cryptographic-asset",
        "bom-ref": algorithm_ref(&info.name),
        "name": info.name,
        "cryptoProperties": Value::Object(crypto),
        "properties": [
            {"name": "cryptoutil:family", "value": info.family},
            {"name": "cryptoutil:quantum_status", "value": quantum_text(info)},
        ],
    });
    if let Some(note) = info.note {
        component["description"] = json!(note);
    }
    component
}

fn quantum_text(info: &AlgorithmInfo) -> &'static str {
    match info.quantum {
        super::QuantumStatus::Vulnerable => "vulnerable",
        super::QuantumStatus::Resistant => "resistant",
        super::QuantumStatus::Unknown => "unknown",
    }
}

fn key_component(key: &InventoryKey) -> Value {
    let mut material = Map::new();
    material.insert(
        "type".to_owned(),
        json!(material_type(key.classification.material)),
    );
    material.insert("id".to_owned(), json!(key.elastic_key_id.to_string()));
    material.insert("state".to_owned(), json!(state(key.key_status)));
    material.insert(
        "algorithmRef".to_owned(),
        json!(algorithm_ref(&key.classification.key.name)),
    );
    if let Ok(created) = key.created.format(&Rfc3339) {
        material.insert("creationDate".to_owned(), json!(created));
    }
    if let Some(bits) = key.key_size_bits {
        material.insert("size".to_owned(), json!(bits));
    }
    material.insert("format".to_owned(), json!("JWK"));
    let mut properties = vec![
        json!({"name": "cryptoutil:tenant_id", "value": key.tenant_id.to_string()}),
        json!({"name": "cryptoutil:algorithm", "value": key.algorithm}),
        json!({"name": "cryptoutil:versions", "value": key.versions.to_string()}),
        json!({"name": "cryptoutil:rotation_policy", "value": key.rotation_policy}),
        json!({"name": "cryptoutil:status", "value": key.status}),
        json!({"name": "cryptoutil:quantum_vulnerable", "value": match key.quantum_vulnerable {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        }}),
    ];
    if let Some(name) = &key.tenant_name {
        properties.push(json!({"name": "cryptoutil:tenant_name", "value": name}));
    }
    if let Some(at) = &key.last_used_at {
        properties.push(json!({"name": "cryptoutil:last_used_at", "value": at}));
    }
    json!({
        "type": "cryptographic-asset",
        "bom-ref": key_ref(key),
        "name": key.name,
        "cryptoProperties": {
            "assetType": "related-crypto-material",
            "relatedCryptoMaterialProperties": Value::Object(material),
        },
        "properties": properties,
    })
}

/// The CBOM of an inventory. `serial` names this document (`urn:uuid:…`).
pub fn cbom(inventory: &Inventory, serial: Uuid) -> Value {
    let mut algorithms: BTreeMap<&str, &AlgorithmInfo> = BTreeMap::new();
    for key in &inventory.keys {
        for info in &key.classification.algorithms {
            algorithms.entry(info.name.as_str()).or_insert(info);
        }
    }
    let mut components: Vec<Value> = algorithms
        .values()
        .copied()
        .map(algorithm_component)
        .collect();
    components.extend(inventory.keys.iter().map(key_component));
    let dependencies: Vec<Value> = inventory
        .keys
        .iter()
        .map(|key| {
            let mut on: Vec<String> = key
                .classification
                .algorithms
                .iter()
                .map(|a| algorithm_ref(&a.name))
                .collect();
            on.dedup();
            json!({"ref": key_ref(key), "dependsOn": on})
        })
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": format!("urn:uuid:{}", serial.hyphenated()),
        "version": 1,
        "metadata": {
            "timestamp": inventory.generated_at,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "cryptoutil",
                    "version": version,
                    "description": "cryptoutil KMS cryptographic inventory",
                }],
            },
            "component": {
                "type": "application",
                "bom-ref": "cryptoutil-kms",
                "name": "cryptoutil-kms",
                "version": version,
            },
            "properties": [
                {"name": "cryptoutil:inventory_scope", "value": match inventory.scope {
                    super::report::Scope::Tenant => "tenant",
                    super::report::Scope::System => "system",
                }},
                {"name": "cryptoutil:keys_quantum_vulnerable",
                 "value": inventory.totals.quantum_vulnerable.to_string()},
            ],
        },
        "components": components,
        "dependencies": dependencies,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::report::{Inventory, Scope};
    use super::*;

    #[test]
    fn an_empty_inventory_is_a_bom_without_components() {
        let bom = cbom(&Inventory::new(Scope::System, Vec::new()), Uuid::new_v4());
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.6");
        assert!(bom["components"].as_array().unwrap().is_empty());
        assert!(
            bom["serialNumber"]
                .as_str()
                .unwrap()
                .starts_with("urn:uuid:")
        );
    }
}
