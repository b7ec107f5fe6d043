//! Strict identifier parsing: canonical lowercase 8-4-4-4-12 UUIDs only (SPEC §1).

use uuid::Uuid;

/// Parses a canonical lowercase hyphenated UUID; anything else (braces, URNs, upper case, simple
/// form) is refused.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    let canonical = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if canonical {
        Uuid::parse_str(text).ok()
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_form_parses() {
        let id = Uuid::now_v7();
        assert_eq!(parse_uuid(&id.to_string()), Some(id));
        for bad in [
            id.to_string().to_uppercase(),
            id.simple().to_string(),
            format!("{{{id}}}"),
            id.urn().to_string(),
            format!("{id} "),
            String::new(),
            "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".to_owned(),
        ] {
            assert_eq!(parse_uuid(&bad), None, "{bad}");
        }
    }
}
