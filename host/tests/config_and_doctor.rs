//! `passerelle.toml` and `passerelle doctor`, through the command line:
//! the file's settings under the flags and `PASSERELLE_*` variables (flag >
//! environment > file > default), refused keys and values naming the file,
//! a demo server configured by the file alone, and doctor finding each kind
//! of problem in a deployment (exit 1, what is wrong and how to fix it) and
//! none in a healthy one (exit 0).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::cli::{TempDir, BIN};
use diesel::{Connection, RunQueryDsl};
use serde_json::Value;

/// Settings the tests give themselves: none may leak in from the caller.
const VARIABLES: &[&str] = &[
    "PASSERELLE_CONFIG",
    "PASSERELLE_DATA_DIR",
    "PASSERELLE_DATABASE_URL",
    "PASSERELLE_PUBLIC_URL",
    "PASSERELLE_MASTER_KEY",
    "PASSERELLE_TRUSTED_KEYS",
    "PASSERELLE_LISTEN",
    "PASSERELLE_DEMO",
    "PASSERELLE_PLUGIN_CPU_MS",
];

/// `passerelle ARGS` in `dir`, with `env` and none of [`VARIABLES`] else.
fn passerelle(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("PASSERELLE_LOG", "off");
    for name in VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run passerelle")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Doctor's first line names the data directory it checks.
fn doctor_data_dir(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let output = passerelle(dir, &all, env);
    let text = stdout(&output);
    let first = text.lines().next().unwrap_or_default().to_string();
    first
        .strip_prefix("passerelle doctor: data dir ")
        .and_then(|rest| rest.split(", database").next())
        .unwrap_or_else(|| panic!("unexpected output: {text}\n{}", stderr(&output)))
        .to_string()
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let tmp = TempDir::new("config-precedence");
    let dir = &tmp.0;
    // No file: the default.
    assert_eq!(doctor_data_dir(dir, &[], &[]), ".passerelle");
    // ./passerelle.toml is read by default; `data_dir` spelt either way.
    std::fs::write(dir.join("passerelle.toml"), "data_dir = \"from-file\"\n").unwrap();
    assert_eq!(doctor_data_dir(dir, &[], &[]), "from-file");
    std::fs::write(dir.join("passerelle.toml"), "data-dir = \"from-file\"\n").unwrap();
    assert_eq!(doctor_data_dir(dir, &[], &[]), "from-file");
    let env = [("PASSERELLE_DATA_DIR", "from-env")];
    assert_eq!(doctor_data_dir(dir, &[], &env), "from-env");
    assert_eq!(
        doctor_data_dir(dir, &["--data-dir", "from-flag"], &env),
        "from-flag"
    );
    // --config / PASSERELLE_CONFIG name another file (the default one is
    // then not read).
    std::fs::write(dir.join("other.toml"), "data-dir = \"from-other\"\n").unwrap();
    assert_eq!(
        doctor_data_dir(dir, &["--config", "other.toml"], &[]),
        "from-other"
    );
    assert_eq!(
        doctor_data_dir(dir, &[], &[("PASSERELLE_CONFIG", "other.toml")]),
        "from-other"
    );
    // Serve's settings doctor does not check are accepted and ignored.
    std::fs::write(
        dir.join("passerelle.toml"),
        "data-dir = \"from-file\"\nlisten = \"127.0.0.1:9\"\nno-janitor = true\n\
         janitor-window = [\"adyen=60\"]\n",
    )
    .unwrap();
    assert_eq!(doctor_data_dir(dir, &[], &[]), "from-file");
}

#[test]
fn bad_files_are_refused_naming_the_file_and_the_key() {
    let tmp = TempDir::new("config-refused");
    let dir = &tmp.0;
    let file = dir.join("passerelle.toml");

    std::fs::write(&file, "data-dir = \"x\"\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let out = passerelle(dir, &["doctor"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("passerelle.toml: unknown setting `lisen`") && err.contains("listen"),
        "{err}"
    );

    std::fs::write(&file, "plugin-cpu-ms = \"fast\"\n").unwrap();
    let out = passerelle(dir, &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("`plugin-cpu-ms` in passerelle.toml is refused") && err.contains("fast"),
        "{err}"
    );
    // The same value from the environment wins, and is good.
    let out = passerelle(
        dir,
        &["serve", "--help"],
        &[("PASSERELLE_PLUGIN_CPU_MS", "500")],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    std::fs::write(&file, "no-janitor = \"yes\"\n").unwrap();
    let err = stderr(&passerelle(dir, &["serve"], &[]));
    assert!(err.contains("`no-janitor` must be true or false"), "{err}");

    std::fs::write(&file, "data-dir = [\n").unwrap();
    let err = stderr(&passerelle(dir, &["doctor"], &[]));
    assert!(err.contains("passerelle.toml is not valid TOML"), "{err}");

    let out = passerelle(dir, &["doctor", "--config", "missing.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the configuration file missing.toml"),
        "{}",
        stderr(&out)
    );
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A demo server configured by `./passerelle.toml` alone, stopped on drop.
struct Server {
    child: Child,
    base_url: String,
    data_dir: PathBuf,
    stdout_path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_from_file(dir: &Path) -> Server {
    let port = free_port();
    let data_dir = dir.join("data");
    std::fs::write(
        dir.join("passerelle.toml"),
        format!(
            "# A deployment described by its file.\n\
             listen = \"127.0.0.1:{port}\"\n\
             data-dir = \"{}\"\n\
             demo = true\n\
             psp-specs = \"off\"\n\
             workers = 1\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let stdout_path = dir.join("serve.out");
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .current_dir(dir)
        .env("PASSERELLE_LOG", "warn")
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(dir.join("serve.err")).unwrap());
    for name in VARIABLES {
        command.env_remove(name);
    }
    let child = command.spawn().unwrap();
    let mut server = Server {
        child,
        base_url: String::new(),
        data_dir: data_dir.clone(),
        stdout_path,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let demo = std::fs::read(data_dir.join("demo.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        if let Some(demo) = demo {
            server.base_url = demo["base_url"].as_str().unwrap().to_string();
            break;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "serve exited with {status}: {}",
                std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The block the demo prints once up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&server.stdout_path)
        .unwrap_or_default()
        .contains("Next:")
    {
        assert!(Instant::now() < deadline, "no demo block on stdout");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.base_url, format!("http://127.0.0.1:{port}"));
    server
}

/// Doctor's lines that start with `PROBLEM`, and its exit code.
fn problems(output: &Output) -> (Option<i32>, Vec<String>) {
    let text = stdout(output);
    (
        output.status.code(),
        text.lines()
            .filter(|line| line.starts_with("PROBLEM"))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn doctor_checks_a_deployment_configured_by_its_file() {
    let tmp = TempDir::new("doctor");
    let dir = &tmp.0;
    let server = start_from_file(dir);
    let printed = std::fs::read_to_string(&server.stdout_path).unwrap();
    for expected in [
        format!("Server:      {}", server.base_url),
        "PSP sandbox: http://127.0.0.1:".to_string(),
        format!(
            "demo.json:   {}",
            server.data_dir.join("demo.json").display()
        ),
        "A payment with curl".to_string(),
    ] {
        assert!(printed.contains(&expected), "{expected:?} in {printed}");
    }
    assert!(
        !printed.contains("sk_test_"),
        "a key in the terminal: {printed}"
    );

    // Healthy: the same file, and the public URL the server answers at.
    let public = format!("--public-url={}", server.base_url);
    let out = passerelle(dir, &["doctor", &public], &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for expected in [
        "ok       database: reachable",
        "ok       migrations: all applied",
        "ok       master key: ",
        "ok       compile cache: ",
        "ok       public URL: ",
        "ok       account acc_demo_dummy (",
        "No problem found.",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let accounts = text
        .lines()
        .filter(|l| l.starts_with("ok       account ") && l.ends_with("validate-config passed"))
        .count();
    assert!(accounts >= 5, "every demo account checked: {text}");

    // The public URL does not answer.
    let out = passerelle(dir, &["doctor", "--public-url", "http://127.0.0.1:1"], &[]);
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{}", stdout(&out));
    assert!(found[0].contains("public URL: http://127.0.0.1:1/health/live does not answer"));
    assert!(stdout(&out).contains("fix: start `passerelle serve`"));

    // Trusted keys that cannot be read.
    let out = passerelle(dir, &["doctor", "--trusted-keys", "no-such-file"], &[]);
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert!(
        found.len() == 1
            && found[0].contains("trusted keys: ")
            && found[0].contains("no-such-file"),
        "{}",
        stdout(&out)
    );

    // Another master key: no account's credentials open.
    let other_key = "ab".repeat(32);
    let out = passerelle(dir, &["doctor"], &[("PASSERELLE_MASTER_KEY", &other_key)]);
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert!(found.len() >= 5, "{}", stdout(&out));
    assert!(found
        .iter()
        .all(|l| l.contains("credentials do not open under this master key")));
    assert!(!stdout(&out).contains(&other_key), "the key is printed");

    // An account its connector refuses: the dummy account's credentials
    // sealed again without the webhook secret.
    let db_path = server.data_dir.join("passerelle.db");
    let secrets =
        passerelle::crypto::SecretBox::load_or_create(&server.data_dir.join("master.key")).unwrap();
    let mut db = diesel::SqliteConnection::establish(db_path.to_str().unwrap()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        config_ciphertext: String,
    }
    let sealed: Sealed = diesel::sql_query(
        "SELECT config_ciphertext FROM connector_accounts WHERE id = 'acc_demo_dummy'",
    )
    .get_result(&mut db)
    .unwrap();
    let mut credentials: serde_json::Map<String, Value> =
        serde_json::from_slice(&secrets.open(&sealed.config_ciphertext).unwrap()).unwrap();
    assert!(credentials.remove("webhook_secret").is_some());
    let resealed = secrets
        .seal(&serde_json::to_vec(&credentials).unwrap())
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE connector_accounts SET config_ciphertext = '{resealed}' WHERE id = 'acc_demo_dummy'"
    ))
    .execute(&mut db)
    .unwrap();
    let out = passerelle(dir, &["doctor"], &[]);
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{}", stdout(&out));
    assert!(
        found[0].contains("account acc_demo_dummy") && found[0].contains("webhook_secret"),
        "{found:?}"
    );
    assert!(stdout(&out).contains("passerelle admin accounts update acc_demo_dummy"));
    drop(server);

    // A compile cache that cannot be written, a missing master key: another
    // data directory (the same database).
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("compiled-plugins"), b"a file, not a folder").unwrap();
    let url = format!("sqlite://{}", db_path.display());
    let out = passerelle(
        dir,
        &[
            "doctor",
            "--data-dir",
            broken.to_str().unwrap(),
            "--database-url",
            &url,
        ],
        &[],
    );
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 2, "{}", stdout(&out));
    assert!(found[0].contains("master key: ") && found[0].contains("is missing"));
    assert!(found[1].contains("compile cache: ") && found[1].contains("is not writable"));
    assert!(stdout(&out).contains("skipped  accounts: no usable master key"));
    assert!(!broken.join("master.key").exists(), "doctor created a key");

    // A database whose migrations are not applied.
    let empty = dir.join("empty.db");
    diesel::SqliteConnection::establish(empty.to_str().unwrap()).unwrap();
    let out = passerelle(
        dir,
        &[
            "doctor",
            "--database-url",
            &format!("sqlite://{}", empty.display()),
        ],
        &[],
    );
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert!(
        found.len() == 1 && found[0].contains("migrations: ") && found[0].contains("not applied"),
        "{}",
        stdout(&out)
    );

    // A database that does not answer.
    let out = passerelle(
        dir,
        &[
            "doctor",
            "--database-url",
            "postgres://passerelle:s3cret@127.0.0.1:1/passerelle",
        ],
        &[],
    );
    let (code, found) = problems(&out);
    assert_eq!(code, Some(1));
    assert!(found[0].contains("database: cannot connect"), "{found:?}");
    assert!(!stdout(&out).contains("s3cret"), "the password is printed");
}
