//! The plugin runtime: connectors as sandboxed WebAssembly components.
//!
//! One [`wasmtime::Engine`] and one [`Linker`] serve every plugin. Each
//! installed plugin is compiled once into an `InstancePre`; every call gets a
//! fresh `Store` and instance, so no state survives a call and a plugin that
//! misbehaves harms only the call it is in. Limits per call:
//! - CPU: an epoch ticker interrupts the guest once the time it has run
//!   (wall time minus time waiting in host imports, and minus time parked
//!   in the executor after yielding to other tasks) passes its budget;
//! - memory: a [`MemoryLimiter`] refuses growth past the cap;
//! - wall time: the whole call is dropped after `call_timeout`;
//! - output: oversized outcomes are rejected;
//! - concurrency: at most `max_concurrency` calls of a plugin hold an
//!   instance at once; the others queue for `queue_timeout`, then fail as
//!   [`PluginError::Busy`] (so a burst of calls to a big plugin cannot take
//!   the machine's memory).
//!
//! Instances come from wasmtime's pooling allocator: their memories, tables
//! and fiber stacks are slots reserved once and reset copy-on-write after
//! each call, so a fresh instance costs no mmap/munmap of its own.
//!
//! The registry maps a plugin id to an `Arc<LoadedPlugin>`; replacing the
//! entry swaps the version new calls get while calls in flight finish on
//! the instance they hold.

pub mod bindings;
mod compat;
mod exports;
mod host_imports;
pub mod manifest;
#[cfg(feature = "native-dummy")]
mod native;
mod wasi;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::{DashMap, DashSet};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use bindings::types::{
    Account, AccountCapabilities, AuthorizeRequest, CancelRequest, CaptureRequest, CompleteRequest,
    ConnectorError, ConnectorInfo, ModificationOutcome, Notification, NotificationOutcome,
    PaymentOutcome, PaymentRef, RefundRequest,
};
pub use bindings::ContractVersion;
use bindings::{v1_0, Plugin, PluginPre};
pub use compat::v1_0_capabilities as default_capabilities;
use exports::{Exports, ExportsV1_0, ExportsV1_1};
pub use host_imports::PluginCache;
use host_imports::{CallPolicy, CallState, MemoryLimiter, ParkedTime};
pub use manifest::PluginManifest;

use crate::egress::{Egress, EgressPolicy};
use crate::redact::{
    clean_external_text, clean_identifier, mask_card_numbers, MAX_IDENTIFIER_CHARS,
};

/// What an entry of a list in a plugin's answer (a form field) counts for in
/// the output size, on top of its strings: roughly its size in host memory.
const FIELD_OVERHEAD_BYTES: usize = 32;

/// How often the epoch advances; the granularity of CPU limits.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The operator's caps; a manifest may ask for less, never for more.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    pub max_memory_mb: u32,
    pub max_cpu_ms: u32,
    /// Wall time for a whole call, network included.
    pub call_timeout: Duration,
    /// Largest outcome a plugin may return, in bytes of strings and lists.
    pub max_output_bytes: usize,
    /// Most calls of one plugin running at once; a manifest's
    /// `[limits] max_concurrency` may ask for fewer.
    pub max_concurrency: u32,
    /// How long a call waits for a free slot (of its plugin, or of the
    /// instance pool) before failing as [`PluginError::Busy`].
    pub queue_timeout: Duration,
    /// Instances of all plugins together at once: the size of the pooling
    /// allocator's pool (each slot reserves address space, not memory).
    /// 0: no pool, each instance's memory and stack are mapped for it and
    /// unmapped after (slower; for hosts that cannot reserve the address
    /// space, and to measure what the pool saves).
    pub max_instances: u32,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            max_memory_mb: 64,
            max_cpu_ms: 1000,
            call_timeout: Duration::from_secs(60),
            max_output_bytes: 256 * 1024,
            max_concurrency: 64,
            queue_timeout: Duration::from_secs(2),
            max_instances: 512,
        }
    }
}

/// Why a plugin call did not produce an answer. These are the host's view
/// of a misbehaving plugin, distinct from a connector's own
/// [`ConnectorError`] (a PSP refusal or outage that the plugin reports).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("no plugin named {0:?} is installed")]
    NotInstalled(String),
    #[error("plugin {plugin} exceeded its CPU time limit of {limit_ms} ms")]
    CpuLimit { plugin: String, limit_ms: u32 },
    #[error("plugin {plugin} exceeded its memory limit of {limit_mb} MiB")]
    MemoryLimit { plugin: String, limit_mb: u32 },
    #[error("plugin {plugin} did not answer within {limit_ms} ms")]
    Timeout { plugin: String, limit_ms: u64 },
    #[error("plugin {plugin} returned an answer larger than {limit} bytes")]
    OutputTooLarge { plugin: String, limit: usize },
    /// An identifier in the answer (a provider reference, an event id)
    /// cannot be kept exactly as given; see [`clean_identifier`].
    #[error("plugin {plugin} returned an unusable {field}: it {reason}")]
    InvalidIdentifier {
        plugin: String,
        field: &'static str,
        reason: crate::redact::IdentifierError,
    },
    #[error("plugin {plugin} crashed: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} could not be loaded: {message}")]
    Load { plugin: String, message: String },
    #[error("plugin {0:?} is disabled by the operator")]
    Disabled(String),
    #[error("version {version} of plugin {plugin:?} is not loaded")]
    VersionNotLoaded { plugin: String, version: String },
    /// Every slot the call could run in stayed taken for `waited_ms`:
    /// nothing was sent to the provider, the caller may retry.
    #[error(
        "plugin {plugin} is busy: {limit} calls already running, none ended within {waited_ms} ms"
    )]
    Busy {
        plugin: String,
        limit: u32,
        waited_ms: u64,
    },
}

/// Call counters an operator watches.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
}

