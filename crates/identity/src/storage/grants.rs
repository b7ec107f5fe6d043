//! Grants and what hangs off them: authorization codes, refresh tokens, access-token records and
//! revocations; also `private_key_jwt` assertion ids and pushed authorization requests.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{
    Store, StoreError, instant, list_from_text, list_to_text, map, nanos, opt_instant, opt_nanos,
};
use crate::mfa::policy::Acr;
use crate::model::{AuthorizationCode, Grant, PushedRequest, RefreshToken};

/// The outcome of redeeming an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First redemption: the code, now spent.
    Fresh(AuthorizationCode),
    /// The code was already redeemed: the caller revokes its grant.
    Reused(AuthorizationCode),
    /// Unknown or expired.
    Invalid,
}

/// The outcome of rotating a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The presented token was live: it is now spent and its successor stored.
    Rotated(RefreshToken),
    /// The presented token was already spent: the caller revokes its family.
    Reused(RefreshToken),
    /// Unknown or expired.
    Invalid,
}

fn grant_from_row(row: &AnyRow) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: row.try_get("id").map_err(map)?,
        client_id: row.try_get("client_id").map_err(map)?,
        user_id: row.try_get("user_id").map_err(map)?,
        scopes: list_from_text(&row.try_get::<String, _>("scopes").map_err(map)?)?,
        auth_time: instant(row.try_get("auth_time").map_err(map)?)?,
        amr: match opt_list(row, "amr")? {
            amr if amr.is_empty() => vec!["pwd".to_owned()],
            amr => amr,
        },
        acr: Some(
            row.try_get::<Option<String>, _>("acr")
                .map_err(map)?
                .unwrap_or_else(|| Acr::SingleFactor.as_str().to_owned()),
        ),
        created_at: instant(row.try_get("created_at").map_err(map)?)?,
        revoked_at: opt_instant(row.try_get("revoked_at").map_err(map)?)?,
    })
}

fn code_from_row(row: &AnyRow) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        code_hash: row.try_get("code_hash").map_err(map)?,
        grant_id: row.try_get("grant_id").map_err(map)?,
        client_id: row.try_get("client_id").map_err(map)?,
        redirect_uri: row.try_get("redirect_uri").map_err(map)?,
        code_challenge: row.try_get("code_challenge").map_err(map)?,
        nonce: row.try_get("nonce").map_err(map)?,
        scopes: list_from_text(&row.try_get::<String, _>("scopes").map_err(map)?)?,
        dpop_jkt: row.try_get("dpop_jkt").map_err(map)?,
        resources: opt_list(row, "resources")?,
        expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        used_at: opt_instant(row.try_get("used_at").map_err(map)?)?,
    })
}

fn refresh_from_row(row: &AnyRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        token_hash: row.try_get("token_hash").map_err(map)?,
        grant_id: row.try_get("grant_id").map_err(map)?,
        client_id: row.try_get("client_id").map_err(map)?,
        scopes: list_from_text(&row.try_get::<String, _>("scopes").map_err(map)?)?,
        dpop_jkt: row.try_get("dpop_jkt").map_err(map)?,
        resources: opt_list(row, "resources")?,
        expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        used_at: opt_instant(row.try_get("used_at").map_err(map)?)?,
    })
}

/// A list column that is NULL for rows written before it existed (or with nothing in it).
fn opt_list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    match row.try_get::<Option<String>, _>(column).map_err(map)? {
        Some(text) => list_from_text(&text),
        None => Ok(Vec::new()),
    }
}

/// The stored form of a list that is NULL when empty.
pub(crate) fn opt_list_to_text(items: &[String]) -> Result<Option<String>, StoreError> {
    if items.is_empty() {
        Ok(None)
    } else {
        list_to_text(items).map(Some)
    }
}

