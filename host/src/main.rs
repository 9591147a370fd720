//! The `passerelle` command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod config_file;
mod doctor;

/// mimalloc instead of glibc's malloc: a payment allocates and frees
/// thousands of small buffers across the actix workers and the SQLite
/// writer thread, and glibc's allocator (its arena locks, `malloc_consolidate`)
/// took about an eighth of the server's CPU under load
/// (docs/performance.md, "Group commit on SQLite"). Built with `no_thp`:
/// with transparent huge pages, mimalloc's eagerly committed arenas became
/// resident 2 MiB at a time and the server's peak RSS nearly doubled.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "passerelle",
    version,
    about = "Payment plugin host: storefront checkouts to sandboxed WebAssembly PSP connectors"
)]
struct Cli {
    /// Log format: `text` or `json`.
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: String,
    /// Settings file for `serve` and `doctor`: its keys are `serve`'s long
    /// flags (`listen = "0.0.0.0:8080"`, `data-dir = "/var/lib/passerelle"`).
    /// A flag wins over its `PASSERELLE_*` variable, which wins over the
    /// file, which wins over the default. Default: `./passerelle.toml` if
    /// present.
    #[arg(long, global = true, env = "PASSERELLE_CONFIG")]
    config: Option<PathBuf>,
    /// Export traces over OTLP/HTTP (JSON) to this collector, e.g.
    /// `http://127.0.0.1:4318` (spans go to `/v1/traces`). Off by default.
    #[arg(long, global = true, env = "PASSERELLE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "PASSERELLE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the SQLite database, the master key and demo.json live.
        #[arg(long, env = "PASSERELLE_DATA_DIR", default_value = ".passerelle")]
        data_dir: PathBuf,
        /// Where compiled connectors are kept, so that a restart loads them
        /// in milliseconds instead of compiling them again; default:
        /// `<data-dir>/compiled-plugins`. Several servers may share one
        /// (entries are named by component and engine settings, and written
        /// whole).
        #[arg(long, env = "PASSERELLE_COMPILE_CACHE")]
        compile_cache: Option<PathBuf>,
        /// `postgres://...` for PostgreSQL; default: SQLite in the data dir.
        #[arg(long, env = "PASSERELLE_DATABASE_URL")]
        database_url: Option<String>,
        /// The URL browsers and providers reach this server at.
        #[arg(long, env = "PASSERELLE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Master key for credentials at rest (64 hex characters or base64
        /// of 32 bytes); default: `<data-dir>/master.key`, created if absent.
        #[arg(long, env = "PASSERELLE_MASTER_KEY", hide_env_values = true)]
        master_key: Option<String>,
        /// Start the PSP sandbox and set up a demo merchant and accounts.
        #[arg(long, env = "PASSERELLE_DEMO")]
        demo: bool,
        /// Where the demo's PSP sandbox listens.
        #[arg(long, env = "PASSERELLE_SANDBOX_LISTEN", default_value = "127.0.0.1:0")]
        sandbox_listen: SocketAddr,
        /// Folder of the providers' OpenAPI documents the demo's PSP sandbox
        /// validates requests with (`off`: no validation); default:
        /// `../shared/psp-specs` or `../../shared/psp-specs` if present.
        #[arg(long, env = "PASSERELLE_PSP_SPECS")]
        psp_specs: Option<PathBuf>,
        /// HTTP worker threads (default: one per core).
        #[arg(long, env = "PASSERELLE_WORKERS")]
        workers: Option<usize>,
        /// File of trusted plugin publisher keys, one per line:
        /// `<publisher> ed25519:<base64 public key>` (see `passerelle plugin
        /// keygen`). Packages signed by other keys are refused.
        #[arg(long, env = "PASSERELLE_TRUSTED_KEYS")]
        trusted_keys: Option<PathBuf>,
        /// Development mode: accept unsigned and untrusted plugin packages
        /// (a tampered signature is still refused). Never in production.
        #[arg(long, env = "PASSERELLE_ALLOW_UNSIGNED_PLUGINS")]
        allow_unsigned_plugins: bool,
        /// Most memory a plugin call may use, in MiB (a manifest may ask
        /// for less, never more).
        #[arg(long, env = "PASSERELLE_PLUGIN_MEMORY_MB", default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..=4096))]
        plugin_memory_mb: u32,
        /// Most CPU time a plugin call may use, in milliseconds (time
        /// waiting on the network does not count).
        #[arg(long, env = "PASSERELLE_PLUGIN_CPU_MS", default_value_t = 1000,
              value_parser = clap::value_parser!(u32).range(1..=600_000))]
        plugin_cpu_ms: u32,
        /// Wall time for a whole plugin call, network included, in seconds.
        #[arg(long, env = "PASSERELLE_PLUGIN_TIMEOUT_SECS", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        plugin_timeout_secs: u64,
        /// Largest answer a plugin may return, in KiB.
        #[arg(long, env = "PASSERELLE_PLUGIN_OUTPUT_KIB", default_value_t = 256,
              value_parser = clap::value_parser!(u32).range(1..=65_536))]
        plugin_output_kib: u32,
        /// Most calls of one plugin running at once (each holds an instance
        /// and its memory); a manifest may ask for fewer. Further calls wait
        /// `--plugin-queue-ms`, then get 503 connector_busy.
        #[arg(long, env = "PASSERELLE_PLUGIN_MAX_CONCURRENCY", default_value_t = 64,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        plugin_max_concurrency: u32,
        /// How long a plugin call waits for a free slot, in milliseconds.
        #[arg(long, env = "PASSERELLE_PLUGIN_QUEUE_MS", default_value_t = 2000,
              value_parser = clap::value_parser!(u64).range(0..=600_000))]
        plugin_queue_ms: u64,
        /// How long a request owns its Idempotency-Key claim, in seconds: a
        /// retry of a request that died takes the claim over after this.
        #[arg(long, env = "PASSERELLE_IDEMPOTENCY_LEASE_SECS", default_value_t = 120,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        idempotency_lease_secs: u64,
        /// How long Idempotency-Keys are remembered, in seconds (default: 24 h).
        #[arg(long, env = "PASSERELLE_IDEMPOTENCY_TTL_SECS", default_value_t = 24 * 3600,
              value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 3600))]
        idempotency_ttl_secs: u64,
        /// Do not run the janitor (the reconciler of unknown outcomes) on
        /// this node.
        #[arg(long, env = "PASSERELLE_NO_JANITOR")]
        no_janitor: bool,
        /// How often the janitor looks for due work, in milliseconds.
        #[arg(long, env = "PASSERELLE_JANITOR_INTERVAL_MS", default_value_t = 5000,
              value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        janitor_interval_ms: u64,
        /// How long after an outcome became unknown the janitor first asks
        /// the provider, in seconds (then with exponential backoff).
        #[arg(long, env = "PASSERELLE_JANITOR_GRACE_SECS", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(0..=86_400))]
        janitor_grace_secs: u64,
        /// The longest pause between two looks at one payment, in seconds.
        #[arg(long, env = "PASSERELLE_JANITOR_MAX_BACKOFF_SECS", default_value_t = 3600,
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        janitor_max_backoff_secs: u64,
        /// How long after a payment's creation an outcome the provider
        /// never settled is given up (`failure_code`
        /// `outcome_unknown_expired`), in seconds.
        #[arg(long, env = "PASSERELLE_JANITOR_WINDOW_SECS", default_value_t = 7 * 24 * 3600,
              value_parser = clap::value_parser!(u64).range(1..=365 * 24 * 3600))]
        janitor_window_secs: u64,
        /// The same window for one connector: `PLUGIN=SECONDS` (repeatable).
        #[arg(long = "janitor-window", value_name = "PLUGIN=SECONDS", value_parser = parse_window)]
        janitor_windows: Vec<(String, u64)>,
        /// Also serve `GET /metrics` on this address, without the admin key
        /// (for a Prometheus scraper on a private network). On the main
        /// listener `/metrics` always needs the admin key.
        #[arg(long, env = "PASSERELLE_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        /// On SIGTERM or Ctrl-C, how long requests in flight may take to
        /// finish, in seconds, before their connections are closed.
        #[arg(long, env = "PASSERELLE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        shutdown_timeout_secs: u64,
        /// Bench-only build (cargo feature `native-dummy`): run the dummy
        /// connector's Rust code linked into the server instead of its
        /// WebAssembly component, outside the sandbox, to measure what the
        /// sandbox costs. Never for production.
        #[cfg(feature = "native-dummy")]
        #[arg(long)]
        native_dummy: bool,
    },
    /// Run the PSP sandbox alone (simulators of the dummy PSP, Adyen,
    /// Worldline Sips, HiPay and PayPal) until interrupted.
    Sandbox {
        /// Address to listen on.
        #[arg(
            long,
            env = "PASSERELLE_SANDBOX_LISTEN",
            default_value = "127.0.0.1:4000"
        )]
        listen: SocketAddr,
        /// Folder of the providers' OpenAPI documents to validate requests
        /// with (`off`: no validation); default: `../shared/psp-specs` or
        /// `../../shared/psp-specs` if present.
        #[arg(long, env = "PASSERELLE_PSP_SPECS")]
        specs: Option<PathBuf>,
    },
    /// Check a deployment (the database, its migrations, the master key,
    /// trusted keys, the compile cache, the public URL, each connector
    /// account's configuration) with `serve`'s settings; says what is wrong
    /// and how to fix it, and exits 1 on any problem.
    Doctor(doctor::DoctorArgs),
    /// Manage merchants, API keys and connector accounts through a running
    /// server's admin API (prints its JSON answers).
    Admin(passerelle::admin_cli::AdminArgs),
    /// Create, list or revoke admin API keys directly in the database (the
    /// first admin key of a server started without --demo).
    AdminKey(passerelle::admin_key::AdminKeyArgs),
    /// Offline tools for connector authors: signing keys, plugin packages
    /// (pack, sign, inspect) and the conformance kit (test).
    Plugin(passerelle::plugin_cli::PluginArgs),
}

