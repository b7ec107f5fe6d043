//! Introspection (RFC 7662), revocation (RFC 7009) and userinfo (OIDC Core §5.3).
//!
//! Access tokens are checked in memory: signature against the current key ring, expiry, and
//! the revocation list. Refresh tokens are looked up by hash.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::errors::storage;
use super::issuer::IssuerCell;
use crate::model::Client;
use crate::oauth::{ErrorCode, OAuthError};
use crate::revocation::RevocationList;
use crate::signing::KeyManager;
use crate::storage::Store;
use crate::tokens::{self, AccessTokenClaims, TokenError};

/// An introspection response: `{"active": false}` or the token's claims.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Space-separated scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `DPoP` for DPoP-bound access tokens (RFC 9449 §6.2), `Bearer` for other access tokens,
    /// `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audiences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The DPoP key a bound access token is confirmed by (`cnf.jkt`, RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<tokens::Confirmation>,
    /// The actor of a delegated token (RFC 8693 §4.1, nested for chains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<tokens::Actor>,
    /// When the user signed in (user tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication context class the user's sign-in reached (user tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How the user signed in (`amr`, RFC 8176; user tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }
}

/// Userinfo claims by scope.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// Subject.
    pub sub: String,
    /// `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// Least time between two key reloads caused by tokens with an unknown `kid`.
pub const UNKNOWN_KID_RELOAD: time::Duration = time::Duration::SECOND;

/// Longest accepted token (access tokens are well under 2 KiB; refresh tokens 43 characters).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Introspection, revocation and userinfo: what an issued token is worth now.
#[derive(Debug)]
pub struct InspectionService {
    store: Store,
    keys: Arc<KeyManager>,
    issuer: IssuerCell,
    revocations: Arc<RevocationList>,
}

impl InspectionService {
    /// Checks tokens signed by `keys` for `issuer` against `revocations`.
    pub fn new(
        store: Store,
        keys: Arc<KeyManager>,
        issuer: IssuerCell,
        revocations: Arc<RevocationList>,
    ) -> Self {
        Self {
            store,
            keys,
            issuer,
            revocations,
        }
    }

