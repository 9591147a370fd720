//! A plugin's manifest: who it is and what the host lets it do.
//!
//! The manifest, not the plugin's own `describe`, decides egress and limits:
//! a plugin cannot widen its own permissions at run time.
//!
//! A manifest may also state what the component does (`operations`,
//! `payment_methods`, `currencies`, `[[credentials]]`). These fields are
//! optional (the bundled plugins' manifests leave them out), but
//! `passerelle plugin pack` always fills them from the component's own
//! `describe`, so an operator reading a package sees what it does before
//! installing it; when present, [`PluginManifest::check_describe`] makes
//! the install refuse a component whose `describe` says otherwise.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::bindings::types::{ConnectorInfo, Operation};

// Field order matters for `to_toml`: TOML wants plain values before tables.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub id: String,
    pub name: String,
    pub version: String,
    /// The WIT contract version the component was built against.
    pub wit: String,
    pub publisher: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A plugin made for the host's own tests (`plugins/test-plugins/`):
    /// `build.rs` lists it in `bundled::test_plugins`, never in the
    /// connectors the server ships, and installing one logs a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_only: bool,
    /// The operations `describe` declares, by their WIT names
    /// (`authorize`, `partial-capture`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
    /// Payment method types (`card`, `paypal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<String>>,
    /// ISO 4217 codes; empty means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currencies: Option<Vec<String>>,
    #[serde(default)]
    pub egress: EgressHosts,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// The credential fields `describe` declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<CredentialDecl>>,
}

/// One `[[credentials]]` entry: a credential field as `describe` declares it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CredentialDecl {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub required: bool,
}

/// Every operation of the contract, with its WIT name.
const OPERATIONS: [(Operation, &str); 9] = [
    (Operation::Authorize, "authorize"),
    (Operation::Complete, "complete"),
    (Operation::Capture, "capture"),
    (Operation::PartialCapture, "partial-capture"),
    (Operation::Cancel, "cancel"),
    (Operation::Refund, "refund"),
    (Operation::PartialRefund, "partial-refund"),
    (Operation::Sync, "sync"),
    (Operation::Notifications, "notifications"),
];

/// The WIT name of an operation (`partial-capture`).
pub fn operation_name(operation: Operation) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(op, _)| *op == operation)
        .map_or("unknown", |(_, name)| name)
}

/// The operation a WIT name stands for.
pub fn operation_from_name(name: &str) -> Option<Operation> {
    OPERATIONS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(op, _)| *op)
}

/// Hosts the plugin may reach, per environment: `host`, `host:port` or
/// `*.domain`. Always HTTPS, except for an account's explicit base URL.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EgressHosts {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub live: Vec<String>,
}

/// What the plugin asks for; the operator's caps bound it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    #[serde(default = "default_cpu_ms")]
    pub cpu_ms: u32,
    /// Most calls of this plugin running at once (each holds an instance and
    /// its memory, up to `memory_mb`); further calls wait for a bounded time,
    /// then fail as busy. The operator's cap bounds it.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: u32,
}

fn default_memory_mb() -> u32 {
    32
}

fn default_cpu_ms() -> u32 {
    200
}

fn default_max_concurrency() -> u32 {
    64
}

