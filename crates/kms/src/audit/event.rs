//! The typed audit event.

use std::time::SystemTime;

use uuid::Uuid;

use crate::model::{Principal, TenantId};

/// One audited decision or operation. Borrowed, so building one on the request path copies
/// nothing; a sink that keeps events converts what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent<'a> {
    /// When it happened (the system clock: cheap to read on the request path; a sink that
    /// writes it converts it).
    pub time: SystemTime,
    /// The request it belongs to (`X-Request-ID`), when there is one.
    pub request_id: Option<&'a str>,
    /// Who acted: the principal's subject (`db:alice`, `bearer:…`, [`crate::system::SUBJECT`]),
    /// or for an authentication decision the name that was presented. `None` when unknown.
    pub subject: Option<&'a str>,
    /// On whose behalf the subject is acted for: the token's `act` chain (RFC 8693), current
    /// actor first (`rs-client via gateway`); `None` when the subject acts itself.
    pub actor: Option<&'a str>,
    /// The tenant acted in.
    pub tenant: Option<TenantId>,
    /// What was done.
    pub operation: Operation<'a>,
    /// The elastic key acted on.
    pub elastic_key: Option<Uuid>,
    /// The material key (version) used or made.
    pub material_key: Option<Uuid>,
    /// How it ended.
    pub outcome: Outcome<'a>,
}

impl<'a> AuditEvent<'a> {
    /// An event of `operation` ending with `outcome`, now, with nothing else known yet.
    pub fn new(operation: Operation<'a>, outcome: Outcome<'a>) -> Self {
        Self {
            time: SystemTime::now(),
            request_id: None,
            subject: None,
            actor: None,
            tenant: None,
            operation,
            elastic_key: None,
            material_key: None,
            outcome,
        }
    }

    /// An event of what `who` did: its subject, tenant and request.
    pub fn by(who: &'a Principal, operation: Operation<'a>, outcome: Outcome<'a>) -> Self {
        Self {
            subject: Some(&who.subject),
            actor: who.actor.as_deref(),
            tenant: Some(who.tenant),
            request_id: who.request_id.as_deref(),
            ..Self::new(operation, outcome)
        }
    }

    /// With the subject that acted.
    pub fn with_subject(mut self, subject: Option<&'a str>) -> Self {
        self.subject = subject;
        self
    }

    /// With the actor chain of a delegated token.
    pub fn with_actor(mut self, actor: Option<&'a str>) -> Self {
        self.actor = actor;
        self
    }

    /// With the tenant acted in.
    pub fn with_tenant(mut self, tenant: Option<TenantId>) -> Self {
        self.tenant = tenant;
        self
    }

    /// With the request it belongs to.
    pub fn with_request_id(mut self, request_id: Option<&'a str>) -> Self {
        self.request_id = request_id;
        self
    }

    /// With the elastic and material keys acted on.
    pub fn with_keys(mut self, elastic_key: Option<Uuid>, material_key: Option<Uuid>) -> Self {
        self.elastic_key = elastic_key;
        self.material_key = material_key;
        self
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// An authentication decision.
    Authenticate {
        /// How the caller presented itself.
        method: AuthMethod,
        /// The realm that decided (realm users).
        realm: Option<&'a str>,
        /// The token's `client_id` (bearer tokens).
        client_id: Option<&'a str>,
    },
    /// An operation on an elastic key or its material keys.
    Key(KeyOperation),
    /// A change to a database realm user.
    UserAdmin {
        /// Which change.
        operation: UserOperation,
        /// The username changed.
        user: &'a str,
    },
    /// A barrier key rotation (admin listener).
    Barrier(BarrierOperation),
}

impl Operation<'_> {
    /// The kind of event: `authentication`, `key`, `user_admin` or `barrier`.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Authenticate { .. } => "authentication",
            Self::Key(_) => "key",
            Self::UserAdmin { .. } => "user_admin",
            Self::Barrier(_) => "barrier",
        }
    }

    /// The operation's name within its kind (`authenticate`, `encrypt`, `set-password`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Authenticate { .. } => "authenticate",
            Self::Key(op) => op.as_str(),
            Self::UserAdmin { operation, .. } => operation.as_str(),
            Self::Barrier(op) => op.as_str(),
        }
    }
}

/// How a caller presented itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic against the realms.
    Basic,
    /// A TLS client certificate mapped to a realm user.
    Certificate,
    /// A bearer token of a trusted issuer.
    Bearer,
    /// A DPoP-bound token of a trusted issuer with its proof (RFC 9449).
    Dpop,
}

impl AuthMethod {
    /// `basic`, `certificate`, `bearer` or `dpop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Certificate => "certificate",
            Self::Bearer => "bearer",
            Self::Dpop => "dpop",
        }
    }
}

