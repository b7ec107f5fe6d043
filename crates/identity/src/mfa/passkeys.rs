//! Passkey ceremonies (WebAuthn registration and authentication) over the store: the options a
//! browser passes to `navigator.credentials.create`/`get` (fresh challenges, stored hashed and
//! bound to the browser session), finishing each ceremony with the relying-party checks of
//! [`super::webauthn`], and a user's named credentials (list, rename, remove). Free of HTTP
//! types: [`PasskeyService`] is the one way in.
//!
//! A challenge answers one ceremony of one session, once. An authentication challenge issued
//! for a user (a second factor) accepts only that user's credentials; one issued to an
//! anonymous session (passwordless sign-in) requires user verification and a user handle equal
//! to the credential's user. A signature counter that goes backwards, or a lost race to record
//! one, refuses the sign-in and is audited.

use cryptoutil_jose::b64;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::settings::{AttestationPolicy, MfaSettings, WebAuthnSettings};
use super::webauthn::{
    AssertionResponse, RegistrationResponse, RelyingParty, SUPPORTED_ALGORITHMS, StoredCredential,
    WebAuthnError, verify_assertion, verify_registration,
};
use crate::audit::{self, AccountOperation, Actor, Outcome};
use crate::model::{ChallengePurpose, User, WebAuthnChallenge, WebAuthnCredential};
use crate::services::IssuerCell;
use crate::signin::AuthMethod;
use crate::storage::{Store, StoreError};

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Most transports a registration may report, and the longest one.
const MAX_TRANSPORTS: usize = 8;
const MAX_TRANSPORT_LEN: usize = 32;
/// Longest client data JSON read for its challenge (the verifier refuses longer too).
const MAX_CLIENT_DATA_LEN: usize = 4 * 1024;
/// Longest credential id (WebAuthn Level 3: 1023 bytes).
const MAX_CREDENTIAL_ID_LEN: usize = 1023;
/// Longest user handle (WebAuthn: 64 bytes).
const MAX_USER_HANDLE_LEN: usize = 64;
/// Most credentials one user may register.
pub const MAX_CREDENTIALS_PER_USER: usize = 20;
/// How long a browser waits for the user (the options' `timeout`), in milliseconds.
const CEREMONY_TIMEOUT_MS: u64 = 120_000;

/// Why a passkey ceremony or change was refused. The messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The database failed (retry later).
    #[error("the service is temporarily unavailable")]
    Unavailable(#[from] StoreError),
    /// The issuer is not known yet (before the listener is bound).
    #[error("the service is temporarily unavailable")]
    NoIssuer,
    /// No randomness for a challenge.
    #[error("the service is temporarily unavailable")]
    Random,
    /// The browser's answer was not well formed (base64url, JSON, sizes).
    #[error("the passkey answer was malformed")]
    Malformed,
    /// The challenge is unknown, expired, used already or belongs to another session.
    #[error("the passkey request expired or was already used; please try again")]
    Challenge,
    /// The credential is not registered here (or not to the expected user).
    #[error("this passkey is not registered for this account")]
    UnknownCredential,
    /// The user handle the authenticator returned does not name the credential's user.
    #[error("this passkey does not belong to the account it claims")]
    UserHandleMismatch,
    /// The relying-party checks failed.
    #[error("the passkey could not be verified: {0}")]
    Verification(#[from] WebAuthnError),
    /// The signature counter did not move forward (a cloned authenticator?).
    #[error("the passkey's signature counter went backwards; it may have been cloned")]
    CounterRegression,
    /// The user is disabled or gone.
    #[error("this account cannot sign in")]
    UserDisabled,
    /// The name is empty or longer than 64 characters.
    #[error("the name must be 1 to 64 characters")]
    Name,
    /// The credential is registered already.
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The user has the most credentials allowed.
    #[error("you have the most passkeys allowed (20); remove one first")]
    TooMany,
    /// No such credential of this user.
    #[error("no such passkey")]
    NotFound,
}

impl PasskeyError {
    /// True for a failure of the service (not of the request): the caller answers 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::NoIssuer | Self::Random)
    }
}

