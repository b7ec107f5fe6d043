//! `cryptoutil kms server start`, `identity server start`, `identity rs start`.

use cryptoutil_identity::config::{IdentitySettings, ResourceServerSettings};
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_server::config::{ConfigSources, ServerSettings, Settings, Validator};
use serde_yaml_ng::Value;

use super::config::load;
use crate::Failure;
use crate::cli::ServerStartArgs;

pub fn start_kms(args: &ServerStartArgs) -> Result<(), Failure> {
    let settings: KmsSettings = load_for_start(args)?;
    check_start_up(&settings.server)?;
    Err(Failure::NotBuilt(
        "the KMS service (`cryptoutil kms server start`)",
    ))
}

pub fn start_identity(args: &ServerStartArgs) -> Result<(), Failure> {
    refuse_kms_only_flags(args, "identity server start")?;
    let settings: IdentitySettings = load_for_start(args)?;
    check_start_up(&settings.server)?;
    Err(Failure::NotBuilt(
        "the Identity service (`cryptoutil identity server start`)",
    ))
}

pub fn start_rs(args: &ServerStartArgs) -> Result<(), Failure> {
    refuse_kms_only_flags(args, "identity rs start")?;
    let settings: ResourceServerSettings = load_for_start(args)?;
    check_start_up(&settings.server)?;
    Err(Failure::NotBuilt(
        "the sample resource server (`cryptoutil identity rs start`)",
    ))
}

/// Loads the product's settings from files, environment and the port flags.
fn load_for_start<T: Settings>(args: &ServerStartArgs) -> Result<T, Failure> {
    let mut overrides = Vec::new();
    if let Some(port) = args.public_port {
        overrides.push(("server.public.port".to_owned(), Value::from(port)));
    }
    if let Some(port) = args.admin_port {
        overrides.push(("server.admin.port".to_owned(), Value::from(port)));
    }
    let sources = ConfigSources::from_process(args.config.clone(), T::FILE_NAME, overrides);
    load(&sources)
}

/// The second validation pass, at start-up: the files the settings name can be read.
fn check_start_up(server: &ServerSettings) -> Result<(), Failure> {
    let mut v = Validator::default();
    server.validate_files(&mut v);
    v.finish().map_err(|e| Failure::Usage(e.to_string()))
}

fn refuse_kms_only_flags(args: &ServerStartArgs, command: &str) -> Result<(), Failure> {
    if args.trust_issuer.is_some() || args.trust_issuer_ca.is_some() {
        return Err(Failure::Usage(format!(
            "--trust-issuer and --trust-issuer-ca apply to `cryptoutil kms server start`, not `cryptoutil {command}`"
        )));
    }
    Ok(())
}
