//! Browser sessions at the IdP and remembered consent.

use sqlx::Row;
use time::OffsetDateTime;

use super::{
    Store, StoreError, instant, list_from_text, list_to_text, map, nanos, opt_instant, opt_nanos,
};
use crate::model::Session;

impl Store {
    /// Creates or replaces a session.
    pub async fn save_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, amr, pending_request, csrf_token, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, \
             auth_time = excluded.auth_time, amr = excluded.amr, \
             pending_request = excluded.pending_request, \
             csrf_token = excluded.csrf_token, expires_at = excluded.expires_at",
        )
        .bind(&s.id_hash)
        .bind(s.user_id.as_deref())
        .bind(opt_nanos(s.auth_time)?)
        .bind(list_to_text(&s.amr)?)
        .bind(s.pending_request.as_deref())
        .bind(&s.csrf_token)
        .bind(nanos(s.expires_at)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// The live session with this id hash.
    pub async fn session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, auth_time, amr, pending_request, csrf_token, expires_at \
             FROM sessions WHERE id_hash = $1 AND expires_at >= $2",
        )
        .bind(id_hash)
        .bind(nanos(now)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session {
            id_hash: row.try_get("id_hash").map_err(map)?,
            user_id: row.try_get("user_id").map_err(map)?,
            auth_time: opt_instant(row.try_get("auth_time").map_err(map)?)?,
            amr: row
                .try_get::<Option<String>, _>("amr")
                .map_err(map)?
                .map(|text| list_from_text(&text))
                .transpose()?
                .unwrap_or_default(),
            pending_request: row.try_get("pending_request").map_err(map)?,
            csrf_token: row.try_get("csrf_token").map_err(map)?,
            expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        }))
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map)
    }

    /// The scopes a user already approved for a client.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| list_from_text(&r.try_get::<String, _>("scopes").map_err(map)?))
            .transpose()
    }

    /// Remembers the scopes a user approved for a client (replacing the earlier set).
    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(list_to_text(scopes)?)
        .bind(nanos(OffsetDateTime::now_utc())?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }
}
