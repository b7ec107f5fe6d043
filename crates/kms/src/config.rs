//! KMS settings (`kms.yml`), loaded with [`cryptoutil_server::config::load`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{LoggingSettings, ServerSettings, Settings, Validator};

/// Default public port (SPEC §2).
pub const PUBLIC_PORT: u16 = 8081;
/// Default admin port (SPEC §2).
pub const ADMIN_PORT: u16 = 9081;

/// The KMS configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KmsSettings {
    /// Listeners, TLS and limits.
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
}

impl Default for KmsSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(PUBLIC_PORT, ADMIN_PORT),
            logging: LoggingSettings::default(),
        }
    }
}

impl Settings for KmsSettings {
    const ENV_PREFIX: &'static str = "KMS";
    const FILE_NAME: &'static str = "kms.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The schema shipped under `deployments/` is generated from these types (`cargo xtask schemas`).
    #[test]
    fn shipped_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deployments/kms/config.schema.json");
        cryptoutil_server::config::check_shipped_schema::<KmsSettings>(&path).unwrap();
    }
}
