//! Key management (RFC 7518 §4): `dir`, AES-KW, AES-GCMKW, RSA-OAEP-256/384/512, ECDH-ES(+AxxxKW),
//! and ML-KEM-768/1024 (+A192KW/+A256KW) per draft-ietf-jose-pqc-kem-05.

use aws_lc_rs::cipher::{self, DecryptingKey, DecryptionContext, EncryptingKey, UnboundCipherKey};
use aws_lc_rs::key_wrap::{self, KeyEncryptionKey, KeyWrap as _};
use aws_lc_rs::{aead, agreement, digest, rsa};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::akp::AkpKey;
use crate::b64;
use crate::error::{JoseError, Result};
use crate::jwa::{ContentEncryption, JweAlgorithm, OkpCurve};
use crate::jwk::{EcKey, Jwk, KeyMaterial, OctKey, OkpInner, ec_algs, random_bytes};
use crate::limits::{MAX_ENCRYPTED_KEY_LEN, MAX_PARTY_INFO_LEN};

const KW_IV: [u8; 8] = [0xa6; 8];

/// RFC 3394 AES key wrap. `kek` must be 16, 24 or 32 bytes; `plaintext` a multiple of 8 bytes, ≥ 16.
///
/// # Errors
/// Wrong lengths or a primitive failure.
pub fn aes_kw_wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.len() < 16 || !plaintext.len().is_multiple_of(8) {
        return Err(JoseError::KeyMismatch(
            "key to wrap must be a multiple of 8 bytes, at least 16",
        ));
    }
    let mut out = vec![0u8; plaintext.len() + 8];
    match kek.len() {
        16 | 32 => {
            let cipher = if kek.len() == 16 {
                &key_wrap::AES_128
            } else {
                &key_wrap::AES_256
            };
            let kek = KeyEncryptionKey::new(cipher, kek)
                .map_err(|_| JoseError::InvalidKey("AES-KW key"))?;
            let n = kek
                .wrap(plaintext, &mut out)
                .map_err(|_| JoseError::Crypto("AES-KW wrap"))?
                .len();
            out.truncate(n);
        }
        24 => {
            // aws-lc-rs exposes AES-KW for 128/256-bit keys only; RFC 3394 over single AES-192 blocks.
            let key = EncryptingKey::ecb(
                UnboundCipherKey::new(&cipher::AES_192, kek)
                    .map_err(|_| JoseError::InvalidKey("AES-KW key"))?,
            )
            .map_err(|_| JoseError::Crypto("AES-ECB"))?;
            let n = plaintext.len() / 8;
            let mut a = KW_IV;
            out[8..].copy_from_slice(plaintext);
            let mut block = [0u8; 16];
            for j in 0..6u64 {
                for i in 1..=n {
                    block[..8].copy_from_slice(&a);
                    block[8..].copy_from_slice(&out[8 * i..8 * i + 8]);
                    key.encrypt(&mut block)
                        .map_err(|_| JoseError::Crypto("AES-ECB"))?;
                    let t = (n as u64) * j + i as u64;
                    a.copy_from_slice(&block[..8]);
                    for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                        *x ^= y;
                    }
                    out[8 * i..8 * i + 8].copy_from_slice(&block[8..]);
                }
            }
            out[..8].copy_from_slice(&a);
            zeroize::Zeroize::zeroize(&mut block);
        }
        _ => {
            return Err(JoseError::InvalidKey(
                "AES-KW key must be 16, 24 or 32 bytes",
            ));
        }
    }
    Ok(out)
}

