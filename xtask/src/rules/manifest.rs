//! What the rules read from a `Cargo.toml`: the package name and the packages it depends on,
//! normal (`[dependencies]`, `[build-dependencies]`, per target too) apart from dev ones.

/// A package's name and dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `[package] name`.
    pub name: String,
    /// Packages it links into its library or binaries (renames resolved to package names).
    pub dependencies: Vec<String>,
    /// Packages its tests, benchmarks and examples only use.
    pub dev_dependencies: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Package,
    Normal,
    Dev,
    Other,
}

/// Reads the parts of a manifest the rules need (a small line reader, not a TOML parser: the
/// workspace writes dependencies one a line or as `[dependencies.name]` tables).
pub fn parse(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut section = Section::Other;
    // In a `[dependencies.name]` table: where the dependency was recorded.
    let mut table_dependency: Option<(Section, usize)> = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            table_dependency = None;
            section = Section::Other;
            if header == "package" {
                section = Section::Package;
                continue;
            }
            let parts: Vec<&str> = header.split('.').collect();
            // `dependencies`, `target.<cfg>.dependencies`, `dependencies.name`, …
            let kind_at = parts
                .iter()
                .position(|p| p.ends_with("dependencies"))
                .filter(|&k| k == 0 || parts[0] == "target");
            if let Some(k) = kind_at {
                let kind = if parts[k] == "dev-dependencies" {
                    Section::Dev
                } else {
                    Section::Normal
                };
                match parts.get(k + 1) {
                    Some(name) => {
                        let list = list_of(&mut manifest, kind);
                        list.push(unquote(name).to_owned());
                        table_dependency = Some((kind, list.len() - 1));
                    }
                    None => section = kind,
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        match section {
            Section::Package if key == "name" => manifest.name = unquote(value.trim()).to_owned(),
            Section::Normal | Section::Dev => {
                let name = unquote(key.split('.').next().unwrap_or(key).trim());
                let package = package_field(value).unwrap_or(name);
                list_of(&mut manifest, section).push(package.to_owned());
            }
            Section::Other if key == "package" => {
                if let Some((kind, index)) = table_dependency {
                    list_of(&mut manifest, kind)[index] = unquote(value.trim()).to_owned();
                }
            }
            _ => {}
        }
    }
    manifest
}

fn list_of(manifest: &mut Manifest, section: Section) -> &mut Vec<String> {
    if section == Section::Dev {
        &mut manifest.dev_dependencies
    } else {
        &mut manifest.dependencies
    }
}

fn unquote(text: &str) -> &str {
    text.trim().trim_matches('"').trim_matches('\'')
}

/// `package = "real-name"` inside an inline table.
fn package_field(value: &str) -> Option<&str> {
    let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    inner.split(',').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        (key.trim() == "package").then(|| unquote(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_and_dev_dependencies_renames_and_tables() {
        let manifest = parse(
            r#"
[package]
name = "cryptoutil-demo"
version.workspace = true

[dependencies]
cryptoutil-kms = { workspace = true } # the KMS
cryptoutil-tls.workspace = true
renamed = { package = "cryptoutil-identity", path = "../identity" }

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dependencies.cryptoutil-realm]
workspace = true

[dev-dependencies]
cryptoutil-testkit = { workspace = true, features = ["kms"] }

[features]
kms = ["dep:cryptoutil-kms"]
"#,
        );
        assert_eq!(manifest.name, "cryptoutil-demo");
        assert_eq!(
            manifest.dependencies,
            [
                "cryptoutil-kms",
                "cryptoutil-tls",
                "cryptoutil-identity",
                "libc",
                "cryptoutil-realm"
            ]
        );
        assert_eq!(manifest.dev_dependencies, ["cryptoutil-testkit"]);
    }
}
