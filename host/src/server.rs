//! Start-up: database, plugin runtime, bundled connectors, HTTP server;
//! and the graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::api::health::Health;
use crate::api::{self, AppState, IdempotencySettings};
use crate::bundled::BUNDLED_PLUGINS;
use crate::crypto::SecretBox;
use crate::egress::Egress;
use crate::package::{PackagePolicy, TrustedKeys};
use crate::payments::{JanitorSettings, Payments};
use crate::registry::PluginRegistry;
use crate::runtime::{PluginRuntime, RuntimeLimits};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Compiled connectors (normally `<data_dir>/compiled-plugins`).
    pub compile_cache: PathBuf,
    /// Defaults to an SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// The URL shoppers' browsers and providers reach this server at.
    /// Defaults to `http://<listen address>`.
    pub public_url: Option<String>,
    /// Master key text (hex or base64 of 32 bytes); else `<data_dir>/master.key`.
    pub master_key: Option<String>,
    pub demo: bool,
    /// Where the demo's PSP sandbox listens.
    pub sandbox_listen: SocketAddr,
    pub workers: usize,
    /// The operator's trusted plugin publisher keys (one per line:
    /// `<publisher> ed25519:<base64>`). None: no key is trusted.
    pub trusted_keys: Option<PathBuf>,
    /// Development mode: install unsigned or untrusted plugin packages.
    pub allow_unsigned_plugins: bool,
    /// The operator's caps on every plugin call.
    pub plugin_limits: RuntimeLimits,
    /// Idempotency claims' lease and keys' lifetime.
    pub idempotency: IdempotencySettings,
    /// The background reconciler of unknown outcomes.
    pub janitor: JanitorSettings,
    /// Bench-only build: the dummy connector runs natively linked
    /// (`PluginRuntime::with_native_dummy`).
    #[cfg(feature = "native-dummy")]
    pub native_dummy: bool,
}

/// Observability and shutdown settings.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    /// A second listener serving only `GET /metrics`, without the admin
    /// key (for a scraper on a private network). On the main listener,
    /// `/metrics` always needs the admin key.
    pub metrics_listen: Option<SocketAddr>,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to
    /// finish before their connections are closed.
    pub shutdown_timeout: Duration,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        Self {
            metrics_listen: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error(transparent)]
    Plugin(#[from] crate::runtime::PluginError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("demo set-up failed: {0}")]
    Demo(String),
}

/// A running server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub base_url: String,
    pub demo: Option<crate::demo::DemoInfo>,
    /// Where `--metrics-listen` serves `/metrics`, if it does.
    pub metrics_addr: Option<SocketAddr>,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics: Option<(
        actix_web::dev::ServerHandle,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    health: Arc<Health>,
    _sandbox: Option<passerelle_sandbox::SandboxHandle>,
    _refresh: AbortOnDrop,
    janitor: Option<AbortOnDrop>,
}

/// Stops a background loop (plugin refresh, janitor) with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AbortOnDrop {
    /// Stops the loop and waits until it has (its locals dropped).
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl RunningServer {
    /// Serves until `shutdown` resolves (main: SIGTERM or Ctrl-C), then
    /// shuts down gracefully: the node answers not ready, stops accepting
    /// connections, lets requests in flight finish (at most the shutdown
    /// timeout), then stops the janitor. The janitor's payment locks are
    /// database leases: dropping them releases them; one whose release does
    /// not complete expires by itself.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let RunningServer {
            handle,
            mut task,
            metrics,
            health,
            _sandbox,
            _refresh,
            janitor,
            ..
        } = self;
        let stopped_by_itself = tokio::select! {
            result = &mut task => Some(result),
            () = shutdown => None,
        };
        if let Some(result) = stopped_by_itself {
            return result.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        }
        tracing::info!("shutting down: no new connections, finishing the requests in flight");
        health.set_shutting_down();
        handle.stop(true).await;
        let result = task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        tracing::info!("HTTP server stopped");
        if let Some((metrics_handle, metrics_task)) = metrics {
            metrics_handle.stop(true).await;
            let _ = metrics_task.await;
        }
        _refresh.stop().await;
        if let Some(janitor) = janitor {
            janitor.stop().await;
            // Dropping the janitor's payment locks spawned their releases:
            // let them reach the database.
            tokio::time::sleep(Duration::from_millis(300)).await;
            tracing::info!("janitor stopped");
        }
        drop(_sandbox);
        tracing::info!("Passerelle stopped");
        result
    }

    /// Stops gracefully, for embedders and tests.
    pub async fn stop(&self) {
        self.health.set_shutting_down();
        self.handle.stop(true).await;
    }
}

/// [`start_with_specs`] with the PSP sandbox's OpenAPI documents found
/// automatically (`$PASSERELLE_PSP_SPECS`, `../shared/psp-specs`, ...).
pub async fn start(options: ServeOptions) -> Result<RunningServer, StartError> {
    start_with_specs(options, passerelle_sandbox::SpecSource::Auto).await
}

/// Starts the server; with `--demo`, the PSP sandbox validates requests
/// against the OpenAPI documents `psp_specs` names.
pub async fn start_with_specs(
    options: ServeOptions,
    psp_specs: passerelle_sandbox::SpecSource,
) -> Result<RunningServer, StartError> {
    start_observed(options, psp_specs, ObserveOptions::default()).await
}

