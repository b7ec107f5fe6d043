//! JSON Web Keys (RFC 7517): `oct`, `RSA`, `EC` (P-256/384/521) and `OKP` (Ed25519, X25519).
//!
//! A [`Jwk`] is parsed once into ready-to-use aws-lc-rs key objects (signing key pairs, parsed
//! public keys, agreement keys); per-algorithm objects that cannot be built up front (RSA
//! verification parameters, AES/HMAC keys) are built on first use and cached. Secret material
//! lives in [`Zeroizing`] buffers and never appears in `Debug` output.

use core::fmt;
use std::sync::OnceLock;

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{aead, agreement, digest, hmac, rand, rsa, signature};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::akp::AkpKey;
use crate::b64;
use crate::error::{JoseError, Result};
use crate::header::parse_object;
use crate::jwa::{EcCurve, JweAlgorithm, JwsAlgorithm, KeyAlgorithm, OkpCurve};
use crate::limits::{MAX_JWK_LEN, MAX_RSA_BITS, MIN_RSA_BITS};

/// Returns the cached value, building it with `f` on first use.
pub(crate) fn cached<T>(cell: &OnceLock<T>, f: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = f()?;
    // Another thread may have won the race; either value is equivalent.
    let _ = cell.set(v);
    cell.get().ok_or(JoseError::Crypto("key cache"))
}

/// Random bytes from the aws-lc-rs DRBG.
pub(crate) fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut v = Zeroizing::new(vec![0u8; len]);
    rand::fill(&mut v).map_err(|_| JoseError::Crypto("rng"))?;
    Ok(v)
}

/// A symmetric (`oct`) key.
pub struct OctKey {
    pub(crate) k: Zeroizing<Vec<u8>>,
    gcm: OnceLock<Box<aead::LessSafeKey>>,
    hmac: [OnceLock<Box<hmac::Key>>; 3],
}

impl OctKey {
    fn new(k: Zeroizing<Vec<u8>>) -> Result<Self> {
        if k.is_empty() {
            return Err(JoseError::InvalidKey("empty oct key"));
        }
        Ok(Self {
            k,
            gcm: OnceLock::new(),
            hmac: Default::default(),
        })
    }

    /// The key bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.k
    }

    /// AES-GCM key for this key's length (16/24/32 bytes), cached.
    pub(crate) fn gcm(&self) -> Result<&aead::LessSafeKey> {
        cached(&self.gcm, || gcm_key(&self.k).map(Box::new)).map(|k| &**k)
    }

    /// HMAC key for HS256/384/512, cached.
    pub(crate) fn hmac(&self, alg: JwsAlgorithm) -> Result<&hmac::Key> {
        let (idx, halg, min) = match alg {
            JwsAlgorithm::HS256 => (0, hmac::HMAC_SHA256, 32),
            JwsAlgorithm::HS384 => (1, hmac::HMAC_SHA384, 48),
            JwsAlgorithm::HS512 => (2, hmac::HMAC_SHA512, 64),
            _ => return Err(JoseError::KeyMismatch("oct keys only do HMAC")),
        };
        // RFC 7518 §3.2: the key must be at least as long as the hash output.
        if self.k.len() < min {
            return Err(JoseError::InvalidKey(
                "HMAC key shorter than the hash output",
            ));
        }
        cached(&self.hmac[idx], || {
            Ok(Box::new(hmac::Key::new(halg, &self.k)))
        })
        .map(|k| &**k)
    }
}

/// Builds an AES-GCM key from raw bytes of length 16, 24 or 32.
pub(crate) fn gcm_key(k: &[u8]) -> Result<aead::LessSafeKey> {
    let alg = match k.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(JoseError::InvalidKey("AES key must be 16, 24 or 32 bytes")),
    };
    let unbound = aead::UnboundKey::new(alg, k).map_err(|_| JoseError::InvalidKey("AES key"))?;
    Ok(aead::LessSafeKey::new(unbound))
}

/// An RSA key (public, or private with CRT components).
pub struct RsaKey {
    pub(crate) n: Vec<u8>,
    pub(crate) e: Vec<u8>,
    spki: Vec<u8>,
    bits: usize,
    pub(crate) private: Option<RsaPrivate>,
    verify: [OnceLock<signature::ParsedPublicKey>; 6],
    oaep_enc: OnceLock<rsa::OaepPublicEncryptingKey>,
}

/// RSA private parts.
pub(crate) struct RsaPrivate {
    d: Zeroizing<Vec<u8>>,
    p: Zeroizing<Vec<u8>>,
    q: Zeroizing<Vec<u8>>,
    dp: Zeroizing<Vec<u8>>,
    dq: Zeroizing<Vec<u8>>,
    qi: Zeroizing<Vec<u8>>,
    pub(crate) pair: rsa::KeyPair,
    oaep_dec: OnceLock<rsa::OaepPrivateDecryptingKey>,
}

fn strip_leading_zeros(v: &[u8]) -> &[u8] {
    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[first..]
}

