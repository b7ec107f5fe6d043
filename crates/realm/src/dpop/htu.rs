//! The `htu` comparison of RFC 9449 §4.3: the HTTP URI without query and fragment, after
//! syntax- and scheme-based normalisation (RFC 3986 §6.2.2, §6.2.3).

use url::Url;

/// The normalised form of an `http`/`https` URI for comparing `htu` with the request's URI:
/// scheme and host lower-cased, the default port removed, dot segments removed, an empty path
/// made `/` (all done by [`Url`]'s parser), percent-encodings upper-cased and those of
/// unreserved characters decoded (RFC 3986 §6.2.2.1–6.2.2.2); the query and the fragment are
/// dropped. `None` for another scheme, a URI without host, or one with user information.
#[must_use]
pub fn normalise(uri: &Url) -> Option<String> {
    if !matches!(uri.scheme(), "http" | "https")
        || uri.host_str().is_none()
        || !uri.username().is_empty()
        || uri.password().is_some()
    {
        return None;
    }
    let mut u = uri.clone();
    u.set_query(None);
    u.set_fragment(None);
    let path = normalise_percent(u.path());
    u.set_path(&path);
    Some(u.into())
}

/// Parses and normalises a URI given as a string (the `htu` claim); see [`normalise`].
#[must_use]
pub fn normalise_str(uri: &str) -> Option<String> {
    Url::parse(uri).ok().as_ref().and_then(normalise)
}

fn normalise_percent(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            let byte = u8::try_from(h * 16 + l).unwrap_or(0);
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&format!("{byte:02X}"));
            }
            i += 3;
            continue;
        }
        out.push(char::from(b[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let n = |s: &str| normalise_str(s).unwrap();
        assert_eq!(
            n("HTTPS://Server.Example.COM:443/token?x=1#f"),
            "https://server.example.com/token"
        );
        assert_eq!(n("http://a.example:80"), "http://a.example/");
        assert_eq!(n("https://a.example:8443/p"), "https://a.example:8443/p");
        assert_eq!(n("https://a.example/a/./b/../c"), "https://a.example/a/c");
        assert_eq!(n("https://a.example/%7e%2fx"), "https://a.example/~%2Fx");
        assert_ne!(n("https://a.example/Token"), n("https://a.example/token"));
        assert!(normalise_str("ftp://a.example/").is_none());
        assert!(normalise_str("https://user@a.example/").is_none());
        assert!(normalise_str("not a uri").is_none());
    }
}
