//! The FIPS policy of the JOSE layer: which algorithms and key types a FIPS build (cargo feature
//! `fips`) accepts.
//!
//! The table ([`TABLE`]) says, for every algorithm and key type this crate knows, whether it is an
//! approved service of the AWS-LC FIPS module when used the way this crate uses it, and why not
//! otherwise. It was read off the module's service indicator (`FIPS_service_indicator_*`, the
//! counter AWS-LC increments when an approved service is called with approved parameters) for
//! exactly the aws-lc-rs calls this crate makes, and checked against the module's security
//! policy; docs/security.md ("FIPS build") gives the sources.
//!
//! Enforcement is one call at each entry point (signing and verification, key management, key
//! parsing and generation), so no call site can forget it: in a FIPS build a refused algorithm
//! fails with [`JoseError::NotFipsApproved`], which names it and says why. Outside a FIPS build
//! the checks pass everything; [`verdict`] still answers, for documentation and tests.

use aws_lc_rs::{aead, kdf};
use zeroize::Zeroizing;

use crate::error::{JoseError, Result};
use crate::jwa::{ContentEncryption, JweAlgorithm, JwsAlgorithm, KeyAlgorithm, OkpCurve};

/// Whether this build enforces the table (cargo feature `fips`).
pub const ENFORCED: bool = cfg!(feature = "fips");

/// One row of the approved table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The JOSE name (`ES256`, `ECDH-ES+A128KW`, `A256GCM`) or key type (`X25519`).
    pub name: &'static str,
    /// `None` when approved; otherwise why not.
    pub refused: Option<&'static str>,
}

const fn ok(name: &'static str) -> Entry {
    Entry {
        name,
        refused: None,
    }
}

const fn no(name: &'static str, why: &'static str) -> Entry {
    Entry {
        name,
        refused: Some(why),
    }
}

const X25519_WHY: &str = "X25519 key agreement is not an approved service of the AWS-LC FIPS \
                          module (SP 800-56A Rev. 3 names the NIST curves only)";
const AES192_KW_WHY: &str = "the module's AES key wrap (SP 800-38F KW) takes 128- and 256-bit \
                             keys only; AES-192 key wrap would be assembled outside the module";
const GCMKW_WHY: &str = "the module approves AES-GCM encryption only with an IV it generates \
                         itself (IG C.H), and AES-GCMKW carries the caller's IV; use A128KW or \
                         A256KW";
const KMAC_WHY: &str = "the ML-KEM key derivation of draft-ietf-jose-pqc-kem is KMAC256, which \
                        the AWS-LC FIPS module does not offer; cryptoutil-jose computes it \
                        outside the module (ML-KEM itself is approved: the TLS groups use it)";
const AES192_GCM_WHY: &str = "AES-192-GCM is not an approved service of the AWS-LC FIPS module \
                              (its service indicator approves neither sealing nor opening)";

/// Every algorithm and key type this crate knows, and its status in a FIPS build.
pub const TABLE: &[Entry] = &[
    // JWS (FIPS 198-1 HMAC, FIPS 186-5 RSA/ECDSA/EdDSA, FIPS 204 ML-DSA)
    ok("HS256"),
    ok("HS384"),
    ok("HS512"),
    ok("RS256"),
    ok("RS384"),
    ok("RS512"),
    ok("PS256"),
    ok("PS384"),
    ok("PS512"),
    ok("ES256"),
    ok("ES384"),
    ok("ES512"),
    ok("EdDSA"),
    ok("ML-DSA-44"),
    ok("ML-DSA-65"),
    ok("ML-DSA-87"),
    // JWE key management (SP 800-38F KW, SP 800-56A Rev. 3 ECC CDH, SP 800-56B OAEP, FIPS 203)
    ok("dir"),
    ok("A128KW"),
    no("A192KW", AES192_KW_WHY),
    ok("A256KW"),
    no("A128GCMKW", GCMKW_WHY),
    no("A192GCMKW", GCMKW_WHY),
    no("A256GCMKW", GCMKW_WHY),
    ok("RSA-OAEP-256"),
    ok("RSA-OAEP-384"),
    ok("RSA-OAEP-512"),
    ok("ECDH-ES"),
    ok("ECDH-ES+A128KW"),
    no("ECDH-ES+A192KW", AES192_KW_WHY),
    ok("ECDH-ES+A256KW"),
    no("ML-KEM-768", KMAC_WHY),
    no("ML-KEM-1024", KMAC_WHY),
    no("ML-KEM-768+A192KW", KMAC_WHY),
    no("ML-KEM-1024+A256KW", KMAC_WHY),
    // JWE content encryption (SP 800-38D GCM, SP 800-38A CBC with FIPS 198-1 HMAC)
    ok("A128GCM"),
    no("A192GCM", AES192_GCM_WHY),
    ok("A256GCM"),
    ok("A128CBC-HS256"),
    ok("A192CBC-HS384"),
    ok("A256CBC-HS512"),
    // key types
    ok("P-256"),
    ok("P-384"),
    ok("P-521"),
    ok("Ed25519"),
    no("X25519", X25519_WHY),
];