impl RsaKey {
    fn from_parts(n: &[u8], e: &[u8], private: Option<[Zeroizing<Vec<u8>>; 6]>) -> Result<Self> {
        let n = strip_leading_zeros(n).to_vec();
        let e = strip_leading_zeros(e).to_vec();
        let bits = match n.first() {
            Some(&b) => n.len() * 8 - b.leading_zeros() as usize,
            None => 0,
        };
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(JoseError::InvalidKey(
                "RSA modulus must be 2048 to 8192 bits",
            ));
        }
        if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
            return Err(JoseError::InvalidKey("RSA public exponent"));
        }
        let components = rsa::PublicKeyComponents {
            n: &n[..],
            e: &e[..],
        };
        let spki = components
            .as_der()
            .map_err(|_| JoseError::InvalidKey("RSA public key"))?
            .as_ref()
            .to_vec();
        // Validates the public key once, and warms the OAEP cache.
        let pek = rsa::PublicEncryptingKey::from_der(&spki)
            .map_err(|_| JoseError::InvalidKey("RSA public key"))?;
        let oaep_enc = OnceLock::new();
        let _ = oaep_enc.set(
            rsa::OaepPublicEncryptingKey::new(pek)
                .map_err(|_| JoseError::InvalidKey("RSA public key"))?,
        );
        let private = match private {
            None => None,
            Some([d, p, q, dp, dq, qi]) => {
                let pair = rsa::KeyPair::from_components(&rsa::KeyPairComponents {
                    public_key: rsa::PublicKeyComponents {
                        n: &n[..],
                        e: &e[..],
                    },
                    d: &d[..],
                    p: &p[..],
                    q: &q[..],
                    dP: &dp[..],
                    dQ: &dq[..],
                    qInv: &qi[..],
                })
                .map_err(|_| JoseError::InvalidKey("inconsistent RSA private key"))?;
                Some(RsaPrivate {
                    d,
                    p,
                    q,
                    dp,
                    dq,
                    qi,
                    pair,
                    oaep_dec: OnceLock::new(),
                })
            }
        };
        Ok(Self {
            n,
            e,
            spki,
            bits,
            private,
            verify: Default::default(),
            oaep_enc,
        })
    }

    /// Modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.bits
    }

    pub(crate) fn verifier(&self, alg: JwsAlgorithm) -> Result<&signature::ParsedPublicKey> {
        let (idx, params): (usize, &'static rsa::RsaParameters) = match alg {
            JwsAlgorithm::RS256 => (0, &signature::RSA_PKCS1_2048_8192_SHA256),
            JwsAlgorithm::RS384 => (1, &signature::RSA_PKCS1_2048_8192_SHA384),
            JwsAlgorithm::RS512 => (2, &signature::RSA_PKCS1_2048_8192_SHA512),
            JwsAlgorithm::PS256 => (3, &signature::RSA_PSS_2048_8192_SHA256),
            JwsAlgorithm::PS384 => (4, &signature::RSA_PSS_2048_8192_SHA384),
            JwsAlgorithm::PS512 => (5, &signature::RSA_PSS_2048_8192_SHA512),
            _ => return Err(JoseError::KeyMismatch("RSA keys only do RS*/PS*")),
        };
        cached(&self.verify[idx], || {
            signature::ParsedPublicKey::new(params, &self.spki)
                .map_err(|_| JoseError::InvalidKey("RSA public key"))
        })
    }

    pub(crate) fn oaep_encryptor(&self) -> Result<&rsa::OaepPublicEncryptingKey> {
        cached(&self.oaep_enc, || {
            let pek = rsa::PublicEncryptingKey::from_der(&self.spki)
                .map_err(|_| JoseError::InvalidKey("RSA public key"))?;
            rsa::OaepPublicEncryptingKey::new(pek)
                .map_err(|_| JoseError::InvalidKey("RSA public key"))
        })
    }

    pub(crate) fn oaep_decryptor(&self) -> Result<&rsa::OaepPrivateDecryptingKey> {
        let private = self
            .private
            .as_ref()
            .ok_or(JoseError::KeyMismatch("private key required"))?;
        cached(&private.oaep_dec, || {
            let pkcs8 = private
                .pair
                .as_der()
                .map_err(|_| JoseError::Crypto("RSA key export"))?;
            let pdk = rsa::PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| JoseError::InvalidKey("RSA private key"))?;
            rsa::OaepPrivateDecryptingKey::new(pdk)
                .map_err(|_| JoseError::InvalidKey("RSA private key"))
        })
    }
}

/// An EC key on a NIST curve; usable for ECDSA and ECDH-ES.
pub struct EcKey {
    pub(crate) crv: EcCurve,
    pub(crate) x: Vec<u8>,
    pub(crate) y: Vec<u8>,
    pub(crate) verify: signature::ParsedPublicKey,
    pub(crate) agree_pub: agreement::ParsedPublicKey,
    pub(crate) private: Option<EcPrivate>,
}

/// EC private parts.
pub(crate) struct EcPrivate {
    d: Zeroizing<Vec<u8>>,
    pub(crate) sign: signature::EcdsaKeyPair,
    pub(crate) agree: agreement::PrivateKey,
}

pub(crate) fn ec_algs(
    crv: EcCurve,
) -> (
    &'static signature::EcdsaVerificationAlgorithm,
    &'static signature::EcdsaSigningAlgorithm,
    &'static agreement::Algorithm,
) {
    match crv {
        EcCurve::P256 => (
            &signature::ECDSA_P256_SHA256_FIXED,
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &agreement::ECDH_P256,
        ),
        EcCurve::P384 => (
            &signature::ECDSA_P384_SHA384_FIXED,
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &agreement::ECDH_P384,
        ),
        EcCurve::P521 => (
            &signature::ECDSA_P521_SHA512_FIXED,
            &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            &agreement::ECDH_P521,
        ),
    }
}

