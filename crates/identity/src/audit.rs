//! Identity's audit trail: one `tracing` record of target `audit` per change to a user's
//! credentials and per use of a recovery code, in the KMS's layout (`event`, `operation`,
//! `outcome`, `reason`, `subject`, `actor`, …). The admin listener keeps the latest in its
//! ring (`GET /admin/v1/audit`); the log stream carries all of them. Never a secret, code or
//! key.

/// A change to a user's credentials (`event` = `account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOperation {
    /// A TOTP authenticator was enrolled (confirmed with a first code).
    TotpEnrolled,
    /// The TOTP authenticator was removed.
    TotpRemoved,
    /// A new set of recovery codes was generated (the old set stopped working).
    RecoveryCodesGenerated,
    /// A recovery code was used to sign in.
    RecoveryCodeUsed,
    /// A passkey was registered.
    PasskeyRegistered,
    /// A passkey was renamed.
    PasskeyRenamed,
    /// A passkey was removed.
    PasskeyRemoved,
    /// A passkey's signature counter went backwards (a cloned authenticator?): refused.
    PasskeyCounterRegression,
    /// The password was changed.
    PasswordChanged,
    /// A browser session was signed out from the account page.
    SessionEnded,
    /// An administrator removed every factor of the user.
    FactorsReset,
}

impl AccountOperation {
    /// The `operation` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TotpEnrolled => "totp_enrolled",
            Self::TotpRemoved => "totp_removed",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::PasskeyRegistered => "passkey_registered",
            Self::PasskeyRenamed => "passkey_renamed",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyCounterRegression => "passkey_counter_regression",
            Self::PasswordChanged => "password_changed",
            Self::SessionEnded => "session_ended",
            Self::FactorsReset => "factors_reset",
        }
    }
}

/// Who made the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The user, on their own account (or signing in).
    User,
    /// An operator through the admin API (mTLS client subject, or `admin` in `--dev`).
    Admin(&'a str),
}

/// Records one account event for the user `subject` (their id). `reason` explains a refusal.
pub fn account(
    operation: AccountOperation,
    subject: &str,
    actor: Actor<'_>,
    outcome: Outcome,
    detail: Option<&str>,
) {
    let actor = match actor {
        Actor::User => "self",
        Actor::Admin(who) => who,
    };
    tracing::info!(
        target: "audit",
        event = "account",
        operation = operation.as_str(),
        outcome = outcome.as_str(),
        reason = outcome.reason(),
        subject,
        actor,
        detail,
    );
}

/// How the operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused, with the reason.
    Refused(&'static str),
}

impl Outcome {
    /// The `outcome` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused(_) => "refused",
        }
    }

    /// The `reason` field.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Success => None,
            Self::Refused(reason) => Some(reason),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn an_event_reaches_the_admin_ring_with_its_fields() {
        let subscriber = tracing_subscriber::registry().with(cryptoutil_server::audit::layer());
        let subject = uuid::Uuid::now_v7().to_string();
        tracing::subscriber::with_default(subscriber, || {
            account(
                AccountOperation::RecoveryCodeUsed,
                &subject,
                Actor::User,
                Outcome::Success,
                Some("7 left"),
            );
            account(
                AccountOperation::FactorsReset,
                &subject,
                Actor::Admin("ops"),
                Outcome::Refused("unknown user"),
                None,
            );
        });
        let page = cryptoutil_server::audit::read(0, cryptoutil_server::audit::MAX_PAGE);
        let mine: Vec<_> = page
            .events
            .iter()
            .filter(|e| e.fields.get("subject") == Some(&serde_json::json!(subject)))
            .collect();
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert_eq!(mine[0].fields["operation"], "recovery_code_used");
        assert_eq!(mine[0].fields["actor"], "self");
        assert_eq!(mine[0].fields["detail"], "7 left");
        assert_eq!(mine[1].fields["outcome"], "refused");
        assert_eq!(mine[1].fields["reason"], "unknown user");
        assert_eq!(mine[1].fields["actor"], "ops");
    }
}
