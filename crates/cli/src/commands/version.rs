//! `cryptoutil version [--verbose] [--output json]`, and the FIPS start-up gate of the commands
//! that start servers.

use cryptoutil_tls::CryptoModule;
use serde_json::json;

use crate::Failure;
use crate::cli::{VersionArgs, VersionFormat};

/// The binary's version (the workspace version).
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn run(args: &VersionArgs) -> Result<(), Failure> {
    let module = args.verbose.then(CryptoModule::current);
    let text = match args.output {
        VersionFormat::Json => {
            let doc = match &module {
                Some(m) => json!({ "version": VERSION, "crypto": m }),
                None => json!({ "version": VERSION }),
            };
            serde_json::to_string_pretty(&doc)
                .map_err(|e| Failure::Runtime(format!("cannot render the version: {e}")))?
        }
        VersionFormat::Human => human(module.as_ref()),
    };
    print_stdout(&text);
    Ok(())
}

fn human(module: Option<&CryptoModule>) -> String {
    let mut out = format!("cryptoutil {VERSION}");
    if let Some(m) = module {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let lines = [
            ("crypto module", m.describe()),
            ("FIPS build", on_off(m.fips_build).to_owned()),
            ("FIPS mode", on_off(m.fips_mode).to_owned()),
            ("TLS versions", m.tls.versions.join(", ")),
            ("TLS cipher suites", m.tls.cipher_suites.join(", ")),
            ("TLS key exchange", m.tls.kx_groups.join(", ")),
            ("TLS policy FIPS", on_off(m.tls.fips).to_owned()),
        ];
        for (name, value) in lines {
            out.push_str(&format!("\n{:<18} {value}", format!("{name}:")));
        }
    }
    out
}

/// The FIPS build refuses to start a server or a demo on a module that is not in FIPS mode or
/// fails its self-tests (exit code 2). Nothing to check in other builds.
pub fn require_fips_mode() -> Result<(), Failure> {
    cryptoutil_tls::module::require_fips_mode().map_err(Failure::Usage)
}

#[allow(clippy::print_stdout)]
fn print_stdout(text: &str) {
    println!("{text}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn human_output_names_the_module_and_the_policy() {
        assert_eq!(human(None), format!("cryptoutil {VERSION}"));
        let m = CryptoModule::current();
        let text = human(Some(&m));
        assert!(
            text.contains(&format!("crypto module:     {}", m.describe())),
            "{text}"
        );
        assert!(text.contains("FIPS mode:"), "{text}");
        for suite in &m.tls.cipher_suites {
            assert!(text.contains(suite.as_str()), "{text}");
        }
    }
}
