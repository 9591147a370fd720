//! What the host gives a plugin during one call: the contract's imports.
//!
//! Each call owns a fresh [`CallState`]; nothing leaks from one call, one
//! account or one plugin to another except through the per-account cache,
//! whose keys the host scopes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use wasmtime::ResourceLimiter;

use super::bindings::v1_1::passerelle::connector::{cache, clock, http, log, random, types};
use super::wasi::WasiState;
use super::LoadedPlugin;
use crate::egress::{Egress, EgressPolicy};
use crate::redact::mask_card_numbers;

/// Most HTTP requests a plugin may make in one call.
const MAX_HTTP_REQUESTS_PER_CALL: u32 = 16;
/// Most log bytes a plugin may write in one call; the rest is dropped.
const MAX_LOG_BYTES_PER_CALL: usize = 64 * 1024;
const MAX_RANDOM_BYTES: u32 = 1024;
const MAX_CACHE_VALUE_BYTES: usize = 16 * 1024;
const MAX_CACHE_KEY_BYTES: usize = 256;
/// Entries all plugins together may keep.
const MAX_CACHE_ENTRIES: usize = 100_000;
/// Entries one plugin may keep for one account: what a sender can make a
/// connector store (a certificate URL, say) cannot crowd out the others.
const MAX_CACHE_ENTRIES_PER_SCOPE: usize = 256;
/// Bytes (keys and values) all plugins together may keep.
const MAX_CACHE_BYTES: usize = 64 * 1024 * 1024;
const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A cache shared by all plugins, keyed by plugin, account and the plugin's
/// key, with a quota per (plugin, account) scope and a bound on its bytes.
#[derive(Default)]
pub struct PluginCache {
    entries: DashMap<String, CacheEntry>,
    /// Entries per scope (`plugin \0 account`).
    per_scope: DashMap<String, usize>,
    bytes: std::sync::atomic::AtomicUsize,
}

struct CacheEntry {
    value: String,
    expires: Instant,
    scope: String,
}

impl CacheEntry {
    fn size(&self, key: &str) -> usize {
        key.len() + self.value.len()
    }
}