/// Why `name` is refused in a FIPS build (`Some`), or `None` when it is approved. A name missing
/// from the table is refused: only what was checked is approved.
#[must_use]
pub fn verdict(name: &str) -> Option<&'static str> {
    match TABLE.iter().find(|e| e.name == name) {
        Some(e) => e.refused,
        None => Some("not in the approved table of this build"),
    }
}

/// Whether this build accepts `name`: always outside a FIPS build, else when the table approves
/// it.
#[must_use]
pub fn allows(name: &str) -> bool {
    !ENFORCED || verdict(name).is_none()
}

/// The refusal of `name`, when the table refuses it and this build enforces the table.
fn enforce(name: &str) -> Result<()> {
    if !ENFORCED {
        return Ok(());
    }
    match verdict(name) {
        None => Ok(()),
        Some(why) => Err(JoseError::NotFipsApproved {
            what: crate::jwa::truncate(name),
            why,
        }),
    }
}

/// A JWS signature or MAC (signing and verification). Keys need no check of their own: every EC
/// curve is approved, and an X25519 key cannot be made in the FIPS build ([`check_okp_curve`]).
///
/// # Errors
/// [`JoseError::NotFipsApproved`] in a FIPS build when the algorithm is not approved.
pub fn check_jws(alg: JwsAlgorithm) -> Result<()> {
    enforce(alg.name())
}

/// JWE key management `alg` with content encryption `enc` (encryption and decryption).
///
/// # Errors
/// [`JoseError::NotFipsApproved`] in a FIPS build when either is not approved.
pub fn check_jwe(alg: JweAlgorithm, enc: ContentEncryption) -> Result<()> {
    enforce(alg.name())?;
    enforce(enc.name())
}

/// An elastic key algorithm (`ES256`, `A256GCM/A256KW`), before a key is made for it.
///
/// # Errors
/// [`JoseError::NotFipsApproved`] in a FIPS build when a part is not approved.
pub fn check_key_algorithm(alg: KeyAlgorithm) -> Result<()> {
    match alg {
        KeyAlgorithm::Jws(a) => enforce(a.name()),
        KeyAlgorithm::Jwe { enc, alg } => {
            enforce(alg.name())?;
            enforce(enc.name())
        }
    }
}

/// An OKP curve, when a key on it is parsed or generated.
///
/// # Errors
/// [`JoseError::NotFipsApproved`] in a FIPS build for X25519.
pub fn check_okp_curve(crv: OkpCurve) -> Result<()> {
    enforce(crv.name())
}

/// AES-GCM content encryption the way the module approves it: the module draws the 96-bit IV
/// itself (`RandomizedNonceKey`, IG C.H scenario 2). Returns the IV, the ciphertext and the tag.
/// The FIPS build encrypts every `A128GCM`/`A256GCM` JWE this way (a caller's IV is not
/// approved).
///
/// # Errors
/// A CEK that is not 16 or 32 bytes, or a primitive failure.
pub(crate) fn seal_gcm(
    cek: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; 12], Vec<u8>, [u8; 16])> {
    let alg = match cek.len() {
        16 => &aead::AES_128_GCM,
        32 => &aead::AES_256_GCM,
        _ => {
            return Err(JoseError::NotFipsApproved {
                what: format!("AES-{}-GCM", cek.len() * 8),
                why: AES192_GCM_WHY,
            });
        }
    };
    let key = aead::RandomizedNonceKey::new(alg, cek).map_err(|_| JoseError::Crypto("AES-GCM"))?;
    let mut ciphertext = plaintext.to_vec();
    let (nonce, tag) = key
        .seal_in_place_separate_tag(aead::Aad::from(aad), &mut ciphertext)
        .map_err(|_| JoseError::Crypto("AES-GCM seal"))?;
    let mut iv = [0u8; 12];
    iv.copy_from_slice(nonce.as_ref());
    let mut t = [0u8; 16];
    t.copy_from_slice(tag.as_ref());
    Ok((iv, ciphertext, t))
}

