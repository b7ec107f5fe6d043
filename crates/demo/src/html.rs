//! Just enough HTML to submit the login and consent forms as a browser would: forms are found
//! by what they contain (a password field; a submit button `decision=allow`), their hidden
//! fields are posted back, and only the clicked button's name and value are sent.

/// A control of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `input`, `button`.
    pub tag: String,
    /// `hidden`, `text`, `password`, `submit`, …
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `value` (decoded).
    pub value: String,
}

/// A `<form>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `action` as written (resolve it against the page URL).
    pub action: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Its inputs and buttons.
    pub controls: Vec<Control>,
}

impl Form {
    /// The fields a browser sends: every named non-submit control with its value, the clicked
    /// `submitter` (name, value) if any, and `fill` overriding or adding named values.
    pub fn submission(
        &self,
        submitter: Option<&Control>,
        fill: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        for control in &self.controls {
            if control.name.is_empty()
                || matches!(control.kind.as_str(), "reset" | "button" | "file")
            {
                continue;
            }
            if control.kind == "submit" && submitter != Some(control) {
                continue;
            }
            let value = fill
                .iter()
                .find(|(name, _)| *name == control.name)
                .map_or_else(|| control.value.clone(), |(_, v)| (*v).to_owned());
            fields.push((control.name.clone(), value));
        }
        for (name, value) in fill {
            if !fields.iter().any(|(n, _)| n == name) {
                fields.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        fields
    }

    /// The first control of type `password`.
    pub fn password_field(&self) -> Option<&Control> {
        self.controls.iter().find(|c| c.kind == "password")
    }

    /// The submit button with this name and value.
    pub fn button(&self, name: &str, value: &str) -> Option<&Control> {
        self.controls
            .iter()
            .find(|c| c.kind == "submit" && c.name == name && c.value == value)
    }
}

/// Every form of a page (comments, scripts and styles skipped).
pub fn forms(html: &str) -> Vec<Form> {
    let source = strip_inert(html);
    let lower = source.to_ascii_lowercase();
    let mut forms = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<form") {
        let start = at + found;
        let Some((attrs, body_start)) = tag_attributes(&source, start + "<form".len()) else {
            break;
        };
        let body_end = lower[body_start..]
            .find("</form")
            .map_or(source.len(), |i| body_start + i);
        let attributes = parse_attributes(attrs);
        forms.push(Form {
            action: attribute(&attributes, "action").unwrap_or_default(),
            method: attribute(&attributes, "method")
                .unwrap_or_else(|| "get".to_owned())
                .to_ascii_uppercase(),
            controls: controls(&source[body_start..body_end]),
        });
        at = body_end;
    }
    forms
}

/// The text of the first element with `class="error"` (the page's error message), if any.
pub fn error_message(html: &str) -> Option<String> {
    let at = html.find("class=\"error\"")?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find('<')?;
    let text = decode_entities(html[start..end].trim());
    (!text.is_empty()).then_some(text)
}

fn controls(body: &str) -> Vec<Control> {
    let lower = body.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut at = 0;
    loop {
        let next = ["<input", "<button"]
            .iter()
            .filter_map(|tag| lower[at..].find(tag).map(|i| (at + i, *tag)))
            .min_by_key(|(i, _)| *i);
        let Some((start, tag)) = next else { break };
        let Some((attrs, after)) = tag_attributes(body, start + tag.len()) else {
            break;
        };
        // `<inputs` or `<buttonx` are other elements.
        if !attrs.is_empty() && !attrs.starts_with(|c: char| c.is_ascii_whitespace() || c == '/') {
            at = after;
            continue;
        }
        let attributes = parse_attributes(attrs);
        let tag_name = tag.trim_start_matches('<').to_owned();
        let default_kind = if tag_name == "button" {
            "submit"
        } else {
            "text"
        };
        found.push(Control {
            kind: attribute(&attributes, "type")
                .map_or_else(|| default_kind.to_owned(), |t| t.to_ascii_lowercase()),
            name: attribute(&attributes, "name").unwrap_or_default(),
            value: attribute(&attributes, "value").unwrap_or_default(),
            tag: tag_name,
        });
        at = after;
    }
    found
}

/// The attribute text of a start tag beginning at `from` (just after its name) and the index
/// after its `>`; quoted values may contain `>`.
fn tag_attributes(source: &str, from: usize) -> Option<(&str, usize)> {
    let mut quote: Option<char> = None;
    for (i, c) in source[from..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some((&source[from..from + i], from + i + 1)),
            _ => {}
        }
    }
    None
}