/// `--janitor-window PLUGIN=SECONDS`.
fn parse_window(text: &str) -> Result<(String, u64), String> {
    let (plugin, secs) = text
        .split_once('=')
        .ok_or_else(|| format!("expected PLUGIN=SECONDS, got {text:?}"))?;
    let secs: u64 = secs
        .parse()
        .map_err(|_| format!("{secs:?} is not a number of seconds"))?;
    if plugin.is_empty() || secs == 0 {
        return Err("a plugin id and a positive number of seconds are needed".into());
    }
    Ok((plugin.to_string(), secs))
}

/// `--psp-specs DIR` / `--specs DIR`: a folder, `off`, or (absent) automatic.
fn spec_source(dir: Option<PathBuf>) -> passerelle_sandbox::SpecSource {
    match dir {
        None => passerelle_sandbox::SpecSource::Auto,
        Some(dir) if dir.as_os_str().is_empty() => passerelle_sandbox::SpecSource::Auto,
        Some(dir) if dir.as_os_str() == "off" => passerelle_sandbox::SpecSource::Off,
        Some(dir) => passerelle_sandbox::SpecSource::Dir(dir),
    }
}

/// Runs the sandbox until Ctrl-C or SIGTERM.
async fn run_sandbox(listen: SocketAddr, specs: Option<PathBuf>) -> std::process::ExitCode {
    let specs = spec_source(specs);
    let validation = match specs.resolve_dir() {
        Some(dir) => format!("on (OpenAPI documents in {})", dir.display()),
        None => "off (no OpenAPI documents)".to_string(),
    };
    let sandbox = match passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
        listen,
        specs,
        ..passerelle_sandbox::SandboxConfig::default()
    })
    .await
    {
        Ok(sandbox) => sandbox,
        Err(error) => {
            tracing::error!(%error, "cannot start the sandbox");
            eprintln!("passerelle: cannot start the PSP sandbox on {listen}: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("PSP sandbox listening on {}", sandbox.base_url());
    for name in passerelle_sandbox::PROVIDERS {
        let url = sandbox.provider_base_url(name).unwrap_or_default();
        println!("  {name:<7}{url}");
    }
    println!("Request validation: {validation}");
    println!("Test credentials and scenarios: docs/sandbox/README.md. Ctrl-C stops.");
    shutdown_signal().await;
    sandbox.stop().await;
    std::process::ExitCode::SUCCESS
}

/// Where everything is once the demo is up. Keys stay out of the terminal
/// and the logs: demo.json (mode 0600) has them.
fn print_demo_block(demo: &passerelle::demo::DemoInfo) {
    let sandbox = demo
        .sandbox
        .get("dummy")
        .and_then(|dummy| dummy["base_url"].as_str())
        .map(|url| url.trim_end_matches("/dummy").to_string())
        .unwrap_or_default();
    let providers: Vec<&str> = demo.sandbox.keys().map(String::as_str).collect();
    println!();
    println!("Passerelle demo is running.");
    println!("  Server:      {}", demo.base_url);
    println!("  PSP sandbox: {sandbox} (/{})", providers.join(", /"));
    println!(
        "  demo.json:   {} (API keys, connector accounts, test cards)",
        demo.path.display()
    );
    println!(
        "  Next:        README.md, \"A payment with curl\", in another terminal. Ctrl-C stops."
    );
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The command line, with `passerelle.toml`'s settings under the flags and
/// environment variables (see `config_file.rs`).
fn parse_cli() -> Result<Cli, std::process::ExitCode> {
    let command = Cli::command();
    let (args, applied) = match config_file::apply(&command, std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("passerelle: {error}");
            return Err(std::process::ExitCode::from(2));
        }
    };
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(cli) => Ok(cli),
        Err(error) => {
            let from_file = applied.as_ref().and_then(|applied| {
                let arg = error.get(clap::error::ContextKind::InvalidArg)?.to_string();
                Some((applied.path.clone(), applied.key_for(&arg)?.to_string()))
            });
            if let Some((path, key)) = from_file {
                eprintln!("passerelle: `{key}` in {} is refused:", path.display());
            }
            error.exit()
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let filter = EnvFilter::try_from_env("PASSERELLE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,passerelle::http=info"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // Colours only on a terminal: a log file or journal gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt: Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> =
        if cli.log_format == "json" {
            fmt.json().boxed()
        } else {
            fmt.boxed()
        };
    let subscriber = tracing_subscriber::registry().with(fmt);
    let (tracer_provider, otlp) = match cli.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => match passerelle::telemetry::otlp_layer(endpoint) {
            Ok((provider, layer)) => (Some(provider), Some(layer)),
            Err(error) => {
                eprintln!("passerelle: {error}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => (None, None),
    };
    subscriber.with(otlp).with(filter).init();
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            compile_cache,
            database_url,
            public_url,
            master_key,
            demo,
            sandbox_listen,
            psp_specs,
            workers,
            trusted_keys,
            allow_unsigned_plugins,
            plugin_memory_mb,
            plugin_cpu_ms,
            plugin_timeout_secs,
            plugin_output_kib,
            plugin_max_concurrency,
            plugin_queue_ms,
            idempotency_lease_secs,
            idempotency_ttl_secs,
            no_janitor,
            janitor_interval_ms,
            janitor_grace_secs,
            janitor_max_backoff_secs,
            janitor_window_secs,
            janitor_windows,
            metrics_listen,
            shutdown_timeout_secs,
            #[cfg(feature = "native-dummy")]
            native_dummy,
        } => {
            use std::time::Duration;
            let options = passerelle::server::ServeOptions {
                listen,
                compile_cache: compile_cache.unwrap_or_else(|| data_dir.join("compiled-plugins")),
                data_dir,
                database_url,
                public_url,
                master_key,
                demo,
                sandbox_listen,
                workers: workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                trusted_keys,
                allow_unsigned_plugins,
                plugin_limits: passerelle::runtime::RuntimeLimits {
                    max_memory_mb: plugin_memory_mb,
                    max_cpu_ms: plugin_cpu_ms,
                    call_timeout: std::time::Duration::from_secs(plugin_timeout_secs),
                    max_output_bytes: plugin_output_kib as usize * 1024,
                    max_concurrency: plugin_max_concurrency,
                    queue_timeout: std::time::Duration::from_millis(plugin_queue_ms),
                    ..passerelle::runtime::RuntimeLimits::default()
                },
                idempotency: passerelle::api::IdempotencySettings {
                    lease: Duration::from_secs(idempotency_lease_secs),
                    ttl: Duration::from_secs(idempotency_ttl_secs),
                },
                janitor: passerelle::payments::JanitorSettings {
                    enabled: !no_janitor,
                    interval: Duration::from_millis(janitor_interval_ms),
                    grace: Duration::from_secs(janitor_grace_secs),
                    max_backoff: Duration::from_secs(janitor_max_backoff_secs),
                    window: Duration::from_secs(janitor_window_secs),
                    windows: janitor_windows
                        .into_iter()
                        .map(|(plugin, secs)| (plugin, Duration::from_secs(secs)))
                        .collect(),
                },
                #[cfg(feature = "native-dummy")]
                native_dummy,
            };
            let observe = passerelle::server::ObserveOptions {
                metrics_listen,
                shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
            };
            let server =
                match passerelle::server::start_observed(options, spec_source(psp_specs), observe)
                    .await
                {
                    Ok(server) => server,
                    Err(error) => {
                        tracing::error!(%error, "cannot start");
                        eprintln!("passerelle: {error}");
                        return std::process::ExitCode::FAILURE;
                    }
                };
            if let Some(demo) = &server.demo {
                print_demo_block(demo);
            }
            let result = server.run_until(shutdown_signal()).await;
            if let Some(provider) = tracer_provider {
                // Sends the spans still queued.
                let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
                if let Ok(Err(error)) = flushed {
                    eprintln!("passerelle: traces not all exported: {error}");
                }
            }
            if let Err(error) = result {
                eprintln!("passerelle: {error}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Command::Sandbox { listen, specs } => run_sandbox(listen, specs).await,
        Command::Doctor(args) => match doctor::run(args).await {
            0 => std::process::ExitCode::SUCCESS,
            _ => std::process::ExitCode::FAILURE,
        },
        Command::Admin(args) => match passerelle::admin_cli::run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("passerelle admin: {error}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Plugin(args) => passerelle::plugin_cli::run(args).await,
        Command::AdminKey(args) => match passerelle::admin_key::run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("passerelle admin-key: {error}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