/// RFC 3394 AES key unwrap. Any integrity failure is [`JoseError::DecryptionFailed`].
///
/// # Errors
/// Wrong lengths or [`JoseError::DecryptionFailed`].
pub fn aes_kw_unwrap(kek: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() < 24 || !ciphertext.len().is_multiple_of(8) {
        return Err(JoseError::DecryptionFailed);
    }
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
    match kek.len() {
        16 | 32 => {
            let cipher = if kek.len() == 16 {
                &key_wrap::AES_128
            } else {
                &key_wrap::AES_256
            };
            let kek = KeyEncryptionKey::new(cipher, kek)
                .map_err(|_| JoseError::InvalidKey("AES-KW key"))?;
            let n = kek
                .unwrap(ciphertext, &mut out)
                .map_err(|_| JoseError::DecryptionFailed)?
                .len();
            out.truncate(n);
        }
        24 => {
            let key = DecryptingKey::ecb(
                UnboundCipherKey::new(&cipher::AES_192, kek)
                    .map_err(|_| JoseError::InvalidKey("AES-KW key"))?,
            )
            .map_err(|_| JoseError::Crypto("AES-ECB"))?;
            let n = ciphertext.len() / 8 - 1;
            let mut a = [0u8; 8];
            a.copy_from_slice(&ciphertext[..8]);
            out[..n * 8].copy_from_slice(&ciphertext[8..]);
            let mut block = Zeroizing::new([0u8; 16]);
            for j in (0..6u64).rev() {
                for i in (1..=n).rev() {
                    let t = (n as u64) * j + i as u64;
                    for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                        *x ^= y;
                    }
                    block[..8].copy_from_slice(&a);
                    block[8..].copy_from_slice(&out[8 * (i - 1)..8 * i]);
                    key.decrypt(&mut block[..], DecryptionContext::None)
                        .map_err(|_| JoseError::Crypto("AES-ECB"))?;
                    a.copy_from_slice(&block[..8]);
                    out[8 * (i - 1)..8 * i].copy_from_slice(&block[8..]);
                }
            }
            out.truncate(n * 8);
            if !bool::from(a.ct_eq(&KW_IV)) {
                return Err(JoseError::DecryptionFailed);
            }
        }
        _ => {
            return Err(JoseError::InvalidKey(
                "AES-KW key must be 16, 24 or 32 bytes",
            ));
        }
    }
    Ok(out)
}

/// Concat KDF (NIST SP 800-56A §5.8.1) with SHA-256, as profiled by RFC 7518 §4.6.2.
///
/// # Errors
/// Never in practice; the signature is fallible for uniformity.
pub fn concat_kdf(
    z: &[u8],
    key_len: usize,
    alg_id: &[u8],
    apu: &[u8],
    apv: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if crate::policy::ENFORCED {
        return crate::policy::concat_kdf(z, key_len, alg_id, apu, apv); // FIPS: the module's KDF
    }
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 32));
    let len32 = |n: usize| {
        u32::try_from(n)
            .map(u32::to_be_bytes)
            .map_err(|_| JoseError::Malformed("KDF input"))
    };
    let bits = len32(key_len * 8)?;
    let (l_alg, l_u, l_v) = (len32(alg_id.len())?, len32(apu.len())?, len32(apv.len())?);
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(&l_alg);
        ctx.update(alg_id);
        ctx.update(&l_u);
        ctx.update(apu);
        ctx.update(&l_v);
        ctx.update(apv);
        ctx.update(&bits);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(key_len);
    Ok(out)
}

/// The ML-KEM key derivation of draft-ietf-jose-pqc-kem-05 §5.1: KMAC256 (SP 800-108r1 KDF in
/// KMAC mode) with K = the KEM shared secret, X = AlgorithmID ‖ SuppPubInfo as in RFC 7518
/// §4.6.2 (a 32-bit big-endian length and the ASCII `alg_id`; the key length in bits as a 32-bit
/// big-endian integer), no PartyUInfo/PartyVInfo, L = `key_len` bytes, S = "". `alg_id` is the
/// `enc` value for direct key agreement and the `alg` value with key wrapping.
///
/// # Errors
/// Lengths that do not fit 32 bits.
pub fn ml_kem_kdf(
    shared_secret: &[u8],
    alg_id: &str,
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let len32 = |n: usize| {
        u32::try_from(n)
            .map(u32::to_be_bytes)
            .map_err(|_| JoseError::Malformed("KDF input"))
    };
    let mut x = Vec::with_capacity(8 + alg_id.len());
    x.extend_from_slice(&len32(alg_id.len())?);
    x.extend_from_slice(alg_id.as_bytes());
    x.extend_from_slice(&len32(key_len * 8)?);
    Ok(crate::kmac::kmac256(shared_secret, &x, key_len, b""))
}

