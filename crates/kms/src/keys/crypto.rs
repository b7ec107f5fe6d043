//! Crypto operations on elastic keys: encrypt, decrypt, sign, verify, generate data keys.

use cryptoutil_jose::{jwe, jws};
use cryptoutil_telemetry::crypto_span;
use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::algorithm::{self, DataKeyKind, Purpose};
use super::{
    CONTEXT_HEADER, GeneratedDataKey, KeyError, KeyService, check_context, header_for, kid_of,
    need, public_for, require_active, require_usable, wrong_purpose,
};
use crate::audit::KeyOperation;
use crate::model::Principal;
use crate::repository::{BarrierStore, KeyStore};
use crate::scopes;

impl<S: KeyStore + BarrierStore> KeyService<S> {
    /// Encrypts with the newest material key: compact JWE, `kid` = material key id, the optional
    /// context bound into the protected header.
    pub async fn encrypt(
        &self,
        who: &Principal,
        id: Uuid,
        plaintext: &[u8],
        context: Option<&str>,
    ) -> Result<String, KeyError> {
        let result = self.encrypt_unaudited(who, id, plaintext, context).await;
        self.audited(who, KeyOperation::Encrypt, id, result)
    }

    /// Decrypts a compact JWE made with any non-revoked version of this elastic key. The context
    /// must equal the one given at encryption (both absent is equal).
    pub async fn decrypt(
        &self,
        who: &Principal,
        id: Uuid,
        token: &str,
        context: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let result = self.decrypt_unaudited(who, id, token, context).await;
        self.audited(who, KeyOperation::Decrypt, id, result)
    }

    /// Signs with the newest material key: compact JWS, `kid` = material key id.
    pub async fn sign(
        &self,
        who: &Principal,
        id: Uuid,
        payload: &[u8],
    ) -> Result<String, KeyError> {
        let result = self.sign_unaudited(who, id, payload).await;
        self.audited(who, KeyOperation::Sign, id, result)
    }

    /// Verifies a compact JWS made with any non-revoked version; returns the payload.
    pub async fn verify(
        &self,
        who: &Principal,
        id: Uuid,
        token: &str,
    ) -> Result<Vec<u8>, KeyError> {
        let result = self.verify_unaudited(who, id, token).await;
        self.audited(who, KeyOperation::Verify, id, result)
    }

    /// Generates a data key and returns it encrypted under the elastic key (and in clear when
    /// asked). The context, if any, is bound like [`Self::encrypt`]'s.
    pub async fn generate(
        &self,
        who: &Principal,
        id: Uuid,
        kind: &str,
        context: Option<&str>,
        include_plaintext: bool,
    ) -> Result<GeneratedDataKey, KeyError> {
        let result = self
            .generate_unaudited(who, id, kind, context, include_plaintext)
            .await;
        self.audited(who, KeyOperation::Generate, id, result)
    }