/// [`start_with_specs`] with observability and shutdown settings.
pub async fn start_observed(
    options: ServeOptions,
    psp_specs: passerelle_sandbox::SpecSource,
    observe: ObserveOptions,
) -> Result<RunningServer, StartError> {
    std::fs::create_dir_all(&options.data_dir)
        .map_err(|e| StartError::DataDir(options.data_dir.clone(), e))?;
    let database_url = options.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            options.data_dir.join("passerelle.db").display()
        )
    });
    let store = Store::connect(&database_url).await?;
    let secrets = match &options.master_key {
        Some(text) => SecretBox::from_key_text(text)?,
        None => SecretBox::load_or_create(&options.data_dir.join("master.key"))?,
    };

    let trusted = match &options.trusted_keys {
        Some(path) => TrustedKeys::load(path)?,
        None => TrustedKeys::empty(),
    };
    if options.allow_unsigned_plugins {
        tracing::warn!("development mode: unsigned and untrusted plugin packages are accepted");
    }
    let policy = PackagePolicy {
        trusted,
        allow_unsigned: options.allow_unsigned_plugins,
    };
    let runtime = PluginRuntime::new(options.plugin_limits.clone(), Egress::new()?)?
        .with_compile_cache(options.compile_cache.clone());
    #[cfg(feature = "native-dummy")]
    let runtime = match options.native_dummy {
        true => runtime.with_native_dummy(),
        false => runtime,
    };
    let runtime = Arc::new(runtime);
    let registry = Arc::new(
        PluginRegistry::start(store.clone(), runtime.clone(), policy, BUNDLED_PLUGINS).await?,
    );
    let refresh = registry.spawn_refresh();

    let listener = std::net::TcpListener::bind(options.listen)
        .map_err(|e| StartError::Bind(options.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(options.listen, e))?;
    let base_url = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();

    let payments = Arc::new(Payments::new(
        store.clone(),
        runtime.clone(),
        secrets.clone(),
        base_url.clone(),
        options.janitor.clone(),
    ));
    let janitor = payments.spawn_janitor();

    let (sandbox, demo) = if options.demo {
        // Providers whose notification URL is an account setting (not sent
        // with each payment) post to the demo accounts' webhook endpoints.
        let webhook = |plugin: &str| {
            Some(format!(
                "{base_url}/v1/webhooks/{}",
                crate::demo::demo_account_id(plugin)
            ))
        };
        let sandbox = passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
            listen: options.sandbox_listen,
            specs: psp_specs,
            adyen: passerelle_sandbox::AdyenConfig {
                webhook_url: webhook("adyen"),
                ..passerelle_sandbox::AdyenConfig::default()
            },
            paypal: passerelle_sandbox::PaypalConfig {
                webhook_url: webhook("paypal"),
                ..passerelle_sandbox::PaypalConfig::default()
            },
            ..passerelle_sandbox::SandboxConfig::default()
        })
        .await
        .map_err(|e| StartError::Demo(format!("sandbox: {e}")))?;
        let installed: Vec<String> = runtime.list().iter().map(|p| p.id().to_string()).collect();
        let info = crate::demo::set_up(
            &store,
            &secrets,
            &options.data_dir,
            &base_url,
            &sandbox,
            &installed,
        )
        .await
        .map_err(|e| StartError::Demo(e.to_string()))?;
        (Some(sandbox), Some(info))
    } else {
        (None, None)
    };

    let state = web::Data::new(AppState {
        payments,
        runtime,
        registry,
        secrets,
        idempotency: options.idempotency,
    });
    let health = Health::new(database_url);
    let health_data = web::Data::new(health.clone());
    let metrics_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(health_data.clone())
            .wrap(actix_web::middleware::from_fn(api::observe::middleware))
            .configure(api::health::configure)
            .configure(api::configure)
    })
    .workers(options.workers.max(1))
    // `run_until` handles SIGTERM and Ctrl-C: the janitor stops after the
    // requests in flight.
    .disable_signals()
    .shutdown_timeout(observe.shutdown_timeout.as_secs())
    .listen(listener)
    .map_err(|e| StartError::Bind(addr, e))?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    let (metrics, metrics_addr) = match observe.metrics_listen {
        Some(listen) => {
            let listener =
                std::net::TcpListener::bind(listen).map_err(|e| StartError::Bind(listen, e))?;
            let metrics_addr = listener
                .local_addr()
                .map_err(|e| StartError::Bind(listen, e))?;
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(metrics_state.clone())
                    .route("/metrics", web::get().to(api::health::metrics_open))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(observe.shutdown_timeout.as_secs())
            .listen(listener)
            .map_err(|e| StartError::Bind(metrics_addr, e))?
            .run();
            let handle = server.handle();
            tracing::info!(addr = %metrics_addr, "metrics are served at /metrics");
            (Some((handle, tokio::spawn(server))), Some(metrics_addr))
        }
        None => (None, None),
    };
    tracing::info!(%addr, %base_url, demo = options.demo, "Passerelle is listening");
    Ok(RunningServer {
        addr,
        base_url,
        demo,
        metrics_addr,
        handle,
        task,
        metrics,
        health,
        _sandbox: sandbox,
        _refresh: AbortOnDrop(refresh),
        janitor: janitor.map(AbortOnDrop),
    })
}
