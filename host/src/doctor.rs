//! `passerelle doctor`: checks a deployment as `passerelle serve` would run
//! it (same flags, environment variables and `passerelle.toml`), and says
//! what is wrong and how to fix it. It creates no database, master key or
//! migration table and applies no migration (it only writes a probe file in
//! the compile cache, and loads the connectors as the server would).
//!
//! Checks, in order (a check that needs an earlier one is skipped, with the
//! reason, when that one failed): the database answers; every migration is
//! applied; the master key is there and valid; the trusted publisher keys
//! are readable; the plugins' compile cache is writable; the public URL
//! answers; each connector account's credentials open under the master key
//! and pass its connector's `validate-config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use passerelle::crypto::SecretBox;
use passerelle::package::{PackagePolicy, TrustedKeys};
use passerelle::runtime::bindings::types as wit;
use passerelle::runtime::{PluginRuntime, RuntimeLimits};
use passerelle::store::{pending_migrations, MigrationCheckError, Store};

/// `println!` that does not panic when stdout is closed (`doctor | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// How long the public URL and the database have to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `passerelle doctor`'s options: those of `passerelle serve` it checks.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Where the SQLite database, the master key and the compile cache live.
    #[arg(long, env = "PASSERELLE_DATA_DIR", default_value = ".passerelle")]
    pub data_dir: PathBuf,
    /// Where compiled connectors are kept; default:
    /// `<data-dir>/compiled-plugins`.
    #[arg(long, env = "PASSERELLE_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,
    /// `postgres://...` for PostgreSQL; default: SQLite in the data dir.
    #[arg(long, env = "PASSERELLE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The URL browsers and providers reach the server at.
    #[arg(long, env = "PASSERELLE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Master key for credentials at rest; default: `<data-dir>/master.key`.
    #[arg(long, env = "PASSERELLE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// File of trusted plugin publisher keys.
    #[arg(long, env = "PASSERELLE_TRUSTED_KEYS")]
    pub trusted_keys: Option<PathBuf>,
}

/// One check's result.
enum Outcome {
    Ok(String),
    /// Not a problem, worth knowing.
    Note(String),
    /// What is wrong, and how to fix it.
    Problem(String, String),
    /// Not run: an earlier check failed.
    Skipped(String),
}

struct Report {
    problems: usize,
}

impl Report {
    fn say(&mut self, check: &str, outcome: Outcome) {
        match outcome {
            Outcome::Ok(detail) => out!("ok       {check}: {detail}"),
            Outcome::Note(detail) => out!("note     {check}: {detail}"),
            Outcome::Skipped(why) => out!("skipped  {check}: {why}"),
            Outcome::Problem(what, fix) => {
                self.problems += 1;
                out!("PROBLEM  {check}: {what}");
                out!("         fix: {fix}");
            }
        }
    }
}

/// Runs every check, prints one line per check (and a fix per problem),
/// and returns the number of problems.
pub async fn run(args: DoctorArgs) -> usize {
    let mut report = Report { problems: 0 };
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("passerelle.db").display()));
    out!(
        "passerelle doctor: data dir {}, database {}",
        args.data_dir.display(),
        redact_url(&database_url)
    );

    // The database, then its schema, without creating or migrating anything.
    let schema = check_database(&database_url).await;
    let database_ok = match &schema {
        Ok(_) => {
            report.say("database", Outcome::Ok("reachable".into()));
            true
        }
        Err((what, fix)) => {
            report.say("database", Outcome::Problem(what.clone(), fix.clone()));
            false
        }
    };
    let migrations_ok = match schema {
        Ok(pending) if pending.is_empty() => {
            report.say("migrations", Outcome::Ok("all applied".into()));
            true
        }
        Ok(pending) => {
            report.say(
                "migrations",
                Outcome::Problem(
                    format!("{} not applied: {}", pending.len(), pending.join(", ")),
                    "start `passerelle serve` with this database once (it applies them \
                     at start), then run doctor again"
                        .into(),
                ),
            );
            false
        }
        Err(_) => {
            report.say(
                "migrations",
                Outcome::Skipped("the database is not reachable".into()),
            );
            false
        }
    };

    let secrets = check_master_key(&args, &mut report);
    check_trusted_keys(args.trusted_keys.as_deref(), &mut report);
    let cache = args
        .compile_cache
        .clone()
        .unwrap_or_else(|| args.data_dir.join("compiled-plugins"));
    let cache_ok = check_cache(&cache, &mut report);
    check_public_url(args.public_url.as_deref(), &mut report).await;

    // Each account, with the connectors as the server loads them.
    if !(database_ok && migrations_ok) {
        report.say(
            "accounts",
            Outcome::Skipped("the database is not reachable or not migrated".into()),
        );
    } else if let Some(secrets) = secrets {
        check_accounts(
            &database_url,
            &secrets,
            &args,
            cache_ok.then_some(cache),
            &mut report,
        )
        .await;
    } else {
        report.say(
            "accounts",
            Outcome::Skipped("no usable master key to open their credentials".into()),
        );
    }

    match report.problems {
        0 => out!("No problem found."),
        1 => out!("1 problem found."),
        n => out!("{n} problems found."),
    }
    report.problems
}