/// Operations on elastic and material keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOperation {
    /// Create an elastic key (and its first material key).
    Create,
    /// Change an elastic key's description or status.
    Update,
    /// Schedule an elastic key's deletion.
    Delete,
    /// Destroy an elastic key past its deletion delay (the purge task).
    Purge,
    /// Add a generated material key.
    Rotate,
    /// Import material as a new material key.
    Import,
    /// Encrypt.
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Sign.
    Sign,
    /// Verify.
    Verify,
    /// Generate a data key.
    Generate,
}

impl KeyOperation {
    /// The operation's name in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Purge => "purge",
            Self::Rotate => "rotate",
            Self::Import => "import",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Generate => "generate",
        }
    }
}

/// Changes to database realm users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOperation {
    /// Create a user.
    Create,
    /// Change roles, tenants, enabled, metadata or certificate subject.
    Update,
    /// Set a new password.
    SetPassword,
    /// Delete a user.
    Delete,
}

impl UserOperation {
    /// The operation's name in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::SetPassword => "set-password",
            Self::Delete => "delete",
        }
    }
}

/// Barrier key rotations, with what they made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierOperation {
    /// A new root key; its `kid` once made.
    RotateRoot {
        /// The new root key's id (not secret).
        root_kid: Option<Uuid>,
    },
    /// A new intermediate key for every tenant.
    RotateIntermediate {
        /// How many were made.
        count: usize,
    },
}

impl BarrierOperation {
    /// The operation's name in the trail.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RotateRoot { .. } => "rotate-root",
            Self::RotateIntermediate { .. } => "rotate-intermediate",
        }
    }
}

/// How an operation ended. Reasons are short fixed codes (`insufficient_scope`, `not_found`,
/// `wrong password`, a SPEC §5 token error …), never input, secrets or key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Done.
    Success,
    /// Refused: the caller may not, or asked for something that cannot be done.
    Refused(&'a str),
    /// Failed on the server's side (storage unavailable, an internal fault).
    Failed(&'a str),
}

impl<'a> Outcome<'a> {
    /// `success`, `refused` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused(_) => "refused",
            Self::Failed(_) => "failed",
        }
    }

    /// Why it was refused or failed.
    pub fn reason(&self) -> Option<&'a str> {
        match self {
            Self::Success => None,
            Self::Refused(reason) | Self::Failed(reason) => Some(reason),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_event_by_a_principal_names_it_its_tenant_and_request() {
        let tenant = TenantId(Uuid::now_v7());
        let who = Principal {
            tenant,
            subject: "db:alice".to_owned(),
            scopes: Vec::new(),
            tenants: vec![tenant],
            request_id: Some("r-1".to_owned()),
            actor: None,
        };
        let key = Uuid::now_v7();
        let material = Uuid::now_v7();
        let before = SystemTime::now();
        let event = AuditEvent::by(&who, Operation::Key(KeyOperation::Sign), Outcome::Success)
            .with_keys(Some(key), Some(material));
        assert!(event.time >= before);
        assert_eq!(event.subject, Some("db:alice"));
        assert_eq!(event.tenant, Some(tenant));
        assert_eq!(event.request_id, Some("r-1"));
        assert_eq!(
            (event.elastic_key, event.material_key),
            (Some(key), Some(material))
        );
        assert_eq!(event.operation.category(), "key");
        assert_eq!(event.operation.name(), "sign");
    }

    #[test]
    fn names_and_outcomes_are_stable() {
        let auth = Operation::Authenticate {
            method: AuthMethod::Certificate,
            realm: Some("db"),
            client_id: None,
        };
        assert_eq!(
            (auth.category(), auth.name()),
            ("authentication", "authenticate")
        );
        let user = Operation::UserAdmin {
            operation: UserOperation::SetPassword,
            user: "bob",
        };
        assert_eq!(
            (user.category(), user.name()),
            ("user_admin", "set-password")
        );
        let root = Operation::Barrier(BarrierOperation::RotateRoot { root_kid: None });
        assert_eq!((root.category(), root.name()), ("barrier", "rotate-root"));
        assert_eq!(AuthMethod::Bearer.as_str(), "bearer");
        assert_eq!(Outcome::Success.as_str(), "success");
        assert_eq!(Outcome::Success.reason(), None);
        assert_eq!(Outcome::Refused("not_found").as_str(), "refused");
        assert_eq!(Outcome::Failed("unavailable").reason(), Some("unavailable"));
        for op in [
            KeyOperation::Create,
            KeyOperation::Update,
            KeyOperation::Delete,
            KeyOperation::Purge,
            KeyOperation::Rotate,
            KeyOperation::Import,
            KeyOperation::Encrypt,
            KeyOperation::Decrypt,
            KeyOperation::Sign,
            KeyOperation::Verify,
            KeyOperation::Generate,
        ] {
            assert!(!op.as_str().is_empty());
        }
    }
}
