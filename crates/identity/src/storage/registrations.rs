//! Dynamic registration's records (migration 5): initial access tokens (hashed, with their cap
//! and count) and each registered client's registration record.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Store, StoreError, instant, map, nanos, opt_instant};
use crate::registration::records::{
    ClientRegistrationRecord, CreatedBy, InitialAccessToken, RegisteredExtras,
};

fn token_from_row(row: &AnyRow) -> Result<InitialAccessToken, StoreError> {
    Ok(InitialAccessToken {
        id: row.try_get("id").map_err(map)?,
        token_hash: row.try_get("token_hash").map_err(map)?,
        max_clients: row.try_get("max_clients").map_err(map)?,
        clients_created: row.try_get("clients_created").map_err(map)?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
        expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        revoked_at: opt_instant(row.try_get("revoked_at").map_err(map)?)?,
    })
}

fn registration_from_row(row: &AnyRow) -> Result<ClientRegistrationRecord, StoreError> {
    let created_by: String = row.try_get("created_by").map_err(map)?;
    let extras: String = row.try_get("metadata").map_err(map)?;
    Ok(ClientRegistrationRecord {
        client_id: row.try_get("client_id").map_err(map)?,
        registration_token_hash: row.try_get("registration_token_hash").map_err(map)?,
        created_by: CreatedBy::parse(&created_by)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown created_by {created_by:?}")))?,
        initial_access_token_id: row.try_get("initial_access_token_id").map_err(map)?,
        extras: serde_json::from_str::<RegisteredExtras>(&extras)
            .map_err(|e| StoreError::Corrupt(format!("stored registration metadata: {e}")))?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
    })
}

fn extras_text(extras: &RegisteredExtras) -> Result<String, StoreError> {
    serde_json::to_string(extras).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const TOKEN_COLUMNS: &str =
    "id, token_hash, max_clients, clients_created, created_at, expires_at, revoked_at";
const REGISTRATION_COLUMNS: &str = "client_id, registration_token_hash, created_by, \
     initial_access_token_id, metadata, created_at, updated_at";

impl Store {
    /// Stores a new initial access token.
    pub async fn insert_initial_access_token(
        &self,
        token: &InitialAccessToken,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO initial_access_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&token.id)
            .bind(&token.token_hash)
            .bind(token.max_clients)
            .bind(token.clients_created)
            .bind(nanos(token.created_at)?)
            .bind(nanos(token.expires_at)?)
            .bind(super::opt_nanos(token.revoked_at)?)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(map)
    }

    /// The initial access token whose value hashes to `token_hash`.
    pub async fn initial_access_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<InitialAccessToken>, StoreError> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM initial_access_tokens WHERE token_hash = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    /// Every initial access token, newest first.
    pub async fn initial_access_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM initial_access_tokens ORDER BY id DESC");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?
            .iter()
            .map(token_from_row)
            .collect()
    }

    /// Counts one client against the token, atomically: true when it was unrevoked, unexpired
    /// at `now` and under its cap (so two instances never register past the cap together).
    pub async fn claim_initial_access_token(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE initial_access_tokens SET clients_created = clients_created + 1 \
             WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             AND clients_created < max_clients",
        )
        .bind(id)
        .bind(nanos(now)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back a claimed slot (the registration it was claimed for failed).
    pub async fn release_initial_access_token(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE initial_access_tokens SET clients_created = clients_created - 1 \
             WHERE id = $1 AND clients_created > 0",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    /// Revokes an initial access token. False when there is no such token.
    pub async fn revoke_initial_access_token(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE initial_access_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(nanos(now)?)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a client's registration record.
    pub async fn insert_client_registration(
        &self,
        record: &ClientRegistrationRecord,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO client_registrations ({REGISTRATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        let created = nanos(record.created_at)?;
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&record.client_id)
            .bind(&record.registration_token_hash)
            .bind(record.created_by.as_str())
            .bind(record.initial_access_token_id.as_deref())
            .bind(extras_text(&record.extras)?)
            .bind(created)
            .bind(created)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(map)
    }

    /// A client's registration record, if it was registered dynamically.
    pub async fn client_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientRegistrationRecord>, StoreError> {
        let sql =
            format!("SELECT {REGISTRATION_COLUMNS} FROM client_registrations WHERE client_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(registration_from_row)
            .transpose()
    }

    /// Replaces the extra metadata of a registration (RFC 7592 update).
    pub async fn update_client_registration(
        &self,
        client_id: &str,
        extras: &RegisteredExtras,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE client_registrations SET metadata = $1, updated_at = $2 WHERE client_id = $3",
        )
        .bind(extras_text(extras)?)
        .bind(nanos(now)?)
        .bind(client_id)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a registration record. False when there was none.
    pub async fn delete_client_registration(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM client_registrations WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }
}
