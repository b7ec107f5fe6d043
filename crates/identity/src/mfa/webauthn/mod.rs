//! The WebAuthn relying-party checks (WebAuthn Level 3 §7.1 registration, §7.2
//! authentication): client data, authenticator data, COSE credential keys, the `none` and
//! `packed` attestation formats, and assertion signatures and counters. Pure: no HTTP, no
//! database, no clock; the ceremonies (challenges, storage, pages) build on
//! [`verify_registration`] and [`verify_assertion`].
//!
//! Everything a client sends is bounded before it is parsed (see the `MAX_*` constants); CBOR
//! is read into [`ciborium::Value`] with nesting limited and nothing may trail an item.

mod attestation;
mod authenticator_data;
mod cbor;
mod client_data;
mod cose;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use aws_lc_rs::digest::{SHA256, digest};

use crate::mfa::AttestationPolicy;
use attestation::AttestationObject;
use authenticator_data::AuthenticatorData;
use client_data::Ceremony;
use cose::PublicKey;

/// The largest `clientDataJSON` accepted, in bytes.
pub const MAX_CLIENT_DATA_JSON: usize = 4 * 1024;
/// The largest attestation object accepted, in bytes.
pub const MAX_ATTESTATION_OBJECT: usize = 16 * 1024;
/// The largest authenticator data accepted in an assertion, in bytes.
pub const MAX_AUTHENTICATOR_DATA: usize = 4 * 1024;
/// The largest assertion signature accepted, in bytes (an RSA-8192 signature).
pub const MAX_SIGNATURE: usize = 1024;
/// The longest credential id accepted (WebAuthn Level 3: 1023 bytes).
pub const MAX_CREDENTIAL_ID: usize = 1023;
/// The most certificates accepted in a packed statement's x5c chain.
pub const MAX_X5C_CERTIFICATES: usize = 4;

/// The COSE algorithms accepted for credentials, preferred first (for `pubKeyCredParams`):
/// ES256, EdDSA (Ed25519), ES384, PS256, RS256.
pub const SUPPORTED_ALGORITHMS: &[i64] = &cose::SUPPORTED;

/// The relying party a ceremony is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The RP id (a registrable domain suffix of the origins' hosts).
    pub id: String,
    /// The origins ceremonies may come from, compared exactly (`https://host[:port]`, no
    /// trailing slash: see [`RelyingParty::new`]).
    pub origins: Vec<String>,
    /// Which attestation statements registration accepts.
    pub attestation: AttestationPolicy,
}

impl RelyingParty {
    /// The relying party `id` for `origins` given as URLs (such as `mfa.webauthn.origins`): each
    /// becomes its ASCII origin serialization, `scheme://host[:port]` without a trailing slash,
    /// as browsers put it in the client data. URLs without a tuple origin are left out.
    pub fn new(
        id: impl Into<String>,
        origins: &[url::Url],
        attestation: AttestationPolicy,
    ) -> Self {
        let origins = origins
            .iter()
            .map(url::Url::origin)
            .filter(url::Origin::is_tuple)
            .map(|origin| origin.ascii_serialization())
            .collect();
        Self {
            id: id.into(),
            origins,
            attestation,
        }
    }
}

/// A registration response (`AuthenticatorAttestationResponse`), decoded from base64url.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationResponse<'a> {
    /// `clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `attestationObject`.
    pub attestation_object: &'a [u8],
}

/// The attestation format a registration came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationFormat {
    /// `none`: no statement about the authenticator.
    None,
    /// `packed`: a verified self or full (x5c) attestation; the chain's trust is not evaluated.
    Packed,
}

impl AttestationFormat {
    /// The format's WebAuthn identifier (`none`, `packed`), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Packed => "packed",
        }
    }
}

