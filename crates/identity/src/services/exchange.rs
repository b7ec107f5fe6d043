//! Token exchange (RFC 8693): `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
//!
//! An authenticated client presents a `subject_token` (one of this server's live access tokens:
//! signature, issuer, expiry and revocation checked) and optionally an `actor_token` (also one
//! of ours, issued to the requesting client) and gets a short-lived access token for the same
//! subject, for a target among its own registered audiences (`resource`, `audience`), with at
//! most the subject token's scopes. The policy ([`decide`]):
//!
//! - **Same client**: a client exchanging its own token (no actor token) gets a re-targeted
//!   token; nobody new acts, so `act` stays what it was.
//! - **Delegation**: the subject token's client lists the requesting client in `may_act`: the
//!   new token's `act` names the actor (the actor token's `sub`/`client_id`, else the
//!   requesting client) with the subject token's own `act` nested inside (chains).
//! - **Impersonation**: otherwise, without an actor token, when the requesting client has
//!   `impersonation: true`: no new `act` (an existing chain is kept, never hidden).
//! - Anything else is refused with `invalid_request`, as RFC 8693 §2.2.2 requires for subject
//!   and actor tokens that are invalid or unacceptable by policy; a target the client may not
//!   get is `invalid_target`, a wider scope `invalid_scope`.
//!
//! ID tokens are not accepted as subject tokens: they carry no scope and no revocation handle,
//! so exchanging one would mint access beyond what the user approved (ARCHITECTURE.md,
//! Decisions). Issued tokens are `urn:ietf:params:oauth:token-type:access_token` (or `jwt` when
//! asked for: ours are JWTs), `Bearer`, never with a refresh token, and expire no later than
//! the subject (and actor) token, at most [`MAX_LIFETIME`] from now. An exchanged token is
//! recorded under the subject token's grant (when it has one), so revoking the user's grant
//! (refresh token revocation or reuse, code reuse) revokes what was exchanged from it, down a
//! chain.

use std::sync::Arc;

use time::OffsetDateTime;

use super::clients::ClientRegistry;
use super::errors::storage;
use super::inspection::InspectionService;
use super::minting::TokenMinter;
use crate::model::Client;
use crate::oauth::scope::Scopes;
use crate::oauth::{FormParams, OAuthError, resource};
use crate::storage::Store;
use crate::tokens::{AccessTokenClaims, Actor};

/// `urn:ietf:params:oauth:token-type:access_token`.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `urn:ietf:params:oauth:token-type:jwt`.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// `urn:ietf:params:oauth:token-type:id_token` (recognised, refused as a subject token).
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Longest life of an exchanged token.
pub const MAX_LIFETIME: time::Duration = time::Duration::minutes(5);
/// Longest `audience` value (a logical name, RFC 8693 §2.1).
pub const MAX_AUDIENCE_LEN: usize = 255;

/// A token issued by an exchange (the token endpoint renders it, RFC 8693 §2.2.1).
#[derive(Debug, Clone)]
pub struct ExchangedToken {
    /// The signed access token.
    pub access_token: String,
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// `issued_token_type`.
    pub issued_token_type: &'static str,
}

/// Token exchange over this server's own tokens and registered clients.
#[derive(Debug)]
pub struct TokenExchange {
    store: Store,
    inspection: Arc<InspectionService>,
    clients: Arc<ClientRegistry>,
}

impl TokenExchange {
    /// Verifies tokens through `inspection`, reads policies from `clients` and records
    /// exchanged tokens under their subject's grant in `store`.
    pub fn new(
        store: Store,
        inspection: Arc<InspectionService>,
        clients: Arc<ClientRegistry>,
    ) -> Self {
        Self {
            store,
            inspection,
            clients,
        }
    }

