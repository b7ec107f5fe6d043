//! The token endpoint's grants: `authorization_code` (PKCE S256, single use, reuse revokes),
//! `client_credentials`, and `refresh_token` (rotation, family revocation on reuse, narrowing
//! only); token exchange is [`super::exchange`], the device grant's polling
//! [`crate::device`]. Every grant takes `resource` (RFC 8707, see
//! [`crate::oauth::resource`]): the access token's `aud`, narrowing what was granted.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;

use super::errors::{internal, invalid_grant, storage};
use super::exchange::TokenExchange;
use super::minting::TokenMinter;
use crate::device::service::DeviceService;
use crate::model::{Client, GrantType, RefreshToken};
use crate::oauth::scope::Scopes;
use crate::oauth::{ErrorCode, FormParams, OAuthError, pkce, resource};
use crate::revocation::RevocationList;
use crate::storage::{CodeRedemption, RefreshRotation, Store};
use crate::tokens;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The JWS access token.
    pub access_token: String,
    /// `DPoP` when the access token is bound to a DPoP key (RFC 9449 §5), else `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// A new refresh token (only with `offline_access`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (only with `openid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The type of the issued token (token exchange only, RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// The `token_type` of an access token bound to `dpop_jkt` (or not).
fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// Scopes that only make sense with a user.
const USER_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The token endpoint's grants.
#[derive(Debug)]
pub struct TokenService {
    store: Store,
    minter: TokenMinter,
    revocations: Arc<RevocationList>,
    refresh_token_lifetime: time::Duration,
    exchange: Option<TokenExchange>,
    device: Option<Arc<DeviceService>>,
}

impl TokenService {
    /// The grants over `store`, signing with `minter`; reuse revokes through `revocations`.
    pub fn new(
        store: Store,
        minter: TokenMinter,
        revocations: Arc<RevocationList>,
        refresh_token_lifetime: time::Duration,
    ) -> Self {
        Self {
            store,
            minter,
            revocations,
            refresh_token_lifetime,
            exchange: None,
            device: None,
        }
    }

    /// Enables the device authorization grant (RFC 8628); without it that grant is
    /// unsupported.
    #[must_use]
    pub fn with_device(mut self, device: Arc<DeviceService>) -> Self {
        self.device = Some(device);
        self
    }

    /// Enables the token exchange grant (RFC 8693); without it that grant is unsupported.
    #[must_use]
    pub fn with_exchange(mut self, exchange: TokenExchange) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// Revokes a grant and everything issued under it.
    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> Result<(), OAuthError> {
        self.revocations
            .revoke_grant(&self.store, grant_id, now)
            .await
            .map_err(storage)
    }

