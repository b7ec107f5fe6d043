//! KMAC256 (NIST SP 800-185) on a Keccak-f\[1600\] sponge, for the ML-KEM key derivation of
//! draft-ietf-jose-pqc-kem-05 §5.1 (SP 800-108r1 KDF in KMAC mode).
//!
//! aws-lc-rs exposes SHA-3 digests but neither SHAKE, cSHAKE nor KMAC, so the sponge is here.
//! Tested against the SP 800-185 KMAC256 samples and, for the permutation, against aws-lc-rs'
//! SHA3-256. Inputs are secrets: the state is zeroized on drop.

use zeroize::{Zeroize, Zeroizing};

/// Round constants of Keccak-f\[1600\] (FIPS 202 §3.2.5).
const RC: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];
/// ρ rotation offsets, in the order of the π lane walk below.
const ROT: [u32; 24] = [
    1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
];
/// π lane walk starting at lane 1.
const PI: [usize; 24] = [
    10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
];

fn keccak_f(st: &mut [u64; 25]) {
    for rc in RC {
        let mut c = [0u64; 5];
        for (x, cx) in c.iter_mut().enumerate() {
            *cx = st[x] ^ st[x + 5] ^ st[x + 10] ^ st[x + 15] ^ st[x + 20];
        }
        for x in 0..5 {
            let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotate_left(1);
            for y in 0..5 {
                st[5 * y + x] ^= d;
            }
        }
        let mut carry = st[1];
        for (&lane, &rot) in PI.iter().zip(ROT.iter()) {
            let next = st[lane];
            st[lane] = carry.rotate_left(rot);
            carry = next;
        }
        for y in 0..5 {
            let row = [
                st[5 * y],
                st[5 * y + 1],
                st[5 * y + 2],
                st[5 * y + 3],
                st[5 * y + 4],
            ];
            for x in 0..5 {
                st[5 * y + x] = row[x] ^ (!row[(x + 1) % 5] & row[(x + 2) % 5]);
            }
        }
        st[0] ^= rc;
    }
}

/// A Keccak sponge with byte-oriented absorb and squeeze.
pub(crate) struct Sponge {
    st: [u64; 25],
    rate: usize,
    pos: usize,
}

impl Drop for Sponge {
    fn drop(&mut self) {
        self.st.zeroize();
    }
}

impl Sponge {
    /// A sponge with `rate` bytes (136 for 256-bit security).
    pub(crate) fn new(rate: usize) -> Self {
        Self {
            st: [0; 25],
            rate,
            pos: 0,
        }
    }

    fn xor_byte(&mut self, i: usize, b: u8) {
        self.st[i / 8] ^= u64::from(b) << (8 * (i % 8));
    }

    pub(crate) fn absorb(&mut self, data: &[u8]) {
        for &b in data {
            self.xor_byte(self.pos, b);
            self.pos += 1;
            if self.pos == self.rate {
                keccak_f(&mut self.st);
                self.pos = 0;
            }
        }
    }

    /// Pads with the domain byte (`0x06` SHA-3, `0x1f` SHAKE, `0x04` cSHAKE) and squeezes.
    pub(crate) fn finish(mut self, domain: u8, out: &mut [u8]) {
        self.xor_byte(self.pos, domain);
        self.xor_byte(self.rate - 1, 0x80);
        keccak_f(&mut self.st);
        let mut i = 0;
        for o in out.iter_mut() {
            if i == self.rate {
                keccak_f(&mut self.st);
                i = 0;
            }
            // Lane i/8, byte i%8, little-endian.
            *o = (self.st[i / 8] >> (8 * (i % 8))) as u8;
            i += 1;
        }
    }
}

const RATE_256: usize = 136;

fn left_encode(x: u64) -> Vec<u8> {
    let bytes = x.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|&&b| b == 0).count();
    let mut v = Vec::with_capacity(9);
    v.push((8 - skip) as u8);
    v.extend_from_slice(&bytes[skip..]);
    v
}

fn right_encode(x: u64) -> Vec<u8> {
    let bytes = x.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|&&b| b == 0).count();
    let mut v = bytes[skip..].to_vec();
    v.push((8 - skip) as u8);
    v
}

/// Absorbs `bytepad(encode_string(a) || encode_string(b) ..., rate)`.
fn absorb_bytepad(sponge: &mut Sponge, strings: &[&[u8]]) {
    let mut n = 0;
    let w = left_encode(RATE_256 as u64);
    sponge.absorb(&w);
    n += w.len();
    for s in strings {
        let l = left_encode((s.len() as u64).saturating_mul(8));
        sponge.absorb(&l);
        sponge.absorb(s);
        n += l.len() + s.len();
    }
    let pad = (RATE_256 - n % RATE_256) % RATE_256;
    sponge.absorb(&vec![0u8; pad]);
}

/// KMAC256(K, X, L = 8·`out_len`, S) (NIST SP 800-185 §4.3).
#[must_use]
pub fn kmac256(key: &[u8], x: &[u8], out_len: usize, custom: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut sponge = Sponge::new(RATE_256);
    // cSHAKE256 prefix with N = "KMAC", S = custom.
    absorb_bytepad(&mut sponge, &[b"KMAC", custom]);
    // newX = bytepad(encode_string(K), 136) || X || right_encode(L).
    absorb_bytepad(&mut sponge, &[key]);
    sponge.absorb(x);
    sponge.absorb(&right_encode((out_len as u64).saturating_mul(8)));
    let mut out = Zeroizing::new(vec![0u8; out_len]);
    sponge.finish(0x04, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn permutation_matches_aws_lc_sha3_256() {
        for len in [0usize, 1, 135, 136, 137, 300, 1000] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut s = Sponge::new(136);
            s.absorb(&msg);
            let mut out = [0u8; 32];
            s.finish(0x06, &mut out);
            let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, &msg);
            assert_eq!(&out[..], want.as_ref(), "len {len}");
        }
    }

    #[test]
    fn sp800_185_kmac256_samples() {
        // NIST SP 800-185 KMAC samples #4, #5 and #6 (KMAC256, L = 512).
        let key: Vec<u8> = (0x40u8..0x60).collect();
        let long: Vec<u8> = (0u8..200).collect();
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0, 1, 2, 3],
                b"My Tagged Application",
                "20C570C31346F703C9AC36C61C03CB64C3970D0CFC787E9B79599D273A68D2F7F69D4CC3DE9D104A351689F27CF6F5951F0103F33F4F24871024D9C27773A8DD",
            ),
            (
                &long,
                b"",
                "75358CF39E41494E949707927CEE0AF20A3FF553904C86B08F21CC414BCFD691589D27CF5E15369CBBFF8B9A4C2EB17800855D0235FF635DA82533EC6B759B69",
            ),
            (
                &long,
                b"My Tagged Application",
                "B58618F71F92E1D56C1B8C55DDD7CD188B97B4CA4D99831EB2699A837DA2E4D970FBACFDE50033AEA585F1A2708510C32D07880801BD182898FE476876FC8965",
            ),
        ];
        for (data, s, want) in cases {
            assert_eq!(*kmac256(&key, data, 64, s), hex(want));
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(left_encode(0), vec![1, 0]);
        assert_eq!(left_encode(136), vec![1, 136]);
        assert_eq!(left_encode(256), vec![2, 1, 0]);
        assert_eq!(right_encode(512), vec![2, 0, 2]);
        assert_eq!(right_encode(0), vec![0, 1]);
    }
}
