//! The KMS's audit trail (SPEC §3.6): one typed [`AuditEvent`] per authentication decision, key
//! operation, user administration change and barrier rotation, successful, refused or failed.
//! An event says who acted (the principal's subject, or the system), in which tenant, what was
//! done to which elastic and material key, how it ended, for which request and when; it never
//! holds plaintext, key material, a password or a token.
//!
//! Events go to an [`AuditSink`]. [`TracingSink`] (the default) writes each as one `tracing`
//! record of target `audit`: the JSON log stream carries it, and the admin listener's ring
//! (`cryptoutil_server::audit`, `GET /admin/v1/audit`) keeps the most recent ones. Other sinks
//! (a hash chain in the database) implement the same trait.

mod event;
mod tracing_sink;

use std::sync::Arc;

pub use event::{
    AuditEvent, AuthMethod, BarrierOperation, KeyOperation, Operation, Outcome, UserOperation,
};
pub use tracing_sink::TracingSink;

/// Where audit events are written. Called on the request path: implementations must be quick
/// (hand slow work to a background task) and must not fail the operation.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Records one event.
    fn record(&self, event: &AuditEvent<'_>);
}

/// The sink every component uses unless given another: [`TracingSink`].
pub fn default_sink() -> Arc<dyn AuditSink> {
    Arc::new(TracingSink)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A sink that keeps what it is given, for tests.

    use std::sync::Mutex;

    use super::*;

    /// One recorded event, as owned text: `(event, operation, outcome, reason, subject)`.
    pub(crate) type Recorded = (String, String, String, Option<String>, Option<String>);

    /// Keeps every event's main fields.
    #[derive(Debug, Default)]
    pub(crate) struct MemorySink(pub(crate) Mutex<Vec<Recorded>>);

    impl AuditSink for MemorySink {
        fn record(&self, event: &AuditEvent<'_>) {
            let recorded = (
                event.operation.category().to_owned(),
                event.operation.name().to_owned(),
                event.outcome.as_str().to_owned(),
                event.outcome.reason().map(str::to_owned),
                event.subject.map(str::to_owned),
            );
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(recorded);
        }
    }

    #[test]
    fn a_sink_receives_what_is_recorded() {
        let sink = MemorySink::default();
        let event = AuditEvent::new(
            Operation::Key(KeyOperation::Encrypt),
            Outcome::Refused("insufficient_scope"),
        )
        .with_subject(Some("db:alice"));
        sink.record(&event);
        let recorded = sink
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(
            recorded.as_slice(),
            [(
                "key".to_owned(),
                "encrypt".to_owned(),
                "refused".to_owned(),
                Some("insufficient_scope".to_owned()),
                Some("db:alice".to_owned())
            )]
        );
        assert!(format!("{:?}", default_sink()).contains("TracingSink"));
    }
}