    /// Runs the grant named by `grant_type` for an authenticated client. `dpop_jkt` is the key
    /// of the request's verified DPoP proof, if it had one: the access token is then bound to it.
    pub async fn token(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = form.require("grant_type")?;
        let grant = GrantType::parse(grant_type)
            .filter(|g| *g != GrantType::TokenExchange || self.exchange.is_some())
            .filter(|g| *g != GrantType::DeviceCode || self.device.is_some())
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "grant_type must be authorization_code, client_credentials, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange or urn:ietf:params:oauth:grant-type:device_code",
                )
            })?;
        if !client.allows_grant(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use this grant type",
            ));
        }
        if client.metadata.dpop_bound_access_tokens && dpop_jkt.is_none() {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this client must use DPoP: send a DPoP proof",
            ));
        }
        // The span of one token issuance (only made when telemetry is on).
        let span = if cryptoutil_telemetry::enabled() {
            tracing::info_span!(
                "token",
                otel.name = "identity.token",
                grant_type,
                client_id = %client.client_id,
            )
        } else {
            tracing::Span::none()
        };
        async {
            match grant {
                GrantType::AuthorizationCode => {
                    self.exchange_code(client, form, dpop_jkt, now).await
                }
                GrantType::ClientCredentials => {
                    self.client_credentials(client, form, dpop_jkt, now)
                }
                GrantType::RefreshToken => self.refresh(client, form, dpop_jkt, now).await,
                GrantType::TokenExchange => match &self.exchange {
                    Some(exchange) => {
                        let issued = exchange
                            .exchange(client, form, &self.minter, dpop_jkt, now)
                            .await?;
                        Ok(TokenResponse {
                            access_token: issued.access_token,
                            token_type: token_type(dpop_jkt),
                            expires_in: issued.claims.exp - now.unix_timestamp(),
                            scope: issued.claims.scope,
                            refresh_token: None,
                            id_token: None,
                            issued_token_type: Some(issued.issued_token_type),
                        })
                    }
                    None => Err(OAuthError::new(
                        ErrorCode::UnsupportedGrantType,
                        "token exchange is not enabled",
                    )),
                },
                GrantType::DeviceCode => self.device_code(client, form, dpop_jkt, now).await,
            }
        }
        .instrument(span)
        .await
    }

    fn client_credentials(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let allowed: Vec<String> = client
            .metadata
            .scope
            .iter()
            .filter(|s| !USER_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect();
        let scopes = match form.get("scope") {
            Some(requested) => Scopes::parse(requested)?.narrow(&allowed)?.into_vec(),
            None => allowed,
        };
        let resources = resource::parse(&form.get_all("resource"))?;
        resource::allowed(client, &resources)?;
        let mut claims = self.minter.access_claims(
            client,
            &client.client_id,
            &scopes,
            client.metadata.tenant_id.as_deref(),
            None,
            &resources,
            now,
        )?;
        claims.cnf = TokenMinter::confirmation(dpop_jkt);
        let access_token = self.minter.sign_access_token(&claims)?;
        Ok(TokenResponse {
            access_token,
            token_type: token_type(dpop_jkt),
            expires_in: claims.exp - now.unix_timestamp(),
            scope: claims.scope,
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        })
    }

    async fn exchange_code(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form.require("code")?;
        let redirect_uri = form.require("redirect_uri")?;
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE S256)"))?;
        let requested = resource::parse(&form.get_all("resource"))?;
        let code = match self
            .store
            .redeem_code(&tokens::secret_hash(code), now)
            .await
            .map_err(storage)?
        {
            CodeRedemption::Fresh(code) => code,
            CodeRedemption::Reused(code) => {
                tracing::warn!(
                    client_id = %client.client_id,
                    "authorization code presented again: revoking what it issued"
                );
                self.revoke_grant(&code.grant_id, now).await?;
                return Err(invalid_grant(
                    "the authorization code was already used; the tokens it issued are revoked",
                ));
            }
            CodeRedemption::Invalid => {
                return Err(invalid_grant(
                    "the authorization code is invalid or expired",
                ));
            }
        };
        if code.client_id != client.client_id {
            return Err(invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if code.redirect_uri != redirect_uri {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        pkce::verify(verifier, &code.code_challenge)?;
        // RFC 9449 §10: a code bound with dpop_jkt is redeemed only with a proof of that key.
        if let Some(bound) = &code.dpop_jkt
            && dpop_jkt != Some(bound.as_str())
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the authorization code is bound to another DPoP key (dpop_jkt)",
            ));
        }
        let resources = resource::narrow(requested, &code.resources)?;
        resource::allowed(client, &resources)?;
        let grant = self
            .store
            .grant(&code.grant_id)
            .await
            .map_err(storage)?
            .filter(|g| g.revoked_at.is_none())
            .ok_or_else(|| invalid_grant("the grant was revoked"))?;
        let audience = Resources {
            token: &resources,
            granted: &code.resources,
        };
        self.issue_user_tokens(
            client,
            &grant,
            &code.scopes,
            audience,
            code.nonce,
            None,
            dpop_jkt,
            now,
        )
        .await
    }

    /// The device grant (RFC 8628 §3.4): the approved, now spent, device authorization's
    /// grant gets the same tokens an authorization code would.
    async fn device_code(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(device) = &self.device else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "the device authorization grant is not enabled",
            ));
        };
        let device_code = form.require("device_code")?;
        let approved = device.redeem(client, device_code, dpop_jkt, now).await?;
        let grant_id = approved
            .grant_id
            .as_deref()
            .ok_or_else(|| internal("device grant", "an approved authorization has no grant"))?;
        let grant = self
            .store
            .grant(grant_id)
            .await
            .map_err(storage)?
            .filter(|g| g.revoked_at.is_none())
            .ok_or_else(|| invalid_grant("the grant was revoked"))?;
        let audience = Resources {
            token: &approved.resources,
            granted: &approved.resources,
        };
        self.issue_user_tokens(
            client,
            &grant,
            &approved.scopes,
            audience,
            None,
            None,
            dpop_jkt,
            now,
        )
        .await
    }

    async fn refresh(
        &self,
        client: &Client,
        form: &FormParams,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = form.require("refresh_token")?;
        let requested = resource::parse(&form.get_all("resource"))?;
        let hash = tokens::secret_hash(presented);
        let old = self
            .store
            .refresh_token(&hash)
            .await
            .map_err(storage)?
            .ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
        if old.client_id != client.client_id {
            tracing::warn!(
                client_id = %client.client_id,
                "refresh token presented by another client: revoking its family"
            );
            self.revoke_grant(&old.grant_id, now).await?;
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        // RFC 9449 §5: a bound refresh token (public clients) needs a proof of its key. Checked
        // before rotation, so a refused attempt does not spend the token.
        if let Some(bound) = &old.dpop_jkt
            && dpop_jkt != Some(bound.as_str())
        {
            return Err(invalid_grant(
                "the refresh token is bound to a DPoP key: send a proof of that key",
            ));
        }
        let scopes = match form.get("scope") {
            Some(requested) => Scopes::parse(requested)?.narrow(&old.scopes)?.into_vec(),
            None => old.scopes.clone(),
        };
        let resources = resource::narrow(requested, &old.resources)?;
        resource::allowed(client, &resources)?;
        let secret = tokens::opaque_secret().map_err(|e| internal("random", e))?;
        let successor = RefreshToken {
            token_hash: tokens::secret_hash(&secret),
            grant_id: old.grant_id.clone(),
            client_id: old.client_id.clone(),
            scopes: old.scopes.clone(),
            dpop_jkt: old.dpop_jkt.clone(),
            resources: old.resources.clone(),
            expires_at: old.expires_at,
            used_at: None,
        };
        match self
            .store
            .rotate_refresh_token(&hash, &successor, now)
            .await
            .map_err(storage)?
        {
            RefreshRotation::Rotated(_) => {}
            RefreshRotation::Reused(spent) => {
                tracing::warn!(
                    client_id = %client.client_id,
                    "spent refresh token presented again: revoking its family"
                );
                self.revoke_grant(&spent.grant_id, now).await?;
                return Err(invalid_grant(
                    "the refresh token was already used; its family is revoked",
                ));
            }
            RefreshRotation::Invalid => {
                return Err(invalid_grant("the refresh token is invalid or expired"));
            }
        }
        let grant = self
            .store
            .grant(&old.grant_id)
            .await
            .map_err(storage)?
            .filter(|g| g.revoked_at.is_none())
            .ok_or_else(|| invalid_grant("the grant was revoked"))?;
        let audience = Resources {
            token: &resources,
            granted: &old.resources,
        };
        self.issue_user_tokens(
            client,
            &grant,
            &scopes,
            audience,
            None,
            Some(secret),
            dpop_jkt,
            now,
        )
        .await
    }

    /// Access token (recorded under the grant), ID token with `openid`, refresh token with
    /// `offline_access` (a new family member when `rotated` is given, else the family's first).
    /// With `dpop_jkt` the access token is bound to that key, and so is a public client's new
    /// refresh token family (RFC 9449 §5).
    #[allow(clippy::too_many_arguments)]
    async fn issue_user_tokens(
        &self,
        client: &Client,
        grant: &crate::model::Grant,
        scopes: &[String],
        resources: Resources<'_>,
        nonce: Option<String>,
        rotated: Option<String>,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let user = self
            .store
            .user(&grant.user_id)
            .await
            .map_err(storage)?
            .filter(|u| u.enabled)
            .ok_or_else(|| invalid_grant("the user is unknown or disabled"))?;
        let mut claims = self.minter.access_claims(
            client,
            &user.id,
            scopes,
            user.tenant_id.as_deref(),
            Some(grant.auth_time),
            resources.token,
            now,
        )?;
        claims.acr = grant.acr.clone();
        claims.amr = Some(grant.amr.clone());
        claims.cnf = TokenMinter::confirmation(dpop_jkt);
        let access_token = self.minter.sign_access_token(&claims)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
        self.store
            .record_access_token(&claims.jti, &grant.id, expires_at)
            .await
            .map_err(storage)?;
        let id_token = if scopes.iter().any(|s| s == "openid") {
            Some(
                self.minter
                    .id_token(grant, &user, scopes, nonce, &access_token, now)?,
            )
        } else {
            None
        };
        let refresh_token = match rotated {
            Some(secret) => Some(secret),
            None if client.allows_grant(GrantType::RefreshToken)
                && scopes.iter().any(|s| s == "offline_access") =>
            {
                let secret = tokens::opaque_secret().map_err(|e| internal("random", e))?;
                self.store
                    .insert_refresh_token(&RefreshToken {
                        token_hash: tokens::secret_hash(&secret),
                        grant_id: grant.id.clone(),
                        client_id: client.client_id.clone(),
                        scopes: scopes.to_vec(),
                        dpop_jkt: dpop_jkt.filter(|_| client.is_public()).map(str::to_owned),
                        resources: resources.granted.to_vec(),
                        expires_at: now + self.refresh_token_lifetime,
                        used_at: None,
                    })
                    .await
                    .map_err(storage)?;
                Some(secret)
            }
            None => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: token_type(dpop_jkt),
            expires_in: claims.exp - now.unix_timestamp(),
            scope: claims.scope,
            refresh_token,
            id_token,
            issued_token_type: None,
        })
    }
}

/// The resources of a user token request: the access token's (`aud`) and the grant's (kept on
/// a new refresh token, so a refresh may narrow within them later).
#[derive(Debug, Clone, Copy)]
struct Resources<'a> {
    token: &'a [String],
    granted: &'a [String],
}