impl PluginCache {
    fn get(&self, key: &str) -> Option<String> {
        let hit = self
            .entries
            .get(key)
            .map(|e| (e.value().value.clone(), e.value().expires));
        match hit {
            Some((value, expires)) if expires > Instant::now() => Some(value),
            Some(_) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    fn remove(&self, key: &str) {
        if let Some((key, entry)) = self.entries.remove(key) {
            self.forget(&key, &entry);
        }
    }

    /// Accounts for an entry that left the map.
    fn forget(&self, key: &str, entry: &CacheEntry) {
        use std::sync::atomic::Ordering;
        self.bytes.fetch_sub(entry.size(key), Ordering::Relaxed);
        if let Some(mut count) = self.per_scope.get_mut(&entry.scope) {
            *count = count.saturating_sub(1);
        }
    }

    /// Drops every expired entry.
    fn purge_expired(&self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.value().expires <= now)
            .map(|e| e.key().clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    /// Stores `value` unless its scope is at its quota or the cache at its
    /// size (after expired entries are dropped); `false` if not stored.
    fn set(&self, scope: String, key: String, value: String, ttl: Duration) -> bool {
        use std::sync::atomic::Ordering;
        // Replacing an entry frees its room first.
        self.remove(&key);
        let size = key.len() + value.len();
        let full = |cache: &Self| {
            cache.entries.len() >= MAX_CACHE_ENTRIES
                || cache.bytes.load(Ordering::Relaxed) + size > MAX_CACHE_BYTES
                || cache
                    .per_scope
                    .get(&scope)
                    .is_some_and(|c| *c >= MAX_CACHE_ENTRIES_PER_SCOPE)
        };
        if full(self) {
            self.purge_expired();
            if full(self) {
                return false;
            }
        }
        *self.per_scope.entry(scope.clone()).or_insert(0) += 1;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        let entry = CacheEntry {
            value,
            expires: Instant::now() + ttl,
            scope,
        };
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            // A concurrent set of the same key: account for the one replaced.
            self.forget(&key, &old);
        }
        true
    }
}

/// Caps the memory and tables a plugin instance may grow to, records that
/// it tried to exceed them (so the error says "memory limit", not a bare
/// trap), and the most linear memory the instance held at once (the
/// `passerelle_plugin_memory_peak_bytes` metric).
pub struct MemoryLimiter {
    pub max_memory_bytes: usize,
    pub exceeded: bool,
    /// All the instance's linear memories together, now and at most. Each
    /// memory's creation counts (wasmtime reports it as a growth from 0).
    pub held_bytes: usize,
    pub peak_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(max_memory_bytes: usize) -> MemoryLimiter {
        MemoryLimiter {
            max_memory_bytes,
            exceeded: false,
            held_bytes: 0,
            peak_bytes: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "plugin memory limit of {} bytes exceeded",
                self.max_memory_bytes
            ));
        }
        self.held_bytes = self
            .held_bytes
            .saturating_add(desired.saturating_sub(current));
        self.peak_bytes = self.peak_bytes.max(self.held_bytes);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Nanoseconds a call spent parked in the executor. Shared with the yield
/// future of the epoch callback, which cannot borrow the store.
#[derive(Debug, Default)]
pub struct ParkedTime(AtomicU64);

impl ParkedTime {
    pub fn add(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Where a call's HTTP requests may go. An account's policy is built on the
/// call's first request (it parses the manifest's hosts and the account's
/// base URL), as most calls (a configuration check, a notification) make
/// none.
pub enum CallPolicy {
    Ready(EgressPolicy),
    Account {
        plugin: Arc<LoadedPlugin>,
        environment: types::Environment,
        base_url: Option<String>,
    },
}

impl CallPolicy {
    fn get(&mut self) -> &EgressPolicy {
        if let CallPolicy::Account {
            plugin,
            environment,
            base_url,
        } = self
        {
            *self = CallPolicy::Ready(super::egress_policy(
                plugin,
                *environment,
                base_url.as_deref(),
            ));
        }
        match self {
            CallPolicy::Ready(policy) => policy,
            CallPolicy::Account { .. } => unreachable!("the policy was built above"),
        }
    }
}

/// Everything one plugin call may touch.
pub struct CallState {
    pub plugin_id: Arc<str>,
    pub account_id: Option<String>,
    pub policy: CallPolicy,
    pub egress: Egress,
    pub cache: Arc<PluginCache>,
    pub limiter: MemoryLimiter,
    pub started: Instant,
    /// Time spent inside host imports (network waits), which does not count
    /// against the plugin's CPU budget.
    pub host_time: Duration,
    /// Time the call spent parked after yielding to the executor (waiting for
    /// a worker thread while other tasks ran), which does not count either.
    pub parked: Arc<ParkedTime>,
    pub cpu_budget: Duration,
    pub cpu_exceeded: bool,
    pub http_requests: u32,
    pub log_bytes: usize,
    /// WASI for components that import it (see `wasi.rs`): empty, built on
    /// first use.
    pub wasi: WasiState,
}

impl CallState {
    /// Time the plugin itself has run so far: wall time minus the time in
    /// host imports and parked in the executor.
    pub fn guest_time(&self) -> Duration {
        self.started
            .elapsed()
            .saturating_sub(self.host_time)
            .saturating_sub(self.parked.get())
    }

    fn cache_key(&self, key: &str) -> String {
        format!("{}\u{0}{key}", self.cache_scope())
    }

    /// The plugin and account whose quota an entry counts against.
    fn cache_scope(&self) -> String {
        format!(
            "{}\u{0}{}",
            self.plugin_id,
            self.account_id.as_deref().unwrap_or("")
        )
    }
}

impl wasmtime_wasi::WasiView for CallState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.wasi.view(&self.plugin_id)
    }
}

impl types::Host for CallState {}

impl http::Host for CallState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        self.http_requests += 1;
        if self.http_requests > MAX_HTTP_REQUESTS_PER_CALL {
            return Ok(Err(http::HttpError::Denied(format!(
                "at most {MAX_HTTP_REQUESTS_PER_CALL} HTTP requests per call"
            ))));
        }
        let began = Instant::now();
        let method = request.method.clone();
        let result = self.egress.send(self.policy.get(), request).await;
        let elapsed = began.elapsed();
        self.host_time += elapsed;
        match &result {
            Ok(response) => tracing::debug!(
                plugin = %self.plugin_id,
                account = self.account_id.as_deref().unwrap_or(""),
                %method,
                status = response.status,
                elapsed_ms = elapsed.as_millis() as u64,
                "plugin HTTP request"
            ),
            Err(http::HttpError::Denied(reason)) => tracing::warn!(
                plugin = %self.plugin_id,
                account = self.account_id.as_deref().unwrap_or(""),
                %reason,
                "plugin HTTP request denied"
            ),
            Err(error) => tracing::info!(
                plugin = %self.plugin_id,
                account = self.account_id.as_deref().unwrap_or(""),
                %method,
                error = ?error,
                elapsed_ms = elapsed.as_millis() as u64,
                "plugin HTTP request failed"
            ),
        }
        Ok(result)
    }
}

/// The longest plugin log line kept; the rest is cut.
const MAX_LOG_LINE_CHARS: usize = 4096;

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        if self.log_bytes >= MAX_LOG_BYTES_PER_CALL {
            return Ok(());
        }
        self.log_bytes += message.len();
        if self.log_bytes >= MAX_LOG_BYTES_PER_CALL {
            tracing::warn!(plugin = %self.plugin_id, "plugin log budget exhausted for this call");
            return Ok(());
        }
        // Card numbers masked, and no control character (a newline would
        // let a plugin forge a log line of its own), bounded.
        let message: String = mask_card_numbers(&message)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_LOG_LINE_CHARS)
            .collect();
        let plugin = &*self.plugin_id;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl clock::Host for CallState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0))
    }
}

impl random::Host for CallState {
    fn bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM_BYTES {
            return Err(wasmtime::format_err!(
                "random.bytes asked for {len} bytes; at most {MAX_RANDOM_BYTES}"
            ));
        }
        let mut buf = vec![0u8; len as usize];
        rand::fill(&mut buf[..]);
        Ok(buf)
    }
}

impl cache::Host for CallState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.cache.get(&self.cache_key(&key)))
    }

    fn set(&mut self, key: String, value: String, ttl_seconds: u32) -> wasmtime::Result<()> {
        if key.len() > MAX_CACHE_KEY_BYTES || value.len() > MAX_CACHE_VALUE_BYTES {
            tracing::warn!(plugin = %self.plugin_id, "cache entry too large; not stored");
            return Ok(());
        }
        let ttl = Duration::from_secs(u64::from(ttl_seconds)).min(MAX_CACHE_TTL);
        let key = self.cache_key(&key);
        if !self.cache.set(self.cache_scope(), key, value, ttl) {
            tracing::warn!(plugin = %self.plugin_id, "cache quota reached; entry not stored");
        }
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.cache.remove(&self.cache_key(&key));
        Ok(())
    }
}
