//! Start-up: database, plugin runtime, bundled connectors, HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

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
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _sandbox: Option<passerelle_sandbox::SandboxHandle>,
    _refresh: AbortOnDrop,
    _janitor: Option<AbortOnDrop>,
}

/// Stops a background loop (plugin refresh, janitor) with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningServer {
    /// Waits until the server stops (Ctrl-C or `stop`).
    pub async fn wait(self) -> std::io::Result<()> {
        let _sandbox = self._sandbox;
        let _refresh = self._refresh;
        let _janitor = self._janitor;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    pub async fn stop(&self) {
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
    let runtime = Arc::new(
        PluginRuntime::new(options.plugin_limits.clone(), Egress::new()?)?
            .with_compile_cache(options.data_dir.join("compiled-plugins")),
    );
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
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(tracing_actix())
            .configure(api::configure)
    })
    .workers(options.workers.max(1))
    .listen(listener)
    .map_err(|e| StartError::Bind(addr, e))?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%addr, %base_url, demo = options.demo, "Passerelle is listening");
    Ok(RunningServer {
        addr,
        base_url,
        demo,
        handle,
        task,
        _sandbox: sandbox,
        _refresh: AbortOnDrop(refresh),
        _janitor: janitor.map(AbortOnDrop),
    })
}

/// Request logs: method, path (ids only, never bodies), status and time.
/// The path without its query string, for every route: a shopper's return
/// (`/v1/payments/{id}/return?...`) or a provider's notification may carry
/// tokens there, and `%r` (the raw request line) would log them.
fn tracing_actix() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{request}xi %s %Dms")
        .custom_request_replace("request", |req| {
            format!("{} {} {:?}", req.method(), req.path(), req.version())
        })
        .log_target("passerelle::http")
}
