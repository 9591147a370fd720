//! Test harness: runs the real `passerelle serve --demo` binary against a
//! fresh database (SQLite file or a new PostgreSQL database), reads its
//! `demo.json`, and talks to it over HTTP like a storefront would.

#![allow(dead_code)]

pub mod cli;
pub mod logs;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use (trust auth, as on CI machines).
pub fn postgres_admin_url() -> String {
    std::env::var("PASSERELLE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(sql: &str) {
    let status = Command::new("psql")
        .arg(postgres_admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdout(Stdio::null())
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql failed: {sql}");
}

fn postgres_url_for(db: &str) -> String {
    let admin = postgres_admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{db}")
}

pub struct TestServer {
    pub backend: Backend,
    pub base_url: String,
    pub secret_key: String,
    pub admin_key: String,
    pub demo: Value,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub database_url: String,
    pg_database: Option<String>,
    child: Option<Child>,
    pub http: reqwest::Client,
    /// `serve` arguments beyond the common ones, kept for restarts.
    extra_args: Vec<String>,
    /// A dummy PSP outside the server's process (it outlives a killed
    /// server), set by [`TestServer::use_dummy_psp`].
    external_dummy_psp: Option<String>,
    /// Where the server listens: a free port at first, then the same one
    /// across restarts (its public URL, which payments carry, must not move).
    listen: String,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with_args(backend, &[]).await
    }

    /// Starts a demo server with more `serve` arguments.
    pub async fn start_with_args(backend: Backend, extra_args: &[&str]) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!(
            "passerelle-it-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.join("test.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = format!("passerelle_it_{}", rand_suffix().to_lowercase());
                psql(&format!("CREATE DATABASE {db}"));
                (postgres_url_for(&db), Some(db))
            }
        };
        let log_path = data_dir.join("server.log");
        let mut server = TestServer {
            backend,
            base_url: String::new(),
            secret_key: String::new(),
            admin_key: String::new(),
            demo: Value::Null,
            data_dir: data_dir.clone(),
            log_path,
            database_url,
            pg_database,
            child: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            external_dummy_psp: None,
            listen: "127.0.0.1:0".into(),
        };
        server.spawn_and_wait().await;
        server
    }

    /// Another server on the same database (and the same extra arguments,
    /// so the same master key if one is given), with its own data
    /// directory: a second node.
    #[allow(dead_code)]
    pub async fn start_second_node(&self) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!(
            "passerelle-it-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut server = TestServer {
            backend: self.backend,
            base_url: String::new(),
            secret_key: String::new(),
            admin_key: String::new(),
            demo: Value::Null,
            data_dir: data_dir.clone(),
            log_path: data_dir.join("server.log"),
            database_url: self.database_url.clone(),
            // The first node owns (and drops) the database.
            pg_database: None,
            child: None,
            http: self.http.clone(),
            extra_args: self.extra_args.clone(),
            external_dummy_psp: None,
            listen: "127.0.0.1:0".into(),
        };
        server.spawn_and_wait().await;
        server
    }

    /// Stops the server and starts it again on the same data directory and
    /// database (the log file starts afresh).
    pub async fn restart(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(self.data_dir.join("demo.json"));
        self.spawn_and_wait().await;
        // The demo set-up points the dummy account at the new process's
        // own sandbox again.
        if let Some(url) = self.external_dummy_psp.take() {
            self.use_dummy_psp(&url).await;
        }
    }

    /// Points the demo's dummy account at a dummy PSP outside the server
    /// (started by the test), so that killing the server keeps the PSP and
    /// its ledger.
    pub async fn use_dummy_psp(&mut self, base_url: &str) {
        let account = self.demo["connectors"]["dummy"]["account_id"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = self
            .http
            .patch(self.url(&format!("/v1/admin/connector_accounts/{account}")))
            .bearer_auth(&self.admin_key)
            .json(&json!({
                "base_url": base_url,
                "credentials": {"api_key": "sk_dummy_test", "webhook_secret": "whsec_dummy_test"},
            }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{status}: {}",
            resp.text().await.unwrap()
        );
        self.external_dummy_psp = Some(base_url.to_string());
    }

    async fn spawn_and_wait(&mut self) {
        let data_dir = self.data_dir.clone();
        let log = std::fs::File::create(&self.log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args([
                "serve",
                "--demo",
                "--listen",
                &self.listen,
                "--workers",
                "2",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--psp-specs")
            .arg(psp_specs_arg())
            // One compile cache for every test server: each would otherwise
            // compile the five bundled connectors again (seconds of CPU per
            // server in a debug build). Entries are written whole and named
            // by component and engine settings, so sharing is safe.
            .arg("--compile-cache")
            .arg(shared_compile_cache())
            .args(&self.extra_args)
            .env(
                "PASSERELLE_LOG",
                "debug,h2=info,hyper=info,reqwest=info,cranelift=warn,wasmtime=info",
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the passerelle binary starts");
        self.child = Some(child);
        let server = self;
        let demo_path = data_dir.join("demo.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(bytes) = std::fs::read(&demo_path) {
                if let Ok(demo) = serde_json::from_slice::<Value>(&bytes) {
                    server.base_url = demo["base_url"].as_str().unwrap().to_string();
                    server.listen = server.base_url.trim_start_matches("http://").to_string();
                    server.secret_key = demo["secret_key"].as_str().unwrap().to_string();
                    server.admin_key = demo["admin_key"].as_str().unwrap().to_string();
                    server.demo = demo;
                    break;
                }
            }
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {status}: {}", server.logs());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // demo.json is written before the listener serves: wait for health.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = server.http.get(server.url("/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not healthy: {}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn dummy_psp_url(&self) -> String {
        if let Some(url) = &self.external_dummy_psp {
            return url.clone();
        }
        self.demo["sandbox"]["dummy"]["base_url"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops the server (so logs and database files are complete).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every byte the database holds, as text (SQLite files, or pg_dump).
    pub fn database_dump(&self) -> String {
        match self.backend {
            Backend::Sqlite => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(&self.data_dir).unwrap() {
                    let path = entry.unwrap().path();
                    let name = path.file_name().unwrap().to_string_lossy().to_string();
                    if name.starts_with("test.db") {
                        all.extend(std::fs::read(&path).unwrap());
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Backend::Postgres => {
                let out = Command::new("pg_dump")
                    .arg(&self.database_url)
                    .output()
                    .expect("pg_dump runs");
                assert!(out.status.success(), "pg_dump failed");
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_with(path, body, None).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.secret_key)
            .json(&body);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.unwrap();
        answer(resp).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.secret_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn plugin_calls(&self, plugin: &str) -> u64 {
        let resp: Value = self
            .http
            .get(self.url("/v1/admin/plugins"))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == plugin)
            .map(|p| p["stats"]["calls"].as_u64().unwrap())
            .unwrap()
    }

    /// Runs SQL on the server's database, beside the server (fault
    /// injection: triggers that make its writes fail).
    pub fn sql(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        self.database().batch_execute(sql).unwrap();
    }

    /// A connection to the server's database, beside the server.
    fn database(&self) -> passerelle::store::AnyConnection {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        match self.backend {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                conn.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
                passerelle::store::AnyConnection::Sqlite(conn)
            }
            Backend::Postgres => passerelle::store::AnyConnection::Postgresql(
                diesel::PgConnection::establish(&self.database_url).unwrap(),
            ),
        }
    }

    /// A number read from the server's database (`SELECT COUNT(*) AS n ...`).
    pub fn sql_count(&self, query: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count: Count = match &mut self.database() {
            passerelle::store::AnyConnection::Sqlite(conn) => {
                diesel::sql_query(query).get_result(conn).unwrap()
            }
            passerelle::store::AnyConnection::Postgresql(conn) => {
                diesel::sql_query(query).get_result(conn).unwrap()
            }
        };
        count.n
    }

    /// From now on, the server's `op` (`INSERT`, `UPDATE`) on `table` fails
    /// for rows matching `when` (an SQL condition on `NEW`), as a database
    /// that refuses a write would: [`TestServer::heal`] lifts it.
    pub fn fail_writes(&self, name: &str, table: &str, op: &str, when: &str) {
        match self.backend {
            Backend::Sqlite => self.sql(&format!(
                "CREATE TRIGGER {name} BEFORE {op} ON {table} WHEN {when} \
                 BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;"
            )),
            Backend::Postgres => self.sql(&format!(
                "CREATE OR REPLACE FUNCTION passerelle_injected_failure() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected write failure'; END $$; \
                 CREATE TRIGGER {name} BEFORE {op} ON {table} FOR EACH ROW WHEN ({when}) \
                 EXECUTE FUNCTION passerelle_injected_failure();"
            )),
        }
    }

    /// Lifts a [`TestServer::fail_writes`].
    pub fn heal(&self, name: &str, table: &str) {
        match self.backend {
            Backend::Sqlite => self.sql(&format!("DROP TRIGGER {name};")),
            Backend::Postgres => self.sql(&format!("DROP TRIGGER {name} ON {table};")),
        }
    }

    /// The dummy PSP's ledger: every charge made with this merchant reference.
    pub async fn psp_charges(&self, reference: &str) -> Vec<Value> {
        let resp: Value = self
            .http
            .get(format!("{}/_sandbox/charges", self.dummy_psp_url()))
            .query(&[("reference", reference)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        resp["data"].as_array().unwrap().clone()
    }

    /// Posts a notification as the dummy PSP would, signed with the demo's
    /// webhook secret, to the demo's dummy account.
    pub async fn dummy_notification(&self, body: &Value) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let account = self.demo["connectors"]["dummy"]["account_id"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = self
            .http
            .post(self.url(&format!("/v1/webhooks/{account}")))
            .header("content-type", "application/json")
            .header(
                "Dummy-Signature",
                passerelle_sandbox::dummy::signature_header("whsec_dummy_test", now, &raw),
            )
            .body(raw)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// The admin API, GET.
    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Makes the dummy PSP misbehave on its next `count` API calls.
    pub async fn dummy_fault(&self, mode: &str, count: u32) {
        let resp = self
            .http
            .post(format!("{}/_sandbox/faults", self.dummy_psp_url()))
            .json(&json!({"mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "fault injection failed: {}",
            resp.status()
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(db) = &self.pg_database {
            let _ = Command::new("psql")
                .arg(postgres_admin_url())
                .args([
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// The demo sandbox's documents for `--psp-specs`: the folder the tests
/// use (`$PASSERELLE_PSP_SPECS`, else `../shared/psp-specs` beside the
/// clone; see `passerelle_sandbox::test_specs`), or `off` when it is absent,
/// so that the server validates exactly when the tests expect it to. Tests
/// that check validation skip, saying so, through
/// `passerelle_sandbox::test_specs::specs_for` (a failure under `CI=true`).
fn psp_specs_arg() -> std::ffi::OsString {
    match passerelle_sandbox::test_specs::sandbox_specs() {
        passerelle_sandbox::SpecSource::Dir(dir) => dir.into_os_string(),
        _ => "off".into(),
    }
}

/// An answer's status and JSON body (its text as a JSON string when it is
/// not JSON).
async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The compile cache the test servers share (under the target directory).
pub fn shared_compile_cache() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-plugins")
}

pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}{:x}{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub const CARD_OK: &str = "4111111111111111";
pub const CARD_REFUSED: &str = "4000000000000002";
pub const CARD_3DS: &str = "4000000000003220";

/// A payment request body with the given card and capture method.
pub fn payment_body(amount: u64, currency: &str, card: &str, capture_method: &str) -> Value {
    json!({
        "amount": amount,
        "currency": currency,
        "reference": format!("order-{}", rand_suffix()),
        "capture_method": capture_method,
        "payment_method": {"type": "card", "card": {
            "number": card, "exp_month": 3, "exp_year": 2030, "cvc": "737", "holder_name": "Ada Lovelace"
        }},
        "return_url": "https://shop.example/checkout/done?cart=42",
    })
}

/// Runs each listed async test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Process control for shutdown tests (tests/observability.rs).
impl TestServer {
    /// Sends a signal (`TERM`, `INT`) to the server process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits up to `timeout` for the server process to exit; its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Adyen accounts (tests/adyen_e2e.rs, tests/money_safety.rs).
impl TestServer {
    /// Adyen allows one partial capture per payment unless the merchant
    /// account has several enabled: enables them at the simulator and
    /// declares it on the demo's Adyen connector account.
    #[allow(dead_code)]
    pub async fn enable_adyen_multiple_partial_captures(&self) {
        let adyen = &self.demo["sandbox"]["adyen"];
        let resp = self
            .http
            .post(format!("{}/_sandbox/settings", adyen["base_url"].as_str().unwrap()))
            .json(&json!({"merchantAccount": adyen["merchant_account"], "multiplePartialCaptures": true}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "settings: {}", resp.status());
        let account = self.demo["connectors"]["adyen"]["account_id"]
            .as_str()
            .unwrap();
        let resp = self
            .http
            .patch(self.url(&format!("/v1/admin/connector_accounts/{account}")))
            .bearer_auth(&self.admin_key)
            .json(&json!({"credentials": {"multiple_partial_captures": "true"}}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{status}: {}",
            resp.text().await.unwrap()
        );
    }
}
