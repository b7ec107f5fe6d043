//! The registration service: RFC 7591 registration, RFC 7592 read, update and delete, and the
//! admin API's initial access tokens.
//!
//! - Registering needs an initial access token (`Authorization: Bearer`) unless the policy is
//!   open; a token presented when registration is open must still be valid. Each client
//!   registered with a token counts against its cap atomically (see
//!   [`crate::storage::Store::claim_initial_access_token`]).
//! - The server assigns `client_id` (a UUIDv7), the secret (for `client_secret_basic`, stored
//!   as a PBKDF2 hash like every client's) and the registration access token (stored as its
//!   SHA-256); both values are shown once, in the 201 answer.
//! - The management URI answers only to that client's registration access token, compared in
//!   constant time; anything else (another client's token, an unknown client) is the same
//!   `invalid_token`, so the URI tells nothing about which clients exist.
//! - Reads cannot return the client secret (only its hash is kept); updates keep it unless the
//!   method changes to one that needs a secret and the client had none.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::error::{MetadataError, RegistrationError};
use super::metadata::{ClientMetadataDocument, parse_object, read_document};
use super::policy::{Accepted, RegistrationPolicy};
use super::records::{ClientRegistrationRecord, CreatedBy, InitialAccessToken, RegisteredExtras};
use super::software_statement;
use crate::model::{Client, ClientAuthMethod};
use crate::paths;
use crate::services::clients::RegistrationError as ClientChangeError;
use crate::services::{ClientRegistration, ClientService, IssuerCell};
use crate::storage::Store;
use crate::tokens::{opaque_secret, secret_hash};

/// Longest bearer token or client id considered (longer ones are refused unhashed).
const MAX_PRESENTED_LEN: usize = 512;
/// Most clients one initial access token may register.
pub const MAX_CLIENTS_PER_TOKEN: i64 = 10_000;
/// What an unknown client's stored hash is compared with, so both paths do the same work.
const NO_HASH: &str = "0000000000000000000000000000000000000000000";

/// Registration, management and initial access tokens.
#[derive(Debug)]
pub struct RegistrationService {
    store: Store,
    clients: Arc<ClientService>,
    policy: RegistrationPolicy,
    issuer: IssuerCell,
    max_token_lifetime: time::Duration,
}

impl RegistrationService {
    /// A service registering into `clients` under `policy`; initial access tokens live at most
    /// `max_token_lifetime`.
    pub fn new(
        store: Store,
        clients: Arc<ClientService>,
        policy: RegistrationPolicy,
        issuer: IssuerCell,
        max_token_lifetime: time::Duration,
    ) -> Self {
        Self {
            store,
            clients,
            policy,
            issuer,
            max_token_lifetime,
        }
    }

    /// Whether the registration endpoint exists (discovery lists it then).
    pub fn enabled(&self) -> bool {
        self.policy.enabled
    }

    /// Whether registering needs no initial access token.
    pub fn open(&self) -> bool {
        self.policy.open
    }

