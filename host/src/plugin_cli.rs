//! `passerelle plugin`: offline tools for connector authors — signing keys,
//! packages (`.ppkg`), their inspection and the conformance kit. Nothing
//! here talks to a Passerelle server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::conformance::{self, KitOptions};
use crate::egress::Egress;
use crate::package::{Package, PackageError, PackagePolicy, SigningKey, TrustedKeys};
use crate::runtime::manifest::PluginManifest;
use crate::runtime::{PluginRuntime, RuntimeLimits};

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Creates a publisher's signing key (file mode 0600) and prints the
    /// line operators add to their trusted keys file.
    Keygen {
        #[arg(long)]
        publisher: String,
        /// Where to write the secret key (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Builds a package from a manifest and a component. The operations,
    /// payment methods, currencies and credentials the component's
    /// `describe` declares are written into the packaged manifest.
    Pack {
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        component: PathBuf,
        /// Default: `<id>-<version>.ppkg` in the current directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Signs the package with this secret key file.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Signs (or re-signs) a package, in place unless `--out` is given.
    Sign {
        package: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints a package's manifest, digest and signature as JSON.
    Inspect {
        package: PathBuf,
        /// Also verify the signature against these trusted keys.
        #[arg(long)]
        trusted_keys: Option<PathBuf>,
    },
    /// Runs the conformance kit on a package: against the embedded PSP
    /// sandbox (for the providers it simulates) or `--against URL`.
    /// Exits 1 when a scenario fails.
    Test {
        package: PathBuf,
        /// Base URL of the PSP's test environment; default: the embedded sandbox.
        #[arg(long)]
        against: Option<String>,
        /// A JSON object of credential values, by the names `describe` declares.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// The card number to authorize with.
        #[arg(long)]
        card: Option<String>,
        /// The merchant reference of the test payments (default: unique).
        #[arg(long)]
        reference: Option<String>,
        /// Report the signature as checked against these trusted keys.
        #[arg(long)]
        trusted_keys: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PluginCliError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Manifest(#[from] crate::runtime::manifest::ManifestError),
    #[error(transparent)]
    Kit(#[from] conformance::KitError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PluginCliError + '_ {
    move |source| PluginCliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a `passerelle plugin` command: 0 on success, 1 on failure with a
/// one-line error on stderr (or failing conformance scenarios).
pub async fn run(args: PluginArgs) -> ExitCode {
    match execute(args.command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let line = error.to_string().replace('\n', " ");
            eprintln!("passerelle plugin: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: the command ran and its verdict is negative (failing
/// conformance scenarios).
async fn execute(command: PluginCommand) -> Result<bool, PluginCliError> {
    match command {
        PluginCommand::Keygen { publisher, out } => {
            let key = SigningKey::generate(&publisher)?;
            key.save(&out)?;
            eprintln!(
                "Secret key of publisher {publisher:?} written to {} (keep it private). \
                 Trusted keys line:",
                out.display()
            );
            println!("{}", key.public_line());
        }
        PluginCommand::Pack {
            manifest,
            component,
            out,
            key,
        } => {
            let key = key.as_deref().map(SigningKey::load).transpose()?;
            let manifest_toml = std::fs::read_to_string(&manifest).map_err(io_error(&manifest))?;
            let component = std::fs::read(&component).map_err(io_error(&component))?;
            let package = pack(&manifest_toml, component, key.as_ref()).await?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}-{}.ppkg",
                    package.manifest.id, package.manifest.version
                ))
            });
            write_package(&package, &out)?;
            println!("{}", out.display());
            println!("digest {}", package.digest());
            match &package.signature {
                Some(s) => println!("signed by {} (key {})", s.publisher, s.key_id),
                None => println!("unsigned"),
            }
        }
        PluginCommand::Sign { package, key, out } => {
            let key = SigningKey::load(&key)?;
            let mut pkg = read_package(&package)?;
            pkg.sign(&key)?;
            let out = out.unwrap_or(package);
            write_package(&pkg, &out)?;
            println!("{}", out.display());
            println!("digest {}", pkg.digest());
            println!("signed by {} (key {})", key.publisher, key.key_id());
        }
        PluginCommand::Inspect {
            package,
            trusted_keys,
        } => {
            let pkg = read_package(&package)?;
            let mut value = inspect(&pkg);
            if let Some(path) = trusted_keys {
                let policy = PackagePolicy {
                    trusted: TrustedKeys::load(&path)?,
                    allow_unsigned: false,
                };
                value["verification"] = match policy.verify(&pkg) {
                    Ok(trust) => json!({"ok": true, "trust": trust.as_str()}),
                    Err(e) => json!({"ok": false, "error": e.to_string()}),
                };
            }
            let text = serde_json::to_string_pretty(&value)
                .map_err(|e| PluginCliError::Other(e.to_string()))?;
            println!("{text}");
        }
        PluginCommand::Test {
            package,
            against,
            credentials,
            card,
            reference,
            trusted_keys,
            format,
        } => {
            let pkg = read_package(&package)?;
            let trusted = match trusted_keys {
                Some(path) => TrustedKeys::load(&path)?,
                None => TrustedKeys::empty(),
            };
            let credentials = credentials.as_deref().map(read_credentials).transpose()?;
            let report = conformance::run(
                &pkg,
                KitOptions {
                    against,
                    credentials,
                    card,
                    reference,
                    trusted,
                },
            )
            .await?;
            match format {
                ReportFormat::Text => print!("{}", report.to_text()),
                ReportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| PluginCliError::Other(e.to_string()))?
                ),
            }
            return Ok(report.passed());
        }
    }
    Ok(true)
}

/// Loads the component in a private runtime, asks `describe`, and packages
/// the component with the manifest completed from it (signed with `key`).
pub async fn pack(
    manifest_toml: &str,
    component: Vec<u8>,
    key: Option<&SigningKey>,
) -> Result<Package, PluginCliError> {
    let manifest = PluginManifest::parse(manifest_toml)?;
    let egress = Egress::new().map_err(|e| PluginCliError::Other(e.to_string()))?;
    let runtime = PluginRuntime::new(RuntimeLimits::default(), egress)
        .map_err(|e| PluginCliError::Other(e.to_string()))?;
    let loaded = runtime
        .install(manifest_toml, &component)
        .await
        .map_err(|e| PluginCliError::Other(e.to_string()))?;
    // Fields the author wrote must already agree with `describe`.
    manifest.check_describe(&loaded.info)?;
    let filled = manifest.filled_from(&loaded.info).to_toml()?;
    let mut package = Package::new(filled, component)?;
    if let Some(key) = key {
        package.sign(key)?;
    }
    Ok(package)
}

fn read_package(path: &Path) -> Result<Package, PluginCliError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    Package::from_bytes(&bytes)
        .map_err(|e| PluginCliError::Other(format!("{}: {e}", path.display())))
}

/// Writes through a temporary file and a rename, so an interrupted write
/// never leaves half a package where a good one was.
fn write_package(package: &Package, path: &Path) -> Result<(), PluginCliError> {
    let bytes = package.to_bytes()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

fn read_credentials(path: &Path) -> Result<BTreeMap<String, String>, PluginCliError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| PluginCliError::Other(format!("{}: not JSON: {e}", path.display())))?;
    let object = value.as_object().ok_or_else(|| {
        PluginCliError::Other(format!("{}: expected a JSON object", path.display()))
    })?;
    object
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(PluginCliError::Other(format!(
                "{}: credential {k:?} must be a string",
                path.display()
            ))),
        })
        .collect()
}

/// What `inspect` prints.
pub fn inspect(package: &Package) -> serde_json::Value {
    let mut value = serde_json::to_value(&package.manifest).unwrap_or_else(|_| json!({}));
    value["digest"] = json!(package.digest());
    value["component_bytes"] = json!(package.component.len());
    value["signature"] = match &package.signature {
        Some(s) => json!({
            "algorithm": s.algorithm,
            "publisher": s.publisher,
            "key_id": s.key_id,
        }),
        None => serde_json::Value::Null,
    };
    value
}
