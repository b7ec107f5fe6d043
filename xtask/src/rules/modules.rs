//! A crate's module tree read from its source files (following `mod` declarations from the
//! crate root, so test-only and unreachable files are not in it), and where a path leads: to
//! which file of the crate, or to which external crate.

use std::collections::BTreeMap;

use super::scan::{FileScan, ModPath, scan};

/// One source file of a crate.
#[derive(Debug, Clone)]
pub struct ModFile {
    /// Its path from the workspace root, `/`-separated (`crates/tls/src/pem.rs`).
    pub path: String,
    /// Its module path in the crate (`[]` for `lib.rs`/`main.rs`).
    pub module: ModPath,
    /// What it declares and names.
    pub scan: FileScan,
}

/// The files of one crate (one library or binary target).
#[derive(Debug, Clone)]
pub struct CrateTree {
    /// Every file reachable from the root by non-test `mod` declarations, sorted by path.
    pub files: Vec<ModFile>,
    /// Module path → index into `files`.
    by_module: BTreeMap<ModPath, usize>,
}

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file of this crate (index into `files`).
    File(usize),
    /// An external crate, by name (`axum`, `std`).
    External(String),
}

impl CrateTree {
    /// Reads the crate whose root file is `root` (`crates/tls/src/lib.rs`) through `read`
    /// (a path from the workspace root → its text).
    pub fn load(root: &str, read: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let text = read(root).ok_or_else(|| format!("cannot read {root}"))?;
        let mut tree = Self {
            files: Vec::new(),
            by_module: BTreeMap::new(),
        };
        let mut pending = vec![(root.to_owned(), ModPath::new(), text)];
        while let Some((path, module, text)) = pending.pop() {
            let scan = scan(&text);
            let dir = children_dir(&path);
            for decl in &scan.mods {
                let mut child_dir = dir.clone();
                for inline in &decl.scope {
                    child_dir.push_str(inline);
                    child_dir.push('/');
                }
                let candidates = [
                    format!("{child_dir}{}.rs", decl.name),
                    format!("{child_dir}{}/mod.rs", decl.name),
                ];
                let found = candidates
                    .iter()
                    .find_map(|candidate| read(candidate).map(|text| (candidate.clone(), text)));
                let (child_path, child_text) = found.ok_or_else(|| {
                    format!(
                        "{path}: no file for `mod {}` ({})",
                        decl.name,
                        candidates.join(" or ")
                    )
                })?;
                let mut child_module = module.clone();
                child_module.extend(decl.scope.iter().cloned());
                child_module.push(decl.name.clone());
                pending.push((child_path, child_module, child_text));
            }
            tree.files.push(ModFile { path, module, scan });
        }
        tree.files.sort_by(|a, b| a.path.cmp(&b.path));
        for (index, file) in tree.files.iter().enumerate() {
            tree.by_module.insert(file.module.clone(), index);
        }
        Ok(tree)
    }

    /// The file of module `module`, if it has one of its own.
    pub fn file_of(&self, module: &[String]) -> Option<usize> {
        self.by_module.get(module).copied()
    }

    /// Whether `module` is a module of this crate (a file or an inline module).
    fn is_module(&self, module: &[String]) -> bool {
        if self.by_module.contains_key(module) {
            return true;
        }
        (0..module.len()).rev().any(|split| {
            self.file_of(&module[..split]).is_some_and(|file| {
                self.files[file]
                    .scan
                    .inline_mods
                    .iter()
                    .any(|inline| inline.as_slice() == &module[split..])
            })
        })
    }

    /// Where `path`, written in file `from` inside its inline modules `scope`, leads; `None`
    /// for what is not a crate's path (a local type, `Self::…`, a generic).
    pub fn resolve(
        &self,
        from: usize,
        scope: &[String],
        path: &[String],
        global: bool,
    ) -> Option<Target> {
        self.resolve_depth(from, scope, path, global, 0)
    }

    fn resolve_depth(
        &self,
        from: usize,
        scope: &[String],
        path: &[String],
        global: bool,
        depth: usize,
    ) -> Option<Target> {
        const MAX_DEPTH: usize = 8;
        let first = path.first()?;
        if global {
            return Some(Target::External(first.clone()));
        }
        if depth > MAX_DEPTH {
            return None;
        }
        let file = &self.files[from];
        let mut here = file.module.clone();
        here.extend(scope.iter().cloned());
        let absolute: ModPath = match first.as_str() {
            "crate" => path[1..].to_vec(),
            "self" => here.into_iter().chain(path[1..].iter().cloned()).collect(),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                let keep = here.len().checked_sub(supers)?;
                here[..keep]
                    .iter()
                    .chain(path[supers..].iter())
                    .cloned()
                    .collect()
            }
            "Self" | "std" | "core" | "alloc" => {
                return (first != "Self").then(|| Target::External(first.clone()));
            }
            _ => {
                let mut child = here.clone();
                child.push(first.clone());
                if self.is_module(&child) {
                    here.into_iter().chain(path.iter().cloned()).collect()
                } else if let Some(import) = file.scan.uses.iter().find(|u| {
                    u.name.as_deref() == Some(first.as_str())
                        && u.path.first() != Some(first)
                        && (u.scope.as_slice() == scope || u.scope.is_empty())
                }) {
                    let mut joined = import.path.clone();
                    joined.extend(path[1..].iter().cloned());
                    return self.resolve_depth(from, &import.scope, &joined, false, depth + 1);
                } else if file
                    .scan
                    .uses
                    .iter()
                    .any(|u| u.name.as_deref() == Some(first.as_str()) && u.path.len() == 1)
                    || path.len() >= 2 && first.chars().next().is_some_and(char::is_lowercase)
                {
                    // `use serde;` or `serde_json::json!`: an external crate.
                    return Some(Target::External(first.clone()));
                } else {
                    return None;
                }
            }
        };
        self.locate(&absolute, depth)
    }

    /// The file holding the item at crate-absolute `path`, following named re-exports
    /// (`pub use inner::Item;`) to where the item is defined.
    fn locate(&self, path: &[String], depth: usize) -> Option<Target> {
        let split = (0..=path.len())
            .rev()
            .find(|k| self.file_of(&path[..*k]).is_some())?;
        let file = self.file_of(&path[..split])?;
        if let Some(next) = path.get(split) {
            let reexport = self.files[file].scan.uses.iter().find(|u| {
                u.public && u.scope.is_empty() && u.name.as_deref() == Some(next.as_str())
            });
            if let Some(reexport) = reexport {
                let mut joined = reexport.path.clone();
                joined.extend(path[split + 1..].iter().cloned());
                return self.resolve_depth(file, &[], &joined, false, depth + 1);
            }
        }
        Some(Target::File(file))
    }
}

