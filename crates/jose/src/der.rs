//! Just enough DER reading to extract RSA private key components from the PKCS#8 document
//! aws-lc-rs produces for generated keys (JWK export needs `d`, `p`, `q`, `dp`, `dq`, `qi`).

use zeroize::Zeroizing;

use crate::error::{JoseError, Result};

const ERR: JoseError = JoseError::InvalidKey("malformed DER");

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn read_tlv(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (&t, rest) = self.buf.split_first().ok_or(ERR)?;
        if t != tag {
            return Err(ERR);
        }
        let (&l0, mut rest) = rest.split_first().ok_or(ERR)?;
        let len = if l0 < 0x80 {
            usize::from(l0)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(ERR);
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(ERR);
        }
        let (value, rest) = rest.split_at(len);
        self.buf = rest;
        Ok(value)
    }

    fn read_uint(&mut self) -> Result<&'a [u8]> {
        let v = self.read_tlv(0x02)?;
        let mut v = v;
        while v.len() > 1 && v[0] == 0 {
            v = &v[1..];
        }
        Ok(v)
    }
}

/// RSA private components, big-endian, without leading zeros.
pub(crate) struct RsaComponents {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Zeroizing<Vec<u8>>,
    pub p: Zeroizing<Vec<u8>>,
    pub q: Zeroizing<Vec<u8>>,
    pub dp: Zeroizing<Vec<u8>>,
    pub dq: Zeroizing<Vec<u8>>,
    pub qi: Zeroizing<Vec<u8>>,
}

/// Parses a PKCS#8 v1 `PrivateKeyInfo` holding an `RSAPrivateKey`.
pub(crate) fn rsa_components_from_pkcs8(pkcs8: &[u8]) -> Result<RsaComponents> {
    let mut outer = Reader { buf: pkcs8 };
    let mut pki = Reader {
        buf: outer.read_tlv(0x30)?,
    };
    let _version = pki.read_uint()?;
    let _alg = pki.read_tlv(0x30)?;
    let mut octets = Reader {
        buf: pki.read_tlv(0x04)?,
    };
    let mut rsa = Reader {
        buf: octets.read_tlv(0x30)?,
    };
    let version = rsa.read_uint()?;
    if version != [0] {
        return Err(JoseError::InvalidKey("multi-prime RSA is not supported"));
    }
    let z = |s: &[u8]| Zeroizing::new(s.to_vec());
    Ok(RsaComponents {
        n: rsa.read_uint()?.to_vec(),
        e: rsa.read_uint()?.to_vec(),
        d: z(rsa.read_uint()?),
        p: z(rsa.read_uint()?),
        q: z(rsa.read_uint()?),
        dp: z(rsa.read_uint()?),
        dq: z(rsa.read_uint()?),
        qi: z(rsa.read_uint()?),
    })
}