/// A credential whose registration verified: what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// The credential id (1 to [`MAX_CREDENTIAL_ID`] bytes).
    pub credential_id: Vec<u8>,
    /// The credential public key: the COSE_Key bytes as received.
    pub public_key: Vec<u8>,
    /// The key's COSE algorithm (one of [`SUPPORTED_ALGORITHMS`]).
    pub algorithm: i64,
    /// The signature counter at registration.
    pub sign_count: u32,
    /// The authenticator model's AAGUID (zeros when it does not say).
    pub aaguid: [u8; 16],
    /// The attestation format.
    pub attestation_format: AttestationFormat,
    /// UP.
    pub user_present: bool,
    /// UV.
    pub user_verified: bool,
    /// BE: the credential may be synced (a passkey rather than a device-bound key).
    pub backup_eligible: bool,
    /// BS: the credential is backed up now.
    pub backed_up: bool,
}

/// An authentication response (`AuthenticatorAssertionResponse`), decoded from base64url.
#[derive(Debug, Clone, Copy)]
pub struct AssertionResponse<'a> {
    /// `clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `authenticatorData`.
    pub authenticator_data: &'a [u8],
    /// `signature`.
    pub signature: &'a [u8],
}

/// The stored credential an assertion names.
#[derive(Debug, Clone, Copy)]
pub struct StoredCredential<'a> {
    /// The COSE_Key bytes stored at registration.
    pub public_key: &'a [u8],
    /// The algorithm stored at registration.
    pub algorithm: i64,
    /// The last signature counter seen.
    pub sign_count: u32,
}

/// A verified assertion. The caller compares `backup_eligible` with the stored value (it
/// never changes for a credential) and stores the new counter and backup state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The new signature counter.
    pub sign_count: u32,
    /// UP.
    pub user_present: bool,
    /// UV.
    pub user_verified: bool,
    /// BE.
    pub backup_eligible: bool,
    /// BS.
    pub backed_up: bool,
}

/// Why a ceremony response was refused. The messages are safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebAuthnError {
    /// A part of the response exceeds its limit.
    #[error("the passkey response is too large ({0})")]
    TooLarge(&'static str),
    /// A part of the response does not parse.
    #[error("the passkey response is malformed ({0})")]
    Malformed(&'static str),
    /// The client data is for another ceremony.
    #[error("the passkey response is for another kind of request")]
    WrongType,
    /// The client data carries another challenge.
    #[error("the passkey response does not answer this request; please try again")]
    ChallengeMismatch,
    /// The client data's origin is not one of the relying party's.
    #[error("the passkey response comes from a site this server does not accept")]
    OriginNotAllowed,
    /// The ceremony ran in a cross-origin frame.
    #[error("passkeys cannot be used from an embedded page of another site")]
    CrossOrigin,
    /// The authenticator data is scoped to another RP id.
    #[error("the passkey belongs to another site")]
    RpIdMismatch,
    /// UP is not set.
    #[error("the authenticator did not confirm that you are present")]
    UserNotPresent,
    /// UV is not set although required.
    #[error(
        "the authenticator did not verify you (PIN or biometric); user verification is required"
    )]
    UserNotVerified,
    /// BS is set without BE.
    #[error("the authenticator reports an impossible backup state")]
    InvalidBackupState,
    /// The key's or statement's algorithm is not supported.
    #[error("the passkey uses an algorithm this server does not support")]
    UnsupportedAlgorithm,
    /// The attestation format is neither `none` nor `packed`.
    #[error("the authenticator's attestation format is not supported")]
    UnsupportedAttestation,
    /// The policy requires a `packed` statement and the response has `none`.
    #[error("this server only accepts security keys that attest their model")]
    AttestationRequired,
    /// The attestation statement does not verify.
    #[error("the authenticator's attestation is invalid: {0}")]
    InvalidAttestation(&'static str),
    /// The signature does not verify.
    #[error("the passkey's signature does not verify")]
    BadSignature,
    /// The signature counter did not increase: the credential may have been cloned.
    #[error(
        "the authenticator's signature counter went backwards; the passkey may have been copied"
    )]
    CounterRegression,
}

