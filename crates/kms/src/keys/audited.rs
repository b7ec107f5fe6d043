//! How the key service audits its operations: one event per operation, whatever its outcome.

use uuid::Uuid;

use super::{KeyError, KeyService};
use crate::audit::{AuditEvent, KeyOperation, Operation, Outcome};
use crate::model::{MaterialKey, Principal};
use crate::repository::{BarrierStore, KeyStore};

impl<S: KeyStore + BarrierStore> KeyService<S> {
    /// Records a key operation's audit event: success when `error` is `None`.
    pub(super) fn record(
        &self,
        who: &Principal,
        operation: KeyOperation,
        elastic_key: Option<Uuid>,
        material_key: Option<Uuid>,
        error: Option<&KeyError>,
    ) {
        let outcome = error.map_or(Outcome::Success, KeyError::audit_outcome);
        self.audit.record(
            &AuditEvent::by(who, Operation::Key(operation), outcome)
                .with_keys(elastic_key, material_key),
        );
    }

    /// Audits an operation on elastic key `id` that used or made the material key it returns
    /// beside its value.
    pub(super) fn audited<T>(
        &self,
        who: &Principal,
        operation: KeyOperation,
        id: Uuid,
        result: Result<(T, Uuid), KeyError>,
    ) -> Result<T, KeyError> {
        match result {
            Ok((value, material)) => {
                if is_use(operation) {
                    self.last_use.touch(who.tenant, id);
                }
                self.record(who, operation, Some(id), Some(material), None);
                Ok(value)
            }
            Err(e) => {
                self.record(who, operation, Some(id), None, Some(&e));
                Err(e)
            }
        }
    }

    /// [`Self::audited`] for an operation that returns the material key it made.
    pub(super) fn audited_material(
        &self,
        who: &Principal,
        operation: KeyOperation,
        id: Uuid,
        result: Result<MaterialKey, KeyError>,
    ) -> Result<MaterialKey, KeyError> {
        self.audited(
            who,
            operation,
            id,
            result.map(|m| {
                let material_id = m.id;
                (m, material_id)
            }),
        )
    }
}

/// The operations that count as a use of the key (its last use in the inventory).
fn is_use(operation: KeyOperation) -> bool {
    matches!(
        operation,
        KeyOperation::Encrypt
            | KeyOperation::Decrypt
            | KeyOperation::Sign
            | KeyOperation::Verify
            | KeyOperation::Generate
    )
}
