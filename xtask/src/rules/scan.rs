//! What one source file declares and names: its `mod` declarations, inline modules, `use`
//! items (nested braces, `self`, renames, globs, any visibility) and the multi-segment paths of
//! its code (`crate::a::b`, `super::x`, `child::f()`). Items under `#[cfg(test)]` are left out:
//! test modules may use anything.

use super::tokens::{Tok, Token, lex};

/// A module path, segment by segment (`["barrier", "settings"]`).
pub type ModPath = Vec<String>;

/// `mod name;`: a child module in its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModDecl {
    /// The child's name.
    pub name: String,
    /// Inline modules around the declaration (usually none).
    pub scope: ModPath,
}

/// One leaf of a `use` item: `use crate::a::{b, c::d as e}` gives `crate::a::b` and
/// `crate::a::c::d` (named `e`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseItem {
    /// The path as written (a trailing `self` removed).
    pub path: ModPath,
    /// The name it brings into scope; `None` for globs and `as _`.
    pub name: Option<String>,
    /// `pub`, `pub(crate)`, …: a re-export other files may name.
    pub public: bool,
    /// `use a::*`.
    pub glob: bool,
    /// Inline modules around the item.
    pub scope: ModPath,
    /// Where it is.
    pub line: usize,
}

/// A path of two or more segments in code: `crate::audit::since(…)`, `axum::body::Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    /// The segments (generic arguments end a path).
    pub segments: ModPath,
    /// Written with a leading `::` (an external crate).
    pub global: bool,
    /// Inline modules around it.
    pub scope: ModPath,
    /// Where it is.
    pub line: usize,
}

/// Everything the rules need from one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileScan {
    /// `mod x;` declarations outside test code.
    pub mods: Vec<ModDecl>,
    /// Inline modules (`mod x { … }`) outside test code, as paths from the file's module.
    pub inline_mods: Vec<ModPath>,
    /// `use` leaves outside test code.
    pub uses: Vec<UseItem>,
    /// Other paths outside test code.
    pub paths: Vec<PathRef>,
}