/// Verifies a registration response (WebAuthn Level 3 §7.1, steps 5–24 less the ones that
/// need storage: the caller refuses a credential id already registered).
pub fn verify_registration(
    rp: &RelyingParty,
    challenge: &[u8],
    require_user_verification: bool,
    response: &RegistrationResponse<'_>,
) -> Result<RegisteredCredential, WebAuthnError> {
    if response.client_data_json.len() > MAX_CLIENT_DATA_JSON {
        return Err(WebAuthnError::TooLarge("client data"));
    }
    if response.attestation_object.len() > MAX_ATTESTATION_OBJECT {
        return Err(WebAuthnError::TooLarge("attestation object"));
    }
    client_data::check(
        response.client_data_json,
        Ceremony::Create,
        challenge,
        &rp.origins,
    )?;
    let client_data_hash = digest(&SHA256, response.client_data_json);
    let object = AttestationObject::parse(response.attestation_object)?;
    let data = AuthenticatorData::parse(&object.auth_data, true)?;
    data.check(&rp_id_hash(&rp.id), require_user_verification)?;
    let credential = data
        .attested
        .as_ref()
        .ok_or(WebAuthnError::Malformed("attested credential data"))?;
    let key = PublicKey::from_cose(credential.public_key_value.clone())?;
    if !SUPPORTED_ALGORITHMS.contains(&key.algorithm()) {
        return Err(WebAuthnError::UnsupportedAlgorithm);
    }
    let attestation_format = object.verify(
        rp.attestation,
        client_data_hash.as_ref(),
        &key,
        &credential.aaguid,
    )?;
    Ok(RegisteredCredential {
        credential_id: credential.credential_id.clone(),
        public_key: credential.public_key.clone(),
        algorithm: key.algorithm(),
        sign_count: data.sign_count,
        aaguid: credential.aaguid,
        attestation_format,
        user_present: data.user_present(),
        user_verified: data.user_verified(),
        backup_eligible: data.backup_eligible(),
        backed_up: data.backed_up(),
    })
}

/// Verifies an assertion by a stored credential (WebAuthn Level 3 §7.2, steps 10–22 less the
/// ones that need storage: the caller looked the credential up by id, checked it belongs to
/// the user, and stores the returned counter).
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8],
    require_user_verification: bool,
    credential: &StoredCredential<'_>,
    response: &AssertionResponse<'_>,
) -> Result<VerifiedAssertion, WebAuthnError> {
    if response.client_data_json.len() > MAX_CLIENT_DATA_JSON {
        return Err(WebAuthnError::TooLarge("client data"));
    }
    if response.authenticator_data.len() > MAX_AUTHENTICATOR_DATA {
        return Err(WebAuthnError::TooLarge("authenticator data"));
    }
    if response.signature.len() > MAX_SIGNATURE {
        return Err(WebAuthnError::TooLarge("signature"));
    }
    client_data::check(
        response.client_data_json,
        Ceremony::Get,
        challenge,
        &rp.origins,
    )?;
    let data = AuthenticatorData::parse(response.authenticator_data, false)?;
    data.check(&rp_id_hash(&rp.id), require_user_verification)?;
    let key = cbor::read_whole(credential.public_key)
        .ok_or(WebAuthnError::Malformed("stored public key"))
        .and_then(PublicKey::from_cose)?;
    if key.algorithm() != credential.algorithm {
        return Err(WebAuthnError::UnsupportedAlgorithm);
    }
    let client_data_hash = digest(&SHA256, response.client_data_json);
    let mut signed =
        Vec::with_capacity(response.authenticator_data.len() + client_data_hash.as_ref().len());
    signed.extend_from_slice(response.authenticator_data);
    signed.extend_from_slice(client_data_hash.as_ref());
    key.verify(&signed, response.signature)?;
    // §7.2 step 22: a counter that does not increase, once either side counts, is a sign of
    // a cloned authenticator.
    if (data.sign_count != 0 || credential.sign_count != 0)
        && data.sign_count <= credential.sign_count
    {
        return Err(WebAuthnError::CounterRegression);
    }
    Ok(VerifiedAssertion {
        sign_count: data.sign_count,
        user_present: data.user_present(),
        user_verified: data.user_verified(),
        backup_eligible: data.backup_eligible(),
        backed_up: data.backed_up(),
    })
}

fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    let mut hash = [0; 32];
    hash.copy_from_slice(digest(&SHA256, rp_id.as_bytes()).as_ref());
    hash
}
