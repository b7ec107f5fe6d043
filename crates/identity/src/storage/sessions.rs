//! Browser sessions at the IdP and remembered consent.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use super::{
    Store, StoreError, instant, list_from_text, list_to_text, map, nanos, opt_instant, opt_nanos,
};
use crate::model::Session;

/// Most sessions [`Store::user_sessions`] returns (the account page lists them).
pub const MAX_USER_SESSIONS: usize = 100;

const SESSION_COLUMNS: &str = "id_hash, user_id, auth_time, amr, pending_request, csrf_token, \
     expires_at, public_id, created_at, user_agent";

fn session_from_row(row: &AnyRow) -> Result<Session, StoreError> {
    Ok(Session {
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
        public_id: row.try_get("public_id").map_err(map)?,
        created_at: opt_instant(row.try_get("created_at").map_err(map)?)?,
        user_agent: row.try_get("user_agent").map_err(map)?,
    })
}

impl Store {
    /// Creates or replaces a session. Its public id and start time, once stored, never change
    /// (a session stored before they existed gets them on its next save).
    pub async fn save_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, amr, pending_request, csrf_token, \
             expires_at, public_id, created_at, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, \
             auth_time = excluded.auth_time, amr = excluded.amr, \
             pending_request = excluded.pending_request, \
             csrf_token = excluded.csrf_token, expires_at = excluded.expires_at, \
             public_id = COALESCE(sessions.public_id, excluded.public_id), \
             created_at = COALESCE(sessions.created_at, excluded.created_at), \
             user_agent = excluded.user_agent",
        )
        .bind(&s.id_hash)
        .bind(s.user_id.as_deref())
        .bind(opt_nanos(s.auth_time)?)
        .bind(list_to_text(&s.amr)?)
        .bind(s.pending_request.as_deref())
        .bind(&s.csrf_token)
        .bind(nanos(s.expires_at)?)
        .bind(s.public_id.as_deref())
        .bind(opt_nanos(s.created_at)?)
        .bind(s.user_agent.as_deref())
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
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at >= $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(id_hash)
            .bind(nanos(now)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    /// The user's live, signed-in sessions (not those part way through a sign-in), the most
    /// recent sign-in first; at most [`MAX_USER_SESSIONS`].
    pub async fn user_sessions(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at >= $2 \
             AND auth_time IS NOT NULL ORDER BY auth_time DESC, id_hash LIMIT {MAX_USER_SESSIONS}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(nanos(now)?)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?
            .iter()
            .map(session_from_row)
            .collect()
    }

    /// Ends the user's session with this public id. False when the user has none by that id
    /// (another user's session is never touched).
    pub async fn delete_user_session(
        &self,
        user_id: &str,
        public_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND public_id = $2")
            .bind(user_id)
            .bind(public_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of the user (signed in or part way) except the one whose id hash is
    /// `except_id_hash`. Returns how many ended.
    pub async fn delete_user_sessions(
        &self,
        user_id: &str,
        except_id_hash: Option<&str>,
    ) -> Result<u64, StoreError> {
        let query = match except_id_hash {
            Some(kept) => sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(user_id)
                .bind(kept),
            None => sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id),
        };
        let done = query.execute(&self.pool).await.map_err(map)?;
        Ok(done.rows_affected())
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