    /// `POST /oauth2/v1/register`: registers a client from `body` and returns the RFC 7591
    /// §3.2.1 answer (with the secret and registration access token, shown once).
    pub async fn register(
        &self,
        bearer: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Map<String, Value>, RegistrationError> {
        if !self.policy.enabled {
            return Err(RegistrationError::Disabled);
        }
        let token = match bearer {
            Some(token) => Some(self.usable_token(token, now).await?),
            None if self.policy.open => None,
            None => {
                return Err(RegistrationError::InvalidToken(
                    "an initial access token is required",
                ));
            }
        };
        let (doc, statement) = self.read_body(body, now)?;
        if doc.client_id.is_some() || doc.client_secret.is_some() {
            return Err(MetadataError::metadata(
                "client_id and client_secret are assigned by the server",
            )
            .into());
        }
        let mut accepted = self.policy.check(&doc)?;
        accepted.extras.software_statement = statement;
        if let Some(token) = &token
            && !self
                .store
                .claim_initial_access_token(&token.id, now)
                .await?
        {
            return Err(RegistrationError::InvalidToken(
                "the initial access token is expired, revoked or used up",
            ));
        }
        let token_id = token.map(|t| t.id);
        let created = self.create(accepted, token_id.clone(), now).await;
        if created.is_err()
            && let Some(id) = &token_id
            && let Err(e) = self.store.release_initial_access_token(id).await
        {
            tracing::warn!(error = %e, "could not give back an initial access token's slot");
        }
        created
    }

    async fn create(
        &self,
        accepted: Accepted,
        token_id: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let client_id = uuid::Uuid::now_v7().to_string();
        let mut metadata = accepted.metadata;
        if metadata.client_name.is_empty() {
            metadata.client_name.clone_from(&client_id);
        }
        let (client, secret) = self
            .clients
            .register(
                ClientRegistration {
                    client_id: client_id.clone(),
                    metadata,
                },
                now,
            )
            .await
            .map_err(client_change)?;
        let registration_token =
            opaque_secret().map_err(|e| RegistrationError::Internal(e.to_string()))?;
        let record = ClientRegistrationRecord {
            client_id: client_id.clone(),
            registration_token_hash: secret_hash(&registration_token),
            created_by: if token_id.is_some() {
                CreatedBy::InitialAccessToken
            } else {
                CreatedBy::Open
            },
            initial_access_token_id: token_id,
            extras: accepted.extras,
            created_at: now,
        };
        if let Err(e) = self.store.insert_client_registration(&record).await {
            if let Err(undo) = self.clients.delete(&client_id).await {
                tracing::warn!(error = %undo, %client_id, "could not undo a failed registration");
            }
            return Err(e.into());
        }
        tracing::info!(
            %client_id,
            created_by = record.created_by.as_str(),
            "client registered dynamically"
        );
        self.document(
            &client,
            &record.extras,
            secret.as_deref(),
            Some(&registration_token),
        )
    }

    /// `GET /oauth2/v1/register/{client_id}` (RFC 7592 §2.1).
    pub async fn read(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let (record, client) = self.authorize(client_id, bearer).await?;
        self.document(&client, &record.extras, None, None)
    }

    /// `PUT /oauth2/v1/register/{client_id}` (RFC 7592 §2.2): replaces the metadata with the
    /// same rules as registering. `client_id` must be the client's; a `client_secret`, if
    /// sent, must be its current secret.
    pub async fn update(
        &self,
        client_id: &str,
        bearer: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let (_, current) = self.authorize(client_id, bearer).await?;
        let (doc, statement) = self.read_body(body, now)?;
        if doc.client_id.as_deref() != Some(client_id) {
            return Err(
                MetadataError::metadata("client_id must be this client's client_id").into(),
            );
        }
        if let Some(secret) = &doc.client_secret
            && !secret_matches(&current, secret, now).await?
        {
            return Err(
                MetadataError::metadata("client_secret is not this client's secret").into(),
            );
        }
        let mut accepted = self.policy.check(&doc)?;
        accepted.extras.software_statement = statement;
        let mut metadata = accepted.metadata;
        if metadata.client_name.is_empty() {
            metadata.client_name = client_id.to_owned();
        }
        let needs_secret = matches!(
            metadata.token_endpoint_auth_method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        );
        let client = Client {
            client_id: client_id.to_owned(),
            metadata,
            enabled: current.enabled,
            secrets: if needs_secret {
                current.secrets.clone()
            } else {
                Vec::new()
            },
            created_at: current.created_at,
        };
        let new_secret = self
            .clients
            .replace(client.clone(), needs_secret && current.secrets.is_empty())
            .await
            .map_err(client_change)?;
        self.store
            .update_client_registration(client_id, &accepted.extras, now)
            .await?;
        tracing::info!(%client_id, "dynamically registered client updated");
        self.document(&client, &accepted.extras, new_secret.as_deref(), None)
    }

    /// `DELETE /oauth2/v1/register/{client_id}` (RFC 7592 §2.3): the client is deleted as the
    /// admin API deletes one (its refresh tokens and client authentication stop working).
    pub async fn delete(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<(), RegistrationError> {
        self.authorize(client_id, bearer).await?;
        match self.clients.delete(client_id).await {
            Ok(()) | Err(ClientChangeError::NotFound) => {}
            Err(e) => return Err(client_change(e)),
        }
        self.store.delete_client_registration(client_id).await?;
        tracing::info!(%client_id, "dynamically registered client deleted");
        Ok(())
    }

    /// Creates an initial access token for at most `max_clients` clients, valid for
    /// `lifetime`; returns it and its value (shown once).
    pub async fn create_initial_access_token(
        &self,
        max_clients: i64,
        lifetime: time::Duration,
        now: OffsetDateTime,
    ) -> Result<(InitialAccessToken, String), RegistrationError> {
        if !(1..=MAX_CLIENTS_PER_TOKEN).contains(&max_clients) {
            return Err(RegistrationError::Invalid(format!(
                "max_clients must be between 1 and {MAX_CLIENTS_PER_TOKEN}"
            )));
        }
        if lifetime < time::Duration::MINUTE || lifetime > self.max_token_lifetime {
            return Err(RegistrationError::Invalid(format!(
                "expires_in must be between 60 and {} seconds \
                 (registration.max_initial_access_token_lifetime)",
                self.max_token_lifetime.whole_seconds()
            )));
        }
        let value = opaque_secret().map_err(|e| RegistrationError::Internal(e.to_string()))?;
        let token = InitialAccessToken {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: secret_hash(&value),
            max_clients,
            clients_created: 0,
            created_at: now,
            expires_at: now + lifetime,
            revoked_at: None,
        };
        self.store.insert_initial_access_token(&token).await?;
        Ok((token, value))
    }

    /// Every initial access token (without values).
    pub async fn initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessToken>, RegistrationError> {
        Ok(self.store.initial_access_tokens().await?)
    }

    /// Revokes an initial access token (clients it registered stay).
    pub async fn revoke_initial_access_token(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<(), RegistrationError> {
        if id.len() > MAX_PRESENTED_LEN {
            return Err(RegistrationError::NotFound);
        }
        if self.store.revoke_initial_access_token(id, now).await? {
            Ok(())
        } else {
            Err(RegistrationError::NotFound)
        }
    }

    /// The body's metadata, with a verified software statement's claims over it.
    fn read_body(
        &self,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(ClientMetadataDocument, Option<String>), MetadataError> {
        let mut members = parse_object(body)?;
        let statement = match members.remove("software_statement") {
            None | Some(Value::Null) => None,
            Some(Value::String(statement)) => Some(statement),
            Some(_) => {
                return Err(MetadataError::statement(
                    "software_statement must be a string (a compact JWS)",
                ));
            }
        };
        if let Some(statement) = &statement {
            let claims =
                software_statement::verify(statement, self.policy.statement_keys.as_ref(), now)?;
            members.extend(claims);
        }
        Ok((read_document(members)?, statement))
    }

    /// The initial access token `presented`, if usable at `now`.
    async fn usable_token(
        &self,
        presented: &str,
        now: OffsetDateTime,
    ) -> Result<InitialAccessToken, RegistrationError> {
        let refused = RegistrationError::InvalidToken(
            "the initial access token is unknown, expired, revoked or used up",
        );
        if presented.len() > MAX_PRESENTED_LEN {
            return Err(refused);
        }
        let hash = secret_hash(presented);
        match self.store.initial_access_token_by_hash(&hash).await? {
            Some(token)
                if verify_slices_are_equal(token.token_hash.as_bytes(), hash.as_bytes())
                    .is_ok()
                    && token.usable(now) =>
            {
                Ok(token)
            }
            _ => Err(refused),
        }
    }

    /// The registration record and client when `bearer` is `client_id`'s registration access
    /// token; `invalid_token` otherwise.
    async fn authorize(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<(ClientRegistrationRecord, Arc<Client>), RegistrationError> {
        if !self.policy.enabled {
            return Err(RegistrationError::Disabled);
        }
        let refused = RegistrationError::InvalidToken(
            "not a valid registration access token for this client",
        );
        let Some(bearer) = bearer else {
            return Err(RegistrationError::InvalidToken(
                "a registration access token is required",
            ));
        };
        if bearer.len() > MAX_PRESENTED_LEN || client_id.len() > MAX_PRESENTED_LEN {
            return Err(refused);
        }
        let presented = secret_hash(bearer);
        let record = self.store.client_registration(client_id).await?;
        let expected = record
            .as_ref()
            .map_or(NO_HASH, |r| r.registration_token_hash.as_str());
        let matches = verify_slices_are_equal(presented.as_bytes(), expected.as_bytes()).is_ok();
        let (true, Some(record)) = (matches, record) else {
            return Err(refused);
        };
        let Some(client) = self.clients.get(client_id).await? else {
            return Err(refused);
        };
        Ok((record, client))
    }

    /// The RFC 7591 §3.2.1 / RFC 7592 §3 answer for `client`.
    fn document(
        &self,
        client: &Client,
        extras: &RegisteredExtras,
        secret: Option<&str>,
        registration_token: Option<&str>,
    ) -> Result<Map<String, Value>, RegistrationError> {
        let issuer = self
            .issuer
            .get()
            .map_err(|_| RegistrationError::Internal("the issuer is not known yet".to_owned()))?;
        let m = &client.metadata;
        let mut doc = match serde_json::to_value(extras) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let jwks = m
            .jwks
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok());
        let fields = json!({
            "client_id": client.client_id,
            "client_id_issued_at": client.created_at.unix_timestamp(),
            "client_name": m.client_name,
            "token_endpoint_auth_method": m.token_endpoint_auth_method.as_str(),
            "grant_types": m.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "response_types": m.response_types(),
            "redirect_uris": m.redirect_uris,
            "post_logout_redirect_uris": m.post_logout_redirect_uris,
            "scope": m.scope.join(" "),
            "dpop_bound_access_tokens": m.dpop_bound_access_tokens,
            "registration_client_uri":
                format!("{}/{}", issuer.endpoint(paths::REGISTER), client.client_id),
        });
        if let Value::Object(fields) = fields {
            doc.extend(fields);
        }
        if let Some(jwks) = jwks {
            doc.insert("jwks".into(), jwks);
        }
        if let Some(secret) = secret {
            doc.insert("client_secret".into(), secret.into());
        }
        if !client.secrets.is_empty() || secret.is_some() {
            doc.insert("client_secret_expires_at".into(), 0.into());
        }
        if let Some(token) = registration_token {
            doc.insert("registration_access_token".into(), token.into());
        }
        Ok(doc)
    }
}

/// Whether `presented` is one of `client`'s unexpired secrets (PBKDF2, off the async workers).
async fn secret_matches(
    client: &Client,
    presented: &str,
    now: OffsetDateTime,
) -> Result<bool, RegistrationError> {
    if presented.len() > MAX_PRESENTED_LEN {
        return Ok(false);
    }
    let hashes: Vec<String> = client
        .secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|at| at > now))
        .map(|s| s.hash.clone())
        .collect();
    let presented = zeroize::Zeroizing::new(presented.to_owned());
    tokio::task::spawn_blocking(move || {
        if hashes.is_empty() {
            cryptoutil_realm::password::dummy_verify(&presented);
            return false;
        }
        hashes.iter().any(|hash| {
            cryptoutil_realm::PasswordHash::parse(hash).is_ok_and(|h| h.verify(&presented))
        })
    })
    .await
    .map_err(|e| RegistrationError::Internal(e.to_string()))
}

/// A client change refused by the client registry, as a registration error.
fn client_change(e: ClientChangeError) -> RegistrationError {
    match e {
        ClientChangeError::Invalid(m) => MetadataError::metadata(m).into(),
        ClientChangeError::NotFound => RegistrationError::InvalidToken("no such client"),
        ClientChangeError::Conflict(m) | ClientChangeError::Internal(m) => {
            RegistrationError::Internal(m)
        }
        ClientChangeError::Store(e) => RegistrationError::Store(e),
    }
}
