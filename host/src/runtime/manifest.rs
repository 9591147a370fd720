//! A plugin's manifest: who it is and what the host lets it do.
//!
//! The manifest, not the plugin's own `describe`, decides egress and limits:
//! a plugin cannot widen its own permissions at run time.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub id: String,
    pub name: String,
    pub version: String,
    /// The WIT contract version the component was built against.
    pub wit: String,
    pub publisher: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub egress: EgressHosts,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// A plugin made for the host's own tests (`plugins/test-plugins/`):
    /// `build.rs` lists it in `bundled::test_plugins`, never in the
    /// connectors the server ships, and installing one logs a warning.
    #[serde(default)]
    pub test_only: bool,
}

/// Hosts the plugin may reach, per environment: `host`, `host:port` or
/// `*.domain`. Always HTTPS, except for an account's explicit base URL.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EgressHosts {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub live: Vec<String>,
}

/// What the plugin asks for; the operator's caps bound it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    #[serde(default = "default_cpu_ms")]
    pub cpu_ms: u32,
}

fn default_memory_mb() -> u32 {
    32
}

fn default_cpu_ms() -> u32 {
    200
}

impl Default for RequestedLimits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms: default_cpu_ms(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid plugin manifest: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid plugin manifest: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl PluginManifest {
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: PluginManifest = toml::from_str(text)?;
        let id_ok = !manifest.id.is_empty()
            && manifest.id.len() <= 64
            && manifest
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ManifestError::Invalid {
                field: "id",
                message: "1 to 64 characters among a-z, 0-9, '-' and '_'".into(),
            });
        }
        if !manifest.wit.starts_with("1.") {
            return Err(ManifestError::Invalid {
                field: "wit",
                message: format!(
                    "contract version {} is not supported (this host speaks 1.x)",
                    manifest.wit
                ),
            });
        }
        Ok(manifest)
    }
}
