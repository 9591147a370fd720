//! The plugin registry: which versions of which plugins this host has, which
//! one serves calls, and the operator's actions on them (install, activate,
//! roll back, disable, remove).
//!
//! The database is the source of truth: every version's package (or, for
//! connectors bundled in the binary, its digest) and each plugin's active
//! and previous version. The [`PluginRuntime`] holds the compiled versions;
//! activating one swaps a pointer, so new calls get it at once while calls
//! in flight finish on theirs. Every node re-reads the database each second
//! ([`PluginRegistry::refresh`]) so an operator's change reaches all of them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::bundled::BundledPlugin;
use crate::crypto::now_rfc3339;
use crate::package::{Package, PackageError, PackagePolicy, Trust};
use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime};
use crate::store::{
    ConnectorAccountRecord, PluginRecord, PluginVersionRecord, PluginVersionSummary, Store,
    StoreError,
};

/// `trust` of a version that came with the binary.
pub const TRUST_BUNDLED: &str = "bundled";

/// How often every node re-reads the operators' changes.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no plugin {0:?} is installed")]
    NotFound(String),
    #[error("plugin {plugin:?} has no version {version}")]
    VersionNotFound { plugin: String, version: String },
    #[error(
        "plugin {plugin:?} already has a version {version} with other contents \
         (digest {existing}); give the new package another version"
    )]
    VersionExists {
        plugin: String,
        version: String,
        existing: String,
    },
    #[error("plugin {0:?} has no previous version to roll back to")]
    NoPreviousVersion(String),
    #[error("version {version} of plugin {plugin:?} is active; activate another version first")]
    VersionActive { plugin: String, version: String },
    #[error(
        "plugin {plugin:?} serves {} connector account(s) ({}); remove them first, \
         or force the removal", accounts.len(), accounts.join(", ")
    )]
    InUse {
        plugin: String,
        accounts: Vec<String>,
    },
    #[error("plugin {0:?} comes with the server binary and cannot be removed; disable it instead")]
    Bundled(String),
    #[error(
        "plugin {0:?} is a test-only plugin; it is refused unless the server allows \
         unsigned plugins (development mode)"
    )]
    TestOnly(String),
    #[error("version {version} of plugin {plugin:?} cannot be loaded: {message}")]
    Unloadable {
        plugin: String,
        version: String,
        message: String,
    },
}

/// What an install did.
#[derive(Debug, Clone)]
pub struct InstallOutcome {
    pub plugin_id: String,
    pub version: String,
    pub digest: String,
    pub trust: String,
    /// False when this very package was already installed.
    pub created: bool,
    pub active: bool,
}

/// A plugin as an operator sees it.
#[derive(Clone)]
pub struct PluginView {
    pub record: PluginRecord,
    pub versions: Vec<VersionView>,
    /// The active version, loaded.
    pub active: Option<Arc<LoadedPlugin>>,
    pub accounts: Vec<ConnectorAccountRecord>,
}

#[derive(Clone)]
pub struct VersionView {
    pub summary: PluginVersionSummary,
    pub bundled: bool,
    /// Compiled and ready in this node.
    pub loaded: Option<Arc<LoadedPlugin>>,
}

pub struct PluginRegistry {
    store: Store,
    runtime: Arc<PluginRuntime>,
    policy: PackagePolicy,
    /// Connectors compiled into the binary, by (id, version).
    bundled: BTreeMap<(String, String), &'static BundledPlugin>,
    /// One operator action at a time in this node, so that loading a
    /// version and recording it cannot interleave with a removal.
    actions: Mutex<()>,
    /// Versions that failed to load, reported once rather than every second.
    reported_failures: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

fn version_key(id: &str, version: &str) -> (String, String) {
    (id.to_string(), version.to_string())
}

impl PluginRegistry {
    /// Loads the bundled connectors and every plugin's active version, as
    /// the database records them. A version that cannot be loaded any more
    /// (its publisher's key is no longer trusted, say) is reported and left
    /// inactive: the other plugins keep serving.
    pub async fn start(
        store: Store,
        runtime: Arc<PluginRuntime>,
        policy: PackagePolicy,
        bundled: &'static [BundledPlugin],
    ) -> Result<Self, RegistryError> {
        let mut by_version = BTreeMap::new();
        for plugin in bundled {
            let loaded = runtime.load(plugin.manifest_toml, plugin.component).await?;
            by_version.insert(version_key(loaded.id(), &loaded.manifest.version), plugin);
        }
        let registry = Self {
            store,
            runtime,
            policy,
            bundled: by_version,
            actions: Mutex::new(()),
            reported_failures: std::sync::Mutex::default(),
        };
        registry.record_bundled().await?;
        registry.refresh().await?;
        Ok(registry)
    }

