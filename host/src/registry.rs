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
//!
//! A plugin id belongs to one publisher: the one of its first install (the
//! project's own for bundled connectors). Accounts name a plugin id, so
//! whoever ships a version of an id receives its accounts' credentials and
//! card data: a package of another publisher, or an unverified one
//! (development mode) over an id whose packages were verified, is refused.
//! For the same reason the credential fields any version ever declared
//! secret are recorded, and stay secret whatever a later version says.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::bundled::BundledPlugin;
use crate::crypto::now_rfc3339;
use crate::package::{Package, PackageError, PackagePolicy, Trust};
use crate::runtime::manifest::PluginManifest;
use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime};
use crate::store::models::PluginPublisherRecord;
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
    #[error(
        "plugin {plugin:?} belongs to publisher {owner:?} (the publisher of its first \
         install); this package is publisher {publisher:?}'s. A plugin id keeps its \
         publisher: publish under another id"
    )]
    PublisherMismatch {
        plugin: String,
        owner: String,
        publisher: String,
    },
    #[error(
        "plugin {plugin:?} belongs to publisher {owner:?}, whose packages are verified \
         ({owner_trust}); an {trust} package cannot prove it is theirs: sign it with a \
         key trusted for {owner:?}"
    )]
    PublisherUnverified {
        plugin: String,
        owner: String,
        owner_trust: String,
        trust: String,
    },
    #[error("version {version} of plugin {plugin:?} cannot be loaded: {message}")]
    Unloadable {
        plugin: String,
        version: String,
        message: String,
    },
}

/// How far a package proves who published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// Compiled into the binary: the project's own.
    Bundled,
    /// Signed by a key the operator trusts for its publisher.
    Signed,
    /// Development mode: unsigned, or signed by a key nobody trusts (its
    /// publisher is only what its manifest claims).
    Unverified,
}

impl Proof {
    /// From a stored `trust` (of a version or of an owner); anything not
    /// known to be verified counts as unverified.
    fn parse(trust: &str) -> Proof {
        match trust {
            TRUST_BUNDLED => Proof::Bundled,
            "signed" => Proof::Signed,
            _ => Proof::Unverified,
        }
    }

    fn of(trust: &Trust) -> Proof {
        match trust {
            Trust::Signed { .. } => Proof::Signed,
            Trust::Unsigned | Trust::Untrusted { .. } => Proof::Unverified,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Proof::Bundled => TRUST_BUNDLED,
            Proof::Signed => "signed",
            Proof::Unverified => "unverified",
        }
    }

    fn verified(self) -> bool {
        self != Proof::Unverified
    }
}

/// Who a package (or a stored version) says it comes from, and how far
/// that is proven.
#[derive(Debug, Clone)]
struct Claim {
    publisher: String,
    proof: Proof,
    /// The trusted key that signed it, when `proof` is `Signed`.
    key_id: Option<String>,
}

impl Claim {
    fn of(publisher: &str, trust: &Trust) -> Claim {
        Claim {
            publisher: publisher.to_string(),
            proof: Proof::of(trust),
            key_id: match trust {
                Trust::Signed { key_id, .. } => Some(key_id.clone()),
                Trust::Unsigned | Trust::Untrusted { .. } => None,
            },
        }
    }

    /// The owner record binding `plugin_id` to this claim's publisher.
    fn owner_record(&self, plugin_id: &str) -> PluginPublisherRecord {
        PluginPublisherRecord {
            plugin_id: plugin_id.to_string(),
            publisher: self.publisher.clone(),
            trust: self.proof.as_str().to_string(),
            signed_by: self.key_id.clone(),
            bound_at: now_rfc3339(),
        }
    }
}