impl EcKey {
    pub(crate) fn from_parts(
        crv: EcCurve,
        x: &[u8],
        y: &[u8],
        d: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self> {
        let len = crv.coordinate_len();
        if x.len() != len || y.len() != len {
            return Err(JoseError::InvalidKey(
                "EC coordinate length does not match the curve",
            ));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let (valg, salg, aalg) = ec_algs(crv);
        // Both parsers reject points that are not on the curve.
        let verify = signature::ParsedPublicKey::new(valg, &point)
            .map_err(|_| JoseError::InvalidKey("EC point is not on the curve"))?;
        let agree_pub =
            agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(aalg, &point))
                .map_err(|_| JoseError::InvalidKey("EC point is not on the curve"))?;
        let private = match d {
            None => None,
            Some(d) => {
                if d.len() != len {
                    return Err(JoseError::InvalidKey(
                        "EC private key length does not match the curve",
                    ));
                }
                let sign =
                    signature::EcdsaKeyPair::from_private_key_and_public_key(salg, &d, &point)
                        .map_err(|_| {
                            JoseError::InvalidKey("EC private key does not match the public key")
                        })?;
                let agree = agreement::PrivateKey::from_private_key(aalg, &d)
                    .map_err(|_| JoseError::InvalidKey("EC private key"))?;
                Some(EcPrivate { d, sign, agree })
            }
        };
        Ok(Self {
            crv,
            x: x.to_vec(),
            y: y.to_vec(),
            verify,
            agree_pub,
            private,
        })
    }

    /// The curve.
    #[must_use]
    pub fn curve(&self) -> EcCurve {
        self.crv
    }
}

/// An octet key pair (RFC 8037).
pub struct OkpKey {
    pub(crate) crv: OkpCurve,
    pub(crate) x: Vec<u8>,
    pub(crate) inner: OkpInner,
}

impl OkpKey {
    /// The curve.
    #[must_use]
    pub fn curve(&self) -> OkpCurve {
        self.crv
    }
}

pub(crate) enum OkpInner {
    Ed25519 {
        verify: signature::ParsedPublicKey,
        private: Option<(Zeroizing<Vec<u8>>, signature::Ed25519KeyPair)>,
    },
    X25519 {
        public: agreement::ParsedPublicKey,
        private: Option<(Zeroizing<Vec<u8>>, agreement::PrivateKey)>,
    },
}

impl OkpKey {
    pub(crate) fn from_parts(
        crv: OkpCurve,
        x: &[u8],
        d: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Self> {
        crate::policy::check_okp_curve(crv)?;
        if x.len() != 32 || d.as_ref().is_some_and(|d| d.len() != 32) {
            return Err(JoseError::InvalidKey("OKP keys are 32 bytes"));
        }
        let inner = match crv {
            OkpCurve::Ed25519 => {
                let verify = signature::ParsedPublicKey::new(&signature::ED25519, x)
                    .map_err(|_| JoseError::InvalidKey("Ed25519 public key"))?;
                let private = match d {
                    None => None,
                    Some(d) => {
                        let pair = signature::Ed25519KeyPair::from_seed_and_public_key(&d, x)
                            .map_err(|_| {
                                JoseError::InvalidKey("Ed25519 private key does not match")
                            })?;
                        Some((d, pair))
                    }
                };
                OkpInner::Ed25519 { verify, private }
            }
            OkpCurve::X25519 => {
                let public = agreement::ParsedPublicKey::try_from(
                    &agreement::UnparsedPublicKey::new(&agreement::X25519, x),
                )
                .map_err(|_| JoseError::InvalidKey("X25519 public key"))?;
                let private = match d {
                    None => None,
                    Some(d) => {
                        let pk = agreement::PrivateKey::from_private_key(&agreement::X25519, &d)
                            .map_err(|_| JoseError::InvalidKey("X25519 private key"))?;
                        let computed = pk
                            .compute_public_key()
                            .map_err(|_| JoseError::InvalidKey("X25519 private key"))?;
                        if computed.as_ref() != x {
                            return Err(JoseError::InvalidKey("X25519 private key does not match"));
                        }
                        Some((d, pk))
                    }
                };
                OkpInner::X25519 { public, private }
            }
        };
        Ok(Self {
            crv,
            x: x.to_vec(),
            inner,
        })
    }
}

/// The key material of a [`Jwk`].
#[non_exhaustive]
pub enum KeyMaterial {
    /// `kty: oct`.
    Oct(OctKey),
    /// `kty: RSA`.
    Rsa(Box<RsaKey>),
    /// `kty: EC`.
    Ec(EcKey),
    /// `kty: OKP`.
    Okp(OkpKey),
    /// `kty: AKP` (ML-DSA, ML-KEM).
    Akp(AkpKey),
}

/// A JSON Web Key, parsed and ready to use.
pub struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    pub(crate) material: KeyMaterial,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Jwk");
        s.field("kty", &self.kty());
        match &self.material {
            KeyMaterial::Oct(k) => {
                s.field("len", &k.k.len());
            }
            KeyMaterial::Rsa(k) => {
                s.field("bits", &k.bits);
            }
            KeyMaterial::Ec(k) => {
                s.field("crv", &k.crv);
            }
            KeyMaterial::Okp(k) => {
                s.field("crv", &k.crv);
            }
            KeyMaterial::Akp(k) => {
                s.field("params", &k.params);
            }
        }
        s.field("private", &self.is_private())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("use", &self.key_use)
            .field("key_ops", &self.key_ops)
            .finish_non_exhaustive()
    }
}

impl Clone for Jwk {
    fn clone(&self) -> Self {
        // Re-parse from the private JSON form: keeps the key objects independent. Parsing our own
        // output cannot fail for a key that was valid when it was built.
        let value = self.to_value(true);
        match Jwk::from_value(value) {
            Ok(k) => k,
            // Unreachable in practice; keep the type total without panicking.
            Err(_) => Jwk {
                kid: self.kid.clone(),
                alg: self.alg.clone(),
                key_use: self.key_use.clone(),
                key_ops: self.key_ops.clone(),
                material: KeyMaterial::Oct(OctKey {
                    k: Zeroizing::new(Vec::new()),
                    gcm: OnceLock::new(),
                    hmac: Default::default(),
                }),
            },
        }
    }
}