/// What the browser sent to finish a registration (decoded from base64url by the caller).
#[derive(Debug)]
pub struct NewPasskey<'a> {
    /// The name the user typed (trimmed here; empty: a default from the authenticator).
    pub name: &'a str,
    /// `response.clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `response.attestationObject`.
    pub attestation_object: &'a [u8],
    /// `response.getTransports()`.
    pub transports: Vec<String>,
    /// `clientExtensionResults.credProps.rk`, when the browser reported it.
    pub resident_key: Option<bool>,
}

/// What the browser sent to finish an authentication (decoded from base64url by the caller).
#[derive(Debug)]
pub struct PasskeyAssertion<'a> {
    /// The credential id (`rawId`).
    pub credential_id: &'a [u8],
    /// `response.clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `response.authenticatorData`.
    pub authenticator_data: &'a [u8],
    /// `response.signature`.
    pub signature: &'a [u8],
    /// `response.userHandle` (empty: none).
    pub user_handle: &'a [u8],
}

/// A verified passkey sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySignIn {
    /// The user.
    pub user_id: String,
    /// The key method first (`swk` for a backup-eligible passkey, else `hwk`), then `user`,
    /// then `mfa` when the authenticator verified the user.
    pub methods: Vec<AuthMethod>,
}

/// The `amr` methods an assertion proves: `swk` when backup eligible else `hwk`, `user`
/// (presence is always required), and `mfa` when the user was verified.
pub fn methods_of(backup_eligible: bool, user_verified: bool) -> Vec<AuthMethod> {
    let key = if backup_eligible {
        AuthMethod::SoftwareKey
    } else {
        AuthMethod::HardwareKey
    };
    let mut methods = vec![key, AuthMethod::UserPresence];
    if user_verified {
        methods.push(AuthMethod::MultiFactor);
    }
    methods
}

/// A passkey name: trimmed, 1 to 64 characters, no control characters.
pub fn checked_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::Name);
    }
    Ok(name.to_owned())
}

/// The name of a passkey the user did not name: from what the authenticator says of itself.
fn default_name(transports: &[String], backup_eligible: bool, created: OffsetDateTime) -> String {
    let kind = if backup_eligible {
        "Synced passkey"
    } else if transports
        .iter()
        .any(|t| matches!(t.as_str(), "usb" | "nfc" | "ble"))
    {
        "Security key"
    } else if transports.iter().any(|t| t == "internal") {
        "Device passkey"
    } else {
        "Passkey"
    };
    format!("{kind} added {}", created.date())
}