    /// Records the binary's connectors: each version once, and as the active
    /// version of a plugin the database does not know yet.
    async fn record_bundled(&self) -> Result<(), RegistryError> {
        for ((id, version), plugin) in &self.bundled {
            let digest =
                Package::new(plugin.manifest_toml.to_string(), plugin.component.to_vec())?.digest();
            let loaded = self.runtime.loaded_version(id, version).ok_or_else(|| {
                PluginError::VersionNotLoaded {
                    plugin: id.clone(),
                    version: version.clone(),
                }
            })?;
            match self.store.get_plugin_version(id, version).await? {
                Some(existing) if existing.digest == digest => {}
                Some(existing) if existing.trust == TRUST_BUNDLED => {
                    // The binary was rebuilt with other code under the same
                    // version: record what this binary carries.
                    tracing::warn!(plugin = %id, %version, old = %existing.digest, new = %digest, "bundled connector changed without a new version");
                    self.store.delete_plugin_version(id, version).await?;
                    self.store
                        .insert_plugin_version(bundled_record(plugin, &digest, &loaded))
                        .await?;
                }
                Some(existing) => {
                    tracing::warn!(plugin = %id, %version, installed = %existing.digest, "an installed package has the same version as a bundled connector; the installed one is kept");
                }
                None => match self
                    .store
                    .insert_plugin_version(bundled_record(plugin, &digest, &loaded))
                    .await
                {
                    // Another node recorded it first.
                    Ok(()) | Err(StoreError::Duplicate) => {}
                    Err(e) => return Err(e.into()),
                },
            }
            match self
                .store
                .insert_plugin(first_record(id.clone(), version.clone()))
                .await
            {
                // A plugin already known keeps its row (its active version
                // may well be an installed one).
                Ok(()) | Err(StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Makes this node serve what the database says: each plugin's active
    /// version, its disabled flag, and no plugin the operators removed.
    pub async fn refresh(&self) -> Result<(), RegistryError> {
        let records = self.store.list_plugins().await?;
        for record in &records {
            self.runtime.set_disabled(&record.id, record.disabled);
            let Some(version) = &record.active_version else {
                continue;
            };
            let current = self.runtime.active(&record.id).ok();
            if current
                .as_ref()
                .is_some_and(|p| &p.manifest.version == version)
            {
                continue;
            }
            match self.ensure_loaded(&record.id, version).await {
                Ok(_) => {
                    self.runtime.activate(&record.id, version)?;
                }
                Err(error) => {
                    let first_time = self
                        .reported_failures
                        .lock()
                        .map(|mut seen| seen.insert(version_key(&record.id, version)))
                        .unwrap_or(true);
                    if first_time {
                        tracing::error!(plugin = %record.id, %version, %error, "the active version cannot be loaded; the plugin stays as it was");
                    }
                }
            }
        }
        for plugin in self.runtime.list() {
            if !records.iter().any(|r| r.id == plugin.id()) {
                self.runtime.remove(plugin.id());
            }
        }
        Ok(())
    }

    /// Runs [`refresh`](Self::refresh) every [`REFRESH_INTERVAL`] until the
    /// registry is dropped.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                let _guard = registry.actions.lock().await;
                if let Err(error) = registry.refresh().await {
                    tracing::warn!(%error, "plugin refresh failed");
                }
            }
        })
    }

    /// The version loaded in this node, loading it from the binary or from
    /// its stored package (whose signature is checked again: a publisher
    /// whose key the operator removed is no longer trusted).
    async fn ensure_loaded(
        &self,
        id: &str,
        version: &str,
    ) -> Result<Arc<LoadedPlugin>, RegistryError> {
        if let Some(loaded) = self.runtime.loaded_version(id, version) {
            return Ok(loaded);
        }
        let record = self
            .store
            .get_plugin_version(id, version)
            .await?
            .ok_or_else(|| RegistryError::VersionNotFound {
                plugin: id.to_string(),
                version: version.to_string(),
            })?;
        let unloadable = |message: String| RegistryError::Unloadable {
            plugin: id.to_string(),
            version: version.to_string(),
            message,
        };
        let Some(bytes) = record.package else {
            // A bundled version this binary does not carry (an older build's).
            return match self.bundled.get(&version_key(id, version)) {
                Some(plugin) => Ok(self
                    .runtime
                    .load(plugin.manifest_toml, plugin.component)
                    .await?),
                None => Err(unloadable(
                    "it was bundled with another build of the server".into(),
                )),
            };
        };
        let package = Package::from_bytes(&bytes)?;
        if package.digest() != record.digest {
            return Err(unloadable(
                "the stored package does not match its digest".into(),
            ));
        }
        self.policy.verify(&package)?;
        let loaded = self
            .runtime
            .load(&package.manifest_toml, &package.component)
            .await?;
        Ok(loaded)
    }