fn field_str<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::InvalidKey("JWK member has the wrong type")),
    }
}

fn field_b64(m: &Map<String, Value>, name: &'static str) -> Result<Option<Vec<u8>>> {
    field_str(m, name)?
        .map(|s| b64::decode(s.as_bytes(), name))
        .transpose()
}

fn required_b64(m: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>> {
    field_b64(m, name)?.ok_or(JoseError::InvalidKey("missing JWK member"))
}

fn secret_b64(m: &Map<String, Value>, name: &'static str) -> Result<Option<Zeroizing<Vec<u8>>>> {
    Ok(field_b64(m, name)?.map(Zeroizing::new))
}

/// Key operations, as used by `key_ops` (RFC 7517 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Sign,
    Verify,
    Encrypt,
    Decrypt,
}

impl Jwk {
    fn with_material(material: KeyMaterial) -> Self {
        Self {
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
            material,
        }
    }

    /// Parses a JWK from JSON, strictly (duplicate members rejected, size bounded).
    ///
    /// # Errors
    /// JSON, base64url or key validation errors.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_JWK_LEN {
            return Err(JoseError::TooLarge {
                what: "JWK",
                limit: MAX_JWK_LEN,
            });
        }
        Self::from_map(&parse_object(json.as_bytes(), "JWK")?)
    }

    /// Parses a JWK that must be a public key: any private member (`d`, RSA CRT values, AKP
    /// `priv`/`dk`) or a symmetric key is refused, for places where only a public key belongs.
    ///
    /// # Errors
    /// Parse errors, or [`JoseError::KeyMismatch`] for private or symmetric material.
    pub fn public_from_json(json: &str) -> Result<Self> {
        let key = Self::from_json(json)?;
        if key.is_private() {
            return Err(JoseError::KeyMismatch(
                "private key material where only a public key is allowed",
            ));
        }
        Ok(key)
    }

    /// Builds a JWK from an already-parsed JSON value.
    ///
    /// # Errors
    /// Key validation errors.
    pub fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Object(m) => Self::from_map(&m),
            _ => Err(JoseError::Malformed("JWK must be a JSON object")),
        }
    }

    /// Builds a JWK from a parsed JSON object.
    ///
    /// # Errors
    /// Key validation errors.
    pub fn from_map(m: &Map<String, Value>) -> Result<Self> {
        let kty = field_str(m, "kty")?.ok_or(JoseError::InvalidKey("missing kty"))?;
        let material = match kty {
            "oct" => {
                let k = secret_b64(m, "k")?.ok_or(JoseError::InvalidKey("missing k"))?;
                KeyMaterial::Oct(OctKey::new(k)?)
            }
            "RSA" => {
                if m.contains_key("oth") {
                    return Err(JoseError::InvalidKey("multi-prime RSA is not supported"));
                }
                let n = required_b64(m, "n")?;
                let e = required_b64(m, "e")?;
                let private = match secret_b64(m, "d")? {
                    None => None,
                    Some(d) => {
                        let get = |name: &'static str| {
                            secret_b64(m, name)?.ok_or(JoseError::InvalidKey(
                                "RSA private keys need p, q, dp, dq and qi",
                            ))
                        };
                        Some([d, get("p")?, get("q")?, get("dp")?, get("dq")?, get("qi")?])
                    }
                };
                KeyMaterial::Rsa(Box::new(RsaKey::from_parts(&n, &e, private)?))
            }
            "EC" => {
                let crv: EcCurve = field_str(m, "crv")?
                    .ok_or(JoseError::InvalidKey("missing crv"))?
                    .parse()
                    .map_err(|_| JoseError::InvalidKey("unsupported EC curve"))?;
                let x = required_b64(m, "x")?;
                let y = required_b64(m, "y")?;
                KeyMaterial::Ec(EcKey::from_parts(crv, &x, &y, secret_b64(m, "d")?)?)
            }
            "OKP" => {
                let crv: OkpCurve = field_str(m, "crv")?
                    .ok_or(JoseError::InvalidKey("missing crv"))?
                    .parse()
                    .map_err(|_| JoseError::InvalidKey("unsupported OKP curve"))?;
                let x = required_b64(m, "x")?;
                KeyMaterial::Okp(OkpKey::from_parts(crv, &x, secret_b64(m, "d")?)?)
            }
            "AKP" => {
                let alg = field_str(m, "alg")?.ok_or(JoseError::InvalidKey("AKP keys need alg"))?;
                let public = required_b64(m, "pub")?;
                KeyMaterial::Akp(AkpKey::from_parts(
                    alg,
                    &public,
                    secret_b64(m, "priv")?,
                    secret_b64(m, "dk")?,
                )?)
            }
            _ => return Err(JoseError::InvalidKey("unsupported kty")),
        };
        let key_ops = match m.get("key_ops") {
            None => None,
            Some(Value::Array(a)) => {
                let mut ops = Vec::with_capacity(a.len());
                for v in a {
                    let s = v
                        .as_str()
                        .ok_or(JoseError::InvalidKey("key_ops entries must be strings"))?;
                    if ops.iter().any(|o: &String| o == s) {
                        return Err(JoseError::InvalidKey("duplicate key_ops entry"));
                    }
                    ops.push(s.to_owned());
                }
                Some(ops)
            }
            Some(_) => return Err(JoseError::InvalidKey("key_ops must be an array")),
        };
        Ok(Self {
            kid: field_str(m, "kid")?.map(str::to_owned),
            alg: field_str(m, "alg")?.map(str::to_owned),
            key_use: field_str(m, "use")?.map(str::to_owned),
            key_ops,
            material,
        })
    }

    /// Wraps raw symmetric key bytes as an `oct` key.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for an empty key.
    pub fn from_oct_bytes(k: &[u8]) -> Result<Self> {
        Ok(Self::with_material(KeyMaterial::Oct(OctKey::new(
            Zeroizing::new(k.to_vec()),
        )?)))
    }

    /// Imports an EC private key from its big-endian scalar (exactly the coordinate length);
    /// the public point is computed.
    ///
    /// # Errors
    /// Invalid scalar.
    pub fn from_ec_private_bytes(crv: EcCurve, d: &[u8]) -> Result<Self> {
        let (_, _, aalg) = ec_algs(crv);
        let pk = agreement::PrivateKey::from_private_key(aalg, d)
            .map_err(|_| JoseError::InvalidKey("EC private key"))?;
        let point = pk
            .compute_public_key()
            .map_err(|_| JoseError::InvalidKey("EC private key"))?;
        let point = point.as_ref();
        let len = crv.coordinate_len();
        if point.len() != 1 + 2 * len {
            return Err(JoseError::InvalidKey("EC private key"));
        }
        let key = EcKey::from_parts(
            crv,
            &point[1..=len],
            &point[1 + len..],
            Some(Zeroizing::new(d.to_vec())),
        )?;
        Ok(Self::with_material(KeyMaterial::Ec(key)))
    }

    /// Imports an EC public key from an uncompressed SEC 1 point (`04 || x || y`).
    ///
    /// # Errors
    /// Wrong encoding or a point not on the curve.
    pub fn from_ec_public_point(crv: EcCurve, point: &[u8]) -> Result<Self> {
        let len = crv.coordinate_len();
        if point.len() != 1 + 2 * len || point[0] != 4 {
            return Err(JoseError::InvalidKey("EC point must be uncompressed"));
        }
        let key = EcKey::from_parts(crv, &point[1..=len], &point[1 + len..], None)?;
        Ok(Self::with_material(KeyMaterial::Ec(key)))
    }

    /// Imports an OKP private key (Ed25519 seed or X25519 scalar, 32 bytes); the public key is
    /// computed.
    ///
    /// # Errors
    /// Invalid key.
    pub fn from_okp_private_bytes(crv: OkpCurve, d: &[u8]) -> Result<Self> {
        let x = match crv {
            OkpCurve::Ed25519 => {
                let pair = signature::Ed25519KeyPair::from_seed_unchecked(d)
                    .map_err(|_| JoseError::InvalidKey("Ed25519 private key"))?;
                pair.public_key().as_ref().to_vec()
            }
            OkpCurve::X25519 => {
                let pk = agreement::PrivateKey::from_private_key(&agreement::X25519, d)
                    .map_err(|_| JoseError::InvalidKey("X25519 private key"))?;
                pk.compute_public_key()
                    .map_err(|_| JoseError::InvalidKey("X25519 private key"))?
                    .as_ref()
                    .to_vec()
            }
        };
        let key = OkpKey::from_parts(crv, &x, Some(Zeroizing::new(d.to_vec())))?;
        Ok(Self::with_material(KeyMaterial::Okp(key)))
    }

    /// Imports an OKP public key (32 bytes).
    ///
    /// # Errors
    /// Invalid key.
    pub fn from_okp_public_bytes(crv: OkpCurve, x: &[u8]) -> Result<Self> {
        Ok(Self::with_material(KeyMaterial::Okp(OkpKey::from_parts(
            crv, x, None,
        )?)))
    }

    /// Generates a random `oct` key of `len` bytes.
    ///
    /// # Errors
    /// RNG failure, or `len == 0`.
    pub fn generate_oct(len: usize) -> Result<Self> {
        Ok(Self::with_material(KeyMaterial::Oct(OctKey::new(
            random_bytes(len)?,
        )?)))
    }

    /// Generates an RSA key of 2048, 3072 or 4096 bits.
    ///
    /// # Errors
    /// Unsupported size or generation failure.
    pub fn generate_rsa(bits: usize) -> Result<Self> {
        let size = match bits {
            2048 => rsa::KeySize::Rsa2048,
            3072 => rsa::KeySize::Rsa3072,
            4096 => rsa::KeySize::Rsa4096,
            _ => {
                return Err(JoseError::InvalidKey(
                    "RSA key size must be 2048, 3072 or 4096",
                ));
            }
        };
        let pair =
            rsa::KeyPair::generate(size).map_err(|_| JoseError::Crypto("RSA key generation"))?;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| JoseError::Crypto("RSA key export"))?;
        let c = crate::der::rsa_components_from_pkcs8(pkcs8.as_ref())?;
        let key = RsaKey::from_parts(&c.n, &c.e, Some([c.d, c.p, c.q, c.dp, c.dq, c.qi]))?;
        Ok(Self::with_material(KeyMaterial::Rsa(Box::new(key))))
    }

    /// Generates an EC key on `crv`.
    ///
    /// # Errors
    /// Generation failure.
    pub fn generate_ec(crv: EcCurve) -> Result<Self> {
        let (_, salg, _) = ec_algs(crv);
        let pair = signature::EcdsaKeyPair::generate(salg)
            .map_err(|_| JoseError::Crypto("EC key generation"))?;
        let d = pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| JoseError::Crypto("EC key export"))?;
        let d = Zeroizing::new(d.as_ref().to_vec());
        let point = pair.public_key().as_ref();
        let len = crv.coordinate_len();
        if point.len() != 1 + 2 * len {
            return Err(JoseError::Crypto("EC key export"));
        }
        let key = EcKey::from_parts(crv, &point[1..=len], &point[1 + len..], Some(d))?;
        Ok(Self::with_material(KeyMaterial::Ec(key)))
    }

    /// Generates an Ed25519 or X25519 key.
    ///
    /// # Errors
    /// Generation failure.
    pub fn generate_okp(crv: OkpCurve) -> Result<Self> {
        crate::policy::check_okp_curve(crv)?;
        let (d, x) = match crv {
            OkpCurve::Ed25519 => {
                let pair = signature::Ed25519KeyPair::generate()
                    .map_err(|_| JoseError::Crypto("Ed25519 key generation"))?;
                let seed = pair
                    .seed()
                    .map_err(|_| JoseError::Crypto("Ed25519 key export"))?;
                let seed = seed
                    .as_be_bytes()
                    .map_err(|_| JoseError::Crypto("Ed25519 key export"))?;
                (
                    Zeroizing::new(seed.as_ref().to_vec()),
                    pair.public_key().as_ref().to_vec(),
                )
            }
            OkpCurve::X25519 => {
                let pk = agreement::PrivateKey::generate(&agreement::X25519)
                    .map_err(|_| JoseError::Crypto("X25519 key generation"))?;
                let d: agreement_seed::Seed = pk
                    .as_be_bytes()
                    .map_err(|_| JoseError::Crypto("X25519 key export"))?;
                let x = pk
                    .compute_public_key()
                    .map_err(|_| JoseError::Crypto("X25519 key export"))?;
                (Zeroizing::new(d.as_ref().to_vec()), x.as_ref().to_vec())
            }
        };
        Ok(Self::with_material(KeyMaterial::Okp(OkpKey::from_parts(
            crv,
            &x,
            Some(d),
        )?)))
    }

    /// Generates an `AKP` key for `alg` (`ML-DSA-44/65/87`, `ML-KEM-768`, `ML-KEM-1024`,
    /// `ML-KEM-768+A192KW`, `ML-KEM-1024+A256KW`) and sets its (required) `alg`.
    ///
    /// # Errors
    /// Unknown algorithm or generation failure.
    pub fn generate_akp(alg: &str) -> Result<Self> {
        let key = AkpKey::generate(alg)?;
        let mut jwk = Self::with_material(KeyMaterial::Akp(key));
        if let KeyMaterial::Akp(k) = &jwk.material {
            jwk.alg = Some(k.alg.to_owned());
        }
        Ok(jwk)
    }

    /// Generates a key for an elastic key algorithm (SPEC §3.3 sizes) and sets its `alg` and `use`.
    ///
    /// * HS*: `oct` of the hash size; RS/PS: RSA 2048/3072/4096; ES*: P-256/384/521; EdDSA: Ed25519.
    /// * `dir`: `oct` of the `enc` key size; A*KW/A*GCMKW: `oct` of the KEK size; RSA-OAEP-*:
    ///   RSA 2048/3072/4096; ECDH-ES: P-256, +A128KW P-256, +A192KW P-384, +A256KW P-521.
    ///
    /// # Errors
    /// Generation failure.
    pub fn generate_for(alg: KeyAlgorithm) -> Result<Self> {
        crate::policy::check_key_algorithm(alg)?;
        let mut key = match alg {
            KeyAlgorithm::Jws(a) => {
                if let Some(len) = a.hmac_key_len() {
                    Self::generate_oct(len)?
                } else if let Some(bits) = a.rsa_bits() {
                    Self::generate_rsa(bits)?
                } else if let Some(crv) = a.ec_curve() {
                    Self::generate_ec(crv)?
                } else if a.is_ml_dsa() {
                    Self::generate_akp(a.name())?
                } else {
                    Self::generate_okp(OkpCurve::Ed25519)?
                }
            }
            KeyAlgorithm::Jwe { enc, alg: a } => {
                if a == JweAlgorithm::Dir {
                    Self::generate_oct(enc.key_len())?
                } else if a.is_ml_kem() {
                    Self::generate_akp(a.name())?
                } else if let Some(bits) = a.rsa_bits() {
                    Self::generate_rsa(bits)?
                } else if let Some(crv) = a.default_ec_curve() {
                    Self::generate_ec(crv)?
                } else if let Some(len) = a.kek_len() {
                    Self::generate_oct(len)?
                } else {
                    return Err(JoseError::UnsupportedAlgorithm(a.to_string()));
                }
            }
        };
        match alg {
            KeyAlgorithm::Jws(a) => {
                key.alg = Some(a.name().to_owned());
                key.key_use = Some("sig".to_owned());
            }
            KeyAlgorithm::Jwe { alg: a, .. } => {
                key.alg = Some(a.name().to_owned());
                key.key_use = Some("enc".to_owned());
            }
        }
        Ok(key)
    }

    /// `kty`: `"oct"`, `"RSA"`, `"EC"` or `"OKP"`.
    #[must_use]
    pub fn kty(&self) -> &'static str {
        match self.material {
            KeyMaterial::Oct(_) => "oct",
            KeyMaterial::Rsa(_) => "RSA",
            KeyMaterial::Ec(_) => "EC",
            KeyMaterial::Okp(_) => "OKP",
            KeyMaterial::Akp(_) => "AKP",
        }
    }

    /// The parsed key material.
    #[must_use]
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Whether the key holds private (or symmetric) material.
    #[must_use]
    pub fn is_private(&self) -> bool {
        match &self.material {
            KeyMaterial::Oct(_) => true,
            KeyMaterial::Rsa(k) => k.private.is_some(),
            KeyMaterial::Ec(k) => k.private.is_some(),
            KeyMaterial::Okp(k) => match &k.inner {
                OkpInner::Ed25519 { private, .. } => private.is_some(),
                OkpInner::X25519 { private, .. } => private.is_some(),
            },
            KeyMaterial::Akp(k) => k.is_private(),
        }
    }

    /// `kid`.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Sets `kid`.
    pub fn set_kid(&mut self, kid: Option<String>) {
        self.kid = kid;
    }

    /// `alg` (the JWS `alg`, or the JWE key management `alg`).
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// Sets `alg`. An `AKP` key's `alg` is fixed by its parameter set: for those, a different
    /// value is ignored (the key keeps its own).
    pub fn set_alg(&mut self, alg: Option<String>) {
        if let KeyMaterial::Akp(k) = &self.material {
            self.alg = Some(k.alg.to_owned());
            return;
        }
        self.alg = alg;
    }

    /// `use` (`"sig"` or `"enc"`).
    #[must_use]
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// Sets `use`.
    pub fn set_key_use(&mut self, key_use: Option<String>) {
        self.key_use = key_use;
    }

    /// `key_ops`.
    #[must_use]
    pub fn key_ops(&self) -> Option<&[String]> {
        self.key_ops.as_deref()
    }

    /// Sets `key_ops`.
    pub fn set_key_ops(&mut self, ops: Option<Vec<String>>) {
        self.key_ops = ops;
    }

    /// Checks `alg`, `use` and `key_ops` against an intended operation.
    /// `names` are the algorithm names the key's `alg` may carry (for `dir`, RFC 7520 §5.6
    /// labels the key with the `enc` name, so both are accepted).
    pub(crate) fn check_usage(&self, names: &[&str], op: Op) -> Result<()> {
        if let Some(a) = &self.alg
            && !names.contains(&a.as_str())
        {
            return Err(JoseError::AlgorithmMismatch {
                expected: crate::jwa::truncate(a),
                found: names.first().copied().unwrap_or_default().to_owned(),
            });
        }
        let sig = matches!(op, Op::Sign | Op::Verify);
        if let Some(u) = &self.key_use
            && ((sig && u != "sig") || (!sig && u != "enc"))
        {
            return Err(JoseError::KeyMismatch(
                "the key's use does not allow this operation",
            ));
        }
        if let Some(ops) = &self.key_ops {
            let allowed: &[&str] = match op {
                Op::Sign => &["sign"],
                Op::Verify => &["verify"],
                Op::Encrypt => &["encrypt", "wrapKey", "deriveKey", "deriveBits"],
                Op::Decrypt => &["decrypt", "unwrapKey", "deriveKey", "deriveBits"],
            };
            if !ops.iter().any(|o| allowed.contains(&o.as_str())) {
                return Err(JoseError::KeyMismatch(
                    "the key's key_ops do not allow this operation",
                ));
            }
        }
        Ok(())
    }

    /// The public form of this key (for symmetric keys: an error).
    ///
    /// # Errors
    /// [`JoseError::KeyMismatch`] for `oct` keys.
    pub fn to_public(&self) -> Result<Jwk> {
        if matches!(self.material, KeyMaterial::Oct(_)) {
            return Err(JoseError::KeyMismatch("oct keys have no public form"));
        }
        Jwk::from_value(self.to_value(false))
    }

    /// The JWK as a JSON object. Private members (`d`, RSA CRT values, and `k` of `oct` keys)
    /// are included only when `include_private` is true, so the non-private form never carries
    /// a secret (for `oct` keys it is metadata only, not a usable JWK).
    #[must_use]
    pub fn to_value(&self, include_private: bool) -> Value {
        let mut m = Map::new();
        let s = |v: &[u8]| Value::String(b64::encode(v));
        m.insert("kty".into(), self.kty().into());
        match &self.material {
            KeyMaterial::Oct(k) => {
                if include_private {
                    m.insert("k".into(), s(&k.k));
                }
            }
            KeyMaterial::Rsa(k) => {
                m.insert("n".into(), s(&k.n));
                m.insert("e".into(), s(&k.e));
                if let (true, Some(p)) = (include_private, &k.private) {
                    m.insert("d".into(), s(&p.d));
                    m.insert("p".into(), s(&p.p));
                    m.insert("q".into(), s(&p.q));
                    m.insert("dp".into(), s(&p.dp));
                    m.insert("dq".into(), s(&p.dq));
                    m.insert("qi".into(), s(&p.qi));
                }
            }
            KeyMaterial::Ec(k) => {
                m.insert("crv".into(), k.crv.name().into());
                m.insert("x".into(), s(&k.x));
                m.insert("y".into(), s(&k.y));
                if let (true, Some(p)) = (include_private, &k.private) {
                    m.insert("d".into(), s(&p.d));
                }
            }
            KeyMaterial::Okp(k) => {
                m.insert("crv".into(), k.crv.name().into());
                m.insert("x".into(), s(&k.x));
                let d = match &k.inner {
                    OkpInner::Ed25519 { private, .. } => private.as_ref().map(|p| &p.0),
                    OkpInner::X25519 { private, .. } => private.as_ref().map(|p| &p.0),
                };
                if let (true, Some(d)) = (include_private, d) {
                    m.insert("d".into(), s(d));
                }
            }
            KeyMaterial::Akp(k) => {
                m.insert("pub".into(), s(&k.public));
                if let (true, Some((name, secret))) = (include_private, k.private_member()) {
                    m.insert(name.into(), s(secret));
                }
            }
        }
        if let Some(v) = &self.kid {
            m.insert("kid".into(), v.clone().into());
        }
        if let KeyMaterial::Akp(k) = &self.material {
            // Required for AKP, and always the key's own parameter set.
            m.insert("alg".into(), k.alg.into());
        } else if let Some(v) = &self.alg {
            m.insert("alg".into(), v.clone().into());
        }
        if let Some(v) = &self.key_use {
            m.insert("use".into(), v.clone().into());
        }
        if let Some(v) = &self.key_ops {
            m.insert("key_ops".into(), v.clone().into());
        }
        Value::Object(m)
    }

    /// Serializes to JSON, with private members only when `include_private` is true.
    /// The returned string holds secrets when `include_private` is true: zeroize it after use.
    #[must_use]
    pub fn to_json(&self, include_private: bool) -> Zeroizing<String> {
        Zeroizing::new(self.to_value(include_private).to_string())
    }

    /// RFC 7638 thumbprint input: the required members in lexicographic order, no whitespace.
    fn thumbprint_input(&self) -> String {
        let s = b64::encode;
        match &self.material {
            KeyMaterial::Oct(k) => format!(r#"{{"k":"{}","kty":"oct"}}"#, s(&k.k)),
            KeyMaterial::Rsa(k) => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&k.e), s(&k.n))
            }
            KeyMaterial::Ec(k) => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                k.crv.name(),
                s(&k.x),
                s(&k.y)
            ),
            KeyMaterial::Okp(k) => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                k.crv.name(),
                s(&k.x)
            ),
            // RFC 9964: alg, kty, pub.
            KeyMaterial::Akp(k) => format!(
                r#"{{"alg":"{}","kty":"AKP","pub":"{}"}}"#,
                k.alg,
                s(&k.public)
            ),
        }
    }

    /// RFC 7638 JWK thumbprint with SHA-256, base64url-encoded.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        let input = Zeroizing::new(self.thumbprint_input());
        b64::encode(digest::digest(&digest::SHA256, input.as_bytes()).as_ref())
    }
}