fn akp(key: &Jwk, alg: JweAlgorithm) -> Result<&AkpKey> {
    match &key.material {
        KeyMaterial::Akp(k) if k.alg == alg.name() => Ok(k),
        KeyMaterial::Akp(_) => Err(JoseError::KeyMismatch(
            "AKP key's alg does not match the algorithm",
        )),
        _ => Err(JoseError::KeyMismatch("ML-KEM needs an AKP key")),
    }
}

/// The content encryption key: either the `dir` key itself (with its cached AES-GCM key) or an
/// owned CEK.
pub(crate) enum Cek<'a> {
    Direct(&'a OctKey),
    Owned(Zeroizing<Vec<u8>>),
}

impl Cek<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Cek::Direct(k) => k.bytes(),
            Cek::Owned(v) => v,
        }
    }

    pub(crate) fn gcm(&self, enc: ContentEncryption) -> Result<Option<&aead::LessSafeKey>> {
        match self {
            Cek::Direct(k) if enc.is_gcm() => k.gcm().map(Some),
            _ => Ok(None),
        }
    }
}

/// Result of key management on the sending side.
pub(crate) struct Wrapped<'a> {
    pub cek: Cek<'a>,
    pub encrypted_key: Vec<u8>,
    /// Header parameters produced by key management (`epk`, `iv`, `tag`).
    pub params: Vec<(&'static str, Value)>,
}

fn oct(key: &Jwk) -> Result<&OctKey> {
    match &key.material {
        KeyMaterial::Oct(k) => Ok(k),
        _ => Err(JoseError::KeyMismatch("algorithm needs an oct key")),
    }
}

fn oct_sized(key: &Jwk, len: usize) -> Result<&OctKey> {
    let k = oct(key)?;
    if k.bytes().len() != len {
        return Err(JoseError::KeyMismatch(
            "oct key length does not match the algorithm",
        ));
    }
    Ok(k)
}

fn oaep_alg(alg: JweAlgorithm) -> &'static rsa::OaepAlgorithm {
    match alg {
        JweAlgorithm::RsaOaep256 => &rsa::OAEP_SHA256_MGF1SHA256,
        JweAlgorithm::RsaOaep384 => &rsa::OAEP_SHA384_MGF1SHA384,
        _ => &rsa::OAEP_SHA512_MGF1SHA512,
    }
}

/// Public key of an ECDH recipient, as an agreement key and its curve identity.
enum EcdhPeer<'a> {
    Ec(&'a EcKey),
    X25519(&'a agreement::ParsedPublicKey),
}

fn ecdh_peer(key: &Jwk) -> Result<EcdhPeer<'_>> {
    match &key.material {
        KeyMaterial::Ec(k) => Ok(EcdhPeer::Ec(k)),
        KeyMaterial::Okp(k) => match &k.inner {
            OkpInner::X25519 { public, .. } => Ok(EcdhPeer::X25519(public)),
            OkpInner::Ed25519 { .. } => Err(JoseError::KeyMismatch("Ed25519 keys cannot do ECDH")),
        },
        _ => Err(JoseError::KeyMismatch("ECDH-ES needs an EC or X25519 key")),
    }
}

fn agree(
    private: &agreement::PrivateKey,
    public: &agreement::ParsedPublicKey,
) -> Result<Zeroizing<Vec<u8>>> {
    agreement::agree(private, public.clone(), JoseError::DecryptionFailed, |z| {
        Ok(Zeroizing::new(z.to_vec()))
    })
}

