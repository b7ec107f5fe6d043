//! A small Rust lexer for the rules: identifiers, `::` and punctuation with their line numbers;
//! comments, strings, characters, lifetimes and numbers are dropped (nothing in them is a path).

/// One token of Rust source that matters to path scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword (`r#` stripped from raw identifiers).
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation character.
    Punct(char),
    /// A string, character or number literal (its text is not kept).
    Literal,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it starts.
    pub line: usize,
}

impl Token {
    /// Whether this is the identifier `word`.
    pub fn is_ident(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == word)
    }

    /// Whether this is the punctuation `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    /// The identifier, if this is one.
    pub fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }
}

/// Splits `source` into tokens.
pub fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            if c.is_whitespace() {
                self.bump();
            } else if c == '/' && self.peek(1) == Some('/') {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c == '/' && self.peek(1) == Some('*') {
                self.block_comment();
            } else if c == '"' {
                self.bump();
                self.quoted('"');
                self.push(Tok::Literal, line);
            } else if c == '\'' {
                self.quote_or_lifetime(line);
            } else if c.is_ascii_digit() {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    || (self.peek(0) == Some('.')
                        && self.peek(1).is_some_and(|c| c.is_ascii_digit()))
                {
                    self.bump();
                }
                self.push(Tok::Literal, line);
            } else if c.is_alphabetic() || c == '_' {
                self.word(line);
            } else if c == ':' && self.peek(1) == Some(':') {
                self.bump();
                self.bump();
                self.push(Tok::PathSep, line);
            } else {
                self.bump();
                self.push(Tok::Punct(c), line);
            }
        }
    }

    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.bump();
                self.bump();
            } else if c == '*' && self.peek(1) == Some('/') {
                self.bump();
                self.bump();
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    /// After the opening quote: up to and including the closing `close`, escapes skipped.
    fn quoted(&mut self, close: char) {
        while let Some(c) = self.bump() {
            if c == '\\' {
                self.bump();
            } else if c == close {
                return;
            }
        }
    }

    /// After `r`, `br` or `cr`: `#`* `"` … `"` `#`*.
    fn raw_string(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            hashes += 1;
            self.bump();
        }
        self.bump(); // the opening quote
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|i| self.peek(i) == Some('#')) {
                for _ in 0..hashes {
                    self.bump();
                }
                return;
            }
        }
    }

    fn quote_or_lifetime(&mut self, line: usize) {
        self.bump();
        let is_char = matches!(
            (self.peek(0), self.peek(1)),
            (Some('\\'), _) | (Some(_), Some('\''))
        );
        if is_char {
            self.quoted('\'');
            self.push(Tok::Literal, line);
        } else {
            // A lifetime or label: `'a`, `'static`.
            while self
                .peek(0)
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                self.bump();
            }
        }
    }

    fn word(&mut self, line: usize) {
        let start = self.pos;
        while self
            .peek(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        let next = self.peek(0);
        match (word.as_str(), next) {
            ("r" | "br" | "cr", Some('"')) => {
                self.raw_string();
                self.push(Tok::Literal, line);
            }
            ("r" | "br" | "cr", Some('#')) if matches!(self.peek(1), Some('"' | '#')) => {
                self.raw_string();
                self.push(Tok::Literal, line);
            }
            ("b" | "c", Some('"')) => {
                self.bump();
                self.quoted('"');
                self.push(Tok::Literal, line);
            }
            ("b", Some('\'')) => {
                self.bump();
                self.quoted('\'');
                self.push(Tok::Literal, line);
            }
            ("r", Some('#')) => {
                // A raw identifier: `r#type`.
                self.bump();
                let start = self.pos;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.bump();
                }
                let ident: String = self.chars[start..self.pos].iter().collect();
                self.push(Tok::Ident(ident), line);
            }
            _ => self.push(Tok::Ident(word), line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(source: &str) -> Vec<String> {
        lex(source)
            .into_iter()
            .filter_map(|t| t.ident().map(str::to_owned))
            .collect()
    }

    #[test]
    fn comments_strings_chars_and_lifetimes_hold_no_identifiers() {
        let source = r####"
            // crate::a::b in a comment
            /* nested /* crate::x */ still comment */
            let s = "crate::c \" quoted";
            let r = r#"crate::d "quoted""#;
            let b = b'x'; let c = '{'; let e = '\'';
            fn f<'a>(x: &'a str) -> &'static str { x }
        "####;
        let words = idents(source);
        assert!(!words.contains(&"crate".to_owned()), "{words:?}");
        assert!(words.contains(&"f".to_owned()));
        assert!(
            !words.contains(&"a".to_owned()),
            "a lifetime is not a word: {words:?}"
        );
    }

    #[test]
    fn path_separators_and_lines() {
        let tokens = lex("use crate::a;\nr#type::b");
        assert_eq!(tokens[1].tok, Tok::Ident("crate".to_owned()));
        assert_eq!(tokens[2].tok, Tok::PathSep);
        assert_eq!(tokens[5].tok, Tok::Ident("type".to_owned()));
        assert_eq!(tokens[5].line, 2);
    }
}