    /// Runs the grant for the authenticated `client`, minting with `minter`; with `dpop_jkt`
    /// the issued token is bound to that DPoP key (`cnf.jkt`).
    pub async fn exchange(
        &self,
        client: &Client,
        form: &FormParams,
        minter: &TokenMinter,
        dpop_jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<ExchangedToken, OAuthError> {
        let issued_token_type = match form.get("requested_token_type") {
            None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
            Some(JWT_TOKEN_TYPE) => JWT_TOKEN_TYPE,
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "requested_token_type must be urn:ietf:params:oauth:token-type:access_token or ...:jwt",
                ));
            }
        };
        let subject_token = form.require("subject_token")?;
        check_token_type(form.require("subject_token_type")?, "subject_token_type")?;
        let actor_token = form.get("actor_token");
        match (actor_token, form.get("actor_token_type")) {
            (Some(_), Some(kind)) => check_token_type(kind, "actor_token_type")?,
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is only allowed with actor_token",
                ));
            }
            (None, None) => {}
        }
        let targets = targets(form)?;
        resource::allowed(client, &targets)?;
        let subject = self
            .inspection
            .live_access_token(subject_token, now)
            .await
            .ok_or_else(|| {
                OAuthError::invalid_request("the subject_token is invalid, expired or revoked")
            })?;
        let actor = match actor_token {
            Some(token) => Some(
                self.inspection
                    .live_access_token(token, now)
                    .await
                    .ok_or_else(|| {
                        OAuthError::invalid_request(
                            "the actor_token is invalid, expired or revoked",
                        )
                    })?,
            ),
            None => None,
        };
        let subject_client = self
            .clients
            .get(&subject.client_id)
            .await
            .map_err(storage)?
            .filter(|c| c.enabled);
        let act = decide(client, subject_client.as_deref(), &subject, actor.as_ref())?;
        let subject_scopes: Vec<String> = subject.scopes().map(str::to_owned).collect();
        let scopes = match form.get("scope") {
            Some(requested) => Scopes::parse(requested)?
                .narrow(&subject_scopes)?
                .into_vec(),
            None => subject_scopes,
        };
        let auth_time = subject
            .auth_time
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let mut claims = minter.access_claims(
            client,
            &subject.sub,
            &scopes,
            subject.tenant_id.as_deref(),
            auth_time,
            &targets,
            now,
        )?;
        // The subject's sign-in travels with it (RFC 9068 §2.2.1).
        claims.acr = subject.acr.clone();
        claims.amr = subject.amr.clone();
        claims.exp = lifetime_end(claims.exp, &subject, actor.as_ref(), now);
        claims.act = act;
        claims.cnf = TokenMinter::confirmation(dpop_jkt);
        let access_token = minter.sign_access_token(&claims)?;
        if let Some(grant_id) = self
            .store
            .access_token_grant(&subject.jti)
            .await
            .map_err(storage)?
        {
            let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
            self.store
                .record_access_token(&claims.jti, &grant_id, expires_at)
                .await
                .map_err(storage)?;
            // A revocation of the grant between the subject check and the record above would
            // have missed this token: look again, after recording it.
            let live = self
                .store
                .grant(&grant_id)
                .await
                .map_err(storage)?
                .is_some_and(|g| g.revoked_at.is_none());
            if !live {
                return Err(OAuthError::invalid_request(
                    "the subject_token's grant was revoked",
                ));
            }
        }
        Ok(ExchangedToken {
            access_token,
            claims,
            issued_token_type,
        })
    }
}

/// Only our access tokens are accepted as subject or actor tokens.
fn check_token_type(kind: &str, name: &'static str) -> Result<(), OAuthError> {
    match kind {
        ACCESS_TOKEN_TYPE => Ok(()),
        ID_TOKEN_TYPE => Err(OAuthError::invalid_request(format!(
            "{name}: ID tokens are not accepted (only this server's access tokens)"
        ))),
        _ => Err(OAuthError::invalid_request(format!(
            "{name} must be urn:ietf:params:oauth:token-type:access_token"
        ))),
    }
}

/// The requested targets: `resource` values (absolute URIs, RFC 8707) and `audience` values
/// (logical names such as a client's registered audience, RFC 8693 §2.1), bounded together,
/// duplicates removed.
pub fn targets(form: &FormParams) -> Result<Vec<String>, OAuthError> {
    let mut targets = resource::parse(&form.get_all("resource"))?;
    let audiences = form.get_all("audience");
    if targets.len() + audiences.len() > resource::MAX_RESOURCES {
        return Err(resource::invalid_target(
            "too many resource and audience values",
        ));
    }
    for audience in audiences {
        if audience.len() > MAX_AUDIENCE_LEN || audience.chars().any(char::is_whitespace) {
            return Err(resource::invalid_target(
                "an audience value is malformed or too long",
            ));
        }
        if !targets.iter().any(|t| t == audience) {
            targets.push(audience.to_owned());
        }
    }
    Ok(targets)
}

