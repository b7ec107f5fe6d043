//! Signing access tokens (RFC 9068) and ID tokens with the current key ring.

use std::sync::Arc;

use time::OffsetDateTime;

use super::errors::internal;
use super::issuer::IssuerCell;
use crate::model::{Client, Grant, User};
use crate::oauth::{OAuthError, resource};
use crate::signing::KeyManager;
use crate::tokens::{self, AccessTokenClaims, IdTokenClaims};

/// Signs the tokens of one issuer.
#[derive(Debug)]
pub struct TokenMinter {
    keys: Arc<KeyManager>,
    issuer: IssuerCell,
    access_token_lifetime: time::Duration,
    id_token_lifetime: time::Duration,
}

impl TokenMinter {
    /// A minter signing with `keys` for `issuer`.
    pub fn new(
        keys: Arc<KeyManager>,
        issuer: IssuerCell,
        access_token_lifetime: time::Duration,
        id_token_lifetime: time::Duration,
    ) -> Self {
        Self {
            keys,
            issuer,
            access_token_lifetime,
            id_token_lifetime,
        }
    }

    /// The claims of an access token for `subject`, unsigned: `aud` is `resources` when given
    /// (RFC 8707), else every audience of the client, else the issuer. The caller may adjust
    /// them (`cnf`, `act`, an earlier `exp`, a user's `acr` and `amr`) before
    /// [`Self::sign_access_token`].
    #[allow(clippy::too_many_arguments)]
    pub fn access_claims(
        &self,
        client: &Client,
        subject: &str,
        scopes: &[String],
        tenant_id: Option<&str>,
        auth_time: Option<OffsetDateTime>,
        resources: &[String],
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, OAuthError> {
        let issuer = self.issuer.get()?;
        let audience = resource::audience(client, resources, &issuer.url);
        Ok(AccessTokenClaims {
            iss: issuer.url.clone(),
            sub: subject.to_owned(),
            aud: tokens::Audience::from_list(audience),
            client_id: client.client_id.clone(),
            scope: scopes.join(" "),
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now.unix_timestamp(),
            exp: (now + self.access_token_lifetime).unix_timestamp(),
            tenant_id: tenant_id.map(str::to_owned),
            auth_time: auth_time.map(OffsetDateTime::unix_timestamp),
            acr: None,
            amr: None,
            roles: None,
            cnf: None,
            act: None,
        })
    }

    /// The confirmation claim of a token bound to the DPoP key `dpop_jkt` (RFC 9449 §6.1).
    pub fn confirmation(dpop_jkt: Option<&str>) -> Option<tokens::Confirmation> {
        dpop_jkt.map(|jkt| tokens::Confirmation {
            jkt: jkt.to_owned(),
        })
    }

    /// Signs access-token claims with the current key.
    pub fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, OAuthError> {
        self.keys
            .ring()
            .sign_access_token(claims)
            .map_err(|e| internal("signing an access token", e))
    }

    /// The key ring's verification of one of this server's ID tokens (signature, `typ`, `kid`;
    /// times are the caller's to check).
    pub fn verify_id_token(&self, token: &str) -> Result<IdTokenClaims, tokens::TokenError> {
        self.keys.ring().verify_id_token_hint(token)
    }

    /// Signs an ID token for a user grant (its `auth_time`, `acr` and `amr`).
    pub fn id_token(
        &self,
        grant: &Grant,
        user: &User,
        scopes: &[String],
        nonce: Option<String>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<String, OAuthError> {
        let issuer = self.issuer.get()?;
        let ring = self.keys.ring();
        let alg = ring
            .signing_algorithm()
            .ok_or_else(|| internal("signing an ID token", "no signing key"))?;
        let profile = scopes.iter().any(|s| s == "profile");
        let email = scopes.iter().any(|s| s == "email");
        let claims = IdTokenClaims {
            iss: issuer.url.clone(),
            sub: user.id.clone(),
            aud: grant.client_id.clone(),
            azp: grant.client_id.clone(),
            nonce,
            auth_time: grant.auth_time.unix_timestamp(),
            acr: grant.acr.clone(),
            amr: grant.amr.clone(),
            at_hash: Some(tokens::at_hash(alg, access_token)),
            iat: now.unix_timestamp(),
            exp: (now + self.id_token_lifetime).unix_timestamp(),
            name: user.name.clone().filter(|_| profile),
            given_name: user.given_name.clone().filter(|_| profile),
            family_name: user.family_name.clone().filter(|_| profile),
            preferred_username: profile.then(|| user.username.clone()),
            email: user.email.clone().filter(|_| email),
            email_verified: email.then_some(user.email_verified),
        };
        ring.sign_id_token(&claims)
            .map_err(|e| internal("signing an ID token", e))
    }
}