/// `Ok(pending migrations)` or `Err((what, fix))`.
async fn check_database(database_url: &str) -> Result<Vec<String>, (String, String)> {
    let url = database_url.trim().to_string();
    let task = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || pending_migrations(&url))
    };
    match tokio::time::timeout(PROBE_TIMEOUT * 3, task).await {
        Ok(Ok(result)) => result.map_err(|e| explain(e, &url)),
        Ok(Err(e)) => Err((format!("the check failed: {e}"), "run doctor again".into())),
        Err(_) => Err((
            "no answer within 15 s".into(),
            "check that the database server is up and reachable from this machine".into(),
        )),
    }
}

/// What went wrong reading the schema, and how to fix it.
fn explain(error: MigrationCheckError, url: &str) -> (String, String) {
    let fix = match &error {
        MigrationCheckError::BadUrl(_) | MigrationCheckError::InMemory => {
            "name an SQLite file or a PostgreSQL database"
        }
        MigrationCheckError::NoSqliteFile(_) => {
            "check --data-dir / --database-url; `passerelle serve` creates it on its first start"
        }
        MigrationCheckError::SqliteOpen { .. } => {
            "check the file's permissions for the user running Passerelle"
        }
        MigrationCheckError::PostgresConnect(_) => {
            "check --database-url (PASSERELLE_DATABASE_URL, `database-url` in passerelle.toml): \
             host, port, user, password and database name, and that PostgreSQL accepts \
             connections from this machine"
        }
        MigrationCheckError::Unreadable(_) => {
            "make sure this is Passerelle's database and its user may read it"
        }
        MigrationCheckError::Listing(_) => "rebuild Passerelle",
    };
    (redact_error(&error.to_string(), url), fix.to_string())
}

fn check_master_key(args: &DoctorArgs, report: &mut Report) -> Option<SecretBox> {
    const CHECK: &str = "master key";
    if let Some(text) = &args.master_key {
        return match SecretBox::from_key_text(text) {
            Ok(secrets) => {
                report.say(CHECK, Outcome::Ok("given by --master-key".into()));
                Some(secrets)
            }
            Err(e) => {
                report.say(
                    CHECK,
                    Outcome::Problem(
                        format!("--master-key is not a valid key: {e}"),
                        "give the 64 hex characters (or base64 of 32 bytes) the credentials \
                         were sealed with"
                            .into(),
                    ),
                );
                None
            }
        };
    }
    let path = args.data_dir.join("master.key");
    if !path.is_file() {
        report.say(
            CHECK,
            Outcome::Problem(
                format!("{} is missing", path.display()),
                "restore the master.key the credentials were sealed with, or give it with \
                 --master-key / PASSERELLE_MASTER_KEY (`passerelle serve` creates a new one \
                 only for a new deployment: existing credentials cannot be opened with it)"
                    .into(),
            ),
        );
        return None;
    }
    match SecretBox::load_or_create(&path) {
        Ok(secrets) => {
            report.say(CHECK, Outcome::Ok(path.display().to_string()));
            Some(secrets)
        }
        Err(e) => {
            report.say(
                CHECK,
                Outcome::Problem(
                    format!("{} cannot be used: {e}", path.display()),
                    "make it readable by the user running Passerelle and restore its content"
                        .into(),
                ),
            );
            None
        }
    }
}