/// The exchange policy (see the module documentation): the new token's `act`, or why the
/// requesting client may not have a token for this subject. `subject_client` is the subject
/// token's client (`None`: unknown or disabled).
pub fn decide(
    requesting: &Client,
    subject_client: Option<&Client>,
    subject: &AccessTokenClaims,
    actor: Option<&AccessTokenClaims>,
) -> Result<Option<Actor>, OAuthError> {
    if let Some(actor) = actor
        && actor.client_id != requesting.client_id
    {
        return Err(OAuthError::invalid_request(
            "the actor_token was not issued to the requesting client",
        ));
    }
    let Some(subject_client) = subject_client else {
        return Err(OAuthError::invalid_request(
            "the subject_token's client is unknown or disabled",
        ));
    };
    if actor.is_none() && subject.client_id == requesting.client_id {
        return Ok(subject.act.clone());
    }
    if subject_client
        .metadata
        .may_act
        .contains(&requesting.client_id)
    {
        let (sub, client_id) = match actor {
            Some(actor) => (actor.sub.clone(), actor.client_id.clone()),
            None => (requesting.client_id.clone(), requesting.client_id.clone()),
        };
        return Ok(Some(Actor {
            sub,
            client_id: Some(client_id),
            act: subject.act.clone().map(Box::new),
        }));
    }
    if actor.is_none() && requesting.metadata.impersonation {
        return Ok(subject.act.clone());
    }
    Err(OAuthError::invalid_request(
        "the requesting client may not act for this subject (not in the may_act of the subject token's client) and may not impersonate",
    ))
}

