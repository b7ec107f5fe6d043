//! JWE JSON serialization (RFC 7516 §7.2): general syntax with several recipients on output;
//! general and flattened syntax on input.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{Decrypted, RESERVED, alg, check_alg_enc, decode_exact, enc};
use crate::b64;
use crate::error::{JoseError, Result};
use crate::header::{Header, check_crit, parse_object};
use crate::jwa::{ContentEncryption, JweAlgorithm, truncate};
use crate::jwk::{Jwk, Op, random_bytes};
use crate::limits::{MAX_HEADER_LEN, MAX_JSON_LEN, MAX_RECIPIENTS};

/// One recipient of a JWE JSON serialization.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    /// The recipient's key (public suffices).
    pub key: &'a Jwk,
    /// Key management algorithm for this recipient.
    pub alg: JweAlgorithm,
    /// Extra members of this recipient's unprotected header. `kid` defaults to the key's `kid`.
    pub header: Option<&'a Map<String, Value>>,
}

/// Encrypts `plaintext` once (one CEK) for several recipients, each wrapping the CEK with its
/// own key. `protected_extra` adds protected members; `aad` is optional additional
/// authenticated data. `dir` and `ECDH-ES` are only allowed with exactly one recipient.
///
/// # Errors
/// No recipients, too many recipients, a direct algorithm with several recipients, key
/// mismatches, reserved header names.
pub fn encrypt_json(
    recipients: &[Recipient<'_>],
    enc: ContentEncryption,
    plaintext: &[u8],
    protected_extra: Option<&Map<String, Value>>,
    aad: Option<&[u8]>,
) -> Result<String> {
    if recipients.is_empty() {
        return Err(JoseError::Malformed("at least one recipient is required"));
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(JoseError::TooLarge {
            what: "recipients",
            limit: MAX_RECIPIENTS,
        });
    }
    let direct = recipients.iter().any(|r| r.alg.is_direct());
    if direct && recipients.len() > 1 {
        return Err(JoseError::KeyMismatch(
            "dir, ECDH-ES and direct ML-KEM cannot be used with several recipients",
        ));
    }

    let mut protected = Map::new();
    protected.insert("enc".into(), enc.name().into());
    if let Some(extra) = protected_extra {
        for (k, v) in extra {
            if RESERVED.contains(&k.as_str()) {
                return Err(JoseError::InvalidHeader(truncate(k)));
            }
            protected.insert(k.clone(), v.clone());
        }
    }

    let shared: Option<Zeroizing<Vec<u8>>> = if direct {
        None
    } else {
        Some(random_bytes(enc.key_len())?)
    };
    let mut out_recipients = Vec::with_capacity(recipients.len());
    let mut direct_cek = None;
    for r in recipients {
        r.key
            .check_usage(&super::usage_names(r.alg, enc), Op::Encrypt)?;
        let mut header = Map::new();
        header.insert("alg".into(), r.alg.name().into());
        if let Some(kid) = r.key.kid()
            && !protected.contains_key("kid")
        {
            header.insert("kid".into(), kid.into());
        }
        if let Some(extra) = r.header {
            for (k, v) in extra {
                if RESERVED.contains(&k.as_str()) || protected.contains_key(k) {
                    return Err(JoseError::InvalidHeader(truncate(k)));
                }
                header.insert(k.clone(), v.clone());
            }
        }
        // apu/apv for ECDH may come from either header.
        let mut joint = protected.clone();
        joint.extend(header.iter().map(|(k, v)| (k.clone(), v.clone())));
        let wrapped = alg::wrap(
            r.key,
            r.alg,
            enc,
            shared.as_deref().map(Vec::as_slice),
            Some(&joint),
        )?;
        for (k, v) in wrapped.params {
            header.insert(k.into(), v);
        }
        let mut entry = Map::new();
        entry.insert("header".into(), Value::Object(header));
        if !wrapped.encrypted_key.is_empty() {
            entry.insert(
                "encrypted_key".into(),
                b64::encode(&wrapped.encrypted_key).into(),
            );
        }
        out_recipients.push(Value::Object(entry));
        if direct {
            direct_cek = Some(Zeroizing::new(wrapped.cek.bytes().to_vec()));
        }
    }
    let cek = match (&shared, &direct_cek) {
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(JoseError::Crypto("no CEK")),
    };

    let protected_b64 = b64::encode(Value::Object(protected).to_string().as_bytes());
    let mut full_aad = protected_b64.clone();
    let aad_b64 = aad.map(b64::encode);
    if let Some(a) = &aad_b64 {
        full_aad.push('.');
        full_aad.push_str(a);
    }
    let sealed = enc::encrypt(enc, cek, None, full_aad.as_bytes(), plaintext)?;
    let mut out = Map::new();
    out.insert("protected".into(), protected_b64.into());
    out.insert("recipients".into(), Value::Array(out_recipients));
    if let Some(a) = aad_b64 {
        out.insert("aad".into(), a.into());
    }
    out.insert("iv".into(), b64::encode(sealed.iv()).into());
    out.insert("ciphertext".into(), b64::encode(&sealed.ciphertext).into());
    out.insert("tag".into(), b64::encode(sealed.tag()).into());
    Ok(Value::Object(out).to_string())
}

fn get_str<'a>(m: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::Malformed(name)),
    }
}