impl Store {
    /// Stores a new grant.
    pub async fn insert_grant(&self, g: &Grant) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scopes, auth_time, amr, acr, \
             created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(list_to_text(&g.scopes)?)
        .bind(nanos(g.auth_time)?)
        .bind(opt_list_to_text(&g.amr)?)
        .bind(g.acr.as_deref())
        .bind(nanos(g.created_at)?)
        .bind(opt_nanos(g.revoked_at)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// The grant with this id.
    pub async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        sqlx::query(
            "SELECT id, client_id, user_id, scopes, auth_time, amr, acr, created_at, revoked_at \
             FROM grants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    /// Revokes a grant and everything issued under it: unspent codes and refresh tokens are
    /// spent, recorded access tokens join the revocation list. Returns the revoked access tokens
    /// (`jti`, expiry) so the caller can update its in-memory list at once. Idempotent.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let now = nanos(now)?;
        let mut tx = self.pool.begin().await.map_err(map)?;
        for sql in [
            "UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET used_at = $1 WHERE grant_id = $2 AND used_at IS NULL",
            "UPDATE authorization_codes SET used_at = $1 WHERE grant_id = $2 AND used_at IS NULL",
            "INSERT INTO access_token_revocations (jti, expires_at, revoked_at) \
             SELECT jti, expires_at, $1 FROM grant_access_tokens WHERE grant_id = $2 \
             ON CONFLICT (jti) DO NOTHING",
        ] {
            sqlx::query(sql)
                .bind(now)
                .bind(grant_id)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        let rows =
            sqlx::query("SELECT jti, expires_at FROM grant_access_tokens WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(map)?;
        tx.commit().await.map_err(map)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("jti").map_err(map)?,
                    instant(r.try_get("expires_at").map_err(map)?)?,
                ))
            })
            .collect()
    }

    /// Stores a new authorization code.
    pub async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
             code_challenge, nonce, scopes, expires_at, used_at, dpop_jkt, resources) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&c.code_hash)
        .bind(&c.grant_id)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(c.nonce.as_deref())
        .bind(list_to_text(&c.scopes)?)
        .bind(nanos(c.expires_at)?)
        .bind(opt_nanos(c.used_at)?)
        .bind(c.dpop_jkt.as_deref())
        .bind(opt_list_to_text(&c.resources)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// Spends a code: exactly one caller gets [`CodeRedemption::Fresh`], even across instances.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let at = nanos(now)?;
        let won = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at >= $1",
        )
        .bind(at)
        .bind(code_hash)
        .execute(&self.pool)
        .await
        .map_err(map)?
        .rows_affected()
            == 1;
        let code = sqlx::query(
            "SELECT code_hash, grant_id, client_id, redirect_uri, code_challenge, nonce, scopes, \
             expires_at, used_at, dpop_jkt, resources FROM authorization_codes \
             WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(code_from_row)
        .transpose()?;
        Ok(match code {
            Some(code) if won => CodeRedemption::Fresh(code),
            Some(code) if code.used_at.is_some() => CodeRedemption::Reused(code),
            _ => CodeRedemption::Invalid,
        })
    }

    /// Stores a new refresh token.
    pub async fn insert_refresh_token(&self, t: &RefreshToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scopes, expires_at, \
             used_at, dpop_jkt, resources) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.token_hash)
        .bind(&t.grant_id)
        .bind(&t.client_id)
        .bind(list_to_text(&t.scopes)?)
        .bind(nanos(t.expires_at)?)
        .bind(opt_nanos(t.used_at)?)
        .bind(t.dpop_jkt.as_deref())
        .bind(opt_list_to_text(&t.resources)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// Spends a live refresh token and stores its successor in one transaction: exactly one
    /// caller gets [`RefreshRotation::Rotated`].
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshRotation, StoreError> {
        let at = nanos(now)?;
        let mut tx = self.pool.begin().await.map_err(map)?;
        let won = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at >= $1",
        )
        .bind(at)
        .bind(token_hash)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected()
            == 1;
        let old = sqlx::query(
            "SELECT token_hash, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt, \
             resources FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .as_ref()
        .map(refresh_from_row)
        .transpose()?;
        let outcome = match old {
            Some(old) if won => {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, scopes, \
                     expires_at, used_at, dpop_jkt, resources) \
                     VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
                )
                .bind(&successor.token_hash)
                .bind(&old.grant_id)
                .bind(&old.client_id)
                .bind(list_to_text(&successor.scopes)?)
                .bind(nanos(successor.expires_at)?)
                .bind(successor.dpop_jkt.as_deref())
                .bind(opt_list_to_text(&successor.resources)?)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
                RefreshRotation::Rotated(old)
            }
            Some(old) if old.used_at.is_some() => RefreshRotation::Reused(old),
            _ => RefreshRotation::Invalid,
        };
        tx.commit().await.map_err(map)?;
        Ok(outcome)
    }

    /// The refresh token with this hash (revocation endpoint).
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        sqlx::query(
            "SELECT token_hash, grant_id, client_id, scopes, expires_at, used_at, dpop_jkt, \
             resources FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    /// Records an access token issued under a grant, so revoking the grant revokes it.
    pub async fn record_access_token(
        &self,
        jti: &str,
        grant_id: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO grant_access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(jti)
        .bind(grant_id)
        .bind(nanos(expires_at)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// The grant an access token was recorded under (`None`: not a user grant's token).
    pub async fn access_token_grant(&self, jti: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT grant_id FROM grant_access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .map(|r| r.try_get::<String, _>("grant_id").map_err(map))
            .transpose()
    }

    /// Adds an access token to the revocation list (kept until it expires). Idempotent.
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_token_revocations (jti, expires_at, revoked_at) \
             VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(nanos(expires_at)?)
        .bind(nanos(now)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// Access-token revocations recorded at or after `since` (by any instance): `(jti, expiry,
    /// revoked at)`.
    pub async fn revocations_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime, OffsetDateTime)>, StoreError> {
        let rows = sqlx::query(
            "SELECT jti, expires_at, revoked_at FROM access_token_revocations \
             WHERE revoked_at >= $1",
        )
        .bind(nanos(since)?)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("jti").map_err(map)?,
                    instant(r.try_get("expires_at").map_err(map)?)?,
                    instant(r.try_get("revoked_at").map_err(map)?)?,
                ))
            })
            .collect()
    }

    /// Remembers a DPoP proof (`proof_key`: the caller's digest of its key and `jti`) until
    /// `expires_at`: true the first time, false on a replay, across every instance on the
    /// same database.
    pub async fn remember_dpop_proof(
        &self,
        proof_key: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO dpop_proofs (proof_key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (proof_key) DO NOTHING",
        )
        .bind(proof_key)
        .bind(nanos(expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Remembers a `private_key_jwt` assertion id: true the first time, false on a replay.
    pub async fn remember_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(nanos(expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a pushed authorization request.
    pub async fn insert_pushed_request(&self, p: &PushedRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pushed_requests (id, client_id, parameters, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&p.id)
        .bind(&p.client_id)
        .bind(&p.parameters)
        .bind(nanos(p.expires_at)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(map)
    }

    /// Takes (reads and deletes) a live pushed request: each `request_uri` works once.
    pub async fn take_pushed_request(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PushedRequest>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM pushed_requests WHERE id = $1 \
             RETURNING id, client_id, parameters, expires_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let Some(row) = row else { return Ok(None) };
        let request = PushedRequest {
            id: row.try_get("id").map_err(map)?,
            client_id: row.try_get("client_id").map_err(map)?,
            parameters: row.try_get("parameters").map_err(map)?,
            expires_at: instant(row.try_get("expires_at").map_err(map)?)?,
        };
        Ok((request.expires_at >= now).then_some(request))
    }
}