fn check_trusted_keys(path: Option<&Path>, report: &mut Report) {
    const CHECK: &str = "trusted keys";
    let Some(path) = path else {
        report.say(
            CHECK,
            Outcome::Note(
                "none configured: only the bundled connectors (and plugins already \
                 installed) load; signed packages are refused until --trusted-keys names a \
                 file"
                    .into(),
            ),
        );
        return;
    };
    match TrustedKeys::load(path) {
        Ok(keys) => report.say(
            CHECK,
            Outcome::Ok(format!("{} key(s) in {}", keys.len(), path.display())),
        ),
        Err(e) => report.say(
            CHECK,
            Outcome::Problem(
                e.to_string(),
                "make the file readable, one `<publisher> ed25519:<base64>` per line \
                 (`passerelle plugin keygen` prints it)"
                    .into(),
            ),
        ),
    }
}

fn check_cache(dir: &Path, report: &mut Report) -> bool {
    const CHECK: &str = "compile cache";
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"doctor"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => {
            report.say(CHECK, Outcome::Ok(format!("{} is writable", dir.display())));
            true
        }
        Err(e) => {
            report.say(
                CHECK,
                Outcome::Problem(
                    format!("{} is not writable: {e}", dir.display()),
                    "make the data directory writable by the user running Passerelle \
                     (connectors are compiled again on every start otherwise)"
                        .into(),
                ),
            );
            false
        }
    }
}

async fn check_public_url(public_url: Option<&str>, report: &mut Report) {
    const CHECK: &str = "public URL";
    let Some(public_url) = public_url else {
        report.say(
            CHECK,
            Outcome::Note(
                "not set: payments send shoppers and providers to http://<listen address>; \
                 set --public-url / PASSERELLE_PUBLIC_URL to the address they reach"
                    .into(),
            ),
        );
        return;
    };
    let base = public_url.trim_end_matches('/');
    let parsed = url::Url::parse(base);
    if !matches!(parsed.as_ref().map(url::Url::scheme), Ok("http" | "https")) {
        report.say(
            CHECK,
            Outcome::Problem(
                format!("{public_url:?} is not an http(s) URL"),
                "give the server's address as browsers see it, e.g. https://pay.example.com".into(),
            ),
        );
        return;
    }
    let probe = format!("{base}/health/live");
    let client = match reqwest::Client::builder().timeout(PROBE_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            report.say(CHECK, Outcome::Skipped(format!("no HTTP client: {e}")));
            return;
        }
    };
    match client.get(&probe).send().await {
        Ok(resp) if resp.status().is_success() => report.say(
            CHECK,
            Outcome::Ok(format!("{probe} answers {}", resp.status())),
        ),
        Ok(resp) => report.say(
            CHECK,
            Outcome::Problem(
                format!("{probe} answers {}", resp.status()),
                "the URL must reach Passerelle itself: check the reverse proxy's routes".into(),
            ),
        ),
        Err(e) => report.say(
            CHECK,
            Outcome::Problem(
                format!("{probe} does not answer: {}", error_chain(&e)),
                "start `passerelle serve`, and check DNS, TLS and the reverse proxy in front \
                 of it"
                    .into(),
            ),
        ),
    }
}