/// Computes Z with a fresh ephemeral key; returns (Z, epk JSON).
fn ecdh_sender(key: &Jwk) -> Result<(Zeroizing<Vec<u8>>, Value)> {
    match ecdh_peer(key)? {
        EcdhPeer::Ec(k) => {
            let (_, _, aalg) = ec_algs(k.crv);
            let eph = agreement::PrivateKey::generate(aalg)
                .map_err(|_| JoseError::Crypto("ECDH key generation"))?;
            let z = agree(&eph, &k.agree_pub)?;
            let pubkey = eph
                .compute_public_key()
                .map_err(|_| JoseError::Crypto("ECDH public key"))?;
            let point = pubkey.as_ref();
            let len = k.crv.coordinate_len();
            if point.len() != 1 + 2 * len {
                return Err(JoseError::Crypto("ECDH public key"));
            }
            let epk = serde_json::json!({
                "kty": "EC",
                "crv": k.crv.name(),
                "x": b64::encode(&point[1..=len]),
                "y": b64::encode(&point[1 + len..]),
            });
            Ok((z, epk))
        }
        EcdhPeer::X25519(public) => {
            let eph = agreement::PrivateKey::generate(&agreement::X25519)
                .map_err(|_| JoseError::Crypto("ECDH key generation"))?;
            let z = agree(&eph, public)?;
            let pubkey = eph
                .compute_public_key()
                .map_err(|_| JoseError::Crypto("ECDH public key"))?;
            let epk = serde_json::json!({
                "kty": "OKP",
                "crv": OkpCurve::X25519.name(),
                "x": b64::encode(pubkey.as_ref()),
            });
            Ok((z, epk))
        }
    }
}

/// Computes Z from the `epk` header with the recipient's private key.
fn ecdh_recipient(key: &Jwk, header: &Map<String, Value>) -> Result<Zeroizing<Vec<u8>>> {
    let Some(Value::Object(epk)) = header.get("epk") else {
        return Err(JoseError::InvalidHeader("epk".into()));
    };
    if epk.contains_key("d") {
        return Err(JoseError::InvalidHeader("epk".into()));
    }
    let epk = Jwk::from_map(epk).map_err(|_| JoseError::InvalidHeader("epk".into()))?;
    match (&key.material, &epk.material) {
        (KeyMaterial::Ec(mine), KeyMaterial::Ec(theirs)) => {
            if mine.crv != theirs.crv {
                return Err(JoseError::InvalidHeader("epk".into()));
            }
            let private = mine
                .private
                .as_ref()
                .ok_or(JoseError::KeyMismatch("private key required"))?;
            agree(&private.agree, &theirs.agree_pub)
        }
        (KeyMaterial::Okp(mine), KeyMaterial::Okp(theirs)) => match (&mine.inner, &theirs.inner) {
            (OkpInner::X25519 { private, .. }, OkpInner::X25519 { public, .. }) => {
                let (_, private) = private
                    .as_ref()
                    .ok_or(JoseError::KeyMismatch("private key required"))?;
                agree(private, public)
            }
            _ => Err(JoseError::InvalidHeader("epk".into())),
        },
        (KeyMaterial::Ec(_) | KeyMaterial::Okp(_), _) => {
            Err(JoseError::InvalidHeader("epk".into()))
        }
        _ => Err(JoseError::KeyMismatch("ECDH-ES needs an EC or X25519 key")),
    }
}

/// Decodes the optional `apu`/`apv` header parameters.
pub(crate) fn party_info(header: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>> {
    match header.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => {
            if s.len() > b64::encoded_len(MAX_PARTY_INFO_LEN) {
                return Err(JoseError::TooLarge {
                    what: name,
                    limit: MAX_PARTY_INFO_LEN,
                });
            }
            b64::decode(s.as_bytes(), name)
        }
        Some(_) => Err(JoseError::InvalidHeader(name.into())),
    }
}

fn header_b64(header: &Map<String, Value>, name: &'static str, len: usize) -> Result<Vec<u8>> {
    match header.get(name) {
        Some(Value::String(s)) if s.len() == b64::encoded_len(len) => {
            let v = b64::decode(s.as_bytes(), name)?;
            if v.len() == len {
                Ok(v)
            } else {
                Err(JoseError::InvalidHeader(name.into()))
            }
        }
        _ => Err(JoseError::InvalidHeader(name.into())),
    }
}

