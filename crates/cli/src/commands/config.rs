//! `cryptoutil config schema|check`.

use std::path::PathBuf;

use cryptoutil_identity::config::{IdentitySettings, ResourceServerSettings};
use cryptoutil_kms::config::KmsSettings;
use cryptoutil_server::config::{self, ConfigSources, Settings};

use crate::Failure;
use crate::cli::{ConfigCommand, Product};

pub fn run(command: ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Schema { product } => {
            let schema = match product {
                Product::Kms => config::json_schema::<KmsSettings>(),
                Product::Identity => config::json_schema::<IdentitySettings>(),
                Product::Rs => config::json_schema::<ResourceServerSettings>(),
            };
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| Failure::Runtime(format!("cannot render the schema: {e}")))?;
            print_stdout(&text);
            Ok(())
        }
        ConfigCommand::Check { product, config } => match product {
            Product::Kms => check::<KmsSettings>(config),
            Product::Identity => check::<IdentitySettings>(config),
            Product::Rs => check::<ResourceServerSettings>(config),
        },
    }
}

fn check<T: Settings>(files: Vec<PathBuf>) -> Result<(), Failure> {
    let sources = ConfigSources::from_process(files, T::FILE_NAME, Vec::new());
    let settings: T = load(&sources)?;
    let text = serde_yaml_ng::to_string(&settings)
        .map_err(|e| Failure::Runtime(format!("cannot render the configuration: {e}")))?;
    print_stdout(&text);
    Ok(())
}

/// Loads settings, mapping configuration errors to exit code 2.
pub fn load<T: Settings>(sources: &ConfigSources) -> Result<T, Failure> {
    config::load::<T>(sources).map_err(|e| Failure::Usage(e.to_string()))
}

#[allow(clippy::print_stdout)]
fn print_stdout(text: &str) {
    println!("{}", text.trim_end());
}
