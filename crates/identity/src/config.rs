//! Identity server settings (`identity.yml`) and sample resource server settings (`rs.yml`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use cryptoutil_server::config::{LoggingSettings, ServerSettings, Settings, Validator};

/// The Identity server configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// Listeners, TLS and limits (default ports 8082 and 9082).
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(8082, 9082),
            logging: LoggingSettings::default(),
        }
    }
}

impl Settings for IdentitySettings {
    const ENV_PREFIX: &'static str = "IDENTITY";
    const FILE_NAME: &'static str = "identity.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
    }
}

/// The sample resource server configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceServerSettings {
    /// Listeners, TLS and limits (default ports 8084 and 9084).
    pub server: ServerSettings,
    /// Logging.
    pub logging: LoggingSettings,
}

impl Default for ResourceServerSettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::with_ports(8084, 9084),
            logging: LoggingSettings::default(),
        }
    }
}

impl Settings for ResourceServerSettings {
    const ENV_PREFIX: &'static str = "RS";
    const FILE_NAME: &'static str = "rs.yml";

    fn validate(&self, v: &mut Validator) {
        self.server.validate(v);
        self.logging.validate(v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The schemas shipped under `deployments/` are generated from these types
    /// (`cargo xtask schemas`).
    #[test]
    fn shipped_schemas_are_current() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deployments/identity");
        cryptoutil_server::config::check_shipped_schema::<IdentitySettings>(
            &dir.join("config.schema.json"),
        )
        .unwrap();
        cryptoutil_server::config::check_shipped_schema::<ResourceServerSettings>(
            &dir.join("rs-config.schema.json"),
        )
        .unwrap();
    }
}