/// The Concat KDF of RFC 7518 §4.6.2 computed by the module's own one-step KDF (SP 800-56C
/// Rev. 2 §4.1 with SHA-256, `SSKDF_digest`): the same bytes as hashing `counter ‖ Z ‖
/// OtherInfo` (RFC 7518 Appendix C), but inside the module's approved service. The FIPS build
/// derives every ECDH-ES key this way.
///
/// # Errors
/// Lengths that do not fit 32 bits, or a primitive failure.
pub(crate) fn concat_kdf(
    z: &[u8],
    key_len: usize,
    alg_id: &[u8],
    apu: &[u8],
    apv: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let len32 = |n: usize| {
        u32::try_from(n)
            .map(u32::to_be_bytes)
            .map_err(|_| JoseError::Malformed("KDF input"))
    };
    let mut info = Vec::with_capacity(16 + alg_id.len() + apu.len() + apv.len());
    for part in [alg_id, apu, apv] {
        info.extend_from_slice(&len32(part.len())?);
        info.extend_from_slice(part);
    }
    info.extend_from_slice(&len32(key_len.saturating_mul(8))?);
    let sha256 = kdf::get_sskdf_digest_algorithm(kdf::SskdfDigestAlgorithmId::Sha256)
        .ok_or(JoseError::Crypto("SSKDF"))?;
    let mut out = Zeroizing::new(vec![0u8; key_len]);
    kdf::sskdf_digest(sha256, z, &info, &mut out).map_err(|_| JoseError::Crypto("SSKDF"))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::jwa::EcCurve;

    #[test]
    fn the_module_computes_the_concat_kdf_of_rfc_7518_appendix_c() {
        // RFC 7518 Appendix C: Z, "A128GCM", apu "Alice", apv "Bob" → "VqqN6vgjbSBcIijNcacQGg".
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, 16, b"A128GCM", b"Alice", b"Bob").unwrap();
        assert_eq!(crate::b64::encode(&key), "VqqN6vgjbSBcIijNcacQGg");
        // And the same bytes as the hash-based construction, for every length used.
        for len in [16, 24, 32, 48, 64] {
            let a = concat_kdf(&z, len, b"ECDH-ES+A256KW", b"u", b"").unwrap();
            let b = crate::jwe::alg::concat_kdf(&z, len, b"ECDH-ES+A256KW", b"u", b"").unwrap();
            assert_eq!(a, b, "{len}");
        }
    }

    #[test]
    fn gcm_sealed_with_the_modules_iv_opens_with_any_aes_gcm() {
        for len in [16, 32] {
            let cek = [9u8; 32];
            let (iv, ct, tag) = seal_gcm(&cek[..len], b"aad", b"plaintext").unwrap();
            let plain = crate::jwe::enc::decrypt(
                if len == 16 {
                    ContentEncryption::A128GCM
                } else {
                    ContentEncryption::A256GCM
                },
                &cek[..len],
                &iv,
                b"aad",
                &ct,
                &tag,
            )
            .unwrap();
            assert_eq!(&plain[..], b"plaintext");
            // Two seals never share an IV.
            let (again, _, _) = seal_gcm(&cek[..len], b"aad", b"plaintext").unwrap();
            assert_ne!(again, iv);
        }
        assert!(seal_gcm(&[0u8; 24], b"", b"").is_err());
    }

    #[test]
    fn every_name_this_crate_knows_has_a_row() {
        let mut names: Vec<&str> = Vec::new();
        names.extend(JwsAlgorithm::ALL.iter().map(|a| a.name()));
        names.extend(JweAlgorithm::ALL.iter().map(|a| a.name()));
        names.extend(ContentEncryption::ALL.iter().map(|a| a.name()));
        names.extend(EcCurve::ALL.iter().map(|a| a.name()));
        names.extend(OkpCurve::ALL.iter().map(|a| a.name()));
        for name in names {
            assert!(
                TABLE.iter().any(|e| e.name == name),
                "{name} has no row in the FIPS table"
            );
        }
        // No name twice.
        for (i, e) in TABLE.iter().enumerate() {
            assert!(
                !TABLE[i + 1..].iter().any(|o| o.name == e.name),
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn the_table_refuses_x25519_and_aes_192_key_wrap_and_unknown_names() {
        assert!(verdict("X25519").unwrap().contains("X25519"));
        assert!(verdict("A192KW").is_some());
        assert!(verdict("ECDH-ES+A192KW").is_some());
        assert!(verdict("A256GCMKW").unwrap().contains("IV"));
        assert!(verdict("A192GCM").is_some());
        assert!(verdict("EdDSA").is_none());
        assert!(verdict("RSA-OAEP-256").is_none());
        assert!(verdict("RSA1_5").is_some());
        assert!(verdict("ES256").is_none());
        assert!(verdict("A256GCM").is_none());
    }

    #[test]
    fn checks_pass_everything_outside_a_fips_build_and_refuse_inside() {
        let results = [
            check_okp_curve(OkpCurve::X25519),
            check_key_algorithm(KeyAlgorithm::Jwe {
                enc: ContentEncryption::A256GCM,
                alg: JweAlgorithm::A192KW,
            }),
            check_jwe(JweAlgorithm::A256GCMKW, ContentEncryption::A256GCM),
        ];
        for r in results {
            if ENFORCED {
                let e = r.unwrap_err();
                assert!(matches!(e, JoseError::NotFipsApproved { .. }), "{e:?}");
                assert!(e.to_string().contains("FIPS"), "{e}");
            } else {
                r.unwrap();
            }
        }
        check_jws(JwsAlgorithm::EdDSA).unwrap();
        check_jwe(JweAlgorithm::EcdhEs, ContentEncryption::A256GCM).unwrap();
        check_key_algorithm(KeyAlgorithm::DEFAULT).unwrap();
    }
}
