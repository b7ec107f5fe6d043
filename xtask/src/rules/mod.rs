//! `cargo xtask rules`: the architecture rules of ARCHITECTURE.md ("Rules"), checked on the
//! source tree as it is on disk (rust-analyzer's `tidy` habit). `cargo test -p xtask` runs the
//! same check (`tests::the_workspace_keeps_the_rules`), so CI fails when a rule breaks.
//!
//! 1. Products never depend on each other: `cryptoutil-kms` and `cryptoutil-identity` do not
//!    list one another under `[dependencies]` (dev-dependencies, for tests, may).
//! 2. The shared crates ([`SHARED_CRATES`]) know no product ([`PRODUCT_CRATES`]).
//! 3. The test kit is a dev-dependency only.
//! 4. The domain ([`DOMAIN_MODULES`], and Identity's modules but [`IDENTITY_HTTP_MODULES`])
//!    names no HTTP framework ([`HTTP_CRATES`]).
//! 5. No import cycle between the files of a crate (`crates/*` and `xtask`), test code aside.
//!
//! The source is read by a small scanner ([`scan`]: `mod` and `use` items, `crate::`/`super::`
//! paths in code; `#[cfg(test)]` items and `tests/`, `benches/`, `examples/` left out), not by
//! the compiler: it errs towards seeing a path, never towards missing one it was told about.

mod cycles;
mod manifest;
mod modules;
mod scan;
mod tokens;

use std::fmt;
use std::path::{Path, PathBuf};

use cycles::{cyclic_components, file_graph, shortest_cycle};
use manifest::Manifest;
use modules::{CrateTree, Target};

/// The products: neither depends on the other.
const PRODUCTS: [&str; 2] = ["cryptoutil-kms", "cryptoutil-identity"];

/// The crates a shared crate must not depend on: the products, the demo and the binary.
const PRODUCT_CRATES: &[&str] = &[
    "cryptoutil-kms",
    "cryptoutil-identity",
    "cryptoutil-demo",
    "cryptoutil-cli",
];

/// Crates both products build on; they know no product. Names of crates that do not exist (yet)
/// are skipped.
const SHARED_CRATES: &[&str] = &[
    "cryptoutil-realm",
    "cryptoutil-server",
    "cryptoutil-tls",
    "cryptoutil-jose",
    "cryptoutil-telemetry",
    "cryptoutil-database",
];

/// The shared test kit: it starts the products in-process, so it depends on them, and no crate
/// may link it into anything but its tests.
const TEST_KIT: &str = "cryptoutil-testkit";

/// HTTP framework crates the domain must not name.
const HTTP_CRATES: &[&str] = &["axum", "http", "hyper", "tower_http", "utoipa_axum"];

/// Domain modules that must not name an HTTP crate: `(package, module path)`.
const DOMAIN_MODULES: &[(&str, &str)] =
    &[("cryptoutil-kms", "keys"), ("cryptoutil-kms", "barrier")];

/// Identity's top-level modules that are allowed HTTP types: the HTTP layer (`api`, `server`,
/// `resource_server`) and the fuzzing harness, which builds HTTP requests. Every other top-level
/// module of `cryptoutil-identity` is domain.
const IDENTITY_HTTP_MODULES: &[&str] = &["api", "server", "resource_server", "fuzzing"];

/// Domain files allowed to name an HTTP crate for now, `(file, crate)`: none since issue 33.
/// An entry is a debt with a reason beside it; the check fails on any other such import, and on
/// an entry that no longer holds (so the list cannot rot).
const KNOWN_DOMAIN_HTTP_IMPORTS: &[(&str, &str)] = &[];

/// Import cycles allowed for now, each as the set of its files (a strongly connected
/// component): none since issue 33 untangled the last six. The check fails on any other cycle,
/// and on an entry here that no longer is one (so the list cannot rot).
const KNOWN_CYCLES: &[&[&str]] = &[];

