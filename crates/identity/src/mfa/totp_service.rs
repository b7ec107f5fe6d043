//! The one way into TOTP and recovery codes for the pages: enrolment (a new secret, its URI
//! and QR code), confirmation with a first code (and the first set of recovery codes), the
//! sign-in checks of a TOTP code or a recovery code, regeneration of recovery codes and removal
//! of the authenticator. Free of HTTP types.
//!
//! Wrong codes back off like passwords (the `brute_force:` policy, per user and per address),
//! each kind on its own counters: a TOTP lock-out never blocks a recovery code or a passkey,
//! and neither touches the password's.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::recovery::{self, NewCode};
use super::seal::SecretSealer;
use super::settings::{MfaSettings, TotpAlgorithm};
use super::totp::{self, TotpParams};
use super::{qr, seal};
use crate::audit::{self, AccountOperation, Actor, Outcome};
use crate::model::{FactorSummary, RecoveryCode, TotpFactor};
use crate::storage::{Store, StoreError};
use crate::throttle::{Locked, Throttle, ThrottlePolicy};

/// Why a submitted code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFailure {
    /// Not a code at all (wrong length or characters); not counted as an attempt.
    Malformed,
    /// Wrong, already used, or outside the window.
    Wrong,
    /// Too many wrong codes for the user or the address: refused unchecked.
    Locked(Locked),
    /// Nothing to check against (no authenticator being enrolled, or none confirmed).
    NotEnrolled,
    /// The database (or the sealed secret) is unavailable.
    Unavailable,
}

/// Why an enrolment or a change failed.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Randomness, sealing, hashing or drawing failed.
    #[error("{0}")]
    Crypto(&'static str),
}

impl From<StoreError> for CodeFailure {
    fn from(_: StoreError) -> Self {
        Self::Unavailable
    }
}

/// A started enrolment: what the account page shows. The secret is in the text and the URI.
pub struct Enrolment {
    /// The secret in base32, in groups of four (for typing into an app).
    pub secret_text: Zeroizing<String>,
    /// The `otpauth://` URI.
    pub uri: Zeroizing<String>,
    /// The QR code of the URI, an `<svg>` element.
    pub svg: Zeroizing<String>,
    /// The parameters the app must use.
    pub params: TotpParams,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A freshly generated set of recovery codes, to show once.
pub type ShownCodes = Vec<Zeroizing<String>>;

/// TOTP authenticators and recovery codes.
#[derive(Debug)]
pub struct TotpService {
    store: Store,
    sealer: SecretSealer,
    settings: MfaSettings,
    totp_attempts: Throttle,
    recovery_attempts: Throttle,
}

impl TotpService {
    /// The service over `store`, sealing secrets with `sealer`, with the `mfa:` settings and
    /// the `brute_force:` policy for wrong codes.
    pub fn new(
        store: Store,
        sealer: SecretSealer,
        settings: MfaSettings,
        throttle: ThrottlePolicy,
    ) -> Self {
        Self {
            store,
            sealer,
            settings,
            totp_attempts: Throttle::new(throttle),
            recovery_attempts: Throttle::new(throttle),
        }
    }

    /// How recent a sign-in must be to change factors (`mfa.reauthentication_window`).
    pub fn reauthentication_window(&self) -> Duration {
        Duration::try_from(self.settings.reauthentication_window.get())
            .unwrap_or(Duration::minutes(15))
    }

    /// Which factors the user has.
    pub async fn factors(&self, user_id: &str) -> Result<FactorSummary, StoreError> {
        self.store.factor_summary(user_id).await
    }