/// Whether a package of `claim` may be a version of `owner`'s plugin: the
/// same publisher, and proven at least as well when the owner's packages
/// were verified (a development-mode install cannot replace them).
fn check_owner(owner: &PluginPublisherRecord, claim: &Claim) -> Result<(), RegistryError> {
    if owner.publisher != claim.publisher {
        return Err(RegistryError::PublisherMismatch {
            plugin: owner.plugin_id.clone(),
            owner: owner.publisher.clone(),
            publisher: claim.publisher.clone(),
        });
    }
    if Proof::parse(&owner.trust).verified() && !claim.proof.verified() {
        return Err(RegistryError::PublisherUnverified {
            plugin: owner.plugin_id.clone(),
            owner: owner.publisher.clone(),
            owner_trust: owner.trust.clone(),
            trust: claim.proof.as_str().to_string(),
        });
    }
    Ok(())
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
        registry.record_owners().await?;
        registry.refresh().await?;
        Ok(registry)
    }

    /// Gives every plugin recorded before ids had owners its owner (see
    /// [`owner`](Self::owner)), and records the secret credential fields
    /// its stored versions' manifests declare.
    async fn record_owners(&self) -> Result<(), RegistryError> {
        for record in self.store.list_plugins().await? {
            self.owner(&record.id).await?;
        }
        let mut secret: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, manifest_toml) in self.store.list_plugin_version_manifests().await? {
            // A manifest that no longer parses cannot be loaded either.
            let Ok(manifest) = PluginManifest::parse(&manifest_toml) else {
                continue;
            };
            secret.entry(id).or_default().extend(
                manifest
                    .credentials
                    .into_iter()
                    .flatten()
                    .filter(|field| field.secret)
                    .map(|field| field.name),
            );
        }
        for (id, fields) in secret {
            if !fields.is_empty() {
                self.store
                    .add_plugin_secret_fields(&id, fields.into_iter().collect(), now_rfc3339())
                    .await?;
            }
        }
        Ok(())
    }

    /// The publisher that owns `id`. A plugin installed before ids had
    /// owners gets the one of its oldest stored version. `None`: no
    /// version of `id` was ever installed (or it was removed with no
    /// account left on it).
    async fn owner(&self, id: &str) -> Result<Option<PluginPublisherRecord>, RegistryError> {
        if let Some(owner) = self.store.get_plugin_publisher(id).await? {
            return Ok(Some(owner));
        }
        let Some(first) = self
            .store
            .list_plugin_versions(id)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let proof = Proof::parse(&first.trust);
        let claim = Claim {
            publisher: first.publisher,
            proof,
            key_id: first.signed_by.filter(|_| proof == Proof::Signed),
        };
        self.bind(claim.owner_record(id)).await.map(Some)
    }

    /// Records `owner` unless the id has one already; returns the one in
    /// force (another node may have bound the id first).
    async fn bind(
        &self,
        owner: PluginPublisherRecord,
    ) -> Result<PluginPublisherRecord, RegistryError> {
        match self.store.insert_plugin_publisher(owner.clone()).await {
            Ok(()) => {
                tracing::info!(plugin = %owner.plugin_id, publisher = %owner.publisher, trust = %owner.trust, "plugin id bound to its publisher");
                Ok(owner)
            }
            Err(StoreError::Duplicate) => self
                .store
                .get_plugin_publisher(&owner.plugin_id)
                .await?
                // Bound, then forgotten by a removal at the same instant.
                .ok_or(RegistryError::Store(StoreError::Conflict)),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds the credential fields `plugin` declares secret to those of its
    /// id, before it can serve: a value written while its field is secret
    /// must stay masked whatever a later version declares.
    async fn record_secret_fields(&self, plugin: &LoadedPlugin) -> Result<(), RegistryError> {
        let fields: Vec<String> = plugin
            .info
            .credential_fields
            .iter()
            .filter(|field| field.secret)
            .map(|field| field.name.clone())
            .collect();
        if !fields.is_empty() {
            self.store
                .add_plugin_secret_fields(plugin.id(), fields, now_rfc3339())
                .await?;
        }
        Ok(())
    }

    /// Every credential field some version of `id` declared secret, as far
    /// as this host has seen (the admin API masks them all).
    pub async fn secret_fields(&self, id: &str) -> Result<BTreeSet<String>, RegistryError> {
        Ok(self
            .store
            .plugin_secret_fields(id)
            .await?
            .into_iter()
            .collect())
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
            // The id is the project's own, unless the database says it was
            // someone else's first: then it stays theirs, and this binary's
            // version will not load for it.
            let bundled = Claim {
                publisher: loaded.manifest.publisher.clone(),
                proof: Proof::Bundled,
                key_id: None,
            };
            let owner = self.bind(bundled.owner_record(id)).await?;
            if owner.publisher != bundled.publisher {
                tracing::warn!(plugin = %id, owner = %owner.publisher, bundled = %bundled.publisher, "a bundled connector's id belongs to another publisher; the bundled version is not used");
            }
            self.record_secret_fields(&loaded).await?;
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
        // A version recorded before ids had owners, or by a node that did
        // not check them, is not served for someone else's id.
        let owner = self.owner(id).await?;
        let check = |claim: &Claim| match &owner {
            Some(owner) => check_owner(owner, claim).map_err(|e| unloadable(e.to_string())),
            None => Ok(()),
        };
        let Some(bytes) = record.package else {
            check(&Claim {
                publisher: record.publisher.clone(),
                proof: Proof::Bundled,
                key_id: None,
            })?;
            // A bundled version this binary does not carry (an older build's).
            let loaded = match self.bundled.get(&version_key(id, version)) {
                Some(plugin) => {
                    self.runtime
                        .load(plugin.manifest_toml, plugin.component)
                        .await?
                }
                None => {
                    return Err(unloadable(
                        "it was bundled with another build of the server".into(),
                    ))
                }
            };
            self.record_secret_fields(&loaded).await?;
            return Ok(loaded);
        };
        let package = Package::from_bytes(&bytes)?;
        if package.digest() != record.digest {
            return Err(unloadable(
                "the stored package does not match its digest".into(),
            ));
        }
        // Checked as it is now: a key the operator removed proves nothing.
        let trust = self.policy.verify(&package)?;
        check(&Claim::of(&package.manifest.publisher, &trust))?;
        let loaded = self
            .runtime
            .load(&package.manifest_toml, &package.component)
            .await?;
        self.record_secret_fields(&loaded).await?;
        Ok(loaded)
    }

    /// Installs a package: verifies its signature and that its publisher
    /// owns the plugin id (or binds a new id to it), loads it (compiles it
    /// and checks that the component is what its manifest says), then
    /// records it. Nothing is recorded when the package is refused (a
    /// database failure while recording a new id's first version may leave
    /// the id bound to the package's publisher, who can install it again).
    /// The version becomes active when `activate` is set or when the plugin
    /// has no active version yet.
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
        let claim = Claim::of(&manifest.publisher, &trust);
        let _guard = self.actions.lock().await;

        // Before anything else: whose id this is matters more than whether
        // the version is new.
        let owner = self.owner(&id).await?;
        if let Some(owner) = &owner {
            check_owner(owner, &claim)?;
        }
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
        let loaded = self
            .runtime
            .load(&package.manifest_toml, &package.component)
            .await?;
        // Forgets the version just loaded (unless it serves already) when
        // the install stops after loading it.
        let unload = || {
            if self
                .runtime
                .active(&id)
                .map_or(true, |p| p.manifest.version != version)
            {
                self.runtime.unload(&id, &version);
            }
        };
        let owned = match owner {
            // The first install binds the id; another node may have bound
            // it meanwhile, to a publisher this package must then match.
            None => self
                .bind(claim.owner_record(&id))
                .await
                .and_then(|owner| check_owner(&owner, &claim)),
            // A verified package of an owner known only from unverified
            // ones makes the id verified: unsigned packages stop there.
            Some(owner) if !Proof::parse(&owner.trust).verified() && claim.proof.verified() => self
                .store
                .update_plugin_publisher(PluginPublisherRecord {
                    bound_at: owner.bound_at,
                    ..claim.owner_record(&id)
                })
                .await
                .map_err(RegistryError::from),
            Some(_) => Ok(()),
        };
        let recorded = match owned {
            Ok(()) => self.record_secret_fields(&loaded).await,
            Err(e) => Err(e),
        };
        if let Err(error) = recorded {
            unload();
            return Err(error);
        }
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
                unload();
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
        if accounts.is_empty() {
            // No credentials are left for another publisher to receive: the
            // id is free again.
            self.store.delete_plugin_ownership(id).await?;
        } else {
            // The accounts' credentials stay bound to the id's publisher: a
            // reinstall must come from the same one.
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