/// Key management on the sending side. `shared_cek` is the CEK to wrap when several recipients
/// share one (ignored, and must be `None`, for `dir` and `ECDH-ES`). `header` supplies
/// `apu`/`apv` for ECDH-ES.
pub(crate) fn wrap<'a>(
    key: &'a Jwk,
    alg: JweAlgorithm,
    enc: ContentEncryption,
    shared_cek: Option<&[u8]>,
    header: Option<&Map<String, Value>>,
) -> Result<Wrapped<'a>> {
    crate::policy::check_jwe(alg, enc)?;
    if alg.is_direct() && shared_cek.is_some() {
        return Err(JoseError::KeyMismatch(
            "dir, ECDH-ES and direct ML-KEM cannot be used with several recipients",
        ));
    }
    let new_cek = || -> Result<Zeroizing<Vec<u8>>> {
        match shared_cek {
            Some(c) => Ok(Zeroizing::new(c.to_vec())),
            None => random_bytes(enc.key_len()),
        }
    };
    let mut params = Vec::new();
    let (cek, encrypted_key) = match alg {
        JweAlgorithm::Dir => (Cek::Direct(oct_sized(key, enc.key_len())?), Vec::new()),
        JweAlgorithm::A128KW | JweAlgorithm::A192KW | JweAlgorithm::A256KW => {
            let kek = oct_sized(key, alg.kek_len().unwrap_or(0))?;
            let cek = new_cek()?;
            let ek = aes_kw_wrap(kek.bytes(), &cek)?;
            (Cek::Owned(cek), ek)
        }
        JweAlgorithm::A128GCMKW | JweAlgorithm::A192GCMKW | JweAlgorithm::A256GCMKW => {
            let kek = oct_sized(key, alg.kek_len().unwrap_or(0))?;
            let cek = new_cek()?;
            let mut iv = [0u8; 12];
            aws_lc_rs::rand::fill(&mut iv).map_err(|_| JoseError::Crypto("rng"))?;
            let mut ek = cek.to_vec();
            let tag = kek
                .gcm()?
                .seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(iv),
                    aead::Aad::empty(),
                    &mut ek,
                )
                .map_err(|_| JoseError::Crypto("AES-GCMKW"))?;
            params.push(("iv", Value::String(b64::encode(&iv))));
            params.push(("tag", Value::String(b64::encode(tag.as_ref()))));
            (Cek::Owned(cek), ek)
        }
        JweAlgorithm::RsaOaep256 | JweAlgorithm::RsaOaep384 | JweAlgorithm::RsaOaep512 => {
            let KeyMaterial::Rsa(k) = &key.material else {
                return Err(JoseError::KeyMismatch("RSA-OAEP needs an RSA key"));
            };
            let cek = new_cek()?;
            let enc_key = k.oaep_encryptor()?;
            let mut ek = vec![0u8; enc_key.ciphertext_size()];
            let n = enc_key
                .encrypt(oaep_alg(alg), &cek, &mut ek, None)
                .map_err(|_| JoseError::Crypto("RSA-OAEP encrypt"))?
                .len();
            ek.truncate(n);
            (Cek::Owned(cek), ek)
        }
        JweAlgorithm::EcdhEs
        | JweAlgorithm::EcdhEsA128KW
        | JweAlgorithm::EcdhEsA192KW
        | JweAlgorithm::EcdhEsA256KW => {
            let empty = Map::new();
            let h = header.unwrap_or(&empty);
            let apu = party_info(h, "apu")?;
            let apv = party_info(h, "apv")?;
            let (z, epk) = ecdh_sender(key)?;
            params.push(("epk", epk));
            if alg == JweAlgorithm::EcdhEs {
                let cek = concat_kdf(&z, enc.key_len(), enc.name().as_bytes(), &apu, &apv)?;
                (Cek::Owned(cek), Vec::new())
            } else {
                let kek_len = alg.kek_len().unwrap_or(0);
                let kek = concat_kdf(&z, kek_len, alg.name().as_bytes(), &apu, &apv)?;
                let cek = new_cek()?;
                let ek = aes_kw_wrap(&kek, &cek)?;
                (Cek::Owned(cek), ek)
            }
        }
        JweAlgorithm::MlKem768
        | JweAlgorithm::MlKem1024
        | JweAlgorithm::MlKem768A192KW
        | JweAlgorithm::MlKem1024A256KW => {
            let k = akp(key, alg)?;
            let (ct, ss) = k.encapsulate()?;
            // draft-ietf-jose-pqc-kem-05 §6: the KEM ciphertext goes into the "ek" header.
            params.push(("ek", Value::String(b64::encode(&ct))));
            match alg.kek_len() {
                None => {
                    let cek = ml_kem_kdf(&ss, enc.name(), enc.key_len())?;
                    (Cek::Owned(cek), Vec::new())
                }
                Some(kek_len) => {
                    let kek = ml_kem_kdf(&ss, alg.name(), kek_len)?;
                    let cek = new_cek()?;
                    let wrapped = aes_kw_wrap(&kek, &cek)?;
                    (Cek::Owned(cek), wrapped)
                }
            }
        }
    };
    Ok(Wrapped {
        cek,
        encrypted_key,
        params,
    })
}

