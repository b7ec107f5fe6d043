//! Authenticator data (WebAuthn Level 3 §6.1): the RP id hash, the flags, the signature
//! counter, the attested credential data of a registration and the extensions, parsed with no
//! byte left over.

use ciborium::Value;

use super::{MAX_CREDENTIAL_ID, WebAuthnError, cbor};

/// User present.
const UP: u8 = 0x01;
/// User verified.
const UV: u8 = 0x04;
/// Backup eligible.
const BE: u8 = 0x08;
/// Backed up.
const BS: u8 = 0x10;
/// Attested credential data included.
const AT: u8 = 0x40;
/// Extension data included.
const ED: u8 = 0x80;
/// The fixed part: rpIdHash (32), flags (1), signCount (4).
const FIXED_LEN: usize = 37;
/// Entries accepted in the extensions map.
const MAX_EXTENSIONS: usize = 16;

/// The attested credential data of a registration (§6.5.1).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AttestedCredential {
    /// The authenticator model's AAGUID.
    pub aaguid: [u8; 16],
    /// The credential id (at most [`MAX_CREDENTIAL_ID`] bytes).
    pub credential_id: Vec<u8>,
    /// The credential public key: the COSE_Key bytes as they appear.
    pub public_key: Vec<u8>,
    /// The same key, decoded.
    pub public_key_value: Value,
}

/// Parsed authenticator data.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AuthenticatorData {
    /// SHA-256 of the RP id the authenticator scoped the credential to.
    pub rp_id_hash: [u8; 32],
    /// The flags byte.
    pub flags: u8,
    /// The signature counter.
    pub sign_count: u32,
    /// Present exactly when the AT flag is.
    pub attested: Option<AttestedCredential>,
}

impl AuthenticatorData {
    /// Parses authenticator data; `attested` says whether the ceremony requires attested
    /// credential data (registration) or forbids it (authentication).
    pub(super) fn parse(bytes: &[u8], attested: bool) -> Result<Self, WebAuthnError> {
        let malformed = WebAuthnError::Malformed("authenticator data");
        let (fixed, mut rest) = bytes
            .split_first_chunk::<FIXED_LEN>()
            .ok_or(malformed.clone())?;
        let (rp_id_hash, tail) = fixed.split_first_chunk::<32>().ok_or(malformed.clone())?;
        let (&flags, count) = tail.split_first().ok_or(malformed.clone())?;
        let count: [u8; 4] = count.try_into().map_err(|_| malformed.clone())?;
        if (flags & AT != 0) != attested {
            return Err(malformed);
        }
        let attested = if flags & AT != 0 {
            Some(attested_credential(&mut rest)?)
        } else {
            None
        };
        if flags & ED != 0 {
            let extensions =
                cbor::read_item(&mut rest).ok_or(WebAuthnError::Malformed("extensions"))?;
            match extensions {
                Value::Map(entries) if entries.len() <= MAX_EXTENSIONS => {}
                _ => return Err(WebAuthnError::Malformed("extensions")),
            }
        }
        if !rest.is_empty() {
            return Err(WebAuthnError::Malformed(
                "trailing bytes after the authenticator data",
            ));
        }
        Ok(Self {
            rp_id_hash: *rp_id_hash,
            flags,
            sign_count: u32::from_be_bytes(count),
            attested,
        })
    }

    /// The UP flag.
    pub(super) fn user_present(&self) -> bool {
        self.flags & UP != 0
    }

    /// The UV flag.
    pub(super) fn user_verified(&self) -> bool {
        self.flags & UV != 0
    }

    /// The BE flag.
    pub(super) fn backup_eligible(&self) -> bool {
        self.flags & BE != 0
    }

    /// The BS flag.
    pub(super) fn backed_up(&self) -> bool {
        self.flags & BS != 0
    }

    /// The checks shared by both ceremonies (§7.1 steps 13–17, §7.2 steps 15–18): the RP id
    /// hash, user presence, user verification when required, and BS only with BE.
    pub(super) fn check(
        &self,
        rp_id_hash: &[u8; 32],
        require_user_verification: bool,
    ) -> Result<(), WebAuthnError> {
        if self.rp_id_hash != *rp_id_hash {
            return Err(WebAuthnError::RpIdMismatch);
        }
        if !self.user_present() {
            return Err(WebAuthnError::UserNotPresent);
        }
        if require_user_verification && !self.user_verified() {
            return Err(WebAuthnError::UserNotVerified);
        }
        if self.backed_up() && !self.backup_eligible() {
            return Err(WebAuthnError::InvalidBackupState);
        }
        Ok(())
    }
}