fn get_obj<'a>(
    m: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a Map<String, Value>>> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::Object(o)) => {
            if Value::Object(o.clone()).to_string().len() > MAX_HEADER_LEN {
                return Err(JoseError::TooLarge {
                    what: name,
                    limit: MAX_HEADER_LEN,
                });
            }
            Ok(Some(o))
        }
        Some(_) => Err(JoseError::Malformed(name)),
    }
}

/// Decrypts a JWE JSON serialization (general or flattened) with `key`: the first recipient
/// whose joint header has the expected `alg`/`enc` (and a matching `kid` when both sides have
/// one) and whose key unwraps successfully wins.
///
/// # Errors
/// Malformed input, header conflicts, `crit`/`zip` violations, [`JoseError::NoMatchingRecipient`]
/// or [`JoseError::DecryptionFailed`].
pub fn decrypt_json(
    key: &Jwk,
    alg: JweAlgorithm,
    enc: ContentEncryption,
    json: &str,
) -> Result<Decrypted> {
    key.check_usage(&super::usage_names(alg, enc), Op::Decrypt)?;
    if json.len() > MAX_JSON_LEN {
        return Err(JoseError::TooLarge {
            what: "JWE JSON serialization",
            limit: MAX_JSON_LEN,
        });
    }
    let top = parse_object(json.as_bytes(), "JWE JSON serialization")?;
    let protected_b64 = get_str(&top, "protected")?.unwrap_or("");
    let protected = if protected_b64.is_empty() {
        Header::default()
    } else {
        crate::jws::decode_header(protected_b64)?
    };
    check_crit(protected.members(), &[])?;
    let unprotected = get_obj(&top, "unprotected")?;
    let iv_s = get_str(&top, "iv")?.ok_or(JoseError::Malformed("iv"))?;
    let ct_s = get_str(&top, "ciphertext")?.ok_or(JoseError::Malformed("ciphertext"))?;
    let tag_s = get_str(&top, "tag")?.ok_or(JoseError::Malformed("tag"))?;
    let aad_s = get_str(&top, "aad")?;

    let flattened;
    let recipients: &[Value] = match top.get("recipients") {
        Some(Value::Array(r)) => {
            if top.contains_key("header") || top.contains_key("encrypted_key") {
                return Err(JoseError::Malformed("both general and flattened syntax"));
            }
            r
        }
        Some(_) => return Err(JoseError::Malformed("recipients")),
        None => {
            let mut r = Map::new();
            for name in ["header", "encrypted_key"] {
                if let Some(v) = top.get(name) {
                    r.insert(name.into(), v.clone());
                }
            }
            flattened = [Value::Object(r)];
            &flattened
        }
    };
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(JoseError::Malformed("number of recipients"));
    }

    let iv = decode_exact(iv_s, enc.iv_len(), "IV length does not match enc")?;
    let tag = decode_exact(tag_s, enc.tag_len(), "tag length does not match enc")?;
    let mut full_aad =
        String::with_capacity(protected_b64.len() + aad_s.map_or(0, |a| a.len() + 1));
    full_aad.push_str(protected_b64);
    if let Some(a) = aad_s {
        b64::decode(a.as_bytes(), "aad")?;
        full_aad.push('.');
        full_aad.push_str(a);
    }

    let mut last_err = JoseError::NoMatchingRecipient;
    for r in recipients {
        let Value::Object(r) = r else {
            return Err(JoseError::Malformed("recipient"));
        };
        let rh = get_obj(r, "header")?;
        // Joint header: the three headers must be disjoint (RFC 7516 §7.2.1).
        let mut joint = protected.members().clone();
        for h in [unprotected, rh].into_iter().flatten() {
            for (k, v) in h {
                if joint.contains_key(k) {
                    return Err(JoseError::HeaderConflict(truncate(k)));
                }
                if k == "crit" {
                    return Err(JoseError::Crit("must be integrity protected".into()));
                }
                joint.insert(k.clone(), v.clone());
            }
        }
        if check_alg_enc(&joint, alg, enc).is_err() {
            if joint.contains_key("zip") {
                return Err(JoseError::UnsupportedZip);
            }
            continue;
        }
        if let (Some(mine), Some(Value::String(theirs))) = (key.kid(), joint.get("kid"))
            && mine != theirs
        {
            continue;
        }
        let ek = match get_str(r, "encrypted_key")? {
            Some(s) => {
                if s.len() > b64::encoded_len(crate::limits::MAX_ENCRYPTED_KEY_LEN) {
                    return Err(JoseError::TooLarge {
                        what: "encrypted key",
                        limit: crate::limits::MAX_ENCRYPTED_KEY_LEN,
                    });
                }
                b64::decode(s.as_bytes(), "encrypted key")?
            }
            None => Vec::new(),
        };
        let attempt = alg::unwrap(key, alg, enc, &joint, &ek).and_then(|cek| {
            let mut buf = Vec::with_capacity(ct_s.len() / 4 * 3 + 3 + tag.len());
            b64::decode_into(ct_s.as_bytes(), &mut buf, "ciphertext")?;
            enc::decrypt_in_place(
                enc,
                cek.bytes(),
                cek.gcm(enc)?,
                &iv,
                full_aad.as_bytes(),
                &mut buf,
                &tag,
            )?;
            Ok(buf)
        });
        match attempt {
            Ok(plaintext) => {
                return Ok(Decrypted {
                    header: Header::from_map(joint),
                    plaintext,
                });
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}