/// Key management on the receiving side, given the joint header.
pub(crate) fn unwrap<'a>(
    key: &'a Jwk,
    alg: JweAlgorithm,
    enc: ContentEncryption,
    header: &Map<String, Value>,
    encrypted_key: &[u8],
) -> Result<Cek<'a>> {
    crate::policy::check_jwe(alg, enc)?;
    if encrypted_key.len() > MAX_ENCRYPTED_KEY_LEN {
        return Err(JoseError::TooLarge {
            what: "encrypted key",
            limit: MAX_ENCRYPTED_KEY_LEN,
        });
    }
    if alg.is_direct() != encrypted_key.is_empty() {
        return Err(JoseError::Malformed(
            "encrypted key presence does not match alg",
        ));
    }
    let check_len = |cek: Zeroizing<Vec<u8>>| {
        if cek.len() == enc.key_len() {
            Ok(Cek::Owned(cek))
        } else {
            Err(JoseError::DecryptionFailed)
        }
    };
    match alg {
        JweAlgorithm::Dir => Ok(Cek::Direct(oct_sized(key, enc.key_len())?)),
        JweAlgorithm::A128KW | JweAlgorithm::A192KW | JweAlgorithm::A256KW => {
            let kek = oct_sized(key, alg.kek_len().unwrap_or(0))?;
            check_len(aes_kw_unwrap(kek.bytes(), encrypted_key)?)
        }
        JweAlgorithm::A128GCMKW | JweAlgorithm::A192GCMKW | JweAlgorithm::A256GCMKW => {
            let kek = oct_sized(key, alg.kek_len().unwrap_or(0))?;
            let iv = header_b64(header, "iv", 12)?;
            let tag = header_b64(header, "tag", 16)?;
            let mut buf = Zeroizing::new(Vec::with_capacity(encrypted_key.len() + 16));
            buf.extend_from_slice(encrypted_key);
            buf.extend_from_slice(&tag);
            let nonce = aead::Nonce::try_assume_unique_for_key(&iv)
                .map_err(|_| JoseError::InvalidHeader("iv".into()))?;
            let n = kek
                .gcm()?
                .open_in_place(nonce, aead::Aad::empty(), &mut buf)
                .map_err(|_| JoseError::DecryptionFailed)?
                .len();
            buf.truncate(n);
            check_len(buf)
        }
        JweAlgorithm::RsaOaep256 | JweAlgorithm::RsaOaep384 | JweAlgorithm::RsaOaep512 => {
            let KeyMaterial::Rsa(k) = &key.material else {
                return Err(JoseError::KeyMismatch("RSA-OAEP needs an RSA key"));
            };
            let dec = k.oaep_decryptor()?;
            let mut out = Zeroizing::new(vec![0u8; dec.min_output_size()]);
            // RFC 7516 §11.5: on failure continue with a random CEK so that a wrong key and a
            // tampered ciphertext fail identically, at the content decryption step.
            let ok_len = if encrypted_key.len() == dec.key_size_bytes() {
                dec.decrypt(oaep_alg(alg), encrypted_key, &mut out, None)
                    .ok()
                    .map(|p| p.len())
            } else {
                None
            };
            match ok_len {
                Some(n) if n == enc.key_len() => {
                    out.truncate(n);
                    Ok(Cek::Owned(out))
                }
                _ => Ok(Cek::Owned(random_bytes(enc.key_len())?)),
            }
        }
        JweAlgorithm::EcdhEs
        | JweAlgorithm::EcdhEsA128KW
        | JweAlgorithm::EcdhEsA192KW
        | JweAlgorithm::EcdhEsA256KW => {
            let apu = party_info(header, "apu")?;
            let apv = party_info(header, "apv")?;
            let z = ecdh_recipient(key, header)?;
            if alg == JweAlgorithm::EcdhEs {
                check_len(concat_kdf(
                    &z,
                    enc.key_len(),
                    enc.name().as_bytes(),
                    &apu,
                    &apv,
                )?)
            } else {
                let kek = concat_kdf(
                    &z,
                    alg.kek_len().unwrap_or(0),
                    alg.name().as_bytes(),
                    &apu,
                    &apv,
                )?;
                check_len(aes_kw_unwrap(&kek, encrypted_key)?)
            }
        }
        JweAlgorithm::MlKem768
        | JweAlgorithm::MlKem1024
        | JweAlgorithm::MlKem768A192KW
        | JweAlgorithm::MlKem1024A256KW => {
            let k = akp(key, alg)?;
            let ct = header_b64(header, "ek", k.params().output_len())?;
            let ss = k.decapsulate(&ct)?;
            match alg.kek_len() {
                None => check_len(ml_kem_kdf(&ss, enc.name(), enc.key_len())?),
                Some(kek_len) => {
                    let kek = ml_kem_kdf(&ss, alg.name(), kek_len)?;
                    check_len(aes_kw_unwrap(&kek, encrypted_key)?)
                }
            }
        }
    }
}

