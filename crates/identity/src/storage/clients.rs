//! Clients and users.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use super::{
    Store, StoreError, flag, flag_to_db, instant, list_from_text, list_to_text, map, nanos,
    opt_instant, opt_nanos,
};
use crate::mfa::policy::MfaPolicy;
use crate::model::{Client, ClientAuthMethod, ClientMetadata, ClientSecret, User};

/// The stored form of a [`ClientSecret`].
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    hash: String,
    expires_at: Option<i64>,
}

fn secrets_to_text(secrets: &[ClientSecret]) -> Result<String, StoreError> {
    let stored = secrets
        .iter()
        .map(|s| {
            Ok(StoredSecret {
                hash: s.hash.clone(),
                expires_at: opt_nanos(s.expires_at)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    list_to_text(&stored)
}

fn secrets_from_text(text: &str) -> Result<Vec<ClientSecret>, StoreError> {
    list_from_text::<StoredSecret>(text)?
        .into_iter()
        .map(|s| {
            Ok(ClientSecret {
                hash: s.hash,
                expires_at: opt_instant(s.expires_at)?,
            })
        })
        .collect()
}

fn auth_method_from_text(text: &str) -> Result<ClientAuthMethod, StoreError> {
    ClientAuthMethod::ALL
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown client auth method {text:?}")))
}

const CLIENT_COLUMNS: &str = "client_id, name, enabled, auth_method, secrets, jwks, grant_types, \
     redirect_uris, post_logout_redirect_uris, scopes, audiences, tenant_id, introspect_any, \
     created_at, dpop_bound_access_tokens, may_act, impersonation, mfa";

fn client_from_row(row: &AnyRow) -> Result<Client, StoreError> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(super::map);
    Ok(Client {
        client_id: text("client_id")?,
        metadata: ClientMetadata {
            client_name: text("name")?,
            token_endpoint_auth_method: auth_method_from_text(&text("auth_method")?)?,
            jwks: row.try_get("jwks").map_err(map)?,
            grant_types: list_from_text(&text("grant_types")?)?,
            redirect_uris: list_from_text(&text("redirect_uris")?)?,
            post_logout_redirect_uris: list_from_text(&text("post_logout_redirect_uris")?)?,
            scope: list_from_text(&text("scopes")?)?,
            audiences: list_from_text(&text("audiences")?)?,
            tenant_id: row.try_get("tenant_id").map_err(map)?,
            introspect_any: flag(row, "introspect_any")?,
            dpop_bound_access_tokens: flag(row, "dpop_bound_access_tokens")?,
            may_act: list_from_text(&text("may_act")?)?,
            impersonation: flag(row, "impersonation")?,
            mfa: match row
                .try_get::<Option<String>, _>("mfa")
                .map_err(super::map)?
            {
                Some(name) => Some(MfaPolicy::parse(&name).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown client mfa policy {name:?}"))
                })?),
                None => None,
            },
        },
        enabled: flag(row, "enabled")?,
        secrets: secrets_from_text(&text("secrets")?)?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
    })
}

const USER_COLUMNS: &str = "id, username, password_hash, enabled, roles, tenant_id, name, \
     given_name, family_name, email, email_verified, version, created_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id").map_err(map)?,
        username: row.try_get("username").map_err(map)?,
        password_hash: row.try_get("password_hash").map_err(map)?,
        enabled: flag(row, "enabled")?,
        roles: list_from_text(&row.try_get::<String, _>("roles").map_err(map)?)?,
        tenant_id: row.try_get("tenant_id").map_err(map)?,
        name: row.try_get("name").map_err(map)?,
        given_name: row.try_get("given_name").map_err(map)?,
        family_name: row.try_get("family_name").map_err(map)?,
        email: row.try_get("email").map_err(map)?,
        email_verified: flag(row, "email_verified")?,
        version: row.try_get("version").map_err(map)?,
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
    })
}