async fn check_accounts(
    database_url: &str,
    secrets: &SecretBox,
    args: &DoctorArgs,
    cache: Option<PathBuf>,
    report: &mut Report,
) {
    const CHECK: &str = "accounts";
    let store = match Store::connect(database_url).await {
        Ok(store) => store,
        Err(e) => {
            report.say(CHECK, Outcome::Skipped(format!("the database: {e}")));
            return;
        }
    };
    let trusted = args
        .trusted_keys
        .as_deref()
        .and_then(|path| TrustedKeys::load(path).ok())
        .unwrap_or_else(TrustedKeys::empty);
    let egress = match passerelle::egress::Egress::new() {
        Ok(egress) => egress,
        Err(e) => {
            report.say(CHECK, Outcome::Skipped(format!("no HTTP client: {e}")));
            return;
        }
    };
    let runtime = match PluginRuntime::new(RuntimeLimits::default(), egress) {
        Ok(runtime) => runtime,
        Err(e) => {
            report.say(CHECK, Outcome::Skipped(format!("no plugin runtime: {e}")));
            return;
        }
    };
    let runtime = Arc::new(match cache {
        Some(dir) => runtime.with_compile_cache(dir),
        None => runtime,
    });
    let policy = PackagePolicy {
        trusted,
        allow_unsigned: true,
    };
    if let Err(e) = passerelle::registry::PluginRegistry::start(
        store.clone(),
        runtime.clone(),
        policy,
        passerelle::bundled::BUNDLED_PLUGINS,
    )
    .await
    {
        report.say(
            CHECK,
            Outcome::Problem(
                format!("the connectors do not load: {e}"),
                "see `passerelle serve`'s log for the plugin at fault; roll it back with \
                 POST /v1/admin/plugins/{id}/rollback"
                    .into(),
            ),
        );
        return;
    }
    let merchants = match store.list_merchants().await {
        Ok(merchants) => merchants,
        Err(e) => {
            report.say(
                CHECK,
                Outcome::Skipped(format!("cannot list merchants: {e}")),
            );
            return;
        }
    };
    let mut count = 0;
    for merchant in merchants {
        let accounts = match store.list_connector_accounts(&merchant.id).await {
            Ok(accounts) => accounts,
            Err(e) => {
                report.say(CHECK, Outcome::Skipped(format!("{}: {e}", merchant.id)));
                continue;
            }
        };
        for record in accounts {
            count += 1;
            let check = format!(
                "account {} ({} of {}, {})",
                record.id, record.name, merchant.id, record.connector
            );
            let outcome = check_account(&runtime, secrets, &record).await;
            report.say(&check, outcome);
        }
    }
    if count == 0 {
        report.say(
            CHECK,
            Outcome::Note(
                "no connector account yet (POST /v1/admin/merchants/{id}/connector_accounts)"
                    .into(),
            ),
        );
    }
}

async fn check_account(
    runtime: &PluginRuntime,
    secrets: &SecretBox,
    record: &passerelle::store::models::ConnectorAccountRecord,
) -> Outcome {
    let credentials: BTreeMap<String, String> = match secrets
        .open(&record.config_ciphertext)
        .ok()
        .and_then(|clear| serde_json::from_slice(&clear).ok())
    {
        Some(credentials) => credentials,
        None => {
            return Outcome::Problem(
                "its credentials do not open under this master key".into(),
                "use the master key they were sealed with (--master-key or \
                 <data-dir>/master.key), or set them again with `passerelle admin accounts \
                 update`"
                    .into(),
            )
        }
    };
    let plugin = match runtime.get(&record.connector) {
        Ok(plugin) => plugin,
        Err(e) => {
            return Outcome::Problem(
                format!("its connector is not loaded: {e}"),
                format!(
                    "install or enable the `{}` plugin (POST /v1/admin/plugins, \
                     …/enable), or move the account to another connector",
                    record.connector
                ),
            )
        }
    };
    let account = wit::Account {
        id: record.id.clone(),
        environment: if record.environment == "live" {
            wit::Environment::Live
        } else {
            wit::Environment::Test
        },
        base_url: record.base_url.clone(),
        config: credentials.into_iter().collect(),
    };
    match runtime.validate_config(&plugin, account).await {
        Ok(Ok(())) => Outcome::Ok("validate-config passed".into()),
        // The connector's message names the field, never a value.
        Ok(Err(error)) => Outcome::Problem(
            format!(
                "validate-config refuses it: {}{}",
                error
                    .field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default(),
                error.message
            ),
            format!(
                "correct it with `passerelle admin accounts update {} --credential NAME=VALUE` \
                 (or PATCH /v1/admin/connector_accounts/{})",
                record.id, record.id
            ),
        ),
        Err(e) => Outcome::Problem(
            format!("validate-config failed: {e}"),
            "see the connector's logs; roll the plugin back if a new version broke it".into(),
        ),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// An error message without the database URL's password, should the driver
/// repeat it.
fn redact_error(message: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_string(),
    }
}

/// A reqwest error with its causes (connection refused, DNS, TLS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
