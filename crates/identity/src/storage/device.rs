//! Device authorizations (RFC 8628). Every change of state is one conditional statement whose
//! affected-row count decides, so two instances on one PostgreSQL agree: one poll per
//! interval is `authorization_pending` (a concurrent one is `slow_down`), one poll redeems an
//! approval, and one decision is taken per user code.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    Store, StoreError, instant, list_from_text, list_to_text, map, nanos, opt_instant, opt_nanos,
};
use crate::device::authorization::{
    DeviceAuthorization, DeviceState, PollResult, SLOW_DOWN_STEP_SECS, settled,
};
use crate::device::user_code::UserCode;
use crate::model::Grant;

const COLUMNS: &str = "device_code_hash, user_code, client_id, scopes, resources, dpop_jkt, \
     state, user_id, grant_id, interval_secs, last_poll_at, created_at, expires_at, used_at";

/// Nanoseconds in a second (intervals are stored in seconds, instants in nanoseconds).
const NANOS_PER_SEC: i64 = 1_000_000_000;

fn from_row(row: &AnyRow) -> Result<DeviceAuthorization, StoreError> {
    let user_code: String = row.try_get("user_code").map_err(map)?;
    let state: String = row.try_get("state").map_err(map)?;
    Ok(DeviceAuthorization {
        device_code_hash: row.try_get("device_code_hash").map_err(map)?,
        user_code: UserCode::from_stored(&user_code)
            .ok_or_else(|| StoreError::Corrupt("stored user code is malformed".to_owned()))?,
        client_id: row.try_get("client_id").map_err(map)?,
        scopes: list_from_text(&row.try_get::<String, _>("scopes").map_err(map)?)?,
        resources: list_from_text(&row.try_get::<String, _>("resources").map_err(map)?)?,
        dpop_jkt: row.try_get("dpop_jkt").map_err(map)?,
        state: DeviceState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("stored device state {state:?}")))?,
        user_id: row.try_get("user_id").map_err(map)?,
        grant_id: row.try_get("grant_id").map_err(map)?,
        interval_secs: row.try_get("interval_secs").map_err(map)?,
        last_poll_at: opt_instant(row.try_get("last_poll_at").map_err(map)?)?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
        expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        used_at: opt_instant(row.try_get("used_at").map_err(map)?)?,
    })
}

impl Store {
    /// Stores a new device authorization; [`StoreError::Conflict`] when its device or user
    /// code is taken (the caller draws new codes).
    pub async fn insert_device_authorization(
        &self,
        d: &DeviceAuthorization,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO device_authorizations ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&d.device_code_hash)
            .bind(d.user_code.as_str())
            .bind(&d.client_id)
            .bind(list_to_text(&d.scopes)?)
            .bind(list_to_text(&d.resources)?)
            .bind(d.dpop_jkt.as_deref())
            .bind(d.state.as_str())
            .bind(d.user_id.as_deref())
            .bind(d.grant_id.as_deref())
            .bind(d.interval_secs)
            .bind(opt_nanos(d.last_poll_at)?)
            .bind(nanos(d.created_at)?)
            .bind(nanos(d.expires_at)?)
            .bind(opt_nanos(d.used_at)?)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map)
    }

    /// The device authorization of a user code (normal form), whatever its state.
    pub async fn device_authorization_by_user_code(
        &self,
        user_code: &UserCode,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM device_authorizations WHERE user_code = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_code.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The device authorization of a device code hash, whatever its state.
    pub async fn device_authorization(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM device_authorizations WHERE device_code_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(device_code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The user approved: records `grant` and moves the live, pending authorization of
    /// `user_code` to approved, in one transaction. `false` (nothing stored) when it was no
    /// longer pending or had expired.
    pub async fn approve_device_authorization(
        &self,
        user_code: &UserCode,
        grant: &Grant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let won = sqlx::query(
            "UPDATE device_authorizations SET state = 'approved', user_id = $1, grant_id = $2 \
             WHERE user_code = $3 AND state = 'pending' AND expires_at >= $4",
        )
        .bind(&grant.user_id)
        .bind(&grant.id)
        .bind(user_code.as_str())
        .bind(nanos(now)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected()
            == 1;
        if !won {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scopes, auth_time, amr, acr, \
             created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.user_id)
        .bind(list_to_text(&grant.scopes)?)
        .bind(nanos(grant.auth_time)?)
        .bind(super::grants::opt_list_to_text(&grant.amr)?)
        .bind(grant.acr.as_deref())
        .bind(nanos(grant.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    /// The user denied: moves the live, pending authorization of `user_code` to denied by
    /// `user_id`. `false` when it was no longer pending or had expired.
    pub async fn deny_device_authorization(
        &self,
        user_code: &UserCode,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE device_authorizations SET state = 'denied', user_id = $1 \
             WHERE user_code = $2 AND state = 'pending' AND expires_at >= $3",
        )
        .bind(user_id)
        .bind(user_code.as_str())
        .bind(nanos(now)?)
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected()
            == 1)
    }

    /// One poll of the token endpoint with the device code whose hash is `device_code_hash`,
    /// by `client_id` (another client's code is [`PollResult::Unknown`]). The transitions are
    /// tried in order, each a conditional update: pending and not too fast → polled now
    /// (`Pending`); pending and too fast → interval + 5 s, polled now (`SlowDown`); approved and
    /// unspent → spent (`Redeemed`). Otherwise the stored state answers.
    pub async fn poll_device_authorization(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<PollResult, StoreError> {
        let at = nanos(now)?;
        let found = self.device_authorization(device_code_hash).await?;
        let Some(found) = found.filter(|d| d.client_id == client_id) else {
            return Ok(PollResult::Unknown);
        };
        let live = "device_code_hash = $2 AND expires_at >= $1 AND used_at IS NULL";
        let polled = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE device_authorizations SET last_poll_at = $1 \
             WHERE {live} AND state = 'pending' \
             AND (last_poll_at IS NULL OR last_poll_at + interval_secs * {NANOS_PER_SEC} <= $1)"
        )))
        .bind(at)
        .bind(device_code_hash)
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected();
        if polled == 1 {
            return Ok(PollResult::Pending);
        }
        let slowed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE device_authorizations \
             SET last_poll_at = $1, interval_secs = interval_secs + {SLOW_DOWN_STEP_SECS} \
             WHERE {live} AND state = 'pending'"
        )))
        .bind(at)
        .bind(device_code_hash)
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected();
        if slowed == 1 {
            let interval_secs = self
                .device_authorization(device_code_hash)
                .await?
                .map_or(found.interval_secs + SLOW_DOWN_STEP_SECS, |d| {
                    d.interval_secs
                });
            return Ok(PollResult::SlowDown { interval_secs });
        }
        let redeemed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE device_authorizations SET used_at = $1 WHERE {live} AND state = 'approved'"
        )))
        .bind(at)
        .bind(device_code_hash)
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected();
        let now_found = self.device_authorization(device_code_hash).await?;
        Ok(match now_found {
            Some(record) if redeemed == 1 => PollResult::Redeemed(Box::new(record)),
            other => settled(other.as_ref(), now),
        })
    }
}