/// One installed plugin version, ready to instantiate.
pub struct LoadedPlugin {
    pub manifest: PluginManifest,
    pub info: ConnectorInfo,
    /// SHA-256 hex of the component bytes.
    pub digest: String,
    pub stats: PluginStats,
    /// How this version's compiled code was obtained, for operators.
    pub load: LoadReport,
    /// The contract version the component was built against (its export).
    pub contract: ContractVersion,
    /// The component, linked: every call instantiates it afresh.
    instance_pre: InstancePre<CallState>,
    /// Its exports, found and type-checked by the first call (`describe`,
    /// at load); later calls only look up the one they call.
    exports: OnceLock<Exports>,
    memory_mb: u32,
    cpu_ms: u32,
    /// The plugin's id, shared by every call's state.
    shared_id: Arc<str>,
    max_concurrency: u32,
    /// One permit per call allowed to run at once.
    slots: Arc<Semaphore>,
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn memory_limit_mb(&self) -> u32 {
        self.memory_mb
    }

    pub fn cpu_limit_ms(&self) -> u32 {
        self.cpu_ms
    }

    /// Most calls of this version running at once.
    pub fn concurrency_limit(&self) -> u32 {
        self.max_concurrency
    }

    /// Calls of this version running now.
    pub fn calls_running(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.max_concurrency.saturating_sub(free)
    }
}

/// How a plugin version's machine code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    /// Read from the on-disk compile cache rather than compiled.
    pub from_cache: bool,
    /// Time to compile or read it.
    pub millis: u64,
}

/// Which export to call, with its arguments.
enum Call {
    Describe,
    Capabilities(Account),
    ValidateConfig(Account),
    Authorize(Account, AuthorizeRequest),
    Complete(Account, CompleteRequest),
    Capture(Account, CaptureRequest),
    Cancel(Account, CancelRequest),
    Refund(Account, RefundRequest),
    Sync(Account, PaymentRef),
    HandleNotification(Account, Notification),
}

enum CallOutput {
    Describe(ConnectorInfo),
    Capabilities(Result<AccountCapabilities, ConnectorError>),
    Unit(Result<(), ConnectorError>),
    Payment(Result<PaymentOutcome, ConnectorError>),
    Modification(Result<ModificationOutcome, ConnectorError>),
    Notification(Result<NotificationOutcome, ConnectorError>),
}

/// The result of a connector operation: the host's verdict on the plugin
/// (outer) and the connector's own answer (inner).
pub type ConnectorResult<T> = Result<Result<T, ConnectorError>, PluginError>;

pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<CallState>,
    /// The version of each plugin that new calls get. Swapping an entry is
    /// how a version is activated: calls in flight keep the `Arc` they hold.
    plugins: DashMap<String, Arc<LoadedPlugin>>,
    /// Every loaded version, active or not, so activating one (or rolling
    /// back) needs no compilation.
    versions: DashMap<(String, String), Arc<LoadedPlugin>>,
    /// Plugins the operator disabled: their calls are refused.
    disabled: DashSet<String>,
    /// Where compiled components are kept across restarts.
    compile_cache: Option<PathBuf>,
    egress: Egress,
    cache: Arc<PluginCache>,
    limits: RuntimeLimits,
    /// One permit per slot of the instance pool.
    pool_slots: Arc<Semaphore>,
    ticker_stop: Arc<AtomicBool>,
    /// Bench-only: calls to the plugin `dummy` run its Rust code linked
    /// into the host (see `native.rs`).
    #[cfg(feature = "native-dummy")]
    native_dummy: bool,
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl PluginRuntime {
    pub fn new(limits: RuntimeLimits, egress: Egress) -> Result<Self, PluginError> {
        let load_error = |e: wasmtime::Error| PluginError::Load {
            plugin: "(runtime)".into(),
            message: e.to_string(),
        };
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // A deep recursion traps cleanly instead of exhausting the host stack.
        config.max_wasm_stack(512 * 1024);
        if limits.max_instances > 0 {
            config
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(&limits)));
        }
        let engine = Engine::new(&config).map_err(load_error)?;
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(load_error)?;
        // WASI 0.2, empty, for components whose toolchain imports it
        // (Python); a component that imports none of it pays nothing.
        wasi::add_to_linker(&mut linker).map_err(load_error)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = ticker_stop.clone();
        std::thread::Builder::new()
            .name("passerelle-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Load {
                plugin: "(runtime)".into(),
                message: format!("could not start the epoch ticker: {e}"),
            })?;

        Ok(Self {
            engine,
            linker,
            plugins: DashMap::new(),
            versions: DashMap::new(),
            disabled: DashSet::new(),
            compile_cache: None,
            egress,
            cache: Arc::new(PluginCache::default()),
            pool_slots: Arc::new(Semaphore::new(match limits.max_instances {
                0 => Semaphore::MAX_PERMITS,
                n => n as usize,
            })),
            limits,
            ticker_stop,
            #[cfg(feature = "native-dummy")]
            native_dummy: false,
        })
    }

    /// Bench-only (cargo feature `native-dummy`, `serve --native-dummy`):
    /// every call to the plugin `dummy`, whichever version is active, runs
    /// the dummy connector's Rust code linked into the host instead of its
    /// WebAssembly component, with the same host imports, slots, checks
    /// and metrics, and without the sandbox's limits.
    #[cfg(feature = "native-dummy")]
    pub fn with_native_dummy(mut self) -> Self {
        tracing::warn!(
            plugin = native::PLUGIN_ID,
            "bench-only build: calls to this plugin run its Rust code linked natively, outside the sandbox"
        );
        self.native_dummy = true;
        self
    }

    /// Keeps compiled components in `dir` (created if absent), so that a
    /// restart loads them instead of compiling again.
    pub fn with_compile_cache(mut self, dir: PathBuf) -> Self {
        self.compile_cache = Some(dir);
        self
    }

    /// Compiles and checks a plugin, then makes it the active version for
    /// its id. Returns the loaded plugin.
    pub async fn install(
        &self,
        manifest_toml: &str,
        component_bytes: &[u8],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let plugin = self.load(manifest_toml, component_bytes).await?;
        self.activate(plugin.id(), &plugin.manifest.version)
    }

    /// Compiles and checks a plugin version and keeps it ready, without
    /// making it active. Loading a version already loaded with the same
    /// manifest and component returns it; otherwise the new one replaces it.
    pub async fn load(
        &self,
        manifest_toml: &str,
        component_bytes: &[u8],
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let manifest = PluginManifest::parse(manifest_toml).map_err(|e| PluginError::Load {
            plugin: "(manifest)".into(),
            message: e.to_string(),
        })?;
        let plugin_id = manifest.id.clone();
        let load_error = |message: String| PluginError::Load {
            plugin: plugin_id.clone(),
            message,
        };
        let digest = hex::encode(Sha256::digest(component_bytes));
        let key = (plugin_id.clone(), manifest.version.clone());
        if let Some(loaded) = self.versions.get(&key) {
            if loaded.digest == digest && loaded.manifest == manifest {
                return Ok(loaded.clone());
            }
        }
        // Compilation is CPU-heavy: keep it off the async workers.
        let engine = self.engine.clone();
        let bytes = component_bytes.to_vec();
        let cache = self.compile_cache.clone();
        let cache_digest = digest.clone();
        let (component, load) = tokio::task::spawn_blocking(move || {
            compile_component(&engine, cache.as_deref(), &cache_digest, &bytes)
        })
        .await
        .map_err(|e| load_error(e.to_string()))?
        .map_err(|e| load_error(format!("{e:#}")))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_error(format!("{e:#}")))?;
        // The newest contract first; a component exporting an older one is
        // called through that version's bindings.
        let contract = match PluginPre::new(instance_pre.clone()) {
            Ok(_) => ContractVersion::V1_1,
            Err(newest) => match v1_0::PluginPre::new(instance_pre.clone()) {
                Ok(_) => ContractVersion::V1_0,
                Err(_) => return Err(load_error(format!("{newest:#}"))),
            },
        };
        let memory_mb = manifest.limits.memory_mb.min(self.limits.max_memory_mb);
        let cpu_ms = manifest.limits.cpu_ms.min(self.limits.max_cpu_ms);
        let max_concurrency = manifest
            .limits
            .max_concurrency
            .min(self.limits.max_concurrency)
            .max(1);
        let mut plugin = LoadedPlugin {
            info: ConnectorInfo {
                id: manifest.id.clone(),
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                operations: Vec::new(),
                payment_methods: Vec::new(),
                currencies: Vec::new(),
                credential_fields: Vec::new(),
            },
            manifest,
            digest,
            stats: PluginStats::default(),
            load,
            contract,
            instance_pre,
            exports: OnceLock::new(),
            memory_mb,
            cpu_ms,
            shared_id: Arc::from(plugin_id.as_str()),
            max_concurrency,
            slots: Arc::new(Semaphore::new(max_concurrency as usize)),
        };
        let plugin_ref = Arc::new(plugin);
        let described = {
            let _slot = self.wait_for_slot(&plugin_ref).await?;
            let nowhere = CallPolicy::Ready(EgressPolicy::default());
            self.invoke(&plugin_ref, None, nowhere, Call::Describe)
                .await?
        };
        let info = match described {
            CallOutput::Describe(info) => info,
            _ => return Err(load_error("describe returned the wrong type".into())),
        };
        // A package cannot claim one thing in its manifest (which the
        // operator reviewed and the publisher signed) and do another.
        plugin_ref
            .manifest
            .check_describe(&info)
            .map_err(|e| load_error(e.to_string()))?;
        plugin = Arc::try_unwrap(plugin_ref)
            .map_err(|_| load_error("plugin still referenced after describe".into()))?;
        plugin.info = info;
        let plugin = Arc::new(plugin);
        self.versions.insert(key, plugin.clone());
        tracing::info!(
            plugin = %plugin_id,
            version = %plugin.manifest.version,
            digest = %plugin.digest,
            from_cache = plugin.load.from_cache,
            millis = plugin.load.millis,
            "plugin version loaded"
        );
        if plugin.manifest.test_only {
            tracing::warn!(plugin = %plugin_id, "test-only plugin loaded: it is not meant for production");
        }
        Ok(plugin)
    }

    /// Makes a loaded version the one new calls get. Calls in flight finish
    /// on the version they started with.
    pub fn activate(&self, id: &str, version: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        let plugin =
            self.loaded_version(id, version)
                .ok_or_else(|| PluginError::VersionNotLoaded {
                    plugin: id.to_string(),
                    version: version.to_string(),
                })?;
        let previous = self.plugins.insert(id.to_string(), plugin.clone());
        tracing::info!(
            plugin = %id,
            version = %version,
            previous = previous.as_ref().map(|p| p.manifest.version.as_str()).unwrap_or("-"),
            "plugin version activated"
        );
        Ok(plugin)
    }

    /// The loaded version `version` of `id`, active or not.
    pub fn loaded_version(&self, id: &str, version: &str) -> Option<Arc<LoadedPlugin>> {
        self.versions
            .get(&(id.to_string(), version.to_string()))
            .map(|p| p.value().clone())
    }

    /// Forgets a loaded version unless it is the active one.
    pub fn unload(&self, id: &str, version: &str) {
        let active = self
            .plugins
            .get(id)
            .is_some_and(|p| p.manifest.version == version);
        if !active {
            self.versions.remove(&(id.to_string(), version.to_string()));
        }
    }

    /// Forgets a plugin entirely: new calls find it not installed.
    pub fn remove(&self, id: &str) {
        self.plugins.remove(id);
        self.versions.retain(|(plugin, _), _| plugin != id);
        self.disabled.remove(id);
        tracing::warn!(plugin = %id, "plugin removed");
    }

    /// Refuses (or accepts again) calls to a plugin.
    pub fn set_disabled(&self, id: &str, disabled: bool) {
        let changed = if disabled {
            self.disabled.insert(id.to_string())
        } else {
            self.disabled.remove(id).is_some()
        };
        if changed {
            tracing::warn!(plugin = %id, disabled, "plugin availability changed");
        }
    }

    pub fn is_disabled(&self, id: &str) -> bool {
        self.disabled.contains(id)
    }

    /// The active version of a plugin, for a call.
    pub fn get(&self, id: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        if self.disabled.contains(id) {
            return Err(PluginError::Disabled(id.to_string()));
        }
        self.active(id)
    }

    /// The active version of a plugin, disabled or not.
    pub fn active(&self, id: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.plugins
            .get(id)
            .map(|p| p.value().clone())
            .ok_or_else(|| PluginError::NotInstalled(id.to_string()))
    }

    /// The active version of every plugin, by id.
    pub fn list(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut plugins: Vec<_> = self.plugins.iter().map(|p| p.value().clone()).collect();
        plugins.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
        plugins
    }

    /// The egress policy for one account of `plugin`.
    pub fn policy_for(plugin: &LoadedPlugin, account: &Account) -> EgressPolicy {
        egress_policy(plugin, account.environment, account.base_url.as_deref())
    }

    pub async fn validate_config(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
    ) -> ConnectorResult<()> {
        match self
            .call_with_account(plugin, account, Call::ValidateConfig)
            .await?
        {
            CallOutput::Unit(r) => Ok(r),
            _ => Err(wrong_type(plugin)),
        }
    }

    /// What the provider allows around capture for this account. A 1.0.0
    /// component cannot say: the host assumes [`compat::v1_0_capabilities`].
    pub async fn capabilities(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
    ) -> ConnectorResult<AccountCapabilities> {
        if plugin.contract == ContractVersion::V1_0 {
            return Ok(Ok(compat::v1_0_capabilities()));
        }
        match self
            .call_with_account(plugin, account, Call::Capabilities)
            .await?
        {
            CallOutput::Capabilities(Ok(capabilities)) => {
                Ok(Ok(sanitize_capabilities(plugin, capabilities)?))
            }
            CallOutput::Capabilities(Err(e)) => Ok(Err(sanitize_error(e))),
            _ => Err(wrong_type(plugin)),
        }
    }

    pub async fn authorize(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        request: AuthorizeRequest,
    ) -> ConnectorResult<PaymentOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Authorize(a, request))
            .await?;
        self.payment_output(plugin, out)
    }

    pub async fn complete(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        request: CompleteRequest,
    ) -> ConnectorResult<PaymentOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Complete(a, request))
            .await?;
        self.payment_output(plugin, out)
    }

    pub async fn sync(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        payment: PaymentRef,
    ) -> ConnectorResult<PaymentOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Sync(a, payment))
            .await?;
        self.payment_output(plugin, out)
    }

    pub async fn capture(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        request: CaptureRequest,
    ) -> ConnectorResult<ModificationOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Capture(a, request))
            .await?;
        self.modification_output(plugin, out)
    }

    pub async fn cancel(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        request: CancelRequest,
    ) -> ConnectorResult<ModificationOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Cancel(a, request))
            .await?;
        self.modification_output(plugin, out)
    }

    pub async fn refund(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        request: RefundRequest,
    ) -> ConnectorResult<ModificationOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| Call::Refund(a, request))
            .await?;
        self.modification_output(plugin, out)
    }

    pub async fn handle_notification(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        notification: Notification,
    ) -> ConnectorResult<NotificationOutcome> {
        let out = self
            .call_with_account(plugin, account, |a| {
                Call::HandleNotification(a, notification)
            })
            .await?;
        match out {
            CallOutput::Notification(Ok(outcome)) => {
                let size: usize = outcome
                    .events
                    .iter()
                    .map(|e| {
                        e.event_id.len()
                            + e.connector_reference.len()
                            + e.merchant_reference.as_ref().map_or(0, String::len)
                            + e.provider_status.as_ref().map_or(0, String::len)
                            + 64
                    })
                    .sum::<usize>()
                    + outcome.response_body.len()
                    + outcome.response_content_type.len();
                self.check_output_size(plugin, size)?;
                Ok(Ok(sanitize_notification_outcome(plugin, outcome)?))
            }
            CallOutput::Notification(Err(e)) => Ok(Err(sanitize_error(e))),
            _ => Err(wrong_type(plugin)),
        }
    }

    fn payment_output(
        &self,
        plugin: &Arc<LoadedPlugin>,
        out: CallOutput,
    ) -> ConnectorResult<PaymentOutcome> {
        match out {
            CallOutput::Payment(Ok(outcome)) => {
                self.check_output_size(plugin, payment_outcome_size(&outcome))?;
                Ok(Ok(sanitize_payment_outcome(plugin, outcome)?))
            }
            CallOutput::Payment(Err(e)) => Ok(Err(sanitize_error(e))),
            _ => Err(wrong_type(plugin)),
        }
    }

    fn modification_output(
        &self,
        plugin: &Arc<LoadedPlugin>,
        out: CallOutput,
    ) -> ConnectorResult<ModificationOutcome> {
        match out {
            CallOutput::Modification(Ok(outcome)) => {
                let size = outcome.connector_reference.as_ref().map_or(0, String::len)
                    + outcome.provider_status.as_ref().map_or(0, String::len)
                    + match &outcome.status {
                        bindings::types::ModificationStatus::Refused(r) => {
                            r.code.len() + r.reason.len()
                        }
                        _ => 0,
                    };
                self.check_output_size(plugin, size)?;
                Ok(Ok(sanitize_modification_outcome(plugin, outcome)?))
            }
            CallOutput::Modification(Err(e)) => Ok(Err(sanitize_error(e))),
            _ => Err(wrong_type(plugin)),
        }
    }

    fn check_output_size(&self, plugin: &LoadedPlugin, size: usize) -> Result<(), PluginError> {
        if size > self.limits.max_output_bytes {
            plugin.stats.failures.fetch_add(1, Ordering::Relaxed);
            let error = PluginError::OutputTooLarge {
                plugin: plugin.id().to_string(),
                limit: self.limits.max_output_bytes,
            };
            tracing::error!(plugin = %plugin.id(), %error, "plugin call failed");
            return Err(error);
        }
        Ok(())
    }

    async fn call_with_account(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account: Account,
        make: impl FnOnce(Account) -> Call,
    ) -> Result<CallOutput, PluginError> {
        // Built on the call's first HTTP request, if any.
        let policy = CallPolicy::Account {
            plugin: plugin.clone(),
            environment: account.environment,
            base_url: account.base_url.clone(),
        };
        let account_id = account.id.clone();
        let _slot = self.wait_for_slot(plugin).await?;
        self.invoke(plugin, Some(account_id), policy, make(account))
            .await
    }

    /// Waits (at most `queue_timeout`) until the plugin runs fewer than its
    /// `max_concurrency` calls and the instance pool has a free slot; the
    /// permits are held for the whole call.
    async fn wait_for_slot(&self, plugin: &Arc<LoadedPlugin>) -> Result<CallSlot, PluginError> {
        let began = Instant::now();
        let acquire = async {
            let own = plugin.slots.clone().acquire_owned().await.ok()?;
            let pool = self.pool_slots.clone().acquire_owned().await.ok()?;
            Some(CallSlot {
                _own: own,
                _pool: pool,
            })
        };
        match tokio::time::timeout(self.limits.queue_timeout, acquire).await {
            Ok(Some(slot)) => Ok(slot),
            // A closed semaphore (never closed here) or the wait ran out.
            Ok(None) | Err(_) => {
                let error = PluginError::Busy {
                    plugin: plugin.id().to_string(),
                    limit: plugin.max_concurrency,
                    waited_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                tracing::warn!(plugin = %plugin.id(), %error, "plugin call refused");
                Err(error)
            }
        }
    }

    /// Runs one export on a fresh instance under the plugin's limits.
    async fn invoke(
        &self,
        plugin: &Arc<LoadedPlugin>,
        account_id: Option<String>,
        policy: CallPolicy,
        call: Call,
    ) -> Result<CallOutput, PluginError> {
        plugin.stats.calls.fetch_add(1, Ordering::Relaxed);
        let cpu_budget = Duration::from_millis(u64::from(plugin.cpu_ms));
        let state = CallState {
            plugin_id: plugin.shared_id.clone(),
            account_id,
            policy,
            egress: self.egress.clone(),
            cache: self.cache.clone(),
            limiter: MemoryLimiter::new(plugin.memory_mb as usize * 1024 * 1024),
            started: Instant::now(),
            host_time: Duration::ZERO,
            parked: Arc::new(ParkedTime::default()),
            cpu_budget,
            cpu_exceeded: false,
            http_requests: 0,
            log_bytes: 0,
            wasi: Default::default(),
        };
        let operation = call_operation(&call);
        // One span per plugin call: the request's child, the parent of
        // the call's egress requests (exported with --otlp-endpoint).
        let span = tracing::info_span!("plugin_call", plugin = %plugin.id(), operation);
        let started = state.started;
        #[cfg(feature = "native-dummy")]
        if self.native_dummy && plugin.id() == native::PLUGIN_ID {
            let run = native::run(plugin, state, call);
            let result = match tokio::time::timeout(self.limits.call_timeout, run)
                .instrument(span)
                .await
            {
                Ok(result) => result,
                Err(_) => Err(self.timeout_error(plugin)),
            };
            return finish_call(plugin, operation, started, result, None);
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.guest_time() >= state.cpu_budget {
                state.cpu_exceeded = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Yield to the executor at every tick so one busy plugin cannot
            // hog a worker thread. The time until the executor polls this
            // call again is other tasks' time, not the plugin's: it does not
            // count against the budget (else a plugin would be cut off early
            // whenever the server is busy).
            let parked = state.parked.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let began = Instant::now();
                    tokio::task::yield_now().await;
                    parked.add(began.elapsed());
                }),
            ))
        });

        let outcome = {
            let run = run_call(plugin, &mut store, call);
            tokio::time::timeout(self.limits.call_timeout, run)
                .instrument(span)
                .await
        };
        let result = match outcome {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(classify_failure(plugin, store.data(), error)),
            Err(_) => Err(self.timeout_error(plugin)),
        };
        let usage = CallUsage {
            guest_time: store.data().guest_time(),
            memory_peak_bytes: store.data().limiter.peak_bytes,
        };
        finish_call(plugin, operation, started, result, Some(usage))
    }

    fn timeout_error(&self, plugin: &LoadedPlugin) -> PluginError {
        PluginError::Timeout {
            plugin: plugin.id().to_string(),
            limit_ms: u64::try_from(self.limits.call_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What a sandboxed call used, for the metrics.
struct CallUsage {
    /// Time the plugin's own code ran (what its CPU limit counts).
    guest_time: Duration,
    /// The most linear memory its instance held at once.
    memory_peak_bytes: usize,
}

/// The end of every call: failures counted and logged, metrics. `usage` is
/// `None` for the bench-only native dummy, which has no sandbox to measure.
fn finish_call(
    plugin: &LoadedPlugin,
    operation: &'static str,
    started: Instant,
    result: Result<CallOutput, PluginError>,
    usage: Option<CallUsage>,
) -> Result<CallOutput, PluginError> {
    if let Err(error) = &result {
        plugin.stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(plugin = %plugin.id(), %error, "plugin call failed");
    }
    // Metrics (`crate::metrics`): per connector and operation.
    let (outcome, trap) = match &result {
        Ok(output) => (call_outcome(output), None),
        Err(error) => ("plugin_failed", Some(crate::metrics::trap_kind(error))),
    };
    let elapsed = started.elapsed();
    let metrics = &crate::metrics::METRICS;
    metrics.plugin_call(plugin.id(), operation, outcome, trap, elapsed);
    if let Some(usage) = usage {
        metrics.plugin_usage(
            plugin.id(),
            operation,
            usage.guest_time,
            usage.memory_peak_bytes,
        );
    }
    result
}

fn call_operation(call: &Call) -> &'static str {
    match call {
        Call::Describe => "describe",
        Call::Capabilities(..) => "capabilities",
        Call::ValidateConfig(..) => "validate_config",
        Call::Authorize(..) => "authorize",
        Call::Complete(..) => "complete",
        Call::Capture(..) => "capture",
        Call::Cancel(..) => "cancel",
        Call::Refund(..) => "refund",
        Call::Sync(..) => "sync",
        Call::HandleNotification(..) => "handle_notification",
    }
}

fn call_outcome(output: &CallOutput) -> &'static str {
    use crate::metrics::{error_kind, modification_status, payment_status};
    match output {
        CallOutput::Describe(_) => "succeeded",
        CallOutput::Capabilities(Ok(_)) | CallOutput::Unit(Ok(_)) => "succeeded",
        CallOutput::Notification(Ok(_)) => "verified",
        CallOutput::Payment(Ok(p)) => payment_status(&p.status),
        CallOutput::Modification(Ok(m)) => modification_status(&m.status),
        CallOutput::Capabilities(Err(e))
        | CallOutput::Unit(Err(e))
        | CallOutput::Payment(Err(e))
        | CallOutput::Modification(Err(e))
        | CallOutput::Notification(Err(e)) => error_kind(e.kind),
    }
}

/// The egress policy of `plugin` for an account in `environment` whose
/// base URL is `base_url`.
fn egress_policy(
    plugin: &LoadedPlugin,
    environment: bindings::types::Environment,
    base_url: Option<&str>,
) -> EgressPolicy {
    let hosts = match environment {
        bindings::types::Environment::Test => &plugin.manifest.egress.test,
        bindings::types::Environment::Live => &plugin.manifest.egress.live,
    };
    EgressPolicy::new(hosts, base_url)
}

/// The permits a running call holds: one of its plugin's, one of the pool's.
struct CallSlot {
    _own: OwnedSemaphorePermit,
    _pool: OwnedSemaphorePermit,
}

/// The pooling allocator's settings: `max_instances` component instances,
/// each with room for what the bundled connectors and a componentize-py
/// component use (one memory, up to a few tables, a dozen or more core
/// instances), every memory capped at the operator's memory limit.
fn pooling_config(limits: &RuntimeLimits) -> PoolingAllocationConfig {
    let instances = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(32))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memories_per_module(1)
        .max_tables_per_module(4)
        // The memory limiter refuses growth past the cap with a clear
        // error first; this only sizes the slots.
        .max_memory_size(limits.max_memory_mb as usize * 1024 * 1024)
        // A componentize-py interpreter's function table.
        .table_elements(100_000)
        .table_keep_resident(POOL_KEEP_RESIDENT_BYTES)
        .async_stack_keep_resident(POOL_KEEP_RESIDENT_BYTES);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // Linux 6.7+: after a call, the kernel lists the pages the call
        // wrote (PAGEMAP_SCAN) and only those are put back to the memory
        // image's contents, in place, so the next call finds them resident.
        // Without it the memory past the first 64 KiB is dropped with
        // madvise and every call page-faults it back in: with Rust's
        // layout (the stack's top at 1 MiB, data and heap above) the pages
        // a call touches all lie beyond the 64 KiB kept, while those 64 KiB,
        // the bottom of the stack, are seldom touched but reset every call.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(POOL_DIRTY_RESTORED_BYTES);
    } else {
        // Small memories are reset with memset rather than madvise.
        pool.linear_memory_keep_resident(POOL_KEEP_RESIDENT_BYTES);
    }
    pool
}