/// AAGUID (16), credential id length (2), credential id, COSE key.
fn attested_credential(rest: &mut &[u8]) -> Result<AttestedCredential, WebAuthnError> {
    let malformed = || WebAuthnError::Malformed("attested credential data");
    let (aaguid, tail) = rest.split_first_chunk::<16>().ok_or_else(malformed)?;
    let (length, tail) = tail.split_first_chunk::<2>().ok_or_else(malformed)?;
    let length = usize::from(u16::from_be_bytes(*length));
    if length == 0 {
        return Err(malformed());
    }
    if length > MAX_CREDENTIAL_ID {
        return Err(WebAuthnError::TooLarge("credential id"));
    }
    let (credential_id, tail) = tail.split_at_checked(length).ok_or_else(malformed)?;
    let mut after_key = tail;
    let public_key_value =
        cbor::read_item(&mut after_key).ok_or(WebAuthnError::Malformed("credential public key"))?;
    let key_len = tail.len().saturating_sub(after_key.len());
    let public_key = tail.get(..key_len).ok_or_else(malformed)?.to_vec();
    let attested = AttestedCredential {
        aaguid: *aaguid,
        credential_id: credential_id.to_vec(),
        public_key,
        public_key_value,
    };
    *rest = after_key;
    Ok(attested)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn fixed(flags: u8, count: u32) -> Vec<u8> {
        let mut bytes = vec![0xaa; 32];
        bytes.push(flags);
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes
    }

    /// A minimal COSE key map {1: 2} (enough for the parser, which does not judge keys).
    const KEY: [u8; 3] = [0xa1, 0x01, 0x02];

    fn attested(flags: u8, id_len: u16) -> Vec<u8> {
        let mut bytes = fixed(flags | AT, 1);
        bytes.extend_from_slice(&[0x11; 16]);
        bytes.extend_from_slice(&id_len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0x22, usize::from(id_len)));
        bytes.extend_from_slice(&KEY);
        bytes
    }

    #[test]
    fn parses_assertion_data_and_flags() {
        let data = AuthenticatorData::parse(&fixed(UP | UV | BE | BS, 7), false).unwrap();
        assert_eq!(data.sign_count, 7);
        assert!(data.user_present() && data.user_verified());
        assert!(data.backup_eligible() && data.backed_up());
        assert!(data.attested.is_none());
        assert_eq!(data.check(&[0xaa; 32], true), Ok(()));
    }

    #[test]
    fn parses_attested_credential_data() {
        let data = AuthenticatorData::parse(&attested(UP, 20), true).unwrap();
        let credential = data.attested.unwrap();
        assert_eq!(credential.aaguid, [0x11; 16]);
        assert_eq!(credential.credential_id, vec![0x22; 20]);
        assert_eq!(credential.public_key, KEY.to_vec());
    }

    #[test]
    fn refuses_short_trailing_and_misplaced_data() {
        assert!(AuthenticatorData::parse(&fixed(UP, 0)[..36], false).is_err());
        let mut trailing = fixed(UP, 0);
        trailing.push(0);
        assert_eq!(
            AuthenticatorData::parse(&trailing, false),
            Err(WebAuthnError::Malformed(
                "trailing bytes after the authenticator data"
            ))
        );
        let mut after_key = attested(UP, 4);
        after_key.push(0xa0);
        assert!(AuthenticatorData::parse(&after_key, true).is_err());
        // Registration needs AT; authentication refuses it.
        assert!(AuthenticatorData::parse(&fixed(UP, 0), true).is_err());
        assert!(AuthenticatorData::parse(&attested(UP, 4), false).is_err());
        // The credential id runs past the end.
        let mut cut = attested(UP, 4);
        cut.truncate(FIXED_LEN + 18 + 2);
        assert!(AuthenticatorData::parse(&cut, true).is_err());
    }

    #[test]
    fn credential_ids_are_bounded() {
        assert!(AuthenticatorData::parse(&attested(UP, 1023), true).is_ok());
        assert_eq!(
            AuthenticatorData::parse(&attested(UP, 1024), true),
            Err(WebAuthnError::TooLarge("credential id"))
        );
        assert!(AuthenticatorData::parse(&attested(UP, 0), true).is_err());
    }

    #[test]
    fn extensions_are_parsed_and_bounded() {
        let mut with = fixed(UP | ED, 0);
        with.extend_from_slice(&[0xa1, 0x61, b'x', 0xf5]);
        assert!(AuthenticatorData::parse(&with, false).is_ok());
        let mut not_map = fixed(UP | ED, 0);
        not_map.push(0x01);
        assert!(AuthenticatorData::parse(&not_map, false).is_err());
        let mut missing = fixed(UP | ED, 0);
        assert!(AuthenticatorData::parse(&missing, false).is_err());
        missing.extend_from_slice(&[0xa1, 0x61, b'x', 0xf5, 0x00]);
        assert!(AuthenticatorData::parse(&missing, false).is_err());
        let mut many = fixed(UP | ED, 0);
        many.push(0xb1); // a map of 17 entries
        for i in 0..17u8 {
            many.extend_from_slice(&[i, 0xf5]);
        }
        assert!(AuthenticatorData::parse(&many, false).is_err());
    }

    #[test]
    fn checks_rp_id_presence_verification_and_backup_state() {
        let rp = [0xaa; 32];
        let parse = |flags| AuthenticatorData::parse(&fixed(flags, 0), false).unwrap();
        assert_eq!(
            parse(UP).check(&[0xab; 32], false),
            Err(WebAuthnError::RpIdMismatch)
        );
        assert_eq!(
            parse(UV).check(&rp, false),
            Err(WebAuthnError::UserNotPresent)
        );
        assert_eq!(
            parse(UP).check(&rp, true),
            Err(WebAuthnError::UserNotVerified)
        );
        assert_eq!(parse(UP).check(&rp, false), Ok(()));
        assert_eq!(
            parse(UP | BS).check(&rp, false),
            Err(WebAuthnError::InvalidBackupState)
        );
        assert_eq!(parse(UP | BE).check(&rp, false), Ok(()));
    }
}