/// The directory where the children of the module in file `path` live: `src/` for `lib.rs`,
/// `main.rs` and `mod.rs`, `src/a/` for `src/a.rs`.
fn children_dir(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    match file {
        "lib.rs" | "main.rs" | "mod.rs" => prefix,
        other => format!("{prefix}{}/", other.trim_end_matches(".rs")),
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A crate from `(path, text)` pairs, rooted at the first.
    pub(crate) fn tree(files: &[(&str, &str)]) -> CrateTree {
        let map: BTreeMap<String, String> = files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect();
        let read = |p: &str| map.get(p).cloned();
        match CrateTree::load(files[0].0, &read) {
            Ok(tree) => tree,
            Err(e) => panic!("{e}"),
        }
    }

    fn seg(path: &str) -> ModPath {
        path.split("::").map(str::to_owned).collect()
    }

    fn target_path(tree: &CrateTree, from: &str, path: &str) -> Option<String> {
        let from = tree.files.iter().position(|f| f.path == from)?;
        match tree.resolve(from, &[], &seg(path), false)? {
            Target::File(file) => Some(tree.files[file].path.clone()),
            Target::External(name) => Some(format!("extern {name}")),
        }
    }

    #[test]
    fn loads_modules_from_declarations() {
        let tree = tree(&[
            ("src/lib.rs", "pub mod a;\nmod b;\n#[cfg(test)]\nmod tests;"),
            ("src/a.rs", "mod inner;"),
            ("src/a/inner.rs", ""),
            ("src/b/mod.rs", "pub mod c;"),
            ("src/b/c.rs", ""),
            ("src/tests.rs", "not read"),
        ]);
        let mut paths: Vec<_> = tree.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "src/a.rs",
                "src/a/inner.rs",
                "src/b/c.rs",
                "src/b/mod.rs",
                "src/lib.rs"
            ]
        );
        assert_eq!(
            tree.file_of(&seg("b::c"))
                .map(|i| tree.files[i].path.as_str()),
            Some("src/b/c.rs")
        );
    }

    #[test]
    fn resolves_crate_super_self_children_aliases_and_reexports() {
        let tree = tree(&[
            (
                "src/lib.rs",
                "pub mod a;\npub mod b;\npub use b::deep::Thing;",
            ),
            (
                "src/a.rs",
                "use crate::b::{self as bee};\nuse axum::http;\nmod local { }",
            ),
            ("src/b/mod.rs", "pub mod deep;\npub use self::deep::Other;"),
            ("src/b/deep.rs", "pub struct Thing; pub struct Other;"),
        ]);
        let a = "src/a.rs";
        assert_eq!(
            target_path(&tree, a, "crate::b::deep::Thing").as_deref(),
            Some("src/b/deep.rs")
        );
        assert_eq!(
            target_path(&tree, a, "crate::Thing").as_deref(),
            Some("src/b/deep.rs")
        );
        assert_eq!(
            target_path(&tree, a, "crate::b::Other").as_deref(),
            Some("src/b/deep.rs")
        );
        assert_eq!(
            target_path(&tree, a, "bee::Other").as_deref(),
            Some("src/b/deep.rs")
        );
        assert_eq!(
            target_path(&tree, a, "bee::helper").as_deref(),
            Some("src/b/mod.rs")
        );
        assert_eq!(
            target_path(&tree, a, "self::local::X").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            target_path(&tree, a, "local::X").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            target_path(&tree, a, "http::HeaderMap").as_deref(),
            Some("extern axum")
        );
        assert_eq!(
            target_path(&tree, a, "serde_json::json").as_deref(),
            Some("extern serde_json")
        );
        assert_eq!(
            target_path(&tree, "src/b/deep.rs", "super::super::a::f").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            target_path(&tree, "src/lib.rs", "a::f").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(target_path(&tree, a, "Self::f"), None);
        assert_eq!(target_path(&tree, a, "Thing::new"), None);
    }
}
