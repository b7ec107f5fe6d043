//! RFC 1035 name validation for certificate subjects and SANs.

use crate::error::{Result, TlsError};

/// Maximum length of a fully qualified domain name in presentation form (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 253;
/// Maximum length of one label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Checks that `name` is an RFC 1035 (as relaxed by RFC 1123) fully qualified domain name.
///
/// Rules: total length 1..=253; dot-separated labels of 1..=63 ASCII letters, digits and
/// hyphens; a label neither starts nor ends with a hyphen; the last label is not all digits
/// (so an IP address is never taken for a name). No trailing dot, no wildcard. A single
/// label such as `localhost` or `demo` is accepted.
pub fn validate_fqdn(name: &str) -> Result<()> {
    let err = |reason: &str| TlsError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(err("name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(err("longer than 253 characters"));
    }
    if name.ends_with('.') {
        return Err(err("trailing dot is not allowed"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(err("empty label (two dots in a row or a leading dot)"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(err("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(
                "labels may contain only ASCII letters, digits and hyphens",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err("a label starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(err(
            "the last label is all digits (an IP address is not a name)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in [
            "localhost",
            "demo",
            "kms.cryptoutil.demo.local",
            "a-b.c1.example",
            "1kms.example",
            &format!("{}.example", "a".repeat(63)),
        ] {
            validate_fqdn(n).unwrap();
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let long_total = vec!["a".repeat(50); 6].join(".");
        assert!(long_total.len() > 253);
        for n in [
            "",
            "kms.",
            ".kms",
            "a..b",
            "-kms.example",
            "kms-.example",
            "k_ms.example",
            "*.example",
            "kms example",
            "127.0.0.1",
            "exämple.com",
            &format!("{}.example", "a".repeat(64)),
            &long_total,
        ] {
            let e = validate_fqdn(n).unwrap_err();
            assert!(matches!(e, TlsError::InvalidName { .. }), "{n}: {e}");
            assert!(e.to_string().contains("invalid name"), "{e}");
        }
    }
}