    /// Whether the user has a confirmed authenticator.
    pub async fn has_confirmed_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .totp_factor(user_id)
            .await?
            .is_some_and(|f| f.confirmed_at.is_some()))
    }

    fn params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.settings.totp.algorithm,
            digits: self.settings.totp.digits,
            period_secs: u32::try_from(self.settings.totp.period.get().as_secs()).unwrap_or(30),
        }
    }

    /// Starts an enrolment for `user_id` (shown in apps as `username`): a new secret, stored
    /// unconfirmed (replacing an unconfirmed one); it counts once confirmed with a code. A user
    /// with a confirmed authenticator must remove it first (`Ok(None)`), so that opening the
    /// page never disables a working one.
    pub async fn start_enrolment(
        &self,
        user_id: &str,
        username: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Enrolment>, TotpError> {
        if self.has_confirmed_totp(user_id).await? {
            return Ok(None);
        }
        let params = self.params();
        let secret =
            totp::generate_secret(params.algorithm).map_err(|_| TotpError::Crypto("random"))?;
        let sealed = self
            .sealer
            .seal(user_id, &secret)
            .map_err(|_| TotpError::Crypto("seal"))?;
        self.store
            .put_totp_factor(&TotpFactor {
                user_id: user_id.to_owned(),
                sealed_secret: sealed,
                algorithm: params.algorithm.as_str().to_owned(),
                digits: params.digits,
                period_secs: params.period_secs,
                confirmed_at: None,
                last_used_step: None,
                created_at: now,
                last_used_at: None,
            })
            .await?;
        self.enrolment(username, &secret, params).map(Some)
    }

    /// The enrolment in progress (an unconfirmed authenticator), shown again after a wrong
    /// first code so the user need not scan a new QR code.
    pub async fn current_enrolment(
        &self,
        user_id: &str,
        username: &str,
    ) -> Result<Option<Enrolment>, TotpError> {
        let Some(factor) = self
            .store
            .totp_factor(user_id)
            .await?
            .filter(|f| f.confirmed_at.is_none())
        else {
            return Ok(None);
        };
        let (params, secret) = self.open(&factor).map_err(|_| TotpError::Crypto("open"))?;
        self.enrolment(username, &secret, params).map(Some)
    }

    fn enrolment(
        &self,
        username: &str,
        secret: &[u8],
        params: TotpParams,
    ) -> Result<Enrolment, TotpError> {
        let uri = Zeroizing::new(totp::otpauth_uri(
            &self.settings.totp.issuer_label,
            username,
            secret,
            params,
        ));
        let svg = Zeroizing::new(qr::svg(&uri).map_err(|_| TotpError::Crypto("qr"))?);
        Ok(Enrolment {
            secret_text: Zeroizing::new(totp::grouped(&totp::base32_encode(secret))),
            uri,
            svg,
            params,
        })
    }

    /// The stored authenticator's parameters and opened secret.
    fn open(&self, factor: &TotpFactor) -> Result<(TotpParams, Zeroizing<Vec<u8>>), CodeFailure> {
        let algorithm = TotpAlgorithm::parse(&factor.algorithm).ok_or(CodeFailure::Unavailable)?;
        let secret = self
            .sealer
            .open(&factor.user_id, &factor.sealed_secret)
            .map_err(|_| CodeFailure::Unavailable)?;
        Ok((
            TotpParams {
                algorithm,
                digits: factor.digits,
                period_secs: factor.period_secs,
            },
            secret,
        ))
    }

    /// Checks `code` against the user's authenticator (confirmed, or being enrolled when
    /// `confirm`) and spends its time step.
    async fn check_code(
        &self,
        user_id: &str,
        code: &str,
        confirm: bool,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<(), CodeFailure> {
        let factor = self
            .store
            .totp_factor(user_id)
            .await?
            .filter(|f| f.confirmed_at.is_some() != confirm)
            .ok_or(CodeFailure::NotEnrolled)?;
        let (params, secret) = self.open(&factor)?;
        if totp::normalize_code(code, params.digits).is_none() {
            return Err(CodeFailure::Malformed);
        }
        self.totp_attempts
            .check(user_id, source)
            .map_err(CodeFailure::Locked)?;
        let step = totp::verify(params, &secret, code, now.unix_timestamp());
        let spent = match step {
            Some(step) => {
                self.store
                    .claim_totp_step(user_id, &factor.sealed_secret, step, confirm, now)
                    .await?
            }
            None => false,
        };
        if spent {
            self.totp_attempts.succeeded(user_id, source);
            Ok(())
        } else {
            match self.totp_attempts.failed(user_id, source) {
                Ok(()) => Err(CodeFailure::Wrong),
                Err(locked) => Err(CodeFailure::Locked(locked)),
            }
        }
    }

    /// Confirms the enrolment with a first code. At the first confirmation of a user without
    /// recovery codes, a set is generated and returned, to be shown once.
    pub async fn confirm(
        &self,
        user_id: &str,
        code: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Option<ShownCodes>, CodeFailure> {
        self.check_code(user_id, code, true, source, now).await?;
        audit::account(
            AccountOperation::TotpEnrolled,
            user_id,
            Actor::User,
            Outcome::Success,
            None,
        );
        if self
            .store
            .factor_summary(user_id)
            .await?
            .recovery_codes_left
            > 0
        {
            return Ok(None);
        }
        match self.new_recovery_codes(user_id, now).await {
            Ok(codes) => Ok(Some(codes)),
            Err(_) => Err(CodeFailure::Unavailable),
        }
    }

    /// Checks a TOTP code at sign-in: right, in the window and not used before.
    pub async fn verify_sign_in(
        &self,
        user_id: &str,
        code: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<(), CodeFailure> {
        self.check_code(user_id, code, false, source, now).await
    }

    /// Checks and spends a recovery code at sign-in (one PBKDF2 check, however many codes the
    /// user has); the number left on success. Audited.
    pub async fn verify_recovery_code(
        &self,
        user_id: &str,
        code: &str,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<usize, CodeFailure> {
        let submitted = recovery::parse(code).ok_or(CodeFailure::Malformed)?;
        self.recovery_attempts
            .check(user_id, source)
            .map_err(CodeFailure::Locked)?;
        let stored = self
            .store
            .recovery_code(user_id, &submitted.id)
            .await?
            .filter(|c| c.used_at.is_none());
        let hash = stored.as_ref().map(|c| c.code_hash.clone());
        let secret = submitted.secret;
        let ok = tokio::task::spawn_blocking(move || {
            match hash.as_deref().map(cryptoutil_realm::PasswordHash::parse) {
                Some(Ok(hash)) => hash.verify(&secret),
                _ => {
                    // The same cost as a real check: unknown ids answer nothing sooner.
                    let _ = cryptoutil_realm::password::hash_password_with(
                        &secret,
                        recovery::ITERATIONS,
                    );
                    false
                }
            }
        })
        .await
        .map_err(|_| CodeFailure::Unavailable)?;
        let spent = ok
            && self
                .store
                .use_recovery_code(user_id, &submitted.id, now)
                .await?;
        if !spent {
            return match self.recovery_attempts.failed(user_id, source) {
                Ok(()) => Err(CodeFailure::Wrong),
                Err(locked) => Err(CodeFailure::Locked(locked)),
            };
        }
        self.recovery_attempts.succeeded(user_id, source);
        let left = self
            .store
            .factor_summary(user_id)
            .await?
            .recovery_codes_left;
        audit::account(
            AccountOperation::RecoveryCodeUsed,
            user_id,
            Actor::User,
            Outcome::Success,
            Some(&format!("{left} left")),
        );
        Ok(left)
    }

    /// A new set of recovery codes for the user (the old set stops working), to show once.
    /// Audited.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<ShownCodes, TotpError> {
        self.new_recovery_codes(user_id, now).await
    }

    async fn new_recovery_codes(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<ShownCodes, TotpError> {
        let count = usize::try_from(self.settings.recovery_codes).unwrap_or(10);
        let codes = recovery::generate(count).map_err(|_| TotpError::Crypto("random"))?;
        let (stored, shown) = hash_codes(user_id, codes, now).await?;
        self.store.replace_recovery_codes(user_id, &stored).await?;
        audit::account(
            AccountOperation::RecoveryCodesGenerated,
            user_id,
            Actor::User,
            Outcome::Success,
            Some(&format!("{count} codes")),
        );
        Ok(shown)
    }

    /// Removes the user's authenticator (their recovery codes stay: they still stand in for a
    /// passkey). True when there was one. Audited.
    pub async fn remove(&self, user_id: &str) -> Result<bool, TotpError> {
        let removed = self.store.delete_totp_factor(user_id).await?;
        if removed {
            audit::account(
                AccountOperation::TotpRemoved,
                user_id,
                Actor::User,
                Outcome::Success,
                None,
            );
        }
        Ok(removed)
    }
}

/// Hashes the codes' secrets, one blocking task each (they run side by side), into the records
/// to store and the texts to show.
async fn hash_codes(
    user_id: &str,
    codes: Vec<NewCode>,
    now: OffsetDateTime,
) -> Result<(Vec<RecoveryCode>, ShownCodes), TotpError> {
    let mut tasks = Vec::with_capacity(codes.len());
    let mut shown = Vec::with_capacity(codes.len());
    for code in codes {
        let NewCode {
            id,
            display,
            secret,
        } = code;
        shown.push(display);
        tasks.push((
            id,
            tokio::task::spawn_blocking(move || {
                cryptoutil_realm::password::hash_password_with(&secret, recovery::ITERATIONS)
            }),
        ));
    }
    let mut stored = Vec::with_capacity(tasks.len());
    for (id, task) in tasks {
        let code_hash = task
            .await
            .map_err(|_| TotpError::Crypto("hash"))?
            .map_err(|_| TotpError::Crypto("hash"))?;
        stored.push(RecoveryCode {
            user_id: user_id.to_owned(),
            id,
            code_hash,
            created_at: now,
            used_at: None,
        });
    }
    Ok((stored, shown))
}

/// Seals a secret given as base32 text (the demo seed's `totp_secret`) for `user_id`.
///
/// # Errors
/// When the text is not strict base32 of at least 16 bytes, or sealing fails.
pub fn seal_base32_secret(
    sealer: &SecretSealer,
    user_id: &str,
    base32: &str,
) -> Result<String, seal::SealError> {
    let secret = Zeroizing::new(totp::base32_decode(base32).ok_or(seal::SealError::INPUT)?);
    if secret.len() < 16 {
        return Err(seal::SealError::INPUT);
    }
    sealer.seal(user_id, &secret)
}
