#![allow(dead_code)]
// Fixed keys shared by the fuzz targets (generated once per process).
use std::sync::OnceLock;

use cryptoutil_jose::{EcCurve, Jwk, OkpCurve};

pub struct Keys {
    pub oct16: Jwk,
    pub oct32: Jwk,
    pub oct64: Jwk,
    pub p256: Jwk,
    pub p521: Jwk,
    pub x25519: Jwk,
    pub ed25519: Jwk,
    pub rsa: Jwk,
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        oct16: Jwk::from_oct_bytes(&[1u8; 16]).unwrap(),
        oct32: Jwk::from_oct_bytes(&[2u8; 32]).unwrap(),
        oct64: Jwk::from_oct_bytes(&[3u8; 64]).unwrap(),
        p256: Jwk::from_ec_private_bytes(EcCurve::P256, &[4u8; 32]).unwrap(),
        p521: Jwk::from_ec_private_bytes(EcCurve::P521, &[1u8; 66]).unwrap(),
        x25519: Jwk::from_okp_private_bytes(OkpCurve::X25519, &[5u8; 32]).unwrap(),
        ed25519: Jwk::from_okp_private_bytes(OkpCurve::Ed25519, &[6u8; 32]).unwrap(),
        rsa: Jwk::generate_rsa(2048).unwrap(),
    })
}