/// The exchanged token's expiry: no later than the subject and actor tokens, at most
/// [`MAX_LIFETIME`] from `now`.
fn lifetime_end(
    exp: i64,
    subject: &AccessTokenClaims,
    actor: Option<&AccessTokenClaims>,
    now: OffsetDateTime,
) -> i64 {
    let mut end = exp
        .min(subject.exp)
        .min((now + MAX_LIFETIME).unix_timestamp());
    if let Some(actor) = actor {
        end = end.min(actor.exp);
    }
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::{ClientAuthMethod, ClientMetadata, GrantType};
    use crate::oauth::ErrorCode;
    use crate::tokens::Audience;

    fn client(id: &str, may_act: &[&str], impersonation: bool) -> Client {
        Client {
            client_id: id.to_owned(),
            metadata: ClientMetadata {
                client_name: id.to_owned(),
                token_endpoint_auth_method: ClientAuthMethod::ClientSecretBasic,
                jwks: None,
                grant_types: vec![GrantType::TokenExchange],
                redirect_uris: Vec::new(),
                post_logout_redirect_uris: Vec::new(),
                scope: Vec::new(),
                audiences: vec!["cryptoutil-kms".to_owned()],
                tenant_id: None,
                introspect_any: false,
                dpop_bound_access_tokens: false,
                may_act: may_act.iter().map(|c| (*c).to_owned()).collect(),
                impersonation,
                mfa: None,
            },
            enabled: true,
            secrets: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn token(client_id: &str, sub: &str, act: Option<Actor>) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://idp.example".to_owned(),
            sub: sub.to_owned(),
            aud: Audience::One("cryptoutil-rs".to_owned()),
            client_id: client_id.to_owned(),
            scope: "openid write:resource".to_owned(),
            jti: AccessTokenClaims::new_jti(),
            iat: 0,
            exp: 1_000,
            tenant_id: None,
            auth_time: None,
            acr: None,
            amr: None,
            roles: None,
            cnf: None,
            act,
        }
    }

    fn refused(result: Result<Option<Actor>, OAuthError>, expected: &str) {
        let e = result.expect_err("refusal expected");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains(expected), "{}", e.description);
    }

    #[test]
    fn delegation_names_the_requesting_client_as_actor() {
        let spa = client("spa", &["rs"], false);
        let rs = client("rs", &[], false);
        let act = decide(&rs, Some(&spa), &token("spa", "user-1", None), None)
            .unwrap()
            .unwrap();
        assert_eq!(act.sub, "rs");
        assert_eq!(act.client_id.as_deref(), Some("rs"));
        assert!(act.act.is_none());
    }

    #[test]
    fn delegation_with_an_actor_token_names_its_subject() {
        let spa = client("spa", &["rs"], false);
        let rs = client("rs", &[], false);
        let actor = token("rs", "service-account-7", None);
        let act = decide(&rs, Some(&spa), &token("spa", "user-1", None), Some(&actor))
            .unwrap()
            .unwrap();
        assert_eq!(act.sub, "service-account-7");
        assert_eq!(act.client_id.as_deref(), Some("rs"));
        // An actor token of another client does not prove who acts.
        let foreign = token("spa", "user-1", None);
        refused(
            decide(
                &rs,
                Some(&spa),
                &token("spa", "user-1", None),
                Some(&foreign),
            ),
            "not issued to the requesting client",
        );
    }

    #[test]
    fn delegation_is_refused_without_may_act() {
        let spa = client("spa", &["someone-else"], false);
        let rs = client("rs", &[], false);
        refused(
            decide(&rs, Some(&spa), &token("spa", "user-1", None), None),
            "may_act",
        );
        // An unknown or disabled subject client is refused too.
        refused(
            decide(&rs, None, &token("spa", "user-1", None), None),
            "unknown or disabled",
        );
    }

    #[test]
    fn impersonation_needs_the_client_setting() {
        let spa = client("spa", &[], false);
        let trusted = client("gateway", &[], true);
        assert_eq!(
            decide(&trusted, Some(&spa), &token("spa", "user-1", None), None).unwrap(),
            None
        );
        // An existing chain is kept, never hidden.
        let chained = Actor {
            sub: "rs".to_owned(),
            client_id: Some("rs".to_owned()),
            act: None,
        };
        assert_eq!(
            decide(
                &trusted,
                Some(&spa),
                &token("spa", "user-1", Some(chained.clone())),
                None
            )
            .unwrap(),
            Some(chained)
        );
        refused(
            decide(
                &client("rs", &[], false),
                Some(&spa),
                &token("spa", "user-1", None),
                None,
            ),
            "may not impersonate",
        );
        // Impersonation is never combined with an actor token.
        let actor = token("gateway", "gateway", None);
        refused(
            decide(
                &trusted,
                Some(&spa),
                &token("spa", "user-1", None),
                Some(&actor),
            ),
            "may not impersonate",
        );
    }

    #[test]
    fn a_delegated_subject_token_nests_the_chain() {
        // user → rs (act rs) → kms-proxy (act kms-proxy, act rs).
        let rs = client("rs", &["kms-proxy"], false);
        let proxy = client("kms-proxy", &[], false);
        let first = Actor {
            sub: "rs".to_owned(),
            client_id: Some("rs".to_owned()),
            act: None,
        };
        let act = decide(
            &proxy,
            Some(&rs),
            &token("rs", "user-1", Some(first.clone())),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(act.sub, "kms-proxy");
        assert_eq!(act.act.as_deref(), Some(&first));
    }

    #[test]
    fn a_client_may_retarget_its_own_token() {
        let rs = client("rs", &[], false);
        assert_eq!(
            decide(&rs, Some(&rs), &token("rs", "user-1", None), None).unwrap(),
            None
        );
    }

    #[test]
    fn lifetime_never_outlives_the_subject_or_actor() {
        let now = OffsetDateTime::from_unix_timestamp(900).unwrap();
        let subject = token("spa", "u", None);
        assert_eq!(lifetime_end(5_000, &subject, None, now), 1_000);
        let mut actor = token("rs", "rs", None);
        actor.exp = 950;
        assert_eq!(lifetime_end(5_000, &subject, Some(&actor), now), 950);
        let mut long = token("spa", "u", None);
        long.exp = 1_000_000;
        assert_eq!(
            lifetime_end(1_000_000, &long, None, now),
            900 + MAX_LIFETIME.whole_seconds()
        );
    }

    #[test]
    fn token_types_and_targets() {
        assert!(check_token_type(ACCESS_TOKEN_TYPE, "subject_token_type").is_ok());
        for other in [ID_TOKEN_TYPE, JWT_TOKEN_TYPE, "urn:x", "access_token"] {
            let e = check_token_type(other, "subject_token_type").unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest);
        }
        let form = FormParams::parse_default(
            b"audience=cryptoutil-kms&resource=https%3A%2F%2Fkms.example%2F&audience=cryptoutil-kms",
        )
        .unwrap();
        assert_eq!(
            targets(&form).unwrap(),
            ["https://kms.example/", "cryptoutil-kms"]
        );
        let bad = FormParams::parse_default(b"resource=cryptoutil-kms").unwrap();
        assert_eq!(targets(&bad).unwrap_err().code, ErrorCode::InvalidTarget);
        let many: Vec<String> = (0..=resource::MAX_RESOURCES)
            .map(|i| format!("audience=a{i}"))
            .collect();
        let many = FormParams::parse_default(many.join("&").as_bytes()).unwrap();
        assert_eq!(targets(&many).unwrap_err().code, ErrorCode::InvalidTarget);
    }
}