    async fn encrypt_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        plaintext: &[u8],
        context: Option<&str>,
    ) -> Result<(String, Uuid), KeyError> {
        need(who, scopes::ENCRYPT)?;
        let (key, material) = self.key_with_latest(who.tenant, id).await?;
        require_active(&key)?;
        let Purpose::Encryption { enc, alg } = algorithm::parse(&key.algorithm)?.1 else {
            return Err(wrong_purpose("encrypt", "a signing"));
        };
        let jwk = self.unsealed(who.tenant, &material).await?;
        let header = header_for(material.id, context)?;
        let public = public_for(&jwk)?;
        let out = {
            let _span = crypto_span("kms", "encrypt", &key.algorithm).entered();
            jwe::encrypt(&public, alg, enc, plaintext, Some(&header))
        }
        .map_err(|e| KeyError::Internal(format!("encryption failed: {e}")))?;
        Ok((out, material.id))
    }

    async fn decrypt_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        token: &str,
        context: Option<&str>,
    ) -> Result<(Zeroizing<Vec<u8>>, Uuid), KeyError> {
        need(who, scopes::DECRYPT)?;
        check_context(context)?;
        let key = self.key_for_use(who.tenant, id).await?;
        require_usable(&key)?;
        let Purpose::Encryption { enc, alg } = algorithm::parse(&key.algorithm)?.1 else {
            return Err(wrong_purpose("decrypt", "a signing"));
        };
        let header = jwe::peek_header(token)
            .map_err(|e| KeyError::Invalid(format!("not a compact JWE: {e}")))?;
        let material_id = kid_of(header.kid())?;
        let jwk = self.material_by_id(who.tenant, &key, material_id).await?;
        let out = {
            let _span = crypto_span("kms", "decrypt", &key.algorithm).entered();
            jwe::decrypt(&jwk, alg, enc, token)
        }
        .map_err(|e| {
            KeyError::DecryptionFailed(format!("the JWE does not decrypt with this key: {e}"))
        })?;
        let plaintext = Zeroizing::new(out.plaintext);
        let bound = out.header.get(CONTEXT_HEADER);
        let matches = match (bound, context) {
            (None, None) => true,
            (Some(Value::String(bound)), Some(given)) => bound == given,
            _ => false,
        };
        if !matches {
            return Err(KeyError::DecryptionFailed(
                "the context does not match the one bound at encryption".to_owned(),
            ));
        }
        Ok((plaintext, material_id))
    }

    async fn sign_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        payload: &[u8],
    ) -> Result<(String, Uuid), KeyError> {
        need(who, scopes::SIGN)?;
        let (key, material) = self.key_with_latest(who.tenant, id).await?;
        require_active(&key)?;
        let Purpose::Signing(alg) = algorithm::parse(&key.algorithm)?.1 else {
            return Err(wrong_purpose("sign", "an encryption"));
        };
        let jwk = self.unsealed(who.tenant, &material).await?;
        let header = header_for(material.id, None)?;
        let out = {
            let _span = crypto_span("kms", "sign", &key.algorithm).entered();
            jws::sign(&jwk, alg, payload, Some(&header))
        }
        .map_err(|e| KeyError::Internal(format!("signing failed: {e}")))?;
        Ok((out, material.id))
    }

    async fn verify_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        token: &str,
    ) -> Result<(Vec<u8>, Uuid), KeyError> {
        need(who, scopes::VERIFY)?;
        let key = self.key_for_use(who.tenant, id).await?;
        require_usable(&key)?;
        let Purpose::Signing(alg) = algorithm::parse(&key.algorithm)?.1 else {
            return Err(wrong_purpose("verify", "an encryption"));
        };
        let header = jws::peek_header(token)
            .map_err(|e| KeyError::Invalid(format!("not a compact JWS: {e}")))?;
        let material_id = kid_of(header.kid())?;
        let jwk = self.material_by_id(who.tenant, &key, material_id).await?;
        let public = public_for(&jwk)?;
        let verified = {
            let _span = crypto_span("kms", "verify", &key.algorithm).entered();
            jws::verify(&public, alg, token)
        }
        .map_err(|e| KeyError::InvalidSignature(format!("the signature does not verify: {e}")))?;
        Ok((verified.payload, material_id))
    }

    async fn generate_unaudited(
        &self,
        who: &Principal,
        id: Uuid,
        kind: &str,
        context: Option<&str>,
        include_plaintext: bool,
    ) -> Result<(GeneratedDataKey, Uuid), KeyError> {
        need(who, scopes::GENERATE)?;
        let kind = DataKeyKind::parse(kind)?;
        let (key, material) = self.key_with_latest(who.tenant, id).await?;
        require_active(&key)?;
        let Purpose::Encryption { enc, alg } = algorithm::parse(&key.algorithm)?.1 else {
            return Err(wrong_purpose("generate data keys", "a signing"));
        };
        let mut data_key = super::materials::generate_off_thread(move || kind.generate()).await?;
        data_key.set_kid(Some(Uuid::now_v7().to_string()));
        let clear = data_key.to_json(true);
        let jwk = self.unsealed(who.tenant, &material).await?;
        let mut header = header_for(material.id, context)?;
        header.insert("cty".to_owned(), Value::String("jwk+json".to_owned()));
        let public = public_for(&jwk)?;
        let encrypted_jwk = {
            let _span = crypto_span("kms", "generate", &key.algorithm).entered();
            jwe::encrypt(&public, alg, enc, clear.as_bytes(), Some(&header))
        }
        .map_err(|e| KeyError::Internal(format!("encryption failed: {e}")))?;
        let generated = GeneratedDataKey {
            encrypted_jwk,
            jwk: include_plaintext.then_some(clear),
        };
        Ok((generated, material.id))
    }
}