/// Scans one file's source text.
pub fn scan(source: &str) -> FileScan {
    let tokens = lex(source);
    let mut out = FileScan::default();
    let mut i = 0;
    let mut depth = 0usize;
    // Inline modules open around the cursor, with the brace depth inside each.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut test_only = false;
    while let Some(token) = tokens.get(i) {
        let scope: ModPath = inline.iter().map(|(name, _)| name.clone()).collect();
        if token.is_punct('#') {
            let inner = tokens.get(i + 1).is_some_and(|t| t.is_punct('!'));
            let open = if inner { i + 2 } else { i + 1 };
            if tokens.get(open).is_some_and(|t| t.is_punct('[')) {
                let close = matching(&tokens, open);
                if !inner && is_cfg_test(&tokens[open + 1..close.min(tokens.len())]) {
                    test_only = true;
                }
                i = close + 1;
                continue;
            }
        }
        if test_only {
            test_only = false;
            i = skip_item(&tokens, i);
            continue;
        }
        match &token.tok {
            Tok::Ident(word) if word == "mod" => {
                let name = tokens.get(i + 1).and_then(Token::ident);
                let after = tokens.get(i + 2);
                match (name, after) {
                    (Some(name), Some(t)) if t.is_punct(';') => {
                        out.mods.push(ModDecl {
                            name: name.to_owned(),
                            scope,
                        });
                        i += 3;
                    }
                    (Some(name), Some(t)) if t.is_punct('{') => {
                        let mut path = scope;
                        path.push(name.to_owned());
                        out.inline_mods.push(path);
                        depth += 1;
                        inline.push((name.to_owned(), depth));
                        i += 3;
                    }
                    _ => i += 1,
                }
            }
            Tok::Ident(word) if word == "use" => {
                let public = is_public(&tokens, i);
                let line = token.line;
                let mut j = i + 1;
                if tokens.get(j).is_some_and(|t| t.tok == Tok::PathSep) {
                    j += 1;
                }
                let mut leaves = Vec::new();
                use_tree(&tokens, &mut j, Vec::new(), &mut leaves);
                for (path, name, glob) in leaves {
                    out.uses.push(UseItem {
                        path,
                        name,
                        public,
                        glob,
                        scope: scope.clone(),
                        line,
                    });
                }
                while tokens.get(j).is_some_and(|t| !t.is_punct(';')) {
                    j += 1;
                }
                i = j + 1;
            }
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::PathSep | Tok::Ident(_) => {
                let global = token.tok == Tok::PathSep;
                let after_sep = i > 0 && tokens[i - 1].tok == Tok::PathSep;
                let mut j = if global { i + 1 } else { i };
                let mut segments = Vec::new();
                while let Some(segment) = tokens.get(j).and_then(Token::ident) {
                    segments.push(segment.to_owned());
                    if tokens.get(j + 1).is_some_and(|t| t.tok == Tok::PathSep) {
                        j += 2;
                    } else {
                        j += 1;
                        break;
                    }
                }
                if !after_sep && segments.len() >= 2 {
                    out.paths.push(PathRef {
                        segments,
                        global,
                        scope,
                        line: token.line,
                    });
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

/// The index of the bracket closing the one at `open` (or the end).
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, token) in tokens.iter().enumerate().skip(open) {
        match token.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// `cfg(test)` or `cfg(all(test, …))`: compiled only into tests.
fn is_cfg_test(attr: &[Token]) -> bool {
    let at = |k: usize| attr.get(k);
    let cfg = at(0).is_some_and(|t| t.is_ident("cfg")) && at(1).is_some_and(|t| t.is_punct('('));
    cfg && (at(2).is_some_and(|t| t.is_ident("test")) && at(3).is_some_and(|t| t.is_punct(')'))
        || at(2).is_some_and(|t| t.is_ident("all"))
            && at(3).is_some_and(|t| t.is_punct('('))
            && at(4).is_some_and(|t| t.is_ident("test")))
}

/// Whether the `use` at `at` has a visibility (`pub`, `pub(crate)`, …).
fn is_public(tokens: &[Token], at: usize) -> bool {
    let Some(before) = at.checked_sub(1).and_then(|k| tokens.get(k)) else {
        return false;
    };
    if before.is_ident("pub") {
        return true;
    }
    if before.is_punct(')') {
        let mut k = at - 1;
        while k > 0 && !tokens[k].is_punct('(') {
            k -= 1;
        }
        return k > 0 && tokens[k - 1].is_ident("pub");
    }
    false
}

/// Parses one use tree at `*at`, after `prefix`, into `(path, name, glob)` leaves.
fn use_tree(
    tokens: &[Token],
    at: &mut usize,
    prefix: ModPath,
    leaves: &mut Vec<(ModPath, Option<String>, bool)>,
) {
    let mut path = prefix;
    loop {
        let Some(token) = tokens.get(*at) else { return };
        match &token.tok {
            Tok::Ident(segment) => {
                path.push(segment.clone());
                *at += 1;
                if tokens.get(*at).is_some_and(|t| t.tok == Tok::PathSep) {
                    *at += 1;
                    continue;
                }
                let mut name = path.last().cloned();
                if path.len() > 1 && path.last().is_some_and(|s| s == "self") {
                    path.pop();
                    name = path.last().cloned();
                }
                if tokens.get(*at).is_some_and(|t| t.is_ident("as")) {
                    name = tokens
                        .get(*at + 1)
                        .and_then(Token::ident)
                        .filter(|alias| *alias != "_")
                        .map(str::to_owned);
                    *at += 2;
                }
                leaves.push((path, name, false));
                return;
            }
            Tok::Punct('*') => {
                *at += 1;
                leaves.push((path, None, true));
                return;
            }
            Tok::Punct('{') => {
                *at += 1;
                while let Some(token) = tokens.get(*at) {
                    if token.is_punct('}') {
                        *at += 1;
                        break;
                    }
                    if token.is_punct(',') {
                        *at += 1;
                        continue;
                    }
                    let before = *at;
                    use_tree(tokens, at, path.clone(), leaves);
                    if *at == before {
                        *at += 1;
                    }
                }
                return;
            }
            _ => return,
        }
    }
}

/// The index after the item starting at `start` (attributes already read): a braced item up to
/// its closing brace, others up to `;`; a field or an expression up to `,` or the enclosing
/// closing bracket.
fn skip_item(tokens: &[Token], start: usize) -> usize {
    const ITEM_WORDS: &[&str] = &[
        "fn",
        "mod",
        "impl",
        "struct",
        "enum",
        "trait",
        "type",
        "use",
        "static",
        "const",
        "extern",
        "unsafe",
        "async",
        "union",
        "macro_rules",
        "let",
    ];
    let mut j = start;
    if tokens.get(j).is_some_and(|t| t.is_ident("pub")) {
        j += 1;
        if tokens.get(j).is_some_and(|t| t.is_punct('(')) {
            j = matching(tokens, j) + 1;
        }
    }
    let is_item = tokens
        .get(j)
        .and_then(Token::ident)
        .is_some_and(|w| ITEM_WORDS.contains(&w));
    let mut depth = 0usize;
    while let Some(token) = tokens.get(j) {
        match token.tok {
            Tok::Punct('{') if depth == 0 => {
                j = matching(tokens, j) + 1;
                if tokens.get(j).is_some_and(|t| t.is_punct(';')) {
                    j += 1;
                }
                return j;
            }
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                if depth == 0 {
                    return j;
                }
                depth -= 1;
            }
            Tok::Punct(';') if depth == 0 => return j + 1,
            Tok::Punct(',') if depth == 0 && !is_item => return j + 1,
            _ => {}
        }
        j += 1;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(path: &str) -> ModPath {
        path.split("::").map(str::to_owned).collect()
    }

    fn use_paths(scan: &FileScan) -> Vec<(String, Option<String>, bool)> {
        scan.uses
            .iter()
            .map(|u| (u.path.join("::"), u.name.clone(), u.public))
            .collect()
    }

    #[test]
    fn use_trees_with_nested_braces_self_renames_and_visibility() {
        let scan = scan(
            "use crate::a::{b, c::{d, e as f}, self};\n\
             pub(crate) use super::g::*;\n\
             pub use self::h::{self as hh};\n\
             use ::std::fmt;",
        );
        assert_eq!(
            use_paths(&scan),
            vec![
                ("crate::a::b".to_owned(), Some("b".to_owned()), false),
                ("crate::a::c::d".to_owned(), Some("d".to_owned()), false),
                ("crate::a::c::e".to_owned(), Some("f".to_owned()), false),
                ("crate::a".to_owned(), Some("a".to_owned()), false),
                ("super::g".to_owned(), None, true),
                ("self::h".to_owned(), Some("hh".to_owned()), true),
                ("std::fmt".to_owned(), Some("fmt".to_owned()), false),
            ]
        );
        assert!(scan.uses[4].glob);
    }

    #[test]
    fn mod_declarations_inline_modules_and_code_paths() {
        let scan = scan(
            "pub mod a;\nmod b;\nmod inner {\n    use super::a::X;\n    fn f() { crate::c::d(); }\n}\n\
             fn g() -> Vec<u8> { child::run::<u8>(); x.method::<T>(); ::axum::body::Bytes::new() }",
        );
        assert_eq!(
            scan.mods
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(scan.inline_mods, vec![seg("inner")]);
        assert_eq!(scan.uses[0].scope, seg("inner"));
        let paths: Vec<_> = scan
            .paths
            .iter()
            .map(|p| (p.segments.join("::"), p.global, p.scope.join("::")))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("crate::c::d".to_owned(), false, "inner".to_owned()),
                ("child::run".to_owned(), false, String::new()),
                ("axum::body::Bytes::new".to_owned(), true, String::new()),
            ]
        );
    }

    #[test]
    fn test_only_items_are_left_out() {
        let scan = scan(
            "#[cfg(test)]\nmod tests { use crate::x::Y; fn t() { crate::z::f(); } }\n\
             #[cfg(test)]\nmod more;\n\
             struct S { a: u8, #[cfg(test)] pub runs: crate::q::R, b: crate::kept::B }\n\
             #[cfg(test)]\n#[allow(clippy::unwrap_used)]\npub fn for_tests() -> Result<S, crate::e::E> { crate::r::P::new(0) }\n\
             #[cfg(all(test, unix))]\nuse crate::w::V;\n\
             #[cfg(feature = \"fuzzing\")]\npub mod fuzzing;\n\
             use crate::last::L;",
        );
        assert_eq!(
            scan.mods
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["fuzzing"]
        );
        let paths: Vec<_> = scan.paths.iter().map(|p| p.segments.join("::")).collect();
        assert_eq!(paths, ["crate::kept::B"]);
        assert_eq!(use_paths(&scan).len(), 1);
        assert_eq!(scan.uses[0].path, seg("crate::last::L"));
    }
}