/// The transports a browser reported, bounded and limited to plain tokens (unknown ones are
/// kept: they are hints passed back to the browser).
pub fn checked_transports(list: &[String]) -> Result<Vec<String>, PasskeyError> {
    if list.len() > MAX_TRANSPORTS
        || list.iter().any(|t| {
            t.is_empty()
                || t.len() > MAX_TRANSPORT_LEN
                || !t.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
    {
        return Err(PasskeyError::Malformed);
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for t in list {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The challenge a client data JSON answers (its `challenge` member, decoded), before any
/// other check: it names the stored challenge to take.
fn client_data_challenge(client_data_json: &[u8]) -> Result<Vec<u8>, PasskeyError> {
    if client_data_json.len() > MAX_CLIENT_DATA_LEN {
        return Err(PasskeyError::Malformed);
    }
    let value: Value =
        serde_json::from_slice(client_data_json).map_err(|_| PasskeyError::Malformed)?;
    let challenge = value
        .get("challenge")
        .and_then(Value::as_str)
        .filter(|c| c.len() <= 128)
        .ok_or(PasskeyError::Malformed)?;
    b64::decode(challenge.as_bytes(), "challenge").map_err(|_| PasskeyError::Malformed)
}

/// How a challenge is stored: base64url(SHA-256(challenge bytes)).
fn challenge_hash(challenge: &[u8]) -> String {
    b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, challenge).as_ref())
}

/// A `PublicKeyCredentialDescriptorJSON`.
fn descriptor(c: &WebAuthnCredential) -> Value {
    json!({ "type": "public-key", "id": c.credential_id, "transports": c.transports })
}

/// Registration and authentication ceremonies and a user's credentials.
#[derive(Debug)]
pub struct PasskeyService {
    store: Store,
    issuer: IssuerCell,
    settings: WebAuthnSettings,
    reauthentication_window: time::Duration,
}

impl PasskeyService {
    /// Ceremonies over `store` for the relying party of `settings.webauthn` (rp id and origins
    /// default to the issuer's, known once the listener is bound).
    pub fn new(store: Store, issuer: IssuerCell, settings: &MfaSettings) -> Self {
        Self {
            store,
            issuer,
            settings: settings.webauthn.clone(),
            reauthentication_window: time::Duration::try_from(
                settings.reauthentication_window.get(),
            )
            .unwrap_or(time::Duration::minutes(15)),
        }
    }

    /// How recent a sign-in must be to add, rename or remove a passkey
    /// (`mfa.reauthentication_window`).
    pub fn reauthentication_window(&self) -> time::Duration {
        self.reauthentication_window
    }

    /// The relying party: `mfa.webauthn.rp_id` or the issuer's host; `mfa.webauthn.origins` or
    /// the issuer's origin.
    pub fn relying_party(&self) -> Result<RelyingParty, PasskeyError> {
        let issuer = url::Url::parse(self.issuer.url().ok_or(PasskeyError::NoIssuer)?)
            .map_err(|_| PasskeyError::NoIssuer)?;
        let id = match &self.settings.rp_id {
            Some(id) => id.clone(),
            None => issuer.host_str().ok_or(PasskeyError::NoIssuer)?.to_owned(),
        };
        let origins = if self.settings.origins.is_empty() {
            std::slice::from_ref(&issuer)
        } else {
            self.settings.origins.as_slice()
        };
        Ok(RelyingParty::new(id, origins, self.settings.attestation))
    }

    /// A fresh challenge for `session_hash`, stored hashed, replacing the session's earlier one
    /// for `purpose` (one live challenge per session and purpose: bounded, and the conditional
    /// request dies when the button starts a new one); returned base64url.
    async fn issue_challenge(
        &self,
        session_hash: &str,
        purpose: ChallengePurpose,
        user_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, PasskeyError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| PasskeyError::Random)?;
        self.store
            .delete_webauthn_challenges(session_hash, purpose)
            .await?;
        self.store
            .insert_webauthn_challenge(&WebAuthnChallenge {
                challenge_hash: challenge_hash(&bytes[..]),
                session_hash: session_hash.to_owned(),
                purpose,
                user_id: user_id.map(str::to_owned),
                expires_at: now + self.settings.challenge_lifetime.get(),
            })
            .await?;
        Ok(b64::encode(&bytes[..]))
    }

    /// `PublicKeyCredentialCreationOptionsJSON` for `user` to register a passkey from the
    /// session `session_hash`: a fresh challenge, the user's id as the user handle, the
    /// supported algorithms, their credentials excluded, resident key and user verification
    /// preferred, `direct` attestation only when the policy needs a statement.
    pub async fn creation_options(
        &self,
        user: &User,
        session_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Value, PasskeyError> {
        let rp = self.relying_party()?;
        let existing = self.store.webauthn_credentials(&user.id).await?;
        if existing.len() >= MAX_CREDENTIALS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        let challenge = self
            .issue_challenge(
                session_hash,
                ChallengePurpose::Registration,
                Some(&user.id),
                now,
            )
            .await?;
        let params: Vec<Value> = SUPPORTED_ALGORITHMS
            .iter()
            .map(|alg| json!({ "type": "public-key", "alg": alg }))
            .collect();
        let attestation = match self.settings.attestation {
            AttestationPolicy::PackedOnly => "direct",
            AttestationPolicy::NoneOrPacked => "none",
        };
        Ok(json!({
            "rp": { "id": rp.id, "name": self.settings.rp_name },
            "user": {
                "id": b64::encode(user.id.as_bytes()),
                "name": user.username,
                "displayName": user.name.as_deref().unwrap_or(&user.username),
            },
            "challenge": challenge,
            "pubKeyCredParams": params,
            "timeout": CEREMONY_TIMEOUT_MS,
            "excludeCredentials": existing.iter().map(descriptor).collect::<Vec<_>>(),
            "authenticatorSelection": {
                "residentKey": "preferred",
                "requireResidentKey": false,
                "userVerification": "preferred",
            },
            "attestation": attestation,
            "extensions": { "credProps": true },
        }))
    }

    /// Finishes a registration by `user` from `session_hash`: takes the challenge once,
    /// verifies the attestation, stores the credential under its (checked or default) name.
    pub async fn finish_registration(
        &self,
        user: &User,
        session_hash: &str,
        new: &NewPasskey<'_>,
        now: OffsetDateTime,
    ) -> Result<WebAuthnCredential, PasskeyError> {
        let name = if new.name.trim().is_empty() {
            None
        } else {
            Some(checked_name(new.name)?)
        };
        let transports = checked_transports(&new.transports)?;
        let challenge = client_data_challenge(new.client_data_json)?;
        let rp = self.relying_party()?;
        let taken = self
            .store
            .take_webauthn_challenge(
                &challenge_hash(&challenge),
                session_hash,
                ChallengePurpose::Registration,
                now,
            )
            .await?
            .ok_or(PasskeyError::Challenge)?;
        if taken.user_id.as_deref() != Some(user.id.as_str()) {
            return Err(PasskeyError::Challenge);
        }
        if self.store.webauthn_credentials(&user.id).await?.len() >= MAX_CREDENTIALS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        let registered = verify_registration(
            &rp,
            &challenge,
            false,
            &RegistrationResponse {
                client_data_json: new.client_data_json,
                attestation_object: new.attestation_object,
            },
        )?;
        let credential = WebAuthnCredential {
            credential_id: b64::encode(&registered.credential_id),
            user_id: user.id.clone(),
            name: name
                .unwrap_or_else(|| default_name(&transports, registered.backup_eligible, now)),
            public_key: b64::encode(&registered.public_key),
            algorithm: registered.algorithm,
            sign_count: registered.sign_count,
            transports,
            aaguid: uuid::Uuid::from_bytes(registered.aaguid).to_string(),
            attestation_format: registered.attestation_format.as_str().to_owned(),
            discoverable: new.resident_key.unwrap_or(false),
            backup_eligible: registered.backup_eligible,
            backed_up: registered.backed_up,
            created_at: now,
            last_used_at: None,
        };
        match self.store.insert_webauthn_credential(&credential).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                audit::account(
                    AccountOperation::PasskeyRegistered,
                    &user.id,
                    Actor::User,
                    Outcome::Refused("credential registered already"),
                    None,
                );
                return Err(PasskeyError::AlreadyRegistered);
            }
            Err(e) => return Err(e.into()),
        }
        audit::account(
            AccountOperation::PasskeyRegistered,
            &user.id,
            Actor::User,
            Outcome::Success,
            Some(&credential.name),
        );
        Ok(credential)
    }

    /// `PublicKeyCredentialRequestOptionsJSON` for the session `session_hash`: for `user_id`
    /// (a second factor) their credentials and user verification preferred; without one
    /// (passwordless) no `allowCredentials` and user verification required.
    pub async fn request_options(
        &self,
        user_id: Option<&str>,
        session_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Value, PasskeyError> {
        let rp = self.relying_party()?;
        let (allow, verification) = match user_id {
            Some(user_id) => (
                self.store
                    .webauthn_credentials(user_id)
                    .await?
                    .iter()
                    .map(descriptor)
                    .collect::<Vec<_>>(),
                "preferred",
            ),
            None => (Vec::new(), "required"),
        };
        let challenge = self
            .issue_challenge(session_hash, ChallengePurpose::Authentication, user_id, now)
            .await?;
        Ok(json!({
            "rpId": rp.id,
            "challenge": challenge,
            "timeout": CEREMONY_TIMEOUT_MS,
            "allowCredentials": allow,
            "userVerification": verification,
        }))
    }

    /// Finishes an authentication from `session_hash`: takes the challenge once; the
    /// credential must belong to the challenge's user (a second factor) or to the user its
    /// user handle names (passwordless, which also requires user verification); verifies the
    /// assertion and records the new counter (compare-and-set). Disabled users are refused.
    pub async fn finish_assertion(
        &self,
        session_hash: &str,
        assertion: &PasskeyAssertion<'_>,
        now: OffsetDateTime,
    ) -> Result<PasskeySignIn, PasskeyError> {
        if assertion.credential_id.is_empty()
            || assertion.credential_id.len() > MAX_CREDENTIAL_ID_LEN
            || assertion.user_handle.len() > MAX_USER_HANDLE_LEN
        {
            return Err(PasskeyError::Malformed);
        }
        let challenge = client_data_challenge(assertion.client_data_json)?;
        let rp = self.relying_party()?;
        let taken = self
            .store
            .take_webauthn_challenge(
                &challenge_hash(&challenge),
                session_hash,
                ChallengePurpose::Authentication,
                now,
            )
            .await?
            .ok_or(PasskeyError::Challenge)?;
        let credential = self
            .store
            .webauthn_credential(&b64::encode(assertion.credential_id))
            .await?
            .ok_or(PasskeyError::UnknownCredential)?;
        let passwordless = taken.user_id.is_none();
        match &taken.user_id {
            Some(user_id) if *user_id != credential.user_id => {
                return Err(PasskeyError::UnknownCredential);
            }
            Some(_) => {
                if !assertion.user_handle.is_empty()
                    && assertion.user_handle != credential.user_id.as_bytes()
                {
                    return Err(PasskeyError::UserHandleMismatch);
                }
            }
            None => {
                if assertion.user_handle != credential.user_id.as_bytes() {
                    return Err(PasskeyError::UserHandleMismatch);
                }
            }
        }
        match self.store.user(&credential.user_id).await? {
            Some(user) if user.enabled => {}
            _ => return Err(PasskeyError::UserDisabled),
        }
        let public_key =
            b64::decode(credential.public_key.as_bytes(), "public key").map_err(|_| {
                PasskeyError::Unavailable(StoreError::Corrupt(
                    "stored passkey public key".to_owned(),
                ))
            })?;
        let verified = match verify_assertion(
            &rp,
            &challenge,
            passwordless,
            &StoredCredential {
                public_key: &public_key,
                algorithm: credential.algorithm,
                sign_count: credential.sign_count,
            },
            &AssertionResponse {
                client_data_json: assertion.client_data_json,
                authenticator_data: assertion.authenticator_data,
                signature: assertion.signature,
            },
        ) {
            Ok(verified) => verified,
            Err(WebAuthnError::CounterRegression) => {
                return Err(self.counter_regression(&credential));
            }
            Err(e) => return Err(e.into()),
        };
        let recorded = self
            .store
            .record_webauthn_use(
                &credential.credential_id,
                credential.sign_count,
                verified.sign_count,
                verified.backed_up,
                now,
            )
            .await?;
        if !recorded {
            return Err(self.counter_regression(&credential));
        }
        Ok(PasskeySignIn {
            user_id: credential.user_id,
            methods: methods_of(credential.backup_eligible, verified.user_verified),
        })
    }

    /// Audits a counter that did not move forward and returns the refusal.
    fn counter_regression(&self, credential: &WebAuthnCredential) -> PasskeyError {
        tracing::warn!(
            user = %credential.user_id,
            "passkey signature counter regression: refused"
        );
        audit::account(
            AccountOperation::PasskeyCounterRegression,
            &credential.user_id,
            Actor::User,
            Outcome::Refused("signature counter did not increase"),
            Some(&credential.name),
        );
        PasskeyError::CounterRegression
    }

    /// The user's credentials, oldest first.
    pub async fn list(&self, user_id: &str) -> Result<Vec<WebAuthnCredential>, PasskeyError> {
        Ok(self.store.webauthn_credentials(user_id).await?)
    }

    /// Renames one of the user's credentials (audited).
    pub async fn rename(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
    ) -> Result<(), PasskeyError> {
        let name = checked_name(name)?;
        if credential_id.len() > 2 * MAX_CREDENTIAL_ID_LEN
            || !self
                .store
                .rename_webauthn_credential(user_id, credential_id, &name)
                .await?
        {
            return Err(PasskeyError::NotFound);
        }
        audit::account(
            AccountOperation::PasskeyRenamed,
            user_id,
            Actor::User,
            Outcome::Success,
            Some(&name),
        );
        Ok(())
    }

    /// Removes one of the user's credentials (audited).
    pub async fn remove(&self, user_id: &str, credential_id: &str) -> Result<(), PasskeyError> {
        if credential_id.len() > 2 * MAX_CREDENTIAL_ID_LEN
            || !self
                .store
                .delete_webauthn_credential(user_id, credential_id)
                .await?
        {
            return Err(PasskeyError::NotFound);
        }
        audit::account(
            AccountOperation::PasskeyRemoved,
            user_id,
            Actor::User,
            Outcome::Success,
            None,
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use crate::storage::DatabaseSettings;

    async fn service(settings: &MfaSettings, issuer: Option<&str>) -> PasskeyService {
        let store = Store::connect(&DatabaseSettings::with_url("sqlite::memory:"))
            .await
            .unwrap();
        let cell = IssuerCell::new();
        if let Some(url) = issuer {
            cell.set(url.to_owned());
        }
        PasskeyService::new(store, cell, settings)
    }

    fn user() -> User {
        let id = uuid::Uuid::now_v7().to_string();
        User {
            username: format!("user-{id}"),
            id,
            password_hash: String::new(),
            enabled: true,
            roles: Vec::new(),
            tenant_id: None,
            name: Some("A User".to_owned()),
            given_name: None,
            family_name: None,
            email: None,
            email_verified: false,
            version: 1,
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_relying_party_defaults_to_the_issuer_and_takes_the_settings() {
        let settings = MfaSettings::default();
        let unbound = service(&settings, None).await;
        assert!(matches!(
            unbound.relying_party(),
            Err(PasskeyError::NoIssuer)
        ));
        let bound = service(&settings, Some("https://id.example.com:8443")).await;
        let rp = bound.relying_party().unwrap();
        assert_eq!(rp.id, "id.example.com");
        assert_eq!(rp.origins, ["https://id.example.com:8443"]);

        let mut settings = MfaSettings::default();
        settings.webauthn.rp_id = Some("example.com".to_owned());
        settings.webauthn.origins = vec![
            url::Url::parse("https://id.example.com").unwrap(),
            url::Url::parse("https://login.example.com:444/").unwrap(),
        ];
        let rp = service(&settings, Some("https://id.example.com"))
            .await
            .relying_party()
            .unwrap();
        assert_eq!(rp.id, "example.com");
        assert_eq!(
            rp.origins,
            ["https://id.example.com", "https://login.example.com:444"]
        );
    }

    #[tokio::test]
    async fn options_carry_fresh_challenges_stored_hashed_for_the_session() {
        let mut settings = MfaSettings::default();
        settings.webauthn.attestation = AttestationPolicy::PackedOnly;
        let passkeys = service(&settings, Some("https://id.example.com")).await;
        let user = user();
        let now = OffsetDateTime::now_utc();
        let create = passkeys
            .creation_options(&user, "session-a", now)
            .await
            .unwrap();
        assert_eq!(create["rp"]["id"], "id.example.com");
        assert_eq!(create["user"]["id"], b64::encode(user.id.as_bytes()));
        assert_eq!(create["user"]["displayName"], "A User");
        assert_eq!(create["attestation"], "direct");
        assert_eq!(create["authenticatorSelection"]["residentKey"], "preferred");
        assert_eq!(
            create["pubKeyCredParams"].as_array().unwrap().len(),
            SUPPORTED_ALGORITHMS.len()
        );
        let challenge = b64::decode(create["challenge"].as_str().unwrap().as_bytes(), "c").unwrap();
        assert_eq!(challenge.len(), 32);

        let get = passkeys
            .request_options(None, "session-a", now)
            .await
            .unwrap();
        assert_ne!(get["challenge"], create["challenge"]);
        assert_eq!(get["userVerification"], "required");
        // A new request replaces the session's earlier one (of the same purpose only).
        let first = b64::decode(get["challenge"].as_str().unwrap().as_bytes(), "c").unwrap();
        passkeys
            .request_options(None, "session-a", now)
            .await
            .unwrap();
        assert!(
            passkeys
                .store
                .take_webauthn_challenge(
                    &challenge_hash(&first),
                    "session-a",
                    ChallengePurpose::Authentication,
                    now
                )
                .await
                .unwrap()
                .is_none()
        );

        // Stored hashed, bound to the session and purpose, taken once.
        let hash = challenge_hash(&challenge);
        let store = &passkeys.store;
        let other = store
            .take_webauthn_challenge(&hash, "session-b", ChallengePurpose::Registration, now)
            .await
            .unwrap();
        assert!(other.is_none());
        let taken = store
            .take_webauthn_challenge(&hash, "session-a", ChallengePurpose::Registration, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.user_id.as_deref(), Some(user.id.as_str()));
        assert!(
            store
                .take_webauthn_challenge(&hash, "session-a", ChallengePurpose::Registration, now)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn methods_follow_the_flags() {
        assert_eq!(
            methods_of(true, true),
            [
                AuthMethod::SoftwareKey,
                AuthMethod::UserPresence,
                AuthMethod::MultiFactor
            ]
        );
        assert_eq!(
            methods_of(false, false),
            [AuthMethod::HardwareKey, AuthMethod::UserPresence]
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Laptop ").unwrap(), "Laptop");
        assert!(matches!(checked_name("   "), Err(PasskeyError::Name)));
        assert!(checked_name(&"é".repeat(64)).is_ok());
        assert!(matches!(
            checked_name(&"é".repeat(65)),
            Err(PasskeyError::Name)
        ));
        assert!(matches!(checked_name("a\nb"), Err(PasskeyError::Name)));
    }

    #[test]
    fn default_names_say_what_the_authenticator_is() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert!(default_name(&[], true, at).starts_with("Synced passkey"));
        assert!(default_name(&["usb".to_owned()], false, at).starts_with("Security key"));
        assert!(default_name(&["internal".to_owned()], false, at).starts_with("Device passkey"));
        assert_eq!(default_name(&[], false, at), "Passkey added 2023-11-14");
    }

    #[test]
    fn transports_are_bounded_tokens() {
        let list = vec!["usb".to_owned(), "hybrid".to_owned(), "usb".to_owned()];
        assert_eq!(checked_transports(&list).unwrap(), ["usb", "hybrid"]);
        assert!(checked_transports(&["<b>".to_owned()]).is_err());
        assert!(checked_transports(&vec!["usb".to_owned(); 9]).is_err());
    }

    #[test]
    fn the_challenge_is_read_from_bounded_client_data() {
        let challenge = b64::encode(&[7u8; 32]);
        let json = format!(r#"{{"type":"webauthn.get","challenge":"{challenge}"}}"#);
        assert_eq!(client_data_challenge(json.as_bytes()).unwrap(), [7u8; 32]);
        assert!(client_data_challenge(b"not json").is_err());
        assert!(client_data_challenge(br#"{"challenge":"***"}"#).is_err());
        assert!(client_data_challenge(br#"{"type":"webauthn.get"}"#).is_err());
        let big = format!(
            r#"{{"challenge":"{challenge}","pad":"{}"}}"#,
            "x".repeat(MAX_CLIENT_DATA_LEN)
        );
        assert!(client_data_challenge(big.as_bytes()).is_err());
    }
}