impl Store {
    /// The client with this id.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    /// Every client, ordered by id.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?
            .iter()
            .map(client_from_row)
            .collect()
    }

    /// Registers a new client; [`StoreError::Conflict`] when the id is taken.
    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.write_client(client, false).await
    }

    /// Registers or replaces a client (seeding).
    pub async fn upsert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.write_client(client, true).await
    }

    async fn write_client(&self, c: &Client, replace: bool) -> Result<(), StoreError> {
        let conflict = if replace {
            "ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, \
             enabled = excluded.enabled, auth_method = excluded.auth_method, \
             secrets = excluded.secrets, jwks = excluded.jwks, \
             grant_types = excluded.grant_types, redirect_uris = excluded.redirect_uris, \
             post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
             scopes = excluded.scopes, audiences = excluded.audiences, \
             tenant_id = excluded.tenant_id, introspect_any = excluded.introspect_any, \
             dpop_bound_access_tokens = excluded.dpop_bound_access_tokens, \
             may_act = excluded.may_act, impersonation = excluded.impersonation, \
             mfa = excluded.mfa, \
             updated_at = excluded.updated_at"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}, updated_at) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             {conflict}"
        );
        let now = nanos(OffsetDateTime::now_utc())?;
        sqlx::query(AssertSqlSafe(sql))
            .bind(&c.client_id)
            .bind(&c.metadata.client_name)
            .bind(flag_to_db(c.enabled))
            .bind(c.metadata.token_endpoint_auth_method.as_str())
            .bind(secrets_to_text(&c.secrets)?)
            .bind(c.metadata.jwks.as_deref())
            .bind(list_to_text(&c.metadata.grant_types)?)
            .bind(list_to_text(&c.metadata.redirect_uris)?)
            .bind(list_to_text(&c.metadata.post_logout_redirect_uris)?)
            .bind(list_to_text(&c.metadata.scope)?)
            .bind(list_to_text(&c.metadata.audiences)?)
            .bind(c.metadata.tenant_id.as_deref())
            .bind(flag_to_db(c.metadata.introspect_any))
            .bind(nanos(c.created_at)?)
            .bind(flag_to_db(c.metadata.dpop_bound_access_tokens))
            .bind(list_to_text(&c.metadata.may_act)?)
            .bind(flag_to_db(c.metadata.impersonation))
            .bind(c.metadata.mfa.map(MfaPolicy::as_str))
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map)
    }

    /// Replaces a client's secrets (rotation). False when the client does not exist.
    pub async fn set_client_secrets(
        &self,
        client_id: &str,
        secrets: &[ClientSecret],
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE clients SET secrets = $1, updated_at = $2 WHERE client_id = $3")
                .bind(secrets_to_text(secrets)?)
                .bind(nanos(OffsetDateTime::now_utc())?)
                .bind(client_id)
                .execute(&self.pool)
                .await
                .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a client. False when it did not exist.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// The user with this login name.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        self.one_user(sql, username).await
    }

    /// The user with this subject.
    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.one_user(sql, id).await
    }

    async fn one_user(&self, sql: String, key: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// Creates a user, or replaces the one with the same username (keeping its id, bumping its
    /// version). Returns the stored user.
    pub async fn upsert_user(&self, user: &User) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
             enabled = excluded.enabled, roles = excluded.roles, tenant_id = excluded.tenant_id, \
             name = excluded.name, given_name = excluded.given_name, \
             family_name = excluded.family_name, email = excluded.email, \
             email_verified = excluded.email_verified, version = users.version + 1"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(flag_to_db(user.enabled))
            .bind(list_to_text(&user.roles)?)
            .bind(user.tenant_id.as_deref())
            .bind(user.name.as_deref())
            .bind(user.given_name.as_deref())
            .bind(user.family_name.as_deref())
            .bind(user.email.as_deref())
            .bind(flag_to_db(user.email_verified))
            .bind(user.version)
            .bind(nanos(user.created_at)?)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        self.user_by_username(&user.username)
            .await?
            .ok_or_else(|| StoreError::Corrupt("user vanished after upsert".to_owned()))
    }

    /// Replaces the user's password hash if the user is still at `version` (compare-and-set:
    /// two concurrent changes cannot both win), bumping the version. False when the user is
    /// gone or changed meanwhile.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        version: i64,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, version = version + 1 \
             WHERE id = $2 AND version = $3",
        )
        .bind(password_hash)
        .bind(user_id)
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a user by username. False when there was none.
    pub async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }
}
