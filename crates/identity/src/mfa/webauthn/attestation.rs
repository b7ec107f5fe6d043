//! Attestation objects and statements (WebAuthn Level 3 §6.5, §8.2, §8.7): the `none` format
//! and the `packed` format, self attestation or full attestation with an x5c chain whose leaf
//! meets §8.2.1. No trust anchor is evaluated (there is no FIDO metadata service): a full
//! attestation proves the statement was made by the holder of the leaf certificate's key, not
//! that the key belongs to a trusted manufacturer.

use ciborium::Value;
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Version};

use super::cose::{self, PublicKey};
use super::{AttestationFormat, MAX_X5C_CERTIFICATES, SUPPORTED_ALGORITHMS, WebAuthnError, cbor};
use crate::mfa::AttestationPolicy;

/// The id-fido-gen-ce-aaguid certificate extension.
const AAGUID_EXTENSION: &str = "1.3.6.1.4.1.45724.1.1.4";
/// The OU §8.2.1 requires of a packed attestation certificate.
const ATTESTATION_OU: &str = "Authenticator Attestation";

/// An attestation object's three members.
#[derive(Debug)]
pub(super) struct AttestationObject {
    /// `fmt`.
    pub format: String,
    /// `attStmt`, its text keys unique.
    pub statement: Vec<(String, Value)>,
    /// `authData`.
    pub auth_data: Vec<u8>,
}

impl AttestationObject {
    /// Parses the CBOR map `{fmt, attStmt, authData}`; nothing may follow it.
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let malformed = || WebAuthnError::Malformed("attestation object");
        let entries = cbor::read_whole(bytes)
            .and_then(cbor::text_map)
            .ok_or_else(malformed)?;
        let (mut format, mut statement, mut auth_data) = (None, None, None);
        for (key, value) in entries {
            match (key.as_str(), value) {
                ("fmt", Value::Text(text)) => format = Some(text),
                ("attStmt", value) => {
                    statement = Some(cbor::text_map(value).ok_or(
                        WebAuthnError::InvalidAttestation("the statement is not a map"),
                    )?);
                }
                ("authData", Value::Bytes(bytes)) => auth_data = Some(bytes),
                _ => return Err(malformed()),
            }
        }
        Ok(Self {
            format: format.ok_or_else(malformed)?,
            statement: statement.ok_or_else(malformed)?,
            auth_data: auth_data.ok_or_else(malformed)?,
        })
    }

    /// Verifies the statement over `authData || clientDataHash` (§7.1 steps 19–21) under the
    /// deployment's policy.
    pub(super) fn verify(
        &self,
        policy: AttestationPolicy,
        client_data_hash: &[u8],
        credential_key: &PublicKey,
        aaguid: &[u8; 16],
    ) -> Result<AttestationFormat, WebAuthnError> {
        match self.format.as_str() {
            "none" => {
                if !self.statement.is_empty() {
                    return Err(WebAuthnError::InvalidAttestation(
                        "a none statement must be empty",
                    ));
                }
                if policy == AttestationPolicy::PackedOnly {
                    return Err(WebAuthnError::AttestationRequired);
                }
                Ok(AttestationFormat::None)
            }
            "packed" => {
                let mut signed = Vec::with_capacity(self.auth_data.len() + client_data_hash.len());
                signed.extend_from_slice(&self.auth_data);
                signed.extend_from_slice(client_data_hash);
                verify_packed(&self.statement, &signed, credential_key, aaguid)?;
                Ok(AttestationFormat::Packed)
            }
            _ => Err(WebAuthnError::UnsupportedAttestation),
        }
    }
}

