//! The KMS demo's state in the run context: what its steps hand to later ones.

/// What the KMS steps hand to later ones.
#[derive(Debug, Default)]
pub struct KmsState {
    /// The newest audit position when the run started (read where the admin listener is known).
    pub(crate) audit_after: Option<u64>,
    pub(super) encryption_key: Option<KeyRef>,
    pub(super) signing_key: Option<KeyRef>,
    pub(super) newest_version: Option<String>,
    pub(super) jwe: Option<String>,
    pub(super) jws: Option<String>,
}

/// An elastic key the demo created.
#[derive(Debug, Clone)]
pub(super) struct KeyRef {
    pub(super) id: String,
    pub(super) name: String,
}