/// Private alias so the X25519 seed type reads clearly above.
mod agreement_seed {
    pub(super) type Seed = aws_lc_rs::encoding::Curve25519SeedBin<'static>;
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Default)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses `{"keys":[...]}`. Every key must be valid.
    ///
    /// # Errors
    /// JSON or key errors.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > crate::limits::MAX_JSON_LEN {
            return Err(JoseError::TooLarge {
                what: "JWK set",
                limit: crate::limits::MAX_JSON_LEN,
            });
        }
        let m = parse_object(json.as_bytes(), "JWK set")?;
        let Some(Value::Array(keys)) = m.get("keys") else {
            return Err(JoseError::Malformed("JWK set needs a keys array"));
        };
        let keys = keys
            .iter()
            .map(|k| match k {
                Value::Object(o) => Jwk::from_map(o),
                _ => Err(JoseError::Malformed("JWK must be a JSON object")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { keys })
    }

    /// Serializes the set; private members only when `include_private` is true.
    #[must_use]
    pub fn to_json(&self, include_private: bool) -> Zeroizing<String> {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| k.to_value(include_private))
            .collect();
        Zeroizing::new(serde_json::json!({ "keys": keys }).to_string())
    }

    /// First key with the given `kid`.
    #[must_use]
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid() == Some(kid))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint() {
        // RFC 7638 §3.1 example key.
        let jwk = Jwk::from_json(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generate_every_algorithm_and_round_trip() {
        for alg in KeyAlgorithm::all() {
            // RSA generation is slow; one size per family is covered in integration tests.
            if matches!(alg, KeyAlgorithm::Jws(a) if a.rsa_bits().is_some_and(|b| b > 2048))
                || matches!(alg, KeyAlgorithm::Jwe { alg, .. } if alg.rsa_bits().is_some_and(|b| b > 2048))
            {
                continue;
            }
            if crate::policy::check_key_algorithm(alg).is_err() {
                assert!(Jwk::generate_for(alg).is_err(), "{alg}"); // refused in the FIPS build
                continue;
            }
            let k = Jwk::generate_for(alg).unwrap();
            let json = k.to_json(true);
            let back = Jwk::from_json(&json).unwrap();
            assert_eq!(back.thumbprint(), k.thumbprint());
            assert_eq!(*back.to_json(true), *json);
            let dbg = format!("{k:?}");
            if let Some(Value::String(secret)) =
                k.to_value(true).get("d").or(k.to_value(true).get("k"))
            {
                assert!(!dbg.contains(secret.as_str()));
            }
        }
    }

    #[test]
    fn rejects_bad_keys() {
        // P-256 point not on the curve.
        let x = b64::encode(&[1u8; 32]);
        let bad = format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{x}"}}"#);
        assert!(matches!(
            Jwk::from_json(&bad),
            Err(JoseError::InvalidKey(_))
        ));
        // Short coordinate.
        let x = b64::encode(&[1u8; 31]);
        let bad = format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{x}"}}"#);
        assert!(Jwk::from_json(&bad).is_err());
        assert!(Jwk::from_json(r#"{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}"#).is_err());
        assert!(Jwk::from_json(r#"{"kty":"oct","k":""}"#).is_err());
        assert!(Jwk::from_json(r#"{"kty":"oct","k":"AAAA","k":"AAAA"}"#).is_err());
        assert!(Jwk::from_json(r#"{"kty":"oct","k":"AA=="}"#).is_err());
        assert!(Jwk::from_json(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).is_err());
    }
}