/// One rule's outcome.
#[derive(Debug, Clone)]
pub struct RuleResult {
    /// The rule, for people.
    pub rule: &'static str,
    /// What was looked at (`9 packages`, `142 files`).
    pub scope: String,
    /// What breaks it; empty when it holds.
    pub violations: Vec<String>,
    /// Allowed exceptions still present (known cycles, known imports).
    pub allowed: Vec<String>,
}

/// Every rule's outcome.
#[derive(Debug, Clone)]
pub struct Report {
    /// In the order of ARCHITECTURE.md.
    pub results: Vec<RuleResult>,
}

impl Report {
    /// Whether every rule holds.
    pub fn holds(&self) -> bool {
        self.results.iter().all(|r| r.violations.is_empty())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for result in &self.results {
            let verdict = if result.violations.is_empty() {
                "ok  "
            } else {
                "FAIL"
            };
            writeln!(f, "{verdict}  {} ({})", result.rule, result.scope)?;
            for violation in &result.violations {
                writeln!(f, "        {violation}")?;
            }
            for allowed in &result.allowed {
                writeln!(f, "        allowed for now: {allowed}")?;
            }
        }
        Ok(())
    }
}

/// A package of the workspace: its manifest and its source trees.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its directory from the workspace root (`crates/tls`).
    pub dir: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its library and binary crates (`src/lib.rs`, `src/main.rs`).
    pub trees: Vec<CrateTree>,
}

/// `cargo xtask rules [WORKSPACE]`: prints the report for this workspace (or another checkout of
/// it); fails when a rule breaks.
pub fn rules(args: &[String]) -> Result<(), String> {
    let root = match args {
        [] => crate::root(),
        [dir] => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask rules [WORKSPACE]".to_owned()),
    };
    let report = check(&load_workspace(&root)?);
    print!("{report}");
    if report.holds() {
        println!("==> the architecture rules hold (ARCHITECTURE.md, Rules)");
        Ok(())
    } else {
        Err("an architecture rule is broken (ARCHITECTURE.md, Rules)".to_owned())
    }
}