/// Bytes of each pooled memory (without PAGEMAP_SCAN), table and stack
/// reset in place after a call.
const POOL_KEEP_RESIDENT_BYTES: usize = 64 * 1024;

/// With PAGEMAP_SCAN, the most bytes of the pages a call wrote that are
/// restored in place; the rest of a memory is dropped with madvise. A Rust
/// connector writes well under 256 KiB per call; the cap bounds what an
/// idle slot keeps resident (the whole pool: `max_instances` times this).
const POOL_DIRTY_RESTORED_BYTES: usize = 1024 * 1024;

/// Compiles a component, or reads its compiled form from the cache.
///
/// Cache entries are named by the component's digest and a hash of the
/// engine's settings, so a changed component or an upgraded host never
/// reads stale code. They are written to a temporary file, then renamed, so
/// a crash never leaves half a file under the final name.
fn compile_component(
    engine: &Engine,
    cache: Option<&Path>,
    digest: &str,
    bytes: &[u8],
) -> wasmtime::Result<(Component, LoadReport)> {
    let started = Instant::now();
    let report = |from_cache| LoadReport {
        from_cache,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let Some(dir) = cache else {
        return Ok((Component::new(engine, bytes)?, report(false)));
    };
    let path = dir.join(format!("{digest}-{}.cwasm", engine_fingerprint(engine)));
    if path.is_file() {
        // SAFETY: `deserialize_file` trusts the file to be wasmtime's own
        // output. It is: only this function writes the cache, in the
        // operator's data directory (whoever can write there can also
        // rewrite the database). wasmtime still checks the header and the
        // engine settings, and a failure falls back to compiling.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok((component, report(true))),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unusable compiled plugin in the cache; compiling again");
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    let written = component.serialize().and_then(|compiled| {
        std::fs::create_dir_all(dir)?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, compiled)?;
        std::fs::rename(&temporary, &path)?;
        Ok(())
    });
    if let Err(error) = written {
        // The cache only saves time: a read-only data dir must not stop the host.
        tracing::warn!(path = %path.display(), %error, "could not cache the compiled plugin");
    }
    Ok((component, report(false)))
}

/// A short, stable name for the engine's compilation settings and version.
fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` uses fixed keys: the same settings give the same
    // name in every process of this build.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Instantiates the plugin's component in `store` and makes the call.
async fn run_call(
    plugin: &LoadedPlugin,
    store: &mut Store<CallState>,
    call: Call,
) -> wasmtime::Result<CallOutput> {
    let instance = plugin.instance_pre.instantiate_async(&mut *store).await?;
    let exports = match plugin.exports.get() {
        Some(exports) => exports,
        None => {
            let checked = Exports::check(plugin.contract, store, &instance)?;
            plugin.exports.get_or_init(|| checked)
        }
    };
    match exports {
        Exports::V1_1(exports) => run_call_v1_1(exports, store, &instance, call).await,
        Exports::V1_0(exports) => run_call_v1_0(exports, store, &instance, call).await,
    }
}

async fn run_call_v1_1(
    guest: &ExportsV1_1,
    store: &mut Store<CallState>,
    instance: &Instance,
    call: Call,
) -> wasmtime::Result<CallOutput> {
    let store = &mut *store;
    Ok(match call {
        Call::Describe => CallOutput::Describe(guest.describe.call(store, instance, ()).await?.0),
        Call::Capabilities(account) => CallOutput::Capabilities(
            guest
                .capabilities
                .call(store, instance, (account,))
                .await?
                .0,
        ),
        Call::ValidateConfig(account) => CallOutput::Unit(
            guest
                .validate_config
                .call(store, instance, (account,))
                .await?
                .0,
        ),
        Call::Authorize(account, request) => CallOutput::Payment(
            guest
                .authorize
                .call(store, instance, (account, request))
                .await?
                .0,
        ),
        Call::Complete(account, request) => CallOutput::Payment(
            guest
                .complete
                .call(store, instance, (account, request))
                .await?
                .0,
        ),
        Call::Capture(account, request) => CallOutput::Modification(
            guest
                .capture
                .call(store, instance, (account, request))
                .await?
                .0,
        ),
        Call::Cancel(account, request) => CallOutput::Modification(
            guest
                .cancel
                .call(store, instance, (account, request))
                .await?
                .0,
        ),
        Call::Refund(account, request) => CallOutput::Modification(
            guest
                .refund
                .call(store, instance, (account, request))
                .await?
                .0,
        ),
        Call::Sync(account, payment) => CallOutput::Payment(
            guest
                .sync
                .call(store, instance, (account, payment))
                .await?
                .0,
        ),
        Call::HandleNotification(account, notification) => CallOutput::Notification(
            guest
                .handle_notification
                .call(store, instance, (account, notification))
                .await?
                .0,
        ),
    })
}

/// The same calls on a 1.0.0 component: requests converted down, answers up.
async fn run_call_v1_0(
    guest: &ExportsV1_0,
    store: &mut Store<CallState>,
    instance: &Instance,
    call: Call,
) -> wasmtime::Result<CallOutput> {
    let store = &mut *store;
    Ok(match call {
        Call::Describe => CallOutput::Describe(compat::connector_info(
            guest.describe.call(store, instance, ()).await?.0,
        )),
        // Answered by the host without a call (see `capabilities`).
        Call::Capabilities(_) => CallOutput::Capabilities(Ok(compat::v1_0_capabilities())),
        Call::ValidateConfig(account) => CallOutput::Unit(compat::unit_result(
            guest
                .validate_config
                .call(store, instance, (compat::account(&account),))
                .await?
                .0,
        )),
        Call::Authorize(account, request) => CallOutput::Payment(compat::payment_result(
            guest
                .authorize
                .call(
                    store,
                    instance,
                    (
                        compat::account(&account),
                        compat::authorize_request(&request),
                    ),
                )
                .await?
                .0,
        )),
        Call::Complete(account, request) => CallOutput::Payment(compat::payment_result(
            guest
                .complete
                .call(
                    store,
                    instance,
                    (
                        compat::account(&account),
                        compat::complete_request(&request),
                    ),
                )
                .await?
                .0,
        )),
        Call::Capture(account, request) => CallOutput::Modification(compat::modification_result(
            guest
                .capture
                .call(
                    store,
                    instance,
                    (compat::account(&account), compat::capture_request(&request)),
                )
                .await?
                .0,
        )),
        Call::Cancel(account, request) => CallOutput::Modification(compat::modification_result(
            guest
                .cancel
                .call(
                    store,
                    instance,
                    (compat::account(&account), compat::cancel_request(&request)),
                )
                .await?
                .0,
        )),
        Call::Refund(account, request) => CallOutput::Modification(compat::modification_result(
            guest
                .refund
                .call(
                    store,
                    instance,
                    (compat::account(&account), compat::refund_request(&request)),
                )
                .await?
                .0,
        )),
        Call::Sync(account, payment) => CallOutput::Payment(compat::payment_result(
            guest
                .sync
                .call(
                    store,
                    instance,
                    (compat::account(&account), compat::payment_ref(&payment)),
                )
                .await?
                .0,
        )),
        Call::HandleNotification(account, notification) => {
            CallOutput::Notification(compat::notification_result(
                guest
                    .handle_notification
                    .call(
                        store,
                        instance,
                        (
                            compat::account(&account),
                            compat::notification(&notification),
                        ),
                    )
                    .await?
                    .0,
            ))
        }
    })
}

fn classify_failure(
    plugin: &LoadedPlugin,
    state: &CallState,
    error: wasmtime::Error,
) -> PluginError {
    let name = plugin.id().to_string();
    if state.cpu_exceeded || matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return PluginError::CpuLimit {
            plugin: name,
            limit_ms: plugin.cpu_ms,
        };
    }
    if state.limiter.exceeded {
        return PluginError::MemoryLimit {
            plugin: name,
            limit_mb: plugin.memory_mb,
        };
    }
    let message = match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow".to_string(),
        Some(Trap::UnreachableCodeReached) => {
            "unreachable code reached (a panic in the plugin)".to_string()
        }
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    PluginError::Trap {
        plugin: name,
        message: mask_card_numbers(&message),
    }
}

fn wrong_type(plugin: &LoadedPlugin) -> PluginError {
    PluginError::Trap {
        plugin: plugin.id().to_string(),
        message: "internal: export returned an unexpected type".into(),
    }
}

/// A connector's error text reaches logs and the database: mask any card
/// number a buggy plugin put in it.
fn sanitize_error(mut error: ConnectorError) -> ConnectorError {
    error.message = clean_external_text(&error.message, 1000);
    error.code = clean_external_text(&error.code, 100);
    error.field = error.field.map(|f| clean_external_text(&f, 100));
    error
}

/// Keeps an identifier from a plugin exactly, or fails the call.
///
/// References are the keys of every later capture, refund, sync and
/// notification, so they are never masked or shortened (see
/// [`clean_identifier`]). One that cannot be kept as is fails the call like
/// any other malformed answer: for an authorization the payment then waits
/// in `processing` with the plugin's fault shown, which an operator can act
/// on, instead of holding a reference that silently points nowhere.
fn identifier(
    plugin: &LoadedPlugin,
    field: &'static str,
    value: String,
) -> Result<String, PluginError> {
    clean_identifier(&value, MAX_IDENTIFIER_CHARS).map_err(|reason| {
        plugin.stats.failures.fetch_add(1, Ordering::Relaxed);
        let error = PluginError::InvalidIdentifier {
            plugin: plugin.id().to_string(),
            field,
            reason,
        };
        tracing::error!(plugin = %plugin.id(), %error, "plugin call failed");
        error
    })
}

fn optional_identifier(
    plugin: &LoadedPlugin,
    field: &'static str,
    value: Option<String>,
) -> Result<Option<String>, PluginError> {
    value.map(|v| identifier(plugin, field, v)).transpose()
}

fn sanitize_refusal(refusal: &mut bindings::types::Refusal) {
    refusal.code = clean_external_text(&refusal.code, 100);
    refusal.reason = clean_external_text(&refusal.reason, 1000);
}

fn sanitize_payment_status(status: &mut bindings::types::PaymentStatus) {
    if let bindings::types::PaymentStatus::Refused(refusal) = status {
        sanitize_refusal(refusal);
    }
}

fn sanitize_modification_status(status: &mut bindings::types::ModificationStatus) {
    if let bindings::types::ModificationStatus::Refused(refusal) = status {
        sanitize_refusal(refusal);
    }
}

/// Strings a connector returns reach the database and the API: free text is
/// cleaned (card numbers masked), identifiers are kept exactly or refused.
fn sanitize_payment_outcome(
    plugin: &LoadedPlugin,
    mut outcome: PaymentOutcome,
) -> Result<PaymentOutcome, PluginError> {
    sanitize_payment_status(&mut outcome.status);
    outcome.connector_reference =
        optional_identifier(plugin, "connector_reference", outcome.connector_reference)?;
    // A status code for operators, never a key: masking costs nothing.
    outcome.provider_status = outcome
        .provider_status
        .map(|s| clean_external_text(&s, 200));
    outcome.connector_data = outcome.connector_data.map(|s| s.replace('\0', ""));
    Ok(outcome)
}

fn sanitize_modification_outcome(
    plugin: &LoadedPlugin,
    mut outcome: ModificationOutcome,
) -> Result<ModificationOutcome, PluginError> {
    sanitize_modification_status(&mut outcome.status);
    outcome.connector_reference =
        optional_identifier(plugin, "connector_reference", outcome.connector_reference)?;
    outcome.provider_status = outcome
        .provider_status
        .map(|s| clean_external_text(&s, 200));
    Ok(outcome)
}

fn sanitize_notification_outcome(
    plugin: &LoadedPlugin,
    mut outcome: NotificationOutcome,
) -> Result<NotificationOutcome, PluginError> {
    use bindings::types::NotificationEventKind as Kind;
    for e in &mut outcome.events {
        // The event id deduplicates deliveries and the references find the
        // payment and refund: all identifiers.
        e.event_id = identifier(plugin, "event_id", std::mem::take(&mut e.event_id))?;
        e.connector_reference = identifier(
            plugin,
            "connector_reference",
            std::mem::take(&mut e.connector_reference),
        )?;
        e.merchant_reference =
            optional_identifier(plugin, "merchant_reference", e.merchant_reference.take())?;
        match &mut e.kind {
            Kind::Payment(status) => sanitize_payment_status(status),
            Kind::Capture(status) | Kind::Cancel(status) => sanitize_modification_status(status),
            Kind::Refund((reference, status)) => {
                *reference = identifier(plugin, "refund reference", std::mem::take(reference))?;
                sanitize_modification_status(status);
            }
            Kind::Other(text) => *text = clean_external_text(text, 200),
        }
        e.provider_status = e
            .provider_status
            .as_deref()
            .map(|s| clean_external_text(s, 200));
    }
    Ok(outcome)
}

/// Bounds what a plugin declares: the first 32 validity entries, each with a
/// clean method name and a validity between one hour and a year; a native
/// delay of at most a year.
fn sanitize_capabilities(
    plugin: &LoadedPlugin,
    mut capabilities: AccountCapabilities,
) -> Result<AccountCapabilities, PluginError> {
    const MAX_HOURS: u32 = 366 * 24;
    capabilities.authorization_validity.truncate(32);
    for validity in &mut capabilities.authorization_validity {
        validity.payment_method = identifier(
            plugin,
            "authorization validity method",
            std::mem::take(&mut validity.payment_method),
        )?;
        validity.hours = validity.hours.clamp(1, MAX_HOURS);
    }
    capabilities.native_capture_delay_max_hours = capabilities
        .native_capture_delay_max_hours
        .filter(|hours| *hours > 0)
        .map(|hours| hours.min(MAX_HOURS));
    Ok(capabilities)
}

fn payment_outcome_size(outcome: &PaymentOutcome) -> usize {
    use bindings::types::PaymentStatus;
    let status = match &outcome.status {
        // Each form field also costs the host memory of its own, however
        // short its strings: count it, so a flood of empty fields is too large.
        PaymentStatus::RequiresAction(redirect) => {
            redirect.url.len()
                + redirect
                    .form
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + FIELD_OVERHEAD_BYTES)
                    .sum::<usize>()
        }
        PaymentStatus::Refused(refusal) => refusal.code.len() + refusal.reason.len(),
        _ => 0,
    };
    status
        + outcome.connector_reference.as_ref().map_or(0, String::len)
        + outcome.provider_status.as_ref().map_or(0, String::len)
        + outcome.connector_data.as_ref().map_or(0, String::len)
}