/// The packed statement `{alg, sig, x5c?}` (§8.2).
fn verify_packed(
    statement: &[(String, Value)],
    signed: &[u8],
    credential_key: &PublicKey,
    aaguid: &[u8; 16],
) -> Result<(), WebAuthnError> {
    let invalid = WebAuthnError::InvalidAttestation;
    let (mut algorithm, mut signature, mut x5c) = (None, None, None);
    for (key, value) in statement {
        match (key.as_str(), value) {
            ("alg", Value::Integer(alg)) => {
                algorithm =
                    Some(i64::try_from(*alg).map_err(|_| WebAuthnError::UnsupportedAlgorithm)?);
            }
            ("sig", Value::Bytes(sig)) => signature = Some(sig.as_slice()),
            ("x5c", Value::Array(certificates)) => x5c = Some(certificates.as_slice()),
            _ => return Err(invalid("unexpected member in a packed statement")),
        }
    }
    let algorithm = algorithm.ok_or(invalid("the packed statement has no alg"))?;
    let signature = signature.ok_or(invalid("the packed statement has no sig"))?;
    if !SUPPORTED_ALGORITHMS.contains(&algorithm) {
        return Err(WebAuthnError::UnsupportedAlgorithm);
    }
    let Some(x5c) = x5c else {
        // Self attestation: the credential key signs, under its own algorithm.
        if algorithm != credential_key.algorithm() {
            return Err(invalid(
                "self attestation under another algorithm than the key's",
            ));
        }
        return credential_key.verify(signed, signature);
    };
    if x5c.is_empty() {
        return Err(invalid("the x5c chain is empty"));
    }
    if x5c.len() > MAX_X5C_CERTIFICATES {
        return Err(WebAuthnError::TooLarge("x5c chain"));
    }
    let mut ders = Vec::with_capacity(x5c.len());
    for certificate in x5c {
        let Value::Bytes(der) = certificate else {
            return Err(invalid("an x5c entry is not a certificate"));
        };
        ders.push(der.as_slice());
    }
    let mut leaf = None;
    for der in &ders {
        let (rest, certificate) = X509Certificate::from_der(der)
            .map_err(|_| invalid("an x5c certificate does not parse"))?;
        if !rest.is_empty() {
            return Err(invalid("bytes follow an x5c certificate"));
        }
        leaf.get_or_insert(certificate);
    }
    let leaf = leaf.ok_or(invalid("the x5c chain is empty"))?;
    check_leaf(&leaf, aaguid)?;
    cose::verify_with_certificate_key(
        algorithm,
        leaf.public_key().subject_public_key.data.as_ref(),
        signed,
        signature,
    )
}

/// §8.2.1: version 3; subject C, O, OU "Authenticator Attestation" and CN; not a CA; the AAGUID
/// extension, when present, not critical and equal to the credential's.
fn check_leaf(leaf: &X509Certificate<'_>, aaguid: &[u8; 16]) -> Result<(), WebAuthnError> {
    let invalid = WebAuthnError::InvalidAttestation;
    if leaf.version() != X509Version::V3 {
        return Err(invalid("the attestation certificate is not version 3"));
    }
    let subject = leaf.subject();
    fn one(values: Vec<Option<&str>>) -> Option<String> {
        match values.as_slice() {
            [Some(value)] if !value.is_empty() => Some((*value).to_owned()),
            _ => None,
        }
    }
    let country = one(subject.iter_country().map(|a| a.as_str().ok()).collect());
    let organization = one(subject
        .iter_organization()
        .map(|a| a.as_str().ok())
        .collect());
    let unit = one(subject
        .iter_organizational_unit()
        .map(|a| a.as_str().ok())
        .collect());
    let common_name = one(subject
        .iter_common_name()
        .map(|a| a.as_str().ok())
        .collect());
    if country.is_none_or(|c| c.len() != 2) || organization.is_none() || common_name.is_none() {
        return Err(invalid(
            "the attestation certificate's subject lacks C, O or CN",
        ));
    }
    if unit.as_deref() != Some(ATTESTATION_OU) {
        return Err(invalid(
            "the attestation certificate's OU is not \"Authenticator Attestation\"",
        ));
    }
    match leaf.basic_constraints() {
        Ok(Some(constraints)) if constraints.value.ca => {
            return Err(invalid("the attestation certificate is a CA"));
        }
        Ok(_) => {}
        Err(_) => {
            return Err(invalid(
                "the attestation certificate's basic constraints are invalid",
            ));
        }
    }
    let mut aaguid_extensions = leaf
        .extensions()
        .iter()
        .filter(|extension| extension.oid.to_id_string() == AAGUID_EXTENSION);
    if let Some(extension) = aaguid_extensions.next() {
        if aaguid_extensions.next().is_some() || extension.critical {
            return Err(invalid(
                "the attestation certificate's AAGUID extension is invalid",
            ));
        }
        // extnValue holds an OCTET STRING of 16 bytes.
        let matches = extension
            .value
            .split_first_chunk::<2>()
            .is_some_and(|(header, value)| *header == [0x04, 0x10] && value == aaguid);
        if !matches {
            return Err(invalid("the attestation certificate names another AAGUID"));
        }
    }
    Ok(())
}