    /// Installs a package: verifies its signature, loads it (compiles it and
    /// checks that the component is what its manifest says), then records
    /// it. Nothing is recorded when any step fails. The version becomes
    /// active when `activate` is set or when the plugin has no active
    /// version yet.
    pub async fn install(
        &self,
        package_bytes: &[u8],
        activate: bool,
    ) -> Result<InstallOutcome, RegistryError> {
        let package = Package::from_bytes(package_bytes)?;
        let trust = self.policy.verify(&package)?;
        let manifest = &package.manifest;
        if manifest.test_only && !self.policy.allow_unsigned {
            return Err(RegistryError::TestOnly(manifest.id.clone()));
        }
        let (id, version) = (manifest.id.clone(), manifest.version.clone());
        let digest = package.digest();
        let _guard = self.actions.lock().await;

        let created = match self.store.get_plugin_version(&id, &version).await? {
            Some(existing) if existing.digest == digest => false,
            Some(existing) => {
                return Err(RegistryError::VersionExists {
                    plugin: id,
                    version,
                    existing: existing.digest,
                })
            }
            None => true,
        };
        self.runtime
            .load(&package.manifest_toml, &package.component)
            .await?;
        if created {
            let record = PluginVersionRecord {
                plugin_id: id.clone(),
                version: version.clone(),
                digest: digest.clone(),
                publisher: manifest.publisher.clone(),
                trust: trust.as_str().to_string(),
                signed_by: match &trust {
                    Trust::Signed { key_id, .. } | Trust::Untrusted { key_id } => {
                        Some(key_id.clone())
                    }
                    Trust::Unsigned => None,
                },
                manifest_toml: package.manifest_toml.clone(),
                package: Some(package_bytes.to_vec()),
                installed_at: now_rfc3339(),
            };
            if let Err(error) = self.store.insert_plugin_version(record).await {
                if self
                    .runtime
                    .active(&id)
                    .map_or(true, |p| p.manifest.version != version)
                {
                    self.runtime.unload(&id, &version);
                }
                return Err(match error {
                    StoreError::Duplicate => RegistryError::VersionExists {
                        plugin: id,
                        version,
                        existing: "installed concurrently".into(),
                    },
                    other => other.into(),
                });
            }
        }
        let target = version.clone();
        let plugin_id = id.clone();
        let record = self
            .store
            .change_plugin(&id, move |current| -> Result<PluginRecord, Infallible> {
                Ok(match current {
                    None => first_record(plugin_id, target),
                    Some(mut record) => {
                        if record.active_version.is_none() || activate {
                            switch_active(&mut record, target);
                        }
                        record
                    }
                })
            })
            .await?
            .unwrap_or_else(|never| match never {});
        let active = record.active_version.as_deref() == Some(version.as_str());
        if active {
            self.runtime.activate(&id, &version)?;
        }
        tracing::info!(plugin = %id, %version, %digest, trust = trust.as_str(), created, active, "plugin package installed");
        Ok(InstallOutcome {
            plugin_id: id,
            version,
            digest,
            trust: trust.as_str().to_string(),
            created,
            active,
        })
    }

    /// Makes `version` serve new calls, in this node at once and in every
    /// node within [`REFRESH_INTERVAL`].
    pub async fn activate(&self, id: &str, version: &str) -> Result<PluginRecord, RegistryError> {
        let _guard = self.actions.lock().await;
        self.activate_locked(id, version).await
    }

    async fn activate_locked(
        &self,
        id: &str,
        version: &str,
    ) -> Result<PluginRecord, RegistryError> {
        self.record(id).await?;
        // Load (and compile) before recording the change, so a version that
        // cannot run is never made active.
        self.ensure_loaded(id, version).await?;
        let target = version.to_string();
        let record = self
            .store
            .change_plugin(id, move |current| match current {
                None => Err(()),
                Some(mut record) => {
                    switch_active(&mut record, target);
                    Ok(record)
                }
            })
            .await?
            .map_err(|()| RegistryError::NotFound(id.to_string()))?;
        self.runtime.activate(id, version)?;
        Ok(record)
    }

    /// Goes back to the version that was active before the current one.
    pub async fn rollback(&self, id: &str) -> Result<PluginRecord, RegistryError> {
        let _guard = self.actions.lock().await;
        let record = self.record(id).await?;
        let previous = record
            .previous_version
            .ok_or_else(|| RegistryError::NoPreviousVersion(id.to_string()))?;
        self.activate_locked(id, &previous).await
    }