fn parse_attributes(text: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        let name_start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '=' | '/' | '>') {
            i += 1;
        }
        if i == name_start {
            i += 1;
            continue;
        }
        let name: String = chars[name_start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                value = chars[start..i].iter().collect();
                i += 1;
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                value = chars[start..i].iter().collect();
            }
        }
        // The first occurrence wins, as in browsers.
        if !attributes.iter().any(|(n, _)| *n == name) {
            attributes.push((name, decode_entities(&value)));
        }
    }
    attributes
}

fn attribute(attributes: &[(String, String)], name: &str) -> Option<String> {
    attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn strip_inert(html: &str) -> String {
    let mut out = html.to_owned();
    for (open, close) in [
        ("<!--", "-->"),
        ("<script", "</script>"),
        ("<style", "</style>"),
    ] {
        loop {
            let lower = out.to_ascii_lowercase();
            let Some(start) = lower.find(open) else { break };
            let end = lower[start..]
                .find(close)
                .map_or(out.len(), |i| start + i + close.len());
            out.replace_range(start..end, "");
        }
    }
    out
}

/// Decodes the character references that appear in attribute values.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const LOGIN: &str = "<!doctype html><html><head><style>form{x:'>'}</style></head><body>\
        <!-- <form action=\"/evil\"><input type=password></form> -->\
        <form method=\"post\" action=\"/oidc/v1/login\"><p class=\"error\" role=\"alert\">Wrong username &amp; password.</p>\
        <input type=\"hidden\" name=\"csrf_token\" value=\"a&amp;b&#39;c&#x3e;\">\
        <label for=\"username\">Username</label>\
        <input type=\"text\" id=\"username\" name=\"username\" value=\"\" required autofocus>\
        <input type=\"password\" id=\"password\" name=\"password\" required>\
        <button type=\"submit\">Sign in</button></form></body></html>";

    const CONSENT: &str = "<form method=\"post\" action=\"/oidc/v1/consent\">\
        <input type=\"hidden\" name=\"csrf_token\" value=\"t0k\">\
        <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
        <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>";

    #[test]
    fn the_login_form_is_found_and_filled_like_a_browser_would() {
        let forms = forms(LOGIN);
        assert_eq!(forms.len(), 1, "the commented-out form is not a form");
        let form = &forms[0];
        assert_eq!(
            (form.action.as_str(), form.method.as_str()),
            ("/oidc/v1/login", "POST")
        );
        assert!(form.password_field().is_some());
        let fields = form.submission(None, &[("username", "demo-user"), ("password", "pw")]);
        assert_eq!(
            fields,
            [
                ("csrf_token".to_owned(), "a&b'c>".to_owned()),
                ("username".to_owned(), "demo-user".to_owned()),
                ("password".to_owned(), "pw".to_owned()),
            ]
        );
        assert_eq!(
            error_message(LOGIN).as_deref(),
            Some("Wrong username & password.")
        );
    }

    #[test]
    fn only_the_clicked_consent_button_is_sent() {
        let forms = forms(CONSENT);
        let form = &forms[0];
        let allow = form.button("decision", "allow").unwrap();
        assert_eq!(
            form.submission(Some(allow), &[]),
            [
                ("csrf_token".to_owned(), "t0k".to_owned()),
                ("decision".to_owned(), "allow".to_owned()),
            ]
        );
        assert!(form.button("decision", "maybe").is_none());
        assert!(form.password_field().is_none());
    }

    #[test]
    fn odd_markup_does_not_break_parsing() {
        assert!(forms("<form").is_empty());
        assert!(forms("<p>no forms</p>").is_empty());
        let f = forms("<FORM ACTION='/x' METHOD=post><INPUT NAME=a VALUE=1><inputs name=b></FORM>");
        assert_eq!(f[0].action, "/x");
        assert_eq!(f[0].controls.len(), 1);
        assert_eq!(f[0].controls[0].value, "1");
        assert_eq!(
            decode_entities("&unknown; & &#xZZ; &#65;"),
            "&unknown; & &#xZZ; A"
        );
    }
}
