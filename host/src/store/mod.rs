//! Persistence: merchants, API keys, connector accounts, payments and their
//! history, refunds, idempotency keys and seen notifications.
//!
//! One diesel schema serves SQLite and PostgreSQL through [`AnyConnection`].
//! A PostgreSQL call runs on a blocking thread with a pooled connection;
//! SQLite calls go to the one connection's own thread, which commits the
//! calls queued meanwhile together ([`group_commit`]).

pub mod accounting;
mod group_commit;
pub mod models;
pub mod schema;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use models::{
    ApiKeyRecord, ConnectorAccountRecord, IdempotencyRecord, MerchantRecord,
    NotificationSeenRecord, PaymentEventRecord, PaymentLockRecord, PaymentRecord, PluginRecord,
    PluginVersionRecord, PluginVersionSummary, RefundRecord,
};
use schema::{
    api_keys, connector_accounts, idempotency_keys, merchants, notifications_seen, payment_events,
    payment_locks, payments, plugin_versions, plugins, refunds,
};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// `state` of an idempotency key whose request is still running.
pub const IDEMPOTENCY_IN_PROGRESS: &str = "in_progress";
/// `state` of an idempotency key whose response is stored.
pub const IDEMPOTENCY_DONE: &str = "done";

// Reads of one row use `get_result`, never `first`: `first` binds its
// `LIMIT 1` as a parameter, and SQLite marks a statement whose LIMIT is a
// parameter to be compiled again whenever it is bound, so every cached
// `first` query was re-prepared on every run (5 % of a payment's CPU).
// Such reads are by a key or an aggregate, or by a provider's reference
// that names one row or a few, ordered: `get_result` steps to the first
// row only, as `first` did.

const POSTGRES_POOL_SIZE: u32 = 10;
/// One connection to an SQLite file. SQLite runs one writer at a time
/// anyway, and a connection drops its whole page cache whenever another
/// connection wrote since its last transaction: with four connections
/// nearly every transaction began by reading its pages again, and writers
/// waited on each other's locks. One connection keeps its cache warm and
/// never waits on a lock: a payment costs about 30 % less CPU (closed-loop
/// runs of `scripts/load-gen`, docs/performance.md "Where a payment's CPU
/// goes").
const SQLITE_FILE_POOL_SIZE: u32 = 1;
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5000;
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(String),
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the record was changed concurrently")]
    Conflict,
    #[error("a record with this key already exists")]
    Duplicate,
    /// Internal to [`Store::save_payment`]: the notification was already applied.
    #[error("notification already applied")]
    AlreadySeen,
    #[error("blocking task failed: {0}")]
    Join(String),
    /// The transaction the call ran in was not committed (SQLite's group
    /// commit: another call of the same batch broke it, or the commit
    /// failed); nothing the call wrote was kept.
    #[error("the database did not commit: {0}")]
    Commit(String),
}

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Outcome of [`Store::begin_idempotent`].
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyBegin {
    /// The key was new: the caller owns it and must finish or delete it.
    Started,
    /// The key was already there (in progress or done).
    Existing(Box<IdempotencyRecord>),
}

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Postgres(String),
    SqliteFile(String),
    SqliteMemory,
}

impl Target {
    fn parse(database_url: &str) -> Result<Target, StoreError> {
        let url = database_url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else {
            url
        };
        // `sqlite://data.db?mode=rwc` (sqlx style): the options are not ours.
        let path = path.split('?').next().unwrap_or_default();
        match path {
            "" => Err(StoreError::Connect(format!(
                "no database path in {database_url:?}"
            ))),
            ":memory:" => Ok(Target::SqliteMemory),
            _ => Ok(Target::SqliteFile(path.to_owned())),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Target::Postgres(_) => Backend::Postgres,
            Target::SqliteFile(_) | Target::SqliteMemory => Backend::Sqlite,
        }
    }
}

/// The connection pool for `target`; for an SQLite file, one connection.
fn open_pool(target: Target) -> Result<Pool<AnyConnectionManager>, StoreError> {
    let manager = AnyConnectionManager { target };
    // One direct attempt first, for a clear error instead of a pool timeout.
    drop(
        manager
            .connect()
            .map_err(|e| StoreError::Connect(e.to_string()))?,
    );
    // No test query on every check-out (r2d2's default): it doubled
    // the statements of a request, and a round trip to PostgreSQL. A
    // connection that broke fails its statement, which fails the
    // request's transaction (nothing half-written), and is discarded
    // by `has_broken`.
    let builder = Pool::builder()
        .connection_timeout(POOL_CONNECTION_TIMEOUT)
        .test_on_check_out(false);
    let builder = match &manager.target {
        Target::Postgres(_) => builder.max_size(POSTGRES_POOL_SIZE),
        Target::SqliteFile(_) => builder
            .max_size(SQLITE_FILE_POOL_SIZE)
            .connection_customizer(Box::new(SqlitePragmas)),
        // Every connection to `:memory:` is its own database: keep a
        // single one, forever.
        Target::SqliteMemory => builder
            .max_size(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connection_customizer(Box::new(SqlitePragmas)),
    };
    builder
        .build(manager)
        .map_err(|e| StoreError::Connect(e.to_string()))
}

/// An r2d2 manager that opens the backend chosen from the URL. (diesel's
/// `ConnectionManager<AnyConnection>` tries each backend in turn, so a
/// mistyped PostgreSQL URL would silently become an SQLite file.)
struct AnyConnectionManager {
    target: Target,
}

impl ManageConnection for AnyConnectionManager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        let mut conn = match &self.target {
            Target::Postgres(url) => diesel::PgConnection::establish(url).map(AnyConnection::from),
            Target::SqliteFile(path) => {
                diesel::SqliteConnection::establish(path).map(AnyConnection::from)
            }
            Target::SqliteMemory => {
                diesel::SqliteConnection::establish(":memory:").map(AnyConnection::from)
            }
        }
        .map_err(diesel::r2d2::Error::ConnectionError)?;
        conn.set_instrumentation(accounting::count_statement);
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

impl From<diesel::PgConnection> for AnyConnection {
    fn from(conn: diesel::PgConnection) -> Self {
        AnyConnection::Postgresql(conn)
    }
}

impl From<diesel::SqliteConnection> for AnyConnection {
    fn from(conn: diesel::SqliteConnection) -> Self {
        AnyConnection::Sqlite(conn)
    }
}

/// Per-connection SQLite settings.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Sqlite(conn) = conn {
            // busy_timeout first: switching to WAL needs a lock.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                 PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON;"
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// What [`Store::lock_and_read_payment`] found.
#[derive(Debug)]
pub enum PaymentLockAttempt {
    /// Another holder's lease has not expired.
    Held,
    /// No such payment; no lock was left behind.
    Missing,
    /// Locked; the payment and its connector account (`None` if it was
    /// deleted), read under the lock.
    Locked(Box<(PaymentRecord, Option<ConnectorAccountRecord>)>),
}

/// The database. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool<AnyConnectionManager>,
    backend: Backend,
    /// SQLite only: the thread that owns the one connection.
    group_commit: Option<group_commit::GroupCommit>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

/// A unique violation becomes [`StoreError::Duplicate`].
fn duplicate(err: DieselError) -> StoreError {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Duplicate,
        other => StoreError::Database(other),
    }
}