    /// Refuses (or accepts again) every call to the plugin.
    pub async fn set_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<PluginRecord, RegistryError> {
        let _guard = self.actions.lock().await;
        let record = self
            .store
            .change_plugin(id, move |current| match current {
                None => Err(()),
                Some(mut record) => {
                    if record.disabled != disabled {
                        record.disabled = disabled;
                        record.updated_at = now_rfc3339();
                    }
                    Ok(record)
                }
            })
            .await?
            .map_err(|()| RegistryError::NotFound(id.to_string()))?;
        self.runtime.set_disabled(id, disabled);
        Ok(record)
    }

    /// Removes a plugin and all its versions. Refused while connector
    /// accounts use it, unless `force` (their payments then fail with
    /// "plugin not installed" until it is installed again). Returns the
    /// accounts left without their plugin.
    pub async fn remove(&self, id: &str, force: bool) -> Result<Vec<String>, RegistryError> {
        let _guard = self.actions.lock().await;
        self.record(id).await?;
        if self.bundled.keys().any(|(plugin, _)| plugin == id) {
            return Err(RegistryError::Bundled(id.to_string()));
        }
        let accounts: Vec<String> = self
            .store
            .accounts_using_connector(id)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        if !accounts.is_empty() && !force {
            return Err(RegistryError::InUse {
                plugin: id.to_string(),
                accounts,
            });
        }
        self.store.delete_plugin(id).await?;
        self.runtime.remove(id);
        if !accounts.is_empty() {
            tracing::warn!(plugin = %id, accounts = %accounts.join(","), "plugin removed by force while accounts use it");
        }
        Ok(accounts)
    }

    /// Removes one version that is not active.
    pub async fn remove_version(&self, id: &str, version: &str) -> Result<(), RegistryError> {
        let _guard = self.actions.lock().await;
        let record = self.record(id).await?;
        if record.active_version.as_deref() == Some(version) {
            return Err(RegistryError::VersionActive {
                plugin: id.to_string(),
                version: version.to_string(),
            });
        }
        if !self.store.delete_plugin_version(id, version).await? {
            return Err(RegistryError::VersionNotFound {
                plugin: id.to_string(),
                version: version.to_string(),
            });
        }
        if record.previous_version.as_deref() == Some(version) {
            self.store
                .change_plugin(id, |current| {
                    current
                        .map(|mut record| {
                            record.previous_version = None;
                            record
                        })
                        .ok_or(())
                })
                .await?
                .map_err(|()| RegistryError::NotFound(id.to_string()))?;
        }
        self.runtime.unload(id, version);
        Ok(())
    }

    /// A plugin's row, or [`RegistryError::NotFound`].
    async fn record(&self, id: &str) -> Result<PluginRecord, RegistryError> {
        self.store
            .get_plugin(id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(id.to_string()))
    }

    /// One plugin with its versions and the accounts that use it.
    pub async fn show(&self, id: &str) -> Result<PluginView, RegistryError> {
        let record = self.record(id).await?;
        let versions = self
            .store
            .list_plugin_versions(id)
            .await?
            .into_iter()
            .map(|summary| VersionView {
                bundled: summary.trust == TRUST_BUNDLED,
                loaded: self.runtime.loaded_version(id, &summary.version),
                summary,
            })
            .collect();
        let accounts = self.store.accounts_using_connector(id).await?;
        Ok(PluginView {
            active: self.runtime.active(id).ok(),
            record,
            versions,
            accounts,
        })
    }

    /// Every plugin, by id.
    pub async fn list(&self) -> Result<Vec<PluginView>, RegistryError> {
        let mut views = Vec::new();
        for record in self.store.list_plugins().await? {
            views.push(self.show(&record.id).await?);
        }
        Ok(views)
    }
}

/// A plugin's first row, with `version` active.
fn first_record(id: String, version: String) -> PluginRecord {
    PluginRecord {
        id,
        active_version: Some(version),
        previous_version: None,
        disabled: false,
        updated_at: now_rfc3339(),
    }
}

/// Makes `version` the active one and the active one the previous (what a
/// rollback returns to); nothing changes when it is already active.
fn switch_active(record: &mut PluginRecord, version: String) {
    if record.active_version.as_deref() != Some(version.as_str()) {
        record.previous_version = record.active_version.replace(version);
        record.updated_at = now_rfc3339();
    }
}

fn bundled_record(
    plugin: &BundledPlugin,
    digest: &str,
    loaded: &LoadedPlugin,
) -> PluginVersionRecord {
    PluginVersionRecord {
        plugin_id: loaded.manifest.id.clone(),
        version: loaded.manifest.version.clone(),
        digest: digest.to_string(),
        publisher: loaded.manifest.publisher.clone(),
        trust: TRUST_BUNDLED.to_string(),
        signed_by: None,
        manifest_toml: plugin.manifest_toml.to_string(),
        package: None,
        installed_at: now_rfc3339(),
    }
}