impl Default for RequestedLimits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            cpu_ms: default_cpu_ms(),
            max_concurrency: default_max_concurrency(),
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
    /// The component's `describe` contradicts its manifest.
    #[error("the plugin's describe disagrees with its manifest: {field}: {message}")]
    Describe {
        field: &'static str,
        message: String,
    },
    #[error("cannot write the plugin manifest: {0}")]
    Render(#[from] toml::ser::Error),
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
        if manifest.limits.max_concurrency == 0 {
            return Err(ManifestError::Invalid {
                field: "limits.max_concurrency",
                message: "must be at least 1".into(),
            });
        }
        if let Some(operations) = &manifest.operations {
            if let Some(bad) = operations
                .iter()
                .find(|op| operation_from_name(op).is_none())
            {
                return Err(ManifestError::Invalid {
                    field: "operations",
                    message: format!(
                        "unknown operation {bad:?} (known: {})",
                        OPERATIONS.map(|(_, n)| n).join(", ")
                    ),
                });
            }
        }
        if let Some(credentials) = &manifest.credentials {
            let mut seen = BTreeSet::new();
            for field in credentials {
                if field.name.is_empty() || !seen.insert(field.name.as_str()) {
                    return Err(ManifestError::Invalid {
                        field: "credentials",
                        message: format!(
                            "credential names must be non-empty and unique ({:?})",
                            field.name
                        ),
                    });
                }
            }
        }
        Ok(manifest)
    }

    /// Checks that a component's `describe` agrees with this manifest: the
    /// same id and version always, and, for each optional field the
    /// manifest has, exactly the same content (lists compared as sets,
    /// credentials by name with their `secret` and `required` flags; labels
    /// are display text and may differ).
    pub fn check_describe(&self, info: &ConnectorInfo) -> Result<(), ManifestError> {
        let mismatch =
            |field: &'static str, message: String| Err(ManifestError::Describe { field, message });
        if info.id != self.id {
            return mismatch(
                "id",
                format!("describe says {:?}, the manifest {:?}", info.id, self.id),
            );
        }
        if info.version != self.version {
            return mismatch(
                "version",
                format!(
                    "describe says {:?}, the manifest {:?}",
                    info.version, self.version
                ),
            );
        }
        if let Some(declared) = &self.operations {
            let described = info.operations.iter().map(|op| operation_name(*op));
            compare_sets("operations", declared.iter().map(String::as_str), described)?;
        }
        if let Some(declared) = &self.payment_methods {
            let described = info.payment_methods.iter().map(String::as_str);
            compare_sets(
                "payment_methods",
                declared.iter().map(String::as_str),
                described,
            )?;
        }
        if let Some(declared) = &self.currencies {
            let described = info.currencies.iter().map(String::as_str);
            compare_sets("currencies", declared.iter().map(String::as_str), described)?;
        }
        if let Some(declared) = &self.credentials {
            let declared: BTreeMap<&str, (bool, bool)> = declared
                .iter()
                .map(|c| (c.name.as_str(), (c.secret, c.required)))
                .collect();
            let described: BTreeMap<&str, (bool, bool)> = info
                .credential_fields
                .iter()
                .map(|c| (c.name.as_str(), (c.secret, c.required)))
                .collect();
            compare_sets(
                "credentials",
                declared.keys().copied(),
                described.keys().copied(),
            )?;
            for (name, (secret, required)) in &declared {
                if let Some((d_secret, d_required)) = described.get(name) {
                    if (secret, required) != (d_secret, d_required) {
                        return mismatch(
                            "credentials",
                            format!(
                                "{name:?}: describe says secret={d_secret} required={d_required}, \
                                 the manifest secret={secret} required={required}"
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// This manifest with the optional fields set from `describe`.
    pub fn filled_from(&self, info: &ConnectorInfo) -> PluginManifest {
        let mut filled = self.clone();
        filled.operations = Some(
            info.operations
                .iter()
                .map(|op| operation_name(*op).to_string())
                .collect(),
        );
        filled.payment_methods = Some(info.payment_methods.clone());
        filled.currencies = Some(info.currencies.clone());
        filled.credentials = Some(
            info.credential_fields
                .iter()
                .map(|c| CredentialDecl {
                    name: c.name.clone(),
                    label: c.label.clone(),
                    secret: c.secret,
                    required: c.required,
                })
                .collect(),
        );
        filled
    }

    /// The manifest as TOML (comments of the original are not kept).
    pub fn to_toml(&self) -> Result<String, ManifestError> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// Set equality of two lists of names, with an error naming what differs.
fn compare_sets<'a>(
    field: &'static str,
    declared: impl Iterator<Item = &'a str>,
    described: impl Iterator<Item = &'a str>,
) -> Result<(), ManifestError> {
    let declared: BTreeSet<&str> = declared.collect();
    let described: BTreeSet<&str> = described.collect();
    if declared == described {
        return Ok(());
    }
    let only = |a: &BTreeSet<&str>, b: &BTreeSet<&str>| {
        a.difference(b).copied().collect::<Vec<_>>().join(", ")
    };
    let mut parts = Vec::new();
    let extra = only(&described, &declared);
    if !extra.is_empty() {
        parts.push(format!("describe adds [{extra}]"));
    }
    let missing = only(&declared, &described);
    if !missing.is_empty() {
        parts.push(format!("describe lacks [{missing}]"));
    }
    Err(ManifestError::Describe {
        field,
        message: parts.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::super::bindings::types::CredentialField;
    use super::*;

    const BASE: &str = r#"
id = "acme"
name = "Acme"
version = "1.2.0"
wit = "1.0.0"
publisher = "acme"
"#;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            id: "acme".into(),
            name: "Acme".into(),
            version: "1.2.0".into(),
            operations: vec![Operation::Authorize, Operation::PartialCapture],
            payment_methods: vec!["card".into()],
            currencies: vec!["EUR".into(), "USD".into()],
            credential_fields: vec![CredentialField {
                name: "api_key".into(),
                label: "API key".into(),
                secret: true,
                required: true,
            }],
        }
    }

    #[test]
    fn max_concurrency_defaults_and_must_be_positive() {
        let manifest = PluginManifest::parse(BASE).unwrap();
        assert_eq!(manifest.limits.max_concurrency, 64);
        let set = PluginManifest::parse(&format!("{BASE}[limits]\nmax_concurrency = 4\n")).unwrap();
        assert_eq!(set.limits.max_concurrency, 4);
        assert_eq!(set.limits.memory_mb, 32);
        let err =
            PluginManifest::parse(&format!("{BASE}[limits]\nmax_concurrency = 0\n")).unwrap_err();
        assert!(err.to_string().contains("limits.max_concurrency"), "{err}");
    }

    #[test]
    fn bare_manifest_checks_only_id_and_version() {
        let manifest = PluginManifest::parse(BASE).unwrap();
        assert!(manifest.operations.is_none());
        manifest.check_describe(&info()).unwrap();
        let mut other = info();
        other.version = "1.2.1".into();
        let err = manifest.check_describe(&other).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
        other = info();
        other.id = "acme2".into();
        assert!(manifest.check_describe(&other).is_err());
    }

    #[test]
    fn filled_manifest_round_trips_and_matches_describe() {
        let manifest = PluginManifest::parse(BASE).unwrap().filled_from(&info());
        let text = manifest.to_toml().unwrap();
        assert!(text.contains("partial-capture"), "{text}");
        assert!(text.contains("[[credentials]]"), "{text}");
        let parsed = PluginManifest::parse(&text).unwrap();
        assert_eq!(parsed, manifest);
        parsed.check_describe(&info()).unwrap();
    }

    #[test]
    fn filled_manifest_refuses_a_describe_that_differs() {
        let manifest = PluginManifest::parse(BASE).unwrap().filled_from(&info());
        type Change = Box<dyn Fn(&mut ConnectorInfo)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "operations",
                Box::new(|i| i.operations.push(Operation::Refund)),
            ),
            (
                "operations",
                Box::new(|i| {
                    i.operations.pop();
                }),
            ),
            (
                "payment_methods",
                Box::new(|i| i.payment_methods = vec!["paypal".into()]),
            ),
            ("currencies", Box::new(|i| i.currencies.push("GBP".into()))),
            (
                "credentials",
                Box::new(|i| i.credential_fields[0].secret = false),
            ),
            (
                "credentials",
                Box::new(|i| i.credential_fields[0].required = false),
            ),
            (
                "credentials",
                Box::new(|i| i.credential_fields[0].name = "key".into()),
            ),
        ];
        for (field, change) in cases {
            let mut described = info();
            change(&mut described);
            match manifest.check_describe(&described) {
                Err(ManifestError::Describe { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected a mismatch, got {other:?}"),
            }
        }
        // Order and labels do not matter.
        let mut described = info();
        described.currencies.reverse();
        described.credential_fields[0].label = "Key".into();
        manifest.check_describe(&described).unwrap();
    }

    #[test]
    fn unknown_fields_and_operations_are_refused() {
        assert!(PluginManifest::parse(&format!("{BASE}colour = \"red\"\n")).is_err());
        let err =
            PluginManifest::parse(&format!("{BASE}operations = [\"teleport\"]\n")).unwrap_err();
        assert!(err.to_string().contains("teleport"), "{err}");
        let dup = format!("{BASE}[[credentials]]\nname = \"a\"\n[[credentials]]\nname = \"a\"\n");
        assert!(PluginManifest::parse(&dup).is_err());
    }

    #[test]
    fn operation_names_are_the_wit_names() {
        for (op, name) in OPERATIONS {
            assert_eq!(operation_name(op), name);
            assert_eq!(operation_from_name(name), Some(op));
        }
        assert_eq!(operation_from_name("partial_capture"), None);
    }
}