/// Why [`pending_migrations`] could not tell.
#[derive(Debug, thiserror::Error)]
pub enum MigrationCheckError {
    #[error("{0}")]
    BadUrl(String),
    /// Another connection to `:memory:` would see another database.
    #[error("an in-memory database keeps nothing between starts")]
    InMemory,
    #[error("the SQLite database {0} does not exist")]
    NoSqliteFile(String),
    #[error("cannot open {path}: {message}")]
    SqliteOpen { path: String, message: String },
    /// The message may hold the URL's password: callers redact it.
    #[error("cannot connect: {0}")]
    PostgresConnect(String),
    #[error("cannot read the applied migrations: {0}")]
    Unreadable(String),
    #[error("cannot list this build's migrations: {0}")]
    Listing(String),
}

/// The migrations this build embeds that the database at `database_url`
/// has not applied, on a connection of its own. Read-only: diesel's
/// harness would create its bookkeeping table in a database that is only
/// being checked (`passerelle doctor`, the readiness probe). Blocking.
pub fn pending_migrations(database_url: &str) -> Result<Vec<String>, MigrationCheckError> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        name: Option<String>,
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    // Not generic over connections in diesel: one body for both backends.
    macro_rules! pending {
        ($conn:expr, $table_exists:expr, $embedded:expr, $backend:ty) => {{
            use diesel::migration::MigrationSource;
            let unreadable = |e: DieselError| MigrationCheckError::Unreadable(e.to_string());
            let table: Vec<Name> = diesel::sql_query($table_exists)
                .load($conn)
                .map_err(unreadable)?;
            let applied: Vec<String> = if table.iter().any(|t| t.name.is_some()) {
                diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                    .load::<Version>($conn)
                    .map_err(unreadable)?
                    .into_iter()
                    .map(|v| v.version)
                    .collect()
            } else {
                Vec::new()
            };
            let embedded = MigrationSource::<$backend>::migrations(&$embedded)
                .map_err(|e| MigrationCheckError::Listing(e.to_string()))?;
            Ok(embedded
                .iter()
                .filter(|m| !applied.contains(&m.name().version().to_string()))
                .map(|m| m.name().to_string())
                .collect())
        }};
    }
    match Target::parse(database_url).map_err(|e| MigrationCheckError::BadUrl(e.to_string()))? {
        Target::Postgres(url) => {
            let mut conn = diesel::PgConnection::establish(&url)
                .map_err(|e| MigrationCheckError::PostgresConnect(e.to_string()))?;
            let exists = "SELECT CAST(to_regclass('__diesel_schema_migrations') AS TEXT) AS name";
            pending!(&mut conn, exists, POSTGRES_MIGRATIONS, diesel::pg::Pg)
        }
        Target::SqliteMemory => Err(MigrationCheckError::InMemory),
        Target::SqliteFile(path) => {
            // Opening a missing file would create it.
            if !Path::new(&path).is_file() {
                return Err(MigrationCheckError::NoSqliteFile(path));
            }
            let mut conn = diesel::SqliteConnection::establish(&path)
                .and_then(|mut conn| {
                    conn.batch_execute("PRAGMA busy_timeout = 5000;")
                        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                    Ok(conn)
                })
                .map_err(|e| MigrationCheckError::SqliteOpen {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let exists = "SELECT name FROM sqlite_master WHERE type = 'table' \
                          AND name = '__diesel_schema_migrations'";
            pending!(&mut conn, exists, SQLITE_MIGRATIONS, diesel::sqlite::Sqlite)
        }
    }
}

fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let result = match conn {
        AnyConnection::Postgresql(conn) => {
            conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ())
        }
        AnyConnection::Sqlite(conn) => conn.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

impl Store {
    /// Opens the database and brings its schema up to date.
    ///
    /// `database_url`: `postgres://...` / `postgresql://...` → PostgreSQL;
    /// `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` or a plain file path
    /// → SQLite (the parent directories are created).
    pub async fn connect(database_url: &str) -> Result<Store, StoreError> {
        let target = Target::parse(database_url)?;
        tokio::task::spawn_blocking(move || Store::connect_blocking(target))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    fn connect_blocking(target: Target) -> Result<Store, StoreError> {
        let backend = target.backend();
        if let Target::SqliteFile(path) = &target {
            if let Some(parent) = Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Connect(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
        }
        let pool = open_pool(target)?;
        let mut conn = pool.get().map_err(|e| StoreError::Pool(e.to_string()))?;
        run_migrations(&mut conn)?;
        drop(conn);
        let group_commit = match backend {
            Backend::Sqlite => Some(group_commit::GroupCommit::start(
                pool.clone(),
                POOL_CONNECTION_TIMEOUT,
            )?),
            Backend::Postgres => None,
        };
        Ok(Store {
            pool,
            backend,
            group_commit,
        })
    }

    /// Runs `f` with a connection: for SQLite in the writer thread's next
    /// batch, for PostgreSQL with a pooled connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        match &self.group_commit {
            Some(writer) => writer.run(f).await,
            None => self.run_pooled(f).await,
        }
    }

    /// Runs `f` with a pooled connection on a blocking thread.
    async fn run_pooled<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        // One span per store transaction, a child of the request's (traces
        // with --otlp-endpoint), entered on the blocking thread that runs it.
        let span = tracing::info_span!("store");
        let work = accounting::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            // Counted from before the check-out: what the pool runs on the
            // connection it hands out is work of this round trip too.
            let before = accounting::statements_on_this_thread();
            let result = pool
                .get()
                .map_err(|e| StoreError::Pool(e.to_string()))
                .and_then(|mut conn| f(&mut conn));
            let statements = accounting::statements_on_this_thread().saturating_sub(before);
            accounting::record_round_trip(work.as_deref(), statements);
            result
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }

    // ----- merchants and API keys -------------------------------------------

    pub async fn insert_merchant(&self, m: MerchantRecord) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(merchants::table)
                .values(&m)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    pub async fn get_merchant(&self, id: &str) -> Result<Option<MerchantRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(merchants::table
                .find(id)
                .select(MerchantRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// Sets the account name that serves the merchant's payments by default.
    pub async fn set_default_connector(
        &self,
        merchant_id: &str,
        account_name: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, name) = (merchant_id.to_owned(), account_name.map(str::to_owned));
        self.run(move |conn| {
            diesel::update(merchants::table.find(id))
                .set(merchants::default_connector.eq(name))
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Every merchant, oldest first.
    pub async fn list_merchants(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        self.run(|conn| {
            Ok(merchants::table
                .order((merchants::created_at.asc(), merchants::id.asc()))
                .select(MerchantRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    pub async fn insert_api_key(&self, k: ApiKeyRecord) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(api_keys::table)
                .values(&k)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    /// The key with this hash, if it is not revoked.
    pub async fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_hash = key_hash.to_owned();
        self.run(move |conn| {
            Ok(api_keys::table
                .filter(api_keys::key_hash.eq(key_hash))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// The key with this id, revoked or not.
    pub async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(api_keys::table
                .find(id)
                .select(ApiKeyRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// The merchant's keys (revoked ones too), oldest first.
    pub async fn list_api_keys(&self, merchant_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let merchant_id = merchant_id.to_owned();
        self.run(move |conn| {
            Ok(api_keys::table
                .filter(api_keys::merchant_id.eq(merchant_id))
                .order((api_keys::created_at.asc(), api_keys::id.asc()))
                .select(ApiKeyRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Revokes the key at `now` (a key already revoked keeps its first
    /// revocation time) and returns it; `None` if there is no such key.
    /// Admin keys (revoked ones too), oldest first.
    pub async fn list_admin_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.run(|conn| {
            Ok(api_keys::table
                .filter(api_keys::kind.eq("admin"))
                .order((api_keys::created_at.asc(), api_keys::id.asc()))
                .select(ApiKeyRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    pub async fn revoke_api_key(
        &self,
        id: &str,
        now: String,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            diesel::update(
                api_keys::table
                    .filter(api_keys::id.eq(&id))
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(Some(now)))
            .execute(conn)?;
            Ok(api_keys::table
                .find(id)
                .select(ApiKeyRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    // ----- connector accounts -----------------------------------------------

    /// [`StoreError::Duplicate`] if the merchant already has an account of that name.
    pub async fn insert_connector_account(
        &self,
        a: ConnectorAccountRecord,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(connector_accounts::table)
                .values(&a)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    /// Inserts the account, or, if its id exists, overwrites every column
    /// but `id` and `created_at`. [`StoreError::Duplicate`] if another
    /// account of the merchant has that name.
    pub async fn upsert_connector_account(
        &self,
        a: ConnectorAccountRecord,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                let updated = diesel::update(connector_accounts::table.find(&a.id))
                    .set((
                        connector_accounts::merchant_id.eq(&a.merchant_id),
                        connector_accounts::name.eq(&a.name),
                        connector_accounts::connector.eq(&a.connector),
                        connector_accounts::environment.eq(&a.environment),
                        connector_accounts::base_url.eq(&a.base_url),
                        connector_accounts::config_ciphertext.eq(&a.config_ciphertext),
                        connector_accounts::updated_at.eq(&a.updated_at),
                    ))
                    .execute(conn)
                    .map_err(duplicate)?;
                if updated == 0 {
                    diesel::insert_into(connector_accounts::table)
                        .values(&a)
                        .execute(conn)
                        .map_err(duplicate)?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Overwrites the account's environment, base URL, sealed credentials
    /// and `updated_at` (its id, merchant, name and connector never change);
    /// `false` if there is no account with this id.
    pub async fn update_connector_account(
        &self,
        a: ConnectorAccountRecord,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let updated = diesel::update(connector_accounts::table.find(&a.id))
                .set((
                    connector_accounts::environment.eq(&a.environment),
                    connector_accounts::base_url.eq(&a.base_url),
                    connector_accounts::config_ciphertext.eq(&a.config_ciphertext),
                    connector_accounts::updated_at.eq(&a.updated_at),
                ))
                .execute(conn)?;
            Ok(updated > 0)
        })
        .await
    }

    pub async fn get_connector_account(
        &self,
        id: &str,
    ) -> Result<Option<ConnectorAccountRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(connector_accounts::table
                .find(id)
                .select(ConnectorAccountRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    pub async fn find_connector_account(
        &self,
        merchant_id: &str,
        name: &str,
    ) -> Result<Option<ConnectorAccountRecord>, StoreError> {
        let merchant_id = merchant_id.to_owned();
        let name = name.to_owned();
        self.run(move |conn| {
            Ok(connector_accounts::table
                .filter(connector_accounts::merchant_id.eq(merchant_id))
                .filter(connector_accounts::name.eq(name))
                .select(ConnectorAccountRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// The merchant's accounts, by name.
    pub async fn list_connector_accounts(
        &self,
        merchant_id: &str,
    ) -> Result<Vec<ConnectorAccountRecord>, StoreError> {
        let merchant_id = merchant_id.to_owned();
        self.run(move |conn| {
            Ok(connector_accounts::table
                .filter(connector_accounts::merchant_id.eq(merchant_id))
                .order(connector_accounts::name.asc())
                .select(ConnectorAccountRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    /// The merchant and its connector accounts (by name), in one round
    /// trip: what routing a payment needs.
    pub async fn merchant_and_accounts(
        &self,
        merchant_id: &str,
    ) -> Result<(Option<MerchantRecord>, Vec<ConnectorAccountRecord>), StoreError> {
        let merchant_id = merchant_id.to_owned();
        self.run(move |conn| {
            let merchant = merchants::table
                .find(&merchant_id)
                .select(MerchantRecord::as_select())
                .get_result(conn)
                .optional()?;
            let accounts = connector_accounts::table
                .filter(connector_accounts::merchant_id.eq(&merchant_id))
                .order(connector_accounts::name.asc())
                .select(ConnectorAccountRecord::as_select())
                .load(conn)?;
            Ok((merchant, accounts))
        })
        .await
    }

    // ----- payments -----------------------------------------------------------

    /// Inserts the payment and its first events in one transaction.
    /// [`StoreError::Duplicate`] if the id (or an event's) is taken.
    pub async fn insert_payment(
        &self,
        p: PaymentRecord,
        events: Vec<PaymentEventRecord>,
    ) -> Result<(), StoreError> {
        self.insert_payment_with(p, events, None).await
    }

    /// [`Store::insert_payment`], the payment's lock taken for `lock.owner`
    /// in the same transaction: a new payment is locked from its first
    /// moment without a round trip of its own.
    pub async fn insert_locked_payment(
        &self,
        p: PaymentRecord,
        events: Vec<PaymentEventRecord>,
        lock: PaymentLockRecord,
    ) -> Result<(), StoreError> {
        self.insert_payment_with(p, events, Some(lock)).await
    }

    async fn insert_payment_with(
        &self,
        p: PaymentRecord,
        events: Vec<PaymentEventRecord>,
        lock: Option<PaymentLockRecord>,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| {
                diesel::insert_into(payments::table)
                    .values(&p)
                    .execute(conn)
                    .map_err(duplicate)?;
                insert_events(conn, &events)?;
                if let Some(lock) = &lock {
                    diesel::insert_into(payment_locks::table)
                        .values(lock)
                        .execute(conn)
                        .map_err(duplicate)?;
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(payments::table
                .find(id)
                .select(PaymentRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    pub async fn find_payment_by_connector_reference(
        &self,
        connector_account_id: &str,
        connector_reference: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let account = connector_account_id.to_owned();
        let reference = connector_reference.to_owned();
        self.run(move |conn| {
            Ok(payments::table
                .filter(payments::connector_account_id.eq(account))
                .filter(payments::connector_reference.eq(reference))
                .order((payments::created_at.asc(), payments::id.asc()))
                .select(PaymentRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// In one transaction: writes every column of `p` if the stored version
    /// is still `expected_version` (else [`StoreError::Conflict`]), appends
    /// `events` and inserts or overwrites each of `refunds` by id.
    /// `p.version` is the new version (normally `expected_version + 1`).
    pub async fn update_payment(
        &self,
        p: PaymentRecord,
        expected_version: i64,
        events: Vec<PaymentEventRecord>,
        refunds: Vec<RefundRecord>,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.transaction(|conn| write_payment(conn, &p, expected_version, &events, &refunds))
        })
        .await
    }

    /// [`Store::update_payment`], with the events numbered after the last
    /// one stored (inside the transaction, so no earlier read is needed)
    /// and, for a provider notification, its seen-row written in the same
    /// transaction: a notification counts as seen only if what it says was
    /// applied. `Ok(false)` (and nothing written) when `seen` was already
    /// recorded: a duplicate.
    ///
    /// With `release_lock`, the payment's lock held by that owner is
    /// released in the same transaction: the last write of an operation
    /// needs no round trip of its own to unlock.
    pub async fn save_payment(
        &self,
        p: PaymentRecord,
        expected_version: i64,
        mut events: Vec<PaymentEventRecord>,
        refunds: Vec<RefundRecord>,
        seen: Option<NotificationSeenRecord>,
        release_lock: Option<String>,
    ) -> Result<bool, StoreError> {
        let result = self
            .run(move |conn| {
                conn.transaction(|conn| {
                    // A delivery of the same notification that committed
                    // first (perhaps concurrently) applied it already.
                    if let Some(seen) = &seen {
                        if !insert_seen(conn, seen)? {
                            return Err(StoreError::AlreadySeen);
                        }
                    }
                    // The payment row is written before anything is read: on
                    // SQLite a transaction that reads first can be refused
                    // its write (its snapshot went stale) instead of
                    // waiting; writing first takes the write lock at once,
                    // and serialises the writers of the payment's events.
                    write_payment(conn, &p, expected_version, &[], &refunds)?;
                    if !events.is_empty() {
                        let last: Option<i64> = payment_events::table
                            .filter(payment_events::payment_id.eq(&p.id))
                            .select(diesel::dsl::max(payment_events::seq))
                            .get_result(conn)?;
                        let base = last.unwrap_or(0);
                        for (i, e) in events.iter_mut().enumerate() {
                            e.seq = base + i as i64 + 1;
                        }
                        insert_events(conn, &events)?;
                    }
                    if let Some(owner) = &release_lock {
                        diesel::delete(
                            payment_locks::table
                                .find(&p.id)
                                .filter(payment_locks::owner.eq(owner)),
                        )
                        .execute(conn)?;
                    }
                    Ok(true)
                })
            })
            .await;
        match result {
            Err(StoreError::AlreadySeen) => Ok(false),
            other => other,
        }
    }

    /// The payment's history, by `seq`.
    pub async fn list_payment_events(
        &self,
        payment_id: &str,
    ) -> Result<Vec<PaymentEventRecord>, StoreError> {
        let payment_id = payment_id.to_owned();
        self.run(move |conn| {
            Ok(payment_events::table
                .filter(payment_events::payment_id.eq(payment_id))
                .order(payment_events::seq.asc())
                .select(PaymentEventRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    // ----- refunds ------------------------------------------------------------

    /// The payment's refunds, oldest first.
    pub async fn list_refunds(&self, payment_id: &str) -> Result<Vec<RefundRecord>, StoreError> {
        let payment_id = payment_id.to_owned();
        self.run(move |conn| {
            Ok(refunds::table
                .filter(refunds::payment_id.eq(payment_id))
                .order((refunds::created_at.asc(), refunds::id.asc()))
                .select(RefundRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    pub async fn find_refund_by_connector_reference(
        &self,
        payment_id: &str,
        connector_reference: &str,
    ) -> Result<Option<RefundRecord>, StoreError> {
        let payment_id = payment_id.to_owned();
        let reference = connector_reference.to_owned();
        self.run(move |conn| {
            Ok(refunds::table
                .filter(refunds::payment_id.eq(payment_id))
                .filter(refunds::connector_reference.eq(reference))
                .order((refunds::created_at.asc(), refunds::id.asc()))
                .select(RefundRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    // ----- idempotency ----------------------------------------------------------

    /// Claims `(rec.merchant_id, rec.key)` by inserting `rec` (normally in
    /// state `in_progress`, leased); if the key is already there and has
    /// not expired, returns the stored record instead. Race-free: the
    /// primary key decides. An expired key (past `expires_at` at `now_ms`)
    /// is forgotten and claimed anew.
    pub async fn begin_idempotent(
        &self,
        rec: IdempotencyRecord,
        now_ms: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        self.run(move |conn| {
            // A key deleted between our failed insert and our read is tried
            // again; more than a few rounds means someone keeps toggling it.
            for _ in 0..3 {
                match diesel::insert_into(idempotency_keys::table)
                    .values(&rec)
                    .execute(conn)
                {
                    Ok(_) => return Ok(IdempotencyBegin::Started),
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                    Err(e) => return Err(e.into()),
                }
                match get_idempotent(conn, &rec.merchant_id, &rec.key)? {
                    Some(existing) if existing.expires_at > now_ms => {
                        return Ok(IdempotencyBegin::Existing(Box::new(existing)))
                    }
                    Some(_) => {
                        diesel::delete(
                            idempotency_keys::table
                                .find((&rec.merchant_id, &rec.key))
                                .filter(idempotency_keys::expires_at.le(now_ms)),
                        )
                        .execute(conn)?;
                    }
                    None => {}
                }
            }
            Err(StoreError::Conflict)
        })
        .await
    }

    /// Takes over a claim whose holder's lease ran out (it crashed, or it
    /// gave the claim back after an unknown outcome): `true` if this caller
    /// now holds it, until `lease_until`. Only one caller can win.
    pub async fn take_over_idempotent(
        &self,
        merchant_id: &str,
        key: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let merchant_id = merchant_id.to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            let updated = diesel::update(
                idempotency_keys::table
                    .find((merchant_id, key))
                    .filter(idempotency_keys::state.eq(IDEMPOTENCY_IN_PROGRESS))
                    .filter(idempotency_keys::lease_until.lt(now_ms)),
            )
            .set(idempotency_keys::lease_until.eq(lease_until))
            .execute(conn)?;
            Ok(updated == 1)
        })
        .await
    }

    /// Gives an `in_progress` claim back (its lease ends now) but keeps it
    /// and its resource id: the next retry resumes the same operation.
    pub async fn release_idempotent(&self, merchant_id: &str, key: &str) -> Result<(), StoreError> {
        let merchant_id = merchant_id.to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            diesel::update(
                idempotency_keys::table
                    .find((merchant_id, key))
                    .filter(idempotency_keys::state.eq(IDEMPOTENCY_IN_PROGRESS)),
            )
            .set(idempotency_keys::lease_until.eq(0_i64))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Forgets every idempotency key past its expiry; how many went.
    pub async fn purge_expired_idempotency(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.run(move |conn| {
            Ok(diesel::delete(
                idempotency_keys::table.filter(idempotency_keys::expires_at.le(now_ms)),
            )
            .execute(conn)?)
        })
        .await
    }

    /// Claims still `in_progress` whose lease has run out, oldest first.
    pub async fn stale_idempotency_claims(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.run(move |conn| {
            Ok(idempotency_keys::table
                .filter(idempotency_keys::state.eq(IDEMPOTENCY_IN_PROGRESS))
                .filter(idempotency_keys::lease_until.lt(now_ms))
                .order(idempotency_keys::created_at.asc())
                .limit(limit)
                .select(IdempotencyRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    // ----- payment locks --------------------------------------------------------

    /// Takes the payment's lock for `owner` until `expires_at` (Unix ms) if
    /// nobody holds it, or its holder's lease ran out. `true` if taken. The
    /// database decides between nodes: the primary key admits one holder.
    pub async fn try_lock_payment(
        &self,
        payment_id: &str,
        owner: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let record = PaymentLockRecord {
            payment_id: payment_id.to_owned(),
            owner: owner.to_owned(),
            expires_at,
        };
        self.run(move |conn| take_payment_lock(conn, &record, now_ms))
            .await
    }

    /// Takes the payment's lock for `owner` until `expires_at` (Unix ms),
    /// as [`Store::try_lock_payment`], then reads the payment and its
    /// connector account under it, all in one round trip. A payment that
    /// does not exist leaves no lock behind.
    pub async fn lock_and_read_payment(
        &self,
        payment_id: &str,
        owner: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<PaymentLockAttempt, StoreError> {
        let record = PaymentLockRecord {
            payment_id: payment_id.to_owned(),
            owner: owner.to_owned(),
            expires_at,
        };
        self.run(move |conn| {
            if !take_payment_lock(conn, &record, now_ms)? {
                return Ok(PaymentLockAttempt::Held);
            }
            let found = payments::table
                .left_join(connector_accounts::table)
                .filter(payments::id.eq(&record.payment_id))
                .select((
                    PaymentRecord::as_select(),
                    Option::<ConnectorAccountRecord>::as_select(),
                ))
                .first::<(PaymentRecord, Option<ConnectorAccountRecord>)>(conn)
                .optional()?;
            match found {
                Some(found) => Ok(PaymentLockAttempt::Locked(Box::new(found))),
                None => {
                    diesel::delete(
                        payment_locks::table
                            .find(&record.payment_id)
                            .filter(payment_locks::owner.eq(&record.owner)),
                    )
                    .execute(conn)?;
                    Ok(PaymentLockAttempt::Missing)
                }
            }
        })
        .await
    }

    /// Extends the payment's lock to `expires_at` while `owner` holds it;
    /// `false` if it does not any more.
    pub async fn renew_payment_lock(
        &self,
        payment_id: &str,
        owner: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let payment_id = payment_id.to_owned();
        let owner = owner.to_owned();
        self.run(move |conn| {
            let updated = diesel::update(
                payment_locks::table
                    .find(payment_id)
                    .filter(payment_locks::owner.eq(owner)),
            )
            .set(payment_locks::expires_at.eq(expires_at))
            .execute(conn)?;
            Ok(updated == 1)
        })
        .await
    }

    /// Releases the payment's lock if `owner` still holds it.
    pub async fn unlock_payment(&self, payment_id: &str, owner: &str) -> Result<(), StoreError> {
        let payment_id = payment_id.to_owned();
        let owner = owner.to_owned();
        self.run(move |conn| {
            diesel::delete(
                payment_locks::table
                    .find(payment_id)
                    .filter(payment_locks::owner.eq(owner)),
            )
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    // ----- reconciliation ----------------------------------------------------------

    /// Payments with an unsettled outcome due for another look at `now_ms`,
    /// the longest-waiting first.
    pub async fn payments_to_reconcile(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        self.run(move |conn| {
            Ok(payments::table
                .filter(payments::reconcile_after.le(now_ms))
                .order(payments::reconcile_after.asc())
                .limit(limit)
                .select(PaymentRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Every payment with an unsettled outcome, due or not (for operators).
    pub async fn unsettled_payments(&self, limit: i64) -> Result<Vec<PaymentRecord>, StoreError> {
        self.run(move |conn| {
            Ok(payments::table
                .filter(payments::reconcile_after.is_not_null())
                .order(payments::reconcile_after.asc())
                .limit(limit)
                .select(PaymentRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Refunds still `pending` (their outcome unknown or unconfirmed).
    pub async fn pending_refunds(&self, limit: i64) -> Result<Vec<RefundRecord>, StoreError> {
        self.run(move |conn| {
            Ok(refunds::table
                .filter(refunds::status.eq("pending"))
                .order(refunds::updated_at.asc())
                .limit(limit)
                .select(RefundRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    pub async fn get_refund(&self, id: &str) -> Result<Option<RefundRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(refunds::table
                .find(id)
                .select(RefundRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    pub async fn get_idempotent(
        &self,
        merchant_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let merchant_id = merchant_id.to_owned();
        let key = key.to_owned();
        self.run(move |conn| get_idempotent(conn, &merchant_id, &key))
            .await
    }

    /// Stores the response of the key's request and marks it `done`.
    /// `NotFound` if the key does not exist.
    pub async fn finish_idempotent(
        &self,
        merchant_id: &str,
        key: &str,
        status: i32,
        body: String,
        now: String,
    ) -> Result<(), StoreError> {
        let merchant_id = merchant_id.to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            let updated = diesel::update(idempotency_keys::table.find((merchant_id, key)))
                .set((
                    idempotency_keys::state.eq(IDEMPOTENCY_DONE),
                    idempotency_keys::response_status.eq(Some(status)),
                    idempotency_keys::response_body.eq(Some(body)),
                    idempotency_keys::updated_at.eq(now),
                ))
                .execute(conn)?;
            if updated == 0 {
                return Err(DieselError::NotFound.into());
            }
            Ok(())
        })
        .await
    }

    /// Forgets a key still `in_progress` (when its request failed before
    /// doing anything). A finished key, or none, is left alone.
    pub async fn delete_idempotent(&self, merchant_id: &str, key: &str) -> Result<(), StoreError> {
        let merchant_id = merchant_id.to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            diesel::delete(
                idempotency_keys::table
                    .find((merchant_id, key))
                    .filter(idempotency_keys::state.eq(IDEMPOTENCY_IN_PROGRESS)),
            )
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    // ----- notifications --------------------------------------------------------

    /// Records a provider notification; `true` if this
    /// `(connector_account_id, event_id)` was not seen before.
    pub async fn mark_notification_seen(
        &self,
        rec: NotificationSeenRecord,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| insert_seen(conn, &rec)).await
    }

    // ----- plugins ----------------------------------------------------------------

    /// Records a plugin version. [`StoreError::Duplicate`] if the plugin
    /// already has this version.
    pub async fn insert_plugin_version(&self, v: PluginVersionRecord) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(plugin_versions::table)
                .values(&v)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    /// One version, package bytes included.
    pub async fn get_plugin_version(
        &self,
        plugin_id: &str,
        version: &str,
    ) -> Result<Option<PluginVersionRecord>, StoreError> {
        let key = (plugin_id.to_owned(), version.to_owned());
        self.run(move |conn| {
            Ok(plugin_versions::table
                .find(key)
                .select(PluginVersionRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// A plugin's versions (without package bytes), oldest first.
    pub async fn list_plugin_versions(
        &self,
        plugin_id: &str,
    ) -> Result<Vec<PluginVersionSummary>, StoreError> {
        let plugin_id = plugin_id.to_owned();
        self.run(move |conn| {
            Ok(plugin_versions::table
                .filter(plugin_versions::plugin_id.eq(plugin_id))
                .order((
                    plugin_versions::installed_at.asc(),
                    plugin_versions::version.asc(),
                ))
                .select(PluginVersionSummary::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Removes one version. Returns whether it existed.
    pub async fn delete_plugin_version(
        &self,
        plugin_id: &str,
        version: &str,
    ) -> Result<bool, StoreError> {
        let key = (plugin_id.to_owned(), version.to_owned());
        self.run(move |conn| {
            Ok(diesel::delete(plugin_versions::table.find(key)).execute(conn)? > 0)
        })
        .await
    }

    pub async fn get_plugin(&self, id: &str) -> Result<Option<PluginRecord>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            Ok(plugins::table
                .find(id)
                .select(PluginRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// A plugin's first row. [`StoreError::Duplicate`] if it has one.
    pub async fn insert_plugin(&self, p: PluginRecord) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(plugins::table)
                .values(&p)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    /// Every plugin, by id.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        self.run(|conn| {
            Ok(plugins::table
                .order(plugins::id.asc())
                .select(PluginRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    /// Reads a plugin's row and writes what `change` makes of it, in one
    /// transaction, so two operators activating versions at once cannot
    /// lose each other's change (`previous_version` stays exact). When
    /// `change` refuses, nothing is written and its reason is returned.
    pub async fn change_plugin<F, R>(
        &self,
        id: &str,
        change: F,
    ) -> Result<Result<PluginRecord, R>, StoreError>
    where
        F: FnOnce(Option<PluginRecord>) -> Result<PluginRecord, R> + Send + 'static,
        R: Send + 'static,
    {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.transaction(|conn| {
                // Write first: it takes the write lock (SQLite) or the row
                // lock (PostgreSQL) before the read, so a concurrent writer
                // waits instead of making this transaction's read stale.
                diesel::update(plugins::table.find(&id))
                    .set(plugins::updated_at.eq(plugins::updated_at))
                    .execute(conn)?;
                let current = plugins::table
                    .find(&id)
                    .select(PluginRecord::as_select())
                    .get_result(conn)
                    .optional()?;
                let existed = current.is_some();
                let next = match change(current) {
                    Ok(next) => next,
                    Err(refused) => return Ok(Err(refused)),
                };
                if existed {
                    diesel::update(plugins::table.find(&id))
                        .set(&next)
                        .execute(conn)?;
                } else {
                    diesel::insert_into(plugins::table)
                        .values(&next)
                        .execute(conn)?;
                }
                Ok(Ok(next))
            })
        })
        .await
    }

    /// Forgets a plugin: its row and every version's.
    pub async fn delete_plugin(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.transaction(|conn| {
                diesel::delete(plugin_versions::table.filter(plugin_versions::plugin_id.eq(&id)))
                    .execute(conn)?;
                diesel::delete(plugins::table.find(&id)).execute(conn)?;
                Ok(())
            })
        })
        .await
    }

    /// Every merchant's accounts served by `connector`.
    pub async fn accounts_using_connector(
        &self,
        connector: &str,
    ) -> Result<Vec<ConnectorAccountRecord>, StoreError> {
        let connector = connector.to_owned();
        self.run(move |conn| {
            Ok(connector_accounts::table
                .filter(connector_accounts::connector.eq(connector))
                .order((
                    connector_accounts::merchant_id.asc(),
                    connector_accounts::name.asc(),
                ))
                .select(ConnectorAccountRecord::as_select())
                .load(conn)?)
        })
        .await
    }

    // ----- audit ------------------------------------------------------------------

    /// Every text value of every row of every table, one per line, so tests
    /// can prove that card numbers are never stored.
    pub async fn dump_all_text(&self) -> Result<String, StoreError> {
        self.run(|conn| {
            let mut out: Vec<String> = Vec::new();

            for r in merchants::table
                .select(MerchantRecord::as_select())
                .load(conn)?
            {
                let MerchantRecord {
                    id,
                    name,
                    created_at,
                    default_connector,
                } = r;
                out.extend([id, name, created_at]);
                out.extend(default_connector);
            }

            for r in api_keys::table
                .select(ApiKeyRecord::as_select())
                .load(conn)?
            {
                let ApiKeyRecord {
                    id,
                    merchant_id,
                    kind,
                    key_hash,
                    prefix,
                    created_at,
                    revoked_at,
                } = r;
                out.extend([id, kind, key_hash, prefix, created_at]);
                out.extend(merchant_id);
                out.extend(revoked_at);
            }

            for r in connector_accounts::table
                .select(ConnectorAccountRecord::as_select())
                .load(conn)?
            {
                let ConnectorAccountRecord {
                    id,
                    merchant_id,
                    name,
                    connector,
                    environment,
                    base_url,
                    config_ciphertext,
                    created_at,
                    updated_at,
                } = r;
                out.extend([
                    id,
                    merchant_id,
                    name,
                    connector,
                    environment,
                    config_ciphertext,
                    created_at,
                    updated_at,
                ]);
                out.extend(base_url);
            }

            for r in payments::table
                .select(PaymentRecord::as_select())
                .load(conn)?
            {
                let PaymentRecord {
                    id,
                    merchant_id,
                    connector_account_id,
                    connector,
                    reference,
                    amount: _,
                    currency,
                    capture_method,
                    status,
                    amount_authorized: _,
                    amount_captured: _,
                    amount_refunded: _,
                    amount_capture_pending: _,
                    cancel_pending: _,
                    reconcile_after: _,
                    reconcile_attempts: _,
                    connector_reference,
                    connector_data,
                    next_action,
                    return_url,
                    failure_code,
                    failure_message,
                    provider_status,
                    payment_method_type,
                    card_last4,
                    metadata,
                    version: _,
                    created_at,
                    updated_at,
                    three_ds,
                    capture_before_ms: _,
                    delayed_capture,
                } = r;
                out.extend([
                    id,
                    merchant_id,
                    connector_account_id,
                    connector,
                    reference,
                    currency,
                    capture_method,
                    status,
                    return_url,
                    payment_method_type,
                    metadata,
                    created_at,
                    updated_at,
                ]);
                out.extend(
                    [
                        connector_reference,
                        connector_data,
                        next_action,
                        failure_code,
                        failure_message,
                        provider_status,
                        card_last4,
                        three_ds,
                        delayed_capture,
                    ]
                    .into_iter()
                    .flatten(),
                );
            }

            for r in payment_events::table
                .select(PaymentEventRecord::as_select())
                .load(conn)?
            {
                let PaymentEventRecord {
                    id,
                    payment_id,
                    seq: _,
                    from_status,
                    to_status,
                    cause,
                    detail,
                    created_at,
                } = r;
                out.extend([id, payment_id, to_status, cause, created_at]);
                out.extend(from_status);
                out.extend(detail);
            }

            for r in refunds::table
                .select(RefundRecord::as_select())
                .load(conn)?
            {
                let RefundRecord {
                    id,
                    payment_id,
                    amount: _,
                    currency,
                    status,
                    reason,
                    connector_reference,
                    failure_code,
                    failure_message,
                    created_at,
                    updated_at,
                    psp_key,
                } = r;
                out.extend([id, payment_id, currency, status, created_at, updated_at]);
                out.extend(
                    [
                        reason,
                        connector_reference,
                        failure_code,
                        failure_message,
                        psp_key,
                    ]
                    .into_iter()
                    .flatten(),
                );
            }

            for r in idempotency_keys::table
                .select(IdempotencyRecord::as_select())
                .load(conn)?
            {
                let IdempotencyRecord {
                    merchant_id,
                    key,
                    request_hash,
                    state,
                    response_status: _,
                    response_body,
                    created_at,
                    updated_at,
                    resource_id,
                    lease_until: _,
                    expires_at: _,
                } = r;
                out.extend([
                    merchant_id,
                    key,
                    request_hash,
                    state,
                    created_at,
                    updated_at,
                ]);
                out.extend(response_body);
                out.extend(resource_id);
            }

            for r in notifications_seen::table
                .select(NotificationSeenRecord::as_select())
                .load(conn)?
            {
                let NotificationSeenRecord {
                    connector_account_id,
                    event_id,
                    received_at,
                } = r;
                out.extend([connector_account_id, event_id, received_at]);
            }

            Ok(out.join("\n"))
        })
        .await
    }
}

/// Records a notification as seen; `false` if it was already.
fn insert_seen(
    conn: &mut AnyConnection,
    seen: &NotificationSeenRecord,
) -> Result<bool, StoreError> {
    match diesel::insert_into(notifications_seen::table)
        .values(seen)
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn write_payment(
    conn: &mut AnyConnection,
    p: &PaymentRecord,
    expected_version: i64,
    events: &[PaymentEventRecord],
    refunds: &[RefundRecord],
) -> Result<(), StoreError> {
    let updated = diesel::update(
        payments::table
            .filter(payments::id.eq(&p.id))
            .filter(payments::version.eq(expected_version)),
    )
    .set(p)
    .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::Conflict);
    }
    insert_events(conn, events)?;
    for refund in refunds {
        // The payment row written above serialises writers of its refunds,
        // so update-then-insert cannot race.
        let updated = diesel::update(refunds::table.find(&refund.id))
            .set(refund)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(refunds::table)
                .values(refund)
                .execute(conn)
                .map_err(duplicate)?;
        }
    }
    Ok(())
}

/// Inserts `record` unless a lease that has not expired at `now_ms` holds
/// the payment; `true` if taken. A free payment costs one statement; an
/// expired lease is removed, then the insert tried again. No transaction: a
/// failed insert would abort a PostgreSQL one.
fn take_payment_lock(
    conn: &mut AnyConnection,
    record: &PaymentLockRecord,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let insert = |conn: &mut AnyConnection| match diesel::insert_into(payment_locks::table)
        .values(record)
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(StoreError::from(e)),
    };
    if insert(conn)? {
        return Ok(true);
    }
    let expired = diesel::delete(
        payment_locks::table
            .find(&record.payment_id)
            .filter(payment_locks::expires_at.lt(now_ms)),
    )
    .execute(conn)?;
    if expired == 0 {
        return Ok(false);
    }
    insert(conn)
}

fn insert_events(
    conn: &mut AnyConnection,
    events: &[PaymentEventRecord],
) -> Result<(), StoreError> {
    for event in events {
        diesel::insert_into(payment_events::table)
            .values(event)
            .execute(conn)
            .map_err(duplicate)?;
    }
    Ok(())
}

fn get_idempotent(
    conn: &mut AnyConnection,
    merchant_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    Ok(idempotency_keys::table
        .find((merchant_id, key))
        .select(IdempotencyRecord::as_select())
        .get_result(conn)
        .optional()?)
}

// ----- plugin ownership ---------------------------------------------------------
//
// Which publisher owns each plugin id, and which credential fields any of its
// versions ever declared secret (see `registry.rs`). Kept apart from the
// plugin rows above: those follow the versions an operator installs and
// removes, these must outlive them.

impl Store {
    /// The publisher that owns a plugin id, if an install bound it.
    pub async fn get_plugin_publisher(
        &self,
        plugin_id: &str,
    ) -> Result<Option<models::PluginPublisherRecord>, StoreError> {
        let plugin_id = plugin_id.to_owned();
        self.run(move |conn| {
            Ok(schema::plugin_publishers::table
                .find(plugin_id)
                .select(models::PluginPublisherRecord::as_select())
                .get_result(conn)
                .optional()?)
        })
        .await
    }

    /// Binds a plugin id to its publisher. [`StoreError::Duplicate`] when
    /// the id is bound already (another node may have been first).
    pub async fn insert_plugin_publisher(
        &self,
        record: models::PluginPublisherRecord,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(schema::plugin_publishers::table)
                .values(&record)
                .execute(conn)
                .map_err(duplicate)?;
            Ok(())
        })
        .await
    }

    /// Rewrites a binding (the same publisher, now with a verified package).
    pub async fn update_plugin_publisher(
        &self,
        record: models::PluginPublisherRecord,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::update(schema::plugin_publishers::table.find(record.plugin_id.clone()))
                .set(&record)
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Every credential field any version of the plugin declared secret.
    pub async fn plugin_secret_fields(&self, plugin_id: &str) -> Result<Vec<String>, StoreError> {
        let plugin_id = plugin_id.to_owned();
        self.run(move |conn| {
            Ok(schema::plugin_secret_fields::table
                .filter(schema::plugin_secret_fields::plugin_id.eq(plugin_id))
                .order(schema::plugin_secret_fields::field.asc())
                .select(schema::plugin_secret_fields::field)
                .load(conn)?)
        })
        .await
    }

    /// Adds to the plugin's secret credential fields; a field recorded
    /// already stays as it is (nothing ever leaves this set while the
    /// plugin id keeps its owner).
    pub async fn add_plugin_secret_fields(
        &self,
        plugin_id: &str,
        fields: Vec<String>,
        now: String,
    ) -> Result<(), StoreError> {
        let plugin_id = plugin_id.to_owned();
        self.run(move |conn| {
            use schema::plugin_secret_fields as t;
            let known: Vec<String> = t::table
                .filter(t::plugin_id.eq(&plugin_id))
                .select(t::field)
                .load(conn)?;
            for field in fields {
                if known.contains(&field) {
                    continue;
                }
                let record = models::PluginSecretFieldRecord {
                    plugin_id: plugin_id.clone(),
                    field,
                    recorded_at: now.clone(),
                };
                // Each insert stands alone (no transaction), so a row another
                // node added meanwhile only makes this one a no-op.
                match diesel::insert_into(t::table)
                    .values(&record)
                    .execute(conn)
                    .map_err(duplicate)
                {
                    Ok(_) | Err(StoreError::Duplicate) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .await
    }

    /// Forgets who owned a plugin id and its secret fields, once no version
    /// and no account is left of it.
    pub async fn delete_plugin_ownership(&self, plugin_id: &str) -> Result<(), StoreError> {
        let plugin_id = plugin_id.to_owned();
        self.run(move |conn| {
            conn.transaction(|conn| {
                diesel::delete(
                    schema::plugin_secret_fields::table
                        .filter(schema::plugin_secret_fields::plugin_id.eq(&plugin_id)),
                )
                .execute(conn)?;
                diesel::delete(schema::plugin_publishers::table.find(&plugin_id)).execute(conn)?;
                Ok(())
            })
        })
        .await
    }

    /// Every stored version's plugin id and manifest, to record the secret
    /// fields of versions installed before they were recorded.
    pub async fn list_plugin_version_manifests(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.run(|conn| {
            Ok(plugin_versions::table
                .order((
                    plugin_versions::plugin_id.asc(),
                    plugin_versions::version.asc(),
                ))
                .select((plugin_versions::plugin_id, plugin_versions::manifest_toml))
                .load(conn)?)
        })
        .await
    }
}