/// Reads every package under `crates/` and `xtask/` of the workspace at `root`.
pub fn load_workspace(root: &Path) -> Result<Vec<Package>, String> {
    let read = |relative: &str| std::fs::read_to_string(root.join(relative)).ok();
    let mut dirs = Vec::new();
    let crates = root.join("crates");
    let entries =
        std::fs::read_dir(&crates).map_err(|e| format!("cannot list {}: {e}", crates.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", crates.display()))?;
        if entry.path().join("Cargo.toml").is_file() {
            dirs.push(format!("crates/{}", entry.file_name().to_string_lossy()));
        }
    }
    dirs.sort();
    dirs.push("xtask".to_owned());
    dirs.iter().map(|dir| load_package(dir, &read)).collect()
}

/// Reads one package through `read` (a path from the workspace root → its text).
pub fn load_package(dir: &str, read: &dyn Fn(&str) -> Option<String>) -> Result<Package, String> {
    let manifest_path = format!("{dir}/Cargo.toml");
    let manifest = manifest::parse(
        &read(&manifest_path).ok_or_else(|| format!("cannot read {manifest_path}"))?,
    );
    let mut trees = Vec::new();
    for root in ["src/lib.rs", "src/main.rs"] {
        let root = format!("{dir}/{root}");
        if read(&root).is_some() {
            trees.push(CrateTree::load(&root, read)?);
        }
    }
    Ok(Package {
        dir: dir.to_owned(),
        manifest,
        trees,
    })
}

/// Checks every rule on the packages.
pub fn check(packages: &[Package]) -> Report {
    Report {
        results: vec![
            products_rule(packages),
            shared_crates_rule(packages),
            test_kit_rule(packages),
            domain_http_rule(packages, KNOWN_DOMAIN_HTTP_IMPORTS),
            cycle_rule(packages, KNOWN_CYCLES),
        ],
    }
}

fn products_rule(packages: &[Package]) -> RuleResult {
    let mut violations = Vec::new();
    for package in packages {
        let name = package.manifest.name.as_str();
        if !PRODUCTS.contains(&name) {
            continue;
        }
        for other in PRODUCTS.iter().filter(|p| **p != name) {
            if package.manifest.dependencies.iter().any(|d| d == other) {
                violations.push(format!(
                    "{}/Cargo.toml: {name} depends on {other}",
                    package.dir
                ));
            }
        }
    }
    RuleResult {
        rule: "products never depend on each other",
        scope: PRODUCTS.join(", "),
        violations,
        allowed: Vec::new(),
    }
}

fn shared_crates_rule(packages: &[Package]) -> RuleResult {
    let mut violations = Vec::new();
    let mut checked = Vec::new();
    for package in packages {
        let name = package.manifest.name.as_str();
        if !SHARED_CRATES.contains(&name) {
            continue;
        }
        checked.push(name.trim_start_matches("cryptoutil-"));
        for dependency in &package.manifest.dependencies {
            if PRODUCT_CRATES.contains(&dependency.as_str()) {
                violations.push(format!(
                    "{}/Cargo.toml: {name} depends on {dependency}",
                    package.dir
                ));
            }
        }
    }
    RuleResult {
        rule: "shared crates know no product",
        scope: checked.join(", "),
        violations,
        allowed: Vec::new(),
    }
}

fn test_kit_rule(packages: &[Package]) -> RuleResult {
    let violations = packages
        .iter()
        .filter(|p| p.manifest.dependencies.iter().any(|d| d == TEST_KIT))
        .map(|p| format!("{}/Cargo.toml: {TEST_KIT} under [dependencies]", p.dir))
        .collect();
    RuleResult {
        rule: "the test kit is a dev-dependency only",
        scope: format!("{} packages", packages.len()),
        violations,
        allowed: Vec::new(),
    }
}

/// Whether the file of `module` in `package` is domain code that must not name HTTP crates.
fn is_domain(package: &str, module: &[String]) -> bool {
    let Some(top) = module.first() else {
        return false;
    };
    if package == "cryptoutil-identity" {
        return !IDENTITY_HTTP_MODULES.contains(&top.as_str());
    }
    DOMAIN_MODULES.iter().any(|(p, m)| {
        let prefix: Vec<&str> = m.split("::").collect();
        *p == package
            && module.len() >= prefix.len()
            && module.iter().zip(&prefix).all(|(a, b)| a == b)
    })
}

fn domain_http_rule(packages: &[Package], known: &[(&str, &str)]) -> RuleResult {
    let mut found: Vec<(String, String, usize)> = Vec::new();
    let mut files = 0;
    for package in packages {
        for tree in &package.trees {
            for (index, file) in tree.files.iter().enumerate() {
                if !is_domain(&package.manifest.name, &file.module) {
                    continue;
                }
                files += 1;
                let uses = file
                    .scan
                    .uses
                    .iter()
                    .map(|u| (&u.scope, &u.path, false, u.line));
                let paths = file
                    .scan
                    .paths
                    .iter()
                    .map(|p| (&p.scope, &p.segments, p.global, p.line));
                for (scope, path, global, line) in uses.chain(paths) {
                    if let Some(Target::External(name)) = tree.resolve(index, scope, path, global)
                        && HTTP_CRATES.contains(&name.as_str())
                        && !found.iter().any(|(f, c, _)| *f == file.path && *c == name)
                    {
                        found.push((file.path.clone(), name, line));
                    }
                }
            }
        }
    }
    found.sort();
    let mut violations = Vec::new();
    let mut allowed = Vec::new();
    for (file, name, line) in &found {
        if known.contains(&(file.as_str(), name.as_str())) {
            allowed.push(format!("{file} uses {name} (KNOWN_DOMAIN_HTTP_IMPORTS)"));
        } else {
            violations.push(format!("{file}:{line}: domain code uses {name}"));
        }
    }
    for (file, name) in known {
        if !found.iter().any(|(f, c, _)| f == file && c == name) {
            violations.push(format!(
                "{file} no longer uses {name}: remove it from KNOWN_DOMAIN_HTTP_IMPORTS"
            ));
        }
    }
    RuleResult {
        rule: "the domain names no HTTP crate",
        scope: format!("{files} files: {}", HTTP_CRATES.join(", ")),
        violations,
        allowed,
    }
}

fn cycle_rule(packages: &[Package], known: &[&[&str]]) -> RuleResult {
    let mut found: Vec<(Vec<String>, String)> = Vec::new();
    let mut files = 0;
    for tree in packages.iter().flat_map(|p| &p.trees) {
        let graph = file_graph(tree);
        files += graph.files.len();
        for component in cyclic_components(&graph) {
            let mut members: Vec<String> =
                component.iter().map(|&f| graph.files[f].clone()).collect();
            members.sort();
            let chain: Vec<&str> = shortest_cycle(&graph, &component)
                .iter()
                .map(|&f| graph.files[f].as_str())
                .collect();
            let mut shown = chain.join(" → ");
            if members.len() + 1 > chain.len() {
                shown.push_str(&format!(
                    " (one circle of {} tangled files: {})",
                    members.len(),
                    members.join(", ")
                ));
            }
            found.push((members, shown));
        }
    }
    let mut violations = Vec::new();
    let mut allowed = Vec::new();
    let same = |members: &[String], entry: &[&str]| {
        let mut entry: Vec<&str> = entry.to_vec();
        entry.sort_unstable();
        members.len() == entry.len() && members.iter().zip(&entry).all(|(a, b)| a == b)
    };
    for (members, shown) in &found {
        if known.iter().any(|entry| same(members, entry)) {
            allowed.push(format!("{shown} (KNOWN_CYCLES)"));
        } else {
            violations.push(format!("import cycle: {shown}"));
        }
    }
    for entry in known {
        if !found.iter().any(|(members, _)| same(members, entry)) {
            violations.push(format!(
                "no longer a cycle, remove it from KNOWN_CYCLES: {}",
                entry.join(", ")
            ));
        }
    }
    RuleResult {
        rule: "no import cycle between files",
        scope: format!("{files} files"),
        violations,
        allowed,
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A package from `(path, text)` pairs.
    fn package(dir: &str, files: &[(&str, &str)]) -> Package {
        let map: BTreeMap<String, String> = files
            .iter()
            .map(|(p, t)| (format!("{dir}/{p}"), (*t).to_owned()))
            .collect();
        match load_package(dir, &|p: &str| map.get(p).cloned()) {
            Ok(package) => package,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_workspace_keeps_the_rules() {
        let packages = match load_workspace(&crate::root()) {
            Ok(packages) => packages,
            Err(e) => panic!("{e}"),
        };
        let report = check(&packages);
        assert!(report.holds(), "ARCHITECTURE.md, Rules:\n{report}");
        assert!(packages.iter().any(|p| p.manifest.name == "cryptoutil-kms"));
    }

    #[test]
    fn a_product_depending_on_the_other_breaks_the_rule() {
        let kms = package(
            "crates/kms",
            &[
                (
                    "Cargo.toml",
                    "[package]\nname = \"cryptoutil-kms\"\n[dependencies]\ncryptoutil-identity.workspace = true",
                ),
                ("src/lib.rs", ""),
            ],
        );
        let identity = package(
            "crates/identity",
            &[
                (
                    "Cargo.toml",
                    "[package]\nname = \"cryptoutil-identity\"\n[dev-dependencies]\ncryptoutil-kms.workspace = true",
                ),
                ("src/lib.rs", ""),
            ],
        );
        let tls = package(
            "crates/tls",
            &[
                (
                    "Cargo.toml",
                    "[package]\nname = \"cryptoutil-tls\"\n[dependencies]\ncryptoutil-demo = { path = \"../demo\" }\ncryptoutil-testkit.workspace = true",
                ),
                ("src/lib.rs", ""),
            ],
        );
        let packages = [kms, identity, tls];
        assert_eq!(products_rule(&packages).violations.len(), 1);
        assert_eq!(
            shared_crates_rule(&packages).violations,
            ["crates/tls/Cargo.toml: cryptoutil-tls depends on cryptoutil-demo"]
        );
        assert_eq!(test_kit_rule(&packages).violations.len(), 1);
    }

    #[test]
    fn a_planted_axum_import_in_the_domain_is_found() {
        let kms = package(
            "crates/kms",
            &[
                ("Cargo.toml", "[package]\nname = \"cryptoutil-kms\""),
                (
                    "src/lib.rs",
                    "pub mod api;\npub mod keys;\npub mod barrier;",
                ),
                ("src/api.rs", "use axum::Router;"),
                (
                    "src/keys/mod.rs",
                    "mod service;\n#[cfg(test)]\nmod tests { use axum::body::Body; }",
                ),
                (
                    "src/keys/service.rs",
                    "fn f() -> ::axum::response::Response { todo!() }",
                ),
                (
                    "src/barrier.rs",
                    "use axum::http::{self, HeaderMap};\nfn g() { http::StatusCode::OK; }",
                ),
            ],
        );
        let result = domain_http_rule(std::slice::from_ref(&kms), &[]);
        assert_eq!(
            result.violations,
            [
                "crates/kms/src/barrier.rs:1: domain code uses axum",
                "crates/kms/src/keys/service.rs:1: domain code uses axum",
            ]
        );
        let known = [
            ("crates/kms/src/barrier.rs", "axum"),
            ("crates/kms/src/keys/mod.rs", "hyper"),
        ];
        let result = domain_http_rule(&[kms], &known);
        assert_eq!(result.allowed.len(), 1);
        assert_eq!(
            result.violations,
            [
                "crates/kms/src/keys/service.rs:1: domain code uses axum",
                "crates/kms/src/keys/mod.rs no longer uses hyper: remove it from KNOWN_DOMAIN_HTTP_IMPORTS",
            ]
        );
    }

    #[test]
    fn identity_domain_is_every_module_but_the_http_layer() {
        let module = |m: &str| vec![m.to_owned()];
        assert!(is_domain("cryptoutil-identity", &module("oauth")));
        assert!(!is_domain("cryptoutil-identity", &module("api")));
        assert!(!is_domain("cryptoutil-identity", &[]));
        assert!(is_domain(
            "cryptoutil-kms",
            &["barrier".to_owned(), "unseal".to_owned()]
        ));
        assert!(!is_domain("cryptoutil-kms", &module("api")));
        assert!(!is_domain("cryptoutil-kms", &module("keysmith")));
    }

    #[test]
    fn cycles_fail_unless_known_and_known_ones_must_still_exist() {
        let demo = package(
            "crates/demo",
            &[
                ("Cargo.toml", "[package]\nname = \"cryptoutil-demo\""),
                ("src/lib.rs", "mod runner;\nmod http;\nmod context;"),
                (
                    "src/runner.rs",
                    "use crate::context::RunContext;\npub struct StepError;",
                ),
                ("src/http.rs", "use crate::runner::StepError;"),
                (
                    "src/context.rs",
                    "pub struct RunContext { http: crate::http::Http }",
                ),
            ],
        );
        let packages = std::slice::from_ref(&demo);
        let result = cycle_rule(packages, &[]);
        assert_eq!(result.violations.len(), 1, "{:?}", result.violations);
        assert!(result.violations[0].starts_with("import cycle: crates/demo/src/"));
        let known: &[&[&str]] = &[
            &[
                "crates/demo/src/runner.rs",
                "crates/demo/src/http.rs",
                "crates/demo/src/context.rs",
            ],
            &["crates/demo/src/gone.rs", "crates/demo/src/runner.rs"],
        ];
        let result = cycle_rule(packages, known);
        assert_eq!(result.allowed.len(), 1);
        assert_eq!(
            result.violations,
            [
                "no longer a cycle, remove it from KNOWN_CYCLES: crates/demo/src/gone.rs, crates/demo/src/runner.rs"
            ]
        );
    }
}
