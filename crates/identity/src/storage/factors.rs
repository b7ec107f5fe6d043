//! A user's second factors: TOTP authenticators, recovery codes, WebAuthn credentials and the
//! WebAuthn challenges handed to browser sessions.
//!
//! Every "use once" step (a TOTP time step, a recovery code, a challenge, a signature counter)
//! is one conditional statement whose affected-row count decides, so two instances on one
//! PostgreSQL never both accept the same code or assertion.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    Store, StoreError, flag, flag_to_db, instant, list_from_text, list_to_text, map, nanos,
    opt_instant, opt_nanos,
};
use crate::model::{
    ChallengePurpose, FactorSummary, RecoveryCode, TotpFactor, WebAuthnChallenge,
    WebAuthnCredential,
};

const CREDENTIAL_COLUMNS: &str = "credential_id, user_id, name, public_key, algorithm, \
     sign_count, transports, aaguid, attestation_format, discoverable, backup_eligible, \
     backed_up, created_at, last_used_at";

fn small(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("stored {what} out of range")))
}

fn totp_from_row(row: &AnyRow) -> Result<TotpFactor, StoreError> {
    Ok(TotpFactor {
        user_id: row.try_get("user_id").map_err(map)?,
        sealed_secret: row.try_get("sealed_secret").map_err(map)?,
        algorithm: row.try_get("algorithm").map_err(map)?,
        digits: small(row.try_get("digits").map_err(map)?, "digits")?,
        period_secs: small(row.try_get("period_secs").map_err(map)?, "period")?,
        confirmed_at: opt_instant(row.try_get("confirmed_at").map_err(map)?)?,
        last_used_step: row.try_get("last_used_step").map_err(map)?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
        last_used_at: opt_instant(row.try_get("last_used_at").map_err(map)?)?,
    })
}

fn credential_from_row(row: &AnyRow) -> Result<WebAuthnCredential, StoreError> {
    let transports: String = row.try_get("transports").map_err(map)?;
    Ok(WebAuthnCredential {
        credential_id: row.try_get("credential_id").map_err(map)?,
        user_id: row.try_get("user_id").map_err(map)?,
        name: row.try_get("name").map_err(map)?,
        public_key: row.try_get("public_key").map_err(map)?,
        algorithm: row.try_get("algorithm").map_err(map)?,
        sign_count: small(row.try_get("sign_count").map_err(map)?, "sign count")?,
        transports: list_from_text(&transports)?,
        aaguid: row.try_get("aaguid").map_err(map)?,
        attestation_format: row.try_get("attestation_format").map_err(map)?,
        discoverable: flag(row, "discoverable")?,
        backup_eligible: flag(row, "backup_eligible")?,
        backed_up: flag(row, "backed_up")?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
        last_used_at: opt_instant(row.try_get("last_used_at").map_err(map)?)?,
    })
}

impl Store {
    // ---------------------------------------------------------------------------------------
    // TOTP

