//! The audit trail as `tracing` records of target `audit`: one layout for every event.
//!
//! Fields: `event` (`authentication`, `key`, `user_admin`, `barrier`), `operation`, `outcome`
//! (`success`, `refused`, `failed`) and `reason` when not a success; then whichever are known:
//! `subject`, `actor` (a delegated token's `act` chain), `tenant`, `elastic_key`, `material_key`, `request_id`, `method`, `realm`,
//! `client_id`, `user`, `kid`, `count`. The time is the record's own (the log line's timestamp,
//! the ring's `time`).

use super::{AuditEvent, AuditSink, BarrierOperation, Operation};

/// Writes events as `tracing` records of target [`cryptoutil_server::audit::TARGET`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, event: &AuditEvent<'_>) {
        let (mut method, mut realm, mut client_id, mut user, mut kid, mut count) =
            (None, None, None, None, None, None);
        match event.operation {
            Operation::Authenticate {
                method: m,
                realm: r,
                client_id: c,
            } => {
                method = Some(m.as_str());
                realm = r;
                client_id = c;
            }
            Operation::UserAdmin { user: u, .. } => user = Some(u),
            Operation::Barrier(BarrierOperation::RotateRoot { root_kid }) => kid = root_kid,

            Operation::Barrier(BarrierOperation::RotateIntermediate { count: n }) => {
                count = Some(n as u64);
            }
            Operation::Key(_) => {}
        }
        tracing::info!(
            target: "audit",
            event = event.operation.category(),
            operation = event.operation.name(),
            outcome = event.outcome.as_str(),
            reason = event.outcome.reason(),
            subject = event.subject,
            actor = event.actor,
            tenant = event.tenant.map(display),
            elastic_key = event.elastic_key.map(display),
            material_key = event.material_key.map(display),
            request_id = event.request_id,
            method,
            realm,
            client_id,
            user,
            kid = kid.map(display),
            count,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;
    use uuid::Uuid;

    use super::super::{AuthMethod, KeyOperation, Outcome};
    use super::*;
    use crate::model::TenantId;

    /// The fields of every event in the process's audit ring whose subject is `subject`.
    fn recorded(subject: &str) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = cryptoutil_server::audit::read(after, cryptoutil_server::audit::MAX_PAGE);
            if page.events.is_empty() {
                return found;
            }
            after = page.next_after;
            found.extend(
                page.events
                    .iter()
                    .filter(|e| e.field("subject") == Some(subject))
                    .map(|e| serde_json::to_value(&e.fields).unwrap()),
            );
        }
    }

    #[test]
    fn events_reach_the_audit_ring_in_one_layout() {
        let subscriber = tracing_subscriber::registry().with(cryptoutil_server::audit::layer());
        let subject = format!("db:sink-{}", Uuid::now_v7());
        let tenant = TenantId(Uuid::now_v7());
        let (key, material) = (Uuid::now_v7(), Uuid::now_v7());
        tracing::subscriber::with_default(subscriber, || {
            TracingSink.record(
                &AuditEvent::new(Operation::Key(KeyOperation::Encrypt), Outcome::Success)
                    .with_subject(Some(&subject))
                    .with_tenant(Some(tenant))
                    .with_request_id(Some("r-42"))
                    .with_keys(Some(key), Some(material)),
            );
            TracingSink.record(
                &AuditEvent::new(
                    Operation::Authenticate {
                        method: AuthMethod::Bearer,
                        realm: None,
                        client_id: Some("svc"),
                    },
                    Outcome::Refused("token_revoked"),
                )
                .with_subject(Some(&subject)),
            );
        });
        let events = recorded(&subject);
        assert_eq!(events.len(), 2, "{events:?}");
        let encrypt = &events[0];
        assert_eq!(encrypt["event"], "key");
        assert_eq!(encrypt["operation"], "encrypt");
        assert_eq!(encrypt["outcome"], "success");
        assert_eq!(encrypt["tenant"], tenant.to_string());
        assert_eq!(encrypt["elastic_key"], key.to_string());
        assert_eq!(encrypt["material_key"], material.to_string());
        assert_eq!(encrypt["request_id"], "r-42");
        assert!(encrypt.get("reason").is_none() && encrypt.get("method").is_none());
        let refused = &events[1];
        assert_eq!(refused["event"], "authentication");
        assert_eq!(refused["outcome"], "refused");
        assert_eq!(refused["reason"], "token_revoked");
        assert_eq!(refused["method"], "bearer");
        assert_eq!(refused["client_id"], "svc");
        assert!(refused.get("tenant").is_none());
    }
}
