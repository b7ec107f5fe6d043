//! Recovery codes: single-use codes that stand in for the second factor when the authenticator
//! is lost.
//!
//! A code is 16 characters of Crockford's base32 alphabet (lower case, no `i`, `l`, `o`, `u`),
//! shown as `ab3d-7kqm-x2pf-9wte`: the first group is the code's public id (20 bits, unique
//! within the user's set, so a submitted code costs one PBKDF2 check rather than one per stored
//! code), the other three its secret (60 bits). Only the secret is stored, hashed with PBKDF2
//! as passwords are ([`cryptoutil_realm::password`]), at [`ITERATIONS`].
//!
//! Input is normalised before it is looked at: case, spaces and dashes do not matter, and the
//! look-alikes `o`, `i` and `l` read as `0`, `1` and `1`.

use std::collections::HashSet;

use zeroize::Zeroizing;

use super::totp::RandomFailed;

/// PBKDF2 iterations of a recovery code's hash: the floor the password hash format accepts
/// (210,000; the format refuses fewer). Recovery codes carry 60 random bits, so no dictionary
/// applies and even the floor makes an offline search of one code cost about 2^60 × 210,000
/// HMACs; the password default (600,000) buys nothing here and makes a set slower to generate.
/// Measured on the shared two-core build machine (`hash_password_with`, one thread): 10 hashes
/// at 210,000 took 0.89 s, at 600,000 1.81 s. The service hashes a set's codes side by side
/// on the blocking pool, and a sign-in checks one code (one hash).
pub const ITERATIONS: u32 = cryptoutil_realm::password::MIN_ITERATIONS;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ID_LEN: usize = 4;
const SECRET_LEN: usize = 12;
/// Longest input looked at (a code with generous spacing).
pub const MAX_INPUT_LEN: usize = 64;

/// A code of a new set: what is shown once, and what is stored.
#[derive(Debug)]
pub struct NewCode {
    /// The public id (stored in clear).
    pub id: String,
    /// The whole code as shown to the user (`xxxx-xxxx-xxxx-xxxx`).
    pub display: Zeroizing<String>,
    /// The secret part (hashed before it is stored).
    pub secret: Zeroizing<String>,
}

/// A submitted code, normalised: its id and secret part.
#[derive(Debug)]
pub struct SubmittedCode {
    /// The public id.
    pub id: String,
    /// The secret part.
    pub secret: Zeroizing<String>,
}

fn random_chars(count: usize) -> Result<String, RandomFailed> {
    let mut bytes = Zeroizing::new(vec![0u8; count]);
    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| RandomFailed)?;
    // 256 is a multiple of 32: taking the low 5 bits is uniform.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// `count` fresh codes with distinct ids.
///
/// # Errors
/// When the random generator fails.
pub fn generate(count: usize) -> Result<Vec<NewCode>, RandomFailed> {
    let mut ids = HashSet::new();
    let mut codes = Vec::with_capacity(count);
    while codes.len() < count {
        let id = random_chars(ID_LEN)?;
        if !ids.insert(id.clone()) {
            continue;
        }
        let secret = Zeroizing::new(random_chars(SECRET_LEN)?);
        let display = Zeroizing::new(format!(
            "{id}-{}-{}-{}",
            &secret[0..4],
            &secret[4..8],
            &secret[8..12]
        ));
        codes.push(NewCode {
            id,
            display,
            secret,
        });
    }
    Ok(codes)
}

/// Normalises a typed code; `None` when it cannot be one (wrong length or characters).
pub fn parse(input: &str) -> Option<SubmittedCode> {
    if input.len() > MAX_INPUT_LEN {
        return None;
    }
    let mut chars = Zeroizing::new(String::with_capacity(ID_LEN + SECRET_LEN));
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            ' ' | '-' | '\t' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        chars.push(c);
    }
    if chars.len() != ID_LEN + SECRET_LEN {
        return None;
    }
    Some(SubmittedCode {
        id: chars[..ID_LEN].to_owned(),
        secret: Zeroizing::new(chars[ID_LEN..].to_owned()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_shape_and_distinct_ids() {
        let codes = generate(20).unwrap();
        assert_eq!(codes.len(), 20);
        let ids: HashSet<_> = codes.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 20);
        for code in &codes {
            assert_eq!(code.display.len(), 19);
            assert_eq!(code.display.matches('-').count(), 3);
            assert!(code.display.starts_with(&format!("{}-", code.id)));
            let parsed = parse(&code.display).unwrap();
            assert_eq!(parsed.id, code.id);
            assert_eq!(*parsed.secret, *code.secret);
            // 12 characters of 5 bits: 60 bits of secret.
            assert_eq!(code.secret.len() * 5, 60);
        }
    }

    #[test]
    fn input_is_normalised() {
        assert!(parse(" AB3D 7KQM-x2pf").is_none(), "too short");
        let parsed = parse(" AB3D 7KQM-x2pf-9wte ").unwrap();
        assert_eq!(parsed.id, "ab3d");
        assert_eq!(*parsed.secret, "7kqmx2pf9wte");
        let lookalikes = parse("oIl0-aaaa-bbbb-cccc").unwrap();
        assert_eq!(lookalikes.id, "0110");
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            "",
            "ab3d-7kqm-x2pf",
            "ab3d-7kqm-x2pf-9wte-a",
            "ab3d-7kqm-x2pf-9wt!",
            "ab3d-7kqm-x2pf-9wtu",
            "ab3d-7kqm-x2pf-9wté",
            &"a".repeat(10_000),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