    /// Stores a user's TOTP authenticator, replacing any earlier one (a new enrolment starts
    /// over: the old secret stops working).
    pub async fn put_totp_factor(&self, f: &TotpFactor) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO totp_factors (user_id, sealed_secret, algorithm, digits, period_secs, \
             confirmed_at, last_used_step, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
             algorithm = excluded.algorithm, digits = excluded.digits, \
             period_secs = excluded.period_secs, confirmed_at = excluded.confirmed_at, \
             last_used_step = excluded.last_used_step, created_at = excluded.created_at, \
             last_used_at = excluded.last_used_at",
        )
        .bind(&f.user_id)
        .bind(&f.sealed_secret)
        .bind(&f.algorithm)
        .bind(i64::from(f.digits))
        .bind(i64::from(f.period_secs))
        .bind(opt_nanos(f.confirmed_at)?)
        .bind(f.last_used_step)
        .bind(nanos(f.created_at)?)
        .bind(opt_nanos(f.last_used_at)?)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    /// The user's TOTP authenticator (confirmed or still being enrolled).
    pub async fn totp_factor(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        sqlx::query(
            "SELECT user_id, sealed_secret, algorithm, digits, period_secs, confirmed_at, \
             last_used_step, created_at, last_used_at FROM totp_factors WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(totp_from_row)
        .transpose()
    }

    /// Accepts a code of time `step` for the user's authenticator whose secret is
    /// `sealed_secret` (the one the code was checked against: an enrolment restarted meanwhile
    /// in another tab does not match): true when no code of this step or a later one was
    /// accepted before (the code is then spent), false otherwise. Confirms an enrolment
    /// (`confirm`) in the same statement; an unconfirmed authenticator accepts codes only with
    /// `confirm`.
    pub async fn claim_totp_step(
        &self,
        user_id: &str,
        sealed_secret: &str,
        step: i64,
        confirm: bool,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = if confirm {
            "UPDATE totp_factors SET last_used_step = $2, last_used_at = $3, \
             confirmed_at = COALESCE(confirmed_at, $3) \
             WHERE user_id = $1 AND sealed_secret = $4 \
             AND (last_used_step IS NULL OR last_used_step < $2)"
        } else {
            "UPDATE totp_factors SET last_used_step = $2, last_used_at = $3 \
             WHERE user_id = $1 AND sealed_secret = $4 AND confirmed_at IS NOT NULL \
             AND (last_used_step IS NULL OR last_used_step < $2)"
        };
        let done = sqlx::query(sql)
            .bind(user_id)
            .bind(step)
            .bind(nanos(now)?)
            .bind(sealed_secret)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the user's TOTP authenticator; true when there was one.
    pub async fn delete_totp_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    // ---------------------------------------------------------------------------------------
    // Recovery codes

    /// Replaces the user's recovery codes with `codes` (one transaction: the old set stops
    /// working as the new one starts).
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCode],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        for code in codes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, id, code_hash, created_at, used_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(&code.id)
            .bind(&code.code_hash)
            .bind(nanos(code.created_at)?)
            .bind(opt_nanos(code.used_at)?)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)
    }

    /// The user's recovery code with this public id, used or not.
    pub async fn recovery_code(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<RecoveryCode>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, id, code_hash, created_at, used_at FROM recovery_codes \
             WHERE user_id = $1 AND id = $2",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RecoveryCode {
            user_id: row.try_get("user_id").map_err(map)?,
            id: row.try_get("id").map_err(map)?,
            code_hash: row.try_get("code_hash").map_err(map)?,
            created_at: instant(row.try_get("created_at").map_err(map)?)?,
            used_at: opt_instant(row.try_get("used_at").map_err(map)?)?,
        }))
    }

    /// Spends a recovery code: true when it was unused (and is now used).
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND id = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(id)
        .bind(nanos(now)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the user's recovery codes; how many there were.
    pub async fn delete_recovery_codes(&self, user_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    // ---------------------------------------------------------------------------------------
    // WebAuthn credentials

    /// Registers a credential. A credential id registered before (by anyone) is a
    /// [`StoreError::Conflict`] (WebAuthn §7.1 step 22).
    pub async fn insert_webauthn_credential(
        &self,
        c: &WebAuthnCredential,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO webauthn_credentials ({CREDENTIAL_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&c.credential_id)
            .bind(&c.user_id)
            .bind(&c.name)
            .bind(&c.public_key)
            .bind(c.algorithm)
            .bind(i64::from(c.sign_count))
            .bind(list_to_text(&c.transports)?)
            .bind(&c.aaguid)
            .bind(&c.attestation_format)
            .bind(flag_to_db(c.discoverable))
            .bind(flag_to_db(c.backup_eligible))
            .bind(flag_to_db(c.backed_up))
            .bind(nanos(c.created_at)?)
            .bind(opt_nanos(c.last_used_at)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(map)
    }

    /// The credential with this id (base64url), whoever registered it.
    pub async fn webauthn_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<WebAuthnCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE credential_id = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(credential_from_row)
            .transpose()
    }

    /// The user's credentials, oldest first.
    pub async fn webauthn_credentials(
        &self,
        user_id: &str,
    ) -> Result<Vec<WebAuthnCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM webauthn_credentials WHERE user_id = $1 \
             ORDER BY created_at, credential_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?
            .iter()
            .map(credential_from_row)
            .collect()
    }

    /// Records a successful assertion: the new signature counter, backup state and last use.
    /// True when the stored counter was still `previous_count` (a concurrent assertion with
    /// the same counter loses: WebAuthn §7.2 step 22's regression check across instances).
    pub async fn record_webauthn_use(
        &self,
        credential_id: &str,
        previous_count: u32,
        new_count: u32,
        backed_up: bool,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webauthn_credentials SET sign_count = $3, backed_up = $4, last_used_at = $5 \
             WHERE credential_id = $1 AND sign_count = $2",
        )
        .bind(credential_id)
        .bind(i64::from(previous_count))
        .bind(i64::from(new_count))
        .bind(flag_to_db(backed_up))
        .bind(nanos(now)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Renames one of the user's credentials; true when it exists.
    pub async fn rename_webauthn_credential(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webauthn_credentials SET name = $3 WHERE user_id = $1 AND credential_id = $2",
        )
        .bind(user_id)
        .bind(credential_id)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes one of the user's credentials; true when it existed.
    pub async fn delete_webauthn_credential(
        &self,
        user_id: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webauthn_credentials WHERE user_id = $1 AND credential_id = $2",
        )
        .bind(user_id)
        .bind(credential_id)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    // ---------------------------------------------------------------------------------------
    // WebAuthn challenges

    /// Stores a challenge handed to a browser session.
    pub async fn insert_webauthn_challenge(&self, c: &WebAuthnChallenge) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webauthn_challenges (challenge_hash, session_hash, purpose, user_id, \
             expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.challenge_hash)
        .bind(&c.session_hash)
        .bind(c.purpose.as_str())
        .bind(c.user_id.as_deref())
        .bind(nanos(c.expires_at)?)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    /// Forgets the challenges issued to this session for `purpose` (a new ceremony replaces
    /// the one before: a session holds at most one live challenge per purpose); returns how
    /// many there were.
    pub async fn delete_webauthn_challenges(
        &self,
        session_hash: &str,
        purpose: ChallengePurpose,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM webauthn_challenges WHERE session_hash = $1 AND purpose = $2")
                .bind(session_hash)
                .bind(purpose.as_str())
                .execute(&self.pool)
                .await
                .map_err(map)?;
        Ok(done.rows_affected())
    }

    /// Takes (deletes and returns) the live challenge with this hash issued to this session
    /// for `purpose`: a challenge answers one ceremony, once.
    pub async fn take_webauthn_challenge(
        &self,
        challenge_hash: &str,
        session_hash: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebAuthnChallenge>, StoreError> {
        let row = sqlx::query(
            "SELECT challenge_hash, session_hash, purpose, user_id, expires_at \
             FROM webauthn_challenges WHERE challenge_hash = $1 AND session_hash = $2 \
             AND purpose = $3 AND expires_at >= $4",
        )
        .bind(challenge_hash)
        .bind(session_hash)
        .bind(purpose.as_str())
        .bind(nanos(now)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let Some(row) = row else { return Ok(None) };
        let done = sqlx::query("DELETE FROM webauthn_challenges WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let purpose: String = row.try_get("purpose").map_err(map)?;
        Ok(Some(WebAuthnChallenge {
            challenge_hash: row.try_get("challenge_hash").map_err(map)?,
            session_hash: row.try_get("session_hash").map_err(map)?,
            purpose: ChallengePurpose::parse(&purpose)
                .ok_or_else(|| StoreError::Corrupt("stored challenge purpose".to_owned()))?,
            user_id: row.try_get("user_id").map_err(map)?,
            expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        }))
    }

    // ---------------------------------------------------------------------------------------
    // All factors

    /// Which factors the user has beyond the password.
    pub async fn factor_summary(&self, user_id: &str) -> Result<FactorSummary, StoreError> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL) \
               AS totp, \
             (SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1) AS passkeys, \
             (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL) \
               AS recovery",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        let count = |column: &str| -> Result<usize, StoreError> {
            let n: i64 = row.try_get(column).map_err(map)?;
            usize::try_from(n).map_err(|_| StoreError::Corrupt("stored count".to_owned()))
        };
        Ok(FactorSummary {
            totp: count("totp")? > 0,
            passkeys: count("passkeys")?,
            recovery_codes_left: count("recovery")?,
        })
    }

    /// Removes every factor of the user (TOTP, recovery codes, WebAuthn credentials and
    /// pending challenges) in one transaction: what an administrator's reset does. Returns
    /// the number of rows removed.
    pub async fn reset_factors(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let mut removed = 0;
        for table in [
            "totp_factors",
            "recovery_codes",
            "webauthn_credentials",
            "webauthn_challenges",
        ] {
            let sql = format!("DELETE FROM {table} WHERE user_id = $1");
            // The table names are the constants above.
            removed += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
        }
        tx.commit().await.map_err(map)?;
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::storage::DatabaseSettings;

    async fn store() -> Store {
        Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap()
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn user() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    fn totp(user_id: &str) -> TotpFactor {
        TotpFactor {
            user_id: user_id.to_owned(),
            sealed_secret: "sealed".to_owned(),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period_secs: 30,
            confirmed_at: None,
            last_used_step: None,
            created_at: at(100),
            last_used_at: None,
        }
    }

    fn credential(user_id: &str, id: &str) -> WebAuthnCredential {
        WebAuthnCredential {
            credential_id: id.to_owned(),
            user_id: user_id.to_owned(),
            name: "Laptop".to_owned(),
            public_key: "pQECAyYgASFYIA".to_owned(),
            algorithm: -7,
            sign_count: 5,
            transports: vec!["internal".to_owned()],
            aaguid: uuid::Uuid::nil().to_string(),
            attestation_format: "none".to_owned(),
            discoverable: true,
            backup_eligible: true,
            backed_up: false,
            created_at: at(100),
            last_used_at: None,
        }
    }

    #[tokio::test]
    async fn a_totp_code_counts_once_and_only_once_confirmed() {
        let store = store().await;
        let u = user();
        store.put_totp_factor(&totp(&u)).await.unwrap();
        assert!(!store.factor_summary(&u).await.unwrap().totp);
        assert!(
            !store
                .claim_totp_step(&u, "sealed", 10, false, at(200))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_totp_step(&u, "another enrolment", 10, true, at(200))
                .await
                .unwrap(),
            "a code checked against another secret confirms nothing"
        );
        assert!(
            store
                .claim_totp_step(&u, "sealed", 10, true, at(200))
                .await
                .unwrap()
        );
        let stored = store.totp_factor(&u).await.unwrap().unwrap();
        assert_eq!(stored.confirmed_at, Some(at(200)));
        assert!(store.factor_summary(&u).await.unwrap().any_second_factor());
        assert!(
            !store
                .claim_totp_step(&u, "sealed", 10, false, at(201))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_totp_step(&u, "sealed", 9, false, at(201))
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_totp_step(&u, "sealed", 11, false, at(230))
                .await
                .unwrap()
        );
        assert!(store.delete_totp_factor(&u).await.unwrap());
        assert!(store.totp_factor(&u).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn recovery_codes_are_replaced_as_a_set_and_spent_once() {
        let store = store().await;
        let u = user();
        let code = |id: &str| RecoveryCode {
            user_id: u.clone(),
            id: id.to_owned(),
            code_hash: format!("hash-{id}"),
            created_at: at(100),
            used_at: None,
        };
        store
            .replace_recovery_codes(&u, &[code("a"), code("b")])
            .await
            .unwrap();
        assert_eq!(
            store.factor_summary(&u).await.unwrap().recovery_codes_left,
            2
        );
        assert!(store.use_recovery_code(&u, "a", at(150)).await.unwrap());
        assert!(!store.use_recovery_code(&u, "a", at(151)).await.unwrap());
        let used = store.recovery_code(&u, "a").await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(at(150)));
        store
            .replace_recovery_codes(&u, &[code("c")])
            .await
            .unwrap();
        assert!(store.recovery_code(&u, "b").await.unwrap().is_none());
        assert_eq!(
            store.factor_summary(&u).await.unwrap().recovery_codes_left,
            1
        );
        assert_eq!(store.delete_recovery_codes(&u).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn credentials_are_unique_and_their_counter_moves_forward_once() {
        let store = store().await;
        let (u, other) = (user(), user());
        let id = format!("cred-{}", uuid::Uuid::now_v7());
        store
            .insert_webauthn_credential(&credential(&u, &id))
            .await
            .unwrap();
        assert!(matches!(
            store
                .insert_webauthn_credential(&credential(&other, &id))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store.webauthn_credential(&id).await.unwrap(),
            Some(credential(&u, &id))
        );
        assert!(
            store
                .record_webauthn_use(&id, 5, 6, true, at(300))
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_webauthn_use(&id, 5, 7, true, at(301))
                .await
                .unwrap()
        );
        let used = store.webauthn_credential(&id).await.unwrap().unwrap();
        assert_eq!((used.sign_count, used.backed_up), (6, true));
        assert_eq!(used.last_used_at, Some(at(300)));
        assert!(
            !store
                .rename_webauthn_credential(&other, &id, "x")
                .await
                .unwrap()
        );
        assert!(
            store
                .rename_webauthn_credential(&u, &id, "Phone")
                .await
                .unwrap()
        );
        assert_eq!(
            store.webauthn_credentials(&u).await.unwrap()[0].name,
            "Phone"
        );
        assert_eq!(store.factor_summary(&u).await.unwrap().passkeys, 1);
        assert!(!store.delete_webauthn_credential(&other, &id).await.unwrap());
        assert!(store.delete_webauthn_credential(&u, &id).await.unwrap());
    }

    #[tokio::test]
    async fn a_challenge_answers_one_ceremony_of_its_session() {
        let store = store().await;
        let challenge = WebAuthnChallenge {
            challenge_hash: format!("c-{}", uuid::Uuid::now_v7()),
            session_hash: "s".to_owned(),
            purpose: ChallengePurpose::Authentication,
            user_id: None,
            expires_at: at(1_000),
        };
        store.insert_webauthn_challenge(&challenge).await.unwrap();
        let take = |session: &'static str, purpose, now| {
            let store = store.clone();
            let hash = challenge.challenge_hash.clone();
            async move {
                store
                    .take_webauthn_challenge(&hash, session, purpose, at(now))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            take("other", ChallengePurpose::Authentication, 500).await,
            None
        );
        assert_eq!(take("s", ChallengePurpose::Registration, 500).await, None);
        assert_eq!(
            take("s", ChallengePurpose::Authentication, 1_001).await,
            None
        );
        assert_eq!(
            take("s", ChallengePurpose::Authentication, 500).await,
            Some(challenge.clone())
        );
        assert_eq!(take("s", ChallengePurpose::Authentication, 500).await, None);

        // A session's challenges of one purpose can be forgotten at once, not the others.
        for (hash, purpose) in [
            ("a", ChallengePurpose::Authentication),
            ("b", ChallengePurpose::Authentication),
            ("c", ChallengePurpose::Registration),
        ] {
            let mut c = challenge.clone();
            c.challenge_hash = format!("{hash}-{}", uuid::Uuid::now_v7());
            c.purpose = purpose;
            store.insert_webauthn_challenge(&c).await.unwrap();
        }
        let forgotten = store
            .delete_webauthn_challenges("s", ChallengePurpose::Authentication)
            .await
            .unwrap();
        assert_eq!(forgotten, 2);
        assert_eq!(
            store
                .delete_webauthn_challenges("s", ChallengePurpose::Registration)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_reset_removes_every_factor() {
        let store = store().await;
        let u = user();
        store.put_totp_factor(&totp(&u)).await.unwrap();
        store
            .insert_webauthn_credential(&credential(&u, &format!("r-{}", uuid::Uuid::now_v7())))
            .await
            .unwrap();
        assert_eq!(store.reset_factors(&u).await.unwrap(), 2);
        assert_eq!(
            store.factor_summary(&u).await.unwrap(),
            FactorSummary::default()
        );
    }
}
