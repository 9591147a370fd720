//! The `passerelle` command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
        /// HTTP worker threads (default: one per core).
        #[arg(long, env = "PASSERELLE_WORKERS")]
        workers: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("PASSERELLE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,passerelle::http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            database_url,
            public_url,
            master_key,
            demo,
            sandbox_listen,
            workers,
        } => {
            let options = passerelle::server::ServeOptions {
                listen,
                data_dir,
                database_url,
                public_url,
                master_key,
                demo,
                sandbox_listen,
                workers: workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            };
            let server = match passerelle::server::start(options).await {
                Ok(server) => server,
                Err(error) => {
                    tracing::error!(%error, "cannot start");
                    eprintln!("passerelle: {error}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            if let Some(demo) = &server.demo {
                println!("Passerelle demo is running at {}", demo.base_url);
                // Keys stay out of the terminal and the logs: demo.json (mode 0600) has them.
                println!(
                    "  API keys, connector accounts and test cards: {}",
                    demo.path.display()
                );
            }
            if let Err(error) = server.wait().await {
                eprintln!("passerelle: {error}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
    }
}