    /// A live access token issued by this server: signature, type, expiry, issuer and the
    /// revocation list checked.
    ///
    /// A token signed with a key this instance does not know yet (another instance rotated a
    /// moment ago) makes it re-read the keys, at most once per [`UNKNOWN_KID_RELOAD`] however
    /// many such tokens arrive, and check again.
    pub async fn live_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Option<AccessTokenClaims> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let claims = match self.keys.ring().verify_access_token(token, now) {
            Ok(claims) => claims,
            Err(TokenError::UnknownKey) => {
                let ring = match self
                    .keys
                    .refresh_if_older(&self.store, UNKNOWN_KID_RELOAD, now)
                    .await
                {
                    Ok(ring) => ring,
                    Err(e) => {
                        tracing::warn!(error = %e, "signing key reload for an unknown kid failed");
                        return None;
                    }
                };
                ring.verify_access_token(token, now).ok()?
            }
            Err(_) => return None,
        };
        let issuer = self.issuer.url()?;
        (claims.iss == issuer && !self.revocations.is_revoked(&claims.jti)).then_some(claims)
    }

    /// Introspects `token` for `caller`. A caller sees its own tokens; a client registered with
    /// `introspect_any` (the KMS) sees every token.
    pub async fn introspect(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Introspection, OAuthError> {
        let may_see = |owner: &str| caller.metadata.introspect_any || owner == caller.client_id;
        if hint != Some("refresh_token")
            && let Some(claims) = self.live_access_token(token, now).await
        {
            if !may_see(&claims.client_id) {
                return Ok(Introspection::inactive());
            }
            return Ok(Introspection {
                active: true,
                scope: Some(claims.scope),
                client_id: Some(claims.client_id),
                token_type: Some(if claims.cnf.is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                }),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                sub: Some(claims.sub),
                aud: Some(claims.aud.iter().map(str::to_owned).collect()),
                iss: Some(claims.iss),
                jti: Some(claims.jti),
                tenant_id: claims.tenant_id,
                cnf: claims.cnf,
                act: claims.act,
                auth_time: claims.auth_time,
                acr: claims.acr,
                amr: claims.amr,
            });
        }
        if token.len() > MAX_TOKEN_LEN || token.contains('.') {
            return Ok(Introspection::inactive());
        }
        let Some(refresh) = self
            .store
            .refresh_token(&tokens::secret_hash(token))
            .await
            .map_err(storage)?
        else {
            return Ok(Introspection::inactive());
        };
        if refresh.used_at.is_some() || refresh.expires_at < now || !may_see(&refresh.client_id) {
            return Ok(Introspection::inactive());
        }
        let Some(grant) = self
            .store
            .grant(&refresh.grant_id)
            .await
            .map_err(storage)?
            .filter(|g| g.revoked_at.is_none())
        else {
            return Ok(Introspection::inactive());
        };
        Ok(Introspection {
            active: true,
            scope: Some(refresh.scopes.join(" ")),
            client_id: Some(refresh.client_id),
            token_type: Some("refresh_token"),
            exp: Some(refresh.expires_at.unix_timestamp()),
            iat: Some(grant.created_at.unix_timestamp()),
            sub: Some(grant.user_id),
            iss: self.issuer.url().map(str::to_owned),
            auth_time: Some(grant.auth_time.unix_timestamp()),
            acr: grant.acr,
            amr: Some(grant.amr),
            ..Introspection::default()
        })
    }

    /// Revokes `token` if it was issued to `caller` (RFC 7009). Unknown tokens and tokens of
    /// other clients are ignored (the answer is 200 either way, so a client learns nothing about
    /// tokens that are not its own). Revoking a refresh token revokes its whole grant.
    pub async fn revoke(
        &self,
        caller: &Client,
        token: &str,
        hint: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), OAuthError> {
        if let Some(hint) = hint
            && hint != "access_token"
            && hint != "refresh_token"
        {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            ));
        }
        if let Some(claims) = self.live_access_token(token, now).await {
            if claims.client_id == caller.client_id {
                let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
                self.revocations
                    .revoke_access_token(&self.store, claims.jti, expires_at, now)
                    .await
                    .map_err(storage)?;
            }
            return Ok(());
        }
        if token.len() > MAX_TOKEN_LEN || token.contains('.') {
            return Ok(());
        }
        if let Some(refresh) = self
            .store
            .refresh_token(&tokens::secret_hash(token))
            .await
            .map_err(storage)?
            && refresh.client_id == caller.client_id
        {
            self.revocations
                .revoke_grant(&self.store, &refresh.grant_id, now)
                .await
                .map_err(storage)?;
        }
        Ok(())
    }

    /// The userinfo claims for an access token carrying `openid`. `dpop_jkt` is the key of the
    /// verified DPoP proof when the token came with the `DPoP` scheme: a DPoP-bound token is
    /// accepted only so and with a proof of its key, an unbound one only as `Bearer`
    /// (RFC 9449 §7).
    pub async fn userinfo(
        &self,
        token: &str,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<UserInfo, OAuthError> {
        let claims = self.live_access_token(token, now).await.ok_or_else(|| {
            OAuthError::bearer(
                ErrorCode::InvalidToken,
                "the access token is invalid, expired or revoked",
            )
        })?;
        match (claims.cnf.as_ref().map(|c| c.jkt.as_str()), dpop_jkt) {
            (None, None) => {}
            (Some(bound), Some(proven)) if bound == proven => {}
            (Some(_), None) => {
                return Err(OAuthError::bearer(
                    ErrorCode::InvalidToken,
                    "this access token is DPoP-bound: present it with the DPoP scheme and a proof",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(OAuthError::bearer(
                    ErrorCode::InvalidToken,
                    "the DPoP proof is signed with another key than the token is bound to",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::bearer(
                    ErrorCode::InvalidToken,
                    "this access token is not DPoP-bound: present it as Bearer",
                ));
            }
        }
        let scopes: Vec<&str> = claims.scope.split(' ').collect();
        if !scopes.contains(&"openid") {
            return Err(OAuthError::insufficient_scope("openid"));
        }
        let user = self
            .store
            .user(&claims.sub)
            .await
            .map_err(storage)?
            .filter(|u| u.enabled)
            .ok_or_else(|| {
                OAuthError::bearer(ErrorCode::InvalidToken, "the user is unknown or disabled")
            })?;
        let profile = scopes.contains(&"profile");
        let email = scopes.contains(&"email");
        Ok(UserInfo {
            sub: user.id,
            name: user.name.filter(|_| profile),
            given_name: user.given_name.filter(|_| profile),
            family_name: user.family_name.filter(|_| profile),
            preferred_username: profile.then_some(user.username),
            email: user.email.filter(|_| email),
            email_verified: email.then_some(user.email_verified),
        })
    }
}