/// Raw ECDH shared secret between a private key and a public key (EC or X25519), for testing
/// against published vectors.
///
/// # Errors
/// Key mismatch or agreement failure.
pub fn ecdh_shared_secret(private: &Jwk, public: &Jwk) -> Result<Zeroizing<Vec<u8>>> {
    match (&private.material, &public.material) {
        (KeyMaterial::Ec(mine), KeyMaterial::Ec(theirs)) if mine.crv == theirs.crv => {
            let p = mine
                .private
                .as_ref()
                .ok_or(JoseError::KeyMismatch("private key required"))?;
            agree(&p.agree, &theirs.agree_pub)
        }
        (KeyMaterial::Okp(mine), KeyMaterial::Okp(theirs)) => match (&mine.inner, &theirs.inner) {
            (
                OkpInner::X25519 {
                    private: Some((_, p)),
                    ..
                },
                OkpInner::X25519 { public, .. },
            ) => agree(p, public),
            _ => Err(JoseError::KeyMismatch(
                "X25519 private and public keys required",
            )),
        },
        _ => Err(JoseError::KeyMismatch("keys do not match")),
    }
}

/// RSA-OAEP decryption of a raw ciphertext (no label), for testing against published vectors.
/// Unlike JWE decryption this reports failures instead of substituting a random CEK.
///
/// # Errors
/// Wrong key or algorithm, or [`JoseError::DecryptionFailed`].
pub fn rsa_oaep_decrypt(
    key: &Jwk,
    alg: JweAlgorithm,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let KeyMaterial::Rsa(k) = &key.material else {
        return Err(JoseError::KeyMismatch("RSA-OAEP needs an RSA key"));
    };
    if alg.rsa_bits().is_none() {
        return Err(JoseError::KeyMismatch("not an RSA-OAEP algorithm"));
    }
    let dec = k.oaep_decryptor()?;
    let mut out = Zeroizing::new(vec![0u8; dec.min_output_size()]);
    let n = dec
        .decrypt(oaep_alg(alg), ciphertext, &mut out, None)
        .map_err(|_| JoseError::DecryptionFailed)?
        .len();
    out.truncate(n);
    Ok(out)
}

/// Raw ML-KEM decapsulation with an `AKP` ML-KEM private key (the KEM shared secret, before the
/// JOSE key derivation), for testing against published vectors.
///
/// # Errors
/// Not an ML-KEM private key, or a ciphertext of the wrong length.
pub fn ml_kem_decapsulate(key: &Jwk, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match &key.material {
        KeyMaterial::Akp(k) if !k.params().is_ml_dsa() => k.decapsulate(ciphertext),
        _ => Err(JoseError::KeyMismatch("ML-KEM needs an AKP ML-KEM key")),
    }
}
